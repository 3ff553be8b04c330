//! The errors of the awk command: usage, syntax, refusals (what a confined runner does not do)
//! and run-time errors, each with gawk's exit status ([`AwkError::exit_code`]).
//!
//! Must not: print anything; `mod.rs` prints the message once.

use thiserror::Error;

/// Why an awk run stopped.
#[derive(Debug, Error)]
pub enum AwkError {
    #[error("{0}")]
    Usage(String),
    #[error("syntax error at source line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("{0} is not supported in runbox: awk cannot start commands here (no processes)")]
    Refused(&'static str),
    #[error("program nesting too deep at source line {0} (limit {limit})", limit = super::parser::MAX_DEPTH)]
    TooDeep(usize),
    #[error("function call nesting deeper than {0}")]
    CallDepth(usize),
    #[error("function calls and expressions nested too deeply while running (limit {0} levels)")]
    Nesting(usize),
    #[error("{0}")]
    Runtime(String),
    #[error("{what}: {message}")]
    Io { what: String, message: String },
}

impl AwkError {
    /// The exit status, as gawk's: 1 for usage and syntax errors, 2 for fatal errors (and for
    /// the refusals, which are runbox's).
    pub fn exit_code(&self) -> i32 {
        match self {
            AwkError::Usage(_) | AwkError::Syntax { .. } => 1,
            _ => 2,
        }
    }

    /// A run-time error about a file, with the message of `e` without Rust's decoration.
    pub fn io(what: impl Into<String>, e: &std::io::Error) -> AwkError {
        AwkError::Io {
            what: what.into(),
            message: crate::cli::io_message(e),
        }
    }
}
