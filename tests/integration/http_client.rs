//! Test support for `serve --listen`: starts the real binary on `127.0.0.1:0` (reading the bound
//! address from its stderr) and speaks HTTP/1.1 to it with a tiny blocking client — one
//! connection per request, `Connection: close`, chunked bodies decoded, SSE `data:` lines read
//! as JSON-RPC messages. Waits on responses, never on sleeps.

#![allow(dead_code)]

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};

/// A running `runbox serve --listen 127.0.0.1:0`.
pub struct HttpServer {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl HttpServer {
    /// Starts the server for `env` with `extra` flags; panics if it does not come up.
    pub fn start(env: &Env, extra: &[&str]) -> Self {
        match Self::try_start(env, extra) {
            Ok(s) => s,
            Err(e) => panic!("runbox serve --listen did not start: {e}"),
        }
    }

    /// Starts the server, or returns its stderr when it exits before listening.
    pub fn try_start(env: &Env, extra: &[&str]) -> Result<Self, String> {
        let mut cmd = as_server_user(runbox_bin());
        cmd.arg("serve")
            .args(env.policy_args())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd.spawn().expect("spawn runbox serve --listen");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("runbox: serving MCP on http://")
                    && let Some(addr) = rest.strip_suffix("/mcp")
                {
                    let _ = tx.send(addr.parse::<SocketAddr>().ok());
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
            let _ = tx.send(None);
        });
        match rx.recv_timeout(RESPONSE_TIMEOUT) {
            Ok(Some(addr)) => Ok(Self {
                child,
                addr,
                stderr: log,
            }),
            _ => {
                let status = child.wait().ok();
                let text = log.lock().map(|s| s.clone()).unwrap_or_default();
                let code = status.and_then(|s| s.code());
                Err(format!("exit {code:?}; stderr:\n{text}"))
            }
        }
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.child.wait().expect("wait for runbox")
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value (the first, names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON-RPC messages of the body: each SSE `data:` line, or the body as one JSON value.
    pub fn messages(&self) -> Vec<Value> {
        let text = self.text();
        if self
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return serde_json::from_str(&text).into_iter().collect();
        }
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(RESPONSE_TIMEOUT)).unwrap();
    let given = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !given("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if !given("content-length") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A refused body may be cut short by the server closing: that is its answer.
    let _ = stream.write_all(body);
    read_reply(&mut stream)
}

/// Reads a response (to the end of the connection).
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// The headers of an MCP POST.
pub fn mcp_headers<'a>(session: Option<&'a str>, token: Option<&'a str>) -> Vec<(&'a str, String)> {
    let mut h = vec![
        ("Content-Type", "application/json".to_owned()),
        ("Accept", "application/json, text/event-stream".to_owned()),
    ];
    if let Some(s) = session {
        h.push(("Mcp-Session-Id", s.to_owned()));
        h.push(("MCP-Protocol-Version", "2025-11-25".to_owned()));
    }
    if let Some(t) = token {
        h.push(("Authorization", format!("Bearer {t}")));
    }
    h
}

/// POSTs one JSON-RPC message to `/mcp`.
pub fn post(
    addr: SocketAddr,
    session: Option<&str>,
    token: Option<&str>,
    extra: &[(&str, &str)],
    message: &Value,
) -> Reply {
    let owned = mcp_headers(session, token);
    let mut headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
    headers.extend_from_slice(extra);
    send(
        addr,
        "POST",
        "/mcp",
        &headers,
        message.to_string().as_bytes(),
    )
}

/// The `initialize` request runbox's tests send.
pub fn initialize_message() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "runbox-http-test", "version": "1"}
    }})
}

/// One MCP session over HTTP.
pub struct Session {
    pub addr: SocketAddr,
    pub id: String,
    pub token: Option<String>,
    next_id: i64,
}

impl Session {
    /// Opens a session: `initialize`, then `notifications/initialized`.
    pub fn open(addr: SocketAddr, token: Option<&str>) -> Self {
        let reply = post(addr, None, token, &[], &initialize_message());
        assert_eq!(reply.status, 200, "initialize: {}", reply.text());
        let id = reply
            .header("mcp-session-id")
            .expect("a session id")
            .to_owned();
        let init = reply.messages();
        assert!(
            init.iter()
                .any(|m| m["result"]["serverInfo"]["name"] == "runbox"),
            "{init:?}"
        );
        let s = Self {
            addr,
            id,
            token: token.map(str::to_owned),
            next_id: 1,
        };
        let done = post(
            addr,
            Some(&s.id),
            token,
            &[],
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        );
        assert_eq!(done.status, 202, "initialized: {}", done.text());
        s
    }

    /// Sends a request and returns its response message.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply = post(
            self.addr,
            Some(&self.id),
            self.token.as_deref(),
            &[],
            &message,
        );
        assert_eq!(reply.status, 200, "{method}: {}", reply.text());
        reply
            .messages()
            .into_iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("no response to {method} in {}", reply.text()))
    }

    /// Calls a tool and returns its result.
    pub fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        r["result"].clone()
    }
}

/// Writes a token file of `name:token` lines into the test's directory (handed to the server's
/// uid with the rest when the server starts) and returns its path.
pub fn write_token_file(env: &Env, tokens: &[(&str, &str)]) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.dir.path().join("tokens");
    let text: String = tokens.iter().map(|(n, t)| format!("{n}:{t}\n")).collect();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Opens `GET /mcp` (an event stream) for `session` and reads only the response's status; the
/// connection is returned open (a stream stays open until it is dropped). `None` when no
/// status arrived within 10 s.
pub fn open_event_stream(
    addr: SocketAddr,
    session: &str,
    token: Option<&str>,
) -> (TcpStream, Option<u16>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n"
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") && got.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    let status = String::from_utf8_lossy(&got)
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .and_then(|s| s.parse().ok());
    (stream, status)
}

/// The status of an `initialize` POSTed with `token`: 200 when the token is taken, 401 when not.
pub fn initialize_status(addr: SocketAddr, token: &str) -> u16 {
    post(addr, None, Some(token), &[], &initialize_message()).status
}

/// Sends SIGHUP to the server with process id `pid` (a reload of its token file).
pub fn hang_up(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The `reload` records of the audit log, oldest first.
pub fn reload_records(env: &Env) -> Vec<Value> {
    env.audit_records()
        .into_iter()
        .filter(|r| r["stage"] == "reload")
        .collect()
}

/// Waits for the `n`th `reload` record (1-based) and returns it.
pub fn wait_for_reload(env: &Env, n: usize) -> Value {
    env.wait_for_record(&format!("reload #{n}"), |_| reload_records(env).len() >= n);
    reload_records(env)[n - 1].clone()
}

/// Seconds from record `earlier` to record `later`, by their `time` (records of one run,
/// within a day of each other).
pub fn seconds_between(earlier: &Value, later: &Value) -> f64 {
    let secs = |r: &Value| -> f64 {
        let time = r["time"].as_str().expect("a record's time");
        let clock = time
            .split_once('T')
            .map(|(_, c)| c.trim_end_matches('Z'))
            .expect("an RFC 3339 time");
        clock
            .split(':')
            .map(|p| p.parse::<f64>().expect("a clock part"))
            .fold(0.0, |acc, p| acc * 60.0 + p)
    };
    let gap = secs(later) - secs(earlier);
    if gap < -43_200.0 { gap + 86_400.0 } else { gap }
}
