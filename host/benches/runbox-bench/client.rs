//! A minimal MCP client over stdio for the benchmark: starts `runbox serve`, writes JSON-RPC
//! requests as lines and reads responses on the calling thread (no reader thread, so no thread
//! hand-off is added to what is measured).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `runbox serve`.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    /// Responses read while waiting for another id.
    stash: Vec<Value>,
    line: String,
}

impl Server {
    /// Starts `bin serve ARGS`, stderr appended to `log`.
    pub fn spawn(bin: &Path, args: &[String], log: &Path) -> std::io::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(bin)
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::with_capacity(1 << 20, stdout),
            next_id: 1,
            stash: Vec::new(),
            line: String::new(),
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn write_line(&mut self, msg: &Value) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("stdin closed"))?;
        let mut bytes = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        stdin.write_all(&bytes)?;
        stdin.flush()
    }

    /// Sends a request; returns its id.
    pub fn send(&mut self, method: &str, params: Value) -> std::io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.write_line(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        Ok(id)
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Value) -> std::io::Result<()> {
        self.write_line(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
    }

    /// Reads the next message of any kind.
    pub fn recv(&mut self) -> std::io::Result<Value> {
        self.line.clear();
        let n = self.stdout.read_line(&mut self.line)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed stdout",
            ));
        }
        serde_json::from_str(&self.line).map_err(std::io::Error::other)
    }

    /// Reads until the response to `id`, keeping other responses and dropping notifications.
    pub fn wait(&mut self, id: u64) -> std::io::Result<Value> {
        if let Some(i) = self.stash.iter().position(|v| v["id"] == json!(id)) {
            return Ok(self.stash.remove(i));
        }
        loop {
            let v = self.recv()?;
            if v.get("method").is_some() {
                continue;
            }
            if v["id"] == json!(id) {
                return Ok(v);
            }
            self.stash.push(v);
        }
    }

    /// Reads until the next response (notifications dropped); returns it and when it arrived.
    pub fn next_response(&mut self) -> std::io::Result<(Value, Instant)> {
        if !self.stash.is_empty() {
            return Ok((self.stash.remove(0), Instant::now()));
        }
        loop {
            let v = self.recv()?;
            if v.get("method").is_none() {
                return Ok((v, Instant::now()));
            }
        }
    }

    /// Sends `initialize`, waits for its answer, sends `notifications/initialized`.
    pub fn initialize(&mut self) -> std::io::Result<Value> {
        let id = self.send(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "runbox-bench", "version": "0"}}),
        )?;
        let r = self.wait(id)?;
        if r.get("result").is_none() {
            return Err(std::io::Error::other(format!("initialize failed: {r}")));
        }
        self.notify("notifications/initialized", json!({}))?;
        Ok(r)
    }

    /// Sends a `run` call with `arguments` (command, args, ...); returns its id.
    pub fn send_run(&mut self, arguments: &Value) -> std::io::Result<u64> {
        self.send("tools/call", json!({"name": "run", "arguments": arguments}))
    }

    /// Runs one call and returns the structured result; a tool error is an `Err`.
    pub fn run(&mut self, arguments: &Value) -> std::io::Result<Value> {
        let id = self.send_run(arguments)?;
        let r = self.wait(id)?;
        run_result(&r)
    }

    /// Memory figures of the server process (KiB) from /proc.
    pub fn memory(&self) -> Memory {
        Memory::of(self.pid())
    }

    /// Closes stdin and waits (bounded) for the process to exit; kills it after `grace`.
    pub fn close(mut self, grace: Duration) {
        drop(self.stdin.take());
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The structured content of a `tools/call` response, or an error naming what went wrong.
pub fn run_result(response: &Value) -> std::io::Result<Value> {
    let result = response
        .get("result")
        .ok_or_else(|| std::io::Error::other(format!("protocol error: {response}")))?;
    let s = result["structuredContent"].clone();
    if result["isError"] == json!(true) {
        return Err(std::io::Error::other(format!("tool error: {}", s["error"])));
    }
    Ok(s)
}

/// Resident-memory figures of one process, in KiB.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    /// Resident set now (VmRSS).
    pub rss_kib: u64,
    /// Peak resident set (VmHWM).
    pub hwm_kib: u64,
}

impl Memory {
    /// Reads /proc/PID/status; zeros if it cannot be read.
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
        }
    }
}
