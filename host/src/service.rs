//! The call pipeline, independent of MCP: validate → decide → audit → run → reply.
//!
//! [`Service`] owns the workspace capability, the allowlist, the runners, the audit log and the
//! concurrency slots. The MCP handler only translates; the `exec` CLI uses the same pipeline, so a
//! command behaves the same way whichever door it came through.

use crate::api::{CommandInfo, CommandList, ErrorEnvelope, PartialOutput, RunArgs, RunOutput};
use crate::audit::{AuditLog, AuditRecord, record::clip};
use crate::config::Policy;
use crate::error::{ErrorCode, RunError};
use crate::outcome::{Outcome, Termination};
use crate::policy::{Access, Catalog, CommandSpec, Program};
use crate::tools_dir;
use crate::wasi::cache::ModuleCache;
use crate::wasi::{GuestRun, WasiRuntime};
use crate::workspace::Workspace;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

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
}

impl CallContext {
    /// A context with a fresh request id.
    pub fn new(mcp_request_id: Option<String>, cancel: CancellationToken) -> Self {
        Self {
            request_id: new_request_id(),
            mcp_request_id,
            cancel,
            live_output: Arc::new(AtomicU64::new(0)),
        }
    }
}

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
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
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
    audit: AuditLog,
    slots: Arc<Semaphore>,
    guest_env: Vec<(String, String)>,
}

