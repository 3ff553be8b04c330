//! Pipelines without a shell: `a | b | c` as a list of allowlisted commands.
//!
//! Every stage is checked against the policy before any stage runs, so a pipeline with one
//! refused command runs nothing. The stages then run one after the other in one call slot: the
//! whole stdout of a stage becomes the next stage's stdin, held in memory and bounded like a
//! request's stdin (`limits.max_stdin_bytes`); a stage that writes more stops the pipeline with
//! OUTPUT_LIMIT rather than feeding the next stage a silently cut stream. All stages share one
//! deadline (`timeout_ms`). As in a shell, a non-zero exit does not stop the pipeline and the
//! call's exit code is the last stage's; every stage's exit code is in the result's `stages`.
//! Each stage has its own audit records (`received`, then `denied`, `completed` or `failed`),
//! marked with its position, under the call's one `requestId`.

use super::{CallContext, CallReply, Checked, Request, Service, rule_for};
use crate::api::{ErrorEnvelope, PartialOutput, PipelineStage, RunArgs, RunOutput, StageResult};
use crate::audit::call::CallTrail;
use crate::error::{ErrorCode, RunError};
use crate::outcome::{FileWrites, Outcome, RunnerKind, Termination};
use std::time::Duration;
use tokio::time::Instant;

/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 8;

impl Service {
    /// Runs a pipeline request (see the module docs).
    pub(super) async fn run_pipeline(
        &self,
        stages: &[PipelineStage],
        args: &RunArgs,
        ctx: &CallContext,
    ) -> CallReply {
        if let Err(e) = shape_error(stages, args) {
            self.record_invalid_request(ctx, &e).await;
            return CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None));
        }
        let n = stages.len();
        let mut trails: Vec<CallTrail> = stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let mut t = CallTrail::new(&ctx.caller(), "run", &self.policy_hash);
                t.request(&stage.command, &stage.args, args.cwd.as_deref());
                t.in_pipeline(i + 1, n);
                t
            })
            .collect();
        for t in &trails {
            if let Err(e) = self.record(t.received()).await {
                return self.unavailable(&ctx.request_id, &e);
            }
        }

        let mut checked = Vec::with_capacity(n);
        for (i, stage) in stages.iter().enumerate() {
            let request = Request {
                command: &stage.command,
                args: &stage.args,
                cwd: args.cwd.as_deref(),
                stdin: if i == 0 { args.stdin.as_deref() } else { None },
                timeout_ms: args.timeout_ms,
            };
            match self.check(&request) {
                Ok(c) => checked.push(c),
                Err(e) => return self.refuse_stage(&trails, stages, i, &e, ctx).await,
            }
        }
        for (t, c) in trails.iter_mut().zip(&checked) {
            t.allowed(
                c.spec.runner,
                &c.cwd.relative,
                rule_for(c.spec),
                self.sandbox_for(c),
            );
        }

        let _permit = match self.acquire_slot(ctx).await {
            Ok(p) => p,
            Err(e) => {
                for t in &trails {
                    if let Err(ae) = self.record(t.failed(&e)).await {
                        return self.unavailable(&ctx.request_id, &ae);
                    }
                }
                return CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None));
            }
        };
        self.run_stages(stages, checked, &trails, args, ctx).await
    }

    /// Runs checked stages in order, feeding each one's stdout to the next.
    async fn run_stages(
        &self,
        stages: &[PipelineStage],
        mut checked: Vec<Checked<'_>>,
        trails: &[CallTrail],
        args: &RunArgs,
        ctx: &CallContext,
    ) -> CallReply {
        let n = checked.len();
        let started = Instant::now();
        let timeout_ms = args.timeout_ms.unwrap_or(self.policy.limits.timeout_ms);
        let deadline = started + Duration::from_millis(timeout_ms);
        let between_stages = u64::try_from(self.policy.request.max_stdin_bytes).unwrap_or(u64::MAX);
        let mut stderr = StderrJoin::new(self.policy.limits.stderr_bytes);
        let mut results = Vec::with_capacity(n);
        let mut writes: Option<FileWrites> = None;
        let mut input = None;
        let runners: Vec<RunnerKind> = checked.iter().map(|c| c.spec.runner).collect();
        for (i, c) in checked.iter_mut().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            let left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            c.limits.timeout_ms = c.limits.timeout_ms.min(left_ms.max(1));
            // The write budget is per call: each stage gets what the stages before it left.
            let spent = writes.map_or(0, |w| w.bytes);
            c.limits.write_bytes = c.limits.write_bytes.saturating_sub(spent);
            if let Some(bytes) = input.take() {
                c.stdin = bytes;
            }
            let last = i + 1 == n;
            if !last {
                c.limits.stdout_bytes = between_stages;
            }
            let outcome = self.execute(c, ctx).await;
            if let Err(e) = self.record(trails[i].finished(&outcome)).await {
                return super::ran_unrecorded(&ctx.request_id, &e, &outcome);
            }
            stderr.push(&outcome);
            if let Some(w) = outcome.file_writes {
                let sum = writes.get_or_insert_with(FileWrites::default);
                sum.bytes = sum.bytes.saturating_add(w.bytes);
                sum.disk_full |= w.disk_full;
            }
            results.push(StageResult::of(&stages[i].command, &outcome));
            let stop = match &outcome.termination {
                Termination::Stopped(e) => Some(in_stage(i, &stages[i].command, e)),
                Termination::Exited(_) if !last && outcome.stdout.truncated => Some(
                    RunError::new(
                        ErrorCode::OutputLimit,
                        format!(
                            "stage {} ({}) wrote {} bytes, more than the {between_stages} bytes a pipeline passes from one stage to the next",
                            i + 1,
                            stages[i].command,
                            outcome.stdout.total_bytes
                        ),
                    )
                    .with_hint("narrow the data early in the pipeline (e.g. grep or head first), or ask the operator to raise limits.max_stdin_bytes"),
                ),
                Termination::Exited(_) => None,
            };
            if let Some(e) = stop {
                if let Err(ae) = self
                    .record_not_run(stages, trails, i, &e, &runners, &mut results)
                    .await
                {
                    return self.unavailable(&ctx.request_id, &ae);
                }
                let partial = PartialOutput {
                    stderr: stderr.text(),
                    stderr_truncated: stderr.truncated,
                    duration_ms: millis(started.elapsed()),
                    stages: Some(results),
                    bytes_written: writes.map(|w| w.bytes),
                    disk_full: writes.is_some_and(|w| w.disk_full),
                    ..PartialOutput::from_outcome(&outcome)
                };
                return CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, Some(partial)));
            }
            if last {
                return CallReply::Ran(RunOutput {
                    stderr: stderr.text(),
                    stderr_truncated: stderr.truncated,
                    duration_ms: millis(started.elapsed()),
                    stages: Some(results),
                    bytes_written: writes.map(|w| w.bytes),
                    disk_full: writes.is_some_and(|w| w.disk_full),
                    ..RunOutput::from_outcome(
                        &ctx.request_id,
                        outcome.exit_code().unwrap_or(0),
                        &outcome,
                    )
                });
            }
            input = Some(bytes::Bytes::from(outcome.stdout.bytes));
        }
        // A pipeline has at least two stages, so the loop returned.
        CallReply::Failed(ErrorEnvelope::new(
            &ctx.request_id,
            &RunError::internal("a pipeline ended without a last stage"),
            None,
        ))
    }

    /// Stage `i` ended the pipeline with `e`: records the stages after it as not run, and
    /// adds them to `results`.
    async fn record_not_run(
        &self,
        stages: &[PipelineStage],
        trails: &[CallTrail],
        i: usize,
        e: &RunError,
        runners: &[RunnerKind],
        results: &mut Vec<StageResult>,
    ) -> Result<(), crate::audit::AuditError> {
        let why = RunError::new(e.code, format!("not run: {}", e.message));
        for ((t, stage), runner) in trails.iter().zip(stages).zip(runners).skip(i + 1) {
            self.record(t.failed(&why)).await?;
            results.push(StageResult::not_run(&stage.command, *runner, e.code));
        }
        Ok(())
    }

    /// Stage `i` was refused: nothing runs. It gets its `denied` record, and so does every other
    /// stage (saying which stage was refused), so each `received` has its end.
    async fn refuse_stage(
        &self,
        trails: &[CallTrail],
        stages: &[PipelineStage],
        i: usize,
        e: &RunError,
        ctx: &CallContext,
    ) -> CallReply {
        let e = in_stage(i, &stages[i].command, e);
        let sibling = RunError::new(e.code, format!("not run: {}", e.message));
        for (k, t) in trails.iter().enumerate() {
            let record = if k == i {
                t.denied(&e)
            } else {
                t.denied(&sibling)
            };
            if let Err(ae) = self.record(record).await {
                return self.unavailable(&ctx.request_id, &ae);
            }
        }
        CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None))
    }
}

