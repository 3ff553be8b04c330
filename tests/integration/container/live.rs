//! The image, run for real: each test starts the container with the README's run line (through
//! podman with runc, or docker) and speaks MCP to it over `run -i`, once under the engine's
//! default seccomp profile and once under docker/seccomp-docker-default.json (Docker's default
//! for a process without CAP_SYS_ADMIN). It checks what operators rely on: initialize, the WASI
//! built-ins served from the precompiled module, native git confined, the audit chain in its
//! volume, a read-only root filesystem, uid 10001, no network.
//!
//! Skipped with a printed reason unless `RUNBOX_TEST_IMAGE` names a built image
//! (scripts/container-image prints it); `RUNBOX_REQUIRE_CONTAINER=1` makes that a failure. It
//! never asserts on wall-clock time: latencies are printed (docs/benchmarks.md has them). It must
//! not leave containers or volumes behind: each is removed on drop, pass or fail.

use crate::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The image's fixed unprivileged user.
const IMAGE_UID: u32 = 10001;

/// The image under test, or `None` (after printing why) when the test should skip.
fn image(test: &str) -> Option<String> {
    match std::env::var("RUNBOX_TEST_IMAGE") {
        Ok(name) if !name.is_empty() => Some(name),
        _ => {
            assert!(
                std::env::var_os("RUNBOX_REQUIRE_CONTAINER").is_none(),
                "RUNBOX_REQUIRE_CONTAINER is set but RUNBOX_TEST_IMAGE is not \
                 (build one with scripts/container-image)"
            );
            eprintln!(
                "SKIPPED {test}: RUNBOX_TEST_IMAGE is not set (scripts/container-image builds \
                 the image and prints its name)"
            );
            None
        }
    }
}

/// The engine command: podman (with runc when installed: crun fails on hybrid-cgroup hosts),
/// else docker.
fn engine() -> Command {
    let has = |name: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has("podman") {
        let mut c = Command::new("podman");
        if has("runc") {
            c.args(["--runtime", "runc"]);
        }
        c
    } else {
        Command::new("docker")
    }
}

/// Runs an engine subcommand to completion.
fn engine_output(args: &[&str]) -> std::process::Output {
    engine()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the container engine")
}

#[derive(Clone, Copy, Debug)]
enum Seccomp {
    /// The engine's own default profile (podman's allows new namespaces).
    EngineDefault,
    /// docker/seccomp-docker-default.json: no new namespaces, as under `docker run`.
    DockerLike,
}

/// A running container serving MCP, with its workspace on the host and named volumes for the
/// audit log and the module cache (as in the README's run line).
struct Container {
    _dir: tempfile::TempDir,
    ws: PathBuf,
    name: String,
    volumes: [String; 2],
    server: Option<Server>,
    /// Container start to the `initialize` response.
    init_latency: Duration,
}

