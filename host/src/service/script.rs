//! The flow of one `shell` call: the script is recorded (`received`, with its text), parsed
//! and checked ([`crate::shell`]); a refusal gets its `denied` record and the reply. Otherwise
//! it takes one call slot and runs under one deadline and one cancellation, every command it
//! starts going through [`ScriptHost::run`]: the same check step as `run` ([`super::check`]),
//! its own `received`/`denied`/`completed`/`failed` records under the call's request id, a
//! guest instance for a WASI command, and the [`crate::runner`] contract. The script's end is
//! recorded last.
//!
//! This module must not run anything the check step did not pass, nor let the interpreter
//! reach a runner except through [`ScriptHost::run`].

use super::check::{Request, Target};
use super::flow::Joined;
use super::pipeline::StageIo;
use super::reply::unavailable;
use super::script_guests::GuestUse;
use super::{CallContext, CallReply, InFlight, Service};
use crate::api::{ErrorEnvelope, PartialOutput, ScriptCommand, ShellArgs, ShellOutput};
use crate::audit::call::CallTrail;
use crate::error::{ErrorCode, RunError};
use crate::limits::write_pool::WritePool;
use crate::outcome::{Captured, Outcome, RunnerKind, Termination};
use crate::runner::Input;
use crate::shell::{self, Bounds, CommandEnd, CommandStart, Host, ScriptEnd, ScriptRequest};
use crate::workspace::Workspace;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the interpreter gets from the service for one script.
struct ScriptHost<'s> {
    service: &'s Service,
    ctx: &'s CallContext,
    cancel: CancellationToken,
    deadline: tokio::time::Instant,
    pool: WritePool,
    guests: GuestUse,
}

impl Host for ScriptHost<'_> {
    fn allows(&self, name: &str) -> bool {
        self.service.catalog.lookup(name).is_ok()
    }

    async fn record_refusal(&self, argv: &[String], cwd: &str, error: &RunError) {
        let (command, args) = argv
            .split_first()
            .map_or(("", &[][..]), |(c, a)| (c.as_str(), a));
        let mut trail = CallTrail::new(&self.ctx.caller(), "shell", &self.service.policy_hash);
        trail.request(command, args, Some(cwd));
        if self.service.record(trail.received()).await.is_ok() {
            let _ = self.service.record(trail.denied(error)).await;
        }
    }

    fn workspace(&self) -> &Workspace {
        &self.service.workspace
    }

    fn may_write(&self) -> bool {
        self.service.policy.workspace_writable
    }

    async fn run(&self, start: CommandStart) -> CommandEnd {
        let s = self.service;
        let (command, args) = match start.argv.split_first() {
            Some((c, a)) => (c.as_str(), a),
            None => ("", &[][..]),
        };
        let mut trail = CallTrail::new(&self.ctx.caller(), "shell", &s.policy_hash);
        trail.request(command, args, Some(&start.cwd));
        let not_started = |e: RunError| CommandEnd {
            status: Err(e),
            stderr: Vec::new(),
            runner: None,
        };
        if let Err(e) = s.record(trail.received()).await {
            return not_started(audit_error(&e));
        }
        let left = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let request = Request {
            command,
            args,
            cwd: Some(&start.cwd),
            stdin: None,
            timeout_ms: Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1)),
        };
        let mut checked = match s.checker().check(&request) {
            Ok(c) => c,
            Err(e) => {
                if let Err(ae) = s.record(trail.denied(&e)).await {
                    return not_started(audit_error(&ae));
                }
                return not_started(e);
            }
        };
        // `export`ed (or per-command) variables reach a built-in command when the policy's
        // guest environment allows their names; nothing else of the script's does.
        if let Target::Wasi(crate::wasi::WasiProgram::Builtin { env }) = &mut checked.target {
            *env = guest_env(env, &start.env);
        }
        trail.allowed(
            checked.spec.runner,
            &checked.cwd.relative,
            checked.rule(),
            s.sandbox(&checked),
        );
        // A WASI command needs a guest instance (see `GuestUse`).
        let _guest = if matches!(checked.target, Target::Wasi(_)) {
            match self.guests.take(&s.guests, &self.cancel).await {
                Ok(g) => Some(g),
                Err(e) => {
                    if let Err(ae) = s.record(trail.failed(&e)).await {
                        return not_started(audit_error(&ae));
                    }
                    return not_started(e);
                }
            }
        } else {
            None
        };
        super::pipeline::fit_deadline(&mut checked, Some(self.deadline));
        let joined = Joined {
            io: StageIo {
                stdin: Input::Pipe(start.stdin),
                stdout: Some(start.stdout),
            },
            deadline: Some(self.deadline),
            pool: &self.pool,
            cancel: &self.cancel,
            live_output: &self.ctx.live_output,
        };
        let outcome = s.execute(&checked, joined).await;
        if let Err(e) = s.record(trail.finished(&outcome)).await {
            return CommandEnd {
                status: Err(audit_error(&e)),
                stderr: outcome.stderr.bytes,
                runner: Some(outcome.runner),
            };
        }
        CommandEnd {
            status: match outcome.termination {
                Termination::Exited(code) => Ok(code),
                Termination::Stopped(e) => Err(e),
            },
            stderr: outcome.stderr.bytes,
            runner: Some(outcome.runner),
        }
    }
}

