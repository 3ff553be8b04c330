//! The audit mirror (`--audit-mirror`, `audit.mirror`) through the real binary: under `serve
//! --listen` every audit line reaches stdout exactly as written to the file; `fd:N` hands them
//! to an inherited pipe (here on stdio); a pipe whose reader is gone costs no call and no file
//! record, and the drops are in a `mirror` record and in `runbox doctor`; `stdout` is refused
//! where stdout is the MCP channel or a command's output, and a descriptor that is not open is
//! refused at start.

use crate::http_client::*;
use crate::support::*;
use serde_json::json;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The log files' bytes, in chain order.
fn log_bytes(env: &Env) -> String {
    env.audit_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

fn assert_verifies(env: &Env) {
    let out = env.audit_cli(&["verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `runbox serve` for `env` with `fd` as its descriptor 3.
fn serve_with_fd3(env: &Env, fd: &OwnedFd, extra: &[&str]) -> Server {
    let raw = fd.as_raw_fd();
    let mut cmd = as_server_user(runbox_bin());
    cmd.arg("serve").args(env.policy_args()).args(extra);
    // SAFETY: dup2 and fcntl are async-signal-safe. The copy at 3 is not close-on-exec; when the
    // pipe already is 3, its close-on-exec flag is cleared instead.
    unsafe {
        cmd.pre_exec(move || {
            let rc = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut s = Server::spawn_command(cmd);
    s.initialize();
    s
}

#[test]
fn http_mode_mirrors_every_audit_line_to_stdout_as_written_to_the_file() {
    let env = Env::new();
    let mut server = HttpServer::start(&env, &["--audit-mirror", "stdout"]);
    let mut stdout = server.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        stdout.read_to_string(&mut all).unwrap();
        all
    });
    let mut session = Session::open(server.addr, None);
    let ok = session.call("run", json!({"command": "echo", "args": ["mirrored"]}));
    assert!(!is_error(&ok), "{ok}");
    let denied = session.call("run", json!({"command": "sudo", "args": ["-i"]}));
    assert_eq!(error_code(&denied), "COMMAND_NOT_ALLOWED");
    assert!(server.terminate().success());
    let mirrored = reader.join().unwrap();
    assert_eq!(mirrored, log_bytes(&env));
    let stages: Vec<String> = mirrored
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["stage"].to_string())
        .collect();
    for stage in ["start", "received", "completed", "denied", "stop"] {
        assert!(stages.contains(&format!("\"{stage}\"")), "{stages:?}");
    }
    let start = env.wait_for_record("start", |r| r["stage"] == "start");
    assert_eq!(start["server"]["audit"]["mirror"], "stdout", "{start}");
    assert_verifies(&env);
    // What a collector keeps of stdout verifies on its own, whatever the file is called.
    let shipped = env.dir.path().join("shipped-from-stdout.log");
    std::fs::write(&shipped, &mirrored).unwrap();
    let out = env.audit_cli(&["verify", shipped.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.starts_with("ok: "), "{text}");
}

#[test]
fn an_fd_mirror_hands_every_line_to_an_inherited_pipe() {
    let env = Env::new();
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut server = serve_with_fd3(&env, &OwnedFd::from(writer), &["--audit-mirror", "fd:3"]);
    let r = server.run("echo", &["via", "fd"]);
    assert!(!is_error(&r), "{r}");
    assert!(server.close().success());
    // The test's own copy of the write end went with `serve_with_fd3`'s argument: the pipe
    // ends when runbox exits.
    let mut mirrored = String::new();
    reader.read_to_string(&mut mirrored).unwrap();
    assert_eq!(mirrored, log_bytes(&env));
    assert!(mirrored.contains("\"command\":\"echo\""), "{mirrored}");
    assert_verifies(&env);
}

#[test]
fn a_mirror_whose_reader_is_gone_drops_and_counts_lines_and_every_call_still_runs() {
    let env = Env::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut server = serve_with_fd3(&env, &OwnedFd::from(writer), &["--audit-mirror", "fd:3"]);
    for i in 0..5 {
        let r = server.run("echo", &[&format!("call {i}")]);
        assert!(!is_error(&r), "{r}");
    }
    assert!(server.close().success());
    let records = env.audit_records();
    let completed = records.iter().filter(|r| r["stage"] == "completed").count();
    assert_eq!(completed, 5, "every call has its file record");
    let reports: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["stage"] == "mirror").collect();
    let last = reports.last().expect("a mirror record");
    assert_eq!(last["mirror"]["target"], "fd:3");
    assert!(
        last["mirror"]["reason"]
            .as_str()
            .unwrap()
            .contains("Broken pipe"),
        "{last}"
    );
    let summed: u64 = reports
        .iter()
        .map(|r| r["mirror"]["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(summed, last["mirror"]["droppedTotal"].as_u64().unwrap());
    // Everything before the stop record: start, open, and 2 per call.
    assert!(summed >= 12, "{reports:?}");
    assert_eq!(records.last().unwrap()["stage"], "stop");
    assert_verifies(&env);

    // doctor reads the drops of the newest run from the log.
    let env_config = env.with_mirror_config();
    let out = Command::new(runbox_bin())
        .arg("doctor")
        .args(env_config.policy_args())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("also written to descriptor 3"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with("[MISSING]") && line.contains(&format!("dropped {summed} lines")),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn stdout_is_refused_where_it_is_the_mcp_channel_or_a_commands_output() {
    let env = Env::new();
    let out = Command::new(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .args(["--audit-mirror", "stdout"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused for serve without --listen") && err.contains("MCP messages"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let env = Env::new().with_config("[audit]\nmirror = \"stdout\"\n");
    let out = Command::new(runbox_bin())
        .arg("exec")
        .args(env.policy_args())
        .args(["echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused for exec"), "{err}");
    assert!(out.stdout.is_empty(), "nothing ran");
    assert!(env.audit_files().is_empty(), "no log: start was refused");
}

#[test]
fn a_mirror_descriptor_that_is_not_open_refuses_start() {
    let env = Env::new();
    let out = Command::new(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .args(["--audit-mirror", "fd:9"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("descriptor 9 is not open"), "{err}");
    assert!(env.audit_files().is_empty(), "no log: start was refused");
}

trait MirrorConfig {
    fn with_mirror_config(&self) -> Env;
}

impl MirrorConfig for Env {
    /// A second environment for `doctor` naming this one's workspace and audit directory, with
    /// `audit.mirror = "fd:3"` in a policy file (doctor takes no serve flags).
    fn with_mirror_config(&self) -> Env {
        let mut other = Env::new().with_config("[audit]\nmirror = \"fd:3\"\n");
        other.ws = self.ws.clone();
        other.audit = self.audit.clone();
        other
    }
}
