//! The native runner with real processes: trees die on timeout, cancellation and server death;
//! limits hold; nothing of the server leaks in; the kernel stops hostile binaries (`sh` is
//! allowed natively here on purpose) and git's code-running arguments.
//!
//! Tests that need a kernel feature skip with a printed reason where `runbox doctor` reports it
//! missing; tests that need root (or bash, or git) say so when they skip.

use crate::support::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `sh` (dash), `bash` and `echo2` natively, next to the WASI built-ins.
const POLICY: &str = r#"
[native.sh]
path = "/bin/sh"
description = "a hostile binary on purpose"
[native.sh.limits]
memory_bytes = 268435456
"#;

/// Why native tests cannot run here, if they cannot (from `runbox doctor`).
pub(crate) fn confinement_missing() -> Option<&'static str> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING
        .get_or_init(|| {
            let out = as_server_user(runbox_bin())
                .arg("doctor")
                .output()
                .expect("run runbox doctor");
            // The exit status also covers the operator's directories; only the native verdict
            // matters here.
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (!text.contains("native commands are fully confined")).then_some(text)
        })
        .as_deref()
}

/// Returns early (printing why) when the kernel cannot confine native commands.
macro_rules! require_confinement {
    ($name:literal) => {
        if let Some(why) = confinement_missing() {
            eprintln!(
                "SKIPPED {}: native confinement is incomplete here:\n{why}",
                $name
            );
            return;
        }
    };
}

/// Whether this test's servers are asked for the reaper mode (`sandbox.isolation`).
pub(crate) fn reaper_mode() -> bool {
    test_isolation().as_deref() == Some("reaper")
}

/// Whether the servers under test run as root (then native commands drop to 65534).
fn server_is_root() -> bool {
    nix::unistd::geteuid().is_root() && server_uid().is_none()
}

/// The uid native commands run as: 65534 under a root server, else the server's own uid
/// (`None`: the test's own uid, nothing to hand over).
pub(crate) fn sandbox_uid() -> Option<u32> {
    if server_is_root() {
        Some(65534)
    } else {
        server_uid()
    }
}

/// The sandbox uid's view: it must be able to reach and write the workspace (the documented
/// requirement).
pub(crate) fn make_usable_by_sandbox(env: &Env) {
    if sandbox_uid().is_some() {
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        chown_tree(&env.ws);
    }
}

/// Gives a tree to the sandbox uid.
pub(crate) fn chown_tree(path: &Path) {
    let Some(uid) = sandbox_uid() else {
        return;
    };
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path());
        }
    }
}

pub(crate) fn native_env(extra: &str) -> Env {
    let env = Env::new().with_config(&format!("{POLICY}{extra}"));
    make_usable_by_sandbox(&env);
    env
}

fn sh(s: &mut Server, script: &str) -> Value {
    s.run("sh", &["-c", script])
}

fn stdout_of(r: &Value) -> String {
    assert!(!is_error(r), "expected a result, got {r}");
    structured(r)["stdout"].as_str().unwrap().to_owned()
}

/// Pids (in this namespace) of live processes whose command line contains `marker`.
pub(crate) fn pids_with(marker: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if has_marker(pid, marker) {
            pids.push(pid);
        }
    }
    pids
}

fn has_marker(pid: i32, marker: &str) -> bool {
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with(['Z', 'X']))
        })
        .is_some_and(|zombie| !zombie);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    alive
        && String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .contains(marker)
}

