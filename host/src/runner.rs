//! The runner contract: what every runner is given for one command, and the one place that owns
//! what all runners share — output capture, the deadline/cancel race and the TIMEOUT and
//! CANCELLED errors.
//!
//! A [`Runner`] only runs its own kind of program: the WASI runner takes a
//! [`crate::wasi::WasiProgram`], the native runner a [`crate::policy::NativeCommand`], so
//! which runner a program can reach is a fact the compiler checks. A runner starts its program
//! ([`Runner::start`]), waits for it to end by itself ([`Running::wait`]), and then either
//! classifies that end ([`Running::exited`]) or kills and collects what is left
//! ([`Running::stop`]); it also describes its sandbox for the audit record
//! ([`Runner::sandbox`]).
//!
//! [`call`] drives one command through that contract: it makes the bounded [`Capture`]s (stdout
//! only when it is not a [`pipe`] to the next stage of a pipeline), waits for the start (ending it with CANCELLED if the call is cancelled meanwhile, e.g. while a
//! module compiles), then races the run against the deadline (from the end of the start) and the
//! cancellation. Whatever ends the run, the output written so far is kept in the [`Outcome`].
//!
//! This module must not decide whether a command may run (the service's check step does), and
//! must not return while the runner may still have something running: [`Running::stop`] returns
//! only once the program is gone.

use crate::audit::record::SandboxInfo;
use crate::error::{ErrorCode, RunError};
use crate::limits::Limits;
use crate::limits::write_pool::WritePool;
use crate::outcome::{Capture, FileWrites, Outcome, RunnerKind, Termination};
use crate::workspace::{Workspace, WorkspaceDir};
use pipe::{BrokenPipe, PipeReader, PipeWriter};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One command, everything already checked: the input every runner gets.
#[derive(Debug)]
pub struct CallInput<'a, P> {
    /// What runs, in the runner's own terms.
    pub program: &'a P,
    /// `argv`, with the command name as `argv[0]`.
    pub argv: &'a [String],
    /// The workspace.
    pub workspace: &'a Workspace,
    /// The working directory, resolved beneath the workspace.
    pub cwd: &'a WorkspaceDir,
    /// Where stdin comes from: the request's bytes, or the stage before in a pipeline.
    pub stdin: Input,
    /// The next stage's pipe, when stdout goes there instead of into the reply.
    pub stdout_pipe: Option<PipeWriter>,
    /// The call's write budget, shared by the stages of a pipeline running at the same time.
    pub write_pool: WritePool,
    /// Limits in force.
    pub limits: Limits,
    /// When the run's time is up at the latest, whatever `limits.timeout_ms` says: the one
    /// deadline of every stage of a pipeline (`None`: `timeout_ms` from the end of the start).
    pub deadline: Option<Instant>,
    /// Whether the command may write to the workspace (decided once, by the check step).
    pub writable: bool,
    /// Fired when the client cancels or the server shuts down; [`call`] watches it, runners
    /// need not.
    pub cancel: &'a CancellationToken,
    /// Counts output bytes as they are written, for progress reports.
    pub live_output: &'a Arc<AtomicU64>,
}

/// Where a command's stdin comes from.
#[derive(Debug)]
pub enum Input {
    /// Bytes known in advance (a request's `stdin`).
    Bytes(bytes::Bytes),
    /// The stage before, as it writes.
    Pipe(PipeReader),
}

/// A stdout that feeds the next stage of a pipeline: the pipe, and a count and hash of what
/// went through it (for the stage's result and audit record; nothing is kept).
#[derive(Debug)]
pub struct PipeOut {
    /// The next stage's pipe.
    pub pipe: PipeWriter,
    /// What passed through it.
    pub passed: Capture,
}

impl PipeOut {
    /// Writes as much of `src` as fits now (see [`PipeWriter::try_write`]) and counts it.
    ///
    /// # Errors
    /// [`BrokenPipe`] when the next stage stopped reading.
    pub fn try_write(&self, src: &[u8]) -> Result<usize, BrokenPipe> {
        let n = self.pipe.try_write(src)?;
        self.passed.push(&src[..n]);
        Ok(n)
    }

    /// Writes all of `src`, waiting for room, and counts what was written.
    ///
    /// # Errors
    /// [`BrokenPipe`] when the next stage stopped reading.
    pub async fn write_all(&self, mut src: &[u8]) -> Result<(), BrokenPipe> {
        while !src.is_empty() {
            self.pipe.writable().await?;
            let n = self.try_write(src)?;
            src = &src[n..];
        }
        Ok(())
    }
}

/// Where a command's stdout goes.
#[derive(Debug)]
pub enum Output {
    /// Into the reply, bounded.
    Capture(Capture),
    /// Into the next stage of a pipeline.
    Pipe(PipeOut),
}

/// A runner's program's standard streams.
#[derive(Debug)]
pub struct Streams {
    /// stdin.
    pub stdin: Input,
    /// stdout: capped at `limits.stdout_bytes`, or the next stage's pipe.
    pub stdout: Output,
    /// stderr, capped at `limits.stderr_bytes`.
    pub stderr: Capture,
}

/// The exit code of a stage ended by writing to a pipe its reader had left, as a shell reports
/// a process killed by SIGPIPE (128 + 13).
pub const SIGPIPE_EXIT: i32 = 141;

/// What a runner reports about a finished run besides how it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aftermath {
    /// Processes killed when the run was stopped (native: the whole tree).
    pub processes_killed: Option<u32>,
    /// What the program wrote to files, where the runner measures it (WASI).
    pub file_writes: Option<FileWrites>,
}

