//! Reloading the bearer token file on SIGHUP against what a review of it broke, through the
//! real binary: a FIFO put at the file's path (the reload waited for a writer, and `/healthz`,
//! `/mcp` and SIGTERM went unanswered), a file that now leads into the workspace by a symbolic
//! or a hard link (start-up refused it, a reload took it), and a token's value changed or
//! removed while its sessions were open (the session answered the new value under the old
//! name; the event stream and the running call of a removed value went on).

use crate::http_client::*;
use crate::support::*;
use serde_json::json;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const ALICE: &str = "alice-token-0123456789abcdef";
const ALICE_NEW: &str = "alice-token-rotated-9876543210";
const MALLORY: &str = "mallory-token-planted-00000000";

fn private_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if let Some(uid) = server_uid() {
        std::os::unix::fs::chown(path, Some(uid), None).unwrap();
    }
}

fn status_with(server: &HttpServer, token: &str) -> u16 {
    initialize_status(server.addr, token)
}

/// Starts a server whose token file is `dir/tokens`, a link to `dir/real` holding alice.
fn start(env: &Env) -> HttpServer {
    let real = env.dir.path().join("real");
    private_file(&real, &format!("alice:{ALICE}\n"));
    let link = env.dir.path().join("tokens");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    HttpServer::start(env, &["--auth-token-file", link.to_str().unwrap()])
}

fn repoint(env: &Env, to: &Path) {
    let link = env.dir.path().join("tokens");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(to, &link).unwrap();
}

#[test]
fn a_fifo_at_the_token_files_path_is_refused_and_the_server_goes_on() {
    let env = Env::new();
    let server = start(&env);
    let fifo = env.dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    if let Some(uid) = server_uid() {
        std::os::unix::fs::chown(&fifo, Some(uid), None).unwrap();
    }
    repoint(&env, &fifo);
    hang_up(server.child.id());
    let refused = wait_for_reload(&env, 1);
    assert_eq!(refused["reload"]["applied"], false, "{refused}");
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.contains("not a regular file"), "{why}");
    let health = send(server.addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200);
    assert_eq!(status_with(&server, ALICE), 200, "the old tokens stay");
    // A second SIGHUP with the FIFO still there is refused the same way, at once.
    hang_up(server.child.id());
    assert_eq!(wait_for_reload(&env, 2)["reload"]["applied"], false);
    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(env.audit_records().iter().any(|r| r["stage"] == "stop"));
}

#[test]
fn a_reload_refuses_a_token_file_that_now_leads_into_the_workspace() {
    let env = Env::new();
    let server = start(&env);
    let planted = env.ws.join("planted");
    private_file(&planted, &format!("mallory:{MALLORY}\n"));
    repoint(&env, &planted);
    hang_up(server.child.id());
    let refused = wait_for_reload(&env, 1);
    assert_eq!(refused["reload"]["applied"], false, "{refused}");
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.contains("leads into the workspace"), "{why}");
    assert_eq!(status_with(&server, MALLORY), 401);
    assert_eq!(status_with(&server, ALICE), 200, "the old tokens stay");

    // The file itself, outside, with a second name in the workspace: the same file.
    let real = env.dir.path().join("real");
    repoint(&env, &real);
    std::fs::hard_link(&real, env.ws.join("tokens-too")).unwrap();
    hang_up(server.child.id());
    let refused = wait_for_reload(&env, 2);
    assert_eq!(refused["reload"]["applied"], false, "{refused}");
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.contains("2 names (hard links)"), "{why}");
    drop(server);
}

/// The audit `requestId` of the running `sleep` call, once it is received.
fn sleep_request_id(env: &Env) -> String {
    let received = env.wait_for_record("received for the sleep", |r| {
        r["stage"] == "received" && r["command"] == "sleep"
    });
    received["requestId"].as_str().unwrap().to_owned()
}

/// Rotates alice's value (same name, new value), reloads, and returns the `reload` record.
fn rotate_alice(env: &Env, server: &HttpServer) -> serde_json::Value {
    private_file(
        &env.dir.path().join("real"),
        &format!("alice:{ALICE_NEW}\n"),
    );
    hang_up(server.child.id());
    let reload = wait_for_reload(env, 1);
    assert_eq!(reload["reload"]["applied"], true, "{reload}");
    reload
}

