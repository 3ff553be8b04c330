//! Bad protocol input gets a clear answer and the server keeps serving.

use crate::support::*;
use serde_json::{Value, json};

fn still_serving(s: &mut Server) {
    let r = s.run("echo", &["alive"]);
    assert_eq!(structured(&r)["stdout"], "alive\n");
}

#[test]
fn malformed_json_gets_a_parse_error() {
    let env = Env::new();
    let mut s = env.serve();
    s.send_raw(b"{not json");
    let r = s.next_response();
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], serde_json::Value::Null);
    s.send_raw(b"[1,2,3]");
    assert_eq!(s.next_response()["error"]["code"], -32600);
    s.send_raw(b"   ");
    still_serving(&mut s);
}

#[test]
fn unknown_tool_and_method_are_protocol_errors() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.request("tools/call", json!({"name": "bash", "arguments": {}}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.request("no/such/method", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    still_serving(&mut s);
}

#[test]
fn bad_arguments_are_invalid_argument_results() {
    let env = Env::new();
    let mut s = env.serve();
    for args in [
        json!({}),
        json!({"command": 5}),
        json!({"command": "echo", "args": "hi"}),
        json!({"command": "echo", "argv": []}),
    ] {
        let r = s.call("run", args.clone());
        assert_eq!(error_code(&r), "INVALID_ARGUMENT", "{args}: {r}");
        assert!(is_uuid_v7(
            structured(&r)["error"]["requestId"].as_str().unwrap()
        ));
    }
    for name in ["", "l\u{0}s"] {
        let r = s.run(name, &[]);
        assert_eq!(error_code(&r), "INVALID_ARGUMENT", "{name:?}");
    }
    let r = s.run("echo", &["a\u{0}b"]);
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
    still_serving(&mut s);
}

#[test]
fn ten_megabyte_argument_is_refused_and_serving_continues() {
    let env = Env::new();
    let mut s = env.serve();
    let big = "x".repeat(10 * 1024 * 1024);
    let r = s.run("echo", &[&big]);
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
    let r = s.run(&"y".repeat(100_000), &[]);
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
    still_serving(&mut s);
}

#[test]
fn over_long_line_is_rejected_without_killing_the_session() {
    let env = Env::new();
    let mut s = env.serve();
    let mut line = br#"{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"run","arguments":{"command":"echo","args":[""#.to_vec();
    // Past the default bound of 2 × (8 MiB stdin + 8 stages × 1 MiB arguments) + 1 MiB = 33 MiB.
    line.extend(std::iter::repeat_n(b'z', 34 * 1024 * 1024));
    line.extend_from_slice(br#""]}}}"#);
    s.send_raw(&line);
    let r = s.next_response();
    assert_eq!(
        r["error"]["code"],
        -32600,
        "{}",
        r.to_string().chars().take(300).collect::<String>()
    );
    still_serving(&mut s);
}

#[test]
fn closing_stdin_ends_the_server_cleanly() {
    let env = Env::new();
    let s = env.serve();
    let status = s.close();
    assert!(status.success(), "{status:?}");
}

#[test]
fn every_advertised_handshake_version_works() {
    for version in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        let env = Env::new();
        let mut s = crate::support::Server::spawn(&env.policy_args());
        let r = s.request(
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
        );
        assert_eq!(r["result"]["protocolVersion"], version, "{r}");
        s.notify("notifications/initialized", json!({}));
        still_serving(&mut s);
    }
}

#[test]
fn stateless_era_discover_and_version_errors() {
    let env = Env::new();
    let mut s = crate::support::Server::spawn(&env.policy_args());
    let meta = |v: &str| {
        json!({
            "io.modelcontextprotocol/protocolVersion": v,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"}
        })
    };
    let r = s.request("server/discover", json!({"_meta": meta("2026-07-28")}));
    let supported = r["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        supported.contains(&json!("2026-07-28")) && supported.contains(&json!("2025-11-25")),
        "{r}"
    );
    assert_eq!(
        r["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "runbox",
        "{r}"
    );
    let r = s.request("tools/call", json!({"name": "run", "arguments": {"command": "echo", "args": ["modern"]}, "_meta": meta("2026-07-28")}));
    assert_eq!(
        r["result"]["structuredContent"]["stdout"], "modern\n",
        "{r}"
    );
    let r = s.request("tools/list", json!({"_meta": meta("1999-01-01")}));
    assert_eq!(r["error"]["code"], -32022, "{r}");
    let data = r["error"]["data"].to_string();
    assert!(
        data.contains("1999-01-01") && data.contains("2025-11-25"),
        "{r}"
    );
}

#[test]
fn malformed_tool_call_params_are_invalid_params() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.request("tools/call", json!({"arguments": {}}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.request(
        "tools/call",
        json!({"name": "run", "arguments": "not an object"}),
    );
    assert!(
        r["error"]["code"] == -32602 || r["result"]["isError"] == true,
        "{r}"
    );
    still_serving(&mut s);
}

/// A `tools/call` line with a raw JSON id.
fn call_with_id(id: &str, command: &str, args: &[&str]) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"run","arguments":{}}}}}"#,
        json!({"command": command, "args": args})
    )
    .into_bytes()
}

