//! Range checks of limits: every limit a policy, a `[native.NAME.limits]` table or a tool
//! manifest sets is checked here, once, with the key at fault named. Pure.

use super::{ConfigError, invalid};
use crate::limits::Limits;

/// Refuses `v` outside `lo..=hi`, naming `key`.
pub(crate) fn in_range(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        Err(invalid(key, format!("{v} is outside {lo}..={hi}")))
    } else {
        Ok(())
    }
}

/// Checks one set of limits for sense; `prefix` (`limits.` or `native.NAME.limits.`) starts
/// the key named in the error.
pub(crate) fn check_limits(
    prefix: &str,
    l: &Limits,
    max_timeout_ms: u64,
) -> Result<(), ConfigError> {
    const GIB: u64 = 1024 * 1024 * 1024;
    let key = |k: &str| format!("{prefix}{k}");
    in_range(&key("timeout_ms"), l.timeout_ms, 1, max_timeout_ms)?;
    in_range(&key("fuel"), l.fuel, 1_000, u64::MAX)?;
    in_range(&key("memory_bytes"), l.memory_bytes, 1024 * 1024, 64 * GIB)?;
    in_range(&key("table_elements"), l.table_elements, 1, 100_000_000)?;
    in_range(&key("stdout_bytes"), l.stdout_bytes, 0, 256 * 1024 * 1024)?;
    in_range(&key("stderr_bytes"), l.stderr_bytes, 0, 256 * 1024 * 1024)?;
    in_range(&key("write_bytes"), l.write_bytes, 0, 1024 * GIB)?;
    in_range(&key("cpu_seconds"), l.cpu_seconds, 1, 24 * 3600)?;
    in_range(&key("file_size_bytes"), l.file_size_bytes, 0, 1024 * GIB)?;
    in_range(&key("open_files"), l.open_files, 16, 1 << 20)?;
    in_range(&key("processes"), l.processes, 1, 100_000)?;
    Ok(())
}
