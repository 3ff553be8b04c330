//! The call pipeline, independent of MCP: audit `received` → validate → decide → run → audit
//! the end → reply.
//!
//! [`Service`] owns the workspace capability, the allowlist, the runners, the audit log and the
//! concurrency slots. The MCP handler only translates; the `exec` CLI uses the same pipeline, so a
//! command behaves the same way whichever door it came through.

use crate::api::{CommandInfo, CommandList, ErrorEnvelope, PartialOutput, RunArgs, RunOutput};
use crate::audit::call::{CallTrail, Caller};
use crate::audit::record::{ClientInfo, SandboxInfo, ServerInfo, Text};
use crate::audit::{AuditError, AuditLog, AuditRecord, Stage, SyncPolicy, SystemClock};
use crate::error::{ErrorCode, RunError};
use crate::native::{NativeRun, NativeRunner};
use crate::outcome::{Outcome, Termination};
use crate::policy::assemble::{Assembly, assemble};
use crate::policy::{Access, Catalog, CommandSpec, Program};
use crate::policy::{Policy, own_paths};
use crate::tools_dir;
use crate::wasi::cache::ModuleCache;
use crate::wasi::{GuestRun, WasiRuntime, inspect};
use crate::workspace::Workspace;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

mod pipeline;
pub use pipeline::MAX_STAGES;

/// Per-call facts that do not come from the tool arguments.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// runbox's id for the call (UUID v7).
    pub request_id: String,
    /// The client's JSON-RPC id, for the audit log.
    pub mcp_request_id: Option<String>,
    /// Fired when the client cancels or the server shuts down.
    pub cancel: CancellationToken,
    /// Bytes of output produced so far, for progress notifications.
    pub live_output: Arc<AtomicU64>,
    /// The MCP client's name and version from its handshake, for the audit log.
    pub client: Option<ClientInfo>,
}

impl CallContext {
    /// A context with a fresh request id.
    pub fn new(mcp_request_id: Option<String>, cancel: CancellationToken) -> Self {
        Self {
            request_id: new_request_id(),
            mcp_request_id,
            cancel,
            live_output: Arc::new(AtomicU64::new(0)),
            client: None,
        }
    }

    /// Adds the client's name and version (long values are cut for the log).
    pub fn with_client(mut self, name: &str, version: &str) -> Self {
        self.client = Some(ClientInfo {
            name: Text::of(name),
            version: Text::of(version),
        });
        self
    }

    fn caller(&self) -> Caller {
        Caller {
            request_id: self.request_id.clone(),
            mcp_request_id: self.mcp_request_id.clone(),
            client: self.client.clone(),
        }
    }
}

/// How long [`Service::stop`] waits for running calls to write their last record.
const STOP_DRAIN: Duration = Duration::from_secs(5);