/// Waits until `n` processes carry `marker` and returns their pids.
fn wait_for_processes(marker: &str, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pids = pids_with(marker);
        if pids.len() >= n {
            return pids;
        }
        assert!(Instant::now() < deadline, "only {pids:?} of {n} started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts none of `pids` still runs the marked command (checked by pid).
fn assert_all_gone(pids: &[i32], marker: &str) {
    let survivors: Vec<_> = pids.iter().filter(|p| has_marker(**p, marker)).collect();
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
}

/// A sleep length that marks one test's processes, different in the reaper twin of the test
/// (native_reaper.rs), so the two can run at the same time without seeing each other's sleeps.
fn mode_marker(n: u32) -> String {
    format!("{n}.{}", if reaper_mode() { 75 } else { 25 })
}

/// A shell that leaves a background child, a `setsid` child and a double-forked `setsid`
/// grandchild, all sleeping `secs` (unique per test, as the marker).
fn escaping_tree(secs: &str) -> String {
    format!("sleep {secs} & setsid sleep {secs} & (setsid sh -c \"sleep {secs}\" &); wait")
}

#[test]
fn native_commands_are_listed_with_runner_native() {
    let env = native_env("");
    let mut s = env.serve();
    let list = structured(&s.call("list_commands", json!({}))).clone();
    let sh = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sh")
        .expect("sh listed");
    assert_eq!(sh["runner"], "native");
    assert_eq!(sh["access"], "write");
    assert_eq!(sh["limits"]["memoryBytes"], 268435456);
    assert!(sh["limits"]["processes"].as_u64().unwrap() > 0);
    let ls = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ls");
    assert_eq!(ls.unwrap()["runner"], "wasi");
}

#[test]
pub(crate) fn a_native_call_has_the_same_result_shape() {
    require_confinement!("a_native_call_has_the_same_result_shape");
    let env = native_env("");
    std::fs::create_dir(env.ws.join("sub")).unwrap();
    chown_tree(&env.ws);
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({"command": "sh", "args": ["-c", "cat; pwd; echo err >&2; exit 3"], "stdin": "in\n", "cwd": "sub"}),
    );
    let out = structured(&r);
    assert_eq!(out["exitCode"], 3, "{r}");
    assert_eq!(out["runner"], "native");
    assert_eq!(out["stderr"], "err\n");
    let stdout = out["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with("in\n") && stdout.trim_end().ends_with("/sub"),
        "{stdout}"
    );
    assert!(is_uuid_v7(out["requestId"].as_str().unwrap()));
    assert_eq!(text_json(&r), *out);
    let rec = env.audit_records().pop().unwrap();
    assert_eq!(rec["stage"], "completed");
    assert_eq!(rec["runner"], "native");
    assert_eq!(rec["policy"]["rule"], "allowlist:native");
    assert_eq!(rec["result"]["exitCode"], 3);
    let mechanism = rec["sandbox"]["confinement"]["mechanism"].as_str().unwrap();
    assert!(mechanism.starts_with("native: landlock"), "{mechanism}");
    if reaper_mode() {
        assert!(mechanism.contains("per-call reaper"), "{mechanism}");
    }
}

#[test]
pub(crate) fn timeout_kills_the_whole_tree_with_zero_survivors() {
    require_confinement!("timeout_kills_the_whole_tree_with_zero_survivors");
    let env = native_env("");
    let mut s = env.serve();
    let marker = &mode_marker(1001);
    let id = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sh", "args": ["-c", escaping_tree(marker)], "timeout_ms": 3000}}),
    );
    // The outer sh, three sleeps, and the inner sh unless it exec'd its sleep.
    let pids = wait_for_processes(marker, 4);
    let r = s.wait_for(id)["result"].clone();
    assert_eq!(error_code(&r), "TIMEOUT", "{r}");
    let killed = structured(&r)["error"]["partial"]["processesKilled"]
        .as_u64()
        .unwrap();
    assert!(killed >= 4, "processesKilled {killed}");
    assert_all_gone(&pids, marker);
    assert!(pids_with(marker).is_empty());
}

