//! Limits end commands with the right code, and big output costs the server no memory.

use crate::support::*;
use serde_json::json;

#[test]
fn infinite_loop_ends_with_timeout() {
    let env = Env::new().with_guests(&["spin"]);
    let mut s = env.serve();
    let r = s.call("run", json!({"command": "spin", "timeout_ms": 500}));
    assert_eq!(error_code(&r), "TIMEOUT");
    let ms = structured(&r)["error"]["partial"]["durationMs"]
        .as_u64()
        .unwrap();
    assert!(ms >= 500, "stopped early: {ms} ms");
    // A sanity bound (not a performance target): the limit must actually stop it.
    assert!(ms < 10_000, "stopped far too late: {ms} ms");
}

#[test]
fn a_guest_blocked_in_a_host_call_also_times_out() {
    let env = Env::new().with_guests(&["sleeper"]);
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({"command": "sleeper", "args": ["60000"], "timeout_ms": 300}),
    );
    assert_eq!(error_code(&r), "TIMEOUT");
    assert!(
        structured(&r)["error"]["partial"]["durationMs"]
            .as_u64()
            .unwrap()
            < 10_000
    );
}

#[test]
fn fuel_exhaustion_is_cpu_limit() {
    let env = Env::new()
        .with_guests(&["spin"])
        .with_config("[limits]\nfuel = 50000000\n");
    let mut s = env.serve();
    let r = s.run("spin", &[]);
    assert_eq!(error_code(&r), "CPU_LIMIT");
}

#[test]
fn memory_hog_ends_with_memory_limit() {
    let env = Env::new()
        .with_guests(&["memhog"])
        .with_config("[limits]\nmemory_bytes = 67108864\n");
    let mut s = env.serve();
    let r = s.run("memhog", &[]);
    assert_eq!(error_code(&r), "MEMORY_LIMIT");
    assert!(
        structured(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("67108864")
    );
}

#[test]
fn timeout_above_the_ceiling_is_refused() {
    let env = Env::new().with_config("[limits]\nmax_timeout_ms = 1000\n");
    let mut s = env.serve();
    let r = s.call("run", json!({"command": "echo", "timeout_ms": 5000}));
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
    let r = s.call("run", json!({"command": "echo", "timeout_ms": 0}));
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
}

#[test]
fn hundred_megabytes_of_output_are_truncated_at_the_cap() {
    let env = Env::new().with_guests(&["flood"]);
    let mut s = env.serve();
    s.run("echo", &["warm"]);
    let before = s.peak_rss_kib();
    let r = s.run("flood", &["100"]);
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["exitCode"], 0);
    assert_eq!(out["stdoutTruncated"], true);
    assert_eq!(
        out["stdout"].as_str().unwrap().len(),
        1024 * 1024,
        "kept exactly the default 1 MiB cap"
    );
    let after = s.peak_rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "server peak memory grew by {grown_mib} MiB for 100 MiB of output"
    );
    let records = env.call_ends();
    let last = &records.last().unwrap()["result"]["stdout"];
    assert_eq!(last["bytes"], 100 * 1024 * 1024);
    assert_eq!(last["truncated"], true);
}

#[test]
fn exit_codes_pass_through_and_crashes_are_reported() {
    let env = Env::new().with_guests(&["exiter", "panicker"]);
    let mut s = env.serve();
    let r = s.run("exiter", &["7"]);
    assert_eq!(structured(&r)["exitCode"], 7);
    let r = s.run("panicker", &[]);
    assert_eq!(error_code(&r), "COMMAND_FAILED");
    assert!(
        structured(&r)["error"]["partial"]["stderr"]
            .as_str()
            .unwrap()
            .contains("panics on purpose")
    );
}

#[test]
fn guest_sees_only_the_policy_environment_and_pwd() {
    let env = Env::new().with_guests(&["whereami"]);
    env.file("sub/x", "");
    let mut s = env.serve();
    let r = s.call("run", json!({"command": "whereami", "cwd": "sub"}));
    let out = structured(&r)["stdout"].as_str().unwrap().to_owned();
    let vars: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("env ")).collect();
    let mut names: Vec<&str> = vars.iter().filter_map(|v| v.split('=').next()).collect();
    names.sort();
    assert_eq!(names, ["LANG", "PWD", "TMPDIR", "TZ"], "{out}");
    assert!(vars.contains(&"PWD=/sub"), "{out}");
}

#[test]
fn read_only_policy_refuses_writers() {
    let env = Env::new().with_config("workspace_writable = false\n");
    let mut s = env.serve();
    let r = s.run("mkdir", &["newdir"]);
    assert_eq!(error_code(&r), "READ_ONLY");
    assert!(!env.ws.join("newdir").exists());
    let r = s.run("echo", &["still works"]);
    assert_eq!(structured(&r)["exitCode"], 0);
}

