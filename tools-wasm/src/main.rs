//! `runbox-tools`: the WASI command suite of runbox as one multicall `wasm32-wasip1` module.
//!
//! The host starts the module with the command name as `argv[0]`, the workspace preopened as
//! `/` and the request's working directory in `PWD`. `main` does three things, in order:
//!
//! 1. installs the exit policy ([`exit::install_panic_hook`]): a panic becomes a message and an
//!    exit code, never a trap;
//! 2. changes to `$PWD` when it is set and not `/` (exit 125 if that fails);
//! 3. looks the basename of `argv[0]` up in [`registry`] and runs the command (unknown name: 125).
//!
//! Exit codes are clamped to `0..=125` ([`exit::clamp`]) because wasmtime refuses larger ones.
//!
//! # Layout
//! - [`registry`]: the name → entry point table, checked against `commands.toml` at build time.
//! - [`exit`]: exit codes, stdout flushing and the panic hook.
//! - [`uutils`]: entry points of the uutils coreutils crates, sed and cmp.
//! - [`guards`]: refusals for uutils options WASI cannot honour (`cp -p`, `mkdir -m`, `test -x`).
//! - [`ls`]: `ls`, with an honest long format (WASI has no modes, owners or link counts).
//! - [`grep`]: a GNU grep front end over ripgrep's library crates (and `egrep`, `fgrep`).
//! - [`find`]: a GNU find subset on walkdir, globset and regex.
//! - [`diff`]: GNU diff over the uutils diffutils library, with `-r`.
//! - [`jq`]: jq over jaq.
//! - [`stat`], [`du`], [`tree`]: written on `std::fs` and walkdir.
//! - [`rev`]: util-linux `rev`.
//! - [`gzip`]: `gzip`, `gunzip`, `zcat` on flate2.
//! - [`xxd`]: vim's xxd.
//! - [`strings`]: binutils' strings; [`column`]: util-linux's column.
//! - [`tar`]: `tar` on the tar crate and flate2, with safe extraction.
//! - [`awk`]: a POSIX awk (lexer, parser, tree-walking interpreter); no processes.
//! - [`pattern`]: POSIX regexes, wildcards and bracket expressions → Rust regex syntax.
//! - [`cli`]: small argument-parsing helpers shared by the hand-written front ends.
//! - `empty_path` (WASI only): an empty path is `ENOENT`, never the current directory.

mod awk;
mod cli;
mod column;
mod diff;
mod du;
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
mod empty_path;
mod exit;
mod find;
mod grep;
mod guards;
mod gzip;
mod jq;
mod ls;
mod pattern;
mod registry;
mod rev;
mod stat;
mod strings;
mod tar;
mod tree;
mod uutils;
mod xxd;

use std::ffi::OsString;
use std::path::Path;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let name = command_name(&args);
    exit::install_panic_hook(name.clone());
    avoid_std_temp_dir(&name);
    // wasi-libc starts in `/`, so `PWD=/` (most calls) needs no lookup: that saves a host
    // call which wasmtime-wasi serves on its blocking pool.
    if let Some(pwd) = std::env::var_os("PWD")
        && pwd != "/"
        && let Err(e) = std::env::set_current_dir(&pwd)
    {
        eprintln!(
            "{name}: cannot change to working directory {}: {}",
            Path::new(&pwd).display(),
            cli::io_message(&e)
        );
        exit::exit(exit::CANNOT_RUN);
    }
    let code = match registry::lookup(&name) {
        Some(entry) => (entry.run)(args),
        None => {
            eprintln!("runbox-tools: unknown command {name:?}");
            exit::CANNOT_RUN
        }
    };
    exit::exit(code)
}

/// `std::env::temp_dir` panics on WASI, and the `tempfile` crate calls it unless told otherwise.
/// Point `tempfile` at `$TMPDIR` (runbox gives every call a private scratch directory there), or
/// at `/tmp`, which the guest does not have, so creating a temporary file fails with an ordinary
/// error. uu_tac is the exception: it spools standard input to a temporary file and then mmaps
/// it, which WASI cannot do ("unsupported"); a temporary directory that does not exist makes its
/// spool fail early, and it falls back to reading standard input into memory.
#[cfg_attr(not(target_os = "wasi"), allow(unused_variables))]
fn avoid_std_temp_dir(command: &str) {
    #[cfg(target_os = "wasi")]
    {
        let dir = std::env::var_os("TMPDIR")
            .filter(|d| !d.is_empty() && command != "tac")
            .map_or_else(
                || std::path::PathBuf::from("/tmp"),
                std::path::PathBuf::from,
            );
        // Err only if already set, which cannot happen this early.
        let _ = tempfile::env::override_temp_dir(&dir);
    }
}

/// The basename of `argv[0]`, lossily as UTF-8 (every known name is ASCII).
fn command_name(args: &[OsString]) -> String {
    args.first()
        .map(|a| {
            let p = Path::new(a);
            p.file_name()
                .unwrap_or(a.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::command_name;
    use std::ffi::OsString;

    #[test]
    fn name_is_basename_of_argv0() {
        assert_eq!(
            command_name(&[OsString::from("/bin/ls"), OsString::from("-l")]),
            "ls"
        );
        assert_eq!(command_name(&[OsString::from("grep")]), "grep");
        assert_eq!(command_name(&[]), "");
    }
}
