//! What joins the stages of a call: pipelines without a shell, `a | b | c` as a list of
//! allowlisted commands (a single command is a pipeline of one, for which the plumbing is
//! empty).
//!
//! The stages run at the same time, each stage's stdout joined to the next one's stdin by a
//! bounded in-memory pipe ([`crate::runner::pipe`], [`PIPE_CAPACITY`] bytes) with
//! back-pressure both ways, so a pipeline holds at most stages × capacity in flight whatever
//! flows through it. A stage that stops reading (it exited, or closed stdin) ends its writer as
//! a shell does: the writer's next write stops it with exit code 141 (SIGPIPE). The first
//! stage reads the request's stdin; only the last stage's stdout is the reply's.
//!
//! All stages share one deadline (`timeout_ms`, from the start of the call), one cancellation
//! and the call's write budget ([`crate::limits::write_pool::WritePool`]). As in a shell without
//! `pipefail`, a non-zero exit stops nothing and the call's exit code is the last stage's. A
//! stage stopped by a limit, the deadline or a cancellation stops every other stage ([`Stop`]):
//! the call ends with the first such stage's error, and a stage stopped because of it records
//! that error's code with a message saying so.
//!
//! Pure apart from the pipes and the cancellation token: nothing here runs or records.

use super::check::{Checked, Shape};
use super::reply::in_stage;
use crate::error::{ErrorCode, RunError};
use crate::outcome::{Outcome, Termination};
use crate::runner::Input;
use crate::runner::pipe::{PipeWriter, pipe};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use crate::runner::pipe::PIPE_CAPACITY;

/// The streams of one stage, joined to its neighbours.
pub(super) struct StageIo {
    /// The request's stdin (first stage) or the pipe from the stage before.
    pub stdin: Input,
    /// The pipe to the next stage; `None` for the last, whose stdout is the reply's.
    pub stdout: Option<PipeWriter>,
}

/// Joins `stages` by pipes: the first reads its own `stdin` (the request's), each other one the
/// stage before.
pub(super) fn plumb(stages: &[Checked<'_>]) -> Vec<StageIo> {
    let stdin = stages.first().map(|c| c.stdin.clone()).unwrap_or_default();
    join(stages.len(), stdin)
}

/// `n` stages joined by pipes, the first reading `stdin`.
fn join(n: usize, stdin: bytes::Bytes) -> Vec<StageIo> {
    let mut ios = Vec::with_capacity(n);
    let mut next = Input::Bytes(stdin);
    for i in 0..n {
        let (stdin, stdout) = if i + 1 < n {
            let (w, r) = pipe(PIPE_CAPACITY);
            (std::mem::replace(&mut next, Input::Pipe(r)), Some(w))
        } else {
            let none = Input::Bytes(bytes::Bytes::new());
            (std::mem::replace(&mut next, none), None)
        };
        ios.push(StageIo { stdin, stdout });
    }
    ios
}

/// When a pipeline's time is up: `timeout_ms` from now (a single command's own limit is its
/// deadline).
pub(super) fn deadline(shape: Shape, timeout_ms: u64) -> Option<Instant> {
    (shape == Shape::Pipeline).then(|| Instant::now() + Duration::from_millis(timeout_ms))
}

/// Fits stage `c` into the pipeline's `deadline`: its limit becomes the time left.
pub(super) fn fit_deadline(c: &mut Checked<'_>, deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        c.limits.timeout_ms = c.limits.timeout_ms.min(left_ms.max(1));
    }
}

/// One stop for every stage of a call: the first stage stopped (by a limit, the deadline, a
/// failure or the client) stops the others.
pub(super) struct Stop {
    shape: Shape,
    client: CancellationToken,
    stages: CancellationToken,
    first: Mutex<Option<(usize, RunError)>>,
}

impl Stop {
    /// A stop under the client's cancellation `client`.
    pub fn new(shape: Shape, client: &CancellationToken) -> Self {
        Self {
            shape,
            client: client.clone(),
            stages: client.child_token(),
            first: Mutex::new(None),
        }
    }

    /// The cancellation every stage runs under (fired by the client or by [`settle`](Self::settle)).
    pub fn token(&self) -> &CancellationToken {
        &self.stages
    }

    /// Stops every stage (the call cannot go on, e.g. its audit log failed).
    pub fn stop_all(&self) {
        self.stages.cancel();
    }

