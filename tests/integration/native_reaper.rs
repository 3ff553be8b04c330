//! The native runner without namespaces (`sandbox.isolation = "reaper"`, what runbox falls back
//! to under Docker's default seccomp profile): the key native tests run again in that mode, the
//! per-call process limit, and the Docker situation reproduced for real — a server started under
//! a seccomp filter that refuses new namespaces the way Docker's default profile does picks the
//! reaper by itself and runs git confined.

use crate::native;
use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// The key native tests, in the reaper mode.
macro_rules! in_reaper_mode {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                with_isolation("reaper", native::$name);
            }
        )*
    };
}

in_reaper_mode!(
    a_native_call_has_the_same_result_shape,
    timeout_kills_the_whole_tree_with_zero_survivors,
    cancel_kills_the_whole_tree,
    server_death_kills_the_tree,
    a_grandchild_holding_stdout_does_not_hold_the_reply,
    fork_bomb_is_bounded,
    memory_hog_is_stopped,
    cpu_burner_hits_the_cpu_limit,
    file_size_limit_makes_big_writes_fail,
    inherited_descriptors_are_closed,
    the_child_runs_as_the_sandbox_uid,
    landlock_stops_reads_and_writes_outside_the_workspace,
    network_is_denied,
    git_escapes_in_arguments_cannot_write_outside,
    planted_git_config_and_hooks_do_not_run,
    native_stages_take_part_in_pipelines,
    sysv_shared_memory_does_not_outlive_a_native_call,
);

/// Processes whose command line carries `marker`, sampled until `until`; the peak.
fn peak_of(marker: &str, until: Instant) -> usize {
    let mut peak = 0;
    while Instant::now() < until {
        peak = peak.max(native::pids_with(marker).len());
    }
    peak
}

/// The reaper mode's process limit: the call is stopped with PROCESS_LIMIT once its tree passes
/// `limit` (checked every 20 ms), under a per-uid RLIMIT_NPROC of `limit` x max_concurrent (8);
/// nothing survives. Called by `native::fork_bomb_is_bounded` in this mode.
pub(crate) fn fork_bomb_is_stopped_by_the_reaper(s: &mut Server, limit: u64) {
    let ceiling = (limit * 8) as usize;
    let marker = "1006.25";
    let id = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sh", "args": ["-c", format!("for i in $(seq 100); do sleep {marker} & done; wait")], "timeout_ms": 20000}}),
    );
    let peak = peak_of(marker, Instant::now() + Duration::from_millis(300));
    let r = s.wait_for(id)["result"].clone();
    // The per-uid RLIMIT_NPROC counts every process of the sandbox uid on the machine: other
    // tests' native commands running at the same time (and, when commands keep the server's
    // uid, every test server's threads). So the shell may hit it ("Cannot fork") before the
    // reaper's next count: the documented per-uid limit, bounded either way.
    let forks_failed = !is_error(&r)
        && structured(&r)["stderr"]
            .as_str()
            .is_some_and(|e| e.contains("Cannot fork"));
    assert!(
        (is_error(&r) && error_code(&r) == "PROCESS_LIMIT") || forks_failed,
        "{r}"
    );
    assert!(peak <= ceiling, "peak {peak} processes");
    assert!(native::pids_with(marker).is_empty(), "a sleep survived");
    // The classic bomb, sampled while it runs.
    let marker = "bomb-1006";
    let id = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sh", "args": ["-c", format!("f() {{ f | f & }}; f; sleep 3 # {marker}")], "timeout_ms": 20000}}),
    );
    let peak = peak_of(marker, Instant::now() + Duration::from_millis(500));
    let r = s.wait_for(id)["result"].clone();
    // Stopped past the limit, or (when the bomb burnt out on the per-uid RLIMIT_NPROC between
    // two counts) ended by itself.
    assert!(!is_error(&r) || error_code(&r) == "PROCESS_LIMIT", "{r}");
    assert!(peak <= ceiling, "peak {peak} processes");
    assert!(native::pids_with(marker).is_empty(), "the bomb survived");
}

