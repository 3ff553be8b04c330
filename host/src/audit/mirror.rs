//! The audit mirror (`audit.mirror`): every line written to the log file is also written,
//! byte for byte, to runbox's stdout (under `serve --listen`) or to an inherited descriptor,
//! where a cluster's log pipeline (Fluent Bit, Vector, an OpenTelemetry collector) picks it up.
//!
//! The file stays the record: the mirror is a copy that must never slow a call down or cost
//! the file a line. [`Mirror::offer`] only queues the line (a short mutex, no I/O); one thread
//! of its own writes the queue out, blocking on a slow reader as long as it must. The queue is
//! bounded ([`MAX_QUEUE_BYTES`]): a line that does not fit, or whose write fails (the reader
//! closed its end), is dropped and counted, and the log then says so in a `mirror` record
//! ([`AuditLog`] writes one at most every [`REPORT_INTERVAL`] while lines are being dropped,
//! and one before the `stop` record) naming how many, their `seq` range and why. A mirror
//! record is mirrored too, when it fits.
//!
//! This module must never block the log's writer on the mirror's descriptor, write a partial
//! record it knows of without counting it, or write anything but whole log lines.

use super::record::{AuditRecord, MirrorInfo, Stage};
use super::{AuditLog, AuditMirror, State};
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Most bytes of lines waiting for the mirror's reader; a line past it is dropped.
pub const MAX_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Least time between two `mirror` records (the one before `stop` is written regardless).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How long the `stop` record waits for the mirror to pass the queue on.
pub const STOP_DRAIN: Duration = Duration::from_secs(1);

/// Why the mirror could not start (start is refused).
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The descriptor is not open in this process.
    #[error(
        "audit.mirror = \"{target}\": descriptor {fd} is not open; start runbox with it open for writing (e.g. `3>>FILE` or a pipe), or remove the setting"
    )]
    NotOpen {
        /// The setting.
        target: AuditMirror,
        /// The descriptor.
        fd: i32,
    },
    /// The descriptor is open for reading only.
    #[error("audit.mirror = \"{target}\": descriptor {fd} is open for reading only")]
    ReadOnly {
        /// The setting.
        target: AuditMirror,
        /// The descriptor.
        fd: i32,
    },
    /// It could not be duplicated, or the writer thread could not start.
    #[error("audit.mirror = \"{target}\": {source}")]
    Os {
        /// The setting.
        target: AuditMirror,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The mirror: a bounded queue and the thread that writes it out.
#[derive(Debug)]
pub struct Mirror {
    target: AuditMirror,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a line is queued or the mirror closes.
    wake: Condvar,
    /// Signalled when the queue is empty and nothing is being written.
    idle: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    lines: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    writing: bool,
    closing: bool,
    dropped: Option<Dropped>,
    dropped_total: u64,
    last_report: Option<Instant>,
    /// The last write error, so it is logged once, not per line.
    last_error: Option<String>,
}

/// Lines dropped and not yet reported.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dropped {
    count: u64,
    first_seq: u64,
    last_seq: u64,
    reason: String,
}

impl Queue {
    fn drop_line(&mut self, seq: u64, reason: String) {
        self.dropped_total = self.dropped_total.saturating_add(1);
        match &mut self.dropped {
            Some(d) => {
                d.count = d.count.saturating_add(1);
                d.first_seq = d.first_seq.min(seq);
                d.last_seq = d.last_seq.max(seq);
                d.reason = reason;
            }
            None => {
                self.dropped = Some(Dropped {
                    count: 1,
                    first_seq: seq,
                    last_seq: seq,
                    reason,
                });
            }
        }
    }
}

