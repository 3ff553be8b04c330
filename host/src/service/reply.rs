//! The reply of a call, shaped from its stages' outcomes: a single command's reply is its own
//! outcome; a pipeline's carries every stage's result, their joined stderr and the file writes
//! of the whole call. Also the replies for calls that could not be recorded.
//!
//! Pure: nothing here records, runs or waits.

use super::CallReply;
use super::check::Shape;
use crate::api::{ErrorEnvelope, PartialOutput, RunOutput, StageResult};
use crate::audit::AuditError;
use crate::error::{ErrorCode, RunError};
use crate::outcome::{FileWrites, Outcome, Termination};
use std::time::{Duration, Instant};

/// The error of stage `i` as the client sees it: a pipeline's says which stage it was.
pub(super) fn in_stage(shape: Shape, i: usize, command: &str, e: &RunError) -> RunError {
    match shape {
        Shape::Single => e.clone(),
        Shape::Pipeline => RunError {
            code: e.code,
            message: format!("stage {} ({command}): {}", i + 1, e.message),
            hint: e.hint.clone(),
        },
    }
}

/// The error recorded for a stage that did not run because of `e` (another stage's).
pub(super) fn not_run(e: &RunError) -> RunError {
    RunError::new(e.code, format!("not run: {}", e.message))
}

/// The reply when the audit log cannot record the call: nothing was run.
pub(super) fn unavailable(request_id: &str, e: &AuditError) -> CallReply {
    let err = RunError::new(
        ErrorCode::AuditUnavailable,
        format!("the audit log cannot be written ({e}); nothing was run"),
    )
    .with_hint("the operator must fix the audit directory; retry later");
    CallReply::Failed(ErrorEnvelope::new(request_id, &err, None))
}

/// The reply for a command that ran but whose end record could not be written (the disk
/// filled up, the directory vanished): it says truthfully that it ran and what it did.
pub(super) fn ran_unrecorded(request_id: &str, e: &AuditError, outcome: &Outcome) -> CallReply {
    let how = match &outcome.termination {
        Termination::Exited(code) => format!("exited with {code}"),
        Termination::Stopped(stop) => format!("was stopped: {}", stop.code.as_str()),
    };
    let err = RunError::new(
        ErrorCode::AuditUnavailable,
        format!("the command ran and {how}, but the audit log cannot record its end ({e})"),
    )
    .with_hint("the operator must fix the audit directory; check the workspace before retrying");
    CallReply::Failed(ErrorEnvelope::new(
        request_id,
        &err,
        Some(PartialOutput::from_outcome(outcome)),
    ))
}

/// A single command's reply: its exit, or its error with what it printed when a limit or a
/// cancellation stopped it.
fn single(request_id: &str, outcome: &Outcome) -> CallReply {
    match &outcome.termination {
        Termination::Exited(code) => {
            CallReply::Ran(RunOutput::from_outcome(request_id, *code, outcome))
        }
        Termination::Stopped(e) => {
            let partial = matches!(
                e.code,
                ErrorCode::Timeout
                    | ErrorCode::CpuLimit
                    | ErrorCode::MemoryLimit
                    | ErrorCode::Cancelled
                    | ErrorCode::CommandFailed
                    | ErrorCode::WriteLimit
            )
            .then(|| PartialOutput::from_outcome(outcome));
            CallReply::Failed(ErrorEnvelope::new(request_id, e, partial))
        }
    }
}

/// What the stages add up to, for the reply.
pub(super) struct Tally {
    shape: Shape,
    started: Instant,
    stderr: StderrJoin,
    results: Vec<StageResult>,
    writes: Option<FileWrites>,
}

impl Tally {
    /// An empty tally; a pipeline's joined stderr is capped at `stderr_cap` bytes.
    pub fn new(shape: Shape, stderr_cap: u64, stages: usize) -> Self {
        Self {
            shape,
            started: Instant::now(),
            stderr: StderrJoin::new(stderr_cap),
            results: Vec::with_capacity(stages),
            writes: None,
        }
    }

    /// Adds the outcome of stage `command`.
    pub fn add(&mut self, command: &str, outcome: &Outcome) {
        if let Some(w) = outcome.file_writes {
            let sum = self.writes.get_or_insert_with(FileWrites::default);
            sum.bytes = sum.bytes.saturating_add(w.bytes);
            sum.disk_full |= w.disk_full;
        }
        if self.shape == Shape::Pipeline {
            self.stderr.push(outcome);
            self.results.push(StageResult::of(command, outcome));
        }
    }

