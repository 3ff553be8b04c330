//! An independent client: the official Python MCP SDK drives runbox in both protocol eras.
//!
//! `.ci/run` creates the virtualenv (`tests/python/requirements.txt`) and sets
//! `RUNBOX_REQUIRE_PYTHON_SDK=1`, so in CI a missing SDK fails; elsewhere the test is skipped
//! with a printed reason.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("RUNBOX_PYTHON").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import mcp"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

fn run_client(mode: &str) -> Option<Value> {
    let Some(py) = python() else {
        assert!(
            std::env::var_os("RUNBOX_REQUIRE_PYTHON_SDK").is_none(),
            "RUNBOX_REQUIRE_PYTHON_SDK is set but no python with the `mcp` package was found"
        );
        eprintln!(
            "SKIPPED python_sdk ({mode}): no python with the `mcp` package (run .ci/run or create .venv)"
        );
        return None;
    };
    let env = Env::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/sdk_client.py");
    let out = Command::new(py)
        .arg(script)
        .arg(mode)
        .args(server_command_line(&env))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let report: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad report {line:?}: {e}"));
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