/// Issue 12, item 6: ids that are not a string or an integer used to reach rmcp, which dropped
/// them without a reply while each held a reply-window slot for ever; after 16 of them no call
/// was answered again.
#[test]
fn invalid_ids_are_refused_at_once_and_hold_no_slot() {
    let env = Env::new();
    let mut s = env.serve();
    let long = format!("\"{}\"", "i".repeat(300));
    let bad = [
        "1.5",
        "true",
        "{}",
        "null",
        "[]",
        "1e3",
        "9223372036854775808",
        &long,
    ];
    for round in 0..3 {
        for id in bad {
            s.send_raw(&call_with_id(id, "echo", &["never"]));
            let r = s.next_response();
            assert_eq!(r["error"]["code"], -32600, "round {round}, id {id}: {r}");
            assert_eq!(r["id"], Value::Null, "{r}");
            assert!(
                r["error"]["message"].as_str().unwrap().contains("id"),
                "{r}"
            );
        }
    }
    // 24 refused above; the window has 16 call slots. Every call still gets its answer.
    for i in 0..20 {
        let r = s.run("echo", &[&i.to_string()]);
        assert_eq!(structured(&r)["stdout"], format!("{i}\n"));
    }
    // The refusals never reached the service: no call record names "never".
    drop(s);
    assert!(
        !env.audit_records()
            .iter()
            .any(|r| r["argv"] == json!(["never"])),
        "a refused request ran"
    );
}

/// Issue 12, item 6: two calls in flight with one id both ran, and one of the replies was lost
/// (rmcp keys its replies by id). The second is refused now; the first runs and is answered.
#[test]
fn a_second_request_with_an_id_in_flight_is_refused_and_the_first_answered() {
    let env = Env::new();
    let mut s = env.serve();
    s.send_raw(&call_with_id("7", "sleep", &["1.5"]));
    s.send_raw(&call_with_id("7", "echo", &["second"]));
    s.send_raw(br#"{"jsonrpc":"2.0","id":"7","method":"tools/call","params":{"name":"run","arguments":{"command":"echo","args":["a string id is another id"]}}}"#);
    // Refused for another reason while 7 is in flight: its error must not carry id 7 either,
    // or the client would take it for the answer to the first call.
    s.send_raw(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#);
    let replies = [
        s.next_response(),
        s.next_response(),
        s.next_response(),
        s.next_response(),
    ];
    let with_id =
        |id: Value| -> Vec<Value> { replies.iter().filter(|r| r["id"] == id).cloned().collect() };
    let (by_int, by_str, refusals) = (with_id(json!(7)), with_id(json!("7")), with_id(Value::Null));
    assert_eq!(
        (by_int.len(), by_str.len(), refusals.len()),
        (1, 1, 2),
        "{replies:?}"
    );
    let (by_int, by_str) = (&by_int[0], &by_str[0]);
    let messages: Vec<&str> = refusals
        .iter()
        .map(|r| {
            assert_eq!(r["error"]["code"], -32600, "{r}");
            r["error"]["message"].as_str().unwrap()
        })
        .collect();
    assert!(
        messages[0].contains("id 7 is already in use"),
        "{messages:?}"
    );
    assert!(messages[1].contains("\"jsonrpc\" must be"), "{messages:?}");
    assert_eq!(by_str["id"], "7");
    assert_eq!(
        by_str["result"]["structuredContent"]["stdout"],
        "a string id is another id\n"
    );
    assert_eq!(by_int["id"], 7);
    let first = &by_int["result"]["structuredContent"];
    assert_eq!(first["exitCode"], 0, "{by_int}");
    assert_eq!(
        first["stdout"], "",
        "the reply is the sleep's, not the echo's: {by_int}"
    );
    // Nothing else comes for id 7, and the id is free again once answered.
    let r = s.request("ping", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    assert!(s.pending_ids().is_empty(), "{:?}", s.pending_ids());
    s.send_raw(&call_with_id("7", "echo", &["again"]));
    let r = s.next_response();
    assert_eq!(r["result"]["structuredContent"]["stdout"], "again\n", "{r}");
}

/// JSON-RPC only asks that ids be unique among requests in flight, so a client may reuse one
/// as soon as it has read the reply. The server used to free the id after writing the reply,
/// and a quick client's next request with the same id was refused now and then (CI saw it).
#[test]
fn an_id_can_be_reused_the_moment_its_reply_is_read() {
    let env = Env::new();
    let mut s = env.serve();
    for round in 0..300 {
        let line = if round % 3 == 0 {
            call_with_id("5", "echo", &["again"])
        } else {
            br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#.to_vec()
        };
        s.send_raw(&line);
        let r = s.next_response();
        assert_eq!(r["id"], 5, "round {round}: {r}");
        assert!(r.get("error").is_none(), "round {round}: {r}");
    }
}

/// Issue 12, item 7: a 16 MiB line of `[0,0,…]` was parsed whole (tens of bytes per element)
/// and took the server to 1.6 GiB. Its structure is bounded while it is read now.
#[test]
fn a_line_of_millions_of_elements_is_refused_at_small_cost() {
    let env = Env::new();
    let mut s = env.serve();
    still_serving(&mut s);
    let before = s.peak_rss_kib();
    let zeros = "0,".repeat(15 * 1024 * 1024 / 2);
    let flat = format!("[{zeros}0]");
    let inside = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"run","arguments":{{"command":"echo","args":[{zeros}0]}}}}}}"#
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for (line, what) in [
        (flat.as_str(), "elements"),
        (inside.as_str(), "elements"),
        (deep.as_str(), "nested deeper"),
    ] {
        s.send_raw(line.as_bytes());
        let r = s.next_response();
        assert_eq!(r["error"]["code"], -32600, "{what}: {r}");
        assert!(
            r["error"]["message"].as_str().unwrap().contains(what),
            "{r}"
        );
    }
    still_serving(&mut s);
    let after = s.peak_rss_kib();
    eprintln!(
        "peak RSS {before} KiB before, {after} KiB after two {} MiB element floods",
        flat.len() >> 20
    );
    assert!(
        after < before + 16 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
}

