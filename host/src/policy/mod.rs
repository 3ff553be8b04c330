//! The policy: one TOML file plus command-line flags, validated into a [`Policy`] at start.
//!
//! Every key is optional; [`Policy`]'s defaults (documented on each field and in the README) make
//! `runbox serve --workspace DIR` work with no file at all. Unknown keys and impossible values are
//! refused at start with a message naming the key. Nothing a client sends can change the policy:
//! it is read once, before the MCP channel opens.
//!
//! - [`file`]: the file as written, read with a size bound.
//! - [`limits`]: the one partial-limits type of `[limits]`, `[native.NAME.limits]` and tool
//!   manifests, its merge rule and the range checks.
//! - [`native`]: `[sandbox]` and the `[native.NAME]` entries.
//! - [`manifest`]: a tool's `NAME.toml`, resolved against the policy.
//! - [`audit_settings`]: `[audit]`: retention, sizes, sync.
//! - [`own_paths`]: the paths runbox uses itself, none of which may lie in the workspace.
//! - [`toolchain`]: the keys a `[native.NAME]` table adds for a toolchain (paths, workspace
//!   execute, passed-through variables, the memory rlimit).
//! - [`catalog`]: the allowlist; [`assemble`]: the one function that builds it.
//!
//! This module sits below everything that runs or records commands: it uses only
//! [`crate::error`], [`crate::limits`], [`crate::outcome`] and [`crate::workspace`] (the test in
//! `layers.rs` checks it). It reads the filesystem only to read the policy file, resolve native
//! binaries and compare its own paths with the workspace; it never runs or writes anything.

pub mod assemble;
pub mod audit_settings;
pub mod catalog;
pub mod file;
pub mod http;
pub mod limits;
pub mod manifest;
pub mod native;
pub mod own_paths;
pub mod toolchain;

pub use audit_settings::{AuditLimits, AuditMirror, SyncPolicy};
pub use catalog::{
    Access, Annotations, BuiltinEntry, Catalog, CatalogError, CommandSpec, MAX_COMMAND_NAME_BYTES,
    Program, parse_builtin_manifest, valid_command_name,
};
pub use file::{
    AuditFile, ParseError, PolicyFile, WasiFile, default_audit_dir, parse_policy, read_policy_file,
};
pub use manifest::ModuleCommand;
pub use native::{Isolation, NativeCommand, SandboxPolicy};

use self::limits::{LimitsTable, PartialLimits, check_limits, in_range};
use crate::limits::{DEFAULT_MAX_TIMEOUT_MS, Limits};
use file::default_cache_dir;
use native::{build_native, default_native_files};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Environment variables a policy may hand to WASI guests; any other name is refused.
pub const ALLOWED_GUEST_ENV: &[&str] = &["LANG", "LC_ALL", "TZ", "COLUMNS"];

/// Values given on the command line; each overrides the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--workspace`.
    pub workspace: Option<PathBuf>,
    /// `--audit-dir`.
    pub audit_dir: Option<PathBuf>,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `--tools-dir`.
    pub tools_dir: Option<PathBuf>,
    /// `--precompiled-dir`.
    pub precompiled_dir: Option<PathBuf>,
    /// `--config`: where the policy file was read from (kept so start can refuse one inside
    /// the workspace).
    pub config: Option<PathBuf>,
    /// `--allow-root` (only ever turns it on).
    pub allow_root: bool,
}

/// Bounds on what one request may carry, checked before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestBounds {
    /// Most arguments (default 4096).
    pub max_args: usize,
    /// Largest total bytes of all arguments (default 1 MiB, like Linux's ARG_MAX scale).
    pub max_arg_bytes: usize,
    /// Largest stdin (default 8 MiB).
    pub max_stdin_bytes: usize,
}

