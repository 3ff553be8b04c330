//! The audit trail of one call: builds its records stage by stage, so the call pipeline (the
//! service) only says what happened. Pure: nothing here writes.
//!
//! Every call yields a `received` record first and then exactly one of `denied` (the policy
//! refused it, nothing ran), `completed` (the command exited by itself) or `failed` (it was
//! allowed but a limit, a cancellation, a crash or a fault inside runbox ended it). All of them
//! carry the same `requestId` and the request as it was asked.

use super::AuditConfig;
use super::record::{
    AuditRecord, AuditSettings, ClientInfo, Confinement, Decision, PolicyInfo, ResultInfo,
    SandboxInfo, ServerInfo, SessionInfo, Stage, Text, denial_rule,
};
use crate::error::RunError;
use crate::limits::Limits;
use crate::outcome::{Outcome, RunnerKind, Termination};
use crate::policy::Policy;
use serde::{Deserialize, Serialize};

/// Who made a call and how to find it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// runbox's id for the call (UUID v7).
    pub request_id: String,
    /// The client's JSON-RPC id.
    pub mcp_request_id: Option<String>,
    /// The client's name and version from the MCP handshake.
    pub client: Option<ClientInfo>,
    /// The HTTP session the call came through, if any.
    pub session: Option<SessionInfo>,
}

/// The records of one call.
#[derive(Debug, Clone)]
pub struct CallTrail {
    base: AuditRecord,
    policy_hash: String,
}

impl CallTrail {
    /// A trail for a call of `tool` judged by the policy with `policy_hash`.
    pub fn new(caller: &Caller, tool: &str, policy_hash: &str) -> Self {
        let mut base = AuditRecord::new(Stage::Received);
        base.request_id = Some(caller.request_id.clone());
        base.mcp_request_id = caller.mcp_request_id.as_deref().map(Text::of);
        base.client = caller.client.clone();
        base.session = caller.session.clone();
        base.tool = Some(tool.to_owned());
        Self {
            base,
            policy_hash: policy_hash.to_owned(),
        }
    }

    /// Records what was asked: command, arguments and working directory as requested.
    pub fn request(&mut self, command: &str, args: &[String], cwd: Option<&str>) {
        self.base.command = Some(Text::of(command));
        self.base.set_args(args);
        self.base.cwd = cwd.map(Text::of);
    }

    /// Records a `shell` call's script and working directory as requested.
    pub fn request_script(&mut self, script: &str, cwd: Option<&str>) {
        self.base.script = Some(Text::of_up_to(script, super::record::MAX_SCRIPT_BYTES));
        self.base.cwd = cwd.map(Text::of);
    }

    /// Records the client line the MCP front refused (for `tool` `protocol`).
    pub fn refused_line(&mut self, line: Text) {
        self.base.line = Some(line);
    }

    /// Marks every record of this trail as stage `stage` (from 1) of a pipeline of `of`.
    pub fn in_pipeline(&mut self, stage: usize, of: usize) {
        self.base.pipeline = Some(super::record::PipelinePosition {
            stage: u32::try_from(stage).unwrap_or(u32::MAX),
            of: u32::try_from(of).unwrap_or(u32::MAX),
        });
    }

    /// The `received` record.
    pub fn received(&self) -> AuditRecord {
        self.base.clone()
    }

    /// Records that the policy allowed the call: which runner, the resolved working directory,
    /// the rule that allowed it and the sandbox it gets. Later records carry all of it.
    pub fn allowed(&mut self, runner: RunnerKind, cwd: &str, rule: &str, sandbox: SandboxInfo) {
        self.base.runner = Some(runner.as_str().to_owned());
        self.base.cwd = Some(Text::of(cwd));
        self.base.policy = Some(self.policy(Decision::Allow, rule));
        self.base.sandbox = Some(sandbox);
    }

    /// The `denied` record for a refusal by the policy.
    pub fn denied(&self, e: &RunError) -> AuditRecord {
        let mut r = self.base.clone();
        r.stage = Stage::Denied;
        r.policy = Some(self.policy(Decision::Deny, denial_rule(e.code)));
        r.set_error(e.code, &e.message);
        r
    }

