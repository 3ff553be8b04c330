//! `runbox serve --listen`: MCP over streamable HTTP, driven through the real binary — the same
//! tools, results, errors and audit as stdio, several sessions, the DNS-rebinding rule, the
//! `Host` rule, the bound on bodies, the health endpoint and the drain on SIGTERM. The shares
//! of streams and sessions are in `http_shares`.

use crate::http_client::*;
use crate::support::*;
use serde_json::json;

#[test]
fn http_serves_the_same_tools_results_errors_and_audit_as_stdio() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    assert!(server.addr.ip().is_loopback() && server.addr.port() != 0);
    let mut s = Session::open(server.addr, None);

    let tools = s.request("tools/list", json!({}));
    let mut names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["list_commands", "run", "shell"]);

    let ok = s.call("run", json!({"command": "echo", "args": ["hello"]}));
    assert!(!is_error(&ok), "{ok}");
    assert_eq!(structured(&ok)["stdout"], "hello\n");

    let denied = s.call("run", json!({"command": "sudo", "args": ["id"]}));
    assert_eq!(error_code(&denied), "COMMAND_NOT_ALLOWED");

    let script = s.call("shell", json!({"script": "echo a | wc -l"}));
    assert_eq!(structured(&script)["stdout"].as_str().unwrap().trim(), "1");

    let unknown = s.request("tools/call", json!({"name": "nope", "arguments": {}}));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    // Every record of every call names the session it came through.
    for result in [&ok, &denied] {
        let records = env.records_of(&request_id(result));
        assert!(records.len() >= 2, "{records:?}");
        for r in &records {
            assert_eq!(r["session"]["id"], s.id.as_str(), "{r}");
        }
    }
    assert_eq!(server.terminate().code(), Some(0));
    let last = env.audit_records().pop().unwrap();
    assert_eq!(last["stage"], "stop");
    assert_eq!(last["server"]["reason"], "SIGTERM");
}

#[test]
fn http_sessions_are_separate_and_run_at_the_same_time() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let addr = server.addr;
    let sessions: Vec<Session> = (0..2).map(|_| Session::open(addr, None)).collect();
    assert_ne!(sessions[0].id, sessions[1].id);
    let ids: Vec<String> = sessions.iter().map(|s| s.id.clone()).collect();
    // Both sessions call at once: each sleeps, and both answer.
    let handles: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(n, mut s)| {
            std::thread::spawn(move || {
                let r = s.call(
                    "shell",
                    json!({"script": format!("sleep 1; echo session{n}")}),
                );
                (s.id.clone(), r)
            })
        })
        .collect();
    for (n, h) in handles.into_iter().enumerate() {
        let (id, r) = h.join().unwrap();
        assert!(!is_error(&r), "{r}");
        assert_eq!(structured(&r)["stdout"], format!("session{n}\n"));
        let records = env.records_of(&request_id(&r));
        assert!(
            records
                .iter()
                .all(|rec| rec["session"]["id"] == id.as_str())
        );
    }
    // A session id that does not exist is refused; a real one works from any connection.
    let message = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"});
    let r = post(addr, Some("not-a-session"), None, &[], &message);
    assert_eq!(r.status, 404, "{}", r.text());
    let r = post(addr, Some(&ids[0]), None, &[], &message);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.messages()[0]["result"]["tools"].is_array());
}

#[test]
fn http_refuses_a_foreign_origin_and_host() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let addr = server.addr;
    let init = initialize_message();
    let evil = post(
        addr,
        None,
        None,
        &[("Origin", "http://evil.example")],
        &init,
    );
    assert_eq!(evil.status, 403, "{}", evil.text());
    assert!(evil.header("mcp-session-id").is_none());
    let local = post(
        addr,
        None,
        None,
        &[("Origin", "http://localhost:5173")],
        &init,
    );
    assert_eq!(local.status, 200, "{}", local.text());
    // rmcp reads the first Origin only: a second one must not ride along unseen.
    let doubled = post(
        addr,
        None,
        None,
        &[
            ("Origin", "http://localhost:5173"),
            ("Origin", "http://evil.example"),
        ],
        &init,
    );
    assert_eq!(doubled.status, 400, "{}", doubled.text());
    assert!(
        doubled.text().contains("more than one Origin"),
        "{}",
        doubled.text()
    );
    // Headers are bounded at 64 KiB in all, however they are split.
    let value = "v".repeat(8000);
    let names: Vec<String> = (0..9).map(|n| format!("X-Filler-{n}")).collect();
    let filler: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), value.as_str())).collect();
    let large = post(addr, None, None, &filler, &init);
    assert_eq!(large.status, 431, "{}", large.text());
    let fits: Vec<(&str, &str)> = filler[..7].to_vec();
    assert_eq!(post(addr, None, None, &fits, &init).status, 200);
    // A rebound name reaches the loopback address with a foreign Host.
    let rebound = send(
        addr,
        "GET",
        "/mcp",
        &[
            ("Host", "attacker.example"),
            ("Accept", "text/event-stream"),
        ],
        b"",
    );
    assert_eq!(rebound.status, 403, "{}", rebound.text());
}

