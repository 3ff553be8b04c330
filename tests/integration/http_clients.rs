//! Clients nobody here wrote, straight against `serve --listen`'s `/mcp` (no stdio bridge): the
//! official Python SDK cancelling a call and receiving progress over streamable HTTP with a
//! token, in both protocol eras; the conformance suite's server scenarios that apply to a tools
//! server (it has no way to send a token, so it meets a loopback server without one); the
//! Inspector CLI listing (strict) and calling tools with a token, and turned away without one.
//!
//! Gated like their stdio runs: `RUNBOX_REQUIRE_PYTHON_SDK` and `RUNBOX_REQUIRE_NODE_CLIENTS`
//! (set by `.ci/run`) turn a missing client into a failure; elsewhere the test is skipped with
//! a printed reason.

use crate::clients::node_tools;
use crate::http_client::*;
use crate::python_client::{python_sdk, report, script};
use crate::support::*;
use serde_json::Value;
use std::process::Command;

const TOKEN: &str = "agent-token-0123456789abcdef";

fn start_with_token(env: &Env) -> HttpServer {
    let file = write_token_file(env, &[("agent", TOKEN)]);
    HttpServer::start(env, &["--auth-token-file", file.to_str().unwrap()])
}

#[test]
fn http_python_sdk_cancels_and_gets_progress_with_a_token() {
    let Some(py) = python_sdk("http python sdk cancel/progress") else {
        return;
    };
    let env = Env::new();
    let server = start_with_token(&env);
    let url = format!("http://{}/mcp", server.addr);
    for mode in ["legacy", "2026-07-28"] {
        let out = Command::new(&py)
            .arg(script("sdk_cancel_progress.py"))
            .args([mode, &url])
            .env("RUNBOX_TOKEN", TOKEN)
            .output()
            .unwrap();
        let report = report(&out, mode);
        // Progress: at least two notifications for a 2 s call (one every 500 ms), increasing.
        assert_eq!(report["progress_call_is_error"], false, "{report}");
        let progress: Vec<f64> = report["progress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert!(progress.len() >= 2, "{mode}: {progress:?}");
        assert!(progress.windows(2).all(|w| w[1] > w[0]), "{progress:?}");
        // Cancel: the SDK gave up after 2 s and told the server, which stopped the command.
        assert_eq!(report["abandoned"], true, "{report}");
        assert_eq!(report["after"]["stdout"], "after\n", "{report}");
    }
    let cancelled: Vec<Value> = env
        .audit_records()
        .into_iter()
        .filter(|r| r["command"] == "sleep" && r["argv"][0] == "60" && r["stage"] != "received")
        .collect();
    assert_eq!(cancelled.len(), 2, "one per era: {cancelled:?}");
    for r in &cancelled {
        assert_eq!(r["stage"], "failed", "{r}");
        assert_eq!(r["error"]["code"], "CANCELLED", "{r}");
        assert!(r["result"]["durationMs"].as_u64().unwrap() < 20_000, "{r}");
        assert_eq!(r["session"]["token"], "agent", "{r}");
    }
}

#[test]
fn http_conformance_suite_server_scenarios_against_mcp() {
    let Some((bin, path)) = node_tools("http_conformance_suite_server_scenarios_against_mcp")
    else {
        return;
    };
    let env = Env::new();
    let server = HttpServer::start(&env, &[]);
    let url = format!("http://{}/mcp", server.addr);
    // The scenarios that apply to any tools server over HTTP. json-schema-2020-12 needs a
    // fixture tool only conformance test servers have; server-sse-polling passes with one
    // warning (a SHOULD: closing a POST stream mid-call for the client to resume, which rmcp
    // does not do without an event store).
    let mut failures = Vec::new();
    for scenario in [
        "server-initialize",
        "ping",
        "tools-list",
        "dns-rebinding-protection",
        "server-sse-multiple-streams",
        "server-sse-polling",
    ] {
        let out = Command::new(bin.join("conformance"))
            .args(["server", "--url", &url, "--scenario", scenario])
            .env("PATH", &path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !text.contains(" 0 failed") {
            failures.push(format!("{scenario}:\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn http_inspector_cli_lists_and_calls_tools_with_a_token() {
    let Some((bin, path)) = node_tools("http_inspector_cli_lists_and_calls_tools_with_a_token")
    else {
        return;
    };
    let env = Env::new();
    let server = start_with_token(&env);
    let url = format!("http://{}/mcp", server.addr);
    let authorization = format!("Authorization: Bearer {TOKEN}");
    let inspector = |token: bool, args: &[&str]| {
        let mut c = Command::new(bin.join("inspector"));
        c.args(["--cli", &url]);
        if token {
            c.args(["--header", &authorization]);
        }
        c.args(args).env("PATH", &path).output().unwrap()
    };
    let list = inspector(true, &["--method", "tools/list", "--strict"]);
    let stdout = String::from_utf8_lossy(&list.stdout);
    let stderr = String::from_utf8_lossy(&list.stderr);
    assert!(list.status.success(), "inspector failed: {stderr}");
    assert!(
        !stderr.contains("Warning") && !stderr.contains("Error"),
        "strict check complained:\n{stderr}"
    );
    assert!(
        stdout.contains("\"run\"") && stdout.contains("\"shell\""),
        "{stdout}"
    );
    let call = [
        "--method",
        "tools/call",
        "--tool-name",
        "run",
        "--tool-args-json",
    ];
    let ok = inspector(
        true,
        &[&call[..], &[r#"{"command":"echo","args":["over","http"]}"#]].concat(),
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("over http"), "{text}");
    let denied = inspector(true, &[&call[..], &[r#"{"command":"sudo"}"#]].concat());
    let all = String::from_utf8_lossy(&denied.stdout).to_string()
        + &String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success(),
        "an isError result must fail the CLI: {all}"
    );
    assert!(all.contains("COMMAND_NOT_ALLOWED"), "{all}");
    // Without the token it is turned away (it reads the 401 as "authorization required").
    let refused = inspector(false, &["--method", "tools/list"]);
    assert!(!refused.status.success());
    let tokens: Vec<Value> = env
        .audit_records()
        .into_iter()
        .filter(|r| r["stage"] == "completed")
        .map(|r| r["session"]["token"].clone())
        .collect();
    assert!(
        !tokens.is_empty() && tokens.iter().all(|t| t == "agent"),
        "{tokens:?}"
    );
}
