//! An independent client: the official Python MCP SDK drives runbox in both protocol eras.
//!
//! `.ci/run` creates the virtualenv (`tests/python/requirements.txt`) and sets
//! `RUNBOX_REQUIRE_PYTHON_SDK=1`, so in CI a missing SDK fails; elsewhere the test is skipped
//! with a printed reason.

use crate::python_client::{python_sdk, report, script};
use crate::support::*;
use serde_json::Value;
use std::process::Command;

fn run_client(mode: &str) -> Option<Value> {
    let py = python_sdk(&format!("python_sdk ({mode})"))?;
    let env = Env::new();
    let out = Command::new(py)
        .arg(script("sdk_client.py"))
        .arg(mode)
        .args(server_command_line(&env))
        .output()
        .unwrap();
    let report = report(&out, mode);
    let ends = env.call_ends();
    let records: Vec<&Value> = ends.iter().filter(|r| r["tool"] == "run").collect();
    assert_eq!(
        records.len(),
        2,
        "two run calls, two ends of calls in the audit log"
    );
    assert!(
        ends.iter().any(|r| r["tool"] == "shell"),
        "the shell call is in the audit log"
    );
    assert_eq!(records[1]["requestId"], report["sudo_error"]["requestId"]);
    Some(report)
}

fn check(report: &Value) {
    assert_eq!(
        report["tools"],
        serde_json::json!(["list_commands", "run", "shell"])
    );
    assert_eq!(report["run_has_output_schema"], true);
    assert_eq!(report["echo_is_error"], false);
    assert_eq!(report["echo"]["stdout"], "hello\n");
    assert_eq!(report["echo"]["exitCode"], 0);
    assert_eq!(report["sudo_is_error"], true);
    assert_eq!(report["sudo_error"]["code"], "COMMAND_NOT_ALLOWED");
    assert!(is_uuid_v7(
        report["sudo_error"]["requestId"].as_str().unwrap()
    ));
    assert_eq!(report["shell_is_error"], false);
    assert_eq!(report["shell"]["stdout"], "2\n");
    // The loop and `wc` are two stages running at once: the order they start in is not fixed.
    let mut argvs: Vec<&Value> = report["shell"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["argv"])
        .collect();
    argvs.sort_by_key(|a| a.to_string());
    assert_eq!(
        argvs,
        [
            &serde_json::json!(["basename", "/x/a"]),
            &serde_json::json!(["basename", "/x/b"]),
            &serde_json::json!(["wc", "-l"])
        ]
    );
    assert!(report["command_count"].as_u64().unwrap() >= 5);
}

#[test]
fn python_sdk_legacy_handshake() {
    if let Some(r) = run_client("legacy") {
        check(&r);
    }
}

#[test]
fn python_sdk_2026_era() {
    if let Some(r) = run_client("2026-07-28") {
        check(&r);
    }
}
