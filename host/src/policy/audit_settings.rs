//! The `[audit]` part of the policy as validated: how much audit log is kept and when records
//! reach the disk. Only the settings live here (so the policy need not know the log); the
//! log that obeys them is the `audit` module, which must not be imported from here.

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
}

impl Default for AuditLimits {
    fn default() -> Self {
        Self {
            retention_days: MIN_RETENTION_DAYS,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            sync: SyncPolicy::default(),
        }
    }
}
