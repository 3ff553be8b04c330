//! `runbox doctor`: what is in force for the effective policy on this machine, what is missing,
//! and the fix for each missing piece.
//!
//! Two parts: the native runner's kernel protections ([`crate::native::doctor`]) and the
//! operator's side, here: the user runbox runs as, the workspace, the audit, cache and tools
//! directories, each checked for the uid and gid of this process, the way `runbox serve` would
//! need them. Run it as the user that will run the server. It reads only: directories are
//! probed with `stat` and `eaccess` ([`probe`]), modules are read and inspected but never
//! compiled or run, and nothing is created, written or removed.

mod mirror;
mod precompiled;
pub mod probe;
mod tools;

use crate::policy::{ConfigError, Overrides, Policy, PolicyFile, own_paths};
use crate::workspace::Workspace;
use probe::{DirProbe, User};
use std::fmt::Write;
use std::path::Path;

/// Whether a line of the report is in force, missing, or only for information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// In force.
    Ok,
    /// Missing: the line says what to do.
    Missing,
    /// Neither: a fact worth knowing.
    Info,
}

/// One line of the operator's part of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// In force, missing, or information.
    pub status: Status,
    /// What it is about: `user`, `policy`, `workspace`, `audit`, `cache`, `tools` or `tmp`.
    pub topic: &'static str,
    /// What holds, or what is wrong.
    pub text: String,
    /// How to fix a missing one.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(topic: &'static str, text: impl Into<String>) -> Self {
        Self {
            status: Status::Ok,
            topic,
            text: text.into(),
            fix: None,
        }
    }

    fn info(topic: &'static str, text: impl Into<String>) -> Self {
        Self {
            status: Status::Info,
            ..Self::ok(topic, text)
        }
    }

    fn missing(topic: &'static str, text: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Missing,
            topic,
            text: text.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Which locations the operator named, as opposed to stand-ins doctor filled in so the rest of
/// the policy could still be checked.
#[derive(Debug, Clone, Copy, Default)]
struct Given {
    workspace: bool,
    audit_dir: bool,
}

/// The whole report for the policy file `file` with `flags` (whose `config` names where the
/// file was read from, if anywhere), and whether everything is in force.
///
/// # Errors
/// The policy's own error when it is invalid for a reason other than a missing location.
pub fn report(file: PolicyFile, flags: &Overrides) -> Result<(String, bool), ConfigError> {
    let given = Given {
        workspace: flags.workspace.is_some() || file.workspace.is_some(),
        audit_dir: flags.audit_dir.is_some()
            || file.audit_dir.is_some()
            || crate::policy::default_audit_dir().is_some(),
    };
    // Stand-ins complete the policy when a location is missing; they are reported, never used.
    let mut flags = flags.clone();
    if !given.workspace {
        flags.workspace = Some(std::env::temp_dir());
    }
    if !given.audit_dir {
        flags.audit_dir = Some(std::env::temp_dir());
    }
    let policy = Policy::build(file, &flags)?;
    let workspace = given.workspace.then_some(policy.workspace.as_path());
    let (mut text, native_ok) = crate::native::doctor::report(&policy, workspace);
    let user = User::current();
    let findings = operator_findings(&policy, given, user);
    let ok = native_ok && findings.iter().all(|f| f.status != Status::Missing);
    text.push('\n');
    text.push_str(&render(&findings, user));
    Ok((text, ok))
}

/// The report's topic for a key of [`Policy::own_paths`].
fn own_path_topic(key: &str) -> &'static str {
    match key {
        own_paths::POLICY_FILE_KEY => "policy",
        "audit_dir" => "audit",
        "cache_dir" => "cache",
        "tools_dir" => "tools",
        "precompiled_dir" => "precompiled",
        _ => "tmp",
    }
}