/// The command cannot kill or stop its reaper (it runs as root, or out of the command's
/// Landlock domain), so a timeout still finds every orphan.
#[test]
fn the_command_cannot_kill_its_reaper() {
    with_isolation("reaper", || {
        if let Some(why) = native::confinement_missing() {
            eprintln!("SKIPPED the_command_cannot_kill_its_reaper: {why}");
            return;
        }
        let env = native::native_env("");
        let mut s = env.serve();
        let marker = "1007.25";
        let script = format!(
            "kill -9 $PPID; kill -STOP $PPID; echo rc=$?; (setsid sleep {marker} &); sleep {marker}"
        );
        let r = s.call(
            "run",
            json!({"command": "sh", "args": ["-c", script], "timeout_ms": 1500}),
        );
        assert_eq!(error_code(&r), "TIMEOUT", "{r}");
        let partial = &structured(&r)["error"]["partial"];
        assert_eq!(partial["stdout"], "rc=1\n", "{r}");
        assert!(native::pids_with(marker).is_empty(), "an orphan survived");
    });
}

/// A command whose main thread exits while another thread runs on (found by review): its
/// leader shows as a zombie and `wait` does not return it, so a reaper that skipped "dead"
/// processes and then blocked in `wait` never answered, and the thread outlived the call. It
/// must end at the deadline like any tree.
#[test]
fn a_leader_that_exits_before_its_threads_is_still_killed() {
    with_isolation("reaper", || {
        if let Some(why) = native::confinement_missing() {
            eprintln!("SKIPPED a_leader_that_exits_before_its_threads_is_still_killed: {why}");
            return;
        }
        if !std::path::Path::new("/usr/bin/python3").exists() {
            eprintln!("SKIPPED a_leader_that_exits_before_its_threads_is_still_killed: no python3");
            return;
        }
        let env = native::native_env("");
        let mut s = env.serve();
        let marker = "leader-1008";
        let code = format!(
            "import threading, ctypes, time  # {marker}\n\
             def spin():\n    while True: time.sleep(0.05)\n\
             threading.Thread(target=spin).start()\n\
             ctypes.CDLL(None).pthread_exit(None)\n"
        );
        let r = s.call(
            "run",
            json!({"command": "sh", "args": ["-c", "exec python3 -c \"$1\"", "sh", code], "timeout_ms": 1500}),
        );
        assert_eq!(error_code(&r), "TIMEOUT", "{r}");
        assert!(native::pids_with(marker).is_empty(), "the thread survived");
        // The server still answers.
        let r = s.run("echo", &["ok"]);
        assert_eq!(structured(&r)["stdout"], "ok\n", "{r}");
    });
}

/// A filter with the rules of Docker's default seccomp profile that matter here (for a
/// process without CAP_SYS_ADMIN): `unshare`, `setns` and `mount` refused; `clone` refused
/// when any namespace flag is set (mask 0x7E020000); `clone3` answered with ENOSYS.
fn docker_like_filters() -> Vec<seccompiler::BpfProgram> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    };
    use std::collections::BTreeMap;
    let arch = std::env::consts::ARCH.try_into().unwrap();
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [libc::SYS_unshare, libc::SYS_setns, libc::SYS_mount] {
        eperm.insert(nr, Vec::new());
    }
    let mask: u64 = 0x7E02_0000;
    let clone = (0..64)
        .map(|b| 1u64 << b)
        .filter(|bit| mask & bit != 0)
        .map(|bit| {
            let c =
                SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(bit), bit)
                    .unwrap();
            SeccompRule::new(vec![c]).unwrap()
        })
        .collect();
    eperm.insert(libc::SYS_clone, clone);
    let enosys: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into();
    [(eperm, libc::EPERM), (enosys, libc::ENOSYS)]
        .into_iter()
        .map(|(rules, errno)| {
            let f = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                arch,
            )
            .unwrap();
            seccompiler::BpfProgram::try_from(f).unwrap()
        })
        .collect()
}

