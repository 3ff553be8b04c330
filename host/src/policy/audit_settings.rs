//! The `[audit]` part of the policy as validated: how much audit log is kept, when records
//! reach the disk, and where a copy of every line goes for a log collector (`mirror`). Only the
//! settings live here (so the policy need not know the log); the
//! log that obeys them is the `audit` module, which must not be imported from here.

use super::{ConfigError, invalid};
use serde::{Deserialize, Serialize};

/// Default and smallest retention: 7 days.
pub const MIN_RETENTION_DAYS: u64 = 7;
/// Default size at which a file is closed and the next begun: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default size of the whole log at which new calls are refused: 1 GiB.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;

/// When records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncPolicy {
    /// `fdatasync` before the reply, for a call's last record.
    Always,
    /// `fdatasync` within 100 ms (the audit log's `BATCH_INTERVAL`) by a background thread (the
    /// default).
    #[default]
    Batch,
}

impl SyncPolicy {
    /// The policy in words, for `start` records.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Always => {
                "always: a call's last record is fdatasync'd before the reply (concurrent calls share one fdatasync)"
            }
            Self::Batch => {
                "batch: records are written at once and fdatasync'd within 100 ms; start/stop/open/recovered at once"
            }
        }
    }
}

/// Where every audit line is also written, for a log collector (`audit.mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditMirror {
    /// runbox's stdout: only under `serve --listen` (on stdio, stdout is the MCP channel).
    Stdout,
    /// A descriptor runbox inherited, open when it starts (3 or above).
    Fd(i32),
}

impl AuditMirror {
    /// Parses `stdout` or `fd:N` (N from 3: 0-2 are stdin, the MCP channel or stdout, and
    /// runbox's own log); `key` names the setting in the error.
    pub fn parse(key: &str, text: &str) -> Result<Self, ConfigError> {
        if text == "stdout" {
            return Ok(Self::Stdout);
        }
        let bad = |why: &str| invalid(key, format!("{text:?}: {why}"));
        let Some(number) = text.strip_prefix("fd:") else {
            return Err(bad("expected \"stdout\" or \"fd:N\""));
        };
        match number.parse::<i32>() {
            Ok(1) => Err(bad("write \"stdout\" for descriptor 1")),
            Ok(n) if (3..=MAX_MIRROR_FD).contains(&n) => Ok(Self::Fd(n)),
            Ok(_) => Err(bad(&format!(
                "a descriptor from 3 to {MAX_MIRROR_FD} (0 is stdin, 2 is runbox's own log)"
            ))),
            Err(_) => Err(bad("N is a descriptor number")),
        }
    }
}

/// Highest descriptor `fd:N` may name (far above what a process inherits).
pub const MAX_MIRROR_FD: i32 = 65_535;

impl std::fmt::Display for AuditMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout => f.write_str("stdout"),
            Self::Fd(n) => write!(f, "fd:{n}"),
        }
    }
}

impl Serialize for AuditMirror {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How much audit log is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuditLimits {
    /// Days a file is kept after its newest record (default 7; less is refused).
    pub retention_days: u64,
    /// A file is closed once it reaches this size (default 64 MiB).
    pub max_file_bytes: u64,
    /// New calls are refused with AUDIT_UNAVAILABLE once the log reaches this size, rather
    /// than deleting records younger than the retention (default 1 GiB).
    pub max_total_bytes: u64,
    /// When records reach the disk (default `batch`: within 100 ms; `always`: a call's last
    /// record before its reply).
    pub sync: SyncPolicy,
    /// Where every line is also written (default: nowhere). Absent from the policy's hash when
    /// unset, so policies without it keep their hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<AuditMirror>,
}

impl Default for AuditLimits {
    fn default() -> Self {
        Self {
            retention_days: MIN_RETENTION_DAYS,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            sync: SyncPolicy::default(),
            mirror: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_stdout_or_a_descriptor_from_3() {
        assert_eq!(
            AuditMirror::parse("k", "stdout").unwrap(),
            AuditMirror::Stdout
        );
        assert_eq!(AuditMirror::parse("k", "fd:3").unwrap(), AuditMirror::Fd(3));
        assert_eq!(AuditMirror::Fd(9).to_string(), "fd:9");
        for (bad, why) in [
            ("stderr", "expected"),
            ("fd:1", "write \"stdout\""),
            ("fd:2", "from 3"),
            ("fd:0", "from 3"),
            ("fd:-4", "from 3"),
            ("fd:70000", "from 3"),
            ("fd:x", "descriptor number"),
        ] {
            let e = AuditMirror::parse("audit.mirror", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("audit.mirror") && e.contains(why), "{bad}: {e}");
        }
    }
}
