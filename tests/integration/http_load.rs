//! Load over `serve --listen`: 5,000 calls over 8 sessions at once, with a token, each on its
//! own connection. Every call is answered with its own result, every call has its two audit
//! records under its session and token, and the log verifies. The elapsed time is printed,
//! never asserted.

use crate::http_client::*;
use crate::support::*;
use serde_json::{Value, json};
use std::collections::HashMap;

const TOKEN: &str = "load-token-0123456789abcdef";
const CALLS: usize = 5_000;
const SESSIONS: usize = 8;

#[test]
fn http_five_thousand_calls_over_eight_sessions_are_all_answered_and_audited() {
    let env = Env::new();
    let file = write_token_file(&env, &[("load", TOKEN)]);
    let server = HttpServer::start(&env, &["--auth-token-file", file.to_str().unwrap()]);
    let addr = server.addr;
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..SESSIONS)
        .map(|w| {
            std::thread::spawn(move || {
                let mut s = Session::open(addr, Some(TOKEN));
                let mut answered = Vec::new();
                for i in (w..CALLS).step_by(SESSIONS) {
                    // One call in ten is refused by policy: denials are answered and audited too.
                    let (arguments, denied) = if i % 10 == 0 {
                        (json!({"command": "sudo", "args": [i.to_string()]}), true)
                    } else {
                        (json!({"command": "echo", "args": [i.to_string()]}), false)
                    };
                    let r = s.call("run", arguments);
                    if denied {
                        assert_eq!(error_code(&r), "COMMAND_NOT_ALLOWED", "{r}");
                    } else {
                        assert_eq!(structured(&r)["stdout"], format!("{i}\n"), "{r}");
                    }
                    answered.push((request_id(&r), denied));
                }
                (s.id.clone(), answered)
            })
        })
        .collect();
    let mut calls: HashMap<String, (String, bool)> = HashMap::new();
    for w in workers {
        let (session, answered) = w.join().unwrap();
        for (id, denied) in answered {
            assert!(calls.insert(id, (session.clone(), denied)).is_none());
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{CALLS} calls over {SESSIONS} HTTP sessions in {elapsed:.2?} ({:.0} calls/s)",
        CALLS as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        calls.len(),
        CALLS,
        "every call answered with its own requestId"
    );
    assert_eq!(server.terminate().code(), Some(0));

    let mut records: HashMap<String, Vec<Value>> = HashMap::new();
    for r in env.audit_records() {
        if let Some(id) = r["requestId"].as_str()
            && calls.contains_key(id)
        {
            records.entry(id.to_owned()).or_default().push(r);
        }
    }
    assert_eq!(records.len(), CALLS, "every call audited");
    for (id, (session, denied)) in &calls {
        let trail = &records[id];
        let stages: Vec<&str> = trail.iter().map(|r| r["stage"].as_str().unwrap()).collect();
        let end = if *denied { "denied" } else { "completed" };
        assert_eq!(stages, ["received", end], "{id}");
        for r in trail {
            assert_eq!(r["session"]["id"], session.as_str(), "{r}");
            assert_eq!(r["session"]["token"], "load", "{r}");
        }
    }
    let verify = env.audit_cli(&["verify"]);
    assert!(verify.status.success(), "{verify:?}");
}
