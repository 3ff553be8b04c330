//! The runbox side: one `runbox serve` for a whole test, reached over MCP, whose workspace holds
//! one directory per case; a script runs through the `shell` tool with that directory (or a
//! directory below it) as its cwd. Beside the workspace lies a sentinel directory that no script
//! may read or change.
//!
//! Only ever writes below the test's own temporary directory.

use crate::support::{Env, Server, as_server_user, hand_over, is_error, runbox_bin, structured};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What the sentinel's secret file holds; no script's output may contain it.
pub const SENTINEL_SECRET: &str = "SENTINEL-SECRET-4f1c";

/// A started command as the tool reports it.
#[derive(Debug, Clone)]
pub struct CommandRun {
    pub argv0: String,
    pub runner: String,
    pub error: Option<String>,
}

/// What the `shell` tool answered.
#[derive(Debug, Default)]
pub struct ShellResult {
    pub stdout: String,
    pub stderr: String,
    /// `None` for an error result.
    pub exit: Option<i64>,
    /// Code and message of an error result.
    pub error: Option<(String, String)>,
    pub commands: Vec<CommandRun>,
}

impl ShellResult {
    /// The code the script ended with: the error result's, else the first command refused or
    /// stopped (`commands[].error`), else none.
    pub fn code(&self) -> Option<&str> {
        self.error
            .as_ref()
            .map(|(c, _)| c.as_str())
            .or_else(|| self.commands.iter().find_map(|c| c.error.as_deref()))
    }

    /// One line for a report.
    pub fn describe(&self) -> String {
        match (&self.error, self.exit) {
            (Some((code, message)), _) => format!("error {code}: {message}"),
            (None, Some(e)) => format!("exit {e}"),
            (None, None) => "no exit code".into(),
        }
    }
}

/// The server and its directories.
pub struct Runbox {
    pub env: Env,
    server: Server,
    pub sentinel: PathBuf,
}

impl Runbox {
    /// Starts the server: this build's binary, or `RUNBOX_SHELL_DIFF_RUNBOX`. Commands get
    /// `LC_ALL=C` and `TZ=UTC`, as bash does.
    pub fn start() -> Self {
        let env = Env::new().with_config("[wasi.env]\nLC_ALL = \"C\"\nTZ = \"UTC\"\n");
        let sentinel = env.dir.path().join("sentinel");
        build_sentinel(&sentinel);
        let program = std::env::var_os("RUNBOX_SHELL_DIFF_RUNBOX")
            .map_or_else(|| PathBuf::from(runbox_bin()), PathBuf::from);
        let mut cmd = as_server_user(program);
        cmd.arg("serve")
            .args(env.policy_args())
            .env("RUST_LOG", "warn");
        let mut server = Server::spawn_command(cmd);
        server.initialize();
        Self {
            env,
            server,
            sentinel,
        }
    }

    /// Puts the sentinel back as it was first built (after a script changed it, so the next
    /// change is the next script's).
    pub fn reset_sentinel(&self) {
        let _ = std::fs::remove_dir_all(&self.sentinel);
        build_sentinel(&self.sentinel);
        hand_over(&self.sentinel);
    }

    /// Whether the server offers the `shell` tool.
    pub fn has_shell(&mut self) -> bool {
        let r = self.server.request("tools/list", json!({}));
        r["result"]["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == "shell"))
    }

    /// The workspace on the host.
    pub fn ws(&self) -> &Path {
        &self.env.ws
    }

    /// A case's directory in the workspace, created empty; `name` is its name in the guest's
    /// root.
    pub fn case_dir(&self, name: &str) -> PathBuf {
        let dir = self.env.ws.join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    /// Hands a freshly built tree to the server's uid (when tests run servers as another one).
    pub fn hand_over(&self, dir: &Path) {
        hand_over(dir);
    }

    /// Runs `script` through the `shell` tool with `cwd` relative to the workspace (none: the
    /// root).
    pub fn shell(
        &mut self,
        script: &str,
        cwd: Option<&str>,
        stdin: Option<&str>,
        timeout_ms: u64,
    ) -> (ShellResult, Value) {
        let mut args = json!({"script": script, "timeout_ms": timeout_ms});
        if let Some(c) = cwd {
            args["cwd"] = json!(c);
        }
        if let Some(s) = stdin {
            args["stdin"] = json!(s);
        }
        let raw = self.server.call("shell", args);
        (parse(&raw), raw)
    }
}

fn build_sentinel(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("secret"), format!("{SENTINEL_SECRET}\n")).unwrap();
    std::fs::write(dir.join("sub/file"), "sentinel file\n").unwrap();
    for f in ["secret", "sub/file"] {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_704_164_645);
        std::fs::File::options()
            .write(true)
            .open(dir.join(f))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Reads a `shell` result (see the module doc of `shell_diff.rs` for its shape).
pub fn parse(raw: &Value) -> ShellResult {
    let s = structured(raw);
    if is_error(raw) {
        let e = &s["error"];
        return ShellResult {
            error: Some((text(&e["code"]), text(&e["message"]))),
            // An error that ends a script that already ran may carry its output.
            stdout: text(&e["partial"]["stdout"]),
            stderr: text(&e["partial"]["stderr"]),
            ..ShellResult::default()
        };
    }
    let commands = s["commands"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| CommandRun {
                    argv0: text(&c["argv"][0]),
                    runner: text(&c["runner"]),
                    error: c["error"].as_str().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    ShellResult {
        stdout: text(&s["stdout"]),
        stderr: text(&s["stderr"]),
        exit: s["exitCode"].as_i64(),
        error: None,
        commands,
    }
}