/// Every operator check, in report order. A path of runbox's own that start would refuse
/// ([`own_paths`]) is reported as that refusal, never as usable.
fn operator_findings(policy: &Policy, given: Given, user: User) -> Vec<Finding> {
    let mut out = vec![user_finding(policy, user)];
    let ws = if given.workspace {
        out.push(workspace_finding(policy, user));
        Workspace::open(&policy.workspace).ok()
    } else {
        out.push(Finding::missing(
            "workspace",
            "no workspace given",
            "pass --workspace DIR or set `workspace` in the policy file",
        ));
        None
    };
    let refused = ws
        .as_ref()
        .map(|w| own_paths::problems(w, &policy.own_paths()))
        .unwrap_or_default();
    let refusal = |key: &str| {
        refused.iter().find(|e| e.key() == key).map(|e| {
            Finding::missing(
                own_path_topic(key),
                format!("{e}; serve refuses to start"),
                e.fix(),
            )
        })
    };
    out.extend(refusal(own_paths::POLICY_FILE_KEY));
    if !given.audit_dir {
        out.push(Finding::missing(
            "audit",
            "no audit directory: none given and neither XDG_STATE_HOME nor HOME is set",
            "pass --audit-dir DIR or set `audit_dir` in the policy file",
        ));
    } else if let Some(f) = refusal("audit_dir") {
        out.push(f);
    } else {
        out.push(audit_finding(&policy.audit_dir, user));
    }
    out.extend(mirror::mirror_finding(policy, given.audit_dir));
    out.push(
        refusal("cache_dir").unwrap_or_else(|| cache_finding(policy.cache_dir.as_deref(), user)),
    );
    if let Some(dir) = &policy.precompiled_dir {
        out.push(
            refusal("precompiled_dir").unwrap_or_else(|| precompiled::precompiled_finding(dir)),
        );
    }
    match refusal("tools_dir") {
        Some(f) => out.push(f),
        None => out.extend(tools::tools_findings(policy, user)),
    }
    match refusal(own_paths::TEMP_DIR_KEY) {
        Some(f) => out.push(f),
        None if ws.is_some() => out.push(Finding::ok(
            "tmp",
            format!(
                "scratch directories go to {} (TMPDIR), outside the workspace",
                std::env::temp_dir().display()
            ),
        )),
        None => {}
    }
    out
}

fn user_finding(policy: &Policy, user: User) -> Finding {
    match (user.uid, policy.allow_root) {
        (0, false) => Finding::missing(
            "user",
            "runbox runs as root and the policy does not allow it: serve and exec refuse to start",
            "run runbox as an unprivileged user (a dedicated uid; in a container, set USER), or pass --allow-root (allow_root = true) if you accept the risk",
        ),
        (0, true) => Finding::ok(
            "user",
            "runs as root, allowed by allow_root (a flaw in runbox would be a flaw in root)",
        ),
        (uid, _) => Finding::ok("user", format!("runs as uid {uid}, gid {}", user.gid)),
    }
}

fn workspace_finding(policy: &Policy, user: User) -> Finding {
    let ws = &policy.workspace;
    let (want, what) = if policy.workspace_writable {
        (probe::WRITE, "readable and writable")
    } else {
        (probe::READ, "readable (workspace_writable = false)")
    };
    match probe::probe_dir(ws, want, user) {
        DirProbe::Usable => Finding::ok(
            "workspace",
            format!("{} is {what} by uid {}", ws.display(), user.uid),
        ),
        DirProbe::Creatable { .. } | DirProbe::Uncreatable(_) => Finding::missing(
            "workspace",
            format!("{} does not exist", ws.display()),
            format!(
                "create it (mkdir -p {}) or correct `workspace`",
                ws.display()
            ),
        ),
        DirProbe::Denied(why) => Finding::missing(
            "workspace",
            why,
            format!(
                "chown -R {}:{} {} (or grant uid {} access with chmod/ACLs){}",
                user.uid,
                user.gid,
                ws.display(),
                user.uid,
                if policy.workspace_writable {
                    "; or set workspace_writable = false for a read-only workspace"
                } else {
                    ""
                }
            ),
        ),
    }
}

fn audit_finding(dir: &Path, user: User) -> Finding {
    let fix = format!(
        "as root: install -d -o {} -g {} -m 700 {}; or set audit_dir (--audit-dir) to a directory uid {} can write",
        user.uid,
        user.gid,
        dir.display(),
        user.uid
    );
    match probe::probe_dir(dir, probe::WRITE, user) {
        DirProbe::Usable => Finding::ok(
            "audit",
            format!("{} is writable by uid {}", dir.display(), user.uid),
        ),
        DirProbe::Creatable { under } => Finding::ok(
            "audit",
            format!(
                "{} does not exist yet; runbox will create it (mode 700) in {}",
                dir.display(),
                under.display()
            ),
        ),
        DirProbe::Denied(why) | DirProbe::Uncreatable(why) => Finding::missing(
            "audit",
            format!("{why}; every call will be refused with AUDIT_UNAVAILABLE"),
            fix,
        ),
    }
}

