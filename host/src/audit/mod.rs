//! The audit log: staged, hash-chained JSON lines in daily files, kept for a retention period.
//!
//! [`AuditLog`] is the writer. Every record goes through [`AuditLog::append`], which, under one
//! mutex, gives the record the next `seq`, the time from the [`Clock`] and the previous record's
//! hash, seals it ([`chain`]), and writes the whole line with a single `write` on an `O_APPEND`
//! file, so concurrent calls never interleave bytes. When the line reaches the disk is the
//! [`SyncPolicy`]'s business ([`durability`]): by default a background `fdatasync` within 100 ms;
//! with `always`, before a call's reply.
//!
//! Files rotate at the UTC day boundary and when they reach `max_file_bytes`; the first record of
//! every file is an `open` record carrying the previous file's last hash. At start and at each
//! rotation, files whose newest record is older than the retention are deleted. Once the log
//! reaches `max_total_bytes`, `received` records (and so new calls) are refused rather than
//! deleting records younger than the retention.
//!
//! When the directory cannot be used (unwritable, full, deleted) the log is *unavailable*: appends
//! fail with an [`AuditError`] (the service answers AUDIT_UNAVAILABLE), the reason goes to stderr,
//! and each later append tries again, so fixing the directory needs no restart. A failed write
//! is cut back off the file so the chain stays whole; if even that fails, the next open sets the
//! torn bytes aside like a crash would.
//!
//! This module must never write the workspace, environment values or command output.

pub mod call;
pub mod chain;
#[cfg(feature = "runtime")]
pub mod cli;
pub mod clock;
pub mod durability;
pub mod files;
mod maintain;
pub mod mirror;
pub mod read;
pub mod record;
pub mod reserve;
pub mod verify;

pub use crate::policy::audit_settings::{
    AuditMirror, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_TOTAL_BYTES, MIN_RETENTION_DAYS,
};
pub use clock::{Clock, FakeClock, SystemClock};
pub use durability::SyncPolicy;
pub use record::{AuditRecord, Stage};

use durability::{Flush, Syncer};
use record::GENESIS_HASH;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use time::{Date, OffsetDateTime};

/// Where and how much to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The audit directory (created 0700).
    pub dir: PathBuf,
    /// Days a file is kept after its newest record (at least [`MIN_RETENTION_DAYS`]).
    pub retention_days: u64,
    /// A file is closed once it reaches this size.
    pub max_file_bytes: u64,
    /// New calls are refused once all files together reach this size.
    pub max_total_bytes: u64,
    /// When records are synced to disk.
    pub sync: SyncPolicy,
    /// Where every line is also written, as the policy says ([`AuditLog::open_with_mirror`]
    /// takes the [`mirror::Mirror`] itself); named in `start` records.
    pub mirror: Option<AuditMirror>,
}

impl AuditConfig {
    /// Defaults for `dir`: 7 days, 64 MiB files, 1 GiB in all, `batch` sync.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retention_days: MIN_RETENTION_DAYS,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            sync: SyncPolicy::default(),
            mirror: None,
        }
    }

    fn retention(&self) -> time::Duration {
        time::Duration::days(i64::try_from(self.retention_days).unwrap_or(i64::MAX / 86_400))
    }
}

impl crate::policy::Policy {
    /// The audit log settings for [`AuditLog::open`]. Defined here, beside [`AuditConfig`], so
    /// that the policy need not know the audit log (the dependency points from `audit` to
    /// `policy` only).
    pub fn audit_config(&self) -> AuditConfig {
        AuditConfig {
            dir: self.audit_dir.clone(),
            retention_days: self.audit.retention_days,
            max_file_bytes: self.audit.max_file_bytes,
            max_total_bytes: self.audit.max_total_bytes,
            sync: self.audit.sync,
            mirror: self.audit.mirror,
        }
    }
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory or a file could not be created, opened or read.
    #[error("cannot open the audit log in {dir}: {source}")]
    Open {
        /// The audit directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record could not be written or synced (full disk, read-only file, I/O error).
    #[error("cannot write the audit log {file}: {source}")]
    Write {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The current file was deleted or replaced under the server.
    #[error("the audit file {0} was deleted or replaced")]
    Vanished(String),
    /// The log has reached its size cap and no file is old enough to delete.
    #[error(
        "the audit log holds {total} bytes, at its cap of {cap} (policy key audit.max_total_bytes); \
         records younger than the retention are never deleted to make room"
    )]
    Full {
        /// Bytes in the log.
        total: u64,
        /// The cap.
        cap: u64,
    },
    /// A record could not be serialised.
    #[error("cannot encode an audit record: {0}")]
    Encode(serde_json::Error),
}

