//! The attack suite: the ways command-running MCP servers were broken in public, as one table
//! of requests and the structured outcome each must get, run against the real binary over MCP.
//! Every case also proves nothing ran where it must not have: a refused request has a `denied`
//! audit record and no `completed` one, and no case's output carries the secret planted outside
//! the workspace.
//!
//! Attacks that need their own choreography (a symlink swapped in during calls, a client that
//! stops reading, kill -9) are the tests after the table. docs/security.md maps each threat to
//! the test that covers it.

use crate::support::*;
use serde_json::{Value, json};
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Planted outside the workspace; no reply may ever contain it.
const SECRET: &str = "TOP-SECRET-7f3a";

/// What a request must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused before anything ran, with one of these codes.
    Refused(&'static [&'static str]),
    /// Ran to its own exit with a non-zero code (the command itself failed, e.g. ENOENT).
    RanAndFailed,
    /// Ran and printed exactly this.
    Stdout(&'static str),
    /// Stopped by a limit with this code.
    Stopped(&'static str),
    /// Ran (any exit code); its output names nothing from outside (checked for every case).
    NoLeak,
}

struct Attack {
    name: &'static str,
    request: Value,
    expect: Expect,
}

const NOT_ALLOWED: &[&str] = &["COMMAND_NOT_ALLOWED"];
const NOT_ALLOWED_OR_INVALID: &[&str] = &["COMMAND_NOT_ALLOWED", "INVALID_ARGUMENT"];
const OUTSIDE: &[&str] = &["PATH_OUTSIDE_WORKSPACE"];
const OUTSIDE_OR_MISSING: &[&str] = &["PATH_OUTSIDE_WORKSPACE", "PATH_NOT_FOUND"];

fn attack(name: &'static str, request: Value, expect: Expect) -> Attack {
    Attack {
        name,
        request,
        expect,
    }
}

fn cmd(command: &str, args: &[&str]) -> Value {
    json!({"command": command, "args": args})
}

/// A workspace with a secret next to it (and in a sibling whose name extends the workspace's),
/// and symlinks of every kind pointing at them.
fn hostile_env() -> Env {
    let env = Env::new()
        .with_guests(&["escape", "writer", "spin", "memhog", "flood", "recurse"])
        .with_manifest("writer", "filesystem = \"read-write\"\n");
    let base = env.dir.path();
    std::fs::write(base.join("outside"), format!("{SECRET}\n")).unwrap();
    std::fs::create_dir(base.join("ws-evil")).unwrap();
    std::fs::write(base.join("ws-evil/loot"), format!("{SECRET}\n")).unwrap();
    symlink(base.join("outside"), env.ws.join("abs-link")).unwrap();
    symlink("../outside", env.ws.join("rel-link")).unwrap();
    symlink("rel-link", env.ws.join("chain-link")).unwrap();
    symlink(base.join("ws-evil"), env.ws.join("dir-link")).unwrap();
    symlink("../ws-evil", env.ws.join("rel-dir-link")).unwrap();
    symlink(base.join("created-later"), env.ws.join("dangling")).unwrap();
    symlink("/proc/self/root", env.ws.join("proc-root")).unwrap();
    std::fs::create_dir(env.ws.join("sub")).unwrap();
    env.file("inside.txt", "fine\n");
    env
}

fn table(env: &Env) -> Vec<Attack> {
    let outside = env.dir.path().join("outside").display().to_string();
    let evil = env.dir.path().join("ws-evil").display().to_string();
    let ws = env.ws.display().to_string();
    let long_name = "a".repeat(100_000);
    let deep = "d/".repeat(3000);
    let lookalike = "l\u{0455}"; // Cyrillic dze: "ls" to the eye
    let awk_deep = format!(
        "BEGIN {{ print {}1{} }}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let awk_recursion = format!(
        "function f(n) {{ return {}n <= 0 ? 0 : 1 + f(n - 1){} }} BEGIN {{ print f(100000) }}",
        "(".repeat(40),
        ")".repeat(40)
    );
    let leaks = |name: &'static str, command: &str, args: Vec<String>| {
        attack(
            name,
            json!({"command": command, "args": args}),
            Expect::RanAndFailed,
        )
    };
    let mut t = vec![
        // --- the allowlist: exact names only, no shell ever parses anything
        attack(
            "semicolon",
            cmd("ls; id", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "and-and",
            cmd("ls && id", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "pipe in name",
            cmd("ls | id", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "command substitution",
            cmd("$(id)", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack("backticks", cmd("`id`", &[]), Expect::Refused(NOT_ALLOWED)),
        attack("newline", cmd("ls\nid", &[]), Expect::Refused(NOT_ALLOWED)),
        attack(
            "NUL",
            cmd("ls\0id", &[]),
            Expect::Refused(NOT_ALLOWED_OR_INVALID),
        ),
        attack(
            "leading space",
            cmd(" ls", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "trailing space",
            cmd("ls ", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack("other case", cmd("LS", &[]), Expect::Refused(NOT_ALLOWED)),
        attack(
            "absolute path",
            cmd("/bin/ls", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "relative path",
            cmd("./ls", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "path to a tool",
            cmd("../ls", &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "unicode look-alike",
            cmd(lookalike, &[]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "empty name",
            cmd("", &[]),
            Expect::Refused(NOT_ALLOWED_OR_INVALID),
        ),
        attack(
            "100 KB name",
            json!({"command": long_name}),
            Expect::Refused(NOT_ALLOWED_OR_INVALID),
        ),
        attack(
            "a shell",
            cmd("sh", &["-c", "id"]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "bash",
            cmd("bash", &["-c", "id"]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "env as launcher",
            cmd("env", &["id"]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "xargs as launcher",
            cmd("xargs", &["id"]),
            Expect::Refused(NOT_ALLOWED),
        ),
        attack(
            "pipeline smuggling a shell",
            json!({"pipeline": [cmd("echo", &["id"]), cmd("sh", &[])]}),
            Expect::Refused(NOT_ALLOWED),
        ),
        // Metacharacters in arguments are bytes handed to the command, never interpreted.
        attack(
            "metacharacters reach echo literally",
            cmd(
                "echo",
                &[
                    "$(id)", "`id`", "a;b", "x|y", "&&", "*", "~", "$HOME", "'q'", "\"d\"", "a\nb",
                    ">f",
                ],
            ),
            Expect::Stdout("$(id) `id` a;b x|y && * ~ $HOME 'q' \"d\" a\nb >f\n"),
        ),
        attack("no globbing", cmd("ls", &["*"]), Expect::RanAndFailed),
        // --- cwd: resolved beneath the workspace by the kernel, never by string prefix
        attack(
            "cwd ..",
            json!({"command": "ls", "cwd": ".."}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd sub/../..",
            json!({"command": "ls", "cwd": "sub/../.."}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd absolute /etc",
            json!({"command": "ls", "cwd": "/etc"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd the workspace's own absolute path",
            json!({"command": "ls", "cwd": ws}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd prefix sibling",
            json!({"command": "ls", "cwd": evil}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd ../prefix sibling",
            json!({"command": "ls", "cwd": "../ws-evil"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd absolute symlink",
            json!({"command": "ls", "cwd": "dir-link"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd relative symlink",
            json!({"command": "ls", "cwd": "rel-dir-link"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd dangling symlink",
            json!({"command": "ls", "cwd": "dangling"}),
            Expect::Refused(OUTSIDE_OR_MISSING),
        ),
        attack(
            "cwd /proc/self/root",
            json!({"command": "ls", "cwd": "/proc/self/root"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd symlink to /proc/self/root",
            json!({"command": "ls", "cwd": "proc-root"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd /proc/self/cwd",
            json!({"command": "ls", "cwd": "/proc/self/cwd"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd /dev/fd/3",
            json!({"command": "ls", "cwd": "/dev/fd/3"}),
            Expect::Refused(OUTSIDE),
        ),
        attack(
            "cwd over-long",
            json!({"command": "ls", "cwd": deep}),
            Expect::Refused(&["INVALID_ARGUMENT", "PATH_NOT_FOUND"]),
        ),
        attack(
            "cwd with NUL",
            json!({"command": "ls", "cwd": "sub\0/.."}),
            Expect::Refused(&["INVALID_ARGUMENT"]),
        ),
        // --- paths as arguments of WASI commands: the guest's / is the workspace
        leaks("cat ../outside", "cat", vec!["../outside".into()]),
        leaks("cat absolute outside", "cat", vec![outside.clone()]),
        leaks("cat /etc/passwd", "cat", vec!["/etc/passwd".into()]),
        leaks("cat absolute symlink", "cat", vec!["abs-link".into()]),
        leaks("cat relative symlink", "cat", vec!["rel-link".into()]),
        leaks("cat symlink chain", "cat", vec!["chain-link".into()]),
        leaks(
            "cat through dir symlink",
            "cat",
            vec!["dir-link/loot".into()],
        ),
        leaks("cat prefix sibling", "cat", vec!["../ws-evil/loot".into()]),
        leaks(
            "cat /proc/self/root",
            "cat",
            vec!["/proc/self/root/etc/passwd".into()],
        ),
        leaks(
            "cat via proc-root link",
            "cat",
            vec!["proc-root/etc/passwd".into()],
        ),
        leaks(
            "cat /proc/self/cwd",
            "cat",
            vec!["/proc/self/cwd/../outside".into()],
        ),
        leaks(
            "cat /proc/self/environ",
            "cat",
            vec!["/proc/self/environ".into()],
        ),
        leaks("cat /dev/fd/3", "cat", vec!["/dev/fd/3".into()]),
        leaks("ls ..", "ls", vec!["..".into(), "../ws-evil".into()]),
        // GNU ls would list ws-evil; here the link cannot be followed and is shown as itself.
        attack(
            "ls through dir symlink",
            cmd("ls", &["dir-link/", "rel-dir-link/"]),
            Expect::NoLeak,
        ),
        leaks(
            "find outside",
            "find",
            vec!["..".into(), "-name".into(), "loot".into()],
        ),
        leaks(
            "grep -r ..",
            "grep",
            vec!["-r".into(), SECRET.into(), "..".into()],
        ),
        leaks("head via symlink", "head", vec!["abs-link".into()]),
        leaks(
            "cp outside in",
            "cp",
            vec![outside.clone(), "stolen".into()],
        ),
        leaks(
            "ln a hardlink to outside",
            "ln",
            vec![outside.clone(), "hard".into()],
        ),
        leaks(
            "ln -s then read",
            "cat",
            vec!["rel-link".into(), "dangling".into()],
        ),
        leaks(
            "write through dangling link",
            "writer",
            vec!["dangling".into(), "pwned".into()],
        ),
        leaks(
            "write through dir link",
            "writer",
            vec!["dir-link/new".into(), "pwned".into()],
        ),
        leaks("write ../", "writer", vec!["../new".into(), "pwned".into()]),
        leaks(
            "mv a file out",
            "mv",
            vec!["inside.txt".into(), "../moved".into()],
        ),
        leaks("rm outside", "rm", vec!["../outside".into()]),
        attack(
            "rm -rf outside",
            cmd("rm", &["-rf", "../ws-evil", "dir-link/loot"]),
            Expect::NoLeak,
        ),
        leaks("touch outside", "touch", vec!["../created-later".into()]),
        leaks("over-long path argument", "cat", vec![deep.clone() + "f"]),
        // --- resources: each bounded and reported with its code
        attack(
            "infinite loop",
            json!({"command": "spin", "timeout_ms": 1000}),
            Expect::Stopped("TIMEOUT"),
        ),
        attack(
            "memory bomb",
            cmd("memhog", &[]),
            Expect::Stopped("MEMORY_LIMIT"),
        ),
        attack(
            "deep recursion",
            cmd("recurse", &[]),
            Expect::Stopped("COMMAND_FAILED"),
        ),
        // --- awk: no processes, nothing outside, a parser that cannot be driven too deep
        attack(
            "awk system()",
            cmd("awk", &["BEGIN { system(\"touch pwned\") }"]),
            Expect::RanAndFailed,
        ),
        attack(
            "awk print to a command",
            cmd("awk", &["BEGIN { print \"touch pwned\" | \"sh\" }"]),
            Expect::RanAndFailed,
        ),
        attack(
            "awk reading a command",
            cmd(
                "awk",
                &["BEGIN { \"cat ../outside\" | getline x; print x }"],
            ),
            Expect::RanAndFailed,
        ),
        attack(
            "awk getline from outside",
            cmd(
                "awk",
                &[&format!(
                    "BEGIN {{ while ((getline l < \"{outside}\") > 0) print l; \
                     while ((getline l < \"../outside\") > 0) print l; print \"done\" }}"
                )],
            ),
            Expect::Stdout("done\n"),
        ),
        attack(
            "awk print > outside",
            cmd("awk", &["BEGIN { print \"x\" > \"../new\" }"]),
            Expect::RanAndFailed,
        ),
        attack(
            "awk nesting 100,000 deep",
            cmd("awk", &[&awk_deep]),
            Expect::RanAndFailed,
        ),
        // awk's own error (exit 2, a result), not a stack overflow trap (COMMAND_FAILED).
        attack(
            "awk recursion through deep expressions",
            cmd("awk", &[&awk_recursion]),
            Expect::RanAndFailed,
        ),
        // --- policy: nothing a request carries changes it
        attack(
            "unknown field naming a policy key",
            json!({"command": "ls", "workspace_writable": true}),
            Expect::Refused(&["INVALID_ARGUMENT"]),
        ),
        attack(
            "timeout above the ceiling",
            json!({"command": "ls", "timeout_ms": 10_000_000_000u64}),
            Expect::Refused(&["INVALID_ARGUMENT"]),
        ),
    ];
    // A symlink whose target is created only after start still leads outside.
    t.push(leaks(
        "dangling link created later",
        "cat",
        vec!["dangling".into()],
    ));
    t
}

#[test]
fn the_attack_table() {
    let env = hostile_env();
    let mut s = env.serve();
    let mut failures = Vec::new();
    let attacks = table(&env);
    // The dangling link's target now exists; following it must still fail.
    std::fs::write(env.dir.path().join("created-later"), format!("{SECRET}\n")).unwrap();
    for a in &attacks {
        let r = s.call("run", a.request.clone());
        if let Err(why) = judge(&env, a, &r) {
            failures.push(format!("{}: {why}\n    reply: {r}", a.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} attacks were not handled:\n{}",
        failures.len(),
        attacks.len(),
        failures.join("\n")
    );
    // Nothing outside changed or appeared.
    let base = env.dir.path();
    assert_eq!(
        std::fs::read_to_string(base.join("outside")).unwrap(),
        format!("{SECRET}\n")
    );
    let mut siblings: Vec<String> = std::fs::read_dir(base)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    siblings.sort();
    for unexpected in ["moved", "new"] {
        assert!(!siblings.contains(&unexpected.to_owned()), "{siblings:?}");
    }
    assert!(!base.join("ws-evil/new").exists());
    assert!(base.join("ws-evil/loot").exists(), "rm reached the sibling");
    assert!(
        !env.ws.join("stolen").exists(),
        "cp copied an outside file in"
    );
    assert!(
        !env.ws.join("hard").exists(),
        "ln linked an outside file in"
    );
    assert!(env.ws.join("inside.txt").exists(), "mv moved a file out");
    assert!(!env.ws.join("pwned").exists(), "awk started a command");
    // The server is still healthy after all of it.
    let r = s.run("cat", &["inside.txt"]);
    assert_eq!(structured(&r)["stdout"], "fine\n");
}

fn judge(env: &Env, a: &Attack, r: &Value) -> Result<(), String> {
    let text = r.to_string();
    if text.contains(SECRET) {
        return Err("the secret leaked".into());
    }
    if text.contains("root:x:0:0") {
        return Err("/etc/passwd leaked".into());
    }
    if !is_error(r)
        && structured(r)["stdout"]
            .as_str()
            .is_some_and(|o| o.contains("loot"))
    {
        return Err("a file name from outside was listed".into());
    }
    let records = env.records_of(&request_id(r));
    let stages: Vec<&str> = records.iter().filter_map(|x| x["stage"].as_str()).collect();
    match a.expect {
        Expect::Refused(codes) => {
            let code = if is_error(r) {
                error_code(r)
            } else {
                String::new()
            };
            if !codes.contains(&code.as_str()) {
                return Err(format!("expected one of {codes:?}, got {code:?}"));
            }
            if stages.last() != Some(&"denied") || stages.contains(&"completed") {
                return Err(format!("audit stages {stages:?}: expected a denial"));
            }
        }
        Expect::RanAndFailed => {
            if is_error(r) {
                return Err(format!("expected a result, got error {}", error_code(r)));
            }
            if structured(r)["exitCode"] == 0 {
                return Err("the command succeeded".into());
            }
        }
        Expect::Stdout(expected) => {
            if is_error(r) || structured(r)["stdout"] != expected {
                return Err(format!("expected stdout {expected:?}"));
            }
        }
        Expect::NoLeak => {
            if is_error(r) {
                return Err(format!("expected a result, got error {}", error_code(r)));
            }
        }
        Expect::Stopped(code) => {
            if !is_error(r) || error_code(r) != code {
                return Err(format!("expected {code}"));
            }
            if stages.last() != Some(&"failed") {
                return Err(format!("audit stages {stages:?}: expected failed"));
            }
        }
    }
    Ok(())
}

/// A directory inside the workspace is swapped for a symlink to the outside, over and over,
/// while commands read through it and use it as cwd: a check-then-use race. Nothing outside is
/// ever read or listed (the kernel resolves every path beneath the workspace at use).
#[test]
fn a_symlink_swapped_in_during_calls_never_leads_outside() {
    let env = hostile_env();
    let real = env.ws.join("swap");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("loot"), "inside\n").unwrap();
    let mut s = env.serve();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let ws = env.ws.clone();
        let evil = env.dir.path().join("ws-evil");
        std::thread::spawn(move || {
            let (real, parked, link) = (ws.join("swap"), ws.join("parked"), ws.join("swap-link"));
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // swap: a real directory <-> a symlink to ws-evil (which holds "loot").
                let _ = std::fs::rename(&real, &parked);
                let _ = symlink(&evil, &link);
                let _ = std::fs::rename(&link, &real);
                std::thread::sleep(std::time::Duration::from_micros(500));
                let _ = std::fs::remove_file(&real);
                let _ = std::fs::rename(&parked, &real);
                std::thread::sleep(std::time::Duration::from_micros(500));
                swaps += 1;
            }
            swaps
        })
    };
    let mut inside_reads = 0;
    for i in 0..400 {
        let r = if i % 2 == 0 {
            s.run("cat", &["swap/loot"])
        } else {
            s.call("run", json!({"command": "ls", "cwd": "swap"}))
        };
        let text = r.to_string();
        assert!(!text.contains(SECRET), "iteration {i} leaked: {r}");
        if !is_error(&r) && structured(&r)["stdout"] == "inside\n" {
            inside_reads += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 20, "the race barely ran ({swaps} swaps)");
    assert!(inside_reads > 0, "the real directory was never read");
}

/// A policy file written into the workspace is never read, and one there is refused at start.
#[test]
fn the_workspace_cannot_hold_or_change_the_policy() {
    let env = Env::new();
    // Files a hostile workspace might plant, hoping runbox picks them up.
    for name in [
        ".runbox.toml",
        "runbox.toml",
        "policy.toml",
        ".runbox/policy.toml",
    ] {
        // Valid policy text: were it read, only `ls` would be allowed, in another time zone.
        env.file(
            name,
            "commands = [\"ls\"]\n[wasi.env]\nTZ = \"Asia/Tokyo\"\n",
        );
    }
    let mut s = env.serve();
    assert_eq!(
        error_code(&s.run("sh", &["-c", "id"])),
        "COMMAND_NOT_ALLOWED"
    );
    let r = s.run("cat", &["policy.toml"]);
    assert_eq!(
        structured(&r)["exitCode"],
        0,
        "the planted policy was applied: {r}"
    );
    let r = s.run("date", &["+%Z"]);
    assert_eq!(structured(&r)["stdout"], "UTC\n", "{r}");
    let list = s.call("list_commands", json!({}));
    assert!(
        !list.to_string().contains("\"sh\""),
        "sh appeared in the allowlist"
    );
    drop(s);

    // Started with --config inside the workspace: refused, with the reason.
    let out = as_server_user(runbox_bin())
        .args(["exec", "--allow-root", "--workspace"])
        .arg(&env.ws)
        .arg("--config")
        .arg(env.ws.join("policy.toml"))
        .args(["--audit-dir"])
        .arg(&env.audit)
        .args(["echo", "--", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inside the workspace"), "{err}");
}

/// 10,000 files from one pipeline (`seq | split -l 1`): all made, and the server stays healthy.
#[test]
fn ten_thousand_files_are_created_listed_and_removed() {
    let env = Env::new();
    std::fs::create_dir(env.ws.join("many")).unwrap();
    hand_over(&env.ws);
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({"pipeline": [cmd("seq", &["10000"]), cmd("split", &["-l", "1", "-d", "-a", "4", "-", "many/x"])],
               "timeout_ms": 300_000}),
    );
    assert!(!is_error(&r), "{r}");
    assert_eq!(
        std::fs::read_dir(env.ws.join("many")).unwrap().count(),
        10_000
    );
    let r = s.run("cat", &["many/x0000", "many/x9999"]);
    assert_eq!(structured(&r)["stdout"], "1\n10000\n", "{r}");
    // Listed in full, and removed in full (rm reads the directory while deleting from it).
    let r = s.call(
        "run",
        json!({"pipeline": [cmd("find", &["many", "-type", "f"]), cmd("wc", &["-l"])], "timeout_ms": 300_000}),
    );
    assert_eq!(structured(&r)["stdout"], "10000\n", "{r}");
    let r = s.call(
        "run",
        json!({"command": "rm", "args": ["-r", "many"], "timeout_ms": 300_000}),
    );
    assert_eq!(structured(&r)["exitCode"], 0, "{r}");
    assert!(!env.ws.join("many").exists());
}

/// `env.policy_args()` without `flag` and its value.
fn policy_args_without(env: &Env, flag: &str) -> Vec<String> {
    let mut args = env.policy_args();
    if let Some(i) = args.iter().position(|a| a == flag) {
        args.drain(i..i + 2);
    }
    args
}

/// The reported attack: a workspace of `$HOME` holds the default module cache
/// (`~/.cache/runbox/modules`), whose compiled artifacts run as native code inside the server;
/// a guest replaced one and the next start executed it. Start now refuses, naming the key and
/// the fix, before creating anything in the workspace.
#[test]
fn a_workspace_holding_the_module_cache_is_refused_at_start() {
    let env = Env::new();
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(policy_args_without(&env, "--cache-dir"))
        .env("HOME", &env.ws)
        .env_remove("XDG_CACHE_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cache_dir")
            && err.contains("inside the workspace")
            && err.contains("fix: set cache_dir"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(!env.ws.join(".cache").exists(), "start created the cache");

    // The same through a link outside the workspace to a directory not yet made inside it.
    let link = env.dir.path().join("cache-link");
    std::os::unix::fs::symlink(env.ws.join(".later"), &link).unwrap();
    let mut args = policy_args_without(&env, "--cache-dir");
    args.extend([
        "--cache-dir".into(),
        link.join("modules").display().to_string(),
    ]);
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cache_dir"));
}

/// A `TMPDIR` inside the workspace would put each call's scratch directory where the previous
/// call can plant files: refused at start, naming TMPDIR and the fix.
#[test]
fn a_tmpdir_inside_the_workspace_is_refused_at_start() {
    let env = Env::new();
    env.file("tmp/planted", "x");
    for sub in ["serve", "exec"] {
        let mut cmd = as_server_user(runbox_bin());
        cmd.arg(sub)
            .args(env.policy_args())
            .env("TMPDIR", env.ws.join("tmp"));
        if sub == "exec" {
            cmd.args(["echo", "hi"]);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{sub}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("TMPDIR") && err.contains("fix: start runbox with TMPDIR"),
            "{sub}: {err}"
        );
    }
}
