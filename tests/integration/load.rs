//! Load and faults: many calls in flight, a client that stops reading, a flood of output.
//! Memory bounds here are generous multiples of what was measured (docs/security.md gives the
//! figures); they catch growth without bound, not small regressions.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};

/// Resident memory of a process now, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The request for call number `i` of the mix: mostly allowed, some denied, some timing out.
fn mixed_call(i: usize) -> (Value, &'static str) {
    match i % 100 {
        0 => (json!({"command": "spin", "timeout_ms": 20}), "TIMEOUT"),
        1..=10 => (
            json!({"command": "nope", "args": ["x"]}),
            "COMMAND_NOT_ALLOWED",
        ),
        11..=15 => (
            json!({"command": "ls", "cwd": ".."}),
            "PATH_OUTSIDE_WORKSPACE",
        ),
        _ => (json!({"command": "echo", "args": [i.to_string()]}), "ok"),
    }
}

#[test]
fn ten_thousand_mixed_calls_with_eight_in_flight() {
    const CALLS: usize = 10_000;
    const IN_FLIGHT: usize = 8;
    let env = Env::new().with_guests(&["spin"]);
    let mut s = env.serve();
    let mut expected = std::collections::HashMap::new();
    let mut next = 0;
    let mut answered = 0;
    let mut rss_at_1000 = 0;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    while answered < CALLS {
        while next < CALLS && next - answered < IN_FLIGHT {
            let (args, expect) = mixed_call(next);
            let id = s.send_request("tools/call", json!({"name": "run", "arguments": args}));
            expected.insert(id, (next, expect));
            next += 1;
        }
        let r = s.next_response();
        let id = r["id"].as_i64().expect("response id");
        let (i, expect) = expected
            .remove(&id)
            .expect("a response to a request we sent");
        let result = &r["result"];
        let got = if is_error(result) {
            error_code(result)
        } else {
            assert_eq!(structured(result)["stdout"], format!("{i}\n"), "call {i}");
            "ok".to_owned()
        };
        assert_eq!(got, expect, "call {i}: {r}");
        *outcomes.entry(got).or_default() += 1;
        answered += 1;
        if answered == 1_000 {
            rss_at_1000 = rss_kib(s.pid());
        }
    }
    assert!(expected.is_empty());
    let rss_at_end = rss_kib(s.pid());
    eprintln!(
        "outcomes {outcomes:?}; server RSS {rss_at_1000} KiB after 1,000 calls, {rss_at_end} KiB after {CALLS}"
    );
    assert!(
        rss_at_end < rss_at_1000 + 32 * 1024,
        "server memory grew from {rss_at_1000} KiB to {rss_at_end} KiB"
    );
    drop(s);
    // Every call has exactly one final audit record.
    let ends = env.call_ends();
    assert_eq!(ends.len(), CALLS, "audit call ends");
    let verify = env.audit_cli(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}

/// A client that sends calls but stops reading stdout: the server's memory must not grow with
/// the replies it cannot deliver; once the client reads again, every reply arrives.
#[test]
fn a_client_that_stops_reading_does_not_grow_the_server() {
    const CALLS: usize = 300;
    let env = Env::new();
    // 1.2 MiB of stdout per call (the default cap keeps 1 MiB of it).
    let mut child = raw_server(&env);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "slow-reader", "version": "0"}}});
    writeln!(stdin, "{init}").unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    // A writer thread: the server may stop reading stdin too, which is fine (back-pressure).
    let writer = std::thread::spawn(move || {
        for id in 1..=CALLS {
            let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "run", "arguments": {"command": "seq", "args": ["1", "200000"]}}});
            if writeln!(stdin, "{call}").is_err() {
                break;
            }
        }
        stdin
    });
    // Nobody reads stdout for a while; the server does what it can meanwhile.
    let mut peak = 0;
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        peak = peak.max(rss_kib(pid));
    }
    eprintln!("server RSS peak while the client did not read: {peak} KiB");
    // 300 replies of ~2 MiB each (stdout twice, as structured content and as text) would be
    // ~600 MiB if queued.
    assert!(
        peak < 256 * 1024,
        "server RSS reached {peak} KiB while the client did not read"
    );
    // Now read: every call is answered.
    let mut seen = std::collections::BTreeSet::new();
    let mut lines = BufReader::new(stdout).lines();
    while seen.len() < CALLS + 1 {
        let line = lines.next().expect("a reply").unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        if let Some(id) = v["id"].as_u64() {
            if id > 0 {
                assert_eq!(
                    v["result"]["structuredContent"]["stdout"]
                        .as_str()
                        .map(str::len),
                    Some(1_048_576),
                    "reply {id}"
                );
            }
            seen.insert(id);
        }
    }
    drop(writer.join().unwrap());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A gigabyte of output: the call ends normally with the output cut at the cap, and the server's