/// The audit writer. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct AuditLog {
    config: AuditConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    syncer: Syncer,
    /// Where every line is also written ([`mirror`]).
    mirror: Option<mirror::Mirror>,
}

#[derive(Debug)]
struct State {
    current: Option<Current>,
    seq: u64,
    last_hash: String,
    /// Name of the newest file in the chain, for the next `open` record.
    last_file: Option<String>,
    total_bytes: u64,
    /// Sync every record at once (the `batch` thread could not start).
    sync_each: bool,
    /// Files pruned but not yet named in a record.
    pending_pruned: Vec<String>,
    /// Why the log last failed, so the stderr message is printed once per fault, not per call.
    fault: Option<String>,
}

#[derive(Debug)]
struct Current {
    file: Arc<File>,
    name: String,
    day: Date,
    len: u64,
    /// End of the space allocated ahead for records ([`reserve`]); at most `len` when there is none.
    reserved_to: u64,
    ino: (u64, u64),
}

impl AuditLog {
    /// Opens the log in `config.dir`: creates the directory (0700) if needed, sets aside a torn
    /// last line (with a `recovered` record), picks up the chain where it ended, and prunes
    /// expired files. Never fails: a log that cannot be opened is returned *unavailable*, with
    /// the reason in [`AuditLog::health`], and is retried on every append. Under the `batch`
    /// policy a background thread syncs; it ends when the log is dropped.
    pub fn open(config: AuditConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        Self::open_with_mirror(config, clock, None)
    }