#[test]
pub(crate) fn cancel_kills_the_whole_tree() {
    require_confinement!("cancel_kills_the_whole_tree");
    let env = native_env("");
    let mut s = env.serve();
    let marker = &mode_marker(1002);
    let id = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sh", "args": ["-c", escaping_tree(marker)]}}),
    );
    let pids = wait_for_processes(marker, 4);
    s.notify("notifications/cancelled", json!({"requestId": id}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| has_marker(*p, marker)) {
        assert!(Instant::now() < deadline, "tree still alive after cancel");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The server answers the next call (a cancelled request gets no response).
    let r = s.run("echo", &["alive"]);
    assert_eq!(structured(&r)["stdout"], "alive\n");
    let deadline = Instant::now() + RESPONSE_TIMEOUT;
    let rec = loop {
        if let Some(rec) = env
            .audit_records()
            .into_iter()
            .find(|r| r["command"] == "sh" && r["stage"] == "failed")
        {
            break rec;
        }
        assert!(
            Instant::now() < deadline,
            "no audit record for the cancelled call"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(rec["error"]["code"], "CANCELLED");
    assert!(
        rec["result"]["processesKilled"].as_u64().unwrap_or(0) >= 1,
        "{rec}"
    );
    assert!(
        !s.pending_ids().contains(&id),
        "a result was sent for a cancelled request"
    );
}

#[test]
pub(crate) fn server_death_kills_the_tree() {
    require_confinement!("server_death_kills_the_tree");
    let env = native_env("");
    let mut s = env.serve();
    let marker = &mode_marker(1003);
    s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sh", "args": ["-c", escaping_tree(marker)]}}),
    );
    let pids = wait_for_processes(marker, 4);
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| has_marker(*p, marker)) {
        assert!(Instant::now() < deadline, "tree outlived the server");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
pub(crate) fn a_grandchild_holding_stdout_does_not_hold_the_reply() {
    require_confinement!("a_grandchild_holding_stdout_does_not_hold_the_reply");
    let env = native_env("");
    let mut s = env.serve();
    let marker = &mode_marker(1004);
    // Were the reply held until the detached sleep ends, the call would end in TIMEOUT instead.
    let r = s.call(
        "run",
        json!({"command": "sh", "args": ["-c", format!("(setsid sleep {marker} &); echo done")], "timeout_ms": 60000}),
    );
    assert_eq!(stdout_of(&r), "done\n");
    assert!(pids_with(marker).is_empty(), "the detached sleep survived");
}

#[test]
pub(crate) fn fork_bomb_is_bounded() {
    require_confinement!("fork_bomb_is_bounded");
    let env = Env::new()
        .with_config("[native.sh]\npath = \"/bin/sh\"\n[native.sh.limits]\nprocesses = 16\n");
    make_usable_by_sandbox(&env);
    let mut s = env.serve();
    if reaper_mode() {
        return crate::native_reaper::fork_bomb_is_stopped_by_the_reaper(&mut s, 16);
    }
    // An inner shell starts sleeps until fork fails (fatal for dash); the outer one outlives
    // it, keeping the orphaned sleeps in the namespace until the timeout counts them. The
    // kernel counts RLIMIT_NPROC per uid, so when other processes of the sandbox uid run at the
    // same time (other calls; runbox itself when it is unprivileged), the outer shell may find
    // no room for its own `sleep` and exit early: bounded either way.
    let r = s.call(
        "run",
        json!({"command": "sh", "args": ["-c", "sh -c 'for i in $(seq 100); do sleep 1005.25 & done'; sleep 30"], "timeout_ms": 3000}),
    );
    if is_error(&r) {
        assert_eq!(error_code(&r), "TIMEOUT", "{r}");
        let partial = &structured(&r)["error"]["partial"];
        assert!(
            partial["stderr"].as_str().unwrap().contains("Cannot fork"),
            "{r}"
        );
        let killed = partial["processesKilled"].as_u64().unwrap();
        assert!((1..=16).contains(&killed), "processesKilled {killed}");
    } else {
        let out = structured(&r);
        assert_ne!(out["exitCode"], 0, "{r}");
        assert!(
            out["stderr"].as_str().unwrap().contains("Cannot fork"),
            "{r}"
        );
    }
    assert!(
        pids_with("1005.25").is_empty(),
        "a sleep of the bomb survived"
    );
    // The classic bomb, sampled while it runs.
    let marker = "bomb-1005";
    let id = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sh", "args": ["-c", format!("f() {{ f | f & }}; f; sleep 3 # {marker}")], "timeout_ms": 2000}}),
    );
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        peak = peak.max(pids_with(marker).len());
    }
    let r = s.wait_for(id)["result"].clone();
    assert!(peak <= 16, "peak {peak} processes");
    assert!(peak >= 1, "the bomb never ran");
    // Stopped at the deadline, or the shell itself could not fork its `sleep` and gave up.
    assert!(
        (is_error(&r) && error_code(&r) == "TIMEOUT")
            || (!is_error(&r) && structured(&r)["exitCode"] != 0),
        "{r}"
    );
    assert!(pids_with(marker).is_empty());
}

#[test]
pub(crate) fn memory_hog_is_stopped() {
    require_confinement!("memory_hog_is_stopped");
    let env = Env::new().with_config(
        "[native.sh]\npath = \"/bin/sh\"\n[native.sh.limits]\nmemory_bytes = 67108864\n",
    );
    make_usable_by_sandbox(&env);
    let mut s = env.serve();
    // Not stopped by the memory limit, it would end in TIMEOUT (an error result) instead.
    let r = s.call(
        "run",
        json!({"command": "sh", "args": ["-c", "x=$(yes); echo survived"], "timeout_ms": 60000}),
    );
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_ne!(out["exitCode"], 0, "{r}");
    assert!(!out["stdout"].as_str().unwrap().contains("survived"));
}

#[test]
pub(crate) fn cpu_burner_hits_the_cpu_limit() {
    require_confinement!("cpu_burner_hits_the_cpu_limit");
    let env = Env::new()
        .with_config("[native.sh]\npath = \"/bin/sh\"\n[native.sh.limits]\ncpu_seconds = 1\n");
    make_usable_by_sandbox(&env);
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({"command": "sh", "args": ["-c", "while :; do :; done"], "timeout_ms": 60000}),
    );
    assert_eq!(error_code(&r), "CPU_LIMIT", "{r}");
}

#[test]
pub(crate) fn file_size_limit_makes_big_writes_fail() {
    require_confinement!("file_size_limit_makes_big_writes_fail");
    let env = Env::new().with_config(
        "[native.sh]\npath = \"/bin/sh\"\n[native.sh.limits]\nfile_size_bytes = 1000000\n",
    );
    make_usable_by_sandbox(&env);
    let mut s = env.serve();
    let r = sh(&mut s, "head -c 2000000 /dev/zero > big; echo rc=$?");
    assert_eq!(stdout_of(&r), "rc=1\n");
    assert_eq!(
        std::fs::metadata(env.ws.join("big")).unwrap().len(),
        1_000_000
    );
}