/// A fresh, time-ordered request id.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What a `run` call produced.
#[derive(Debug, Clone)]
pub enum CallReply {
    /// The command ran and exited (any exit code).
    Ran(RunOutput),
    /// The call failed or was refused.
    Failed(ErrorEnvelope),
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The workspace could not be opened.
    #[error(transparent)]
    Workspace(#[from] crate::workspace::WorkspaceError),
    /// A path runbox uses for itself (policy file, audit log, module cache, tools, temp
    /// directory) is one commands could change.
    #[error(transparent)]
    OwnPath(#[from] own_paths::OwnPathError),
    /// The configuration is inconsistent with the filesystem or the command set.
    #[error("{0}")]
    Config(String),
    /// The WASI runtime could not start.
    #[error("{0}")]
    Runtime(RunError),
}

/// The shared state behind every call.
pub struct Service {
    policy: Policy,
    catalog: Catalog,
    workspace: Workspace,
    wasi: WasiRuntime,
    native: Option<NativeRunner>,
    audit: Arc<AuditLog>,
    policy_hash: String,
    slots: Arc<Semaphore>,
    guest_env: Vec<(String, String)>,
    in_flight: AtomicUsize,
    drained: Notify,
}

impl Service {
    /// Opens everything the policy names and checks the pieces fit together.
    pub fn start(
        policy: Policy,
        builtin_wasm: &'static [u8],
        builtin_manifest: &str,
    ) -> Result<Self, StartError> {
        let workspace = Workspace::open(&policy.workspace)?;
        // Before anything is created or read: none of runbox's own paths may be one a command
        // can change.
        own_paths::check(&workspace, &policy.own_paths())?;
        let cache = ModuleCache::new(policy.cache_dir.as_deref());
        let pool = crate::wasi::engine::PoolSize {
            instances: u32::try_from(policy.max_concurrent).unwrap_or(u32::MAX),
            memory_bytes: policy.limits.memory_bytes,
            table_elements: policy.limits.table_elements,
        };
        // The built-in module's digest was computed at build time; other bytes are hashed here.
        let builtin = crate::wasi::BuiltinModule {
            wasm: builtin_wasm,
            sha256: if std::ptr::eq(builtin_wasm, crate::BUILTIN_MODULE) {
                *crate::BUILTIN_MODULE_SHA256
            } else {
                crate::wasi::cache::sha256(builtin_wasm)
            },
        };
        let wasi = WasiRuntime::new(cache, builtin, Some(pool)).map_err(StartError::Runtime)?;
        let tools = match &policy.tools_dir {
            Some(dir) => {
                let check = |bytes: &[u8]| {
                    inspect::check_module(bytes, |m, n| wasi.provides(m, n)).map(|_| ())
                };
                let scan = tools_dir::scan(dir, &policy, check)
                    .map_err(|e| StartError::Config(e.to_string()))?;
                Some(scan)
            }
            None => None,
        };
        let Assembly { catalog, rejected } = assemble(&policy, builtin_manifest, tools)
            .map_err(|e| StartError::Config(e.to_string()))?;
        for r in &rejected {
            tracing::warn!("tools_dir: not offering {r}");
        }
        if policy.strict_tools && !rejected.is_empty() {
            let all: Vec<String> = rejected.iter().map(ToString::to_string).collect();
            return Err(StartError::Config(format!(
                "strict_tools is set and tools_dir has unusable modules: {}",
                all.join("; ")
            )));
        }
        let native = if policy.native.is_empty() {
            None
        } else {
            let runner = NativeRunner::new(&policy, &workspace).map_err(StartError::Config)?;
            log_protections(&runner, policy.sandbox.require_confinement);
            Some(runner)
        };
        // Opened last, so a start refused for a bad configuration leaves no trace in the log.
        // An unusable audit directory does not stop the server: calls are refused with
        // AUDIT_UNAVAILABLE (and the reason is on stderr) until the operator fixes it.
        let audit = AuditLog::open(policy.audit_config(), Arc::new(SystemClock));
        let guest_env = policy
            .wasi_env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            slots: Arc::new(Semaphore::new(policy.max_concurrent)),
            policy_hash: policy.hash(),
            policy,
            catalog,
            workspace,
            wasi,
            native,
            audit,
            guest_env,
            in_flight: AtomicUsize::new(0),
            drained: Notify::new(),
        })
    }

    /// The effective policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Writes the `start` record (`mode` is `serve` or `exec`). A failure is on stderr already;
    /// calls will be refused until the log works.
    pub async fn announce(&self, mode: &str) {
        let mut r = AuditRecord::new(Stage::Start);
        r.server = Some(self.server_info(mode));
        let _ = self.record(r).await;
    }

