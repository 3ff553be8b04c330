//! The staged flow of one `run` call, the same for a single command and a pipeline (a single
//! command is a pipeline of one):
//!
//! 1. check every stage ([`super::check`]), with no effect yet;
//! 2. audit `received`, one record per stage (no record, no run);
//! 3. refused: a `denied` record per stage and the refusal as the reply; allowed: the runner,
//!    rule and sandbox go into every later record;
//! 4. wait for a call slot (or the cancellation: a `failed` record per stage);
//! 5. run the stages at the same time, joined by pipes ([`super::pipeline`]), each on its own
//!    runner through the [`crate::runner`] contract, and audit each stage's end as it ends (a
//!    stage stopped because another one was gets a `failed` record saying so);
//! 6. reply ([`super::reply`]).
//!
//! Every path writes a `received` record and then exactly one `denied`, `completed` or `failed`
//! record per stage, and ends in one reply carrying the call's request id. This module must not
//! run anything the check step did not pass, nor decide anything the check step decides.

use super::check::{CallRequest, Checked, Refusal, Shape, Target};
use super::pipeline::{self, StageIo, Stop};
use super::reply::{Tally, in_stage, not_run, ran_unrecorded, unavailable};
use super::{CallContext, CallReply, Service};
use crate::api::ErrorEnvelope;
use crate::audit::call::CallTrail;
use crate::audit::record::SandboxInfo;
use crate::error::{ErrorCode, RunError};
use crate::limits::write_pool::WritePool;
use crate::outcome::Outcome;
use crate::runner::{self, CallInput, Runner};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio_util::sync::CancellationToken;

/// A call slot and the guest instances of the call's WASI stages, released together.
type SlotPermits = (
    tokio::sync::OwnedSemaphorePermit,
    tokio::sync::OwnedSemaphorePermit,
);

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

        let wasi_stages = stages
            .iter()
            .filter(|c| matches!(c.target, Target::Wasi(_)))
            .count();
        let _permit = match self.acquire_slot(ctx, wasi_stages).await {
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

    /// Waits for one of the `limits.max_concurrent` call slots and then for a guest instance
    /// for each of the call's `wasi_stages` (taken all at once, so two pipelines never hold
    /// part of what each needs), or for the call's cancellation. Without this wait a stage
    /// found the instance pool full and failed (found by review: one 8-stage pipeline made
    /// every other WASI call fail with COMMAND_FAILED).
    async fn acquire_slot(
        &self,
        ctx: &CallContext,
        wasi_stages: usize,
    ) -> Result<SlotPermits, RunError> {
        let wanted = u32::try_from(wasi_stages).unwrap_or(u32::MAX);
        let permits = async {
            let call = Arc::clone(&self.slots).acquire_owned().await?;
            let guests = Arc::clone(&self.guests).acquire_many_owned(wanted).await?;
            Ok::<_, tokio::sync::AcquireError>((call, guests))
        };
        tokio::select! {
            p = permits => p.map_err(|_| RunError::internal("the call slots are closed")),
            _ = ctx.cancel.cancelled() => Err(RunError::new(
                ErrorCode::Cancelled,
                "the call was cancelled while waiting for a free slot",
            )),
        }
    }

    /// Runs the checked stages at the same time, joined by pipes ([`super::pipeline`]),
    /// recording each stage's end as it ends.
    async fn run_stages(
        &self,
        call: &CallRequest<'_>,
        mut stages: Vec<Checked<'_>>,
        trails: &[CallTrail],
        ctx: &CallContext,
    ) -> CallReply {
        let n = stages.len();
        // Made before the stages start, so the call's `durationMs` covers them (found by
        // review: made after they ended, a pipeline always reported 0).
        let mut tally = Tally::new(call.shape, self.policy.limits.stderr_bytes, n);
        let timeout_ms = call.timeout_ms.unwrap_or(self.policy.limits.timeout_ms);
        let deadline = pipeline::deadline(call.shape, timeout_ms);
        let ios = pipeline::plumb(&stages);
        let pool = WritePool::new(self.policy.limits.write_bytes);
        let stop = Stop::new(call.shape, &ctx.cancel);
        let runs = stages.iter_mut().zip(ios).enumerate().map(|(i, (c, io))| {
            let (stop, pool) = (&stop, &pool);
            async move {
                pipeline::fit_deadline(c, deadline);
                let joined = Joined {
                    io,
                    deadline,
                    pool,
                    cancel: stop.token(),
                    live_output: &ctx.live_output,
                };
                let mut outcome = self.execute(c, joined).await;
                stop.settle(i, call.stages[i].command, &mut outcome);
                let recorded = self.record(trails[i].finished(&outcome)).await;
                if recorded.is_err() {
                    stop.stop_all();
                }
                (outcome, recorded)
            }
        });
        let ended = futures_util::future::join_all(runs).await;
        let mut unrecorded = None;
        for ((outcome, recorded), asked) in ended.iter().zip(&call.stages) {
            if let Err(e) = recorded {
                unrecorded.get_or_insert((e, outcome));
            }
            tally.add(asked.command, outcome);
        }
        if let Some((e, outcome)) = unrecorded {
            return ran_unrecorded(&ctx.request_id, e, outcome);
        }
        let Some((last, _)) = ended.last() else {
            return CallReply::Failed(ErrorEnvelope::new(
                &ctx.request_id,
                &RunError::internal("a call ended without a last stage"),
                None,
            ));
        };
        match stop.error() {
            Some(e) => tally.stopped(&ctx.request_id, last, &e),
            None => tally.ran(&ctx.request_id, last),
        }
    }

    /// Runs one checked stage on the runner its program names, joined to the call by `joined`.
    pub(super) async fn execute(&self, c: &Checked<'_>, joined: Joined<'_>) -> Outcome {
        match &c.target {
            Target::Wasi(program) => {
                runner::call(&self.wasi, input(c, program, self, joined)).await
            }
            Target::Native { runner, command } => {
                runner::call(*runner, input(c, command.as_ref(), self, joined)).await
            }
        }
    }

    /// The sandbox a checked stage runs in, as its runner describes it, for the audit log.
    pub(super) fn sandbox(&self, c: &Checked<'_>) -> SandboxInfo {
        match &c.target {
            Target::Wasi(program) => self.wasi.sandbox(program, c.limits, c.writable),
            Target::Native { runner, command } => runner.sandbox(command, c.limits, c.writable),
        }
    }
}

/// What a stage gets from the call besides its checked request: its streams, the call's
/// deadline, write budget and stop, and the progress counter.
pub(super) struct Joined<'a> {
    pub io: StageIo,
    pub deadline: Option<tokio::time::Instant>,
    pub pool: &'a WritePool,
    pub cancel: &'a CancellationToken,
    pub live_output: &'a Arc<AtomicU64>,
}

/// The runner contract's input for checked stage `c`.
fn input<'a, P>(
    c: &'a Checked<'_>,
    program: &'a P,
    service: &'a Service,
    joined: Joined<'a>,
) -> CallInput<'a, P> {
    CallInput {
        program,
        argv: &c.argv,
        workspace: &service.workspace,
        cwd: &c.cwd,
        stdin: joined.io.stdin,
        stdout_pipe: joined.io.stdout,
        write_pool: joined.pool.clone(),
        limits: c.limits,
        deadline: joined.deadline,
        writable: c.writable,
        cancel: joined.cancel,
        live_output: joined.live_output,
    }
}