impl Service {
    /// Opens everything the policy names and checks the pieces fit together.
    pub fn start(
        policy: Policy,
        builtin_wasm: &'static [u8],
        builtin_manifest: &str,
    ) -> Result<Self, StartError> {
        let workspace = Workspace::open(&policy.workspace)?;
        if workspace.contains_host_path(&policy.audit_dir) {
            return Err(StartError::Config(format!(
                "audit_dir {} is inside the workspace, where commands could edit it; choose a directory outside {}",
                policy.audit_dir.display(),
                workspace.host_path().display()
            )));
        }
        let builtins = crate::policy::parse_builtin_manifest(builtin_manifest)
            .map_err(|e| StartError::Config(format!("built-in command manifest: {e}")))?;
        let mut catalog = Catalog::from_builtins(&builtins, policy.commands.as_deref())
            .map_err(StartError::Config)?;
        if let Some(dir) = &policy.tools_dir {
            if workspace.contains_host_path(dir) {
                return Err(StartError::Config(format!(
                    "tools_dir {} is inside the workspace, where commands could replace modules",
                    dir.display()
                )));
            }
            for spec in tools_dir::scan(dir).map_err(StartError::Config)? {
                if let Err(e) = catalog.add(spec) {
                    tracing::warn!(dir = %dir.display(), "skipping module: {e}");
                }
            }
        }
        let audit = AuditLog::open(&policy.audit_dir)?;
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
        let guest_env = policy
            .wasi_env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            slots: Arc::new(Semaphore::new(policy.max_concurrent)),
            policy,
            catalog,
            workspace,
            wasi,
            audit,
            guest_env,
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
                    limits: self.policy.limits,
                })
                .collect(),
            max_timeout_ms: self.policy.max_timeout_ms,
            workspace_writable: self.policy.workspace_writable,
        }
    }

    /// Runs one `run` request through the whole pipeline. Every path ends in exactly one audit
    /// record and one reply carrying `ctx.request_id`.
    pub async fn run(&self, args: RunArgs, ctx: &CallContext) -> CallReply {
        let mut record = AuditRecord::new(&ctx.request_id, "run");
        record.mcp_request_id = ctx.mcp_request_id.clone();
        record.command = clip(&args.command);
        record.argv = args.args.iter().take(64).map(|a| clip(a)).collect();
        record.cwd = args.cwd.as_deref().map(clip);

        let checked = match self.check(&args) {
            Ok(c) => c,
            Err(e) => return self.refuse(record, &ctx.request_id, &e),
        };
        record.runner = Some(checked.spec.runner.as_str().to_owned());
        record.cwd = Some(checked.cwd.relative.clone());
        if let Err(e) = self.audit.check() {
            tracing::error!("audit log unavailable: {e}");
            return self.unavailable(&ctx.request_id, &e);
        }

        let permit = tokio::select! {
            p = Arc::clone(&self.slots).acquire_owned() => p,
            _ = ctx.cancel.cancelled() => {
                let e = RunError::new(ErrorCode::Cancelled, "the call was cancelled while waiting for a free slot");
                return self.refuse(record, &ctx.request_id, &e);
            }
        };
        let Ok(_permit) = permit else {
            return self.refuse(
                record,
                &ctx.request_id,
                &RunError::internal("the call slots are closed"),
            );
        };

        let outcome = self.execute(&checked, ctx).await;
        record.decision = "allow".into();
        record.duration_ms = Some(u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX));
        record.stdout_bytes = Some(outcome.stdout.total_bytes);
        record.stderr_bytes = Some(outcome.stderr.total_bytes);
        record.stdout_truncated = Some(outcome.stdout.truncated);
        record.stderr_truncated = Some(outcome.stderr.truncated);
        match &outcome.termination {
            Termination::Exited(code) => record.exit_code = Some(*code),
            Termination::Stopped(e) => {
                record.code = Some(e.code.as_str().to_owned());
                record.message = Some(e.message.clone());
            }
        }
        if let Err(e) = self.audit.append(&record) {
            tracing::error!("audit record lost: {e}");
            return self.unavailable(&ctx.request_id, &e);
        }
        reply_for(&ctx.request_id, &outcome)
    }

    /// Validates a request against the policy; nothing runs before this passes.
    fn check(&self, args: &RunArgs) -> Result<Checked<'_>, RunError> {
        let spec = self.catalog.lookup(&args.command)?;
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
        let stdin_len = args.stdin.as_ref().map_or(0, String::len);
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
        let cwd = self
            .workspace
            .resolve_dir(args.cwd.as_deref().unwrap_or(""))?;
        let limits = self
            .policy
            .limits
            .with_timeout(args.timeout_ms, self.policy.max_timeout_ms)?;
        let mut argv = Vec::with_capacity(args.args.len() + 1);
        argv.push(spec.name.clone());
        argv.extend(args.args.iter().cloned());
        Ok(Checked {
            spec,
            argv,
            cwd,
            stdin: bytes::Bytes::from(args.stdin.clone().unwrap_or_default()),
            limits,
        })
    }

    async fn execute(&self, c: &Checked<'_>, ctx: &CallContext) -> Outcome {
        let run = GuestRun {
            argv: &c.argv,
            env: &self.guest_env,
            stdin: c.stdin.clone(),
            workspace: &self.workspace,
            cwd: &c.cwd,
            writable: c.spec.access == Access::Write && self.policy.workspace_writable,
            limits: c.limits,
            live_output: Arc::clone(&ctx.live_output),
        };
        self.wasi.run(&c.spec.program, run, &ctx.cancel).await
    }

    /// Records a refusal and turns it into a reply. If even the refusal cannot be recorded the
    /// reply says so, since the call is then invisible to the operator.
    fn refuse(&self, mut record: AuditRecord, request_id: &str, e: &RunError) -> CallReply {
        record.decision = "deny".into();
        record.code = Some(e.code.as_str().to_owned());
        record.message = Some(clip(&e.message));
        if let Err(ae) = self.audit.append(&record) {
            tracing::error!("audit record lost: {ae}");
            return self.unavailable(request_id, &ae);
        }
        CallReply::Failed(ErrorEnvelope::new(request_id, e, None))
    }

    fn unavailable(&self, request_id: &str, e: &crate::audit::AuditError) -> CallReply {
        let err = RunError::new(
            ErrorCode::AuditUnavailable,
            format!("the audit log cannot be written ({e}); nothing was run"),
        )
        .with_hint("the operator must fix the audit directory; retry later");
        CallReply::Failed(ErrorEnvelope::new(request_id, &err, None))
    }

    /// Records a call refused before it reached the pipeline (unparsable arguments) or lost to
    /// a bug inside runbox, so that it is still visible in the log.
    pub fn record_refusal(&self, request_id: &str, mcp_request_id: Option<String>, e: &RunError) {
        let mut record = AuditRecord::new(request_id, "run");
        record.mcp_request_id = mcp_request_id;
        record.code = Some(e.code.as_str().to_owned());
        record.message = Some(clip(&e.message));
        if let Err(ae) = self.audit.append(&record) {
            tracing::error!("audit record lost: {ae}");
        }
    }
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
            )
            .then(|| PartialOutput::from_outcome(outcome));
            CallReply::Failed(ErrorEnvelope::new(request_id, e, partial))
        }
    }
}