#[test]
fn each_call_gets_a_private_scratch_tmpdir() {
    let env = Env::new().with_config("workspace_writable = false\n");
    env.file("tmp/keep.txt", "mine\n");
    let mut s = env.serve();
    // mktemp is a writing command, refused under this read-only policy...
    assert_eq!(error_code(&s.run("mktemp", &[])), "READ_ONLY");
    // ...but a reading command may still use its scratch space, e.g. sort's temporary files.
    let r = s.call("run", json!({"command": "sort", "args": ["-S", "1K", "-T", "/.runbox-tmp"], "stdin": "b\na\nc\n"}));
    assert_eq!(structured(&r)["stdout"], "a\nb\nc\n", "{r}");
    // The workspace's own tmp/ stays visible.
    let r = s.run("cat", &["tmp/keep.txt"]);
    assert_eq!(structured(&r)["stdout"], "mine\n");
}

#[test]
fn scratch_files_do_not_survive_the_call() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.call("run", json!({"command": "mktemp", "args": []}));
    let path = structured(&r)["stdout"].as_str().unwrap().trim().to_owned();
    assert!(path.starts_with("/.runbox-tmp/"), "{r}");
    let r = s.run("ls", &["-A", "/.runbox-tmp"]);
    assert_eq!(
        structured(&r)["stdout"],
        "",
        "a new call starts with an empty scratch directory"
    );
    assert!(!env.ws.join(".runbox-tmp").exists());
}

/// Recurses until the wasm stack limit traps.
const RECURSE_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (func $down (param i64) (result i64)
    (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (local.get 0)))
  (func (export "_start") (drop (call $down (i64.const 0)))))
"#;

/// Calls the host (path_open through the workspace preopen, then fd_write of nothing) at every
/// depth on the way down, so some call is made just under the wasm stack limit, whatever the
/// size of a frame.
const RECURSE_THEN_CALL_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "no/such/file/anywhere")
  (func $down
    (drop (call $path_open (i32.const 3) (i32.const 1) (i32.const 64) (i32.const 21)
                           (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 8)))
    (call $down))
  (func (export "_start") (call $down)))
"#;

/// A tools_dir module can recurse without bound, or to just under the wasm stack limit and
/// then call the host: each call ends as a structured error and the server keeps serving. (The
/// guest fiber used to be exactly as large as the wasm stack limit, so the host call ran off
/// its guard page and aborted the server.)
#[test]
fn deep_wasm_recursion_never_overflows_the_server() {
    let env = Env::new();
    let tools = env.dir.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::write(
        tools.join("recurse.wasm"),
        wat::parse_str(RECURSE_WAT).unwrap(),
    )
    .unwrap();
    std::fs::write(
        tools.join("recursecall.wasm"),
        wat::parse_str(RECURSE_THEN_CALL_WAT).unwrap(),
    )
    .unwrap();
    let env = Env {
        tools: Some(tools),
        ..env
    };
    let mut s = env.serve();
    for _ in 0..2 {
        for name in ["recurse", "recursecall"] {
            let r = s.run(name, &[]);
            assert_eq!(error_code(&r), "COMMAND_FAILED", "{name}: {r}");
            let r = s.run("echo", &["alive"]);
            assert_eq!(structured(&r)["stdout"], "alive\n", "after {name}: {r}");
        }
    }
}

/// The reported attack with built-ins only: `mkdir -p` in steps and `mv` build a 20,000-deep
/// directory chain, then `rm -rf` walks it. The rm may fail (a stack overflow is a
/// COMMAND_FAILED) or succeed; the server must survive either way and answer the next call.
#[test]
fn removing_a_twenty_thousand_deep_chain_does_not_abort_the_server() {
    const STEP: usize = 1000;
    let env = Env::new();
    let _cleanup = RemoveDeepTree(env.ws.join("chain"));
    let mut s = env.serve();
    let step = |top: &str| format!("{top}/{}", vec!["a"; STEP - 1].join("/"));
    let ok = |s: &mut Server, cmd: &str, args: &[&str]| {
        let r = s.run(cmd, args);
        assert_eq!(structured(&r)["exitCode"], 0, "{cmd}: {r}");
    };
    ok(&mut s, "mkdir", &["-p", &step("chain")]);
    for _ in 1..20 {
        let next = step("next");
        ok(&mut s, "mkdir", &["-p", &next]);
        ok(&mut s, "mv", &["chain", &format!("{next}/chain")]);
        ok(&mut s, "mv", &["next", "chain"]);
    }
    let r = s.run("rm", &["-rf", "chain"]);
    if is_error(&r) {
        assert_eq!(error_code(&r), "COMMAND_FAILED", "{r}");
    }
    let r = s.run("echo", &["alive"]);
    assert_eq!(structured(&r)["stdout"], "alive\n", "{r}");
}

/// Removes a deep directory tree when dropped, even when the test fails: std's `remove_dir_all`
/// (run when the test's directory is dropped) recurses and would overflow the test's own stack;
/// GNU rm walks any depth.
struct RemoveDeepTree(std::path::PathBuf);

impl Drop for RemoveDeepTree {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&self.0)
            .status();
    }
}
