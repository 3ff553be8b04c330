//! The performance machinery behaves correctly: the instance pool falls back cleanly when its
//! address space cannot be reserved, reused pool slots start clean, and stdin/stdout work
//! whether they are pipes (non-blocking, reactor-driven) or not. No test here asserts a timing;
//! those live in the benchmark, `cargo bench --bench runbox-bench`.

use crate::support::*;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// An address-space limit that fits one on-demand guest (a 4 GiB reservation plus guards) but
/// not the default pool of 8 such slots.
const ADDRESS_SPACE_LIMIT: u64 = 16 << 30;

#[test]
fn pool_that_cannot_be_reserved_falls_back_to_on_demand() {
    let env = Env::new();
    let mut cmd = Command::new(runbox_bin());
    cmd.arg("exec")
        .args(env.policy_args())
        .args(["echo", "--", "still", "runs"]);
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_LIMIT,
                rlim_max: ADDRESS_SPACE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still runs\n");
    assert!(
        stderr.contains("cannot reserve the instance pool"),
        "the fallback must be logged: {stderr}"
    );
}

#[test]
fn pooled_instances_start_clean_for_every_call() {
    // A pool slot is reused by the next call: its static data and memory must come back as the
    // module defines them, whatever the previous guest wrote.
    let env = Env::new().with_guests(&["residue"]);
    let mut s = env.serve();
    for _ in 0..5 {
        let r = s.run("residue", &[]);
        assert_eq!(structured(&r)["stdout"], "runs=1 dirty=0\n", "{r}");
    }
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}"#;
const ECHO: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run","arguments":{"command":"echo","args":["from","a","script"]}}}"#;

fn response(line: &str, id: i64) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .filter(|v| v["id"] == id)
}

#[test]
fn files_as_stdin_and_stdout_still_work() {
    // Only pipes are switched to non-blocking mode; files keep the thread-backed handles.
    // (The file's end closes the session, so the script stops at `initialize`.)
    let env = Env::new();
    let input = env.dir.path().join("requests.jsonl");
    let output = env.dir.path().join("responses.jsonl");
    std::fs::write(&input, format!("{INITIALIZE}\n")).unwrap();
    let status = Command::new(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::fs::File::create(&output).unwrap())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::fs::read_to_string(&output).unwrap();
    let init = out.lines().find_map(|l| response(l, 1));
    assert!(
        init.is_some_and(|v| v["result"]["serverInfo"]["name"] == "runbox"),
        "{out}"
    );
}

#[test]
fn stdout_shared_with_stderr_still_works() {
    // `2>&1`: stdout stays a blocking handle so that log lines on stderr are never lost.
    use std::io::{BufRead, Write};
    let env = Env::new();
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = Command::new(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .stdin(std::process::Stdio::piped())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{INITIALIZE}\n{INITIALIZED}\n{ECHO}").unwrap();
    let mut lines = std::io::BufReader::new(reader).lines();
    let mut seen = Vec::new();
    let mut answer = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(v) = response(&line, 2) {
            answer = Some(v);
            break;
        }
        seen.push(line);
    }
    drop(stdin);
    seen.extend(lines.map(Result::unwrap)); // read to the end so the server's last logs land
    assert!(child.wait().unwrap().success(), "{seen:?}");
    let answer = answer.expect("no answer to the call");
    assert_eq!(
        answer["result"]["structuredContent"]["stdout"], "from a script\n",
        "{answer}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("runbox serving MCP on stdio")),
        "log lines share the pipe: {seen:?}"
    );
}
