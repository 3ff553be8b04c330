//! The staged flow of one `run` call, the same for a single command and a pipeline (a single
//! command is a pipeline of one):
//!
//! 1. check every stage ([`super::check`]), with no effect yet;
//! 2. audit `received`, one record per stage (no record, no run);
//! 3. refused: a `denied` record per stage and the refusal as the reply; allowed: the runner,
//!    rule and sandbox go into every later record;
//! 4. wait for a call slot (or the cancellation: a `failed` record per stage);
//! 5. run the stages ([`super::pipeline`] says what passes between them), each on its own
//!    runner through the [`crate::runner`] contract, and audit each stage's end as it ends (a
//!    stage a stop kept from running gets a `failed` record saying so);
//! 6. reply ([`super::reply`]).
//!
//! Every path writes a `received` record and then exactly one `denied`, `completed` or `failed`
//! record per stage, and ends in one reply carrying the call's request id. This module must not
//! run anything the check step did not pass, nor decide anything the check step decides.

use super::check::{CallRequest, Checked, Refusal, Shape, Target};
use super::pipeline::Feed;
use super::reply::{Tally, in_stage, not_run, ran_unrecorded, unavailable};
use super::{CallContext, CallReply, Service};
use crate::api::ErrorEnvelope;
use crate::audit::AuditError;
use crate::audit::call::CallTrail;
use crate::audit::record::SandboxInfo;
use crate::error::{ErrorCode, RunError};
use crate::outcome::Outcome;
use crate::runner::{self, CallInput, Runner};
use std::sync::Arc;

