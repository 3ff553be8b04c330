//! `serve --listen` shares its bounds between principals, through real sockets: one token
//! holding every event stream it may (and asking for more) leaves other tokens, `/healthz` and
//! a new token's `initialize` answered; one token holding every session it may leaves sessions
//! for the others; a server without tokens is one principal under the same shares.

use crate::http_client::*;
use crate::support::*;
use serde_json::json;

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-fedcba9876543210xyz";
const CAROL: &str = "carol-token-13579bdf02468ace";

/// Per principal, as `mcp::http::STREAMS` and `mcp::http::SESSIONS` say.
const STREAMS_PER_PRINCIPAL: usize = 64;
const SESSIONS_PER_PRINCIPAL: usize = 32;

fn start(env: &Env) -> HttpServer {
    let file = write_token_file(env, &[("alice", ALICE), ("bob", BOB), ("carol", CAROL)]);
    HttpServer::start(env, &["--auth-token-file", file.to_str().unwrap()])
}

#[test]
fn http_one_token_holding_its_streams_starves_no_one() {
    let env = Env::new();
    let server = start(&env);
    let addr = server.addr;
    // rmcp keeps at most 32 streams per session: spread them over four.
    let sessions: Vec<Session> = (0..4).map(|_| Session::open(addr, Some(ALICE))).collect();
    let mut held = Vec::new();
    for n in 0..STREAMS_PER_PRINCIPAL {
        let (stream, status) = open_event_stream(addr, &sessions[n % 4].id, Some(ALICE));
        assert_eq!(status, Some(200), "stream {n} of alice");
        held.push(stream);
    }
    // Past its share every further stream is refused at once, however many it asks for (the
    // old bound was 128 connections: these would have taken the rest of them).
    for n in 0..70 {
        let (mut stream, status) = open_event_stream(addr, &sessions[n % 4].id, Some(ALICE));
        assert_eq!(status, Some(429), "alice's stream {} past her share", n + 1);
        // The refusal closes its connection: the hog keeps nothing of it.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut rest).unwrap();
    }
    // Everyone else is answered meanwhile.
    assert_eq!(send(addr, "GET", "/healthz", &[], b"").status, 200);
    let mut bob = Session::open(addr, Some(BOB));
    let tools = bob.request("tools/list", json!({}));
    assert!(tools["result"]["tools"].is_array(), "{tools}");
    let r = bob.call("run", json!({"command": "echo", "args": ["bob"]}));
    assert_eq!(structured(&r)["stdout"], "bob\n");
    let (_bob_stream, status) = open_event_stream(addr, &bob.id, Some(BOB));
    assert_eq!(status, Some(200));
    // Alice's refusals are on record under her name, rate-limited like every refusal.
    let denied = env.wait_for_record("alice's refused stream", |r| {
        r["stage"] == "denied" && r["policy"]["rule"] == "http.streams"
    });
    assert_eq!(denied["session"]["token"], "alice", "{denied}");
    assert!(
        denied["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("HTTP 429")),
        "{denied}"
    );
    // A stream she closes is hers to open again.
    drop(held.pop());
    let deadline = std::time::Instant::now() + RESPONSE_TIMEOUT;
    loop {
        let (stream, status) = open_event_stream(addr, &sessions[0].id, Some(ALICE));
        if status == Some(200) {
            held.push(stream);
            break;
        }
        assert_eq!(status, Some(429));
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn http_one_token_holding_its_sessions_leaves_sessions_for_the_others() {
    let env = Env::new();
    let server = start(&env);
    let addr = server.addr;
    let _alice: Vec<Session> = (0..SESSIONS_PER_PRINCIPAL)
        .map(|_| Session::open(addr, Some(ALICE)))
        .collect();
    let refused = post(addr, None, Some(ALICE), &[], &initialize_message());
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(refused.header("retry-after").is_some());
    assert!(refused.text().contains("alice"), "{}", refused.text());
    // Bob takes his share too: the common bound (64) is reached.
    let _bob: Vec<Session> = (0..SESSIONS_PER_PRINCIPAL)
        .map(|_| Session::open(addr, Some(BOB)))
        .collect();
    // A third token still gets a session, from the reserve kept for light principals.
    let mut carol = Session::open(addr, Some(CAROL));
    let r = carol.call("run", json!({"command": "echo", "args": ["carol"]}));
    assert_eq!(structured(&r)["stdout"], "carol\n");
    assert_eq!(send(addr, "GET", "/healthz", &[], b"").status, 200);
    let denied = env.wait_for_record("alice's refused session", |r| {
        r["stage"] == "denied" && r["policy"]["rule"] == "http.sessions"
    });
    assert_eq!(denied["session"]["token"], "alice", "{denied}");
}

#[test]
fn http_without_tokens_all_clients_are_one_principal() {
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let addr = server.addr;
    let open: Vec<Session> = (0..SESSIONS_PER_PRINCIPAL)
        .map(|_| Session::open(addr, None))
        .collect();
    let refused = post(addr, None, None, &[], &initialize_message());
    assert_eq!(refused.status, 429, "{}", refused.text());
    // Closing one makes room.
    let close = send(
        addr,
        "DELETE",
        "/mcp",
        &[
            ("Mcp-Session-Id", open[0].id.as_str()),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        b"",
    );
    // Closed at once, and said so as clients expect (the Python SDK warns on anything but 200
    // and 204).
    assert_eq!(close.status, 204, "{}", close.text());
    let gone = post(
        addr,
        Some(&open[0].id),
        None,
        &[],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    assert_eq!(gone.status, 404, "{}", gone.text());
    Session::open(addr, None);
}