/// Why a pipeline request is malformed before any stage is looked at.
fn shape_error(stages: &[PipelineStage], args: &RunArgs) -> Result<(), RunError> {
    if !(2..=MAX_STAGES).contains(&stages.len()) {
        return Err(RunError::invalid(format!(
            "a pipeline has 2 to {MAX_STAGES} stages; this one has {}",
            stages.len()
        ))
        .with_hint("for a single command use `command`; for a longer chain, write an intermediate result to a workspace file"));
    }
    if !args.args.is_empty() {
        return Err(RunError::invalid(
            "`args` is for a single `command`; in a pipeline each stage has its own `args`",
        ));
    }
    Ok(())
}

/// The error of stage `i`, saying which stage it was.
fn in_stage(i: usize, command: &str, e: &RunError) -> RunError {
    RunError {
        code: e.code,
        message: format!("stage {} ({command}): {}", i + 1, e.message),
        hint: e.hint.clone(),
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
    use crate::outcome::Capture;

    fn stage(command: &str) -> PipelineStage {
        PipelineStage {
            command: command.to_owned(),
            args: Vec::new(),
        }
    }

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
    fn stage_counts_outside_two_to_eight_are_refused() {
        let args = RunArgs::command("x", Vec::new());
        for count in [0, 1, 9, 100] {
            let stages = vec![stage("cat"); count];
            let e = shape_error(&stages, &args).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument);
            assert!(e.message.contains(&count.to_string()), "{}", e.message);
        }
        for count in [2, 8] {
            assert!(shape_error(&vec![stage("cat"); count], &args).is_ok());
        }
    }

    #[test]
    fn top_level_args_are_refused_in_a_pipeline() {
        let args = RunArgs::command("x", vec!["-n".into()]);
        let e = shape_error(&[stage("cat"), stage("wc")], &args).unwrap_err();
        assert!(e.message.contains("each stage"), "{}", e.message);
    }

    #[test]
    fn errors_name_their_stage_and_keep_code_and_hint() {
        let e = RunError::new(ErrorCode::Timeout, "timed out").with_hint("h");
        let s = in_stage(2, "sort", &e);
        assert_eq!(s.code, ErrorCode::Timeout);
        assert_eq!(s.message, "stage 3 (sort): timed out");
        assert_eq!(s.hint.as_deref(), Some("h"));
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
}
