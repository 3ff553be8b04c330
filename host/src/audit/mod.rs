//! The audit log: one JSON line per call, allowed or denied, in a directory outside the workspace.
//!
//! Each record is serialised first and then written with a single `write` on an `O_APPEND` file
//! under a mutex, so concurrent calls never interleave bytes, and synced with `fdatasync` before
//! the call is answered. If the log cannot be written the call is refused (fail closed).

pub mod record;

pub use record::AuditRecord;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// File name of the log inside the audit directory.
pub const LOG_FILE: &str = "audit.jsonl";

/// Why the audit log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory or file could not be created or opened.
    #[error("cannot open audit log in {dir}: {source}")]
    Open {
        /// The audit directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record could not be written or synced.
    #[error("cannot write audit record: {0}")]
    Write(std::io::Error),
    /// A record could not be serialised.
    #[error("cannot encode audit record: {0}")]
    Encode(serde_json::Error),
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<File>,
    path: PathBuf,
}

impl AuditLog {
    /// Opens (creating 0700 / 0600 as needed) the log in `dir`.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        let err = |source| AuditError::Open {
            dir: dir.to_owned(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(err)?;
        Ok(Self {
            file: Mutex::new(file),
            path,
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a record could be written now: the file is still linked in its directory.
    /// Checked before a command runs, so a vanished log refuses calls instead of losing them.
    pub fn check(&self) -> Result<(), AuditError> {
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let meta = file.metadata().map_err(AuditError::Write)?;
        if std::os::unix::fs::MetadataExt::nlink(&meta) == 0 {
            return Err(AuditError::Write(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the audit file was deleted",
            )));
        }
        Ok(())
    }

    /// Appends one record as one line, in one write, then syncs it.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(AuditError::Encode)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&line).map_err(AuditError::Write)?;
        file.sync_data().map_err(AuditError::Write)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn appends_whole_lines_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let audit_dir = dir.path().join("a");
        let log = AuditLog::open(&audit_dir).unwrap();
        let mut r = AuditRecord::test_record();
        log.append(&r).unwrap();
        r.command = "cat".into();
        log.append(&r).unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["command"], "cat");
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(&audit_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn concurrent_appends_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(AuditLog::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut r = AuditRecord::test_record();
                    r.argv = vec!["x".repeat(10_000 + i)];
                    for _ in 0..20 {
                        log.append(&r).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 160);
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    #[test]
    fn deleted_file_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.check().unwrap();
        std::fs::remove_file(log.path()).unwrap();
        assert!(log.check().is_err());
    }
}
