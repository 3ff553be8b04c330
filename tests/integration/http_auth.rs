//! `serve --listen` with bearer tokens, through the real binary: 401s with `WWW-Authenticate`
//! and their `denied` records (never the token), the token's name and the session id in every
//! record of a session, sessions bound to their token, the token file's mode checked, a
//! non-loopback listen without tokens refused, and the official Python SDK's streamable HTTP
//! client running the stdio scenarios over HTTP with a token.

use crate::http_client::*;
use crate::python_client::{python_sdk, report, script};
use crate::support::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-fedcba9876543210xyz";
const WRONG: &str = "wrong-token-not-in-the-file-000";

/// Writes the token file (outside the workspace, handed to the server's uid with the rest).
fn token_file(env: &Env, mode: u32) -> PathBuf {
    let path = env.dir.path().join("tokens");
    std::fs::write(&path, format!("# test tokens\nalice:{ALICE}\nbob:{BOB}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn start_with_tokens(env: &Env) -> HttpServer {
    let file = token_file(env, 0o600);
    HttpServer::start(env, &["--auth-token-file", file.to_str().unwrap()])
}

fn raw_audit(env: &Env) -> String {
    env.audit_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

#[test]
fn http_without_or_with_a_wrong_token_gets_401_and_a_denied_record_without_the_token() {
    let env = Env::new();
    let server = start_with_tokens(&env);
    let addr = server.addr;
    let metadata_url = format!("http://{addr}/.well-known/oauth-protected-resource");

    let none = post(addr, None, None, &[], &initialize_message());
    assert_eq!(none.status, 401, "{}", none.text());
    let challenge = none.header("www-authenticate").unwrap();
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{metadata_url}\"")
    );

    let wrong = post(addr, None, Some(WRONG), &[], &initialize_message());
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert!(wrong.header("mcp-session-id").is_none());

    // The metadata document and the health check need no token.
    let doc = send(
        addr,
        "GET",
        "/.well-known/oauth-protected-resource",
        &[],
        b"",
    );
    assert_eq!(doc.status, 200);
    let doc: Value = serde_json::from_slice(&doc.body).unwrap();
    assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
    assert_eq!(send(addr, "GET", "/healthz", &[], b"").status, 200);

    let denied = env.wait_for_record("the second 401", |r| {
        r["stage"] == "denied"
            && r["tool"] == "http"
            && r["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("matches none"))
    });
    assert_eq!(denied["policy"]["rule"], "http.auth");
    assert_eq!(denied["policy"]["decision"], "deny");
    let log = raw_audit(&env);
    assert!(
        !log.contains(WRONG) && !log.contains(ALICE),
        "a token in the log"
    );
    let http_denials = env
        .audit_records()
        .into_iter()
        .filter(|r| r["stage"] == "denied" && r["tool"] == "http")
        .count();
    assert_eq!(http_denials, 2);
}

#[test]
fn http_token_name_and_session_are_in_every_record_and_sessions_keep_their_token() {
    let env = Env::new();
    let server = start_with_tokens(&env);
    let addr = server.addr;
    let mut alice = Session::open(addr, Some(ALICE));
    let ok = alice.call("run", json!({"command": "echo", "args": ["hi"]}));
    assert_eq!(structured(&ok)["stdout"], "hi\n");
    let records = env.records_of(&request_id(&ok));
    assert!(records.len() >= 2);
    for r in &records {
        assert_eq!(r["session"]["token"], "alice", "{r}");
        assert_eq!(r["session"]["id"], alice.id.as_str(), "{r}");
    }
    assert!(!raw_audit(&env).contains(ALICE));

    // Bob's token is valid, but alice's session is not his.
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    let stolen = post(addr, Some(&alice.id), Some(BOB), &[], &message);
    assert_eq!(stolen.status, 404, "{}", stolen.text());
    // Without a token the session is no help either.
    let bare = post(addr, Some(&alice.id), None, &[], &message);
    assert_eq!(bare.status, 401);
    let mut bob = Session::open(addr, Some(BOB));
    let r = bob.call("run", json!({"command": "echo", "args": ["b"]}));
    assert_eq!(
        env.records_of(&request_id(&r))[0]["session"]["token"],
        "bob"
    );
}

#[test]
fn http_a_refused_requests_session_id_is_recorded_only_as_claimed() {
    let env = Env::new();
    let server = start_with_tokens(&env);
    let addr = server.addr;
    let alice = Session::open(addr, Some(ALICE));
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    // Without a token, naming alice's real session, and then a huge made-up one.
    let r = post(addr, Some(&alice.id), None, &[], &message);
    assert_eq!(r.status, 401);
    let huge = "s".repeat(20_000);
    let r = post(addr, Some(&huge), Some(WRONG), &[], &message);
    assert_eq!(r.status, 401);
    let denials: Vec<Value> = (0..2)
        .map(|n| {
            env.wait_for_record("a 401 naming a session", |r| {
                r["stage"] == "denied"
                    && r["tool"] == "http"
                    && r["error"]["message"].as_str().is_some_and(|m| {
                        m.contains(if n == 0 {
                            "no Authorization"
                        } else {
                            "matches none"
                        })
                    })
            })
        })
        .collect();
    for d in &denials {
        // Never as the record's session: a denial cannot be put under someone's session.
        assert!(d.get("session").is_none(), "{d}");
        let m = d["error"]["message"].as_str().unwrap();
        assert!(m.contains("(claimed, not checked)"), "{m}");
        assert!(m.len() < 400, "the claimed id is cut: {} bytes", m.len());
    }
    let first = denials[0]["error"]["message"].as_str().unwrap();
    assert!(first.contains(&format!("\"{}\"", alice.id)), "{first}");
    let second = denials[1]["error"]["message"].as_str().unwrap();
    assert!(second.contains("(20000 bytes)"), "{second}");
    for r in env.audit_records() {
        assert_ne!(r["session"]["id"], huge.as_str());
    }
}

#[test]
fn http_refuses_a_token_file_others_can_read() {
    let env = Env::new();
    let file = token_file(&env, 0o644);
    let err = HttpServer::try_start(&env, &["--auth-token-file", file.to_str().unwrap()])
        .err()
        .expect("start refused");
    assert!(
        err.contains("mode 0644") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains(ALICE), "{err}");
    // Inside the workspace it is refused whatever its mode: commands could write a token.
    let inside = env.ws.join("tokens");
    std::fs::rename(&file, &inside).unwrap();
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = HttpServer::try_start(&env, &["--auth-token-file", inside.to_str().unwrap()])
        .err()
        .expect("start refused");
    assert!(err.contains("http.auth_token_file"), "{err}");
}

#[test]
fn http_refuses_a_non_loopback_listen_without_tokens() {
    let env = Env::new();
    // Refused before anything is bound: no traffic leaves this machine.
    let err = HttpServer::try_start(&env, &["--listen", "0.0.0.0:0"])
        .err()
        .expect("start refused");
    assert!(err.contains("without bearer tokens"), "{err}");
    assert!(err.starts_with("exit Some(2)"), "{err}");
}

#[test]
fn http_python_sdk_runs_the_stdio_scenarios_over_http_with_a_token() {
    let Some(py) = python_sdk("http python sdk") else {
        return;
    };
    let env = Env::new();
    let server = start_with_tokens(&env);
    let url = format!("http://{}/mcp", server.addr);
    for mode in ["legacy", "2026-07-28"] {
        let out = Command::new(&py)
            .arg(script("sdk_client.py"))
            .args([mode, &url])
            .env("RUNBOX_TOKEN", ALICE)
            .output()
            .unwrap();
        let report = report(&out, mode);
        assert_eq!(report["tools"], json!(["list_commands", "run", "shell"]));
        assert_eq!(report["echo_is_error"], false);
        assert_eq!(report["echo"]["stdout"], "hello\n");
        assert_eq!(report["sudo_is_error"], true);
        assert_eq!(report["sudo_error"]["code"], "COMMAND_NOT_ALLOWED");
        assert_eq!(report["shell_is_error"], false);
        assert_eq!(report["shell"]["stdout"].as_str().unwrap().trim(), "2");
        let records = env.records_of(report["sudo_error"]["requestId"].as_str().unwrap());
        assert_eq!(records.last().unwrap()["stage"], "denied");
        assert_eq!(records.last().unwrap()["session"]["token"], "alice");
    }
    // Without the token the SDK is turned away.
    let out = Command::new(&py)
        .arg(script("sdk_client.py"))
        .args(["legacy", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Review: refusals past the audit budget were counted only in the next refusal's record, so
/// stopping the server after a burst left them uncounted. Every refusal is now recorded or
/// counted, the last ones in a record at shutdown.
#[test]
fn http_every_refusal_is_recorded_or_counted_even_at_shutdown() {
    const REFUSED: usize = 400;
    let env = Env::new();
    let server = start_with_tokens(&env);
    for _ in 0..REFUSED {
        assert_eq!(
            post(server.addr, None, Some(WRONG), &[], &initialize_message()).status,
            401
        );
    }
    assert!(server.terminate().success());
    let denials: Vec<Value> = env
        .audit_records()
        .into_iter()
        .filter(|r| r["stage"] == "denied" && r["tool"] == "http")
        .collect();
    let counted: usize = denials
        .iter()
        .filter_map(|r| {
            let m = r["error"]["message"].as_str()?;
            let (before, _) = m.split_once(" refused requests before")?;
            before.rsplit(' ').next()?.parse::<usize>().ok()
        })
        .sum();
    let one_by_one = denials
        .iter()
        .filter(|r| r["policy"]["rule"] == "http.auth")
        .count();
    assert!(
        one_by_one < REFUSED,
        "the budget did not cut in: {one_by_one}"
    );
    assert_eq!(one_by_one + counted, REFUSED, "{denials:#?}");
    let last = denials.last().unwrap();
    assert_eq!(last["policy"]["rule"], "http.unrecorded", "{last}");
}