impl Service {
    /// Runs a call of any shape through the whole flow (see the module docs).
    pub(super) async fn run_call(&self, call: &CallRequest<'_>, ctx: &CallContext) -> CallReply {
        let checked = self.checker().check_call(call);
        let n = call.stages.len();
        let mut trails: Vec<CallTrail> = call
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let mut t = CallTrail::new(&ctx.caller(), "run", &self.policy_hash);
                t.request(stage.command, stage.args, stage.cwd);
                if call.shape == Shape::Pipeline {
                    t.in_pipeline(i + 1, n);
                }
                t
            })
            .collect();
        for t in &trails {
            if let Err(e) = self.record(t.received()).await {
                return unavailable(&ctx.request_id, &e);
            }
        }
        let stages = match checked {
            Ok(stages) => stages,
            Err(refusal) => return self.refuse(call, &trails, refusal, ctx).await,
        };
        for (t, c) in trails.iter_mut().zip(&stages) {
            t.allowed(c.spec.runner, &c.cwd.relative, c.rule(), self.sandbox(c));
        }

        let _permit = match self.acquire_slot(ctx).await {
            Ok(p) => p,
            Err(e) => {
                for t in &trails {
                    if let Err(ae) = self.record(t.failed(&e)).await {
                        return unavailable(&ctx.request_id, &ae);
                    }
                }
                return CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None));
            }
        };
        self.run_stages(call, stages, &trails, ctx).await
    }

    /// A stage was refused: nothing runs. It gets its `denied` record, and so does every other
    /// stage (saying which stage was refused), so each `received` has its end.
    async fn refuse(
        &self,
        call: &CallRequest<'_>,
        trails: &[CallTrail],
        refusal: Refusal,
        ctx: &CallContext,
    ) -> CallReply {
        let i = refusal.stage;
        let e = in_stage(call.shape, i, call.stages[i].command, &refusal.error);
        let sibling = not_run(&e);
        for (k, t) in trails.iter().enumerate() {
            let record = if k == i {
                t.denied(&e)
            } else {
                t.denied(&sibling)
            };
            if let Err(ae) = self.record(record).await {
                return unavailable(&ctx.request_id, &ae);
            }
        }
        CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None))
    }

    /// Waits for one of the `limits.max_concurrent` call slots, or for the call's cancellation.
    async fn acquire_slot(
        &self,
        ctx: &CallContext,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, RunError> {
        tokio::select! {
            p = Arc::clone(&self.slots).acquire_owned() => {
                p.map_err(|_| RunError::internal("the call slots are closed"))
            }
            _ = ctx.cancel.cancelled() => Err(RunError::new(
                ErrorCode::Cancelled,
                "the call was cancelled while waiting for a free slot",
            )),
        }
    }

    /// Runs checked stages in order, feeding each one's stdout to the next, recording each
    /// stage's end as it ends.
    async fn run_stages(
        &self,
        call: &CallRequest<'_>,
        mut stages: Vec<Checked<'_>>,
        trails: &[CallTrail],
        ctx: &CallContext,
    ) -> CallReply {
        let n = stages.len();
        let timeout_ms = call.timeout_ms.unwrap_or(self.policy.limits.timeout_ms);
        let mut feed = Feed::new(call.shape, timeout_ms, self.policy.request.max_stdin_bytes);
        let mut tally = Tally::new(call.shape, self.policy.limits.stderr_bytes, n);
        for (i, c) in stages.iter_mut().enumerate() {
            let last = i + 1 == n;
            let command = call.stages[i].command;
            feed.prepare(c, tally.bytes_written(), last);
            let outcome = self.execute(c, ctx).await;
            if let Err(e) = self.record(trails[i].finished(&outcome)).await {
                return ran_unrecorded(&ctx.request_id, &e, &outcome);
            }
            tally.add(command, &outcome);
            if let Some(e) = feed.stop_after(call.shape, i, command, &outcome, last) {
                let rest = &stages[i + 1..];
                if let Err(ae) = self
                    .record_not_run(call, &trails[i + 1..], rest, &e, &mut tally)
                    .await
                {
                    return unavailable(&ctx.request_id, &ae);
                }
                return tally.stopped(&ctx.request_id, &outcome, &e);
            }
            if last {
                return tally.ran(&ctx.request_id, &outcome);
            }
            feed.hand_on(outcome);
        }
        // Every call has at least one stage, so the loop returned.
        CallReply::Failed(ErrorEnvelope::new(
            &ctx.request_id,
            &RunError::internal("a call ended without a last stage"),
            None,
        ))
    }

    /// A stage ended the call with `e`: records the stages after it (`rest`, with their
    /// `trails`) as not run, and adds them to the tally.
    async fn record_not_run(
        &self,
        call: &CallRequest<'_>,
        trails: &[CallTrail],
        rest: &[Checked<'_>],
        e: &RunError,
        tally: &mut Tally,
    ) -> Result<(), AuditError> {
        let why = not_run(e);
        let first = call.stages.len() - rest.len();
        for ((t, c), asked) in trails.iter().zip(rest).zip(&call.stages[first..]) {
            self.record(t.failed(&why)).await?;
            tally.add_not_run(asked.command, c.spec.runner, e.code);
        }
        Ok(())
    }

    /// Runs one checked stage on the runner its program names.
    async fn execute(&self, c: &Checked<'_>, ctx: &CallContext) -> Outcome {
        match &c.target {
            Target::Wasi(program) => runner::call(&self.wasi, input(c, program, self, ctx)).await,
            Target::Native { runner, command } => {
                runner::call(*runner, input(c, command.as_ref(), self, ctx)).await
            }
        }
    }

    /// The sandbox a checked stage runs in, as its runner describes it, for the audit log.
    fn sandbox(&self, c: &Checked<'_>) -> SandboxInfo {
        match &c.target {
            Target::Wasi(program) => self.wasi.sandbox(program, c.limits, c.writable),
            Target::Native { runner, command } => runner.sandbox(command, c.limits, c.writable),
        }
    }
}

/// The runner contract's input for checked stage `c`.
fn input<'a, P>(
    c: &'a Checked<'_>,
    program: &'a P,
    service: &'a Service,
    ctx: &'a CallContext,
) -> CallInput<'a, P> {
    CallInput {
        program,
        argv: &c.argv,
        workspace: &service.workspace,
        cwd: &c.cwd,
        stdin: c.stdin.clone(),
        limits: c.limits,
        writable: c.writable,
        cancel: &ctx.cancel,
        live_output: &ctx.live_output,
    }
}
