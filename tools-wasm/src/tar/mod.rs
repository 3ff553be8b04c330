//! `tar`: GNU tar 1.34's command line for creating, listing and extracting archives (GNU and
//! ustar/PAX formats read, GNU format written), with `-z` through flate2.
//!
//! Options: `-c -t -x` (`--create --list --extract --get`), `-f FILE` (`-` or none: standard
//! input or output), `-z`, `-v`, `-C DIR`, `-O`, `-k`, `-m`, `--strip-components=N`,
//! `--sort=name|none`, `--owner`, `--group`, `--numeric-owner`, member names for `-t`/`-x`, old
//! style bundled letters (`tar czf out.tgz dir`). Exit status as GNU: 0, 2 on an error (after
//! "Exiting with failure status due to previous errors"), 64 on a usage error.
//!
//! Extraction ([`extract`]) never leaves the directory it extracts into: names lose a leading
//! `/`, names with `..` are skipped, symbolic links that would lead outside the workspace are
//! refused, and nothing is written through a symbolic link already in the tree. Must not set
//! owners or modes (WASI has neither) and must not pretend it did.

mod archive;
mod create;
mod extract;
mod listing;
mod names;
mod options;
mod place;

use std::ffi::OsString;

pub use options::{Mode, Options};

/// GNU tar's exit code for a fatal or non-fatal error.
pub const FAILURE: i32 = 2;
/// GNU tar's exit code for a usage error (argp's `EX_USAGE`).
pub const USAGE: i32 = 64;

/// `tar`.
pub fn main(args: Vec<OsString>) -> i32 {
    let options = match options::parse(&args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut status = Status::default();
    match options.mode {
        Mode::Create => create::run(&options, &mut status),
        Mode::List | Mode::Extract => extract::run(&options, &mut status),
    }
    status.finish()
}

/// Errors so far and the warnings already printed once.
#[derive(Default)]
pub struct Status {
    failed: bool,
    fatal: bool,
    warned: Vec<String>,
}

impl Status {
    /// `tar: MESSAGE`, remembered as a failure (exit 2 at the end).
    pub fn error(&mut self, message: impl std::fmt::Display) {
        eprintln!("tar: {message}");
        self.failed = true;
    }

    /// `tar: PATH: WHAT: the system's reason`, remembered as a failure.
    pub fn io_error(&mut self, path: impl std::fmt::Display, what: &str, e: &std::io::Error) {
        self.error(format!("{path}: {what}: {}", crate::cli::io_message(e)));
    }

    /// `tar: MESSAGE` then "Error is not recoverable: exiting now".
    pub fn fatal(&mut self, message: impl std::fmt::Display) {
        eprintln!("tar: {message}");
        eprintln!("tar: Error is not recoverable: exiting now");
        self.fatal = true;
    }

    /// A warning printed once per distinct text (GNU's "Removing leading ...").
    pub fn warn_once(&mut self, message: String) {
        if !self.warned.contains(&message) {
            eprintln!("tar: {message}");
            // Bounded by the distinct prefixes of one archive's names; cap it anyway.
            if self.warned.len() < 1024 {
                self.warned.push(message);
            }
        }
    }

    fn finish(&self) -> i32 {
        if self.fatal {
            FAILURE
        } else if self.failed {
            eprintln!("tar: Exiting with failure status due to previous errors");
            FAILURE
        } else {
            0
        }
    }
}

/// Prints a usage error GNU's way and gives its exit code.
pub fn usage(message: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("tar: {message}");
    eprintln!("Try 'tar --help' or 'tar --usage' for more information.");
    code
}

/// Bytes of a name as text for messages (lossy outside UTF-8).
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
