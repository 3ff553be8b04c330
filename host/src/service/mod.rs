//! The call flow, independent of MCP: check every stage → audit `received` → run → audit the
//! end → reply, the same flow for a single command and a pipeline (a pipeline of one).
//!
//! [`Service`] owns the workspace capability, the allowlist, the runners, the audit log and the
//! concurrency slots, and its start-up wiring is here. The flow is in `flow`, its pure check step
//! in `check`, what passes between stages in `pipeline`, the reply's shape in `reply`. The MCP
//! handler only translates; the `exec` CLI uses the same flow, so a command behaves the same way
//! whichever door it came through.

use crate::api::{CommandInfo, CommandList, ErrorEnvelope, RunArgs, RunOutput};
use crate::audit::call::{CallTrail, Caller};
use crate::audit::record::{ClientInfo, ServerInfo, SessionInfo, Text};
use crate::audit::{AuditError, AuditLog, AuditRecord, Stage, SyncPolicy, SystemClock};
use crate::error::RunError;
use crate::native::NativeRunner;
use crate::policy::Catalog;
use crate::policy::assemble::{Assembly, assemble};
use crate::policy::{Policy, own_paths};
use crate::tools_dir;
use crate::wasi::cache::ModuleCache;
use crate::wasi::{WasiProgram, WasiRuntime, inspect};
use crate::workspace::Workspace;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

