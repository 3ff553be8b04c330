//! The native runner: real binaries from the policy's `[native.NAME]` tables, run as a hostile
//! process would have to be run.
//!
//! An allowlisted binary such as git runs arbitrary code through its own arguments
//! (`-c core.fsmonitor=CMD`), so argv checks cannot be the boundary; the kernel is. Each call:
//! an empty scratch `HOME`/`TMPDIR` ([`scratch`]), a Landlock ruleset and seccomp filters
//! ([`confine`]), the child's environment and rlimits (`plan`), then a child in its own user +
//! PID namespace that drops to the sandbox uid and execs the binary ([`spawn`], `child`) — or,
//! where namespaces cannot be made (Docker's default seccomp profile) or the policy says
//! `sandbox.isolation = "reaper"`, the same child started by a per-call reaper process that
//! holds the tree together instead ([`reaper`], [`isolation`] chooses). It
//! implements the [`crate::runner`] contract for [`NativeCommand`]s: its streams are OS pipes
//! the server pumps from and to the contract's captures and a pipeline's in-memory pipes
//! (`stdio`; a command writing to a pipe nobody reads any more is killed and exits 141, the
//! SIGPIPE its PID-1 status would keep the kernel from delivering), and when the contract stops the run (timeout,
//! cancellation, server exit) the whole tree dies ([`reap`]) and the outcome says how many
//! processes were killed; `verdict` turns an exit into the client's result.
//!
//! A command's toolchain keys (its own extra paths, workspace execute, passed-through variables,
//! memory rlimit) are prepared at start ([`extras`]) and added to that command's calls only;
//! where the host delegates a cgroup v2, each call also gets a cgroup of its own ([`cgroup`]:
//! `memory.max`, `pids.max`, `cgroup.kill`, an out-of-memory kill reported as MEMORY_LIMIT).
//!
//! [`probe`] finds out at start which protections this machine gives and [`doctor`] prints them;
//! with `sandbox.require_confinement = true` (the default) a call is refused with
//! SANDBOX_UNAVAILABLE unless all of them hold. [`policy`] holds the validated policy types.
//!
//! This module must not run anything unconfined that the policy requires confined, and must
//! not return from a call while any process of it is alive.

pub mod access;
pub mod cgroup;
mod child;
pub mod confine;
pub mod doctor;
pub mod extras;
pub mod isolation;
mod plan;
mod prepare;
pub mod probe;
pub mod reap;
pub mod reaper;
pub mod scratch;
pub mod spawn;
mod stdio;
mod verdict;

use crate::audit::call::NativeGrants;
use crate::audit::record::SandboxInfo;
use crate::error::{ErrorCode, RunError};
use crate::limits::Limits;
use crate::outcome::{RunnerKind, Termination};
use crate::policy::toolchain::MemoryRlimit;
use crate::policy::{self, Policy};
use crate::runner::{Aftermath, CallInput, Runner, Running, Streams};
use crate::workspace::Workspace;
use cgroup::{CallCgroup, CallCgroups, CgroupUnavailable};
use confine::SystemPaths;
use extras::CommandExtras;
use isolation::Mechanism;
use plan::{above_stdio, cstring, environment, rlimits};
use policy::NativeCommand;
pub use prepare::{identity_for, prepare};
use probe::{Enforcement, Protections};
use reap::{Holder, Sandboxed};
use reaper::launch::ReaperBinary;
use spawn::{ChildPlan, Identity};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;
use tokio::time::Instant;
use verdict::{classify, spawn_error};

/// `PATH` of every native command.
pub const NATIVE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How long output may still be drained after the command's tree is gone.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Why the native runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum NativeStartError {
    /// The per-server scratch root could not be made.
    #[error("cannot make the native scratch directory: {0}")]
    Scratch(std::io::Error),
    /// The temp directory is inside the workspace.
    #[error("the temp directory {} is inside the workspace; set TMPDIR elsewhere", .0.display())]
    ScratchInWorkspace(std::path::PathBuf),
    /// The reaper mode is in force but runbox's own binary cannot be opened to start reapers.
    #[error("cannot open runbox's own binary (/proc/self/exe) to start reapers: {0}")]
    ReaperBinary(std::io::Error),
}

