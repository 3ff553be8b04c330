//! Cancellation stops commands for real and sends no result; progress is reported while running.

use crate::support::*;
use serde_json::json;

#[test]
fn cancelled_call_stops_and_gets_no_result() {
    let env = Env::new().with_guests(&["sleeper"]);
    let mut s = env.serve();
    let id = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sleeper", "args": ["60000"]}}),
    );
    // Make sure the command is running before cancelling it.
    let r = s.run("echo", &["started"]);
    assert_eq!(structured(&r)["exitCode"], 0);
    s.notify(
        "notifications/cancelled",
        json!({"requestId": id, "reason": "test"}),
    );
    let record = env.wait_for_record("the end of the sleeper call", |r| {
        r["command"] == "sleeper" && r["stage"] != "received"
    });
    assert_eq!(record["stage"], "failed");
    assert_eq!(record["error"]["code"], "CANCELLED");
    assert!(record["result"]["durationMs"].as_u64().unwrap() < 60_000);
    // A later round trip proves the session is alive and that no result for `id` was sent.
    let r = s.run("echo", &["after"]);
    assert_eq!(structured(&r)["stdout"], "after\n");
    let ping = s.request("ping", json!({}));
    assert!(ping.get("result").is_some());
    assert!(
        !s.pending_ids().contains(&id),
        "a result was sent for a cancelled request"
    );
}

#[test]
fn closing_stdin_stops_running_commands_and_exits() {
    let env = Env::new().with_guests(&["sleeper"]);
    let mut s = env.serve();
    s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sleeper", "args": ["60000"]}}),
    );
    s.run("echo", &["running"]);
    // `close` gives the server 30 s to exit; the sleeper alone would take 60 s.
    let status = s.close();
    assert!(status.success(), "{status:?}");
    let record = env.wait_for_record("the end of the sleeper call", |r| {
        r["command"] == "sleeper" && r["stage"] != "received"
    });
    assert_eq!(record["error"]["code"], "CANCELLED");
    let last = env.audit_records().pop().unwrap();
    assert_eq!(
        last["stage"], "stop",
        "the stop record comes after the call's end"
    );
}

#[test]
fn progress_is_reported_while_a_command_runs() {
    let env = Env::new().with_guests(&["sleeper"]);
    let mut s = env.serve();
    let r = s.request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sleeper", "args": ["3000"]}, "_meta": {"progressToken": "tok-1"}}),
    );
    assert_eq!(r["result"]["structuredContent"]["stdout"], "woke\n");
    let progress: Vec<f64> = s
        .notifications
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .map(|n| {
            assert_eq!(n["params"]["progressToken"], "tok-1");
            n["params"]["progress"].as_f64().unwrap()
        })
        .collect();
    assert!(
        progress.len() >= 2,
        "only {} progress notifications",
        progress.len()
    );
    assert!(
        progress.windows(2).all(|w| w[1] > w[0]),
        "not increasing: {progress:?}"
    );
    let before = progress.len();
    // No progress for a call without a token, and none after completion.
    s.run("echo", &["x"]);
    let after = s
        .notifications
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .count();
    assert_eq!(before, after);
}

/// A call still waiting for the first compile of the module when the client closes stdin
/// (found by review): it used to get no end record, and the server waited 10 s for it.
#[test]
fn a_call_waiting_for_the_first_compile_still_ends_on_record_when_stdin_closes() {
    let env = Env::new();
    let fresh_cache = env.dir.path().join("empty-cache");
    std::fs::create_dir(&fresh_cache).unwrap();
    let mut args = env.policy_args();
    let at = args.iter().position(|a| a == "--cache-dir").unwrap();
    args[at + 1] = fresh_cache.display().to_string();
    let mut s = Server::spawn(&args);
    s.initialize();
    s.send_request(
        "tools/call",
        serde_json::json!({"name": "run", "arguments": {"command": "echo", "args": ["hi"]}}),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    assert!(s.close().success());
    let ends = env.call_ends();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["error"]["code"], "CANCELLED", "{:?}", ends[0]);
    // Ended while still waiting, not after the compile (which can outlast the client's patience
    // and rmcp's 10 s drain, losing the record).
    assert!(
        ends[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("while its module was being compiled"),
        "{:?}",
        ends[0]
    );
    let stop = env.audit_records().pop().unwrap();
    assert_eq!(stop["stage"], "stop");
    assert_eq!(stop["server"]["inFlight"], 0, "{stop}");
    eprintln!(
        "exited {} ms after stdin closed",
        started.elapsed().as_millis()
    );
}
