//! Resource limits shared by both runners.
//!
//! One [`Limits`] value describes what a single command may consume. The policy holds the
//! defaults and the ceilings; a request may only lower the wall-clock limit or raise it up to the
//! ceiling ([`Limits::with_timeout`]). Every default is written down here, where it is defined.

pub mod write_pool;

use crate::error::RunError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default wall-clock limit of one command: 30 s.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default ceiling a request may ask for with `timeout_ms`: 10 min.
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 600_000;
/// Default WASI fuel: about 40 CPU-seconds of guest code at the ~5e9 units/s measured here. Fuel is
/// the CPU backstop; the wall-clock timeout normally fires first.
pub const DEFAULT_FUEL: u64 = 200_000_000_000;
/// Default linear-memory ceiling of one WASI guest: 512 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 512 * 1024 * 1024;
/// Default ceiling on table elements of one WASI guest.
pub const DEFAULT_TABLE_ELEMENTS: u64 = 100_000;
/// Default bytes of stdout kept per command: 1 MiB. Output beyond it is counted and dropped.
pub const DEFAULT_STDOUT_BYTES: u64 = 1024 * 1024;
/// Default bytes of stderr kept per command: 256 KiB.
pub const DEFAULT_STDERR_BYTES: u64 = 256 * 1024;
/// Default bytes a WASI command may write to files per call: 1 GiB. Each new directory entry
/// counts as one 4 KiB block, so empty files cannot exhaust inodes either.
pub const DEFAULT_WRITE_BYTES: u64 = 1024 * 1024 * 1024;
/// Default CPU seconds of each native process (`RLIMIT_CPU`): 60. A backstop for processes that
/// burn several cores at once; the wall-clock timeout normally fires first.
pub const DEFAULT_CPU_SECONDS: u64 = 60;
/// Default largest file a native command may write (`RLIMIT_FSIZE`): 1 GiB.
pub const DEFAULT_FILE_SIZE_BYTES: u64 = 1024 * 1024 * 1024;
/// Default open files per native process (`RLIMIT_NOFILE`): 1024.
pub const DEFAULT_OPEN_FILES: u64 = 1024;
/// Default processes (and threads) a native command may have at once, itself included: 64.
pub const DEFAULT_PROCESSES: u64 = 64;

/// What one command may consume. Shared by the WASI and native runners so both enforce and
/// report the same things. `fuel`, `table_elements` and `write_bytes` apply to WASI guests only; `cpu_seconds`,
/// `file_size_bytes`, `open_files` and `processes` to native commands only; `memory_bytes` is a
/// guest's linear memory for WASI and the address space (`RLIMIT_AS`) of each native process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Wall-clock limit in milliseconds; past it the command is stopped with TIMEOUT.
    pub timeout_ms: u64,
    /// WASI fuel units (the CPU budget of a guest); exhausted → CPU_LIMIT.
    pub fuel: u64,
    /// Bytes of memory the command may use; refused growth → MEMORY_LIMIT.
    pub memory_bytes: u64,
    /// Table elements a WASI guest may allocate.
    pub table_elements: u64,
    /// Bytes of stdout kept; the rest is counted and dropped (`stdoutTruncated`).
    pub stdout_bytes: u64,
    /// Bytes of stderr kept; the rest is counted and dropped (`stderrTruncated`).
    pub stderr_bytes: u64,
    /// WASI only: bytes the command may write to files in one call (each new directory entry
    /// counts 4 KiB); past it writes fail with `EDQUOT` and the call ends with WRITE_LIMIT.
    pub write_bytes: u64,
    /// Native only: CPU seconds per process (`RLIMIT_CPU`); exhausted → CPU_LIMIT.
    pub cpu_seconds: u64,
    /// Native only: largest file a process may write (`RLIMIT_FSIZE`); writes past it fail.
    pub file_size_bytes: u64,
    /// Native only: open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Native only: processes and threads the command may have at once, itself included.
    pub processes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_ms: DEFAULT_TIMEOUT_MS,
            fuel: DEFAULT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            table_elements: DEFAULT_TABLE_ELEMENTS,
            stdout_bytes: DEFAULT_STDOUT_BYTES,
            stderr_bytes: DEFAULT_STDERR_BYTES,
            write_bytes: DEFAULT_WRITE_BYTES,
            cpu_seconds: DEFAULT_CPU_SECONDS,
            file_size_bytes: DEFAULT_FILE_SIZE_BYTES,
            open_files: DEFAULT_OPEN_FILES,
            processes: DEFAULT_PROCESSES,
        }
    }
}

impl Limits {
    /// The wall-clock limit as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// These limits with the request's `timeout_ms`, which must be between 1 and `max_timeout_ms`.
    /// A value above the ceiling is refused rather than silently lowered, so the caller learns
    /// the real bound.
    pub fn with_timeout(
        mut self,
        requested_ms: Option<u64>,
        max_timeout_ms: u64,
    ) -> Result<Self, RunError> {
        if let Some(ms) = requested_ms {
            if ms == 0 {
                return Err(RunError::invalid("timeout_ms must be at least 1"));
            }
            if ms > max_timeout_ms {
                return Err(RunError::invalid(format!(
                    "timeout_ms {ms} is above the policy's maximum of {max_timeout_ms}"
                ))
                .with_hint(format!("ask for at most {max_timeout_ms} ms")));
            }
            self.timeout_ms = ms;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_may_choose_timeout_up_to_ceiling() {
        let l = Limits::default().with_timeout(Some(5), 10).unwrap();
        assert_eq!(l.timeout_ms, 5);
        assert_eq!(l.timeout(), Duration::from_millis(5));
        let l = Limits::default().with_timeout(None, 10).unwrap();
        assert_eq!(l.timeout_ms, DEFAULT_TIMEOUT_MS);
    }

    #[test]
    fn timeout_above_ceiling_or_zero_is_refused() {
        let e = Limits::default().with_timeout(Some(11), 10).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidArgument);
        assert!(e.message.contains("10"));
        assert!(Limits::default().with_timeout(Some(0), 10).is_err());
    }
}