impl Container {
    fn start(image: &str, seccomp: Seccomp) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("runbox-test-{}-{n}", std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).expect("mkdir ws");
        // The container runs as 10001: the bind-mounted workspace must be its.
        std::os::unix::fs::chown(&ws, Some(IMAGE_UID), Some(IMAGE_UID)).expect("chown ws");
        let volumes = [format!("{name}-audit"), format!("{name}-cache")];
        let mut cmd = engine();
        cmd.args(["run", "-i", "--rm", "--name", &name])
            // The README's run line.
            .args(["--read-only", "--cap-drop", "ALL"])
            .args(["--security-opt", "no-new-privileges"])
            .args(["--pids-limit", "256", "--memory", "2g", "--cpus", "2"])
            .args(["--network", "none"])
            .args(["--tmpfs", "/tmp:rw,noexec,nosuid,size=256m"])
            .arg("-v")
            .arg(format!("{}:/workspace", ws.display()))
            .args(["-v", &format!("{}:/var/lib/runbox/audit", volumes[0])])
            .args(["-v", &format!("{}:/var/cache/runbox", volumes[1])])
            // This host cannot raise hard rlimits, which the engines' defaults would need.
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]);
        if let Seccomp::DockerLike = seccomp {
            let profile =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/seccomp-docker-default.json");
            cmd.arg("--security-opt")
                .arg(format!("seccomp={}", profile.display()));
        }
        cmd.arg(image);
        let started = Instant::now();
        let mut server = Server::spawn_command(cmd);
        server.initialize();
        let init_latency = started.elapsed();
        eprintln!("{seccomp:?}: container start to initialize response: {init_latency:?}");
        Self {
            _dir: dir,
            ws,
            name,
            volumes,
            server: Some(server),
            init_latency,
        }
    }

    fn server(&mut self) -> &mut Server {
        self.server.as_mut().expect("server running")
    }

    /// The container's main process (runbox) as seen from the host.
    fn host_pid(&self) -> u32 {
        let out = engine_output(&["inspect", "--format", "{{.State.Pid}}", &self.name]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid for {}: {out:?}", self.name))
    }

    /// Ends the server by closing its stdin (the container exits and is removed); returns the
    /// server's stderr.
    fn stop(&mut self) -> String {
        let server = self.server.take().expect("server running");
        let log = server.stderr();
        let status = server.close();
        assert!(
            status.success(),
            "the container ended with {status}:\n{log}"
        );
        log
    }

    /// The audit volume's directory on the host.
    fn audit_dir(&self) -> PathBuf {
        let out = engine_output(&[
            "volume",
            "inspect",
            "--format",
            "{{.Mountpoint}}",
            &self.volumes[0],
        ]);
        assert!(out.status.success(), "{out:?}");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// The audit log's records, read from the volume on the host.
    fn audit_records(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.audit_dir())
            .expect("read the audit volume")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .expect("read audit file")
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
                    .collect::<Vec<Value>>()
            })
            .collect()
    }

    /// `runbox audit verify` on the host binary over the volume: the chain is intact.
    fn verify_audit(&self) {
        let out = Command::new(runbox_bin())
            .args(["audit", "verify"])
            .arg(self.audit_dir())
            .output()
            .expect("run runbox audit verify");
        assert!(
            out.status.success(),
            "audit verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = engine_output(&["rm", "-f", "--time", "0", &self.name]);
        for v in &self.volumes {
            let _ = engine_output(&["volume", "rm", "-f", v]);
        }
    }
}

/// The structured result of a successful call (exit 0).
fn ok(r: &Value) -> &Value {
    let s = structured(r);
    assert!(!is_error(r) && s["exitCode"] == 0, "expected success: {r}");
    s
}

/// The built-in commands: served from the precompiled module on the very first call, writing as
/// 10001 into the workspace, on a read-only root filesystem, the audit chain in its volume.
fn serves_the_built_ins(image: &str, seccomp: Seccomp) {
    let mut c = Container::start(image, seccomp);
    let started = Instant::now();
    let first = c.server().run("echo", &["hello"]);
    let first_latency = started.elapsed();
    eprintln!("{seccomp:?}: first echo (a fresh container, empty cache volume): {first_latency:?}");
    assert_eq!(ok(&first)["stdout"], "hello\n");
    assert_eq!(ok(&first)["runner"], "wasi");

    let listing = c.server().run("ls", &["-a"]);
    ok(&listing);
    let wrote = c.server().call(
        "run",
        json!({"command": "tee", "args": ["made-in-container.txt"], "stdin": "from the container\n"}),
    );
    ok(&wrote);
    let made = c.ws.join("made-in-container.txt");
    assert_eq!(
        std::fs::read_to_string(&made).unwrap(),
        "from the container\n"
    );
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&made).unwrap());
    assert_eq!(
        owner, IMAGE_UID,
        "files the call makes belong to the image's user"
    );

    // The server's own identity and root filesystem, from the host and from inside.
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.host_pid())).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["10001"; 4],
        "{uids}"
    );
    let write_root = engine_output(&[
        "exec",
        "--user",
        "0",
        &c.name,
        "sh",
        "-c",
        "touch /usr/local/bin/probe",
    ]);
    assert!(
        !write_root.status.success(),
        "root could write the image: {write_root:?}"
    );
    assert!(
        String::from_utf8_lossy(&write_root.stderr).contains("Read-only file system"),
        "{write_root:?}"
    );

    let log = c.stop();
    let ready: Vec<&str> = log.lines().filter(|l| l.contains("module ready")).collect();
    assert_eq!(ready.len(), 1, "one built-in module load expected:\n{log}");
    assert!(
        ready[0].contains("program=Builtin") && ready[0].contains("cache=Precompiled"),
        "the first call compiled instead of using the image's precompiled module:\n{log}"
    );

    let records = c.audit_records();
    let completed: Vec<&Value> = records
        .iter()
        .filter(|r| r["stage"] == "completed")
        .collect();
    let commands: Vec<&str> = completed
        .iter()
        .filter_map(|r| r["command"].as_str())
        .collect();
    assert_eq!(commands, ["echo", "ls", "tee"], "{records:?}");
    assert!(
        records.iter().any(|r| r["stage"] == "stop"),
        "no stop record"
    );
    c.verify_audit();
    eprintln!(
        "{seccomp:?}: summary: initialize {:?}, first echo {first_latency:?}",
        c.init_latency
    );
}

