//! Test support: a fresh directory per test, the test guests, and a small MCP client that drives
//! the real `runbox` binary over stdio and waits on responses (never on sleeps).

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long any single response may take before the test fails (not a performance bound: a
/// guard against a hung server).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// The binary under test: `RUNBOX_TEST_BIN` (e.g. a read-only installed copy) or the one cargo
/// built.
pub fn runbox_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("RUNBOX_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_runbox").to_owned())
    })
}

/// When `RUNBOX_TEST_UID` is set, every server runs as that unprivileged uid (and gid), the way
/// the container runs it; the test's directories are handed to that uid.
pub fn server_uid() -> Option<u32> {
    std::env::var("RUNBOX_TEST_UID")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// A command that runs as the server's uid when one is configured.
pub fn as_server_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    if let Some(uid) = server_uid() {
        use std::os::unix::process::CommandExt;
        c.uid(uid).gid(uid).env("HOME", "/nonexistent");
    }
    c
}

/// The full command line that starts `runbox serve` as the server's user, for clients that
/// start the server themselves (as root, they must drop to the uid: `setpriv` does that).
pub fn server_command_line(env: &Env) -> Vec<String> {
    let mut line = Vec::new();
    if let Some(uid) = server_uid() {
        line.extend([
            "setpriv".to_owned(),
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
        ]);
    }
    line.push(runbox_bin().to_owned());
    line.push("serve".into());
    line.extend(env.policy_args());
    line
}

/// Starts `runbox serve` for `env` with piped stdin and stdout and no handshake, for tests that
/// drive the raw byte stream themselves (a client that stops reading, or goes away).
pub fn raw_server(env: &Env) -> std::process::Child {
    let mut cmd = as_server_user(runbox_bin());
    cmd.arg("serve")
        .args(env.policy_args())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    cmd.spawn().expect("spawn runbox serve")
}

/// Gives a directory tree to the server's uid (no-op when servers run as the test's user).
pub fn hand_over(path: &Path) {
    let Some(uid) = server_uid() else { return };
    fn walk(p: &Path, uid: u32) {
        let _ = std::os::unix::fs::lchown(p, Some(uid), Some(uid));
        if p.is_dir()
            && !p.is_symlink()
            && let Ok(entries) = std::fs::read_dir(p)
        {
            for e in entries.flatten() {
                walk(&e.path(), uid);
            }
        }
    }
    walk(path, uid);
}

