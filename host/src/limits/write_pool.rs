//! The write budget of one call as a whole: the pool every stage's own budget draws on
//! (`wasi::p1::budget`), so stages running at the same time never write more together than the
//! call may. It counts bytes only; it must not know about files or guests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The write budget of one call, shared by every stage of it that runs at the same time (the
/// stages of a pipeline run concurrently): each byte is taken from it before it is written.
#[derive(Debug, Clone)]
pub struct WritePool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    limit: u64,
    used: AtomicU64,
}

impl WritePool {
    /// A call budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                limit,
                used: AtomicU64::new(0),
            }),
        }
    }

    /// Takes up to `wanted` bytes (all of them only when `all`); returns what was taken.
    pub fn take(&self, wanted: u64, all: bool) -> u64 {
        let limit = self.inner.limit;
        let mut taken = 0;
        // A compare-and-swap loop, so concurrent stages never take more than the limit.
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let left = limit.saturating_sub(used);
                taken = if all && left < wanted {
                    0
                } else {
                    left.min(wanted)
                };
                (taken > 0).then(|| used + taken)
            });
        taken
    }

    /// Gives back `n` bytes taken and not used.
    pub fn give_back(&self, n: u64) {
        if n > 0 {
            self.inner.used.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Bytes taken so far by every stage.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Acquire)
    }
}
