//! The policy as written: the TOML file's tables, read with a size bound. Every key is
//! optional and unknown keys are refused by the parser, naming the key. Nothing here validates
//! values (that is [`super::Policy::build`]) or decides anything.

use super::ConfigError;
use super::audit_settings::SyncPolicy;
use super::limits::PartialLimits;
use super::native::{NativeFile, SandboxFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Longest policy file read, so a mistaken path to a huge file fails fast.
const MAX_POLICY_FILE_BYTES: u64 = 1024 * 1024;
/// The policy file as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Workspace directory.
    pub workspace: Option<PathBuf>,
    /// Audit log directory.
    pub audit_dir: Option<PathBuf>,
    /// Compiled-module cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Read-only directory of modules compiled ahead of time (`runbox precompile`).
    pub precompiled_dir: Option<PathBuf>,
    /// Directory of operator-supplied `NAME.wasm` commands.
    pub tools_dir: Option<PathBuf>,
    /// Whether an unusable module in `tools_dir` stops the server instead of being skipped.
    pub strict_tools: Option<bool>,
    /// Whether the server may run as root.
    pub allow_root: Option<bool>,
    /// Whether commands may write to the workspace.
    pub workspace_writable: Option<bool>,
    /// Enabled built-in WASI commands (exact names); absent means all built-ins.
    pub commands: Option<Vec<String>>,
    /// `[limits]`.
    #[serde(default, deserialize_with = "super::limits::policy_table")]
    pub limits: Option<PartialLimits>,
    /// WASI guest settings.
    pub wasi: Option<WasiFile>,
    /// How native commands are confined.
    pub sandbox: Option<SandboxFile>,
    /// Native commands, by name; absent means the default (`git` where it exists).
    pub native: Option<BTreeMap<String, NativeFile>>,
    /// Audit log rotation and retention.
    pub audit: Option<AuditFile>,
    /// Streamable HTTP (`serve --listen`).
    pub http: Option<super::http::HttpFile>,
}

/// The `[wasi]` table as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WasiFile {
    /// Environment given to every guest (only [`super::ALLOWED_GUEST_ENV`] names).
    pub env: Option<BTreeMap<String, String>>,
}

/// The `[audit]` table as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// Days a log file is kept after its newest record.
    pub retention_days: Option<u64>,
    /// Size at which a log file is closed and the next begun.
    pub max_file_bytes: Option<u64>,
    /// Size of the whole log at which new calls are refused.
    pub max_total_bytes: Option<u64>,
    /// `batch` or `always`.
    pub sync: Option<SyncPolicy>,
    /// `stdout` (only with `serve --listen`) or `fd:N`: every line also written there.
    pub mirror: Option<String>,
}

/// Reads a policy file, bounded in size.
pub fn read_policy_file(path: &Path) -> Result<PolicyFile, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_POLICY_FILE_BYTES {
        return Err(ConfigError::Parse {
            path: path.to_owned(),
            message: format!("file is larger than {MAX_POLICY_FILE_BYTES} bytes"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse_policy(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.0,
    })
}

/// Policy TOML text the parser refused: the parser's message, naming the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses policy TOML text; the error names the offending key.
pub fn parse_policy(text: &str) -> Result<PolicyFile, ParseError> {
    toml::from_str(text).map_err(|e| ParseError(e.to_string().trim().to_owned()))
}

/// The platform's default state directory for the audit log.
pub fn default_audit_dir() -> Option<PathBuf> {
    xdg_dir("XDG_STATE_HOME", ".local/state").map(|d| d.join("runbox/audit"))
}

/// The platform's default cache directory for compiled modules.
pub fn default_cache_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CACHE_HOME", ".cache").map(|d| d.join("runbox/modules"))
}

fn xdg_dir(var: &str, home_relative: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            return Some(p);
        }
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(home_relative))
}