/// The policy's guest environment with the script's exported variables whose names it allows
/// ([`crate::policy::ALLOWED_GUEST_ENV`]) set on top.
fn guest_env(
    policy: &std::sync::Arc<[(String, String)]>,
    exported: &[(String, String)],
) -> std::sync::Arc<[(String, String)]> {
    let allowed: Vec<&(String, String)> = exported
        .iter()
        .filter(|(k, _)| crate::policy::ALLOWED_GUEST_ENV.contains(&k.as_str()))
        .collect();
    if allowed.is_empty() {
        return std::sync::Arc::clone(policy);
    }
    let mut env: Vec<(String, String)> = policy
        .iter()
        .filter(|(k, _)| !allowed.iter().any(|(a, _)| a == k))
        .cloned()
        .collect();
    env.extend(allowed.into_iter().cloned());
    env.into()
}

fn audit_error(e: &crate::audit::AuditError) -> RunError {
    RunError::new(
        ErrorCode::AuditUnavailable,
        format!("the audit log cannot be written, so the script stopped: {e}"),
    )
}

impl Service {
    /// Runs a `shell` call through its whole flow (see the module docs).
    pub async fn shell(&self, args: ShellArgs, ctx: &CallContext) -> CallReply {
        let _in_flight = InFlight::enter(self);
        let started = Instant::now();
        let mut trail = CallTrail::new(&ctx.caller(), "shell", &self.policy_hash);
        trail.request_script(&args.script, args.cwd.as_deref());
        if let Err(e) = self.record(trail.received()).await {
            return unavailable(&ctx.request_id, &e);
        }
        let prepared = self.prepare(&args).await;
        let (program, cwd, timeout_ms) = match prepared {
            Ok(p) => p,
            Err(e) => {
                if let Err(ae) = self.record(trail.denied(&e)).await {
                    return unavailable(&ctx.request_id, &ae);
                }
                return CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None));
            }
        };
        let slot = tokio::select! {
            p = std::sync::Arc::clone(&self.slots).acquire_owned() => p.ok(),
            () = ctx.cancel.cancelled() => None,
        };
        let Some(_slot) = slot else {
            let e = RunError::new(
                ErrorCode::Cancelled,
                "the call was cancelled while waiting for a free slot",
            );
            let _ = self.record(trail.failed(&e)).await;
            return CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None));
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let cancel = ctx.cancel.child_token();
        let timed_out = AtomicBool::new(false);
        let host = ScriptHost {
            service: self,
            ctx,
            cancel: cancel.clone(),
            deadline,
            pool: WritePool::new(self.policy.limits.write_bytes),
            guests: GuestUse::default(),
        };
        let bounds = Bounds {
            stdout_bytes: self.policy.limits.stdout_bytes,
            stderr_bytes: self.policy.limits.stderr_bytes,
            ..Bounds::default()
        };
        let request = ScriptRequest {
            program: &program,
            text: &args.script,
            cwd,
            stdin: bytes::Bytes::from(args.stdin.clone().unwrap_or_default()),
            bounds,
            write_pool: host.pool.clone(),
            cancel: cancel.clone(),
        };
        let watchdog = async {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    timed_out.store(true, Ordering::SeqCst);
                    cancel.cancel();
                }
                () = cancel.cancelled() => {}
            }
        };
        let run = async {
            let end = shell::run_script(&host, request).await;
            cancel.cancel();
            end
        };
        let (end, ()) = futures_util::join!(run, watchdog);
        let elapsed = started.elapsed();
        self.script_reply(
            ctx,
            &trail,
            end,
            elapsed,
            timeout_ms,
            timed_out.load(Ordering::SeqCst),
        )
        .await
    }

    /// The checks before a script runs: its size, time limit and working directory, then
    /// its syntax and every literal command word.
    async fn prepare(
        &self,
        args: &ShellArgs,
    ) -> Result<(brush_parser::ast::Program, String, u64), RunError> {
        if args.script.contains('\0') {
            return Err(RunError::invalid("the script contains a NUL byte"));
        }
        let stdin_len = args.stdin.as_deref().map_or(0, str::len);
        if stdin_len > self.policy.request.max_stdin_bytes {
            return Err(RunError::invalid(format!(
                "stdin is {stdin_len} bytes; the limit is {}",
                self.policy.request.max_stdin_bytes
            )));
        }
        let timeout_ms = match args.timeout_ms {
            Some(0) => return Err(RunError::invalid("timeout_ms must be at least 1")),
            Some(t) if t > self.policy.max_timeout_ms => {
                return Err(RunError::invalid(format!(
                    "timeout_ms {t} is above the policy's maximum of {} ms",
                    self.policy.max_timeout_ms
                )));
            }
            Some(t) => t,
            None => self.policy.limits.timeout_ms,
        };
        let cwd = self
            .workspace
            .resolve_dir(args.cwd.as_deref().unwrap_or(""))?;
        let program = parse_off_the_runtime(&args.script).await?;
        let checker_host = CheckHost(self);
        shell::check::check(&checker_host, &args.script, &program).map_err(|e| e.to_run_error())?;
        Ok((program, cwd.relative, timeout_ms))
    }

    /// Records the script's end and shapes the reply.
    async fn script_reply(
        &self,
        ctx: &CallContext,
        trail: &CallTrail,
        end: ScriptEnd,
        elapsed: Duration,
        timeout_ms: u64,
        timed_out: bool,
    ) -> CallReply {
        let commands: Vec<ScriptCommand> = end
            .commands
            .iter()
            .map(|c| ScriptCommand {
                argv: c.argv.clone(),
                runner: c.runner,
                exit_code: c.status.ok(),
                error: c.status.err(),
            })
            .collect();
        let commands_started =
            (end.commands_started > commands.len() as u64).then_some(end.commands_started);
        let status = match end.status {
            Ok(code) => Ok(code),
            Err(_) if timed_out => Err(RunError::new(
                ErrorCode::Timeout,
                format!("the script ran past its {timeout_ms} ms limit and was stopped"),
            )
            .with_hint("pass a larger timeout_ms (up to the policy maximum) or narrow the work")),
            Err(e) => Err(e.to_run_error()),
        };
        let runner = end
            .commands
            .last()
            .and_then(|c| c.runner)
            .unwrap_or(RunnerKind::Wasi);
        let outcome = Outcome {
            termination: match &status {
                Ok(code) => Termination::Exited(*code),
                Err(e) => Termination::Stopped(e.clone()),
            },
            stdout: clone_captured(&end.stdout),
            stderr: clone_captured(&end.stderr),
            duration: elapsed,
            runner,
            processes_killed: None,
            file_writes: None,
        };
        if let Err(e) = self.record(trail.finished(&outcome)).await {
            return unavailable(&ctx.request_id, &e);
        }
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        match status {
            Ok(code) => CallReply::Script(ShellOutput {
                request_id: ctx.request_id.clone(),
                exit_code: code,
                stdout: end.stdout.text(),
                stderr: end.stderr.text(),
                stdout_truncated: end.stdout.truncated,
                stderr_truncated: end.stderr.truncated,
                duration_ms,
                commands,
                commands_started,
            }),
            Err(e) => {
                let partial = PartialOutput {
                    commands: Some(commands),
                    ..PartialOutput::from_outcome(&outcome)
                };
                CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, Some(partial)))
            }
        }
    }
}