/// `runbox` with the Docker-like filters installed in its own process before it starts.
fn under_docker_profile(args: &[String]) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let filters = docker_like_filters();
    let mut cmd = as_server_user(runbox_bin());
    cmd.args(args);
    // SAFETY: only prctl and seccomp system calls on filters built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for f in &filters {
                seccompiler::apply_filter(f).map_err(|_| std::io::Error::last_os_error())?;
            }
            Ok(())
        });
    }
    cmd
}

/// Issue 16: under a Docker-like seccomp profile `auto` picks the reaper (doctor says so), git
/// runs confined, a timeout leaves zero survivors (setsid and double fork included), and the
/// namespace mode is refused there (which shows the filter bites).
#[test]
fn a_docker_like_seccomp_profile_gets_the_reaper_and_git_works() {
    // The policy's own isolation only: no key (auto), whatever RUNBOX_TEST_ISOLATION says.
    with_isolation("", || {
        if let Some(why) = native::confinement_missing() {
            eprintln!("SKIPPED a_docker_like_seccomp_profile_gets_the_reaper_and_git_works: {why}");
            return;
        }
        if !std::path::Path::new("/usr/bin/git").exists() {
            eprintln!("SKIPPED: /usr/bin/git is missing");
            return;
        }
        let git = "[native.git]\npath = \"/usr/bin/git\"\nenv = { GIT_CONFIG_NOSYSTEM = \"1\", GIT_CONFIG_GLOBAL = \"/dev/null\" }\n";
        let policy = format!("[native.sh]\npath = \"/bin/sh\"\n{git}");
        // The native tests' policy already has `sh`.
        let env = native::native_env(git);
        let doctor = under_docker_profile(&[
            "doctor".into(),
            "--config".into(),
            env.config.as_ref().unwrap().display().to_string(),
        ])
        .output()
        .unwrap();
        let text = String::from_utf8_lossy(&doctor.stdout);
        assert!(text.contains("in force: per-call reaper"), "{text}");
        assert!(
            text.contains("native commands are fully confined"),
            "{text}"
        );
        let mut s = Server::spawn_command({
            let mut c = under_docker_profile(&["serve".into()]);
            c.args(env.policy_args());
            c
        });
        s.initialize();
        let r = s.run("git", &["--version"]);
        assert_eq!(structured(&r)["exitCode"], 0, "{r}");
        assert!(
            structured(&r)["stdout"]
                .as_str()
                .unwrap()
                .starts_with("git version")
        );
        let r = s.run("git", &["init", "-q"]);
        assert_eq!(structured(&r)["exitCode"], 0, "{r}");
        assert!(env.ws.join(".git").is_dir());
        let rec = env
            .audit_records()
            .into_iter()
            .rev()
            .find(|r| r["command"] == "git" && r["stage"] == "completed")
            .unwrap();
        let mechanism = rec["sandbox"]["confinement"]["mechanism"].as_str().unwrap();
        assert!(
            mechanism.contains("landlock full") && mechanism.contains("per-call reaper"),
            "{mechanism}"
        );
        let marker = "1008.25";
        let script = format!(
            "sleep {marker} & setsid sleep {marker} & (setsid sh -c \"sleep {marker}\" &); wait"
        );
        let r = s.call(
            "run",
            json!({"command": "sh", "args": ["-c", script], "timeout_ms": 1500}),
        );
        assert_eq!(error_code(&r), "TIMEOUT", "{r}");
        let killed = structured(&r)["error"]["partial"]["processesKilled"]
            .as_u64()
            .unwrap();
        assert!(killed >= 4, "processesKilled {killed}");
        assert!(native::pids_with(marker).is_empty(), "a sleep survived");
        drop(s);
        // The namespace mode cannot work under this profile: refused, not run unconfined.
        let strict =
            Env::new().with_config(&format!("{policy}[sandbox]\nisolation = \"namespaces\"\n"));
        let mut s = Server::spawn_command({
            let mut c = under_docker_profile(&["serve".into()]);
            c.args(strict.policy_args());
            c
        });
        s.initialize();
        let r = s.run("git", &["--version"]);
        assert_eq!(error_code(&r), "SANDBOX_UNAVAILABLE", "{r}");
    });
}