thread_local! {
    static ISOLATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `test` with every policy written on this thread asking for `sandbox.isolation = mode`
/// (how the native tests run a second time in the reaper mode).
pub fn with_isolation(mode: &str, test: impl FnOnce()) {
    ISOLATION.with(|i| *i.borrow_mut() = Some(mode.to_owned()));
    test();
    ISOLATION.with(|i| *i.borrow_mut() = None);
}

/// The `sandbox.isolation` policies of this test get: [`with_isolation`]'s, else
/// `RUNBOX_TEST_ISOLATION` (e.g. `reaper`, to run the whole suite in that mode), else none.
pub fn test_isolation() -> Option<String> {
    ISOLATION
        .with(|i| i.borrow().clone())
        .or_else(|| std::env::var("RUNBOX_TEST_ISOLATION").ok())
        .filter(|m| !m.is_empty())
}

/// `toml` with `isolation = "mode"` in its `[sandbox]` table (added when it has none).
pub fn with_isolation_key(toml: &str, mode: &str) -> String {
    let key = format!("isolation = \"{mode}\"\n");
    if toml.contains("[sandbox]\n") {
        toml.replacen("[sandbox]\n", &format!("[sandbox]\n{key}"), 1)
    } else {
        format!("{toml}\n[sandbox]\n{key}")
    }
}

/// A compiled-module cache shared by every test, warmed once so tests do not each compile.
pub fn cache_dir() -> PathBuf {
    let name = match server_uid() {
        Some(uid) => format!("runbox-test-cache-{uid}"),
        None => "runbox-test-cache".to_owned(),
    };
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// The compiled-module cache for a `runbox` the test starts as its own user (not as the
/// server's uid): runbox refuses a cache directory another user owns.
pub fn own_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runbox-test-cache")
}

/// Compiles the built-in module into the shared cache once per test run. A built-in module that
/// cannot run (a stub while tools-wasm is unfinished) is reported, not fatal: tests that need
/// the built-ins fail on their own, the others (test guests, refusals, the audit log) still run.
pub fn warm_cache() {
    static WARM: OnceLock<()> = OnceLock::new();
    WARM.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).expect("mkdir");
        std::fs::create_dir_all(cache_dir()).expect("mkdir cache");
        std::fs::set_permissions(
            cache_dir(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod cache");
        hand_over(&cache_dir());
        hand_over(dir.path());
        let out = as_server_user(runbox_bin())
            .args(["exec", "--allow-root", "--workspace"])
            .arg(&ws)
            .arg("--audit-dir")
            .arg(dir.path().join("audit"))
            .arg("--cache-dir")
            .arg(cache_dir())
            .arg("true")
            .output()
            .expect("run runbox exec");
        if !out.status.success() {
            eprintln!(
                "NOTE: warming the module cache with the built-in `true` failed (built-in commands \
                 unavailable?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

/// The test-guest module (tests/guests), built once per test run for wasm32-wasip1.
pub fn guest_module() -> &'static Path {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| build_wasm_crate("tests/guests", "test-guests"))
}

/// Builds the crate in `dir` (relative to the repository root) for wasm32-wasip1 in its own
/// target directory, without the outer build's flags, and returns the path of `ARTIFACT.wasm`.
pub fn build_wasm_crate(dir: &str, artifact: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
        .join("Cargo.toml");
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir.replace('/', "-"));
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
        .unwrap_or_else(|e| panic!("run cargo for {dir}: {e}"));
    assert!(status.success(), "building {dir} failed");
    target_dir.join(format!("wasm32-wasip1/release/{artifact}.wasm"))
}

/// A fresh directory tree for one test: a workspace, an audit directory, optional tools.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub ws: PathBuf,
    pub audit: PathBuf,
    pub tools: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub extra_args: Vec<String>,
}

impl Env {
    pub fn new() -> Self {
        warm_cache();
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).expect("mkdir ws");
        let audit = dir.path().join("audit");
        Self {
            dir,
            ws,
            audit,
            tools: None,
            config: None,
            extra_args: Vec::new(),
        }
    }

    /// Adds test guests under the given names (spin, memhog, flood, escape, sleeper, exiter, ...).
    pub fn with_guests(mut self, names: &[&str]) -> Self {
        let tools = self.dir.path().join("tools");
        std::fs::create_dir_all(&tools).expect("mkdir tools");
        for n in names {
            std::fs::copy(guest_module(), tools.join(format!("{n}.wasm"))).expect("copy guest");
        }
        self.tools = Some(tools);
        self
    }

    /// Writes `NAME.toml` next to a guest (e.g. `filesystem = "read-write"`).
    pub fn with_manifest(self, name: &str, toml: &str) -> Self {
        let tools = self.tools.clone().expect("call with_guests first");
        std::fs::write(tools.join(format!("{name}.toml")), toml).expect("write manifest");
        self
    }

    /// Writes a policy file (outside the workspace) and uses it, with the test's
    /// `sandbox.isolation` ([`test_isolation`]) when one is set.
    pub fn with_config(mut self, toml: &str) -> Self {
        let path = self.dir.path().join("policy.toml");
        let text = match test_isolation() {
            Some(mode) => with_isolation_key(toml, &mode),
            None => toml.to_owned(),
        };
        std::fs::write(&path, text).expect("write policy");
        self.config = Some(path);
        self
    }

    /// Writes a file inside the workspace.
    pub fn file(&self, rel: &str, content: &str) -> &Self {
        let p = self.ws.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
        self
    }

    /// The argument list for `runbox serve` / `exec` in this environment. When servers run as
    /// another uid, the test's tree is handed to it first.
    pub fn policy_args(&self) -> Vec<String> {
        hand_over(self.dir.path());
        let mut a = vec![
            "--allow-root".to_owned(),
            "--workspace".into(),
            self.ws.display().to_string(),
            "--audit-dir".into(),
            self.audit.display().to_string(),
            "--cache-dir".into(),
            cache_dir().display().to_string(),
        ];
        if let Some(t) = &self.tools {
            a.push("--tools-dir".into());
            a.push(t.display().to_string());
        }
        if let Some(c) = &self.config {
            a.push("--config".into());
            a.push(c.display().to_string());
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// Starts `runbox serve` and completes the initialize handshake.
    pub fn serve(&self) -> Server {
        let mut s = Server::spawn(&self.policy_args());
        s.initialize();
        s
    }

    /// The audit log's files (`audit-YYYYMMDD-NNNNNN.jsonl`), in chain order.
    pub fn audit_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.audit) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| runbox::audit::files::parse_name(n).is_some())
            })
            .collect();
        files.sort_by_key(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(runbox::audit::files::parse_name)
        });
        files
    }

    /// Every audit record written so far, all stages.
    pub fn audit_records(&self) -> Vec<Value> {
        let mut records = Vec::new();
        for f in self.audit_files() {
            let text = std::fs::read_to_string(&f).expect("read audit");
            for line in text.lines() {
                records.push(serde_json::from_str(line).expect("audit line is JSON"));
            }
        }
        records
    }

    /// The last record of every call: `completed`, `denied` or `failed`.
    pub fn call_ends(&self) -> Vec<Value> {
        self.audit_records()
            .into_iter()
            .filter(|r| {
                ["completed", "denied", "failed"].contains(&r["stage"].as_str().unwrap_or(""))
            })
            .collect()
    }

    /// Every record of one request, in order.
    pub fn records_of(&self, request_id: &str) -> Vec<Value> {
        self.audit_records()
            .into_iter()
            .filter(|r| r["requestId"] == request_id)
            .collect()
    }

    /// Waits (bounded by [`RESPONSE_TIMEOUT`]) until the audit log holds a record `pred` accepts,
    /// and returns it. The log is a file, so this polls it; there is no response to wait on.
    pub fn wait_for_record(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        loop {
            if let Some(r) = self.audit_records().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no audit record {what} within {RESPONSE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `runbox audit ARGS --dir AUDIT_DIR`.
    pub fn audit_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(runbox_bin())
            .arg("audit")
            .args(args)
            .arg("--dir")
            .arg(&self.audit)
            .output()
            .expect("run runbox audit")
    }
}

/// A running `runbox serve` with a line-based JSON-RPC client.
pub struct Server {
    pub child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    pub notifications: Vec<Value>,
    pending: Vec<Value>,
    stderr: std::sync::Arc<Mutex<String>>,
}

impl Server {
    pub fn spawn(args: &[String]) -> Self {
        let mut cmd = as_server_user(runbox_bin());
        cmd.arg("serve").args(args);
        Self::spawn_command(cmd)
    }

    /// Starts a prepared `runbox serve` command (extra environment, inherited descriptors).
    pub fn spawn_command(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runbox");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("server wrote non-JSON to stdout ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let log = std::sync::Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            rx,
            next_id: 1,
            notifications: Vec::new(),
            pending: Vec::new(),
            stderr: log,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send_raw(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line).expect("write to server");
        stdin.write_all(b"\n").expect("write newline");
        stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_raw(msg.to_string().as_bytes());
    }

    /// Sends a request and returns its id without waiting.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(msg.to_string().as_bytes());
        id
    }

    /// Waits for the next message that is a response (has an id and no method).
    pub fn next_response(&mut self) -> Value {
        if !self.pending.is_empty() {
            return self.pending.remove(0);
        }
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if v.get("method").is_some() => self.notifications.push(v),
                Ok(v) => return v,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no response within {RESPONSE_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("server closed stdout; stderr:\n{}", self.stderr())
                }
            }
        }
    }

    /// Waits for the response to request `id`, keeping others for later.
    pub fn wait_for(&mut self, id: i64) -> Value {
        if let Some(pos) = self.pending.iter().position(|v| v["id"] == json!(id)) {
            return self.pending.remove(pos);
        }
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if v.get("method").is_some() => self.notifications.push(v),
                Ok(v) if v["id"] == json!(id) => return v,
                Ok(v) => self.pending.push(v),
                Err(e) => panic!("no response to {id}: {e:?}; stderr:\n{}", self.stderr()),
            }
        }
    }

    /// Ids of responses received but not yet consumed.
    pub fn pending_ids(&mut self) -> Vec<i64> {
        while let Ok(v) = self.rx.try_recv() {
            if v.get("method").is_some() {
                self.notifications.push(v);
            } else {
                self.pending.push(v);
            }
        }
        self.pending
            .iter()
            .filter_map(|v| v["id"].as_i64())
            .collect()
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.wait_for(id)
    }

    pub fn initialize(&mut self) -> Value {
        let r = self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "runbox-tests", "version": "0"}}),
        );
        assert!(r.get("result").is_some(), "initialize failed: {r}");
        self.notify("notifications/initialized", json!({}));
        r
    }

    /// Calls a tool and returns the `result` object (panics on a JSON-RPC error).
    pub fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        r.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("tools/call {tool} gave a protocol error: {r}"))
    }

    /// `run` with a command and string arguments.
    pub fn run(&mut self, command: &str, args: &[&str]) -> Value {
        self.call("run", json!({"command": command, "args": args}))
    }

    /// Closes stdin and waits for the process to exit.
    pub fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after stdin closed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Peak resident memory of the server in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The requestId of a tool result, success or error.
pub fn request_id(result: &Value) -> String {
    let s = structured(result);
    s["requestId"]
        .as_str()
        .or_else(|| s["error"]["requestId"].as_str())
        .unwrap_or_else(|| panic!("no requestId in {result}"))
        .to_owned()
}

/// The structured content of a tool result.
pub fn structured(result: &Value) -> &Value {
    let s = &result["structuredContent"];
    assert!(!s.is_null(), "no structuredContent in {result}");
    s
}

/// Whether a tool result is an error.
pub fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

/// The error code of an error result.
pub fn error_code(result: &Value) -> String {
    assert!(is_error(result), "expected an error result, got {result}");
    structured(result)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The text block of a result parsed as JSON (it must equal the structured content).
pub fn text_json(result: &Value) -> Value {
    let text = result["content"][0]["text"].as_str().expect("text content");
    serde_json::from_str(text).expect("text block is JSON")
}

/// Whether `s` looks like a UUID v7.
pub fn is_uuid_v7(s: &str) -> bool {
    uuid::Uuid::parse_str(s)
        .map(|u| u.get_version_num() == 7)
        .unwrap_or(false)
}