/// Native git through MCP: init, commit, log, each confined (Landlock + seccomp as uid 10001,
/// what the audit record names); a connection attempt fails; the container has no network
/// interface but loopback.
fn runs_native_git_confined_offline(image: &str, seccomp: Seccomp) {
    let mut c = Container::start(image, seccomp);
    let s = c.server();
    let git = |s: &mut Server, args: &[&str]| {
        let r = s.run("git", args);
        ok(&r)["stdout"].as_str().unwrap_or_default().to_owned()
    };
    git(s, &["init", "-q"]);
    ok(&s.call(
        "run",
        json!({"command": "tee", "args": ["notes.txt"], "stdin": "one\n"}),
    ));
    git(s, &["add", "notes.txt"]);
    git(
        s,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "made in a container",
        ],
    );
    let log = git(s, &["log", "--oneline"]);
    assert!(log.contains("made in a container"), "{log}");
    let head = std::fs::metadata(c.ws.join(".git/HEAD")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&head), IMAGE_UID);

    // TEST-NET-1 is never routed; the container has no route at all.
    let s = c.server();
    let r = s.run("git", &["ls-remote", "http://192.0.2.1/repo.git"]);
    let out = structured(&r);
    assert_ne!(out["exitCode"], 0, "a connection attempt succeeded: {r}");
    eprintln!("{seccomp:?}: git ls-remote offline: {}", out["stderr"]);
    let net = std::fs::read_to_string(format!("/proc/{}/net/dev", c.host_pid())).unwrap();
    let interfaces: Vec<&str> = net
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{net}");

    c.stop();
    let records = c.audit_records();
    let git_calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["stage"] == "completed" && r["command"] == "git")
        .collect();
    assert_eq!(git_calls.len(), 5, "{records:?}");
    for rec in git_calls {
        assert_eq!(rec["runner"], "native");
        let mechanism = rec["sandbox"]["confinement"]["mechanism"]
            .as_str()
            .unwrap_or_default();
        assert!(
            mechanism.starts_with("native: landlock fully enforced, seccomp,")
                && mechanism.contains(&format!("uid {IMAGE_UID}")),
            "{seccomp:?}: {mechanism}"
        );
        eprintln!("{seccomp:?}: git confinement: {mechanism}");
    }
    c.verify_audit();
}

#[test]
fn engine_default_seccomp_serves_the_built_ins() {
    let Some(image) = image("engine_default_seccomp_serves_the_built_ins") else {
        return;
    };
    serves_the_built_ins(&image, Seccomp::EngineDefault);
}

#[test]
fn docker_like_seccomp_serves_the_built_ins() {
    let Some(image) = image("docker_like_seccomp_serves_the_built_ins") else {
        return;
    };
    serves_the_built_ins(&image, Seccomp::DockerLike);
}

#[test]
fn engine_default_seccomp_runs_native_git_confined_offline() {
    let Some(image) = image("engine_default_seccomp_runs_native_git_confined_offline") else {
        return;
    };
    runs_native_git_confined_offline(&image, Seccomp::EngineDefault);
}

/// Fails with SANDBOX_UNAVAILABLE until native commands have a mode without namespaces.
#[test]
fn docker_like_seccomp_runs_native_git_confined_offline() {
    let Some(image) = image("docker_like_seccomp_runs_native_git_confined_offline") else {
        return;
    };
    runs_native_git_confined_offline(&image, Seccomp::DockerLike);
}
