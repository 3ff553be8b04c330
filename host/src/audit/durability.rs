//! When records reach the disk: the [`SyncPolicy`], the shared `fdatasync` (group commit) and
//! the background flusher of the `batch` policy.
//!
//! Every record is written to the file with one `write` as soon as it is appended, so a killed
//! process (kill -9, a panic) never loses one: the page cache outlives the process. What
//! `fdatasync` adds is surviving a machine crash or power loss, and it costs about a disk flush
//! (~100 µs on the virtio disk measured; see `docs/audit.md`).
//!
//! - `always`: a call's last record (and every `start`/`stop`/`open`/`recovered`) is synced
//!   before the reply is sent. Callers that arrive while a sync runs wait for it and, if their
//!   record was written before it began, share it; otherwise one of them syncs again.
//! - `batch` (the default): call records are synced by a background thread at most
//!   [`BATCH_INTERVAL`] after the first unsynced one was written; replies do not wait. Lifecycle
//!   records are still synced at once. If a background sync fails, appends are refused until a
//!   sync succeeds again (fail closed).

pub use crate::policy::SyncPolicy;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Longest a call record stays unsynced under the `batch` policy.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(100);

/// How often an idle flusher checks whether its log still exists.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Shared sync state of one log.
#[derive(Debug, Default)]
pub(super) struct Syncer {
    /// Serialises `fdatasync` calls.
    one_at_a_time: Mutex<()>,
    /// Highest `seq` known to be on disk.
    synced: AtomicU64,
    /// When the oldest unsynced call record was written (`batch`).
    dirty_since: Mutex<Option<Instant>>,
    wake: Condvar,
    /// Why the last background sync failed, until one succeeds.
    fault: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Syncer {
    /// Highest `seq` on disk.
    pub(super) fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Notes that everything up to `seq` is on disk.
    pub(super) fn synced_up_to(&self, seq: u64) {
        self.synced.fetch_max(seq, Ordering::AcqRel);
    }

    /// Makes every record up to `seq` (written to `file`) durable. `current` reports the newest
    /// `seq` written and the file it went to; it is called only by the caller that syncs.
    pub(super) fn sync_to(
        &self,
        seq: u64,
        file: &Arc<File>,
        current: impl FnOnce() -> (u64, Option<Arc<File>>),
    ) -> std::io::Result<()> {
        if self.synced() >= seq {
            return Ok(());
        }
        let _one = lock(&self.one_at_a_time);
        if self.synced() >= seq {
            return Ok(());
        }
        let (upto, now_file) = current();
        if !now_file.is_some_and(|f| Arc::ptr_eq(&f, file)) {
            // The file was rotated (which synced it) or dropped since the write.
            return if self.synced() >= seq {
                Ok(())
            } else {
                file.sync_data()
            };
        }
        file.sync_data()?;
        self.synced_up_to(upto);
        Ok(())
    }

    /// Marks a call record as waiting for the flusher.
    pub(super) fn mark_dirty(&self) {
        let mut d = lock(&self.dirty_since);
        if d.is_none() {
            *d = Some(Instant::now());
            self.wake.notify_one();
        }
    }

    /// Forgets pending work: the caller is about to sync everything written so far.
    pub(super) fn clear_dirty(&self) {
        *lock(&self.dirty_since) = None;
    }

    /// Waits up to `idle` for an unsynced record; returns when it was written.
    fn wait_dirty(&self, idle: Duration) -> Option<Instant> {
        let d = lock(&self.dirty_since);
        let (d, _) = self
            .wake
            .wait_timeout_while(d, idle, |d| d.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        *d
    }

    /// The failure of the last background sync, if it has not succeeded since.
    pub(super) fn fault(&self) -> Option<String> {
        lock(&self.fault).clone()
    }

    pub(super) fn set_fault(&self, fault: Option<String>) {
        *lock(&self.fault) = fault;
    }
}

/// Something the flusher can sync.
pub(super) trait Flush: Send + Sync + 'static {
    /// The log's sync state.
    fn syncer(&self) -> &Syncer;
    /// Syncs everything written so far.
    fn flush(&self);
}

/// Starts the `batch` flusher for `log`; it ends soon after the log is dropped.
pub(super) fn spawn_flusher<L: Flush>(log: Weak<L>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("runbox-audit-sync".into())
        .spawn(move || {
            loop {
                let Some(log) = log.upgrade() else { return };
                let Some(since) = log.syncer().wait_dirty(IDLE_CHECK) else {
                    continue;
                };
                let due = since + BATCH_INTERVAL;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                log.flush();
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_spelled_in_lowercase_and_defaults_to_batch() {
        assert_eq!(SyncPolicy::default(), SyncPolicy::Batch);
        assert_eq!(serde_json::to_value(SyncPolicy::Always).unwrap(), "always");
        let p: SyncPolicy = serde_json::from_value("batch".into()).unwrap();
        assert_eq!(p, SyncPolicy::Batch);
    }

    #[test]
    fn a_covered_sync_returns_without_syncing() {
        let s = Syncer::default();
        s.synced_up_to(5);
        let f = Arc::new(tempfile::tempfile().unwrap());
        s.sync_to(3, &f, || panic!("must not be asked")).unwrap();
        s.sync_to(6, &f, || (7, Some(Arc::clone(&f)))).unwrap();
        assert_eq!(s.synced(), 7);
    }
}
