//! What passes between the stages of a call: pipelines without a shell, `a | b | c` as a list of
//! allowlisted commands (a single command is a pipeline of one, for which none of this binds).
//!
//! The stages run one after the other in one call slot: the whole stdout of a stage becomes the
//! next stage's stdin, held in memory and bounded like a request's stdin
//! (`limits.max_stdin_bytes`); a stage that writes more stops the pipeline with OUTPUT_LIMIT
//! rather than feeding the next stage a silently cut stream. All stages of a pipeline share one
//! deadline (`timeout_ms`) and the call's write budget (each stage gets what the stages before it
//! left). As in a shell, a non-zero exit does not stop the pipeline and the call's exit code is
//! the last stage's.
//!
//! These are the only places where the flow relies on a stage ending before the next starts:
//! the stdin handed on, the deadline left and the write budget left. Pure: nothing here runs.

use super::check::{Checked, Shape};
use crate::error::{ErrorCode, RunError};
use crate::outcome::{Outcome, Termination};
use std::time::Duration;
use tokio::time::Instant;

/// The state handed from one stage to the next.
pub(super) struct Feed {
    /// When a pipeline's time is up (a single command's own limit is its deadline).
    deadline: Option<Instant>,
    /// Most bytes one stage may hand to the next.
    between_stages: u64,
    /// The previous stage's stdout.
    input: Option<bytes::Bytes>,
}

impl Feed {
    /// The feed of a call of `shape`; a pipeline's deadline is `timeout_ms` from now.
    pub fn new(shape: Shape, timeout_ms: u64, between_stages: usize) -> Self {
        Self {
            deadline: (shape == Shape::Pipeline)
                .then(|| Instant::now() + Duration::from_millis(timeout_ms)),
            between_stages: u64::try_from(between_stages).unwrap_or(u64::MAX),
            input: None,
        }
    }

    /// Fits stage `c` into the call: the time left, the write budget left after `spent` bytes,
    /// the previous stage's stdout as its stdin, and the cap between stages unless it is `last`.
    pub fn prepare(&mut self, c: &mut Checked<'_>, spent: u64, last: bool) {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            c.limits.timeout_ms = c.limits.timeout_ms.min(left_ms.max(1));
        }
        c.limits.write_bytes = c.limits.write_bytes.saturating_sub(spent);
        if let Some(bytes) = self.input.take() {
            c.stdin = bytes;
        }
        if !last {
            c.limits.stdout_bytes = self.between_stages;
        }
    }

    /// Whether stage `i` (`command`) stops the call, and with what error as the client sees it.
    pub fn stop_after(
        &self,
        shape: Shape,
        i: usize,
        command: &str,
        outcome: &Outcome,
        last: bool,
    ) -> Option<RunError> {
        match &outcome.termination {
            Termination::Stopped(e) => Some(super::reply::in_stage(shape, i, command, e)),
            Termination::Exited(_) if !last && outcome.stdout.truncated => Some(
                RunError::new(
                    ErrorCode::OutputLimit,
                    format!(
                        "stage {} ({command}) wrote {} bytes, more than the {} bytes a pipeline passes from one stage to the next",
                        i + 1,
                        outcome.stdout.total_bytes,
                        self.between_stages,
                    ),
                )
                .with_hint("narrow the data early in the pipeline (e.g. grep or head first), or ask the operator to raise limits.max_stdin_bytes"),
            ),
            Termination::Exited(_) => None,
        }
    }

    /// Keeps the stdout of a stage that did not stop the call as the next stage's stdin.
    pub fn hand_on(&mut self, outcome: Outcome) {
        self.input = Some(bytes::Bytes::from(outcome.stdout.bytes));
    }
}