    /// Stage `i` (`command`) ended with `outcome`. The first stage stopped stops the others;
    /// a stage cancelled because of it gets that stop's code and a message naming it.
    pub fn settle(&self, i: usize, command: &str, outcome: &mut Outcome) {
        let Termination::Stopped(e) = &outcome.termination else {
            return;
        };
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        match &*first {
            None => {
                *first = Some((i, in_stage(self.shape, i, command, e)));
                drop(first);
                self.stages.cancel();
            }
            Some((_, cause)) if e.code == ErrorCode::Cancelled && !self.client.is_cancelled() => {
                let because = RunError::new(
                    cause.code,
                    format!("stopped with the pipeline: {}", cause.message),
                );
                outcome.termination = Termination::Stopped(because);
            }
            Some(_) => {}
        }
    }

    /// The error the call ends with, if a stage was stopped.
    pub fn error(&self) -> Option<RunError> {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(_, e)| e.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Capture, RunnerKind};

    fn ended(termination: Termination) -> Outcome {
        Outcome {
            termination,
            stdout: Capture::new(0).finish(),
            stderr: Capture::new(0).finish(),
            duration: Duration::ZERO,
            runner: RunnerKind::Wasi,
            processes_killed: None,
            file_writes: None,
        }
    }

    #[test]
    fn the_first_stop_stops_the_others_and_they_say_why() {
        let client = CancellationToken::new();
        let stop = Stop::new(Shape::Pipeline, &client);
        let mut exited = ended(Termination::Exited(141));
        stop.settle(0, "yes", &mut exited);
        assert!(!stop.token().is_cancelled(), "an exit stops nothing");
        let mut timed_out = ended(Termination::Stopped(RunError::new(
            ErrorCode::Timeout,
            "ran past",
        )));
        stop.settle(2, "wc", &mut timed_out);
        assert!(stop.token().is_cancelled());
        assert!(
            !client.is_cancelled(),
            "the client's token is not ours to fire"
        );
        let mut cancelled = ended(Termination::Stopped(RunError::new(
            ErrorCode::Cancelled,
            "the call was cancelled",
        )));
        stop.settle(1, "cat", &mut cancelled);
        let Termination::Stopped(e) = &cancelled.termination else {
            panic!("still stopped")
        };
        assert_eq!(e.code, ErrorCode::Timeout);
        assert_eq!(
            e.message,
            "stopped with the pipeline: stage 3 (wc): ran past"
        );
        assert_eq!(stop.error().unwrap().message, "stage 3 (wc): ran past");
    }

    #[test]
    fn a_client_cancellation_stays_a_cancellation() {
        let client = CancellationToken::new();
        let stop = Stop::new(Shape::Pipeline, &client);
        client.cancel();
        assert!(stop.token().is_cancelled());
        for i in 0..2 {
            let mut o = ended(Termination::Stopped(RunError::new(
                ErrorCode::Cancelled,
                "the call was cancelled",
            )));
            stop.settle(i, "cat", &mut o);
            assert_eq!(o.error_code(), Some(ErrorCode::Cancelled));
        }
        assert_eq!(stop.error().unwrap().code, ErrorCode::Cancelled);
    }

    #[tokio::test]
    async fn stages_are_joined_in_order_and_only_the_first_reads_the_request() {
        let ios = join(3, bytes::Bytes::from_static(b"request"));
        assert!(matches!(ios[0].stdin, Input::Bytes(_)));
        assert!(matches!(ios[1].stdin, Input::Pipe(_)));
        assert!(matches!(ios[2].stdin, Input::Pipe(_)));
        assert!(ios[0].stdout.is_some() && ios[1].stdout.is_some());
        assert!(
            ios[2].stdout.is_none(),
            "the last stage's stdout is the reply's"
        );
        ios[0].stdout.as_ref().unwrap().try_write(b"x").unwrap();
        let Input::Pipe(r) = &ios[1].stdin else {
            unreachable!()
        };
        assert_eq!(r.readable().await, 1, "stage 1 writes into stage 2's stdin");
        let single = join(1, bytes::Bytes::from_static(b"request"));
        assert!(matches!(&single[0].stdin, Input::Bytes(b) if b == "request"));
        assert!(single[0].stdout.is_none());
    }
}