#[test]
fn output_is_capped_and_counted() {
    require_confinement!("output_is_capped_and_counted");
    let env = native_env("[limits]\nstdout_bytes = 1000\n");
    let mut s = env.serve();
    let r = sh(&mut s, "yes | head -c 3000000");
    let out = structured(&r);
    assert_eq!(out["stdout"].as_str().unwrap().len(), 1000);
    assert_eq!(out["stdoutTruncated"], true);
    let rec = env.audit_records().pop().unwrap();
    assert_eq!(rec["result"]["stdout"]["bytes"], 3_000_000);
    assert_eq!(rec["result"]["stdout"]["truncated"], true);
}

#[test]
pub(crate) fn inherited_descriptors_are_closed() {
    require_confinement!("inherited_descriptors_are_closed");
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let env = native_env("");
    let secret = env.dir.path().join("fd-secret");
    std::fs::write(&secret, "FD-SECRET\n").unwrap();
    let file = std::fs::File::open(&secret).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = as_server_user(runbox_bin());
    cmd.arg("serve").args(env.policy_args());
    // SAFETY: dup2 is async-signal-safe; it leaves fd 7 open (not close-on-exec) in runbox.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut s = Server::spawn_command(cmd);
    s.initialize();
    let r = sh(
        &mut s,
        "for fd in 3 4 5 6 7 8 9; do if { true <&$fd; } 2>/dev/null; then echo open $fd; fi; done; cat <&7; echo end",
    );
    let out = stdout_of(&r);
    assert_eq!(out, "end\n", "{r}");
}

#[test]
fn the_servers_environment_does_not_leak() {
    require_confinement!("the_servers_environment_does_not_leak");
    let env = native_env("[native.sh.env]\nGREETING = \"hello\"\n");
    let mut cmd = as_server_user(runbox_bin());
    cmd.arg("serve")
        .args(env.policy_args())
        .env("RUNBOX_TEST_SECRET", "hunter2")
        .env("AWS_SECRET_ACCESS_KEY", "hunter3");
    let mut s = Server::spawn_command(cmd);
    s.initialize();
    let out = stdout_of(&sh(&mut s, "env; touch \"$HOME/left\" \"$TMPDIR/left\""));
    assert!(!out.contains("hunter"), "{out}");
    let mut names: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["GREETING", "HOME", "LANG", "PATH", "PWD", "TMPDIR"],
        "{out}"
    );
    let home = out.lines().find_map(|l| l.strip_prefix("HOME=")).unwrap();
    assert!(
        !home.starts_with(env.ws.to_str().unwrap()),
        "HOME inside the workspace"
    );
    // The next call starts with an empty HOME and TMPDIR: nothing the last one left is there.
    let listing = stdout_of(&sh(
        &mut s,
        "ls -A \"$HOME\" \"$TMPDIR\"; touch \"$HOME/x\" && echo writable",
    ));
    assert!(!listing.contains("left"), "{listing}");
    assert!(listing.ends_with("writable\n"), "{listing}");
    assert!(
        !Path::new(home).join("left").exists(),
        "{home}/left survived the call"
    );
}

#[test]
pub(crate) fn the_child_runs_as_the_sandbox_uid() {
    require_confinement!("the_child_runs_as_the_sandbox_uid");
    let env = native_env("");
    let mut s = env.serve();
    // As root: the unprivileged 65534 with no other groups; otherwise the server's own uid.
    let (uid, gid) = match sandbox_uid() {
        Some(u) => (u, u),
        None => (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ),
    };
    let out = stdout_of(&sh(&mut s, "id -u; id -g; echo x > made"));
    assert_eq!(out, format!("{uid}\n{gid}\n"));
    if server_is_root() {
        assert_eq!(stdout_of(&sh(&mut s, "id -G")), "65534\n");
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(env.ws.join("made")).unwrap().uid(), uid);
}

