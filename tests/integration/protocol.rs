//! Bad protocol input gets a clear answer and the server keeps serving.

use crate::support::*;
use serde_json::json;

fn still_serving(s: &mut Server) {
    let r = s.run("echo", &["alive"]);
    assert_eq!(structured(&r)["stdout"], "alive\n");
}

#[test]
fn malformed_json_gets_a_parse_error() {
    let env = Env::new();
    let mut s = env.serve();
    s.send_raw(b"{not json");
    let r = s.next_response();
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], serde_json::Value::Null);
    s.send_raw(b"[1,2,3]");
    assert_eq!(s.next_response()["error"]["code"], -32600);
    s.send_raw(b"   ");
    still_serving(&mut s);
}

#[test]
fn unknown_tool_and_method_are_protocol_errors() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.request("tools/call", json!({"name": "shell", "arguments": {}}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.request("no/such/method", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    still_serving(&mut s);
}

#[test]
fn bad_arguments_are_invalid_argument_results() {
    let env = Env::new();
    let mut s = env.serve();
    for args in [
        json!({}),
        json!({"command": 5}),
        json!({"command": "echo", "args": "hi"}),
        json!({"command": "echo", "argv": []}),
    ] {
        let r = s.call("run", args.clone());
        assert_eq!(error_code(&r), "INVALID_ARGUMENT", "{args}: {r}");
        assert!(is_uuid_v7(
            structured(&r)["error"]["requestId"].as_str().unwrap()
        ));
    }
    for name in ["", "l\u{0}s"] {
        let r = s.run(name, &[]);
        assert_eq!(error_code(&r), "INVALID_ARGUMENT", "{name:?}");
    }
    let r = s.run("echo", &["a\u{0}b"]);
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
    still_serving(&mut s);
}

#[test]
fn ten_megabyte_argument_is_refused_and_serving_continues() {
    let env = Env::new();
    let mut s = env.serve();
    let big = "x".repeat(10 * 1024 * 1024);
    let r = s.run("echo", &[&big]);
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
    let r = s.run(&"y".repeat(100_000), &[]);
    assert_eq!(error_code(&r), "INVALID_ARGUMENT");
    still_serving(&mut s);
}

#[test]
fn over_long_line_is_rejected_without_killing_the_session() {
    let env = Env::new();
    let mut s = env.serve();
    let mut line = br#"{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"run","arguments":{"command":"echo","args":[""#.to_vec();
    line.extend(std::iter::repeat_n(b'z', 17 * 1024 * 1024));
    line.extend_from_slice(br#""]}}}"#);
    s.send_raw(&line);
    let r = s.next_response();
    assert_eq!(
        r["error"]["code"],
        -32600,
        "{}",
        r.to_string().chars().take(300).collect::<String>()
    );
    still_serving(&mut s);
}

#[test]
fn closing_stdin_ends_the_server_cleanly() {
    let env = Env::new();
    let s = env.serve();
    let status = s.close();
    assert!(status.success(), "{status:?}");
}

#[test]
fn every_advertised_handshake_version_works() {
    for version in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        let env = Env::new();
        let mut s = crate::support::Server::spawn(&env.policy_args());
        let r = s.request(
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
        );
        assert_eq!(r["result"]["protocolVersion"], version, "{r}");
        s.notify("notifications/initialized", json!({}));
        still_serving(&mut s);
    }
}

#[test]
fn stateless_era_discover_and_version_errors() {
    let env = Env::new();
    let mut s = crate::support::Server::spawn(&env.policy_args());
    let meta = |v: &str| {
        json!({
            "io.modelcontextprotocol/protocolVersion": v,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"}
        })
    };
    let r = s.request("server/discover", json!({"_meta": meta("2026-07-28")}));
    let supported = r["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        supported.contains(&json!("2026-07-28")) && supported.contains(&json!("2025-11-25")),
        "{r}"
    );
    assert_eq!(
        r["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "runbox",
        "{r}"
    );
    let r = s.request("tools/call", json!({"name": "run", "arguments": {"command": "echo", "args": ["modern"]}, "_meta": meta("2026-07-28")}));
    assert_eq!(
        r["result"]["structuredContent"]["stdout"], "modern\n",
        "{r}"
    );
    let r = s.request("tools/list", json!({"_meta": meta("1999-01-01")}));
    assert_eq!(r["error"]["code"], -32022, "{r}");
    let data = r["error"]["data"].to_string();
    assert!(
        data.contains("1999-01-01") && data.contains("2025-11-25"),
        "{r}"
    );
}

#[test]
fn malformed_tool_call_params_are_invalid_params() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.request("tools/call", json!({"arguments": {}}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.request(
        "tools/call",
        json!({"name": "run", "arguments": "not an object"}),
    );
    assert!(
        r["error"]["code"] == -32602 || r["result"]["isError"] == true,
        "{r}"
    );
    still_serving(&mut s);
}
