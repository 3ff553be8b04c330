//! Nothing outside the workspace can be read, written or used as a working directory.

use crate::support::*;
use serde_json::json;
use std::os::unix::fs::symlink;

/// A workspace next to a secret file and a sibling directory whose name extends the workspace's.
fn hostile_env() -> Env {
    let env = Env::new()
        .with_guests(&["escape", "writer"])
        .with_manifest("writer", "filesystem = \"read-write\"\n");
    let base = env.dir.path();
    std::fs::write(base.join("outside"), "TOP-SECRET\n").unwrap();
    std::fs::create_dir(base.join("ws-evil")).unwrap();
    std::fs::write(base.join("ws-evil/loot"), "TOP-SECRET\n").unwrap();
    symlink(base.join("outside"), env.ws.join("abs-link")).unwrap();
    symlink("../outside", env.ws.join("rel-link")).unwrap();
    symlink(base.join("ws-evil"), env.ws.join("dir-link")).unwrap();
    symlink("rel-link", env.ws.join("chain-link")).unwrap();
    symlink(base.join("not-yet"), env.ws.join("dangling")).unwrap();
    env.file("inside.txt", "fine\n");
    env
}

#[test]
fn cat_cannot_read_outside() {
    let env = hostile_env();
    let mut s = env.serve();
    let outside = env.dir.path().join("outside").display().to_string();
    for path in [
        "../outside",
        "abs-link",
        "rel-link",
        "chain-link",
        "dir-link/loot",
        "../ws-evil/loot",
        outside.as_str(),
        "/etc/passwd",
    ] {
        let r = s.run("cat", &[path]);
        assert!(!is_error(&r), "{path}: {r}");
        let out = structured(&r);
        assert_ne!(out["exitCode"], 0, "{path} was readable");
        assert!(
            !out["stdout"].as_str().unwrap().contains("TOP-SECRET"),
            "{path} leaked"
        );
        assert!(
            !out["stdout"].as_str().unwrap().contains("root:"),
            "{path} leaked /etc/passwd"
        );
    }
    let r = s.run("cat", &["inside.txt"]);
    assert_eq!(structured(&r)["stdout"], "fine\n");
}

#[test]
fn guest_file_opens_outside_fail() {
    let env = hostile_env();
    let mut s = env.serve();
    let r = s.run(
        "escape",
        &[
            "../outside",
            "/etc/passwd",
            "abs-link",
            "rel-link",
            "dir-link/loot",
            "/proc/self/environ",
            "inside.txt",
            "/inside.txt",
        ],
    );
    let out = structured(&r)["stdout"].as_str().unwrap().to_owned();
    assert!(!out.contains("TOP-SECRET"), "{out}");
    assert!(!out.contains("root:"), "{out}");
    for p in [
        "../outside",
        "/etc/passwd",
        "abs-link",
        "rel-link",
        "dir-link/loot",
        "/proc/self/environ",
    ] {
        assert!(
            out.contains(&format!("{p}: err")),
            "{p} did not fail: {out}"
        );
    }
    assert!(out.contains("inside.txt: ok fine"), "{out}");
    assert!(
        out.contains("/inside.txt: ok fine"),
        "the workspace is the guest's /: {out}"
    );
}

#[test]
fn writes_through_links_do_not_leave_the_workspace() {
    let env = hostile_env();
    let mut s = env.serve();
    for target in ["dangling", "dir-link/new", "../new", "abs-link"] {
        let r = s.run("writer", &[target, "pwned"]);
        assert_ne!(structured(&r)["exitCode"], 0, "{target}: {r}");
    }
    let r = s.run("writer", &["made-inside", "ok"]);
    assert_eq!(
        structured(&r)["exitCode"],
        0,
        "a read-write command can write inside: {r}"
    );
    assert_eq!(
        std::fs::read_to_string(env.ws.join("made-inside")).unwrap(),
        "ok"
    );
    assert!(!env.dir.path().join("not-yet").exists());
    assert!(!env.dir.path().join("ws-evil/new").exists());
    assert!(!env.dir.path().join("new").exists());
    assert_eq!(
        std::fs::read_to_string(env.dir.path().join("outside")).unwrap(),
        "TOP-SECRET\n"
    );
}

#[test]
fn cwd_outside_the_workspace_is_refused() {
    let env = hostile_env();
    let mut s = env.serve();
    let evil = env.dir.path().join("ws-evil").display().to_string();
    for cwd in [
        "..",
        "../",
        "sub/../..",
        "/",
        "/etc",
        evil.as_str(),
        "dir-link",
        "../ws-evil",
    ] {
        let r = s.call("run", json!({"command": "ls", "cwd": cwd}));
        assert_eq!(error_code(&r), "PATH_OUTSIDE_WORKSPACE", "cwd {cwd:?}: {r}");
    }
    let r = s.call("run", json!({"command": "ls", "cwd": "missing"}));
    assert_eq!(error_code(&r), "PATH_NOT_FOUND");
    let r = s.call("run", json!({"command": "ls", "cwd": "inside.txt"}));
    assert_eq!(error_code(&r), "PATH_NOT_FOUND");
}

#[test]
fn ls_cannot_list_outside() {
    let env = hostile_env();
    let mut s = env.serve();
    for path in ["..", "dir-link", "/..", "../ws-evil"] {
        let r = s.run("ls", &[path]);
        let out = structured(&r);
        assert!(
            !out["stdout"].as_str().unwrap().contains("loot"),
            "{path}: {out}"
        );
        assert!(
            !out["stdout"].as_str().unwrap().contains("outside"),
            "{path}: {out}"
        );
    }
}

#[test]
fn read_only_commands_cannot_write() {
    let env = Env::new().with_guests(&["writer"]);
    let mut s = env.serve();
    let r = s.run("writer", &["f", "x"]);
    assert_ne!(structured(&r)["exitCode"], 0, "{r}");
    assert!(!env.ws.join("f").exists());
}
