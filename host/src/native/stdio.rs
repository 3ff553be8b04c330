//! A native child's standard streams: real OS pipes (or a memfd for stdin known in advance),
//! pumped by the server from and to the call's captures and the in-memory pipes between the
//! stages of a pipeline.
//!
//! One task per stream, each with one bounded buffer ([`PUMP_BUFFER`]); back-pressure passes
//! through: a pump waits for room in the next stage's pipe before it reads more from the child,
//! so the child blocks in `write` on its full OS pipe. When the next stage stops reading, the
//! stdout pump says so once ([`Pumps::broken`]) and from then on reads and discards what the
//! child still writes, so the child neither blocks nor sees EPIPE (no "Broken pipe" message)
//! until the runner kills it — a SIGPIPE the kernel would not deliver itself, since the child
//! is PID 1 of its namespace and ignores it. The stdin pump ends when the stage before ends
//! (the child then reads EOF) or the child stops reading (EPIPE on the server's end, which
//! ignores SIGPIPE); dropping its reader then breaks the pipe for the stage before.
//!
//! This module must not buffer more than [`PUMP_BUFFER`] per stream, and must not outlive the
//! child: the runner aborts or awaits every pump before the call ends ([`Pumps::finish`]).

use super::plan::{pipe, stdin_fd};
use crate::outcome::Capture;
use crate::runner::{Input, Output, PipeOut};
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bytes a pump moves at a time.
const PUMP_BUFFER: usize = 64 * 1024;

/// The child's ends of its three streams, to be put on fds 0–2.
pub(super) struct ChildEnds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The server's side: the tasks pumping the child's streams.
pub(super) struct Pumps {
    stdin: Option<JoinHandle<()>>,
    stdout: JoinHandle<()>,
    stderr: JoinHandle<()>,
    /// Whether stdout feeds the next stage (then it is drained to its end, not cut by a grace).
    piped: bool,
    /// Fires when the next stage stopped reading the child's stdout.
    broken: Option<oneshot::Receiver<()>>,
}

/// Makes the child's streams and starts their pumps.
///
/// # Errors
/// The OS error of a pipe or memfd that could not be made (nothing is left running).
pub(super) fn connect(
    stdin: Input,
    stdout: Output,
    stderr: Capture,
) -> std::io::Result<(ChildEnds, Pumps)> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_end, stdin_pump) = match stdin {
        Input::Bytes(bytes) => (stdin_fd(&bytes)?, None),
        Input::Pipe(reader) => {
            let (in_r, in_w) = pipe()?;
            let tx = tokio::net::unix::pipe::Sender::from_owned_fd(in_w)?;
            (in_r, Some(tokio::spawn(pump_in(reader, tx))))
        }
    };
    let (piped, broken, stdout_pump) = match stdout {
        Output::Capture(c) => (false, None, spawn_into_capture(out_r, c)),
        Output::Pipe(out) => {
            let (tell, broken) = oneshot::channel();
            (true, Some(broken), spawn_into_pipe(out_r, out, tell))
        }
    };
    Ok((
        ChildEnds {
            stdin: stdin_end,
            stdout: out_w,
            stderr: err_w,
        },
        Pumps {
            stdin: stdin_pump,
            stdout: stdout_pump,
            stderr: spawn_into_capture(err_r, stderr),
            piped,
            broken,
        },
    ))
}

impl Pumps {
    /// Completes when the next stage stopped reading the child's stdout; never when stdout is
    /// not a pipe or the pump ended otherwise. Cancel-safe.
    pub async fn broken(&mut self) {
        let fired = match self.broken.as_mut() {
            Some(rx) => rx.await.is_ok(),
            None => false,
        };
        self.broken = None;
        if !fired {
            std::future::pending::<()>().await;
        }
    }

    /// The child's tree is gone. Its stdin is read by nobody now: that pump ends at once (the
    /// stage before sees a broken pipe). A stopped run's output is cut; a run that ended by
    /// itself keeps what is left in its pipes: into a pipe all of it (bounded by the next stage,
    /// which ends by the same deadline), into a capture what arrives within `grace`.
    pub async fn finish(mut self, stopped: bool, grace: Duration) {
        if let Some(stdin) = &self.stdin {
            stdin.abort();
        }
        let stdout_grace = if stopped {
            Some(Duration::ZERO)
        } else if self.piped {
            None
        } else {
            Some(grace)
        };
        drain(&mut self.stdout, stdout_grace).await;
        drain(
            &mut self.stderr,
            Some(if stopped { Duration::ZERO } else { grace }),
        )
        .await;
    }
}

impl Drop for Pumps {
    /// A child that never started, or a run dropped mid-way: no pump outlives it.
    fn drop(&mut self) {
        if let Some(stdin) = &self.stdin {
            stdin.abort();
        }
        self.stdout.abort();
        self.stderr.abort();
    }
}

/// Awaits a pump, for at most `grace` (`None`: to its end), then aborts it.
async fn drain(pump: &mut JoinHandle<()>, grace: Option<Duration>) {
    match grace {
        None => {
            let _ = (&mut *pump).await;
        }
        Some(g) if g.is_zero() => {}
        Some(g) => {
            let _ = tokio::time::timeout(g, &mut *pump).await;
        }
    }
    pump.abort();
}

/// The stage before → the child's stdin, until either ends.
async fn pump_in(reader: crate::runner::pipe::PipeReader, mut tx: tokio::net::unix::pipe::Sender) {
    let mut buf = vec![0u8; PUMP_BUFFER];
    loop {
        let n = reader.read(&mut buf).await;
        if n == 0 || tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// The child's stream → a capture, until EOF.
fn spawn_into_capture(fd: OwnedFd, capture: Capture) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
            return;
        };
        let mut buf = vec![0u8; PUMP_BUFFER];
        while let Ok(n) = rx.read(&mut buf).await {
            if n == 0 {
                break;
            }
            capture.push(&buf[..n]);
        }
    })
}

/// The child's stdout → the next stage, until EOF; once the next stage stopped reading, says
/// so on `broken` and discards the rest.
fn spawn_into_pipe(fd: OwnedFd, out: PipeOut, broken: oneshot::Sender<()>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
            return;
        };
        let mut buf = vec![0u8; PUMP_BUFFER];
        let mut broken = Some(broken);
        while let Ok(n) = rx.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if broken.is_some()
                && out.write_all(&buf[..n]).await.is_err()
                && let Some(tell) = broken.take()
            {
                let _ = tell.send(());
            }
        }
    })
}
