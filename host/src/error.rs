//! The one error type of runbox and its stable, machine-readable codes.
//!
//! Every failure a client can see is a [`RunError`] carrying an [`ErrorCode`]. Codes are part of
//! the public contract: clients branch on them, so a code is never renamed or reused for another
//! meaning. New codes may be added (the enum is `#[non_exhaustive]`). The README lists them all.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable error code, serialised as `SCREAMING_SNAKE_CASE` (e.g. `COMMAND_NOT_ALLOWED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The command name is not on the allowlist (exact match only).
    CommandNotAllowed,
    /// The request itself is malformed: a missing field, a bad type, an over-long value, a NUL
    /// byte, a timeout above the policy's maximum.
    InvalidArgument,
    /// A path (the `cwd`, or one the host resolves) leads outside the workspace.
    PathOutsideWorkspace,
    /// A path inside the workspace does not exist or is not a directory where one is needed.
    PathNotFound,
    /// The command ran past its wall-clock limit and was stopped.
    Timeout,
    /// The command used up its CPU budget (WASI fuel or native `RLIMIT_CPU`) and was stopped.
    CpuLimit,
    /// The command asked for more memory than its limit allows and failed because of it.
    MemoryLimit,
    /// Retired: it meant "a pipeline stage wrote more than may be passed to the next stage";
    /// stages now stream through bounded pipes, so nothing produces it. Kept so that clients
    /// branching on it still compile.
    OutputLimit,
    /// A WASI command wrote more to files than its per-call write budget (`write_bytes`)
    /// allows; it was refused further writes and failed because of it.
    WriteLimit,
    /// A `shell` script went past one of the interpreter's bounds: commands started, steps
    /// (commands and loop iterations), nesting of functions and subshells, the size of a
    /// value, a word list or a command substitution, or the script's own size or nesting.
    ScriptLimit,
    /// A native command's process tree held more processes and threads than its `processes`
    /// limit and was stopped (the reaper mode counts per call; with namespaces the kernel's
    /// per-call RLIMIT_NPROC makes further forks fail instead).
    ProcessLimit,
    /// The command was cancelled by the client or by server shutdown.
    Cancelled,
    /// The command tried to write while the policy makes the workspace read-only.
    ReadOnly,
    /// The audit log cannot be written, so nothing runs (fail closed); or, rarely, a command
    /// ran and only its end could not be recorded (the message says which).
    AuditUnavailable,
    /// The sandbox this command needs cannot be set up on this machine (fail closed).
    SandboxUnavailable,
    /// The command's module failed in a way that is not a limit: a trap, an invalid module.
    CommandFailed,
    /// A bug in runbox. The reply still carries the requestId so the audit log can be searched.
    Internal,
}

impl ErrorCode {
    /// The wire spelling of the code, identical to its serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CommandNotAllowed => "COMMAND_NOT_ALLOWED",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::PathOutsideWorkspace => "PATH_OUTSIDE_WORKSPACE",
            Self::PathNotFound => "PATH_NOT_FOUND",
            Self::Timeout => "TIMEOUT",
            Self::CpuLimit => "CPU_LIMIT",
            Self::MemoryLimit => "MEMORY_LIMIT",
            Self::OutputLimit => "OUTPUT_LIMIT",
            Self::WriteLimit => "WRITE_LIMIT",
            Self::ScriptLimit => "SCRIPT_LIMIT",
            Self::ProcessLimit => "PROCESS_LIMIT",
            Self::Cancelled => "CANCELLED",
            Self::ReadOnly => "READ_ONLY",
            Self::AuditUnavailable => "AUDIT_UNAVAILABLE",
            Self::SandboxUnavailable => "SANDBOX_UNAVAILABLE",
            Self::CommandFailed => "COMMAND_FAILED",
            Self::Internal => "INTERNAL",
        }
    }

    /// Whether repeating the same request unchanged may succeed. A client uses this to decide
    /// between retrying and changing the request.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::AuditUnavailable | Self::Internal | Self::Cancelled
        )
    }

    /// Every code, in documentation order (used by tests and the README check).
    pub const ALL: &'static [ErrorCode] = &[
        Self::CommandNotAllowed,
        Self::InvalidArgument,
        Self::PathOutsideWorkspace,
        Self::PathNotFound,
        Self::Timeout,
        Self::CpuLimit,
        Self::MemoryLimit,
        Self::OutputLimit,
        Self::WriteLimit,
        Self::ScriptLimit,
        Self::ProcessLimit,
        Self::Cancelled,
        Self::ReadOnly,
        Self::AuditUnavailable,
        Self::SandboxUnavailable,
        Self::CommandFailed,
        Self::Internal,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with its code, a message for humans and models, and an optional hint that says
/// what to change. It never contains output or environment values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// The stable code a client branches on.
    pub code: ErrorCode,
    /// What went wrong, in one sentence.
    pub message: String,
    /// What the caller can do about it, when there is something.
    pub hint: Option<String>,
}

impl RunError {
    /// An error with a code and a message and no hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint that tells the caller what to change.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Shorthand for [`ErrorCode::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// Shorthand for [`ErrorCode::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for RunError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spelling_matches_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
            let back: ErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, *code);
        }
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(!ErrorCode::CommandNotAllowed.retryable());
        assert!(!ErrorCode::PathOutsideWorkspace.retryable());
        assert!(!ErrorCode::Timeout.retryable());
        assert!(ErrorCode::AuditUnavailable.retryable());
    }

    #[test]
    fn display_has_code_and_message() {
        let e = RunError::invalid("bad").with_hint("fix it");
        assert_eq!(e.to_string(), "INVALID_ARGUMENT: bad");
        assert_eq!(e.hint.as_deref(), Some("fix it"));
    }
}
