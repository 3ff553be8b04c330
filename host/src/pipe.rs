//! A bounded in-memory pipe between two stages of a pipeline: one writer, one reader, at most
//! `capacity` bytes in between, with back-pressure both ways — a writer waits while the pipe is
//! full, a reader while it is empty — and the ends of a shell's pipe: when the writer is gone
//! the reader sees end-of-file once the pipe is drained; when the reader is gone every write
//! fails with [`BrokenPipe`] and what was still buffered is dropped.
//!
//! Waiting is a future (a tokio [`Notify`]), never a blocked thread, and every wait is
//! cancel-safe: dropping a waiting future loses no byte and no wake-up, so the call's
//! deadline/cancel race may drop a stage mid-wait. This module must not grow past its capacity
//! whatever the two ends do, and must not know who reads or writes (guest, native pump).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Bytes a pipe between two stages holds (Linux's default pipe size).
pub const PIPE_CAPACITY: usize = 64 * 1024;

/// The reading end is gone: nothing written now can ever be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("broken pipe: the next stage stopped reading")]
pub struct BrokenPipe;

/// What a reader would get now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadReady {
    /// This many bytes can be read at once.
    Data(usize),
    /// The writer is gone and everything it wrote was read.
    Eof,
    /// Nothing yet; a read would wait.
    Empty,
}

#[derive(Debug)]
struct State {
    buf: VecDeque<u8>,
    /// Open reading handles ([`PipeReader::share`] makes more, as a shell's children share one
    /// descriptor); the pipe is broken when the last one goes.
    readers: usize,
    /// Open writing handles; end-of-file when the last one goes.
    writers: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    capacity: usize,
    /// Wakes the reader: bytes arrived or the writer left.
    to_reader: Notify,
    /// Wakes the writer: room was made or the reader left.
    to_writer: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A new pipe holding at most `capacity` bytes (at least 1).
pub fn pipe(capacity: usize) -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
        }),
        capacity: capacity.max(1),
        to_reader: Notify::new(),
        to_writer: Notify::new(),
    });
    (
        PipeWriter {
            shared: Arc::clone(&shared),
        },
        PipeReader { shared },
    )
}

/// The reading end of a [`pipe`]. Dropping it breaks the pipe for the writer.
#[derive(Debug)]
pub struct PipeReader {
    shared: Arc<Shared>,
}

impl PipeReader {
    /// What a read would get now, without waiting.
    pub fn ready(&self) -> ReadReady {
        let state = self.shared.lock();
        match (state.buf.len(), state.writers) {
            (0, w) if w > 0 => ReadReady::Empty,
            (0, _) => ReadReady::Eof,
            (n, _) => ReadReady::Data(n),
        }
    }

    /// Waits until there is something to read or the writer is gone; returns the bytes
    /// available (0: end of file). Cancel-safe.
    pub async fn readable(&self) -> usize {
        loop {
            match self.ready() {
                ReadReady::Data(n) => return n,
                ReadReady::Eof => return 0,
                ReadReady::Empty => self.shared.to_reader.notified().await,
            }
        }
    }

    /// Moves up to `dest.len()` buffered bytes into `dest` without waiting; 0 when nothing is
    /// buffered (see [`ready`](Self::ready) to tell end-of-file from empty).
    pub fn try_read(&self, dest: &mut [u8]) -> usize {
        let mut state = self.shared.lock();
        let n = dest.len().min(state.buf.len());
        if n == 0 {
            return 0;
        }
        let (front, back) = state.buf.as_slices();
        let from_front = n.min(front.len());
        dest[..from_front].copy_from_slice(&front[..from_front]);
        dest[from_front..n].copy_from_slice(&back[..n - from_front]);
        state.buf.drain(..n);
        drop(state);
        self.shared.to_writer.notify_one();
        n
    }