    /// The reply of a call whose last stage ended by itself with `outcome`.
    pub fn ran(self, request_id: &str, outcome: &Outcome) -> CallReply {
        if self.shape == Shape::Single {
            return single(request_id, outcome);
        }
        CallReply::Ran(RunOutput {
            stderr: self.stderr.text(),
            stderr_truncated: self.stderr.truncated,
            duration_ms: millis(self.started.elapsed()),
            stages: Some(self.results),
            bytes_written: self.writes.map(|w| w.bytes),
            disk_full: self.writes.is_some_and(|w| w.disk_full),
            ..RunOutput::from_outcome(request_id, outcome.exit_code().unwrap_or(0), outcome)
        })
    }

    /// The reply of a call a stage stopped with `e`; `outcome` is the last stage's, whose
    /// stdout is the reply's.
    pub fn stopped(self, request_id: &str, outcome: &Outcome, e: &RunError) -> CallReply {
        if self.shape == Shape::Single {
            return single(request_id, outcome);
        }
        let partial = PartialOutput {
            stderr: self.stderr.text(),
            stderr_truncated: self.stderr.truncated,
            duration_ms: millis(self.started.elapsed()),
            stages: Some(self.results),
            bytes_written: self.writes.map(|w| w.bytes),
            disk_full: self.writes.is_some_and(|w| w.disk_full),
            ..PartialOutput::from_outcome(outcome)
        };
        CallReply::Failed(ErrorEnvelope::new(request_id, e, Some(partial)))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every stage's stderr in stage order, bounded by one stream's cap: what a terminal running the
/// pipeline would have shown, since each stage's messages name their command.
struct StderrJoin {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl StderrJoin {
    fn new(cap: u64) -> Self {
        Self {
            bytes: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            truncated: false,
        }
    }

    fn push(&mut self, outcome: &Outcome) {
        let room = self.cap.saturating_sub(self.bytes.len());
        let kept = &outcome.stderr.bytes[..outcome.stderr.bytes.len().min(room)];
        self.bytes.extend_from_slice(kept);
        self.truncated |= outcome.stderr.truncated || kept.len() < outcome.stderr.bytes.len();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Capture, RunnerKind};

    fn outcome_with_stderr(text: &[u8], cap: u64) -> Outcome {
        let err = Capture::new(cap);
        err.push(text);
        Outcome {
            termination: Termination::Exited(0),
            stdout: Capture::new(0).finish(),
            stderr: err.finish(),
            duration: Duration::from_millis(1),
            runner: RunnerKind::Wasi,
            processes_killed: None,
            file_writes: None,
        }
    }

    #[test]
    fn errors_name_their_stage_and_keep_code_and_hint() {
        let e = RunError::new(ErrorCode::Timeout, "timed out").with_hint("h");
        let s = in_stage(Shape::Pipeline, 2, "sort", &e);
        assert_eq!(s.code, ErrorCode::Timeout);
        assert_eq!(s.message, "stage 3 (sort): timed out");
        assert_eq!(s.hint.as_deref(), Some("h"));
        assert_eq!(in_stage(Shape::Single, 0, "sort", &e), e);
    }

    #[test]
    fn joined_stderr_is_bounded_and_says_when_it_was_cut() {
        let mut j = StderrJoin::new(10);
        j.push(&outcome_with_stderr(b"grep: a\n", 100));
        assert!(!j.truncated);
        j.push(&outcome_with_stderr(b"sort: b\n", 100));
        assert_eq!(j.text(), "grep: a\nso");
        assert!(j.truncated);
        let mut j = StderrJoin::new(100);
        j.push(&outcome_with_stderr(b"0123456789", 4));
        assert_eq!(j.text(), "0123");
        assert!(j.truncated, "a stage's own cut carries over");
    }

    #[test]
    fn a_single_command_is_replied_to_as_itself() {
        let mut o = outcome_with_stderr(b"own stderr, longer than the cap", 100);
        let tally = Tally::new(Shape::Single, 3, 1);
        let CallReply::Ran(out) = tally.ran("rid", &o) else {
            panic!("an exit is a reply")
        };
        assert_eq!(out.stderr, "own stderr, longer than the cap");
        assert!(out.stages.is_none());
        o.termination = Termination::Stopped(RunError::new(ErrorCode::Cancelled, "c"));
        let e = RunError::new(ErrorCode::Cancelled, "c");
        let CallReply::Failed(env) = Tally::new(Shape::Single, 3, 1).stopped("rid", &o, &e) else {
            panic!("a stop is an error")
        };
        assert_eq!(env.error.message, "c");
        assert!(env.error.partial.is_some_and(|p| p.stages.is_none()));
    }
}