    /// Waits (at most a few seconds) for running calls to write their last record, then writes
    /// the `stop` record.
    pub async fn stop(&self, mode: &str, reason: &str) {
        let deadline = tokio::time::Instant::now() + STOP_DRAIN;
        loop {
            let drained = self.drained.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                break;
            }
        }
        let mut r = AuditRecord::new(Stage::Stop);
        let mut info = self.server_info(mode);
        info.protections.clear();
        info.audit = None;
        info.reason = Some(reason.to_owned());
        info.in_flight = Some(self.in_flight.load(Ordering::Acquire) as u64);
        r.server = Some(info);
        let _ = self.record(r).await;
    }

    fn server_info(&self, mode: &str) -> ServerInfo {
        crate::audit::call::server_info(
            mode,
            &self.policy_hash,
            crate::audit::call::protections(&self.policy, self.catalog.iter().count()),
            self.audit.config(),
        )
    }

    /// Writes a record. A record that will be synced before `append` returns goes through a
    /// blocking thread, so slow disks never stall the async workers and concurrent calls can
    /// share one sync; a call record under the `batch` policy is one `write` to the page cache
    /// (~10 µs) and is written in place.
    async fn record(&self, r: AuditRecord) -> Result<u64, AuditError> {
        if self.audit.config().sync == SyncPolicy::Batch && r.stage.is_call_record() {
            return self.audit.append(r);
        }
        let audit = Arc::clone(&self.audit);
        tokio::task::spawn_blocking(move || audit.append(r))
            .await
            .unwrap_or_else(|e| {
                Err(AuditError::Write {
                    file: String::new(),
                    source: std::io::Error::other(format!("audit writer task failed: {e}")),
                })
            })
    }

    /// Compiles or loads the built-in module in the background so the first call is fast and
    /// `initialize` is never delayed by compilation.
    pub async fn warm_up(&self) {
        if let Err(e) = self.wasi.prepare(&Program::Builtin).await {
            tracing::error!("built-in commands unavailable: {e}");
        }
    }

    /// The allowlist as clients see it.
    pub fn list_commands(&self) -> CommandList {
        CommandList {
            commands: self
                .catalog
                .iter()
                .map(|c| CommandInfo {
                    name: c.name.clone(),
                    description: c.description.clone(),
                    runner: c.runner,
                    access: c.access,
                    limits: c.limits(&self.policy.limits),
                    annotations: c.annotations(),
                })
                .collect(),
            max_timeout_ms: self.policy.max_timeout_ms,
            workspace_writable: self.policy.workspace_writable,
        }
    }

    /// Runs one `run` request through the whole pipeline. Every path writes a `received` record
    /// and then exactly one `denied`, `completed` or `failed` record (per stage, for a
    /// pipeline), and ends in one reply carrying `ctx.request_id`.
    pub async fn run(&self, args: RunArgs, ctx: &CallContext) -> CallReply {
        let _in_flight = InFlight::enter(self);
        match (&args.command, &args.pipeline) {
            (Some(command), None) => self.run_one(command, &args, ctx).await,
            (None, Some(stages)) => self.run_pipeline(stages, &args, ctx).await,
            (Some(_), Some(_)) => {
                let e = RunError::invalid("give either `command` or `pipeline`, not both")
                    .with_hint("for one command use {\"command\", \"args\"}; for several, list them all in `pipeline`");
                self.record_invalid_request(ctx, &e).await;
                CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None))
            }
            (None, None) => {
                let e = RunError::invalid("the request names no command").with_hint(
                    "pass {\"command\": NAME, \"args\": [..]}, or `pipeline` with 2 to 8 stages",
                );
                self.record_invalid_request(ctx, &e).await;
                CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None))
            }
        }
    }

    /// One command: the whole pipeline of checks, one run, its records.
    async fn run_one(&self, command: &str, args: &RunArgs, ctx: &CallContext) -> CallReply {
        let mut trail = CallTrail::new(&ctx.caller(), "run", &self.policy_hash);
        trail.request(command, &args.args, args.cwd.as_deref());
        if let Err(e) = self.record(trail.received()).await {
            return self.unavailable(&ctx.request_id, &e);
        }

        let request = Request {
            command,
            args: &args.args,
            cwd: args.cwd.as_deref(),
            stdin: args.stdin.as_deref(),
            timeout_ms: args.timeout_ms,
        };
        let checked = match self.check(&request) {
            Ok(c) => c,
            Err(e) => return self.refuse(&trail, &ctx.request_id, &e).await,
        };
        trail.allowed(
            checked.spec.runner,
            &checked.cwd.relative,
            rule_for(checked.spec),
            self.sandbox_for(&checked),
        );

        let _permit = match self.acquire_slot(ctx).await {
            Ok(p) => p,
            Err(e) => return self.fail(&trail, &ctx.request_id, &e).await,
        };

        let outcome = self.execute(&checked, ctx).await;
        if let Err(e) = self.record(trail.finished(&outcome)).await {
            return ran_unrecorded(&ctx.request_id, &e, &outcome);
        }
        reply_for(&ctx.request_id, &outcome)
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

    /// The sandbox a checked call runs in, for the audit log.
    fn sandbox_for(&self, c: &Checked<'_>) -> SandboxInfo {
        let writable = c.spec.access == Access::Write && self.policy.workspace_writable;
        if let (Program::Native(command), Some(native)) = (&c.spec.program, &self.native) {
            let p = native.protections();
            let network = if p.seccomp.is_ok() {
                "none"
            } else {
                "tcp denied by landlock only"
            };
            return crate::audit::call::native_sandbox(
                c.limits,
                writable,
                p.summary(),
                network,
                command.env.keys().map(String::as_str),
            );
        }
        let env_names = c
            .spec
            .guest_env(&self.guest_env)
            .iter()
            .map(|(k, _)| k.as_str());
        crate::audit::call::wasi_sandbox(c.limits, writable, env_names)
    }

    /// Validates a request against the policy; nothing runs before this passes.
    fn check(&self, args: &Request<'_>) -> Result<Checked<'_>, RunError> {
        let spec = self.catalog.lookup(args.command)?;
        let bounds = &self.policy.request;
        if args.args.len() > bounds.max_args {
            return Err(RunError::invalid(format!(
                "{} arguments given; the limit is {}",
                args.args.len(),
                bounds.max_args
            )));
        }
        let arg_bytes: usize = args.args.iter().map(String::len).sum();
        if arg_bytes > bounds.max_arg_bytes {
            return Err(RunError::invalid(format!(
                "arguments total {arg_bytes} bytes; the limit is {}",
                bounds.max_arg_bytes
            ))
            .with_hint("pass large data on stdin or in a workspace file instead"));
        }
        if let Some(i) = args.args.iter().position(|a| a.contains('\0')) {
            return Err(RunError::invalid(format!(
                "argument {i} contains a NUL byte"
            )));
        }
        let stdin_len = args.stdin.map_or(0, str::len);
        if stdin_len > bounds.max_stdin_bytes {
            return Err(RunError::invalid(format!(
                "stdin is {stdin_len} bytes; the limit is {}",
                bounds.max_stdin_bytes
            ))
            .with_hint("write large input to a workspace file and pass its name"));
        }
        if spec.access == Access::Write && !self.policy.workspace_writable {
            return Err(RunError::new(
                ErrorCode::ReadOnly,
                format!("{} changes files, and the policy makes the workspace read-only", spec.name),
            )
            .with_hint("use a command that only reads, or ask the operator to set workspace_writable = true"));
        }
        let cwd = self.workspace.resolve_dir(args.cwd.unwrap_or(""))?;
        let base = match &spec.program {
            Program::Native(n) => {
                let writable = spec.access == Access::Write && self.policy.workspace_writable;
                self.native
                    .as_ref()
                    .ok_or_else(|| RunError::internal("no native runner"))?
                    .ready(writable)?;
                n.limits
            }
            _ => spec.limits(&self.policy.limits),
        };
        let limits = base.with_timeout(args.timeout_ms, self.policy.max_timeout_ms)?;
        let mut argv = Vec::with_capacity(args.args.len() + 1);
        argv.push(spec.name.clone());
        argv.extend(args.args.iter().cloned());
        Ok(Checked {
            spec,
            argv,
            cwd,
            stdin: bytes::Bytes::from(args.stdin.unwrap_or_default().to_owned()),
            limits,
        })
    }

    async fn execute(&self, c: &Checked<'_>, ctx: &CallContext) -> Outcome {
        let writable = c.spec.access == Access::Write && self.policy.workspace_writable;
        if let (Program::Native(command), Some(native)) = (&c.spec.program, &self.native) {
            let run = NativeRun {
                command,
                argv: &c.argv,
                stdin: c.stdin.clone(),
                workspace: &self.workspace,
                cwd: &c.cwd,
                writable,
                limits: c.limits,
                live_output: Arc::clone(&ctx.live_output),
            };
            return native.run(run, &ctx.cancel).await;
        }
        let run = GuestRun {
            argv: &c.argv,
            env: c.spec.guest_env(&self.guest_env),
            stdin: c.stdin.clone(),
            workspace: &self.workspace,
            cwd: &c.cwd,
            writable,
            limits: c.limits,
            live_output: Arc::clone(&ctx.live_output),
        };
        self.wasi.run(&c.spec.program, run, &ctx.cancel).await
    }

    /// Records a refusal by the policy and turns it into a reply. If even the refusal cannot be
    /// recorded the reply says so, since the call is then invisible to the operator.
    async fn refuse(&self, trail: &CallTrail, request_id: &str, e: &RunError) -> CallReply {
        if let Err(ae) = self.record(trail.denied(e)).await {
            return self.unavailable(request_id, &ae);
        }
        CallReply::Failed(ErrorEnvelope::new(request_id, e, None))
    }

    /// Records an allowed call that ended before its command ran.
    async fn fail(&self, trail: &CallTrail, request_id: &str, e: &RunError) -> CallReply {
        if let Err(ae) = self.record(trail.failed(e)).await {
            return self.unavailable(request_id, &ae);
        }
        CallReply::Failed(ErrorEnvelope::new(request_id, e, None))
    }

    fn unavailable(&self, request_id: &str, e: &AuditError) -> CallReply {
        let err = RunError::new(
            ErrorCode::AuditUnavailable,
            format!("the audit log cannot be written ({e}); nothing was run"),
        )
        .with_hint("the operator must fix the audit directory; retry later");
        CallReply::Failed(ErrorEnvelope::new(request_id, &err, None))
    }

    /// Records a call refused before it reached the pipeline (its arguments did not parse):
    /// `received` then `denied`, so it is still visible in the log.
    pub async fn record_invalid_request(&self, ctx: &CallContext, e: &RunError) {
        let trail = CallTrail::new(&ctx.caller(), "run", &self.policy_hash);
        if self.record(trail.received()).await.is_ok() {
            let _ = self.record(trail.denied(e)).await;
        }
    }

    /// Records a call lost to a fault inside runbox (its `received` record is already written).
    pub async fn record_internal_failure(&self, ctx: &CallContext, e: &RunError) {
        let trail = CallTrail::new(&ctx.caller(), "run", &self.policy_hash);
        let _ = self.record(trail.failed(e)).await;
    }
}

/// Counts a call as running until dropped, so [`Service::stop`] can wait for it.
struct InFlight<'a>(&'a Service);

