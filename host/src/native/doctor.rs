//! `runbox doctor`: which protections native commands get on this machine, and the fix for each
//! missing one. It probes exactly as the server does at start, and never runs a command.

use crate::native::probe::{self, Enforcement};
use crate::native::spawn::Identity;
use crate::policy::Policy;
use std::fmt::Write;
use std::path::Path;

/// The report as text, and whether every protection is in force.
pub fn report(policy: &Policy, workspace: Option<&Path>) -> (String, bool) {
    let identity = super::identity_for(&policy.sandbox);
    let (system, _, p) = super::prepare(policy, identity);
    let mut out = String::new();
    let mark = |ok: bool| if ok { "ok     " } else { "MISSING" };
    let _ = writeln!(
        out,
        "runbox doctor: protections for native commands on this machine\n"
    );
    let who = match p.identity {
        Identity::Drop { uid, gid } => {
            format!("runbox runs as root; native commands run as {uid}:{gid} with no groups")
        }
        Identity::Keep { uid, gid } => {
            format!("runbox runs as {uid}:{gid}; native commands keep that uid (nothing to drop)")
        }
    };
    let _ = writeln!(out, "[ok     ] user:        {who}");
    let _ = writeln!(
        out,
        "[{}] landlock:    kernel ABI {}, runbox's ruleset (ABI {}) {}: read+exec on system paths, read on the /etc list, read+write without exec on the workspace, TCP denied, signals and abstract sockets scoped",
        mark(p.landlock == Enforcement::Full),
        p.landlock_abi.map_or("none".into(), |a| a.to_string()),
        super::confine::TARGET_ABI as i32,
        p.landlock.as_str()
    );
    let _ = writeln!(
        out,
        "[{}] seccomp:     {}",
        mark(p.seccomp.is_ok()),
        match &p.seccomp {
            Ok(()) => format!(
                "socket() (UDP, raw, unix), io_uring, new namespaces, keyrings, bpf, perf denied{}",
                if p.mechanism() == Some(super::isolation::Mechanism::Namespaces) {
                    ""
                } else {
                    "; SysV IPC and POSIX message queues denied (no IPC namespace)"
                }
            ),
            Err(e) => e.to_string(),
        }
    );
    let _ = writeln!(
        out,
        "[{}] isolation:   sandbox.isolation = \"{}\"; {}",
        mark(p.mechanism().is_some()),
        p.isolation.as_str(),
        match p.mechanism() {
            Some(m) => format!("in force: {}: {}", m.as_str(), m.guarantees()),
            None => "no tree isolation the policy allows works here (see below)".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "[info   ] namespaces:  {}",
        match &p.namespaces {
            Ok(()) => "available".to_owned(),
            Err(e) => format!("unavailable: {e}"),
        }
    );
    let _ = writeln!(
        out,
        "[info   ] reaper:      {}",
        match &p.reaper {
            Ok(()) => "available".to_owned(),
            Err(e) => format!("unavailable: {e}"),
        }
    );
    let _ = writeln!(
        out,
        "[ok     ] always:      new session, no tty, fds > 2 closed, env from the policy only, fresh HOME/TMPDIR, rlimits (CPU, AS, FSIZE, NOFILE, NPROC, CORE=0), PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG"
    );
    let _ = writeln!(
        out,
        "[info   ] cgroups:     not needed (the PID namespace or the reaper kills the tree); {}",
        p.cgroups
    );
    let mut complete = p.complete();
    let mut unusable_workspace = None;
    if let Some(ws) = workspace {
        let access = probe::workspace_access(ws, p.identity, policy.workspace_writable);
        complete &= access.is_ok();
        if access.is_err() {
            unusable_workspace = Some(format!(
                "the sandbox user cannot use the workspace {} (see the workspace line above)",
                ws.display()
            ));
        }
        let _ = writeln!(
            out,
            "[{}] workspace:   {}",
            mark(access.is_ok()),
            match (&access, p.identity) {
                (Ok(()), _) => format!("{} is usable by the sandbox user", ws.display()),
                (Err(e), Identity::Drop { uid, gid }) => format!(
                    "{e}; fix: chown -R {uid}:{gid} {}, make its parents searchable (chmod o+x), or set sandbox.user/sandbox.group to its owner",
                    ws.display()
                ),
                (Err(e), Identity::Keep { .. }) => e.to_string(),
            }
        );
    }
    for path in system.skipped() {
        let _ = writeln!(
            out,
            "[info   ] skipped:     {} (does not exist)",
            path.display()
        );
    }
    let names: Vec<_> = policy
        .native
        .values()
        .map(|c| format!("{} ({})", c.name, c.path.display()))
        .collect();
    let _ = writeln!(
        out,
        "[info   ] commands:    {}",
        if names.is_empty() {
            "no native commands in the policy".to_owned()
        } else {
            names.join(", ")
        }
    );
    let _ = writeln!(out);
    let mut missing = p.missing();
    missing.extend(unusable_workspace);
    write_verdict(
        &mut out,
        &missing,
        complete,
        policy.sandbox.require_confinement,
    );
    (out, complete)
}

fn write_verdict(out: &mut String, missing: &[String], complete: bool, required: bool) {
    if complete {
        let _ = writeln!(out, "verdict: native commands are fully confined");
        return;
    }
    let _ = writeln!(
        out,
        "verdict: {}",
        if required {
            "native calls will be REFUSED (sandbox.require_confinement = true) until this is fixed:"
        } else {
            "native calls run LESS CONFINED (sandbox.require_confinement = false); to fix:"
        }
    );
    for m in missing {
        let _ = writeln!(out, "  - {m}");
    }
}