/// What the runner holds between calls: the opened system paths, the filters, the scratch root
/// and the probe results.
#[derive(Debug)]
pub struct NativeRunner {
    require: bool,
    identity: Identity,
    system: SystemPaths,
    seccomp: Vec<seccompiler::BpfProgram>,
    scratch: scratch::ScratchRoot,
    protections: Protections,
    workspace_read: Result<(), probe::WorkspaceAccessError>,
    workspace_write: Result<(), probe::WorkspaceAccessError>,
    /// Set when the reaper mode is in force.
    reaper: Option<ReaperBinary>,
    /// The policy's `limits.max_concurrent` (the reaper mode's per-uid process ceiling is
    /// `processes` times this).
    max_concurrent: u64,
    /// Each command's toolchain additions, by name.
    extras: BTreeMap<String, CommandExtras>,
    /// Where per-call cgroups are made, or why there are none.
    cgroups: Result<CallCgroups, CgroupUnavailable>,
}

impl NativeRunner {
    /// Opens the policy's paths, builds the filters, probes the kernel and makes the scratch
    /// root.
    pub fn new(policy: &Policy, workspace: &Workspace) -> Result<Self, NativeStartError> {
        let identity = identity_for(&policy.sandbox);
        let (system, seccomp, protections) = prepare(policy, identity);
        let scratch = scratch::ScratchRoot::create().map_err(NativeStartError::Scratch)?;
        if workspace.contains_host_path(scratch.path()) {
            return Err(NativeStartError::ScratchInWorkspace(
                scratch.path().to_owned(),
            ));
        }
        let root = workspace.host_path();
        let reaper = match protections.mechanism() {
            Some(Mechanism::Reaper) => {
                Some(ReaperBinary::open().map_err(NativeStartError::ReaperBinary)?)
            }
            _ => None,
        };
        let cgroups = CallCgroups::establish(&policy.sandbox.cgroup, &cgroup::Host::current());
        match &cgroups {
            Ok(c) => tracing::info!(parent = %c.parent().display(), "per-call cgroups in force"),
            Err(why) => tracing::info!(%why, "no per-call cgroups"),
        }
        Ok(Self {
            reaper,
            extras: extras::prepare(policy),
            cgroups,
            max_concurrent: policy.max_concurrent as u64,
            require: policy.sandbox.require_confinement,
            identity,
            system,
            seccomp,
            scratch,
            workspace_read: probe::workspace_access(root, identity, false),
            workspace_write: probe::workspace_access(root, identity, true),
            protections,
        })
    }

    /// What this machine gives native commands.
    pub fn protections(&self) -> &Protections {
        &self.protections
    }

    /// The policy paths that did not exist at start.
    pub fn skipped_paths(&self) -> &[std::path::PathBuf] {
        self.system.skipped()
    }

    /// Whether a call may run; checked before the call is recorded as allowed.
    ///
    /// # Errors
    /// SANDBOX_UNAVAILABLE when confinement is required and incomplete, or when the sandbox
    /// uid cannot use the workspace.
    pub fn ready(&self, writable: bool) -> Result<(), RunError> {
        if self.require && !self.protections.complete() {
            let missing = self.protections.missing().join("; ");
            return Err(RunError::new(
                ErrorCode::SandboxUnavailable,
                format!("native commands need full kernel confinement, which is missing here: {missing}"),
            )
            .with_hint("the operator can run `runbox doctor`; sandbox.require_confinement = false runs with what is available"));
        }
        let access = if writable {
            &self.workspace_write
        } else {
            &self.workspace_read
        };
        if let Err(why) = access {
            let hint = match self.identity {
                Identity::Drop { uid, gid } => format!(
                    "the operator must give uid {uid} access (e.g. chown -R {uid}:{gid} on the workspace and make its parents searchable) or set sandbox.user/sandbox.group to the workspace owner"
                ),
                Identity::Keep { .. } => "fix the workspace permissions".to_owned(),
            };
            return Err(
                RunError::new(ErrorCode::SandboxUnavailable, why.to_string()).with_hint(hint),
            );
        }
        Ok(())
    }

    /// The call's Landlock ruleset, unless the kernel has no Landlock (then the policy allowed
    /// running without it, or [`ready`](Self::ready) refused the call).
    fn ruleset(
        &self,
        run: &CallInput<'_, NativeCommand>,
        scratch: &scratch::CallScratch<'_>,
    ) -> Result<Option<OwnedFd>, RunError> {
        if self.protections.landlock == Enforcement::None {
            return Ok(None);
        }
        let dir = scratch
            .dir()
            .ok_or_else(|| RunError::internal("the scratch directory is gone"))?;
        let own = self.extras.get(&run.program.name).map(|e| &e.paths);
        let workspace = confine::WorkspaceRule {
            root: run.workspace.root(),
            writable: run.writable,
            exec: run.program.toolchain.workspace_exec,
        };
        confine::landlock_ruleset(&self.system, own, workspace, dir)
            .map_err(|e| unavailable("cannot build the Landlock ruleset", &e))
    }
}