#[test]
fn http_refuses_an_oversized_or_deep_body() {
    let env = Env::new().with_config("[limits]\nmax_stdin_bytes = 1024\nmax_arg_bytes = 1024\n");
    let server = HttpServer::start(&env, &[]);
    let addr = server.addr;
    // The stdio line bound under this policy: 2 * (1024 + 8 * 1024) + 1 MiB.
    let bound = 2 * (1024 + 8 * 1024) + 1024 * 1024;
    let mut s = Session::open(addr, None);
    let big = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "run", "arguments": {"command": "echo", "args": ["x".repeat(bound)]}}});
    let r = post(addr, Some(&s.id), None, &[], &big);
    assert_eq!(r.status, 413, "{}", r.text());
    // Announced but never sent: refused from the length alone.
    let announced = send(
        addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Content-Length", "1000000000"),
        ],
        b"",
    );
    assert_eq!(announced.status, 413, "{}", announced.text());
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let r = send(
        addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        deep.as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // The session is unharmed.
    let ok = s.call("run", json!({"command": "echo", "args": ["still"]}));
    assert_eq!(structured(&ok)["stdout"], "still\n");
}

/// Sends `head` (a request without body) on a fresh connection and returns the status.
fn raw_status(addr: std::net::SocketAddr, head: &str) -> u16 {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(RESPONSE_TIMEOUT)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    read_reply(&mut stream).status
}

#[test]
fn http_refuses_an_empty_missing_doubled_or_contradicted_host() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let addr = server.addr;
    let well_known = "/.well-known/oauth-protected-resource";
    for path in ["/mcp", "/healthz", well_known] {
        for (what, hosts) in [
            ("empty", "Host: \r\n"),
            ("missing", ""),
            ("doubled", "Host: localhost\r\nHost: evil.example\r\n"),
        ] {
            let head = format!("GET {path} HTTP/1.1\r\n{hosts}Connection: close\r\n\r\n");
            assert_eq!(raw_status(addr, &head), 400, "{what} Host on {path}");
        }
        let contradicted = format!(
            "GET http://evil.example{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            raw_status(addr, &contradicted),
            400,
            "absolute form on {path}"
        );
    }
    // The same requests with one good Host pass.
    let good = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(addr, &good), 200);
    let absolute =
        format!("GET http://{addr}/healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(addr, &absolute), 200);
    // HTTP/1.0 need not name a host: a probe of that age still gets its answer.
    assert_eq!(raw_status(addr, "GET /healthz HTTP/1.0\r\n\r\n"), 200);
    let init = post(addr, None, None, &[("Host", "")], &initialize_message());
    assert_eq!(init.status, 400, "{}", init.text());
}

#[test]
fn http_health_says_ok_and_nothing_else() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let r = send(server.addr, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok\n");
    for (name, value) in &r.headers {
        let v = value.to_ascii_lowercase();
        assert!(
            !v.contains("runbox") && !v.contains(env!("CARGO_PKG_VERSION")),
            "{name}: {value}"
        );
    }
    assert_eq!(send(server.addr, "GET", "/other", &[], b"").status, 404);
}

#[test]
fn http_sigterm_lets_a_running_call_finish_then_writes_stop() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let mut s = Session::open(server.addr, None);
    let call = std::thread::spawn(move || s.call("shell", json!({"script": "sleep 2; echo done"})));
    env.wait_for_record("received for the sleeping call", |r| {
        r["stage"] == "received" && r["tool"] == "shell"
    });
    let status = server.terminate();
    assert_eq!(status.code(), Some(0));
    let r = call.join().unwrap();
    assert!(!is_error(&r), "{r}");
    assert_eq!(structured(&r)["stdout"], "done\n");
    let records = env.audit_records();
    let last = records.last().unwrap();
    assert_eq!(last["stage"], "stop", "{last}");
    assert_eq!(last["server"]["reason"], "SIGTERM");
    assert_eq!(last["server"]["inFlight"], 0);
}