#[test]
fn a_workspace_the_sandbox_user_cannot_write_is_refused_clearly() {
    if !server_is_root() {
        eprintln!(
            "SKIPPED a_workspace_the_sandbox_user_cannot_write_is_refused_clearly: the server does not run as root"
        );
        return;
    }
    // Not made usable: root-owned, inside a 0700 directory.
    let env = Env::new().with_config(POLICY);
    let mut s = env.serve();
    let r = sh(&mut s, "echo x > f");
    assert_eq!(error_code(&r), "SANDBOX_UNAVAILABLE", "{r}");
    let hint = structured(&r)["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("chown -R 65534:65534"), "{hint}");
    assert!(!env.ws.join("f").exists());
    let rec = env.audit_records().pop().unwrap();
    assert_eq!(rec["stage"], "denied");
    assert_eq!(rec["policy"]["decision"], "deny");
    assert_eq!(rec["policy"]["rule"], "sandbox");
}

#[test]
pub(crate) fn landlock_stops_reads_and_writes_outside_the_workspace() {
    require_confinement!("landlock_stops_reads_and_writes_outside_the_workspace");
    let env = native_env("");
    let base = env.dir.path();
    // Open to everyone at the permission-bit level, so only the kernel's rules stop the command.
    let outside = base.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(base.join("secret"), "TOP-SECRET\n").unwrap();
    std::fs::set_permissions(base.join("secret"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&outside, env.ws.join("link-out")).unwrap();
    std::os::unix::fs::symlink(base.join("secret"), env.ws.join("link-secret")).unwrap();
    std::fs::copy("/bin/true", env.ws.join("planted")).unwrap();
    std::fs::write(env.ws.join("mine"), "mine\n").unwrap();
    chown_tree(&env.ws);
    let mut s = env.serve();
    let o = outside.display();
    let b = base.display();
    let script = format!(
        "cat /etc/shadow >/dev/null 2>&1 && echo LEAK-shadow; \
         cat {b}/secret 2>/dev/null; cat link-secret 2>/dev/null; \
         echo x > {o}/direct 2>/dev/null && echo LEAK-direct; \
         echo x > link-out/via-link 2>/dev/null && echo LEAK-link; \
         mv mine {o}/moved 2>/dev/null && echo LEAK-mv; \
         ./planted 2>/dev/null && echo LEAK-exec; \
         ls /root >/dev/null 2>&1 && echo LEAK-ls; \
         echo ok > inside && cat inside"
    );
    let out = stdout_of(&sh(&mut s, &script));
    assert_eq!(out, "ok\n", "{out}");
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    assert_eq!(
        std::fs::read_to_string(env.ws.join("mine")).unwrap(),
        "mine\n"
    );
}

#[test]
pub(crate) fn network_is_denied() {
    require_confinement!("network_is_denied");
    if !Path::new("/usr/bin/bash").exists() {
        eprintln!("SKIPPED network_is_denied: /usr/bin/bash (for /dev/tcp, /dev/udp) is missing");
        return;
    }
    let env = native_env("[native.bash]\npath = \"/usr/bin/bash\"\n");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let (tp, up) = (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    );
    let mut s = env.serve();
    let r = s.run(
        "bash",
        &[
            "-c",
            &format!(
                "echo tcp > /dev/tcp/127.0.0.1/{tp} && echo TCP-OK; echo udp > /dev/udp/127.0.0.1/{up} && echo UDP-OK; echo end"
            ),
        ],
    );
    let out = structured(&r);
    assert_eq!(out["stdout"], "end\n", "{r}");
    assert!(tcp.accept().is_err(), "a TCP connection arrived");
    assert!(udp.recv(&mut [0u8; 64]).is_err(), "a UDP datagram arrived");
}

/// The default policy's git (hardened environment), in a repository made through it.
fn git_env() -> Option<(Env, Server, PathBuf)> {
    if !Path::new("/usr/bin/git").exists() {
        eprintln!("SKIPPED: /usr/bin/git is missing, so the default policy has no git");
        return None;
    }
    let env = Env::new().with_config("");
    make_usable_by_sandbox(&env);
    let outside = env.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut s = env.serve();
    let git = |s: &mut Server, args: &[&str]| {
        let r = s.run("git", args);
        assert_eq!(structured(&r)["exitCode"], 0, "git {args:?}: {r}");
    };
    git(&mut s, &["init", "-q"]);
    std::fs::write(env.ws.join("f"), "one\n").unwrap();
    chown_tree(&env.ws);
    git(&mut s, &["add", "f"]);
    git(
        &mut s,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
    );
    std::fs::write(env.ws.join("f"), "two\n").unwrap();
    Some((env, s, outside))
}

#[test]
pub(crate) fn git_escapes_in_arguments_cannot_write_outside() {
    require_confinement!("git_escapes_in_arguments_cannot_write_outside");
    let Some((env, mut s, outside)) = git_env() else {
        return;
    };
    let o = outside.display().to_string();
    // Each payload tries to write outside, then leaves a marker inside the workspace: the marker
    // proves the code ran (confined), the empty outside directory proves the kernel stopped it.
    let payload = |name: &str| format!("touch {o}/{name}; touch ran-{name}");
    let attempts: Vec<(Vec<String>, Option<&str>)> = vec![
        (
            vec![
                "-c".into(),
                format!("core.fsmonitor={}", payload("fsmonitor")),
                "status".into(),
            ],
            Some("fsmonitor"),
        ),
        (
            vec![
                "-c".into(),
                format!("alias.x=!{}", payload("alias")),
                "x".into(),
            ],
            Some("alias"),
        ),
        (
            vec![
                "ls-remote".into(),
                format!("--upload-pack={}", payload("upload-pack")),
                ".".into(),
            ],
            Some("upload-pack"),
        ),
        (
            vec![
                "-c".into(),
                format!("diff.external={}", payload("diff-external")),
                "diff".into(),
            ],
            Some("diff-external"),
        ),
        (vec!["log".into(), format!("--output={o}/log-output")], None),
        (
            vec![
                "archive".into(),
                "-o".into(),
                format!("{o}/archive.tar"),
                "HEAD".into(),
            ],
            None,
        ),
    ];
    for (args, marker) in &attempts {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = s.run("git", &args);
        assert!(!is_error(&r), "git {args:?}: {r}");
        if let Some(m) = marker {
            assert!(
                env.ws.join(format!("ran-{m}")).exists(),
                "git {args:?} did not run its payload: {r}"
            );
        }
    }
    let written: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(written.is_empty(), "written outside: {written:?}");
    drop(env);
}

#[test]
pub(crate) fn planted_git_config_and_hooks_do_not_run() {
    require_confinement!("planted_git_config_and_hooks_do_not_run");
    let Some((env, mut s, _)) = git_env() else {
        return;
    };
    let ws = env.ws.display().to_string();
    let config = env.ws.join(".git/config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[core]\n\tfsmonitor = \"touch {ws}/planted-fsmonitor\"\n\thooksPath = .git/hooks\n"
    ));
    std::fs::write(&config, text).unwrap();
    let hook = env.ws.join(".git/hooks/pre-commit");
    std::fs::write(&hook, format!("#!/bin/sh\ntouch {ws}/planted-hook\n")).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown_tree(&env.ws);
    let r = s.run("git", &["status", "--short"]);
    assert_eq!(structured(&r)["exitCode"], 0, "{r}");
    let r = s.run(
        "git",
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qam",
            "change",
        ],
    );
    assert_eq!(structured(&r)["exitCode"], 0, "{r}");
    assert!(
        !env.ws.join("planted-fsmonitor").exists(),
        "the planted fsmonitor ran"
    );
    assert!(
        !env.ws.join("planted-hook").exists(),
        "the planted hook ran"
    );
}