impl Default for RequestBounds {
    fn default() -> Self {
        Self {
            max_args: 4096,
            max_arg_bytes: 1024 * 1024,
            max_stdin_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The effective, validated policy.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// The workspace directory (required: from the file or `--workspace`).
    pub workspace: PathBuf,
    /// Where the audit log goes (default `$XDG_STATE_HOME/runbox/audit`, else
    /// `~/.local/state/runbox/audit`). Never inside the workspace.
    pub audit_dir: PathBuf,
    /// Compiled-module cache (default `$XDG_CACHE_HOME/runbox/modules`, else
    /// `~/.cache/runbox/modules`; none if neither can be found).
    pub cache_dir: Option<PathBuf>,
    /// Read-only directory of modules compiled ahead of time by `runbox precompile`, looked at
    /// before `cache_dir` (default none). Trusted only when it, its ancestors and its files
    /// are owned by root or runbox's user and writable by no one else. Never inside the
    /// workspace.
    pub precompiled_dir: Option<PathBuf>,
    /// Operator-supplied `NAME.wasm` commands (default none).
    pub tools_dir: Option<PathBuf>,
    /// Stop at start when a module in `tools_dir` is unusable (default false: skip it with a
    /// warning naming the file).
    pub strict_tools: bool,
    /// Start even as root (default false: refuse).
    pub allow_root: bool,
    /// Whether commands may write to the workspace (default true). When false every command gets
    /// a read-only view.
    pub workspace_writable: bool,
    /// Enabled built-in WASI commands; `None` means all of them (the default).
    pub commands: Option<Vec<String>>,
    /// Default limits of every command.
    pub limits: Limits,
    /// Highest `timeout_ms` a request may ask for (default 600000).
    pub max_timeout_ms: u64,
    /// Calls that run at once (default 8); more wait for a slot.
    pub max_concurrent: usize,
    /// What one request may carry.
    pub request: RequestBounds,
    /// Environment of every WASI guest (default `LANG=C.UTF-8`, `TZ=UTC`).
    pub wasi_env: BTreeMap<String, String>,
    /// How native commands are confined.
    pub sandbox: SandboxPolicy,
    /// Native commands (default: `git` with a hardened environment where `/usr/bin/git` exists;
    /// an empty `[native]` table turns it off).
    pub native: BTreeMap<String, NativeCommand>,
    /// Audit log retention and size limits.
    pub audit: AuditLimits,
    /// Streamable HTTP (`serve --listen`): address, accepted origins and hosts.
    pub http: http::HttpPolicy,
    /// The policy file this policy was read from, if any (`--config`). Not part of the policy's
    /// hash or of `check-config`'s output; used only to refuse one inside the workspace
    /// ([`own_paths`]).
    #[serde(skip)]
    pub policy_file: Option<PathBuf>,
}

/// A policy that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("policy file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A key has an impossible value.
    #[error("policy key `{key}`: {message}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A [`ConfigError::Invalid`] for `key`.
pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl Policy {
    /// Merges the file and the flags and validates every value.
    pub fn build(file: PolicyFile, flags: &Overrides) -> Result<Self, ConfigError> {
        let workspace = flags.workspace.clone().or(file.workspace).ok_or_else(|| {
            invalid(
                "workspace",
                "no workspace given: pass --workspace DIR or set `workspace`",
            )
        })?;
        let audit_dir = flags
            .audit_dir
            .clone()
            .or(file.audit_dir)
            .or_else(default_audit_dir)
            .ok_or_else(|| {
                invalid(
                    "audit_dir",
                    "no audit directory given and neither XDG_STATE_HOME nor HOME is set",
                )
            })?;
        let cache_dir = flags
            .cache_dir
            .clone()
            .or(file.cache_dir)
            .or_else(default_cache_dir);
        let tools_dir = flags.tools_dir.clone().or(file.tools_dir);
        let precompiled_dir = flags.precompiled_dir.clone().or(file.precompiled_dir);
        for (key, path) in [
            ("audit_dir", Some(&audit_dir)),
            ("cache_dir", cache_dir.as_ref()),
            ("precompiled_dir", precompiled_dir.as_ref()),
            ("tools_dir", tools_dir.as_ref()),
        ] {
            if let Some(p) = path
                && !p.is_absolute()
            {
                return Err(invalid(
                    key,
                    format!("{} must be an absolute path", p.display()),
                ));
            }
        }

        let lf = file.limits.unwrap_or_default();
        let max_timeout_ms = lf
            .max_timeout_ms
            .unwrap_or(DEFAULT_MAX_TIMEOUT_MS.max(lf.timeout_ms.unwrap_or(0)));
        // A lowered ceiling lowers the default too, unless the default is set explicitly.
        let defaults = Limits::default();
        let limits = lf.over(Limits {
            timeout_ms: defaults.timeout_ms.min(max_timeout_ms),
            ..defaults
        });
        let bounds = RequestBounds::default();
        let request = RequestBounds {
            max_args: lf.max_args.unwrap_or(bounds.max_args),
            max_arg_bytes: lf.max_arg_bytes.unwrap_or(bounds.max_arg_bytes),
            max_stdin_bytes: lf.max_stdin_bytes.unwrap_or(bounds.max_stdin_bytes),
        };
        in_range("limits.max_timeout_ms", max_timeout_ms, 1, 24 * 3600 * 1000)?;
        check_limits("limits.", &limits, max_timeout_ms)?;
        let sandbox = SandboxPolicy::build(file.sandbox)?;
        let native = build_native(
            file.native.unwrap_or_else(default_native_files),
            &limits,
            max_timeout_ms,
        )?;
        let af = file.audit.unwrap_or_default();
        let audit_defaults = AuditLimits::default();
        let audit = AuditLimits {
            retention_days: af.retention_days.unwrap_or(audit_defaults.retention_days),
            max_file_bytes: af.max_file_bytes.unwrap_or(audit_defaults.max_file_bytes),
            max_total_bytes: af.max_total_bytes.unwrap_or(audit_defaults.max_total_bytes),
            sync: af.sync.unwrap_or(audit_defaults.sync),
            mirror: af
                .mirror
                .as_deref()
                .map(|m| AuditMirror::parse("audit.mirror", m))
                .transpose()?,
        };
        let policy = Policy {
            workspace,
            audit_dir,
            cache_dir,
            precompiled_dir,
            tools_dir,
            strict_tools: file.strict_tools.unwrap_or(false),
            allow_root: flags.allow_root || file.allow_root.unwrap_or(false),
            workspace_writable: file.workspace_writable.unwrap_or(true),
            commands: file.commands,
            limits,
            max_timeout_ms,
            max_concurrent: lf.max_concurrent.unwrap_or(8),
            request,
            wasi_env: file.wasi.and_then(|w| w.env).unwrap_or_else(|| {
                BTreeMap::from([
                    ("LANG".into(), "C.UTF-8".into()),
                    ("TZ".into(), "UTC".into()),
                ])
            }),
            sandbox,
            native,
            audit,
            http: http::HttpPolicy::build(file.http)?,
            policy_file: flags.config.clone(),
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks every value for sense; the error names the key.
    fn validate(&self) -> Result<(), ConfigError> {
        in_range("limits.max_concurrent", self.max_concurrent as u64, 1, 1024)?;
        in_range("limits.max_args", self.request.max_args as u64, 1, 1 << 20)?;
        in_range(
            "limits.max_arg_bytes",
            self.request.max_arg_bytes as u64,
            1,
            64 * 1024 * 1024,
        )?;
        in_range(
            "limits.max_stdin_bytes",
            self.request.max_stdin_bytes as u64,
            0,
            256 * 1024 * 1024,
        )?;
        let a = &self.audit;
        in_range(
            "audit.retention_days",
            a.retention_days,
            audit_settings::MIN_RETENTION_DAYS,
            36_500,
        )?;
        in_range("audit.max_file_bytes", a.max_file_bytes, 4096, 1 << 40)?;
        in_range(
            "audit.max_total_bytes",
            a.max_total_bytes,
            a.max_file_bytes,
            1 << 50,
        )?;
        for (k, v) in &self.wasi_env {
            if !ALLOWED_GUEST_ENV.contains(&k.as_str()) {
                return Err(invalid(
                    &format!("wasi.env.{k}"),
                    format!(
                        "only {} may be set for guests",
                        ALLOWED_GUEST_ENV.join(", ")
                    ),
                ));
            }
            if v.contains('\0') {
                return Err(invalid(
                    &format!("wasi.env.{k}"),
                    "value contains a NUL byte",
                ));
            }
        }
        let own: Vec<toolchain::OwnPath<'_>> = self
            .own_paths()
            .into_iter()
            .map(|o| toolchain::OwnPath {
                key: o.key,
                path: o.path,
                shared: o.key == own_paths::TEMP_DIR_KEY,
            })
            .collect();
        for (name, c) in &self.native {
            let t = &c.toolchain;
            toolchain::check_write_paths(
                &format!("native.{name}.write_paths"),
                &t.write_paths,
                &own,
            )?;
            for (key, paths) in [("read_paths", &t.read_paths), ("exec_paths", &t.exec_paths)] {
                toolchain::check_read_paths(&format!("native.{name}.{key}"), paths, &own)?;
            }
        }
        if let Some(names) = &self.commands {
            let mut seen = std::collections::BTreeSet::new();
            for n in names {
                if !seen.insert(n) {
                    return Err(invalid("commands", format!("{n:?} is listed twice")));
                }
            }
        }
        Ok(())
    }

    /// The policy in the file's own shape with every key filled in, so the output of
    /// `runbox check-config` is itself a valid policy file.
    pub fn to_file(&self) -> PolicyFile {
        PolicyFile {
            workspace: Some(self.workspace.clone()),
            audit_dir: Some(self.audit_dir.clone()),
            cache_dir: self.cache_dir.clone(),
            precompiled_dir: self.precompiled_dir.clone(),
            tools_dir: self.tools_dir.clone(),
            strict_tools: Some(self.strict_tools),
            allow_root: Some(self.allow_root),
            workspace_writable: Some(self.workspace_writable),
            commands: self.commands.clone(),
            limits: Some(PartialLimits {
                max_timeout_ms: Some(self.max_timeout_ms),
                max_concurrent: Some(self.max_concurrent),
                max_stdin_bytes: Some(self.request.max_stdin_bytes),
                max_args: Some(self.request.max_args),
                max_arg_bytes: Some(self.request.max_arg_bytes),
                ..PartialLimits::written(&self.limits, LimitsTable::Policy)
            }),
            wasi: Some(WasiFile {
                env: Some(self.wasi_env.clone()),
            }),
            sandbox: Some(self.sandbox.to_file()),
            native: Some(
                self.native
                    .iter()
                    .map(|(name, c)| (name.clone(), c.to_file()))
                    .collect(),
            ),
            audit: Some(AuditFile {
                retention_days: Some(self.audit.retention_days),
                max_file_bytes: Some(self.audit.max_file_bytes),
                max_total_bytes: Some(self.audit.max_total_bytes),
                sync: Some(self.audit.sync),
                mirror: self.audit.mirror.map(|m| m.to_string()),
            }),
            http: Some(self.http.to_file()),
        }
    }

    /// The policy as TOML, for `runbox check-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.to_file())
            .unwrap_or_else(|e| format!("# cannot render policy: {e}\n"))
    }

    /// A sha256 over the policy's canonical JSON, recorded in the audit log so a record names
    /// the exact rules it was judged by.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Overrides {
        Overrides {
            workspace: Some("/ws".into()),
            audit_dir: Some("/audit".into()),
            ..Default::default()
        }
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let p = Policy::build(parse_policy("").unwrap(), &flags()).unwrap();
        assert_eq!(p.limits, Limits::default());
        assert_eq!(p.max_concurrent, 8);
        assert!(!p.allow_root);
        assert!(p.workspace_writable);
        assert_eq!(p.wasi_env.get("TZ").map(String::as_str), Some("UTC"));
        assert_eq!(p.audit.retention_days, 7);
    }

    #[test]
    fn flags_override_file() {
        let f = parse_policy(
            "workspace = \"/file-ws\"\naudit_dir = \"/file-audit\"\nallow_root = false",
        )
        .unwrap();
        let mut o = flags();
        o.allow_root = true;
        let p = Policy::build(f, &o).unwrap();
        assert_eq!(p.workspace, PathBuf::from("/ws"));
        assert_eq!(p.audit_dir, PathBuf::from("/audit"));
        assert!(p.allow_root);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse_policy("[limits]\ntimeout_msec = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timeout_msec"), "{e}");
        let e = parse_policy("bogus = 1").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = parse_policy("[audit]\nsync = \"sometimes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sometimes"), "{e}");
        let f = parse_policy("[audit]\nsync = \"always\"").unwrap();
        let p = Policy::build(f, &flags()).unwrap();
        assert_eq!(p.audit.sync, SyncPolicy::Always);
    }