/// Reads from an open event stream until it ends; `true` when it ended within `limit`.
fn ends_within(stream: &mut std::net::TcpStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn sessions_are_bound_to_the_token_value_and_a_removed_values_streams_and_calls_end() {
    let env = Env::new();
    let server = start(&env);
    let addr = server.addr;
    let mut session = Session::open(addr, Some(ALICE));
    let (mut events, status) = open_event_stream(addr, &session.id, Some(ALICE));
    assert_eq!(status, Some(200));
    // A call that would run for 60 s, on a connection of its own.
    let call_session = session.id.clone();
    let call = std::thread::spawn(move || {
        let started = Instant::now();
        let reply = post(
            addr,
            Some(&call_session),
            Some(ALICE),
            &[],
            &json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {
                "name": "run", "arguments": {"command": "sleep", "args": ["60"], "timeout_ms": 120000}}}),
        );
        (started.elapsed(), reply.status)
    });
    let rid = sleep_request_id(&env);
    let reload = rotate_alice(&env, &server);
    assert!(
        ends_within(&mut events, Duration::from_secs(10)),
        "the removed value's event stream is still open"
    );
    let (took, _) = call.join().unwrap();
    assert!(
        took < Duration::from_secs(30),
        "the removed value's call ran on for {took:?}"
    );
    let end = env.wait_for_record("the end of the sleep", |r| {
        r["requestId"] == rid.as_str() && r["stage"] != "received"
    });
    assert_eq!(end["error"]["code"], "CANCELLED", "{end}");
    // At once, not when rmcp gets round to it (it took 5 s).
    let lag = seconds_between(&reload, &end);
    assert!(lag < 2.5, "the call ended {lag} s after the reload");
    assert_eq!(status_with(&server, ALICE), 401);
    // The new value under the old name does not own the old session.
    session.token = Some(ALICE_NEW.to_owned());
    let reply = post(
        addr,
        Some(&session.id),
        Some(ALICE_NEW),
        &[],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    );
    assert_eq!(reply.status, 404, "{}", reply.text());
    // It opens its own.
    let mut fresh = Session::open(addr, Some(ALICE_NEW));
    let r = fresh.call("run", json!({"command": "echo", "args": ["hi"]}));
    assert_eq!(r["structuredContent"]["stdout"], "hi\n", "{r}");
    drop(server);
}

/// A call of the stateless era (no session) with `token`, on a connection of its own.
fn sessionless_call(
    addr: std::net::SocketAddr,
    token: &str,
    id: i64,
    args: serde_json::Value,
) -> Reply {
    post(
        addr,
        None,
        Some(token),
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "run"),
        ],
        &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "run", "arguments": args,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"}
        }}}),
    )
}

/// Review of the reload: a call without a session ran to its end after its token was removed,
/// and its reply went to the removed holder.
#[test]
fn a_removed_tokens_call_without_a_session_is_cancelled() {
    let env = Env::new();
    let server = start(&env);
    let addr = server.addr;
    let echo = sessionless_call(addr, ALICE, 1, json!({"command": "echo", "args": ["x"]}));
    assert_eq!(echo.status, 200, "{}", echo.text());
    let replies = echo.messages();
    assert_eq!(
        replies[0]["result"]["structuredContent"]["stdout"], "x\n",
        "{replies:?}"
    );
    let call = std::thread::spawn(move || {
        sessionless_call(
            addr,
            ALICE,
            2,
            json!({"command": "sleep", "args": ["60"], "timeout_ms": 120000}),
        )
    });
    let rid = sleep_request_id(&env);
    let reload = rotate_alice(&env, &server);
    let end = env.wait_for_record("the end of the sleep", |r| {
        r["requestId"] == rid.as_str() && r["stage"] != "received"
    });
    assert_eq!(end["error"]["code"], "CANCELLED", "{end}");
    let lag = seconds_between(&reload, &end);
    assert!(lag < 2.5, "the call ended {lag} s after the reload");
    let reply = call.join().unwrap();
    assert!(
        !reply.text().contains("\"exitCode\":0"),
        "the removed holder got a finished call: {}",
        reply.text()
    );
    drop(server);
}
