//! Bring your own command: a module built from source at test time, a hand-written WAT module
//! (not Rust), and bad modules/manifests refused at start with the file named.

use crate::support::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds tests/sample-command (the guide's example) for wasm32-wasip1 and returns the module.
fn build_sample() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sample-command/Cargo.toml");
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sample-command");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success());
    target_dir.join("wasm32-wasip1/release/linecount.wasm")
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