    #[test]
    fn impossible_values_are_named() {
        let cases = [
            ("[limits]\ntimeout_ms = 0", "limits.timeout_ms"),
            (
                "[limits]\ntimeout_ms = 5000\nmax_timeout_ms = 1000",
                "limits.timeout_ms",
            ),
            ("[limits]\nmemory_bytes = 10", "limits.memory_bytes"),
            ("[limits]\nmax_concurrent = 0", "limits.max_concurrent"),
            ("[wasi.env]\nHOME = \"/\"", "wasi.env.HOME"),
            ("commands = [\"ls\", \"ls\"]", "commands"),
            ("audit_dir = \"relative\"", "audit_dir"),
            ("[audit]\nretention_days = 6", "audit.retention_days"),
            ("[audit]\nmax_file_bytes = 10", "audit.max_file_bytes"),
            (
                "[audit]\nmax_file_bytes = 100000\nmax_total_bytes = 5000",
                "audit.max_total_bytes",
            ),
        ];
        for (text, key) in cases {
            let mut o = flags();
            o.audit_dir = None;
            let e = Policy::build(parse_policy(text).unwrap(), &o)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn a_lower_ceiling_lowers_the_default_timeout() {
        let p = Policy::build(
            parse_policy("[limits]\nmax_timeout_ms = 1000").unwrap(),
            &flags(),
        )
        .unwrap();
        assert_eq!(p.limits.timeout_ms, 1000);
        let p = Policy::build(
            parse_policy("[limits]\ntimeout_ms = 700000").unwrap(),
            &flags(),
        )
        .unwrap();
        assert_eq!(p.max_timeout_ms, 700000);
    }

    #[test]
    fn an_empty_native_table_turns_the_default_git_off() {
        let p = Policy::build(parse_policy("[native]").unwrap(), &flags()).unwrap();
        assert!(p.native.is_empty());
        let p = Policy::build(
            parse_policy("[native.sh]\npath = \"/bin/sh\"\naccess = \"read\"").unwrap(),
            &flags(),
        )
        .unwrap();
        assert_eq!(p.native.keys().collect::<Vec<_>>(), ["sh"]);
        let e = Policy::build(
            parse_policy("[native.sh]\npath = \"/nope/sh\"").unwrap(),
            &flags(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("native.sh.path"), "{e}");
    }

    #[test]
    fn rendered_policy_with_native_commands_parses_back() {
        let a = Policy::build(
            parse_policy(
                "[sandbox]\nuser = 1000\n[native.sh]\npath = \"/bin/sh\"\nenv = { A = \"b\" }\n\
                 [native.sh.limits]\nprocesses = 9\n",
            )
            .unwrap(),
            &flags(),
        )
        .unwrap();
        let text = a.to_toml();
        let b = Policy::build(parse_policy(&text).unwrap(), &Overrides::default()).unwrap();
        assert_eq!(a.hash(), b.hash(), "{text}");
        assert_eq!(b.native["sh"].limits.processes, 9);
        assert_eq!(b.sandbox.user, 1000);
    }

    #[test]
    fn missing_workspace_is_an_error() {
        let e = Policy::build(PolicyFile::default(), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("workspace"));
    }

    #[test]
    fn hash_changes_with_policy_and_renders_toml() {
        let a = Policy::build(parse_policy("").unwrap(), &flags()).unwrap();
        let b = Policy::build(parse_policy("[limits]\ntimeout_ms = 5").unwrap(), &flags()).unwrap();
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
        assert!(a.to_toml().contains("timeout_ms = 30000"));
    }

    #[test]
    fn rendered_policy_parses_back_to_the_same_policy() {
        let a = Policy::build(
            parse_policy("commands = [\"ls\"]\n[limits]\nfuel = 12345").unwrap(),
            &flags(),
        )
        .unwrap();
        let text = a.to_toml();
        let b = Policy::build(parse_policy(&text).unwrap(), &Overrides::default()).unwrap();
        assert_eq!(a.hash(), b.hash(), "{text}");
    }
}