    /// The `completed` or `failed` record of a command that ran.
    pub fn finished(&self, outcome: &Outcome) -> AuditRecord {
        let mut r = self.base.clone();
        r.result = Some(ResultInfo::of(outcome));
        match &outcome.termination {
            Termination::Exited(_) => r.stage = Stage::Completed,
            Termination::Stopped(e) => {
                r.stage = Stage::Failed;
                r.set_error(e.code, &e.message);
            }
        }
        r
    }

    /// The `failed` record of a call that ended without an outcome (cancelled while waiting
    /// for a slot, a fault inside runbox).
    pub fn failed(&self, e: &RunError) -> AuditRecord {
        let mut r = self.base.clone();
        r.stage = Stage::Failed;
        r.set_error(e.code, &e.message);
        r
    }

    fn policy(&self, decision: Decision, rule: &str) -> PolicyInfo {
        PolicyInfo {
            decision,
            rule: rule.to_owned(),
            hash: self.policy_hash.clone(),
        }
    }
}

/// The sandbox of a WASI command: its limits, the workspace view, no network, and the names of
/// the environment variables it gets (the runner always adds `PWD` and `TMPDIR`).
pub fn wasi_sandbox<'a>(
    limits: Limits,
    writable: bool,
    env_names: impl Iterator<Item = &'a str>,
) -> SandboxInfo {
    let mut env_names: Vec<String> = env_names.map(str::to_owned).collect();
    env_names.extend(["PWD".to_owned(), "TMPDIR".to_owned()]);
    SandboxInfo {
        limits,
        confinement: Confinement {
            mechanism: "wasi".to_owned(),
            filesystem: if writable { "read-write" } else { "read-only" }.to_owned(),
            network: "none".to_owned(),
            env_names,
            native: None,
        },
    }
}

/// What a native command's toolchain keys add (paths as the policy names them), and what bounds
/// its memory: `rlimit-as`, `rlimit-data` or `none`, each with `+ cgroup memory.max` when the
/// call has a cgroup of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NativeGrants {
    /// Read + execute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec_paths: Vec<String>,
    /// Read only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_paths: Vec<String>,
    /// Read + write, never execute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_paths: Vec<String>,
    /// What bounds memory.
    pub memory: String,
}

/// What the native runner tells the audit record about one command's sandbox.
pub struct NativeSandbox<'a, I: Iterator<Item = &'a str>> {
    /// Whether the workspace is writable for this call.
    pub writable: bool,
    /// Whether the workspace is executable for this command (`workspace_exec`).
    pub exec: bool,
    /// What the kernel enforces (the runner's probe summary).
    pub mechanism: String,
    /// The network, as enforced.
    pub network: &'a str,
    /// Names of the variables it gets besides runbox's fixed ones.
    pub env_names: I,
    /// Its extra paths and memory bound.
    pub grants: NativeGrants,
}