fn cache_finding(dir: Option<&Path>, user: User) -> Finding {
    let Some(dir) = dir else {
        return Finding::missing(
            "cache",
            "compiled-module caching is off: no cache_dir given and neither XDG_CACHE_HOME nor HOME is set, so every start compiles the built-in module (seconds)",
            "pass --cache-dir DIR or set `cache_dir` to a directory owned by this user",
        );
    };
    match probe::cache_problem(dir, user) {
        None if !dir.exists() => Finding::ok(
            "cache",
            format!(
                "{} does not exist yet; runbox will create it (mode 700)",
                dir.display()
            ),
        ),
        None => Finding::ok(
            "cache",
            format!(
                "{} is usable (owned by uid {}, writable by no one else)",
                dir.display(),
                user.uid
            ),
        ),
        Some((why, fix)) => Finding::missing(
            "cache",
            format!("{why}; caching is off, so every start compiles the built-in module (seconds)"),
            fix,
        ),
    }
}

/// The operator's part of the report as text.
fn render(findings: &[Finding], user: User) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "runbox doctor: what the policy needs, checked as uid {}, gid {} (run doctor as the user that runs the server)\n",
        user.uid, user.gid
    );
    for f in findings {
        let mark = match f.status {
            Status::Ok => "ok     ",
            Status::Missing => "MISSING",
            Status::Info => "info   ",
        };
        let _ = write!(out, "[{mark}] {:<12} {}", format!("{}:", f.topic), f.text);
        if let Some(fix) = &f.fix {
            let _ = write!(out, "; fix: {fix}");
        }
        out.push('\n');
    }
    let missing = findings
        .iter()
        .filter(|f| f.status == Status::Missing)
        .count();
    let _ = writeln!(
        out,
        "\nverdict: {}",
        if missing == 0 {
            "everything the policy names is usable".to_owned()
        } else {
            format!("{missing} missing above, each with its fix")
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dir: &Path, extra: &str) -> Policy {
        let flags = Overrides {
            workspace: Some(dir.join("ws")),
            audit_dir: Some(dir.join("audit")),
            cache_dir: Some(dir.join("cache")),
            allow_root: true,
            ..Overrides::default()
        };
        Policy::build(crate::policy::parse_policy(extra).unwrap(), &flags).unwrap()
    }

    fn given() -> Given {
        Given {
            workspace: true,
            audit_dir: true,
        }
    }

    fn missing(findings: &[Finding]) -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.status == Status::Missing)
            .map(|f| {
                format!(
                    "{}: {} / {}",
                    f.topic,
                    f.text,
                    f.fix.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_usable_setup_has_nothing_missing_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        let p = policy(dir.path(), "");
        let f = operator_findings(&p, given(), User::current());
        assert!(missing(&f).is_empty(), "{:?}", missing(&f));
        assert!(!dir.path().join("audit").exists());
        assert!(!dir.path().join("cache").exists());
    }

    #[test]
    fn each_problem_is_named_with_its_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let user = User::current();
        let flags = Overrides {
            workspace: Some(dir.path().join("ws")),
            audit_dir: Some(dir.path().join("file/audit")),
            cache_dir: Some(dir.path().join("ws/.cache")),
            tools_dir: Some(dir.path().join("ws/tools")),
            precompiled_dir: Some(dir.path().join("ws/modules")),
            config: Some(dir.path().join("ws/policy.toml")),
            allow_root: false,
        };
        let p = Policy::build(PolicyFile::default(), &flags).unwrap();
        let m = missing(&operator_findings(&p, given(), user));
        let has = |topic: &str, words: &[&str]| {
            m.iter()
                .any(|l| l.starts_with(topic) && words.iter().all(|w| l.contains(w)))
        };
        assert!(
            has("audit", &["file is not a directory", "install -d -o"]),
            "{m:?}"
        );
        assert!(has("tools", &["inside the workspace"]), "{m:?}");
        assert!(has("policy", &["inside the workspace"]), "{m:?}");
        // The cache inside the workspace is a refusal with its fix, never "usable".
        assert!(
            has(
                "cache",
                &["inside the workspace", "native code", "set cache_dir"]
            ),
            "{m:?}"
        );
        assert!(
            has(
                "precompiled",
                &["inside the workspace", "native code", "set precompiled_dir"]
            ),
            "{m:?}"
        );
        assert_eq!(has("user", &["--allow-root"]), user.uid == 0, "{m:?}");
    }

    #[test]
    fn missing_locations_are_reported_not_invented() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), "");
        let none = Given::default();
        let m = missing(&operator_findings(&p, none, User::current()));
        assert!(
            m.iter()
                .any(|l| l.starts_with("workspace") && l.contains("--workspace")),
            "{m:?}"
        );
        assert!(
            m.iter()
                .any(|l| l.starts_with("audit") && l.contains("--audit-dir")),
            "{m:?}"
        );
        let m = missing(&[cache_finding(None, User::current())]);
        assert!(m[0].contains("caching is off"), "{m:?}");
    }
}