/// A runner of one kind of program.
pub trait Runner: Sync {
    /// The programs this runner runs.
    type Program: Sync;
    /// One started program.
    type Running<'r>: Running
    where
        Self: 'r;
    /// Which runner this is, for the outcome.
    const KIND: RunnerKind;
    /// What a start may wait for, completing "the call was cancelled while …".
    const WHILE_STARTING: &'static str;
    /// What stopping at the deadline does, completing "the command ran past its N ms limit and …".
    const ON_TIMEOUT: &'static str;

    /// The sandbox `program` gets, for the audit record.
    fn sandbox(&self, program: &Self::Program, limits: Limits, writable: bool) -> SandboxInfo;

    /// Starts the program with `streams` as its standard streams. May wait (a module's first
    /// compile); [`call`] ends the wait when the call is cancelled.
    ///
    /// # Errors
    /// Whatever kept the program from starting (its sandbox, its binary or module).
    fn start<'r>(
        &'r self,
        input: &CallInput<'_, Self::Program>,
        streams: Streams,
    ) -> impl Future<Output = Result<Self::Running<'r>, RunError>> + Send;
}

/// A started program.
pub trait Running: Send {
    /// How the program ended by itself, before classification.
    type Exit: Send;

    /// Waits until the program ends by itself. Must be cancel-safe: [`call`] drops this future
    /// at the deadline or on cancellation and then calls [`stop`](Self::stop).
    fn wait(&mut self) -> impl Future<Output = Self::Exit> + Send;

    /// After [`wait`](Self::wait) returned: collects what is left and says how the run ended.
    /// `deadline` is when the run's time was up.
    fn exited(
        self,
        exit: Self::Exit,
        limits: &Limits,
        deadline: Instant,
    ) -> impl Future<Output = (Termination, Aftermath)> + Send;

    /// After the deadline or a cancellation: kills everything the program started and returns
    /// once it is gone.
    fn stop(self, deadline: Instant) -> impl Future<Output = Aftermath> + Send;
}

/// Why [`call`] stopped waiting for a program.
enum Ended<E> {
    Exited(E),
    TimedOut,
    Cancelled,
}

/// Runs one command on `runner` to its end, timeout, limit or cancellation.
pub async fn call<R: Runner>(runner: &R, mut input: CallInput<'_, R::Program>) -> Outcome {
    let stderr =
        Capture::new(input.limits.stderr_bytes).counting_into(Arc::clone(input.live_output));
    // What a stage hands to the next is not the reply's output: it is counted and hashed, not
    // kept, and not reported as progress.
    let (stdout, stdout_kept) = match input.stdout_pipe.take() {
        Some(pipe) => {
            let passed = Capture::passing_on();
            (
                Output::Pipe(PipeOut {
                    pipe,
                    passed: passed.clone(),
                }),
                passed,
            )
        }
        None => {
            let c = Capture::new(input.limits.stdout_bytes)
                .counting_into(Arc::clone(input.live_output));
            (Output::Capture(c.clone()), c)
        }
    };
    let stdin = std::mem::replace(&mut input.stdin, Input::Bytes(bytes::Bytes::new()));
    let streams = Streams {
        stdin,
        stdout,
        stderr: stderr.clone(),
    };
    let started = std::time::Instant::now();
    // A start that waits (a module's first compile, seconds) must still end, with its end
    // record, when the call is cancelled or the server stops meanwhile. A start that is ready at
    // once wins, so a cancellation is then handled by the race below, after the start.
    let start = tokio::select! {
        biased;
        r = runner.start(&input, streams) => r,
        () = input.cancel.cancelled() => Err(RunError::new(
            ErrorCode::Cancelled,
            format!("the call was cancelled while {}", R::WHILE_STARTING),
        )),
    };
    let (termination, aftermath) = match start {
        Ok(running) => race::<R, _>(running, &input).await,
        Err(e) => (Termination::Stopped(e), Aftermath::default()),
    };
    Outcome {
        termination,
        stdout: stdout_kept.finish(),
        stderr: stderr.finish(),
        duration: started.elapsed(),
        runner: R::KIND,
        processes_killed: aftermath.processes_killed,
        file_writes: aftermath.file_writes,
    }
}

/// The deadline/cancel race of a started program. A cancellation wins over a deadline, and both
/// over an end that is ready at the same moment.
async fn race<R: Runner, G: Running>(
    mut running: G,
    input: &CallInput<'_, R::Program>,
) -> (Termination, Aftermath) {
    let own = Instant::now() + input.limits.timeout();
    let deadline = input.deadline.map_or(own, |shared| shared.min(own));
    let ended = tokio::select! {
        biased;
        () = input.cancel.cancelled() => Ended::Cancelled,
        () = tokio::time::sleep_until(deadline) => Ended::TimedOut,
        exit = running.wait() => Ended::Exited(exit),
    };
    let error = match ended {
        Ended::Exited(exit) => return running.exited(exit, &input.limits, deadline).await,
        Ended::Cancelled => RunError::new(ErrorCode::Cancelled, "the call was cancelled"),
        Ended::TimedOut => RunError::new(
            ErrorCode::Timeout,
            format!(
                "the command ran past its {} ms limit and {}",
                input.limits.timeout_ms,
                R::ON_TIMEOUT
            ),
        )
        .with_hint("pass a larger timeout_ms (up to the policy maximum) or narrow the work"),
    };
    let aftermath = running.stop(deadline).await;
    (Termination::Stopped(error), aftermath)
}

/// The bounded pipes between stages ([`crate::pipe`]), where runners have always found them.
pub use crate::pipe;

#[cfg(test)]
mod tests;