    /// [`AuditLog::open`], with every line also given to `mirror` (records written while
    /// opening included).
    pub fn open_with_mirror(
        config: AuditConfig,
        clock: Arc<dyn Clock>,
        mirror: Option<mirror::Mirror>,
    ) -> Arc<Self> {
        let log = Self {
            config,
            clock,
            state: Mutex::new(State {
                current: None,
                seq: 0,
                last_hash: GENESIS_HASH.to_owned(),
                last_file: None,
                total_bytes: 0,
                sync_each: false,
                pending_pruned: Vec::new(),
                fault: None,
            }),
            syncer: Syncer::default(),
            mirror,
        };
        {
            let mut st = log.lock();
            if let Err(e) = log.reopen(&mut st) {
                log.report(&mut st, &e);
            }
        }
        let log = Arc::new(log);
        if log.config.sync == SyncPolicy::Batch
            && let Err(e) = durability::spawn_flusher(Arc::downgrade(&log))
        {
            // Without the thread every record is synced at once instead: slower, never less safe.
            tracing::warn!("cannot start the audit sync thread, syncing every record: {e}");
            let mut st = log.lock();
            st.sync_each = true;
        }
        log
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The settings in force.
    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// The clock records are stamped with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// `Ok` if the log is open and its current file is still in place; otherwise why not.
    pub fn health(&self) -> Result<(), AuditError> {
        let mut st = self.lock();
        match &st.current {
            Some(cur) => self.still_there(cur),
            None => {
                let e = self.reopen(&mut st);
                if let Err(e) = &e {
                    self.report(&mut st, e);
                }
                e
            }
        }
    }

    /// The name of the file records currently go to.
    pub fn current_file(&self) -> Option<String> {
        self.lock().current.as_ref().map(|c| c.name.clone())
    }

    /// Appends one record and makes it durable as the [`SyncPolicy`] says. Returns the record's
    /// `seq`. A `received` record is refused with [`AuditError::Full`] once the log is at its cap.
    pub fn append(&self, mut record: AuditRecord) -> Result<u64, AuditError> {
        if let Some(fault) = self.syncer.fault() {
            // A background sync failed: refuse until one succeeds.
            self.flush();
            if self.syncer.fault().is_some() {
                return Err(AuditError::Write {
                    file: self.current_file().unwrap_or_default(),
                    source: std::io::Error::other(fault),
                });
            }
        }
        let stage = record.stage;
        let (seq, synced_to, file, name, sync_now) = {
            let mut st = self.lock();
            let sync_now = match (self.config.sync, stage.is_call_record()) {
                (_, false) => true,
                (SyncPolicy::Always, true) => stage != Stage::Received,
                (SyncPolicy::Batch, true) => st.sync_each,
            };
            // The mirror's drops are reported before the `stop` record, else at most every
            // second after a record.
            let before = (stage == Stage::Stop)
                .then(|| self.report_mirror(&mut st, true))
                .flatten();
            match self.append_locked(&mut st, &mut record) {
                Ok(r) => {
                    if st.fault.take().is_some() {
                        tracing::warn!(dir = %self.config.dir.display(), "audit log writable again");
                    }
                    let after = (stage != Stage::Stop)
                        .then(|| self.report_mirror(&mut st, false))
                        .flatten();
                    let last = before.max(after).unwrap_or(r.0).max(r.0);
                    (r.0, last, r.1, r.2, sync_now)
                }
                Err(e) => {
                    self.report(&mut st, &e);
                    return Err(e);
                }
            }
        };
        if sync_now {
            self.syncer
                .sync_to(synced_to, &file, || self.newest())
                .map_err(|source| {
                    let e = AuditError::Write { file: name, source };
                    self.report(&mut self.lock(), &e);
                    e
                })?;
        } else if self.config.sync == SyncPolicy::Batch {
            self.syncer.mark_dirty();
        }
        if stage == Stage::Stop {
            self.drain_mirror();
        }
        Ok(seq)
    }

    /// Syncs everything written so far (the `batch` flusher, and on drop).
    pub fn flush(&self) {
        self.syncer.clear_dirty();
        let (seq, file) = self.newest();
        let Some(file) = file else { return };
        match self.syncer.sync_to(seq, &file, || self.newest()) {
            Ok(()) => {
                if self.syncer.fault().is_some() {
                    self.syncer.set_fault(None);
                    tracing::warn!("audit log syncs again");
                }
            }
            Err(e) => {
                let text = format!("a background fdatasync failed, records may be lost: {e}");
                if self.syncer.fault().as_deref() != Some(text.as_str()) {
                    tracing::error!("audit log unavailable, calls are refused: {text}");
                }
                self.syncer.set_fault(Some(text));
            }
        }
    }

    /// Highest `seq` known to be on disk.
    pub fn synced_seq(&self) -> u64 {
        self.syncer.synced()
    }

    /// The newest `seq` written and the file it is in.
    fn newest(&self) -> (u64, Option<Arc<File>>) {
        let st = self.lock();
        (st.seq, st.current.as_ref().map(|c| Arc::clone(&c.file)))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prints a fault on stderr once, until the log works again.
    fn report(&self, st: &mut State, e: &AuditError) {
        let text = e.to_string();
        if st.fault.as_deref() != Some(text.as_str()) {
            tracing::error!("audit log unavailable, calls are refused: {text}");
            st.fault = Some(text);
        }
    }

    fn append_locked(
        &self,
        st: &mut State,
        record: &mut AuditRecord,
    ) -> Result<(u64, Arc<File>, String), AuditError> {
        match &st.current {
            None => self.reopen(st)?,
            Some(cur) => {
                if let Err(e) = self.still_there(cur) {
                    // Drop the file: the next append opens a fresh one whose `open` record
                    // names the vanished file, so the gap is on record.
                    st.current = None;
                    return Err(e);
                }
            }
        }
        let now = self.clock.now();
        if let Some(cur) = &st.current
            && (now.date() > cur.day || cur.len >= self.config.max_file_bytes)
        {
            // A clock that goes back does not rotate: files must stay in chain order.
            let reason = if now.date() > cur.day { "day" } else { "size" };
            self.rotate(st, now, reason)?;
        }
        if record.stage == Stage::Received && st.total_bytes >= self.config.max_total_bytes {
            self.prune(st, now);
            if st.total_bytes >= self.config.max_total_bytes {
                return Err(AuditError::Full {
                    total: st.total_bytes,
                    cap: self.config.max_total_bytes,
                });
            }
        }
        if record.stage == Stage::Received
            && let Some(cur) = st.current.as_mut()
        {
            // A new call needs the whole reserve for its own records (see `reserve`).
            cur.reserved_to =
                reserve::renew(&cur.file, cur.len).map_err(|source| AuditError::Write {
                    file: cur.name.clone(),
                    source,
                })?;
        }
        self.write_record(st, record, now)
    }

    /// Whether the open file is still the one in the directory.
    fn still_there(&self, cur: &Current) -> Result<(), AuditError> {
        let vanished = || AuditError::Vanished(cur.name.clone());
        let meta = cur.file.metadata().map_err(|_| vanished())?;
        if meta.nlink() == 0 {
            return Err(vanished());
        }
        match std::fs::symlink_metadata(self.config.dir.join(&cur.name)) {
            Ok(m) if (m.dev(), m.ino()) == cur.ino => Ok(()),
            _ => Err(vanished()),
        }
    }

    /// Seals and writes one record to the current file in one `write`.
    fn write_record(
        &self,
        st: &mut State,
        record: &mut AuditRecord,
        now: OffsetDateTime,
    ) -> Result<(u64, Arc<File>, String), AuditError> {
        let seq = st.seq + 1;
        record.seq = seq;
        record.time = clock::format_time(now);
        record.prev_hash = st.last_hash.clone();
        if record.pruned.is_empty() {
            record.pruned.clone_from(&st.pending_pruned);
        }
        let line = chain::seal(record).map_err(AuditError::Encode)?;
        let Some(cur) = st.current.as_mut() else {
            return Err(AuditError::Vanished("(none)".into()));
        };
        let written = match (&*cur.file).write(&line) {
            // A short write only happens when the disk fills up; the second write (still
            // under the lock, so nothing can come between) either ends the line or says why not.
            Ok(n) if n < line.len() => (&*cur.file).write(&line[n..]).map(|m| n + m),
            other => other,
        };
        match written {
            Ok(n) if n == line.len() => {}
            other => {
                let source = match other {
                    Err(e) => e,
                    Ok(n) => std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        format!("short write ({n} of {} bytes)", line.len()),
                    ),
                };
                // Cut back whatever part reached the file so the chain stays whole; if that
                // fails too, forget the file so the next open sets the torn bytes aside.
                if cur.file.set_len(cur.len).is_err() {
                    st.current = None;
                } else {
                    // Cutting back freed the reserve too: try to take it again.
                    cur.reserved_to = reserve::top_up(&cur.file, cur.len, cur.len);
                }
                let file = st
                    .current
                    .as_ref()
                    .map_or_else(String::new, |c| c.name.clone());
                return Err(AuditError::Write { file, source });
            }
        }
        cur.len += line.len() as u64;
        cur.reserved_to = reserve::top_up(&cur.file, cur.len, cur.reserved_to);
        st.total_bytes += line.len() as u64;
        st.seq = seq;
        st.last_hash = record.hash.clone().unwrap_or_default();
        st.pending_pruned.clear();
        let written = (seq, Arc::clone(&cur.file), cur.name.clone());
        if let Some(m) = &self.mirror {
            // Under the log's lock, so the mirror sees the lines in chain order.
            m.offer(seq, line);
        }
        Ok(written)
    }
}

impl Flush for AuditLog {
    fn syncer(&self) -> &Syncer {
        &self.syncer
    }

    fn flush(&self) {
        AuditLog::flush(self);
    }
}

impl Drop for AuditLog {
    /// A clean end leaves every record on disk.
    fn drop(&mut self) {
        if self.syncer.synced() < self.lock().seq {
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests;
