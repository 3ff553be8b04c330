//! The guest's stdin and stdout when they are pipes between the stages of a pipeline.
//!
//! A read from a stdin pipe awaits bytes (or the end of the stage before); a write to a stdout
//! pipe awaits room. Both waits are futures in the async host call, so the call's deadline or
//! cancellation drops them and nothing blocks a host thread. A write to a pipe whose reader is
//! gone stops the guest at once with [`KilledBySigpipe`], the way SIGPIPE ends a GNU tool: no
//! "Broken pipe" message, no further work, exit code [`crate::runner::SIGPIPE_EXIT`].
//! [`poll_ready`] and [`changed`] keep `poll_oneoff` truthful for pipes.
//!
//! This module must not buffer: the bytes go from the pipe straight into guest memory and back.

use super::table::{Descriptor, FdTable};
use super::{GuestWasi, Result};
use crate::runner::pipe::{BrokenPipe, ReadReady};
use crate::runner::{Input, Output};
use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::{GuestMemory, GuestPtr};

/// Why a guest was stopped: it wrote to a pipe nobody reads any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped by a broken pipe (SIGPIPE): the next stage stopped reading")]
pub struct KilledBySigpipe;

/// The host error that stops a guest writing to a broken pipe.
fn sigpipe(_: BrokenPipe) -> types::Error {
    types::Error::trap(wasmtime::Error::new(KilledBySigpipe))
}

impl GuestWasi {
    /// Before `fd_read` on `fd`: when it is a stdin pipe, waits until a read would not wait.
    pub(super) async fn stdin_wait(&self, fd: u32) {
        if let (Ok(Descriptor::Stdin), Input::Pipe(reader)) = (self.fds.get(fd), &self.stdin) {
            reader.readable().await;
        }
    }

    /// Before `fd_write` on `fd`: when it is a stdout pipe, waits for room.
    ///
    /// # Errors
    /// The [`KilledBySigpipe`] trap when the pipe's reader is gone.
    pub(super) async fn stdout_wait(&self, fd: u32) -> Result<()> {
        if let Ok(Descriptor::Stdout(Output::Pipe(out))) = self.fds.get(fd) {
            out.pipe.writable().await.map_err(sigpipe)?;
        }
        Ok(())
    }

    /// Reads stdin into `buf` without waiting ([`stdin_wait`](Self::stdin_wait) came first): the
    /// request's bytes, or what the stage before has written so far (0 only at its end).
    pub(super) fn read_stdin(
        &mut self,
        memory: &mut GuestMemory<'_>,
        buf: GuestPtr<[u8]>,
    ) -> Result<types::Size> {
        match &self.stdin {
            Input::Bytes(bytes) => {
                let rest = bytes.get(self.stdin_pos..).unwrap_or_default();
                let n = rest.len().min(buf.len() as usize);
                let n32 = u32::try_from(n)?;
                if let Some(dest) = buf.get_range(0..n32) {
                    // Straight from the request's bytes into guest memory: one copy.
                    memory.copy_from_slice(&rest[..n], dest)?;
                }
                self.stdin_pos += n;
                Ok(n32)
            }
            Input::Pipe(reader) => {
                let n = match memory.as_slice_mut(buf)? {
                    Some(dest) => reader.try_read(dest),
                    None => {
                        // Shared memory (runbox's guests have none): through a bounded buffer.
                        let mut host = vec![0u8; buf.len() as usize];
                        let n = reader.try_read(&mut host);
                        if let Some(dest) = buf.get_range(0..u32::try_from(n)?) {
                            memory.copy_from_slice(&host[..n], dest)?;
                        }
                        n
                    }
                };
                Ok(u32::try_from(n)?)
            }
        }
    }
}

/// Writes `bytes` to stdout without waiting: all of them into a capture, what fits into a
/// pipe ([`GuestWasi::stdout_wait`] came first, so at least one byte does).
///
/// # Errors
/// The [`KilledBySigpipe`] trap when the pipe's reader is gone.
pub(super) fn write_stdout(out: &Output, bytes: &[u8]) -> Result<usize> {
    match out {
        Output::Capture(c) => {
            c.push(bytes);
            Ok(bytes.len())
        }
        Output::Pipe(p) => p.try_write(bytes).map_err(sigpipe),
    }
}

/// Whether a `poll_oneoff` subscription on `fd` is ready now: `Some((error, nbytes))`, or
/// `None` when it would wait (an empty stdin pipe, a full stdout pipe).
pub(super) fn poll_ready(
    fds: &FdTable,
    stdin: &Input,
    stdin_pos: usize,
    fd: u32,
    read: bool,
) -> Option<(Errno, u64)> {
    match fds.get(fd) {
        Err(e) => Some((e, 0)),
        Ok(Descriptor::Dir(_)) => Some((Errno::Badf, 0)),
        Ok(Descriptor::Stdin) if read => match stdin {
            Input::Bytes(b) => Some((Errno::Success, b.len().saturating_sub(stdin_pos) as u64)),
            Input::Pipe(r) => match r.ready() {
                ReadReady::Data(n) => Some((Errno::Success, n as u64)),
                ReadReady::Eof => Some((Errno::Success, 0)),
                ReadReady::Empty => None,
            },
        },
        Ok(Descriptor::Stdout(Output::Pipe(p))) if !read => match p.pipe.room() {
            Ok(0) => None,
            Ok(n) => Some((Errno::Success, n as u64)),
            Err(BrokenPipe) => Some((Errno::Pipe, 0)),
        },
        Ok(_) => Some((Errno::Success, 1)),
    }
}

/// Completes when one of the `waiting` subscriptions (`(fd, read)`, each of which
/// [`poll_ready`] found not ready) may have become ready; never, when none is a pipe.
pub(super) async fn changed(fds: &FdTable, stdin: &Input, waiting: &[(u32, bool)]) {
    let reader = match stdin {
        Input::Pipe(r) if waiting.iter().any(|(_, read)| *read) => Some(r),
        _ => None,
    };
    let writer = waiting.iter().find_map(|&(fd, read)| match fds.get(fd) {
        Ok(Descriptor::Stdout(Output::Pipe(p))) if !read => Some(&p.pipe),
        _ => None,
    });
    tokio::select! {
        _ = async { reader?.readable().await; Some(()) }, if reader.is_some() => {}
        _ = async { writer?.writable().await.ok() }, if writer.is_some() => {}
        else => std::future::pending().await,
    }
}
