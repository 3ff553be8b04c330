//! Bring your own command: a module built from source at test time, a hand-written WAT module
//! (not Rust), and bad modules/manifests refused at start with the file named.

use crate::support::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Builds tests/sample-command (the guide's example) for wasm32-wasip1 and returns the module.
fn build_sample() -> PathBuf {
    build_wasm_crate("tests/sample-command", "linecount")
}

/// `hello` in the WebAssembly text format: writes its greeting with fd_write and exits 0.
const HELLO_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wat\n")
  (func (export "_start")
    ;; iovec at 0: base 16, len 15; bytes written go to 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

/// A module that wants a host function runbox does not offer.
const FOREIGN_WAT: &str = r#"
(module
  (import "env" "system" (func $system (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $system (i32.const 0)))))
"#;

/// A library: no _start.
const REACTOR_WAT: &str = r#"(module (memory (export "memory") 1) (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;

fn tools_env() -> Env {
    let env = Env::new();
    let tools = env.dir.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    Env {
        tools: Some(tools),
        ..env
    }
}

#[test]
fn a_command_built_from_source_is_served_with_its_manifest() {
    let env = tools_env();
    let tools = env.tools.clone().unwrap();
    std::fs::copy(build_sample(), tools.join("linecount.wasm")).unwrap();
    std::fs::write(
        tools.join("linecount.toml"),
        "description = \"Count lines in files\"\n",
    )
    .unwrap();
    env.file("src/a.txt", "1\n2\n3\n");
    let mut s = env.serve();
    let list = s.call("list_commands", json!({}));
    let entry = structured(&list)["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "linecount")
        .cloned()
        .unwrap();
    assert_eq!(entry["description"], "Count lines in files");
    assert_eq!(entry["access"], "read");
    let r = s.call(
        "run",
        json!({"command": "linecount", "args": ["a.txt"], "cwd": "src"}),
    );
    assert_eq!(structured(&r)["stdout"], "3 a.txt\n", "{r}");
    let r = s.call("run", json!({"command": "linecount", "stdin": "x\ny\n"}));
    assert_eq!(structured(&r)["stdout"], "2\n");
}

#[test]
fn a_hand_written_wat_module_works() {
    let env = tools_env();
    std::fs::write(
        env.tools.as_ref().unwrap().join("hello.wasm"),
        wat::parse_str(HELLO_WAT).unwrap(),
    )
    .unwrap();
    let mut s = env.serve();
    let r = s.run("hello", &[]);
    assert_eq!(structured(&r)["stdout"], "hello from wat\n", "{r}");
    assert_eq!(structured(&r)["exitCode"], 0);
}

fn write_bad_modules(tools: &Path) {
    std::fs::write(tools.join("garbage.wasm"), b"#!/bin/sh\nrm -rf /\n").unwrap();
    std::fs::write(
        tools.join("foreign.wasm"),
        wat::parse_str(FOREIGN_WAT).unwrap(),
    )
    .unwrap();
    std::fs::write(
        tools.join("reactor.wasm"),
        wat::parse_str(REACTOR_WAT).unwrap(),
    )
    .unwrap();
    std::fs::write(tools.join("ls.wasm"), wat::parse_str(HELLO_WAT).unwrap()).unwrap();
    std::fs::write(
        tools.join("badmanifest.wasm"),
        wat::parse_str(HELLO_WAT).unwrap(),
    )
    .unwrap();
    std::fs::write(tools.join("badmanifest.toml"), "descriptoin = \"typo\"\n").unwrap();
    std::fs::write(tools.join("good.wasm"), wat::parse_str(HELLO_WAT).unwrap()).unwrap();
}

#[test]
fn bad_modules_are_refused_at_start_with_the_file_named() {
    let env = tools_env();
    write_bad_modules(env.tools.as_ref().unwrap());
    let mut s = env.serve();
    let list = s.call("list_commands", json!({}));
    let names: Vec<String> = structured(&list)["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"good".to_owned()));
    for bad in ["garbage", "foreign", "reactor", "badmanifest"] {
        assert!(!names.contains(&bad.to_owned()), "{bad} was offered");
    }
    let r = s.run("ls", &[]);
    assert_ne!(
        structured(&r)["stdout"],
        "hello from wat\n",
        "a built-in was replaced"
    );
    let log = s.stderr();
    for (file, why) in [
        ("garbage.wasm", "not a WebAssembly"),
        ("foreign.wasm", "env::system"),
        ("reactor.wasm", "_start"),
        ("ls.wasm", "cannot be replaced"),
        ("badmanifest.wasm", "descriptoin"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(file) && l.contains(why)),
            "no warning naming {file} ({why}):\n{log}"
        );
    }
}

#[test]
fn strict_policy_stops_on_a_bad_module() {
    let env = tools_env().with_config("strict_tools = true\n");
    write_bad_modules(env.tools.as_ref().unwrap());
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("strict_tools") && err.contains("garbage.wasm"),
        "{err}"
    );
}

/// The `list_commands` entry of one command.
fn listed(s: &mut Server, name: &str) -> serde_json::Value {
    let list = s.call("list_commands", json!({}));
    structured(&list)["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} is not listed: {list}"))
}

#[test]
fn a_manifest_lowers_limits_and_calls_hit_them() {
    let env = Env::new()
        .with_guests(&["spin", "sleeper", "flood", "memhog", "exiter"])
        .with_manifest("spin", "[limits]\nfuel = 50000000\n")
        .with_manifest("sleeper", "[limits]\ntimeout_ms = 300\n")
        .with_manifest("flood", "[limits]\nstdout_bytes = 100\n")
        .with_manifest("memhog", "[limits]\nmemory_bytes = 16777216\n");
    let mut s = env.serve();
    let r = s.run("spin", &[]);
    assert_eq!(error_code(&r), "CPU_LIMIT", "{r}");
    let r = s.run("sleeper", &["60000"]);
    assert_eq!(error_code(&r), "TIMEOUT", "{r}");
    let r = s.run("flood", &["1"]);
    assert_eq!(structured(&r)["stdoutTruncated"], true, "{r}");
    assert_eq!(structured(&r)["stdout"].as_str().unwrap().len(), 100);
    let r = s.run("memhog", &[]);
    assert_eq!(error_code(&r), "MEMORY_LIMIT", "{r}");
    // list_commands shows each command's own limits; one without a manifest has the policy's.
    assert_eq!(listed(&mut s, "spin")["limits"]["fuel"], 50_000_000);
    assert_eq!(listed(&mut s, "sleeper")["limits"]["timeoutMs"], 300);
    assert_eq!(listed(&mut s, "flood")["limits"]["stdoutBytes"], 100);
    assert_eq!(
        listed(&mut s, "memhog")["limits"]["memoryBytes"],
        16_777_216
    );
    assert_eq!(listed(&mut s, "exiter")["limits"]["timeoutMs"], 30_000);
    assert_eq!(listed(&mut s, "spin")["limits"]["timeoutMs"], 30_000);
}

#[test]
fn a_manifest_chooses_which_policy_variables_the_guest_sees() {
    let env = Env::new()
        .with_guests(&["whereami"])
        .with_manifest("whereami", "env = [\"TZ\", \"COLUMNS\"]\n")
        .with_config("[wasi.env]\nLANG = \"C.UTF-8\"\nTZ = \"Europe/Paris\"\nCOLUMNS = \"120\"\n");
    let mut s = env.serve();
    let r = s.run("whereami", &[]);
    let out = structured(&r)["stdout"].as_str().unwrap().to_owned();
    assert!(out.contains("env TZ=Europe/Paris\n"), "{out}");
    assert!(out.contains("env COLUMNS=120\n"), "{out}");
    assert!(!out.contains("LANG"), "LANG was not chosen:\n{out}");
    // The audit record names exactly the variables the guest got.
    let id = request_id(&r);
    let done = env
        .records_of(&id)
        .into_iter()
        .find(|r| r["stage"] == "completed")
        .unwrap_or_else(|| panic!("no completed record for {id}"));
    assert_eq!(
        done["sandbox"]["confinement"]["envNames"],
        json!(["COLUMNS", "TZ", "PWD", "TMPDIR"])
    );
}

#[test]
fn every_command_lists_annotations() {
    let env = Env::new()
        .with_guests(&["exiter", "writer", "whereami"])
        .with_manifest(
            "writer",
            "filesystem = \"read-write\"\n[annotations]\ndestructive_hint = false\n",
        )
        .with_manifest("whereami", "[annotations]\nopen_world_hint = true\n");
    let mut s = env.serve();
    let hints = |c: &serde_json::Value| {
        let a = &c["annotations"];
        [
            a["readOnlyHint"].as_bool().unwrap(),
            a["destructiveHint"].as_bool().unwrap(),
            a["idempotentHint"].as_bool().unwrap(),
            a["openWorldHint"].as_bool().unwrap(),
        ]
    };
    // Built-ins and modules without a manifest: derived from access.
    assert_eq!(hints(&listed(&mut s, "cat")), [true, false, true, false]);
    assert_eq!(hints(&listed(&mut s, "rm")), [false, true, false, false]);
    assert_eq!(hints(&listed(&mut s, "exiter")), [true, false, true, false]);
    // From the manifests, over the derived defaults.
    assert_eq!(
        hints(&listed(&mut s, "writer")),
        [false, false, false, false]
    );
    assert_eq!(
        hints(&listed(&mut s, "whereami")),
        [true, false, true, true]
    );
    let list = s.call("list_commands", json!({}));
    for c in structured(&list)["commands"].as_array().unwrap() {
        assert!(c["annotations"].is_object(), "no annotations: {c}");
    }
}

#[test]
fn manifests_that_ask_too_much_are_refused_with_the_file_named() {
    let env = Env::new()
        .with_guests(&["raiser", "inventor", "liar", "typo", "exiter"])
        .with_manifest("raiser", "[limits]\ntimeout_ms = 600000\n")
        .with_manifest("inventor", "env = [\"HOME\"]\n")
        .with_manifest(
            "liar",
            "filesystem = \"read-write\"\n[annotations]\nread_only_hint = true\n",
        )
        .with_manifest("typo", "[limits]\ncpu_seconds = 1\n");
    let mut s = env.serve();
    let list = s.call("list_commands", json!({}));
    let names: Vec<&str> = structured(&list)["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"exiter"));
    for bad in ["raiser", "inventor", "liar", "typo"] {
        assert!(!names.contains(&bad), "{bad} was offered");
    }
    let log = s.stderr();
    for (file, why) in [
        ("raiser.toml", "limits.timeout_ms"),
        ("inventor.toml", "HOME"),
        ("liar.toml", "read_only_hint"),
        ("typo.toml", "cpu_seconds"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(file) && l.contains(why)),
            "no warning naming {file} ({why}):\n{log}"
        );
    }
    // Under strict_tools the same files stop the server.
    let strict = Env {
        tools: env.tools.clone(),
        ..Env::new()
    }
    .with_config("strict_tools = true\n");
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(strict.policy_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("raiser.toml"), "{err}");
}
