//! The MCP surface: handshake, tool list, results and denials.

use crate::support::*;
use serde_json::json;

#[test]
fn initialize_names_runbox_and_its_version() {
    let env = Env::new();
    let mut s = crate::support::Server::spawn(&env.policy_args());
    let r = s.initialize();
    assert_eq!(r["result"]["serverInfo"]["name"], "runbox");
    assert_eq!(
        r["result"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");
    assert!(r["result"]["capabilities"]["tools"].is_object());
}

#[test]
fn tools_have_schemas_and_honest_annotations() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.request("tools/list", json!({}));
    let tools = r["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["run", "shell", "list_commands"]);
    let run = &tools[0];
    assert_eq!(run["inputSchema"]["type"], "object");
    // `command` or `pipeline`: neither is required on its own (the server says which is missing).
    assert!(
        run["inputSchema"]["required"]
            .as_array()
            .is_none_or(|r| r.is_empty())
    );
    assert_eq!(
        run["inputSchema"]["properties"]["command"]["type"],
        "string"
    );
    assert_eq!(
        run["inputSchema"]["properties"]["pipeline"]["type"],
        "array"
    );
    assert_eq!(run["outputSchema"]["type"], "object");
    assert_eq!(run["annotations"]["readOnlyHint"], false);
    assert_eq!(run["annotations"]["openWorldHint"], false);
    let shell = &tools[1];
    assert_eq!(shell["inputSchema"]["required"], json!(["script"]));
    assert_eq!(shell["annotations"]["readOnlyHint"], false);
    assert_eq!(shell["outputSchema"]["type"], "object");
    let list = &tools[2];
    assert_eq!(list["annotations"]["readOnlyHint"], true);
    assert_eq!(list["annotations"]["destructiveHint"], false);
}

#[test]
fn echo_hello() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.run("echo", &["hello"]);
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], "hello\n");
    assert_eq!(out["exitCode"], 0);
    assert_eq!(out["runner"], "wasi");
    assert_eq!(out["stdoutTruncated"], false);
    assert!(is_uuid_v7(out["requestId"].as_str().unwrap()));
    assert_eq!(
        &text_json(&r),
        out,
        "text block and structured content must agree"
    );
}

#[test]
fn not_allowed_command_is_a_structured_denial() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.run("sudo", &["id"]);
    assert_eq!(error_code(&r), "COMMAND_NOT_ALLOWED");
    let e = &structured(&r)["error"];
    assert!(is_uuid_v7(e["requestId"].as_str().unwrap()));
    assert_eq!(e["retryable"], false);
    assert!(e["hint"].as_str().unwrap().contains("list_commands"));
    assert_eq!(&text_json(&r), structured(&r));
}

#[test]
fn list_commands_shows_the_allowlist() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.call("list_commands", json!({}));
    let cmds = structured(&r)["commands"]
        .as_array()
        .expect("commands")
        .clone();
    // The new commands of issue #17 come from commands.toml like every other.
    for want in [
        "echo", "cat", "ls", "wc", "head", "tar", "xxd", "strings", "column",
    ] {
        let c = cmds
            .iter()
            .find(|c| c["name"] == want)
            .unwrap_or_else(|| panic!("{want} missing"));
        assert_eq!(c["runner"], "wasi");
        assert!(c["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(c["limits"]["timeoutMs"].as_u64().is_some());
    }
}

#[test]
fn nonzero_exit_is_a_normal_result() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.run("false", &[]);
    assert!(!is_error(&r));
    assert_eq!(structured(&r)["exitCode"], 1);
    let r = s.run("cat", &["missing-file"]);
    assert!(!is_error(&r));
    assert_eq!(structured(&r)["exitCode"], 1);
    assert!(
        structured(&r)["stderr"]
            .as_str()
            .unwrap()
            .contains("missing-file")
    );
}

#[test]
fn stdin_and_cwd_reach_the_command() {
    let env = Env::new();
    env.file("sub/dir/f.txt", "one\ntwo\nthree\n");
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({"command": "wc", "args": ["-l"], "stdin": "a\nb\n"}),
    );
    assert_eq!(structured(&r)["stdout"].as_str().unwrap().trim(), "2");
    let r = s.call(
        "run",
        json!({"command": "cat", "args": ["f.txt"], "cwd": "sub/dir"}),
    );
    assert_eq!(structured(&r)["stdout"], "one\ntwo\nthree\n");
    let r = s.call(
        "run",
        json!({"command": "head", "args": ["-n", "1", "sub/dir/f.txt"]}),
    );
    assert_eq!(structured(&r)["stdout"], "one\n");
    let r = s.call("run", json!({"command": "ls", "args": [], "cwd": "sub"}));
    assert_eq!(structured(&r)["stdout"], "dir\n");
}

#[test]
fn shell_metacharacters_are_literal_arguments() {
    let env = Env::new();
    let mut s = env.serve();
    let args = [
        "$(id)",
        "`id`",
        "a;b",
        "x|y",
        "&&",
        "*",
        "$HOME",
        "'q'",
        "new\nline",
    ];
    let r = s.run("echo", &args);
    assert_eq!(structured(&r)["stdout"], format!("{}\n", args.join(" ")));
}

#[test]
fn a_quick_call_is_answered_while_a_slow_one_runs() {
    let env = Env::new().with_guests(&["sleeper"]);
    let mut s = env.serve();
    let slow = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "sleeper", "args": ["3000"]}}),
    );
    let quick = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"command": "echo", "args": ["quick"]}}),
    );
    let first = s.next_response();
    assert_eq!(
        first["id"],
        json!(quick),
        "the quick call must not wait behind the slow one"
    );
    assert_eq!(first["result"]["structuredContent"]["stdout"], "quick\n");
    let r = s.wait_for(slow);
    assert_eq!(r["result"]["structuredContent"]["stdout"], "woke\n");
}