#[test]
fn unknown_native_names_and_bad_argv_are_refused() {
    let env = native_env("");
    let mut s = env.serve();
    for name in ["bash", "/bin/sh", "SH", "git2"] {
        assert_eq!(
            error_code(&s.run(name, &[])),
            "COMMAND_NOT_ALLOWED",
            "{name}"
        );
    }
    assert_eq!(
        error_code(&s.run("sh", &["-c", "a\0b"])),
        "INVALID_ARGUMENT"
    );
    let huge = "x".repeat(2 * 1024 * 1024);
    assert_eq!(error_code(&s.run("sh", &["-c", &huge])), "INVALID_ARGUMENT");
}

#[test]
fn bad_native_entries_are_start_errors_naming_the_key() {
    let cases = [
        ("[native.x]\npath = \"/no/such/binary\"\n", "native.x.path"),
        ("[native.x]\npath = \"relative/sh\"\n", "native.x.path"),
        ("[native.echo]\npath = \"/bin/echo\"\n", "native.echo"),
        ("[native.x]\npath = \"/bin/sh\"\nshell = true\n", "shell"),
    ];
    for (toml, key) in cases {
        let env = Env::new().with_config(toml);
        let out = as_server_user(runbox_bin())
            .arg("exec")
            .args(env.policy_args())
            .arg("true")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{toml}: {err}");
    }
}

#[test]
fn a_read_only_workspace_is_read_only_for_native_commands_too() {
    require_confinement!("a_read_only_workspace_is_read_only_for_native_commands_too");
    let env = Env::new().with_config(
        "workspace_writable = false\ncommands = []\n[native.sh]\npath = \"/bin/sh\"\n\
         [native.rsh]\npath = \"/bin/sh\"\naccess = \"read\"\n",
    );
    env.file("f", "content\n");
    make_usable_by_sandbox(&env);
    let mut s = env.serve();
    assert_eq!(error_code(&sh(&mut s, "echo x > g")), "READ_ONLY");
    let r = s.run(
        "rsh",
        &[
            "-c",
            "cat f; echo x > g 2>/dev/null && echo WROTE; rm f 2>/dev/null && echo REMOVED; true",
        ],
    );
    assert_eq!(stdout_of(&r), "content\n");
    assert!(env.ws.join("f").exists() && !env.ws.join("g").exists());
}

#[test]
fn doctor_reports_each_protection() {
    let out = as_server_user(runbox_bin()).arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "user:",
        "landlock:",
        "seccomp:",
        "namespaces:",
        "cgroups:",
        "verdict:",
    ] {
        assert!(text.contains(word), "{word} missing:\n{text}");
    }
    // Success needs the native protections and the operator's side (which, with no flags, has
    // no workspace): never success without full confinement.
    assert!(
        !out.status.success() || text.contains("fully confined"),
        "{text}"
    );
    // With a workspace the sandbox user cannot write (as root), doctor says how to fix it.
    if server_is_root() {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(runbox_bin())
            .args(["doctor", "--workspace"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success());
        assert!(text.contains("chown -R 65534:65534"), "{text}");
        // The verdict lists what to fix, never an empty list.
        let verdict = text.split("verdict:").nth(1).unwrap_or_default();
        assert!(
            verdict.contains("  - "),
            "the verdict names nothing to fix:\n{text}"
        );
    }
}

