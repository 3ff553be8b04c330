//! runbox: an MCP server that lets AI agents run allowlisted commands in one workspace directory
//! without being able to hurt the machine they run on.
//!
//! A call arrives as JSON-RPC on stdin ([`mcp`]), is validated against the [`policy`] by the
//! [`service`], resolved inside the [`workspace`] capability, run by the WASI
//! runner ([`wasi`]) or the native runner ([`native`]) under [`limits`], recorded in the [`audit`] log, and answered with an
//! [`outcome`] or a structured [`error`].
//!
//! # Layout
//! - [`error`]: the error codes clients branch on.
//! - [`policy`]: the TOML policy and flags → a validated [`policy::Policy`] (file format, limits,
//!   native entries, tool manifests, audit settings, runbox's own paths) and the allowlist
//!   ([`policy::Catalog`]; exact names only), built by [`policy::assemble`] for `serve`, `exec`
//!   and `doctor` alike. Depends only on [`error`], [`limits`], [`outcome`] and [`workspace`];
//!   every other module may depend on it, never the reverse.
//! - [`tools_dir`]: finds and reads operator-supplied WASI modules (resolved by the policy).
//! - [`workspace`]: the one place the workspace is opened; paths resolve beneath it.
//! - [`limits`]: what a command may consume, shared by both runners.
//! - [`outcome`]: bounded output capture and how a command ended, shared by both runners.
//! - [`wasi`]: engine and instance pool, module cache, epoch ticker, scratch directories and one
//!   guest run; [`wasi::p1`] is runbox's own preview-1 system interface (files on cap-std, the
//!   write budget, no call that can block a host thread).
//! - [`native`]: real binaries from the policy, each in a kernel-confined process tree.
//! - [`runner`]: the contract both runners implement, and the one place that owns output
//!   capture, the deadline/cancel race and the TIMEOUT/CANCELLED errors.
//! - [`pipe`]: the bounded in-memory pipe between the stages of a pipeline, which run at the
//!   same time (its ends may be shared, as a shell's commands share descriptors).
//! - [`shell`]: the `shell` tool's interpreter: bash syntax parsed by brush-parser and walked by
//!   runbox (never a real shell), over a host that runs allowlisted commands.
//! - [`scratch_tree`]: the per-server roots of scratch directories and the removal of what
//!   commands leave there, however deep, without recursion.
//! - [`audit`]: the audit log: staged, hash-chained JSON lines, rotation, retention, and the
//!   `runbox audit` commands that read it.
//! - [`api`]: tool inputs and results as clients see them (schemas derive from these types).
//! - [`service`]: the call flow, independent of MCP: check every stage, audit, run, reply (a
//!   single command is a pipeline of one); a `shell` script's flow, whose every command goes
//!   through the same check, audit and runner.
//! - [`mcp`]: stdin/stdout, line framing and the rmcp handler; [`mcp::http`], the same handler
//!   over streamable HTTP (`serve --listen`) with bearer tokens.
//! - [`doctor`]: `runbox doctor`, what is in force for a policy on this machine and the fix for
//!   what is missing.
//! - [`cli`]: the `runbox` command line.
//!
//! The top-level modules import each other one way only: no module reaches, directly or
//! through others, back to itself. A unit test (`layers.rs`, test-only) reads the sources and
//! fails on a cycle or on [`policy`] using a module above it.
//!
//! # Features
//! `runtime` (on by default) brings everything that runs commands or serves MCP: [`wasi`],
//! [`native`]'s runner, [`service`], the rmcp half of [`mcp`], [`cli`] and the built-in module.
//! Without it (`default-features = false`, as the fuzz targets in `fuzz/` build) the crate is
//! the pure core — [`policy`], [`api`], [`workspace`], [`tools_dir`], [`audit`] —
//! and, with the `framing` feature, the stdio line framing and the pipes; with `shell`, the
//! interpreter (brush-parser, regex, futures); wasmtime and rmcp are not built.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod audit;
#[cfg(feature = "runtime")]
pub mod cli;
#[cfg(feature = "runtime")]
pub mod doctor;
pub mod error;
#[cfg(test)]
mod layers;
pub mod limits;
#[cfg(feature = "framing")]
pub mod mcp;
#[cfg(feature = "runtime")]
pub mod native;
pub mod outcome;
#[cfg(feature = "framing")]
pub mod pipe;
pub mod policy;
#[cfg(feature = "runtime")]
pub mod runner;
#[cfg(feature = "runtime")]
pub mod scratch_tree;
#[cfg(feature = "runtime")]
pub mod service;
#[cfg(feature = "shell")]
pub mod shell;
#[cfg(test)]
mod source_rules;
pub mod tools_dir;
#[cfg(feature = "runtime")]
pub mod wasi;
pub mod workspace;

/// The built-in multicall module (`tools-wasm`), built for wasm32-wasip1 by `build.rs`.
#[cfg(feature = "runtime")]
pub static BUILTIN_MODULE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/runbox-tools.wasm"));

/// The sha256 of [`BUILTIN_MODULE`], computed by `build.rs`, so that finding the module's
/// compiled form in the cache at start-up does not read (and keep resident) its 9.7 MB.
#[cfg(feature = "runtime")]
pub static BUILTIN_MODULE_SHA256: &[u8; 32] =
    include_bytes!(concat!(env!("OUT_DIR"), "/runbox-tools.wasm.sha256"));

/// The built-in command list (`tools-wasm/commands.toml`).
pub const BUILTIN_MANIFEST: &str = include_str!("../../tools-wasm/commands.toml");

#[cfg(all(test, feature = "runtime"))]
mod tests {
    #[test]
    fn build_time_digest_matches_the_embedded_module() {
        assert_eq!(
            *super::BUILTIN_MODULE_SHA256,
            crate::wasi::cache::sha256(super::BUILTIN_MODULE)
        );
    }
}