impl Runner for NativeRunner {
    type Program = NativeCommand;
    type Running<'r> = NativeChild<'r>;
    const KIND: RunnerKind = RunnerKind::Native;
    const WHILE_STARTING: &'static str = "its sandbox was being set up";
    const ON_TIMEOUT: &'static str = "was stopped with everything it started";

    fn sandbox(&self, command: &NativeCommand, limits: Limits, writable: bool) -> SandboxInfo {
        let p = &self.protections;
        let network = if p.seccomp.is_ok() {
            "none"
        } else {
            "tcp denied by landlock only"
        };
        let t = &command.toolchain;
        let list = |v: &[std::path::PathBuf]| v.iter().map(|p| p.display().to_string()).collect();
        let passed = self
            .extras
            .get(&command.name)
            .map(|e| &e.env[..])
            .unwrap_or(&[]);
        let rlimit = match t.memory_rlimit {
            MemoryRlimit::AddressSpace => "rlimit-as",
            MemoryRlimit::Data => "rlimit-data",
            MemoryRlimit::Off => "none",
        };
        crate::audit::call::native_sandbox(
            limits,
            crate::audit::call::NativeSandbox {
                writable,
                exec: t.workspace_exec,
                mechanism: p.summary(),
                network,
                env_names: command
                    .env
                    .keys()
                    .map(String::as_str)
                    .chain(passed.iter().map(|(k, _)| k.as_str())),
                grants: NativeGrants {
                    exec_paths: list(&t.exec_paths),
                    read_paths: list(&t.read_paths),
                    write_paths: list(&t.write_paths),
                    memory: if self.cgroups.is_ok() {
                        format!("{rlimit} + cgroup memory.max")
                    } else {
                        rlimit.to_owned()
                    },
                },
            },
        )
    }

    /// Makes the call's scratch directory, pipes and ruleset, and spawns the confined child
    /// with its streams pumped from and to `streams` ([`stdio`]). Never waits.
    async fn start<'r>(
        &'r self,
        run: &CallInput<'_, NativeCommand>,
        streams: Streams,
    ) -> Result<NativeChild<'r>, RunError> {
        let began = std::time::Instant::now();
        let owner = match self.identity {
            Identity::Drop { uid, gid } => Some((uid, gid)),
            Identity::Keep { .. } => None,
        };
        let scratch = self
            .scratch
            .call(owner)
            .map_err(|e| unavailable("cannot make the call's scratch directory", &e))?;
        let (ends, pumps) = stdio::connect(streams.stdin, streams.stdout, streams.stderr)
            .map_err(|e| unavailable("cannot make the command's pipes", &e))?;
        // From here on, an early return drops `pumps`, which aborts its tasks.
        let mechanism = self.protections.mechanism();
        let namespaces = mechanism == Some(Mechanism::Namespaces);
        // Without a namespace RLIMIT_NPROC counts every process of the uid: leave room for the
        // other calls; the reaper bounds this call's tree.
        let nproc_share = if namespaces { 1 } else { self.max_concurrent };
        let passed = self
            .extras
            .get(&run.program.name)
            .map(|e| &e.env[..])
            .unwrap_or(&[]);
        let cgroup: Option<CallCgroup> = match &self.cgroups {
            Ok(c) => Some(
                c.create(&run.limits)
                    .map_err(|e| unavailable("cannot make the call's cgroup", &e))?,
            ),
            Err(_) => None,
        };
        let plan = ChildPlan {
            path: cstring(run.program.path.as_os_str().as_encoded_bytes())?,
            argv: run
                .argv
                .iter()
                .map(|a| cstring(a.as_bytes()))
                .collect::<Result<_, _>>()?,
            envp: environment(run.program, passed, &scratch)?,
            stdio: [
                above_stdio(ends.stdin)?,
                above_stdio(ends.stdout)?,
                above_stdio(ends.stderr)?,
            ],
            cwd: run.cwd.dir.as_fd(),
            ruleset: self.ruleset(run, &scratch)?,
            // Only when they install; if not, ready() refused the call unless the policy allows
            // running without them.
            seccomp: if self.protections.seccomp.is_ok() {
                &self.seccomp
            } else {
                &[]
            },
            identity: self.identity,
            namespaces,
            rlimits: rlimits(
                &run.limits,
                nproc_share,
                run.program.toolchain.memory_rlimit,
            ),
            cgroup: cgroup.as_ref().and_then(CallCgroup::procs),
        };
        let child = match (&self.reaper, mechanism) {
            (Some(binary), Some(Mechanism::Reaper)) => {
                let max_tasks = run.limits.processes;
                let (wire_plan, hand_over) = reaper::launch::split(plan, max_tasks);
                let launched = reaper::launch::launch(binary, &wire_plan, hand_over)
                    .map_err(|e| spawn_error(run.program, &e))?;
                let holder = Holder::Reaper {
                    control: Some(launched.control),
                    report: launched.report,
                };
                Sandboxed::new(launched.pid, launched.pidfd, holder)
            }
            _ => {
                let spawned = spawn::spawn(&plan).map_err(|e| spawn_error(run.program, &e))?;
                drop(plan);
                let holder = if namespaces {
                    Holder::Namespace
                } else {
                    Holder::Session
                };
                Sandboxed::new(spawned.pid, spawned.pidfd, holder)
            }
        }
        .map_err(|e| RunError::internal(format!("cannot watch the child: {e}")))?;
        Ok(NativeChild {
            child,
            cgroup,
            pumps,
            scratch,
            began,
            execd: std::time::Instant::now(),
        })
    }
}