/// The bounds keep the largest call the policy accepts working: 8 MiB of stdin that is all
/// newlines (16 MiB once JSON-escaped) and 1 MiB of arguments that are all quotes (2 MiB), per
/// stage of a pipeline of 8.
#[test]
fn the_largest_call_the_policy_accepts_still_fits_on_a_line() {
    let env = Env::new();
    let mut s = env.serve();
    let stdin = "\n".repeat(8 * 1024 * 1024);
    let r = s.call(
        "run",
        json!({"command": "wc", "args": ["-l"], "stdin": stdin}),
    );
    assert_eq!(structured(&r)["stdout"], "8388608\n", "{}", structured(&r));
    let quotes = "\"".repeat(256);
    let args: Vec<&str> = vec![quotes.as_str(); 4096];
    let r = s.call(
        "run",
        json!({"command": "true", "args": args, "stdin": stdin}),
    );
    assert_eq!(structured(&r)["exitCode"], 0, "{}", structured(&r));
    // A pipeline: every one of its 8 stages may carry 1 MiB of arguments (a 32 MiB line here).
    let stage = json!({"command": "true", "args": args});
    let r = s.call("run", json!({"pipeline": vec![stage; 8], "stdin": stdin}));
    assert_eq!(structured(&r)["exitCode"], 0, "{}", structured(&r));
}

/// A client that died while thousands of replies were backed up (found by review): the server
/// used to stay up for good, no longer reading stdin (its window full) and never noticing that
/// stdout was gone, with no `stop` record. A failed write to stdout now ends the session.
#[test]
fn a_server_whose_client_stopped_reading_and_closed_stdout_exits_with_a_stop_record() {
    use std::io::Write;
    let env = Env::new();
    let mut child = raw_server(&env);
    let mut stdin = child.stdin.take().unwrap();
    // The writer blocks once the server stops reading; it ends when the server exits.
    let writer = std::thread::spawn(move || {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "runbox-tests", "version": "0"}}});
        let mut text = format!("{init}\n");
        text.push_str("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
        for i in 1..=5000 {
            text.push_str(&format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"ping\"}}\n"
            ));
        }
        let _ = stdin.write_all(text.as_bytes());
        // Keep stdin open: only stdout is gone.
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(child.stdout.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server is still running 30 s after its stdout closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(writer);
    let last = env.audit_records().pop().unwrap();
    assert_eq!(last["stage"], "stop", "{last} (exit {status})");
}
