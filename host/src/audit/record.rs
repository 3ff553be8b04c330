//! The audit record: what was asked, what the policy decided, and what happened. Never
//! environment values and never output contents — only their sizes.

use serde::{Deserialize, Serialize};

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Record schema version.
    pub v: u32,
    /// RFC 3339 time (UTC, microseconds) when the record was written.
    pub time: String,
    /// runbox's id for the call (UUID v7), also in the reply to the client.
    pub request_id: String,
    /// The JSON-RPC id the client used, if the call came over MCP.
    pub mcp_request_id: Option<String>,
    /// The MCP tool (`run`).
    pub tool: String,
    /// The command name as requested (shortened if huge).
    pub command: String,
    /// Arguments as requested (each shortened if huge).
    pub argv: Vec<String>,
    /// Working directory, relative to the workspace.
    pub cwd: Option<String>,
    /// `wasi` or `native` when a runner was chosen.
    pub runner: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// The exit code, when the command exited by itself.
    pub exit_code: Option<i32>,
    /// The error code, when the call failed or was refused.
    pub code: Option<String>,
    /// The error message, when there is one.
    pub message: Option<String>,
    /// Milliseconds the command ran.
    pub duration_ms: Option<u64>,
    /// Bytes the command wrote to stdout.
    pub stdout_bytes: Option<u64>,
    /// Bytes the command wrote to stderr.
    pub stderr_bytes: Option<u64>,
    /// Whether stdout was cut at the cap.
    pub stdout_truncated: Option<bool>,
    /// Whether stderr was cut at the cap.
    pub stderr_truncated: Option<bool>,
}

/// Current schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// Longest string kept in a record field; longer values are cut and marked with their length.
pub const MAX_FIELD_CHARS: usize = 1024;

/// Cuts a value for the log, noting its full length so nothing is silently lost.
pub fn clip(value: &str) -> String {
    if value.len() <= MAX_FIELD_CHARS {
        return value.to_owned();
    }
    let mut end = MAX_FIELD_CHARS;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes]", &value[..end], value.len())
}

/// Now, as RFC 3339 UTC with microseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

impl AuditRecord {
    /// A blank record for a call.
    pub fn new(request_id: &str, tool: &str) -> Self {
        Self {
            v: SCHEMA_VERSION,
            time: now_rfc3339(),
            request_id: request_id.to_owned(),
            mcp_request_id: None,
            tool: tool.to_owned(),
            command: String::new(),
            argv: Vec::new(),
            cwd: None,
            runner: None,
            decision: "deny".into(),
            exit_code: None,
            code: None,
            message: None,
            duration_ms: None,
            stdout_bytes: None,
            stderr_bytes: None,
            stdout_truncated: None,
            stderr_truncated: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn test_record() -> Self {
        let mut r = Self::new("0190-test", "run");
        r.command = "echo".into();
        r.argv = vec!["hi".into()];
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_and_marks_long() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(2000);
        let c = clip(&long);
        assert!(c.len() < 1100);
        assert!(c.ends_with("[4000 bytes]"));
    }

    #[test]
    fn time_has_microseconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-11-27T20:00:00.123456Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }
}
