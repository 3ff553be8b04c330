//! Integration tests: they start the real runbox binary and speak MCP to it over stdio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod attacks;
mod audit;
mod audit_cli;
mod audit_failures;
mod audit_mirror;
mod byo;
mod cancel;
mod cli;
mod clients;
mod confinement;
mod container;
mod deploy;
mod differential;
mod docs;
mod doctor;
mod http;
mod http_auth;
mod http_client;
mod limits;
mod load;
mod mcp;
mod native;
mod native_reaper;
mod perf;
mod pipeline;
mod precompile;
mod protocol;
mod python_sdk;
mod shell;
mod shell_diff;
mod token_file;
mod wasi_fs;
