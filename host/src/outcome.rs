//! What a finished command produced, shared by both runners.
//!
//! [`Capture`] is the bounded sink each runner writes a stream into: it keeps the first `cap`
//! bytes, counts and hashes (sha256, for the audit log) everything, and never grows past its cap,
//! so a flood of output costs the server no memory. [`Outcome`] is what a runner hands back: how
//! the command ended and its two captures.

use crate::error::{ErrorCode, RunError};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A bounded, shareable output buffer: keeps at most `cap` bytes, counts and hashes all bytes
/// offered.
#[derive(Debug, Clone)]
pub struct Capture {
    inner: Arc<Mutex<CaptureInner>>,
    live: Option<Arc<AtomicU64>>,
}

#[derive(Debug)]
struct CaptureInner {
    kept: Vec<u8>,
    cap: usize,
    total: u64,
    hasher: Sha256,
    /// The bytes went on elsewhere (a pipe): keeping none of them is not a truncation.
    passes_on: bool,
}

impl Capture {
    /// A capture that keeps at most `cap` bytes.
    pub fn new(cap: u64) -> Self {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        Self {
            inner: Arc::new(Mutex::new(CaptureInner {
                kept: Vec::new(),
                cap,
                total: 0,
                hasher: Sha256::new(),
                passes_on: false,
            })),
            live: None,
        }
    }

    /// A capture of bytes that go on elsewhere (to the next stage of a pipeline): it keeps
    /// none, counts and hashes all, and is never reported as truncated.
    pub fn passing_on() -> Self {
        let c = Self::new(0);
        c.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .passes_on = true;
        c
    }

    /// Also adds every byte offered to `counter`, so progress reports can show output as it
    /// grows (several captures may share one counter).
    pub fn counting_into(mut self, counter: Arc<AtomicU64>) -> Self {
        self.live = Some(counter);
        self
    }

    /// Offers bytes: keeps what fits under the cap and counts the rest. Never fails, so a writer
    /// (a guest's `println!`) never sees an error because of truncation.
    pub fn push(&self, bytes: &[u8]) {
        if let Some(live) = &self.live {
            live.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.total = inner.total.saturating_add(bytes.len() as u64);
        inner.hasher.update(bytes);
        let room = inner.cap.saturating_sub(inner.kept.len());
        let take = room.min(bytes.len());
        if take > 0 {
            inner.kept.extend_from_slice(&bytes[..take]);
        }
    }

    /// Bytes offered so far (kept or dropped).
    pub fn total(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    /// Takes the kept bytes and the counts out, leaving the capture empty.
    pub fn finish(&self) -> Captured {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = std::mem::take(&mut inner.kept);
        let sha256 = std::mem::take(&mut inner.hasher).finalize().into();
        Captured {
            truncated: !inner.passes_on && inner.total > bytes.len() as u64,
            total_bytes: inner.total,
            bytes,
            sha256,
        }
    }
}

/// The kept part of one output stream and whether anything was dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The first bytes of the stream, at most the cap.
    pub bytes: Vec<u8>,
    /// All bytes the command wrote to the stream.
    pub total_bytes: u64,
    /// True when `total_bytes` exceeds what was kept.
    pub truncated: bool,
    /// sha256 of all `total_bytes` bytes, kept or not (what the audit log records).
    pub sha256: [u8; 32],
}

impl Captured {
    /// The kept bytes as text; invalid UTF-8 (binary output, or a character cut by the cap) is
    /// replaced with U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// It exited by itself with this code (a non-zero code is a normal result).
    Exited(i32),
    /// It was stopped by a limit, by cancellation, or failed in the sandbox.
    Stopped(RunError),
}

/// Which runner ran a command.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    /// A WASI module inside wasmtime.
    Wasi,
    /// A real binary behind the native process runner.
    Native,
}

impl RunnerKind {
    /// The wire spelling (`wasi` / `native`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wasi => "wasi",
            Self::Native => "native",
        }
    }
}

/// What a WASI command wrote to files in its call (native commands are not measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileWrites {
    /// Bytes of data written to files (workspace and scratch).
    pub bytes: u64,
    /// The disk refused a write (`ENOSPC`) during the call.
    pub disk_full: bool,
}

/// Everything a runner reports about one finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub termination: Termination,
    /// Its stdout, bounded.
    pub stdout: Captured,
    /// Its stderr, bounded.
    pub stderr: Captured,
    /// Wall-clock time from start to end.
    pub duration: Duration,
    /// Which runner ran it.
    pub runner: RunnerKind,
    /// How many processes runbox killed when it stopped the command (timeout, cancellation,
    /// shutdown): the whole tree, counted just before the kill. `None` when runbox killed nothing
    /// (the command exited by itself, or it is a WASI guest).
    pub processes_killed: Option<u32>,
    /// What it wrote to files, where the runner measures it (WASI).
    pub file_writes: Option<FileWrites>,
}

impl Outcome {
    /// The exit code when the command exited by itself.
    pub fn exit_code(&self) -> Option<i32> {
        match self.termination {
            Termination::Exited(code) => Some(code),
            Termination::Stopped(_) => None,
        }
    }

    /// The error code when the command was stopped.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match &self.termination {
            Termination::Exited(_) => None,
            Termination::Stopped(e) => Some(e.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_first_bytes_and_counts_all() {
        let c = Capture::new(5);
        c.push(b"abc");
        c.push(b"defgh");
        c.push(b"ij");
        assert_eq!(c.total(), 10);
        let out = c.finish();
        assert_eq!(out.bytes, b"abcde");
        assert_eq!(out.total_bytes, 10);
        assert!(out.truncated);
        assert_eq!(out.sha256, <[u8; 32]>::from(Sha256::digest(b"abcdefghij")));
    }

    #[test]
    fn capture_under_cap_is_not_truncated() {
        let c = Capture::new(5);
        c.push(b"abcde");
        let out = c.finish();
        assert!(!out.truncated);
        assert_eq!(out.text(), "abcde");
    }

    #[test]
    fn live_counter_sees_every_byte() {
        let counter = Arc::new(AtomicU64::new(0));
        let a = Capture::new(1).counting_into(counter.clone());
        let b = Capture::new(1).counting_into(counter.clone());
        a.push(b"abc");
        b.push(b"de");
        assert_eq!(counter.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn zero_cap_keeps_nothing() {
        let c = Capture::new(0);
        c.push(b"x");
        let out = c.finish();
        assert!(out.bytes.is_empty());
        assert!(out.truncated);
    }

    #[test]
    fn a_capture_passing_bytes_on_counts_and_hashes_but_is_not_truncated() {
        let c = Capture::passing_on();
        c.push(b"abc");
        let out = c.finish();
        assert!(out.bytes.is_empty());
        assert_eq!(out.total_bytes, 3);
        assert!(!out.truncated);
        assert_eq!(out.sha256, <[u8; 32]>::from(Sha256::digest(b"abc")));
    }

    #[test]
    fn lossy_text_replaces_invalid_utf8() {
        let out = Captured {
            bytes: vec![b'a', 0xff],
            total_bytes: 2,
            truncated: false,
            sha256: [0; 32],
        };
        assert_eq!(out.text(), "a\u{fffd}");
    }
}
