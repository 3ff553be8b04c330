//! `runbox doctor`: which protections native commands get on this machine, and the fix for each
//! missing one. It probes exactly as the server does at start, and never runs a command.

use crate::native::cgroup::{CallCgroups, Host};
use crate::native::probe::{self, Enforcement};
use crate::native::spawn::Identity;
use crate::policy::Policy;
use crate::policy::toolchain::MemoryRlimit;
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
    let _ = writeln!(out, "{}", cgroup_line(policy, &p.cgroups));
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
    let cgroups_ok = CallCgroups::assess(&policy.sandbox.cgroup, &Host::current()).is_ok();
    for line in command_lines(policy, cgroups_ok) {
        let _ = writeln!(out, "{line}");
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

/// Whether per-call cgroups would be in force, and what is used where they are not.
fn cgroup_line(policy: &Policy, facilities: &str) -> String {
    match CallCgroups::assess(&policy.sandbox.cgroup, &Host::current()) {
        Ok(dir) => format!(
            "[ok     ] cgroups:     per-call cgroups in {}: memory.max (memory_bytes, the whole tree; an out-of-memory kill is MEMORY_LIMIT), pids.max (processes, this call only), cgroup.kill",
            dir.display()
        ),
        Err(why) => format!(
            "[info   ] cgroups:     no per-call cgroups ({why}); instead: memory_bytes is an rlimit per process (RLIMIT_AS, or RLIMIT_DATA / none per command), processes is RLIMIT_NPROC (per uid) with the tree isolation, and the PID namespace or the reaper kills the tree; {facilities}"
        ),
    }
}

/// One line per native command with toolchain keys: what it adds, and what it names that is
/// missing here.
fn command_lines(policy: &Policy, cgroups: bool) -> Vec<String> {
    let extras = super::extras::prepare(policy);
    let mut out = Vec::new();
    for (name, c) in &policy.native {
        let t = &c.toolchain;
        let mut parts = Vec::new();
        let list = |v: &[std::path::PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        for (what, v) in [
            ("read+exec", &t.exec_paths),
            ("read", &t.read_paths),
            ("read+write", &t.write_paths),
        ] {
            if !v.is_empty() {
                parts.push(format!("{what} {}", list(v)));
            }
        }
        if t.workspace_exec {
            parts.push("executes in the workspace".to_owned());
        }
        if !t.env_pass.is_empty() {
            parts.push(format!("passes {}", t.env_pass.join(" ")));
        }
        if t.memory_rlimit != MemoryRlimit::AddressSpace {
            parts.push(format!("memory_rlimit {}", t.memory_rlimit.as_str()));
        }
        if parts.is_empty() {
            continue;
        }
        out.push(format!(
            "[info   ] toolchain:   {name}: {}",
            parts.join("; ")
        ));
        if let Some(e) = extras.get(name) {
            for p in e.skipped() {
                out.push(format!(
                    "[info   ] skipped:     {name}: {} (does not exist)",
                    p.display()
                ));
            }
            for k in &e.env_missing {
                out.push(format!(
                    "[info   ] skipped:     {name}: env_pass {k} (not in runbox's environment)"
                ));
            }
        }
        if t.memory_rlimit == MemoryRlimit::Off && !cgroups {
            out.push(format!(
                "[warn   ] memory:      {name}: memory_rlimit = \"off\" and no per-call cgroup: nothing bounds its memory here (use \"data\")"
            ));
        }
    }
    out
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
