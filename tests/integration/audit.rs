//! Every call, allowed or denied, leaves exactly one audit record with the reply's requestId.

use crate::support::*;
use serde_json::json;

#[test]
fn one_record_per_call_with_the_same_request_id() {
    let env = Env::new();
    let mut s = env.serve();
    let mut ids = Vec::new();
    let r = s.run("echo", &["hi"]);
    ids.push(structured(&r)["requestId"].as_str().unwrap().to_owned());
    let r = s.run("sudo", &[]);
    ids.push(
        structured(&r)["error"]["requestId"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let r = s.call("run", json!({"command": "ls", "cwd": ".."}));
    ids.push(
        structured(&r)["error"]["requestId"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let r = s.call("run", json!({"nope": 1}));
    ids.push(
        structured(&r)["error"]["requestId"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let _ = s.call("list_commands", json!({}));

    let records = env.audit_records();
    let got: Vec<String> = records
        .iter()
        .map(|r| r["requestId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, ids, "one record per run call, in order");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["command"], "echo");
    assert_eq!(records[0]["argv"], json!(["hi"]));
    assert_eq!(records[0]["exitCode"], 0);
    assert_eq!(records[0]["stdoutBytes"], 3);
    assert_eq!(records[0]["runner"], "wasi");
    assert!(records[0]["mcpRequestId"].is_string());
    assert_eq!(records[1]["decision"], "deny");
    assert_eq!(records[1]["code"], "COMMAND_NOT_ALLOWED");
    assert_eq!(records[2]["code"], "PATH_OUTSIDE_WORKSPACE");
    assert_eq!(records[3]["code"], "INVALID_ARGUMENT");
    for r in &records {
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["v"], 1);
    }
}

#[test]
fn records_never_hold_output_or_environment() {
    let env = Env::new();
    let mut s = env.serve();
    s.call(
        "run",
        json!({"command": "cat", "stdin": "SECRET-STDIN-CONTENT"}),
    );
    let text = std::fs::read_to_string(env.audit.join("audit.jsonl")).unwrap();
    assert!(!text.contains("SECRET-STDIN-CONTENT"));
    assert!(!text.contains("LANG"));
}

#[test]
fn audit_dir_inside_the_workspace_is_refused_at_start() {
    let env = Env::new();
    let mut args = env.policy_args();
    let pos = args.iter().position(|a| a == "--audit-dir").unwrap();
    args[pos + 1] = env.ws.join("logs").display().to_string();
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inside the workspace"), "{err}");
    assert!(out.stdout.is_empty(), "nothing but MCP may go to stdout");
}

#[test]
fn unwritable_audit_log_refuses_calls() {
    let env = Env::new();
    let mut s = env.serve();
    s.run("echo", &["first"]);
    std::fs::remove_file(env.audit.join("audit.jsonl")).unwrap();
    let r = s.run("echo", &["second"]);
    assert_eq!(error_code(&r), "AUDIT_UNAVAILABLE");
    assert_eq!(structured(&r)["error"]["retryable"], true);
}