/// Many native calls in a row each get their own process tree and a correct reply (timings are
/// the benchmark's job: `cargo bench --bench runbox-bench`, case "echo via the native runner").
#[test]
fn many_native_calls_in_a_row_all_answer() {
    require_confinement!("many_native_calls_in_a_row_all_answer");
    let env = Env::new().with_config("commands = [\"ls\"]\n[native.echo]\npath = \"/bin/echo\"\n");
    make_usable_by_sandbox(&env);
    let mut s = env.serve();
    for i in 0..200 {
        let r = s.run("echo", &[&i.to_string()]);
        assert_eq!(structured(&r)["stdout"], format!("{i}\n"), "call {i}: {r}");
        assert_eq!(structured(&r)["runner"], "native");
    }
}

#[test]
pub(crate) fn native_stages_take_part_in_pipelines() {
    require_confinement!("native_stages_take_part_in_pipelines");
    let env = native_env("");
    let mut s = env.serve();
    let r = s.call(
        "run",
        serde_json::json!({"pipeline": [
            {"command": "printf", "args": ["abc\\n"]},
            {"command": "sh", "args": ["-c", "tr a-z A-Z; exit 4"]},
            {"command": "wc", "args": ["-c"]},
        ]}),
    );
    let out = structured(&r);
    assert_eq!(stdout_of(&r), "4\n");
    let runners: Vec<&str> = out["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["runner"].as_str().unwrap())
        .collect();
    assert_eq!(runners, ["wasi", "native", "wasi"]);
    assert_eq!(out["stages"][1]["exitCode"], 4);
    assert_eq!(out["stages"][1]["stdoutBytes"], 4);
}

/// A private system temp directory (`TMPDIR`) for one server, reachable by the sandbox uid, on
/// tmpfs when `/dev/shm` is one (30,000 `rmdir`s on a disk mounted with `discard` take minutes).
/// Removed with `rm -rf` (iterative), since a tree a failing test leaves there is too deep for
/// the recursive `remove_dir_all` of `TempDir`.
struct ServerTmp(Option<tempfile::TempDir>);

impl ServerTmp {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("runbox-test-tmp-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        hand_over(dir.path());
        Self(Some(dir))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }

    /// The names in it.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for ServerTmp {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = Command::new("rm").arg("-rf").arg(dir.keep()).status();
        }
    }
}

/// `runbox serve` for `env` with `TMPDIR=tmp`, and `RLIMIT_NOFILE=nofile` when given.
fn serve_in(env: &Env, tmp: &Path, nofile: Option<u64>) -> Server {
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = as_server_user("prlimit");
            c.arg(format!("--nofile={n}:{n}"))
                .arg("--")
                .arg(runbox_bin());
            c
        }
        None => as_server_user(runbox_bin()),
    };
    cmd.arg("serve").args(env.policy_args()).env("TMPDIR", tmp);
    let mut s = Server::spawn_command(cmd);
    s.initialize();
    s
}

/// A native call leaves a 30,000-deep tree (its top made mode 000) in its `TMPDIR` and `HOME`:
/// the server keeps answering, the next call gets both empty, and nothing is left in the temp
/// directory once the server has exited. Issue 12, item 3: the recursive clean-up overflowed the
/// server's stack (an abort), or under `RLIMIT_NOFILE` 1024 failed with `EMFILE` and leaked.
fn deep_tree_round(nofile: Option<u64>) {
    let env = native_env("");
    let tmp = ServerTmp::new();
    let mut s = serve_in(&env, tmp.path(), nofile);
    // Built from the bottom in 30 chunks of 1,000: Landlock checks each access by walking up
    // to the root, so one `mkdir -p` 30,000 deep costs quadratic time (over 30 s here).
    let script = "chunk=$(printf 'd/%.0s' $(seq 1000)); \
                  build() { mkdir t && i=0 && while [ $i -lt 30 ]; do \
                  mkdir -p \"c/$chunk\" && mv t \"c/$chunk\" && mv c t || return 1; \
                  i=$((i+1)); done; chmod 000 t; }; \
                  for top in \"$TMPDIR\" \"$HOME\"; do cd \"$top\" && build || exit 1; done; \
                  echo built";
    for round in 0..2 {
        let r = sh(&mut s, script);
        assert_eq!(stdout_of(&r), "built\n", "round {round}: {r}");
        let r = sh(
            &mut s,
            "[ -d \"$TMPDIR\" ] && [ -z \"$(ls -A \"$TMPDIR\")$(ls -A \"$HOME\")\" ] && echo empty",
        );
        assert_eq!(stdout_of(&r), "empty\n", "round {round}: {r}");
    }
    let status = s.close();
    assert!(status.success(), "{status}");
    assert_eq!(tmp.names(), Vec::<String>::new(), "left in the temp dir");
}