    /// Another handle on this reading end, as a shell's commands share one stdin: the bytes
    /// one handle reads are gone for the others, and the writer sees a broken pipe only once
    /// every handle is gone. Handles must not read at the same time (a shell's do not).
    pub fn share(&self) -> Self {
        self.shared.lock().readers += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Reads at least one byte into `dest` (waiting for it), or returns 0 at end of file or
    /// for an empty `dest`. Cancel-safe: bytes are only taken once this returns.
    pub async fn read(&self, dest: &mut [u8]) -> usize {
        if dest.is_empty() || self.readable().await == 0 {
            return 0;
        }
        self.try_read(dest)
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.readers = state.readers.saturating_sub(1);
        if state.readers > 0 {
            return;
        }
        // Nobody will read these: free them now, not when the writer ends.
        state.buf = VecDeque::new();
        drop(state);
        self.shared.to_writer.notify_waiters();
        self.shared.to_writer.notify_one();
    }
}

/// The writing end of a [`pipe`]. Dropping it is end-of-file for the reader.
#[derive(Debug)]
pub struct PipeWriter {
    shared: Arc<Shared>,
}

impl PipeWriter {
    /// Another handle on this writing end, as a shell's commands share one stdout: the reader
    /// sees end-of-file only once every handle is gone.
    pub fn share(&self) -> Self {
        self.shared.lock().writers += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Bytes that can be written now without waiting.
    ///
    /// # Errors
    /// [`BrokenPipe`] when the reader is gone.
    pub fn room(&self) -> Result<usize, BrokenPipe> {
        let state = self.shared.lock();
        if state.readers == 0 {
            return Err(BrokenPipe);
        }
        Ok(self.shared.capacity.saturating_sub(state.buf.len()))
    }

    /// Waits until at least one byte can be written; returns the room. Cancel-safe.
    ///
    /// # Errors
    /// [`BrokenPipe`] when the reader is gone (at once, even if the pipe is full).
    pub async fn writable(&self) -> Result<usize, BrokenPipe> {
        loop {
            match self.room()? {
                0 => self.shared.to_writer.notified().await,
                n => return Ok(n),
            }
        }
    }

    /// Writes as much of `src` as fits now, without waiting (0 when the pipe is full).
    ///
    /// # Errors
    /// [`BrokenPipe`] when the reader is gone.
    pub fn try_write(&self, src: &[u8]) -> Result<usize, BrokenPipe> {
        let mut state = self.shared.lock();
        if state.readers == 0 {
            return Err(BrokenPipe);
        }
        let n = src
            .len()
            .min(self.shared.capacity.saturating_sub(state.buf.len()));
        if n == 0 {
            return Ok(0);
        }
        if state.buf.capacity() == 0 {
            state.buf.reserve_exact(self.shared.capacity);
        }
        state.buf.extend(&src[..n]);
        drop(state);
        self.shared.to_reader.notify_one();
        Ok(n)
    }

    /// Writes all of `src`, waiting for room as often as needed.
    ///
    /// # Errors
    /// [`BrokenPipe`] when the reader goes away first (some of `src` may have been written).
    pub async fn write_all(&self, mut src: &[u8]) -> Result<(), BrokenPipe> {
        while !src.is_empty() {
            self.writable().await?;
            let n = self.try_write(src)?;
            src = &src[n..];
        }
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.writers = state.writers.saturating_sub(1);
        if state.writers > 0 {
            return;
        }
        drop(state);
        self.shared.to_reader.notify_waiters();
        self.shared.to_reader.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether `f` is still waiting after the runtime had the chance to run everything else.
    async fn still_waiting<F: std::future::Future>(f: F) -> bool {
        tokio::time::timeout(Duration::from_millis(20), f)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn bytes_pass_in_order_and_eof_follows_the_writer() {
        let (w, r) = pipe(8);
        assert_eq!(r.ready(), ReadReady::Empty);
        assert_eq!(w.try_write(b"hello").unwrap(), 5);
        assert_eq!(r.ready(), ReadReady::Data(5));
        let mut buf = [0u8; 3];
        assert_eq!(r.read(&mut buf).await, 3);
        assert_eq!(&buf, b"hel");
        drop(w);
        assert_eq!(
            r.ready(),
            ReadReady::Data(2),
            "buffered bytes outlive the writer"
        );
        assert_eq!(r.read(&mut buf).await, 2);
        assert_eq!(&buf[..2], b"lo");
        assert_eq!(r.ready(), ReadReady::Eof);
        assert_eq!(r.read(&mut buf).await, 0);
    }

    #[tokio::test]
    async fn a_full_pipe_holds_no_more_than_its_capacity_and_the_writer_waits() {
        let (w, r) = pipe(4);
        assert_eq!(w.try_write(b"abcdef").unwrap(), 4, "cut at the capacity");
        assert_eq!(w.try_write(b"x").unwrap(), 0);
        assert_eq!(w.room().unwrap(), 0);
        assert!(
            still_waiting(w.writable()).await,
            "a full pipe makes the writer wait"
        );
        let mut buf = [0u8; 1];
        r.try_read(&mut buf);
        assert_eq!(w.writable().await.unwrap(), 1, "reading makes room");
        // write_all completes only as the reader drains.
        let writer = tokio::spawn(async move {
            w.write_all(&[7u8; 100]).await.unwrap();
        });
        let mut got = 0;
        let mut chunk = [0u8; 3];
        loop {
            let n = r.read(&mut chunk).await;
            if n == 0 {
                break;
            }
            assert!(
                r.shared.lock().buf.len() <= 4,
                "never more than the capacity"
            );
            got += n;
        }
        writer.await.unwrap();
        assert_eq!(got, 3 + 100);
    }

    #[tokio::test]
    async fn an_empty_pipe_makes_the_reader_wait_until_bytes_or_eof() {
        let (w, r) = pipe(4);
        assert!(still_waiting(r.readable()).await);
        w.try_write(b"a").unwrap();
        assert_eq!(r.readable().await, 1);
        let (w2, r2) = pipe(4);
        let waiter = tokio::spawn(async move { r2.readable().await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(w2);
        assert_eq!(
            waiter.await.unwrap(),
            0,
            "the writer's end wakes the reader"
        );
    }

    #[tokio::test]
    async fn a_gone_reader_breaks_the_pipe_at_once_and_frees_the_buffer() {
        let (w, r) = pipe(4);
        w.try_write(b"abcd").unwrap();
        let waiter = tokio::spawn(async move {
            let e = w.write_all(b"more").await;
            (e, w)
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let shared = Arc::clone(&r.shared);
        drop(r);
        let (e, w) = waiter.await.unwrap();
        assert_eq!(
            e,
            Err(BrokenPipe),
            "a writer waiting on a full pipe is woken"
        );
        assert_eq!(w.try_write(b"x"), Err(BrokenPipe));
        assert_eq!(w.room(), Err(BrokenPipe));
        assert_eq!(
            shared.lock().buf.capacity(),
            0,
            "nothing is kept for nobody"
        );
    }

    #[tokio::test]
    async fn dropping_a_waiting_read_loses_nothing() {
        let (w, r) = pipe(4);
        assert!(still_waiting(r.read(&mut [0u8; 4])).await);
        w.try_write(b"ok").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).await, 2);
        assert_eq!(&buf[..2], b"ok");
    }
}