mod check;
mod flow;
mod pipeline;
mod reply;
mod script;
mod script_guests;
pub use check::MAX_STAGES;

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
    /// The HTTP session the call came through (`serve --listen`), for the audit log.
    pub session: Option<SessionInfo>,
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
            session: None,
        }
    }

    /// Adds the HTTP session the call came through.
    pub fn with_session(mut self, session: SessionInfo) -> Self {
        self.session = Some(session);
        self
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
            session: self.session.clone(),
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
    /// A `shell` script ran to its end (any exit status).
    Script(crate::api::ShellOutput),
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
    /// `tools_dir` could not be read.
    #[error(transparent)]
    Tools(#[from] tools_dir::ScanError),
    /// The command set is inconsistent (a name taken twice, a bad built-in manifest).
    #[error(transparent)]
    Catalog(#[from] crate::policy::assemble::AssembleError),
    /// `strict_tools` is set and some modules in `tools_dir` are not usable.
    #[error("strict_tools is set and tools_dir has unusable modules: {}", join(.0))]
    StrictTools(Vec<crate::policy::assemble::RejectedTool>),
    /// The native runner could not start.
    #[error(transparent)]
    Native(#[from] crate::native::NativeStartError),
    /// The WASI runtime could not start.
    #[error("{0}")]
    Runtime(RunError),
}

/// How many guest instances run at once: one per call slot, and never fewer than a pipeline's
/// most stages, so that every pipeline can run (its WASI stages run at the same time).
fn guest_slots(max_concurrent: usize) -> usize {
    max_concurrent.max(check::MAX_STAGES)
}

/// The rejected modules, one after another.
fn join(rejected: &[crate::policy::assemble::RejectedTool]) -> String {
    let all: Vec<String> = rejected.iter().map(ToString::to_string).collect();
    all.join("; ")
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
    /// One permit per guest instance the pool holds: a call takes one for each of its WASI
    /// stages, all at once, before any stage starts.
    guests: Arc<Semaphore>,
    /// The built-in module's environment (the policy's `[wasi.env]`).
    guest_env: Arc<[(String, String)]>,
    in_flight: AtomicUsize,
    drained: Notify,
}

impl Service {
    /// Opens everything the policy names and checks the pieces fit together. The audit log
    /// has no mirror ([`Service::start_mirrored`] takes one).
    pub fn start(
        policy: Policy,
        builtin_wasm: &'static [u8],
        builtin_manifest: &str,
    ) -> Result<Self, StartError> {
        Self::start_mirrored(policy, builtin_wasm, builtin_manifest, None)
    }

    /// [`Service::start`] with the audit log mirrored to `mirror`, which the caller took before
    /// opening anything (so that `fd:N` names an inherited descriptor, never one of runbox's).
    pub fn start_mirrored(
        policy: Policy,
        builtin_wasm: &'static [u8],
        builtin_manifest: &str,
        mirror: Option<crate::audit::mirror::Mirror>,
    ) -> Result<Self, StartError> {
        let workspace = Workspace::open(&policy.workspace)?;
        // Before anything is created or read: none of runbox's own paths may be one a command
        // can change.
        own_paths::check(&workspace, &policy.own_paths())?;
        let cache = ModuleCache::new(policy.cache_dir.as_deref())
            .with_precompiled(policy.precompiled_dir.as_deref());
        let guest_slots = guest_slots(policy.max_concurrent);
        let pool = crate::wasi::engine::PoolSize {
            instances: u32::try_from(guest_slots).unwrap_or(u32::MAX),
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
                Some(tools_dir::scan(dir, &policy, check)?)
            }
            None => None,
        };
        let Assembly { catalog, rejected } = assemble(&policy, builtin_manifest, tools)?;
        for r in &rejected {
            tracing::warn!("tools_dir: not offering {r}");
        }
        if policy.strict_tools && !rejected.is_empty() {
            return Err(StartError::StrictTools(rejected));
        }
        let native = if policy.native.is_empty() {
            None
        } else {
            let runner = NativeRunner::new(&policy, &workspace)?;
            log_protections(&runner, policy.sandbox.require_confinement);
            Some(runner)
        };
        // Opened last, so a start refused for a bad configuration leaves no trace in the log.
        // An unusable audit directory does not stop the server: calls are refused with
        // AUDIT_UNAVAILABLE (and the reason is on stderr) until the operator fixes it.
        let audit =
            AuditLog::open_with_mirror(policy.audit_config(), Arc::new(SystemClock), mirror);
        let guest_env = policy
            .wasi_env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            slots: Arc::new(Semaphore::new(policy.max_concurrent)),
            guests: Arc::new(Semaphore::new(guest_slots)),
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

    /// The workspace.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
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
        self.wait_idle(tokio::time::Instant::now() + STOP_DRAIN)
            .await;
        let mut r = AuditRecord::new(Stage::Stop);
        let mut info = self.server_info(mode);
        info.protections.clear();
        info.audit = None;
        info.reason = Some(reason.to_owned());
        info.in_flight = Some(self.in_flight.load(Ordering::Acquire) as u64);
        r.server = Some(info);
        let _ = self.record(r).await;
    }

    /// Waits until no call is running or `deadline` passes; returns whether none is running.
    pub async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let drained = self.drained.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return self.in_flight.load(Ordering::Acquire) == 0;
            }
        }
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
    pub(crate) async fn record(&self, r: AuditRecord) -> Result<u64, AuditError> {
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
        let builtin = WasiProgram::Builtin {
            env: Arc::clone(&self.guest_env),
        };
        if let Err(e) = self.wasi.prepare(&builtin).await {
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

    /// Runs one `run` request through the whole flow. Every path writes a `received` record
    /// and then exactly one `denied`, `completed` or `failed` record (per stage, for a
    /// pipeline), and ends in one reply carrying `ctx.request_id`.
    pub async fn run(&self, args: RunArgs, ctx: &CallContext) -> CallReply {
        let _in_flight = InFlight::enter(self);
        match check::shape_of(&args) {
            Ok(call) => self.run_call(&call, ctx).await,
            Err(e) => {
                self.record_invalid_request(ctx, &e).await;
                CallReply::Failed(ErrorEnvelope::new(&ctx.request_id, &e, None))
            }
        }
    }

    /// What the check step judges by.
    fn checker(&self) -> check::Checker<'_> {
        check::Checker {
            policy: &self.policy,
            catalog: &self.catalog,
            workspace: &self.workspace,
            native: self.native.as_ref(),
            guest_env: &self.guest_env,
        }
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

/// Says at start what confines native commands, and what is missing.
fn log_protections(runner: &NativeRunner, required: bool) {
    let p = runner.protections();
    tracing::info!(
        landlock_abi = p.landlock_abi.unwrap_or(0),
        landlock = p.landlock.as_str(),
        seccomp = p.seccomp.is_ok(),
        namespaces = p.namespaces.is_ok(),
        isolation = p.mechanism().map_or("none", |m| m.as_str()),
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