#[test]
fn a_deep_tree_left_by_a_native_call_is_removed() {
    require_confinement!("a_deep_tree_left_by_a_native_call_is_removed");
    deep_tree_round(None);
}

#[test]
fn a_deep_tree_left_by_a_native_call_is_removed_with_1024_descriptors() {
    require_confinement!("a_deep_tree_left_by_a_native_call_is_removed_with_1024_descriptors");
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIPPED a_deep_tree_..._with_1024_descriptors: prlimit (util-linux) missing");
        return;
    }
    deep_tree_round(Some(1024));
}

/// The scratch roots (native and WASI) of a server that was killed are removed when the next
/// server starts, whatever they hold; the new server's own go when it exits. Issue 12, item 10.
#[test]
fn scratch_roots_of_a_killed_server_are_removed_at_the_next_start() {
    require_confinement!("scratch_roots_of_a_killed_server_are_removed_at_the_next_start");
    let env = native_env("");
    let tmp = ServerTmp::new();
    let mut s = serve_in(&env, tmp.path(), None);
    assert_eq!(
        stdout_of(&sh(&mut s, "echo x > \"$TMPDIR/f\"; echo ok")),
        "ok\n"
    );
    assert!(!is_error(&s.run("ls", &[])));
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let left = tmp.names();
    assert_eq!(left.len(), 2, "a native and a WASI root: {left:?}");
    // What a guest or command could have left in them, deep and unreadable.
    for root in &left {
        let call = tmp.path().join(root).join("call-0");
        std::fs::create_dir_all(&call).unwrap();
        hand_over(&tmp.path().join(root));
        // Made as the server's user: a path walk cannot hand over what lies past PATH_MAX,
        // and a server can only be asked to remove what its own user could have left.
        let deep = "d/".repeat(30_000);
        let made = as_server_user("mkdir")
            .args(["-p", &deep])
            .current_dir(&call)
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::set_permissions(call.join("d"), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let s = serve_in(&env, tmp.path(), None);
    let now = tmp.names();
    assert!(
        left.iter().all(|r| !now.contains(r)),
        "the dead server's roots are still there: {now:?}; the new server's log:\n{}",
        s.stderr()
    );
    assert!(s.close().success());
    assert_eq!(tmp.names(), Vec::<String>::new(), "left in the temp dir");
}

/// `ipcs -m` lines (shmid, bytes) of the segments of `bytes` bytes.
fn shm_segments(ipcs_output: &str, bytes: u64) -> Vec<String> {
    ipcs_output
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[4] == bytes.to_string()).then(|| f[1].to_owned())
        })
        .collect()
}

/// A SysV shared memory segment made by a native call neither outlives it on the host nor is
/// seen by the next call: each call has its own IPC namespace. Issue 12, item 4 (three calls
/// left 1.5 GiB allocated after the server exited).
#[test]
pub(crate) fn sysv_shared_memory_does_not_outlive_a_native_call() {
    require_confinement!("sysv_shared_memory_does_not_outlive_a_native_call");
    let have = |tool: &str| Command::new(tool).arg("-V").output().is_ok();
    if !have("ipcmk") || !have("ipcs") {
        eprintln!(
            "SKIPPED sysv_shared_memory_does_not_outlive_a_native_call: ipcmk/ipcs (util-linux) missing"
        );
        return;
    }
    // An odd size no one else uses, to find the segment among the host's.
    let bytes: u64 = 7_340_033;
    let host_segments = || {
        let out = Command::new("ipcs").arg("-m").output().unwrap();
        shm_segments(&String::from_utf8_lossy(&out.stdout), bytes)
    };
    assert!(
        host_segments().is_empty(),
        "a segment of {bytes} bytes exists already"
    );
    let env = native_env("");
    let mut s = env.serve();
    if reaper_mode() {
        // No IPC namespace per call: seccomp refuses SysV IPC outright.
        let r = sh(&mut s, &format!("ipcmk -M {bytes}; echo rc=$?"));
        assert!(stdout_of(&r).ends_with("rc=1\n"), "{r}");
        assert!(
            structured(&r)["stderr"]
                .as_str()
                .unwrap()
                .contains("Operation not permitted"),
            "{r}"
        );
        assert!(host_segments().is_empty());
        return;
    }
    let made = stdout_of(&sh(&mut s, &format!("ipcmk -M {bytes} && ipcs -m")));
    assert!(made.contains("Shared memory id"), "{made}");
    assert_eq!(shm_segments(&made, bytes).len(), 1, "{made}");
    let seen = stdout_of(&sh(&mut s, "ipcs -m"));
    let leaked = host_segments();
    for id in &leaked {
        let _ = Command::new("ipcrm").args(["-m", id]).status();
    }
    assert!(
        shm_segments(&seen, bytes).is_empty(),
        "the next call sees the segment:\n{seen}"
    );
    assert!(
        leaked.is_empty(),
        "the segment outlived the call on the host: {leaked:?}"
    );
}