impl<'a> InFlight<'a> {
    fn enter(service: &'a Service) -> Self {
        service.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(service)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// The allowlist rule that let a command through, for `policy.rule`.
fn rule_for(spec: &CommandSpec) -> &'static str {
    match spec.program {
        Program::Builtin => "allowlist:builtin",
        Program::Module(_) => "allowlist:tools_dir",
        Program::Native(_) => "allowlist:native",
    }
}

/// Says at start what confines native commands, and what is missing.
fn log_protections(runner: &NativeRunner, required: bool) {
    let p = runner.protections();
    tracing::info!(
        landlock_abi = p.landlock_abi.unwrap_or(0),
        landlock = p.landlock.as_str(),
        seccomp = p.seccomp.is_ok(),
        namespaces = p.namespaces.is_ok(),
        identity = ?p.identity,
        "native runner ready"
    );
    for missing in p.missing() {
        if required {
            tracing::warn!("native commands will be refused: {missing}");
        } else {
            tracing::warn!("native commands run less confined: {missing}");
        }
    }
}

/// What [`Service::check`] judges: one command of a call.
struct Request<'a> {
    command: &'a str,
    args: &'a [String],
    cwd: Option<&'a str>,
    stdin: Option<&'a str>,
    timeout_ms: Option<u64>,
}

/// A request that passed every check.
struct Checked<'a> {
    spec: &'a CommandSpec,
    argv: Vec<String>,
    cwd: crate::workspace::WorkspaceDir,
    stdin: bytes::Bytes,
    limits: crate::limits::Limits,
}

/// Turns an outcome into the client's reply.
/// The reply for a command that ran but whose end record could not be written (the disk
/// filled up, the directory vanished): it says truthfully that it ran and what it did.
fn ran_unrecorded(request_id: &str, e: &AuditError, outcome: &Outcome) -> CallReply {
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

fn reply_for(request_id: &str, outcome: &Outcome) -> CallReply {
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
