//! `runbox doctor` on the operator's side: each location the policy names is checked for the
//! uid doctor runs as, a missing piece comes with its fix, and nothing is created or changed.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Runs `runbox doctor ARGS` through `cmd` and returns its stdout and exit code.
fn doctor(mut cmd: Command, args: &[String]) -> (String, Option<i32>) {
    let out = cmd.arg("doctor").args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code() != Some(2),
        "doctor failed to run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status.code())
}

/// The report's line about `topic` with status `mark` (`ok     `, `MISSING`), if any.
fn line<'a>(text: &'a str, mark: &str, topic: &str) -> Vec<&'a str> {
    let prefix = format!("[{mark}] {topic}:");
    let operator = text
        .split("what the policy needs")
        .nth(1)
        .unwrap_or_else(|| panic!("no operator section:\n{text}"));
    operator
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect()
}

fn args(ws: &Path, audit: &Path, cache: &Path) -> Vec<String> {
    vec![
        "--allow-root".into(),
        "--workspace".into(),
        ws.display().to_string(),
        "--audit-dir".into(),
        audit.display().to_string(),
        "--cache-dir".into(),
        cache.display().to_string(),
    ]
}

#[test]
fn an_unwritable_audit_dir_is_reported_with_its_fix() {
    // Any uid: an audit path that runs through a regular file can be neither used nor created.
    let env = Env::new();
    std::fs::write(env.dir.path().join("file"), b"x").unwrap();
    hand_over(env.dir.path());
    let audit = env.dir.path().join("file/audit");
    let (text, code) = doctor(
        as_server_user(runbox_bin()),
        &args(&env.ws, &audit, &env.dir.path().join("cache")),
    );
    assert_eq!(code, Some(1), "{text}");
    let l = line(&text, "MISSING", "audit");
    assert_eq!(l.len(), 1, "{text}");
    assert!(
        l[0].contains("file is not a directory")
            && l[0].contains("AUDIT_UNAVAILABLE")
            && l[0].contains("fix: as root: install -d -o"),
        "{text}"
    );

    // As an unprivileged uid: a root-owned audit directory is not writable by it.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED the unprivileged half: the test does not run as root");
        return;
    }
    let uid = server_uid().unwrap_or(65534);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ws, audit, cache) = (
        dir.path().join("ws"),
        dir.path().join("audit"),
        dir.path().join("cache"),
    );
    for d in [&ws, &audit, &cache] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    for d in [&ws, &cache] {
        std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
    }
    let mut cmd = Command::new(runbox_bin());
    {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid).env("HOME", "/nonexistent");
    }
    let (text, code) = doctor(cmd, &args(&ws, &audit, &cache));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("checked as uid {uid}")), "{text}");
    let l = line(&text, "MISSING", "audit");
    assert_eq!(l.len(), 1, "{text}");
    assert!(
        l[0].contains(&format!("uid {uid} cannot write to {}", audit.display()))
            && l[0].contains("owner 0:0, mode 755")
            && l[0].contains(&format!(
                "fix: as root: install -d -o {uid} -g {uid} -m 700 {}",
                audit.display()
            )),
        "{text}"
    );
    assert_eq!(line(&text, "ok     ", "workspace").len(), 1, "{text}");
    assert_eq!(line(&text, "ok     ", "cache").len(), 1, "{text}");
    assert_eq!(std::fs::read_dir(&audit).unwrap().count(), 0);
}

#[test]
fn what_is_in_force_is_listed_and_nothing_is_created() {
    let env = Env::new()
        .with_guests(&["exiter", "typo"])
        .with_manifest("typo", "[limits]\ncpu_seconds = 1\n");
    hand_over(env.dir.path());
    let audit = env.dir.path().join("state/audit");
    let cache = env.dir.path().join("newcache");
    let tools = env.tools.clone().unwrap();
    let mut a = args(&env.ws, &audit, &cache);
    a.extend(["--tools-dir".into(), tools.display().to_string()]);
    let (text, code) = doctor(as_server_user(runbox_bin()), &a);
    assert_eq!(code, Some(1), "{text}");
    assert!(line(&text, "ok     ", "workspace")[0].contains("readable and writable"));
    assert!(
        line(&text, "ok     ", "audit")[0].contains("will create it"),
        "{text}"
    );
    assert!(
        line(&text, "ok     ", "cache")[0].contains("will create it"),
        "{text}"
    );
    assert!(
        line(&text, "ok     ", "tools")[0].contains("offers exiter"),
        "{text}"
    );
    let bad = line(&text, "MISSING", "tools");
    assert_eq!(bad.len(), 1, "{text}");
    assert!(
        bad[0].contains("typo.toml") && bad[0].contains("cpu_seconds") && bad[0].contains("fix:"),
        "{text}"
    );
    assert!(!audit.exists() && !env.dir.path().join("state").exists());
    assert!(!cache.exists());

    // Without the bad module, the operator's side is complete; the exit status then follows the
    // native protections alone.
    std::fs::remove_file(tools.join("typo.wasm")).unwrap();
    let (text, code) = doctor(as_server_user(runbox_bin()), &a);
    assert!(line(&text, "MISSING", "tools").is_empty(), "{text}");
    assert!(
        text.contains("verdict: everything the policy names is usable"),
        "{text}"
    );
    assert_eq!(
        code == Some(0),
        text.contains("native commands are fully confined"),
        "{text}"
    );
}

#[test]
fn a_missing_workspace_and_root_without_consent_are_reported() {
    let (text, code) = doctor(Command::new(runbox_bin()), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        line(&text, "MISSING", "workspace")[0].contains("fix: pass --workspace DIR"),
        "{text}"
    );
    let root = line(&text, "MISSING", "user");
    assert_eq!(
        root.len(),
        usize::from(nix::unistd::geteuid().is_root()),
        "{text}"
    );
    if let Some(l) = root.first() {
        assert!(l.contains("--allow-root"), "{text}");
    }
}

#[test]
fn own_paths_inside_the_workspace_are_refusals_not_usable() {
    let env = Env::new();
    std::fs::create_dir(env.ws.join("tmp")).unwrap();
    hand_over(env.dir.path());
    let mut cmd = as_server_user(runbox_bin());
    cmd.env("TMPDIR", env.ws.join("tmp"));
    let (text, code) = doctor(
        cmd,
        &args(
            &env.ws,
            &env.dir.path().join("audit"),
            &env.ws.join(".cache"),
        ),
    );
    assert_eq!(code, Some(1), "{text}");
    let cache = line(&text, "MISSING", "cache");
    assert_eq!(cache.len(), 1, "{text}");
    assert!(
        cache[0].contains("inside the workspace")
            && cache[0].contains("native code")
            && cache[0].contains("fix: set cache_dir"),
        "{text}"
    );
    assert!(line(&text, "ok     ", "cache").is_empty(), "{text}");
    let tmp = line(&text, "MISSING", "tmp");
    assert_eq!(tmp.len(), 1, "{text}");
    assert!(tmp[0].contains("TMPDIR"), "{text}");
    assert!(!env.ws.join(".cache").exists(), "doctor created the cache");
}