/// One started native command: its confined tree, the tasks pumping its streams, and its
/// scratch directory (emptied once the tree is gone).
pub struct NativeChild<'r> {
    child: Sandboxed,
    /// Dropped after the tree is reaped (field order): kills what is left in it and removes it.
    cgroup: Option<CallCgroup>,
    pumps: stdio::Pumps,
    scratch: scratch::CallScratch<'r>,
    began: std::time::Instant,
    execd: std::time::Instant,
}

impl NativeChild<'_> {
    /// Kills everything in the call's cgroup too, when it has one (the tree mechanisms already
    /// kill the tree; this also reaches a process that left it).
    fn kill_cgroup(&self) {
        if let Some(c) = &self.cgroup {
            c.kill();
        }
    }

    /// The tree is gone: drains what is left in the pipes (cut when it was `killed`), then
    /// frees the scratch directory.
    async fn finish(self, deadline: Instant, killed: Option<u32>) {
        let ended = std::time::Instant::now();
        // The pipes are at EOF unless something outside the tree holds them; never wait long
        // for that.
        let grace = deadline
            .saturating_duration_since(Instant::now())
            .min(DRAIN_GRACE)
            .max(Duration::from_millis(20));
        self.pumps.finish(killed.is_some(), grace).await;
        drop(self.scratch);
        tracing::debug!(
            setup_us = micros(self.execd - self.began),
            run_us = micros(ended - self.execd),
            finish_us = micros(ended.elapsed()),
            killed,
            "native call"
        );
    }
}

/// How a native command ended by itself.
pub enum NativeExit {
    /// Its PID 1 exited (and with it the tree).
    Ended(std::io::Result<reap::Exit>),
    /// It wrote to a pipe the next stage had stopped reading, and was killed for it (with
    /// everything it started), as SIGPIPE would have.
    BrokenPipe,
}

impl Running for NativeChild<'_> {
    type Exit = NativeExit;

    /// Waits for the command's PID 1 (and with it the tree) to exit, or for the next stage to
    /// stop reading its stdout (then kills the tree); cancel-safe.
    async fn wait(&mut self) -> NativeExit {
        tokio::select! {
            biased;
            exit = self.child.wait() => NativeExit::Ended(exit),
            () = self.pumps.broken() => {
                self.child.kill_tree();
                self.kill_cgroup();
                let _ = self.child.wait().await;
                NativeExit::BrokenPipe
            }
        }
    }

    async fn exited(
        self,
        exit: NativeExit,
        limits: &Limits,
        deadline: Instant,
    ) -> (Termination, Aftermath) {
        let oom = self.cgroup.as_ref().is_some_and(CallCgroup::oom_killed);
        let termination = match exit {
            NativeExit::Ended(Ok(_)) if oom => Termination::Stopped(verdict::out_of_memory(limits)),
            NativeExit::Ended(Ok(exit)) => classify(exit, limits),
            NativeExit::Ended(Err(e)) => Termination::Stopped(RunError::internal(format!(
                "cannot wait for the command: {e}"
            ))),
            NativeExit::BrokenPipe => Termination::Exited(crate::runner::SIGPIPE_EXIT),
        };
        self.finish(deadline, None).await;
        (termination, Aftermath::default())
    }

    /// Kills the whole tree (counting it first) and waits until it is reaped.
    async fn stop(mut self, deadline: Instant) -> Aftermath {
        let killed = self.child.kill_tree();
        self.kill_cgroup();
        let _ = self.child.wait().await;
        self.finish(deadline, Some(killed)).await;
        Aftermath {
            processes_killed: Some(killed),
            file_writes: None,
        }
    }
}

fn unavailable(what: &str, e: &dyn std::fmt::Display) -> RunError {
    RunError::new(ErrorCode::SandboxUnavailable, format!("{what}: {e}"))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