fn clone_captured(c: &Captured) -> Captured {
    c.clone()
}

/// Longest a script's parse may take. The parser is bounded by the script's size and nesting
/// ([`shell::parse`]), which keeps its measured worst case near a millisecond; this is the
/// backstop for a case not measured.
const PARSE_TIME_LIMIT: Duration = Duration::from_secs(2);

/// Parses `script` on a blocking thread, never on a runtime worker, within
/// [`PARSE_TIME_LIMIT`].
async fn parse_off_the_runtime(script: &str) -> Result<brush_parser::ast::Program, RunError> {
    let text = script.to_owned();
    let parsing = tokio::task::spawn_blocking(move || shell::parse(&text));
    match tokio::time::timeout(PARSE_TIME_LIMIT, parsing).await {
        Ok(Ok(parsed)) => parsed.map_err(|e| e.to_run_error()),
        Ok(Err(_)) => Err(RunError::internal("the script's parser failed")),
        Err(_) => Err(RunError::new(
            ErrorCode::ScriptLimit,
            format!(
                "the script took longer than {} s to parse",
                PARSE_TIME_LIMIT.as_secs()
            ),
        )
        .with_hint("simplify deeply nested parentheses")),
    }
}

/// The allowlist as the check step before a script sees it (nothing runs through it).
struct CheckHost<'s>(&'s Service);

impl Host for CheckHost<'_> {
    fn allows(&self, name: &str) -> bool {
        self.0.catalog.lookup(name).is_ok()
    }
    async fn record_refusal(&self, _argv: &[String], _cwd: &str, _error: &RunError) {}
    fn workspace(&self) -> &Workspace {
        &self.0.workspace
    }
    fn may_write(&self) -> bool {
        self.0.policy.workspace_writable
    }
    async fn run(&self, _start: CommandStart) -> CommandEnd {
        CommandEnd {
            status: Err(RunError::internal("the check step runs nothing")),
            stderr: Vec::new(),
            runner: None,
        }
    }
}