/// The sandbox of a native command: its limits, the workspace view (with `-exec` when the
/// command may execute files there), what the kernel enforces (`mechanism` and `network`, from
/// the runner's probe), the names of its environment variables (the runner always sets `HOME`,
/// `LANG`, `PATH` and `TMPDIR`), its extra paths and its memory bound.
pub fn native_sandbox<'a>(
    limits: Limits,
    n: NativeSandbox<'a, impl Iterator<Item = &'a str>>,
) -> SandboxInfo {
    let mut names: std::collections::BTreeSet<String> = ["HOME", "LANG", "PATH", "TMPDIR"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    names.extend(n.env_names.map(str::to_owned));
    let view = if n.writable {
        "read-write"
    } else {
        "read-only"
    };
    SandboxInfo {
        limits,
        confinement: Confinement {
            mechanism: n.mechanism,
            filesystem: if n.exec {
                format!("{view}-exec")
            } else {
                view.to_owned()
            },
            network: n.network.to_owned(),
            env_names: names.into_iter().collect(),
            native: Some(n.grants),
        },
    }
}

/// The protections a policy puts in force, for `start` records: one short phrase each.
pub fn protections(policy: &Policy, commands: usize) -> Vec<String> {
    let mut p = vec![
        format!("allowlist: {commands} exact command names"),
        "no shell: argv passed verbatim".to_owned(),
        "wasi: only the workspace and a per-call scratch dir are preopened; no network; \
         env limited to policy names + PWD, TMPDIR"
            .to_owned(),
        "wasi limits: fuel, memory, table elements, epoch deadline".to_owned(),
        if policy.workspace_writable {
            "workspace writable only by commands marked write".to_owned()
        } else {
            "workspace read-only for every command".to_owned()
        },
        "paths resolved beneath the workspace (openat2 RESOLVE_BENEATH)".to_owned(),
        "bounded output capture".to_owned(),
        "audit fail-closed: no received record, no run".to_owned(),
    ];
    if policy.allow_root {
        p.push("allow_root: may run as root".to_owned());
    }
    p
}

/// The server section of `start` and `stop` records.
pub fn server_info(
    mode: &str,
    policy_hash: &str,
    protections: Vec<String>,
    audit: &AuditConfig,
) -> ServerInfo {
    ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
        mode: mode.to_owned(),
        policy_hash: policy_hash.to_owned(),
        protections,
        audit: Some(AuditSettings {
            retention_days: audit.retention_days,
            max_file_bytes: audit.max_file_bytes,
            max_total_bytes: audit.max_total_bytes,
            durability: audit.sync.describe().to_owned(),
            mirror: audit.mirror.map(|m| m.to_string()),
        }),
        reason: None,
        in_flight: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::outcome::Capture;
    use std::time::Duration;

    fn trail() -> CallTrail {
        let caller = Caller {
            request_id: "rid".into(),
            mcp_request_id: Some("7".into()),
            client: Some(ClientInfo {
                name: Text::of("client"),
                version: Text::of("1.0"),
            }),
            session: None,
        };
        let mut t = CallTrail::new(&caller, "run", "ph");
        t.request("echo", &["hi".into()], Some("sub"));
        t
    }

    fn outcome(termination: Termination) -> Outcome {
        let out = Capture::new(2);
        out.push(b"hi\n");
        Outcome {
            termination,
            stdout: out.finish(),
            stderr: Capture::new(0).finish(),
            duration: Duration::from_millis(5),
            runner: RunnerKind::Wasi,
            processes_killed: None,
            file_writes: None,
        }
    }

    #[test]
    fn the_client_id_is_cut_like_any_value() {
        let long = "7".repeat(15 * 1024 * 1024);
        let caller = Caller {
            request_id: "rid".into(),
            mcp_request_id: Some(long.clone()),
            client: None,
            session: None,
        };
        let t = CallTrail::new(&caller, "run", "ph");
        let line = crate::audit::chain::seal(&mut t.received()).unwrap();
        assert!(line.len() < 2048, "{} bytes", line.len());
        let Some(Text::Cut(c)) = t.received().mcp_request_id else {
            panic!("not cut")
        };
        assert_eq!(c.bytes, long.len() as u64);
        assert_eq!(c.sha256, crate::audit::record::sha256_hex(long.as_bytes()));
        assert_eq!(trail().received().mcp_request_id, Some(Text::of("7")));
    }

    #[test]
    fn every_stage_carries_the_request() {
        let mut t = trail();
        let r = t.received();
        assert_eq!(r.stage, Stage::Received);
        assert_eq!(r.request_id.as_deref(), Some("rid"));
        assert!(r.policy.is_none());
        let d = t.denied(&RunError::new(ErrorCode::CommandNotAllowed, "no"));
        assert_eq!(d.stage, Stage::Denied);
        assert_eq!(d.policy.as_ref().unwrap().rule, "allowlist");
        assert_eq!(d.policy.as_ref().unwrap().decision, Decision::Deny);

        let sandbox = wasi_sandbox(Limits::default(), false, ["LANG"].into_iter());
        assert_eq!(sandbox.confinement.env_names, ["LANG", "PWD", "TMPDIR"]);
        t.allowed(RunnerKind::Wasi, "sub", "allowlist:builtin", sandbox);
        let c = t.finished(&outcome(Termination::Exited(0)));
        assert_eq!(c.stage, Stage::Completed);
        assert_eq!(c.command, Some(Text::of("echo")));
        let res = c.result.unwrap();
        assert_eq!(res.exit_code, Some(0));
        assert_eq!(res.stdout.bytes, 3);
        assert!(res.stdout.truncated);
        assert_eq!(res.stdout.sha256, crate::audit::record::sha256_hex(b"hi\n"));

        let f = t.finished(&outcome(Termination::Stopped(RunError::new(
            ErrorCode::Timeout,
            "late",
        ))));
        assert_eq!(f.stage, Stage::Failed);
        assert_eq!(f.code(), Some("TIMEOUT"));
        assert_eq!(f.result.unwrap().outcome, "TIMEOUT");
    }
}