impl Mirror {
    /// Checks that the target's descriptor is open for writing, takes a close-on-exec copy of
    /// it (the original is marked close-on-exec too, unless it is stdout) and starts the writer
    /// thread.
    pub fn start(target: AuditMirror) -> Result<Self, MirrorError> {
        let fd = match target {
            AuditMirror::Stdout => 1,
            AuditMirror::Fd(n) => n,
        };
        // SAFETY: F_GETFL only asks about the descriptor; no memory is involved.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(MirrorError::NotOpen { target, fd });
        }
        if flags & libc::O_ACCMODE == libc::O_RDONLY {
            return Err(MirrorError::ReadOnly { target, fd });
        }
        let os = |source| MirrorError::Os { target, source };
        // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor and touches no memory.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if copy < 0 {
            return Err(os(std::io::Error::last_os_error()));
        }
        // SAFETY: `copy` was just made by F_DUPFD_CLOEXEC and nothing else knows it.
        let out = File::from(unsafe { OwnedFd::from_raw_fd(copy) });
        if fd > 2 {
            // SAFETY: F_SETFD on a descriptor known to be open; no memory is involved. The
            // inherited original must not reach what runbox starts.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        let name = target.to_string();
        std::thread::Builder::new()
            .name("runbox-audit-mirror".into())
            .spawn(move || write_out(&writer, out, &name))
            .map_err(os)?;
        Ok(Self { target, shared })
    }

    /// Where it writes.
    pub fn target(&self) -> AuditMirror {
        self.target
    }

    /// Queues a line written to the log (never blocks on the reader); a line that does not fit
    /// is dropped and counted.
    pub fn offer(&self, seq: u64, line: Vec<u8>) {
        let mut q = self.shared.lock();
        if q.bytes.saturating_add(line.len()) > MAX_QUEUE_BYTES {
            q.drop_line(
                seq,
                format!(
                    "the mirror's queue ({} MiB) was full: its reader takes lines slower than the log writes them",
                    MAX_QUEUE_BYTES >> 20
                ),
            );
            return;
        }
        q.bytes += line.len();
        q.lines.push_back((seq, line));
        drop(q);
        self.shared.wake.notify_one();
    }

    /// The drops not yet reported, as a `mirror` record's member: `None` when there are none,
    /// or (unless `force`) when the last report is younger than [`REPORT_INTERVAL`].
    pub fn take_report(&self, force: bool) -> Option<MirrorInfo> {
        let mut q = self.shared.lock();
        let now = Instant::now();
        if !force
            && q.last_report
                .is_some_and(|t| now.duration_since(t) < REPORT_INTERVAL)
        {
            return None;
        }
        let d = q.dropped.take()?;
        q.last_report = Some(now);
        Some(MirrorInfo {
            target: self.target.to_string(),
            dropped: d.count,
            dropped_total: q.dropped_total,
            first_seq: d.first_seq,
            last_seq: d.last_seq,
            reason: d.reason,
        })
    }

    /// Puts back a report whose record could not be written, so the next one carries it.
    pub fn restore(&self, info: MirrorInfo) {
        let mut q = self.shared.lock();
        q.dropped = Some(match q.dropped.take() {
            None => Dropped {
                count: info.dropped,
                first_seq: info.first_seq,
                last_seq: info.last_seq,
                reason: info.reason,
            },
            Some(newer) => Dropped {
                count: newer.count.saturating_add(info.dropped),
                first_seq: newer.first_seq.min(info.first_seq),
                last_seq: newer.last_seq.max(info.last_seq),
                reason: newer.reason,
            },
        });
    }

    /// Lines dropped since the mirror started.
    pub fn dropped_total(&self) -> u64 {
        self.shared.lock().dropped_total
    }

    /// Waits until every queued line is written (or dropped), at most `timeout`; returns
    /// whether the queue is empty.
    pub fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.lock();
        while !q.lines.is_empty() || q.writing {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            q = self
                .shared
                .idle
                .wait_timeout(q, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for Mirror {
    /// The writer ends once the queue is empty (a writer blocked on a reader that never reads
    /// stays blocked until the process ends; it holds nothing the log needs).
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer thread: takes lines one by one and writes each whole, however long it takes.
fn write_out(shared: &Shared, mut out: File, target: &str) {
    loop {
        let (seq, line) = {
            let mut q = shared.lock();
            loop {
                if let Some(next) = q.lines.pop_front() {
                    q.bytes -= next.1.len();
                    q.writing = true;
                    break next;
                }
                q.writing = false;
                shared.idle.notify_all();
                if q.closing {
                    return;
                }
                q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let result = write_whole(&mut out, &line);
        let mut q = shared.lock();
        if let Err(e) = result {
            let reason = format!("writing to {target} failed: {e}");
            if q.last_error.as_deref() != Some(reason.as_str()) {
                tracing::warn!("audit mirror: {reason}; lines are dropped and counted");
                q.last_error = Some(reason.clone());
            }
            q.drop_line(seq, reason);
        }
    }
}

/// Writes all of `line`, waiting for room when the descriptor is non-blocking.
fn write_whole(out: &mut File, line: &[u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < line.len() {
        match out.write(&line[done..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [libc::pollfd {
                    fd: out.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                // SAFETY: `fds` is a valid array of one pollfd for the duration of the call.
                unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl AuditLog {
    /// Writes a `mirror` record for the lines the mirror dropped and has not reported yet (see
    /// [`Mirror::take_report`]); returns the record's `seq` when one was written.
    pub(super) fn report_mirror(&self, st: &mut State, force: bool) -> Option<u64> {
        let mirror = self.mirror.as_ref()?;
        let info = mirror.take_report(force)?;
        let mut record = AuditRecord::new(Stage::Mirror);
        record.mirror = Some(info.clone());
        match self.write_record(st, &mut record, self.clock.now()) {
            Ok((seq, _, _)) => Some(seq),
            Err(_) => {
                mirror.restore(info);
                None
            }
        }
    }

    /// Gives the mirror a moment to pass its queue on (after the `stop` record).
    pub(super) fn drain_mirror(&self) {
        if let Some(m) = &self.mirror
            && !m.drain(STOP_DRAIN)
        {
            tracing::warn!(
                "audit mirror: lines still queued after {STOP_DRAIN:?} at stop; its reader is not reading"
            );
        }
    }

    /// The mirror's target and the lines it dropped so far, when there is a mirror.
    pub fn mirror_dropped(&self) -> Option<(AuditMirror, u64)> {
        self.mirror
            .as_ref()
            .map(|m| (m.target(), m.dropped_total()))
    }
}

#[cfg(test)]
#[path = "mirror_tests.rs"]
mod tests;