/// memory stays near the cap, not near a gigabyte.
#[test]
fn a_gigabyte_of_output_is_cut_and_costs_no_gigabyte() {
    let env = Env::new().with_guests(&["flood"]);
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({"command": "flood", "args": ["1024"], "timeout_ms": 120_000}),
    );
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdoutTruncated"], true);
    assert_eq!(out["exitCode"], 0);
    let rec = env.call_ends().pop().unwrap();
    assert_eq!(rec["result"]["stdout"]["bytes"], 1024u64 * 1024 * 1024);
    let peak = s.peak_rss_kib();
    eprintln!("server peak RSS with 1 GiB of output: {peak} KiB");
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
}

/// Issue 12, item 7: only `tools/call` waited for a window slot, so 500,000 `tools/list` with
/// stdout unread were all answered into memory (1.2 GB). Every request needs a slot now.
#[test]
fn many_requests_with_stdout_unread_do_not_grow_the_server() {
    const REQUESTS: usize = 200_000;
    let env = Env::new();
    let mut child = raw_server(&env);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "lister", "version": "0"}}});
    writeln!(stdin, "{init}").unwrap();
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert!(first.contains("\"id\":0"), "{first}");
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    // One call first, so that the baseline holds the built-in module (a server loads it after
    // `initialize`, in the background): what is measured is what the unread requests add.
    let warm = json!({"jsonrpc": "2.0", "id": 0, "method": "tools/call", "params": {"name": "run", "arguments": {"command": "echo", "args": ["warm"]}}});
    writeln!(stdin, "{warm}").unwrap();
    first.clear();
    lines.read_line(&mut first).unwrap();
    assert!(first.contains("warm"), "{first}");
    let baseline = rss_kib(pid);
    let writer = std::thread::spawn(move || {
        let mut batch = String::new();
        for id in 1..=REQUESTS {
            batch.push_str(&format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/list\"}}\n"
            ));
            if batch.len() > 64 * 1024 || id == REQUESTS {
                if stdin.write_all(batch.as_bytes()).is_err() {
                    break;
                }
                batch.clear();
            }
        }
        stdin
    });
    let mut peak = 0;
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        peak = peak.max(rss_kib(pid));
    }
    eprintln!(
        "server RSS {baseline} KiB after initialize and one call, peak {peak} KiB while {REQUESTS} tools/list went unread"
    );
    assert!(
        peak < baseline + 24 * 1024,
        "server RSS grew from {baseline} KiB to {peak} KiB while the client did not read"
    );
    // Now read: every request is answered, once.
    let mut answered = 0;
    let mut line = Vec::new();
    while answered < REQUESTS {
        line.clear();
        let n = lines.read_until(b'\n', &mut line).unwrap();
        assert!(n > 0, "the server stopped after {answered} replies");
        assert!(
            line.starts_with(b"{\"jsonrpc\":\"2.0\",\"id\":"),
            "{}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        );
        answered += 1;
    }
    drop(writer.join().unwrap());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