#[test]
fn http_sigterm_cancels_a_call_still_running_after_the_grace() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let mut s = Session::open(server.addr, None);
    let call = std::thread::spawn(move || s.call("shell", json!({"script": "sleep 60"})));
    env.wait_for_record("received for the long call", |r| {
        r["stage"] == "received" && r["tool"] == "shell"
    });
    let started = std::time::Instant::now();
    assert_eq!(server.terminate().code(), Some(0));
    // Bounded by the grace (10 s) and the closing steps, far short of the 60 s sleep.
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    let r = call.join().unwrap();
    assert_eq!(error_code(&r), "CANCELLED", "{r}");
    let records = env.audit_records();
    let last = records.last().unwrap();
    assert_eq!(last["stage"], "stop", "{last}");
    assert!(
        records
            .iter()
            .any(|r| r["stage"] == "failed" && r["tool"] == "shell"),
        "the cancelled call is audited"
    );
}

/// Not a pass/fail bound: prints the median round trip of `echo` over HTTP (a fresh
/// connection per request, as this client does) and over stdio. Run with `--ignored`.
#[test]
#[ignore]
fn http_echo_latency_against_stdio() {
    fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
        v.sort_unstable();
        v[v.len() / 2]
    }
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let mut s = Session::open(server.addr, None);
    let args = json!({"command": "echo", "args": ["hi"]});
    s.call("run", args.clone());
    let http: Vec<_> = (0..50)
        .map(|_| {
            let t = std::time::Instant::now();
            s.call("run", args.clone());
            t.elapsed()
        })
        .collect();
    let mut stdio = env.serve();
    stdio.call("run", args.clone());
    let pipe: Vec<_> = (0..50)
        .map(|_| {
            let t = std::time::Instant::now();
            stdio.call("run", args.clone());
            t.elapsed()
        })
        .collect();
    eprintln!(
        "echo round trip, median of 50: http {:?}, stdio {:?}",
        median(http),
        median(pipe)
    );
}

/// Review: after `DELETE /mcp` a running call of the session went on for 5 s (rmcp's own
/// wind-down); the session's calls stop at once now.
#[test]
fn http_delete_stops_the_sessions_running_call_at_once() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let addr = server.addr;
    let s = Session::open(addr, None);
    let id = s.id.clone();
    let call = std::thread::spawn(move || {
        post(
            addr,
            Some(&id),
            None,
            &[],
            &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                "name": "run", "arguments": {"command": "sleep", "args": ["60"], "timeout_ms": 120000}}}),
        )
    });
    let received = env.wait_for_record("received for the sleep", |r| {
        r["stage"] == "received" && r["command"] == "sleep"
    });
    let rid = received["requestId"].as_str().unwrap().to_owned();
    let close = send(
        addr,
        "DELETE",
        "/mcp",
        &[
            ("Mcp-Session-Id", s.id.as_str()),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        b"",
    );
    assert_eq!(close.status, 204, "{}", close.text());
    let closed_at = std::time::Instant::now();
    let end = env.wait_for_record("the end of the sleep", |r| {
        r["requestId"] == rid.as_str() && r["stage"] != "received"
    });
    let lag = closed_at.elapsed();
    assert_eq!(end["error"]["code"], "CANCELLED", "{end}");
    assert!(
        lag < std::time::Duration::from_millis(2500),
        "the call ended {lag:?} after the DELETE"
    );
    let _ = call.join();
}

/// Review: a session keeps its `initialize`, and a 30 MB one (within the body bound) held
/// 32 MB per session; an `initialize` is at most 64 KiB.
#[test]
fn http_an_initialize_over_64_kib_is_refused() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let mut init = initialize_message();
    init["params"]["clientInfo"]["name"] = json!("n".repeat(70 * 1024));
    let big = post(server.addr, None, None, &[], &init);
    assert_eq!(big.status, 413, "{}", big.text());
    assert!(big.header("mcp-session-id").is_none());
    init["params"]["clientInfo"]["name"] = json!("n".repeat(60 * 1024));
    assert_eq!(post(server.addr, None, None, &[], &init).status, 200);
}
