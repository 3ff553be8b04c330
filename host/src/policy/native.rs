//! The native part of the policy: the `[sandbox]` table and one `[native.NAME]` table per real
//! binary, as written and as validated.
//!
//! Binaries are named by absolute path and resolved once, here, at start: there is no `$PATH`
//! lookup per call. An entry whose binary is missing is a start-up error naming its key. When the
//! file has no `native` key at all, the default policy ships `git` with a hardened environment,
//! but only where `/usr/bin/git` exists. This module reads the filesystem only to resolve paths; it
//! never runs anything.

use super::catalog::{Access, valid_command_name};
use super::limits::{LimitsTable, PartialLimits, check_limits};
use super::toolchain::{MemoryRlimit, Toolchain, ToolchainFile};
use super::{ConfigError, invalid};
use crate::limits::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the default policy looks for git.
pub const DEFAULT_GIT: &str = "/usr/bin/git";
/// The uid and gid native commands run as when runbox runs as root (`nobody` on most systems).
pub const DEFAULT_SANDBOX_ID: u32 = 65534;
/// Directories native commands may read and execute from, by default.
pub const DEFAULT_EXEC_PATHS: &[&str] = &["/usr", "/bin", "/lib", "/lib64"];
/// Files and directories under `/etc` native commands may read, by default: what the dynamic
/// loader, `id`, time zones and name lookups need. Not `/etc` as a whole (`/etc/shadow`, keys).
pub const DEFAULT_READ_PATHS: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/locale.alias",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
];
/// Environment names a policy may not set: runbox sets them itself, or they load code.
const RESERVED_ENV: &[&str] = &["PATH", "HOME", "TMPDIR", "PWD"];

/// The `[sandbox]` table as written: how native commands are confined.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxFile {
    /// Refuse native calls when the kernel cannot confine them fully (default true).
    pub require_confinement: Option<bool>,
    /// How a native call's process tree is isolated and killed (default `auto`).
    pub isolation: Option<Isolation>,
    /// uid native commands run as when runbox runs as root.
    pub user: Option<u32>,
    /// gid native commands run as when runbox runs as root.
    pub group: Option<u32>,
    /// Directories (or files) native commands may read and execute.
    pub exec_paths: Option<Vec<PathBuf>>,
    /// Directories (or files) native commands may read but not execute.
    pub read_paths: Option<Vec<PathBuf>>,
    /// Per-call cgroups: `"auto"` (default), `"off"`, or a delegated cgroup v2 directory.
    pub cgroup: Option<String>,
}

/// Where per-call cgroups come from, `sandbox.cgroup` (see `native::cgroup`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub enum CgroupSetting {
    /// runbox's own cgroup when it is delegated to runbox alone.
    #[default]
    Auto,
    /// No per-call cgroups.
    Off,
    /// A cgroup v2 directory the operator delegated to runbox.
    Dir(PathBuf),
}

impl CgroupSetting {
    /// The value as written in the policy.
    pub fn as_text(&self) -> String {
        match self {
            Self::Auto => "auto".to_owned(),
            Self::Off => "off".to_owned(),
            Self::Dir(d) => d.display().to_string(),
        }
    }

    fn parse(text: &str) -> Result<Self, ConfigError> {
        match text {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            dir if Path::new(dir).is_absolute() => Ok(Self::Dir(dir.into())),
            other => Err(invalid(
                "sandbox.cgroup",
                format!("{other:?} is not \"auto\", \"off\" or an absolute path"),
            )),
        }
    }
}

/// How a native call's process tree is held together, `sandbox.isolation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Namespaces when this machine allows them, else the reaper (when Landlock and seccomp
    /// hold).
    #[default]
    Auto,
    /// A new user + PID + IPC namespace per call; refused where namespaces cannot be made.
    Namespaces,
    /// No namespace: a per-call reaper process (child subreaper) kills the tree; works under
    /// Docker's default seccomp profile.
    Reaper,
}

impl Isolation {
    /// The value as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Namespaces => "namespaces",
            Self::Reaper => "reaper",
        }
    }
}

/// One `[native.NAME]` table as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NativeFile {
    /// Absolute path of the binary.
    pub path: PathBuf,
    /// One line shown to clients.
    pub description: Option<String>,
    /// `read` or `write` (default `write`).
    pub access: Option<Access>,
    /// The command's fixed environment.
    pub env: Option<BTreeMap<String, String>>,
    /// Limits that differ from `[limits]`.
    #[serde(default, deserialize_with = "super::limits::native_table")]
    pub limits: Option<PartialLimits>,
    /// Extra read + execute paths for this command (toolchain directories).
    pub exec_paths: Option<Vec<PathBuf>>,
    /// Extra read-only paths for this command.
    pub read_paths: Option<Vec<PathBuf>>,
    /// Extra writable paths outside the workspace for this command (never executable).
    pub write_paths: Option<Vec<PathBuf>>,
    /// Execute permission on the workspace for this command (default false).
    pub workspace_exec: Option<bool>,
    /// Variables passed through by name from runbox's own environment.
    pub env_pass: Option<Vec<String>>,
    /// Which rlimit bounds memory: `address-space` (default), `data` or `off`.
    pub memory_rlimit: Option<MemoryRlimit>,
}

/// How native commands are confined (validated `[sandbox]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxPolicy {
    /// When true (the default) a native call is refused with SANDBOX_UNAVAILABLE unless Landlock,
    /// seccomp and a tree isolation ([`Isolation`]) are all in force.
    pub require_confinement: bool,
    /// How the process tree of a call is isolated and killed (default [`Isolation::Auto`]).
    pub isolation: Isolation,
    /// uid of native commands when runbox runs as root (default 65534). Never 0.
    pub user: u32,
    /// gid of native commands when runbox runs as root (default 65534). Never 0.
    pub group: u32,
    /// Read + execute (default `/usr`, `/bin`, `/lib`, `/lib64`); missing ones are skipped.
    pub exec_paths: Vec<PathBuf>,
    /// Read only (default a narrow `/etc` list, [`DEFAULT_READ_PATHS`]); missing ones are skipped.
    pub read_paths: Vec<PathBuf>,
    /// Where per-call cgroups come from (default [`CgroupSetting::Auto`]).
    pub cgroup: CgroupSetting,
}

/// One validated native command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeCommand {
    /// The exact name a request uses.
    pub name: String,
    /// The binary, canonicalized at start.
    pub path: PathBuf,
    /// One line for `list_commands`.
    pub description: String,
    /// Whether it may write to the workspace.
    pub access: Access,
    /// Its fixed environment (on top of `PATH`, `HOME`, `TMPDIR` and `LANG`, which runbox sets).
    pub env: BTreeMap<String, String>,
    /// Its limits (`[limits]` with this command's overrides).
    pub limits: Limits,
    /// What it may reach beyond every native command's defaults ([`super::toolchain`]).
    pub toolchain: Toolchain,
}

impl SandboxPolicy {
    /// Validates `[sandbox]`; every key is optional.
    pub fn build(file: Option<SandboxFile>) -> Result<Self, ConfigError> {
        let f = file.unwrap_or_default();
        let defaults = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
        let policy = Self {
            require_confinement: f.require_confinement.unwrap_or(true),
            isolation: f.isolation.unwrap_or_default(),
            user: f.user.unwrap_or(DEFAULT_SANDBOX_ID),
            group: f.group.unwrap_or(DEFAULT_SANDBOX_ID),
            exec_paths: f.exec_paths.unwrap_or_else(|| defaults(DEFAULT_EXEC_PATHS)),
            read_paths: f.read_paths.unwrap_or_else(|| defaults(DEFAULT_READ_PATHS)),
            cgroup: f
                .cgroup
                .as_deref()
                .map_or(Ok(CgroupSetting::Auto), CgroupSetting::parse)?,
        };
        if policy.user == 0 {
            return Err(invalid(
                "sandbox.user",
                "native commands may not run as root",
            ));
        }
        if policy.group == 0 {
            return Err(invalid(
                "sandbox.group",
                "native commands may not run as group 0",
            ));
        }
        for (key, list) in [
            ("sandbox.exec_paths", &policy.exec_paths),
            ("sandbox.read_paths", &policy.read_paths),
        ] {
            if let Some(p) = list.iter().find(|p| !p.is_absolute()) {
                return Err(invalid(
                    key,
                    format!("{} must be an absolute path", p.display()),
                ));
            }
        }
        Ok(policy)
    }

    /// The table as written, every key filled in.
    pub fn to_file(&self) -> SandboxFile {
        SandboxFile {
            require_confinement: Some(self.require_confinement),
            isolation: Some(self.isolation),
            user: Some(self.user),
            group: Some(self.group),
            exec_paths: Some(self.exec_paths.clone()),
            read_paths: Some(self.read_paths.clone()),
            cgroup: Some(self.cgroup.as_text()),
        }
    }
}

/// The hardened environment of the default `git`: no system or global config, no prompts, no
/// pager or editor, hooks and fsmonitor pinned off at the command-config level (so a planted
/// `.git/config` or `.git/hooks/*` cannot run code).
pub fn hardened_git_env() -> BTreeMap<String, String> {
    [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_PAGER", "cat"),
        ("PAGER", "cat"),
        ("GIT_EDITOR", "true"),
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "core.hooksPath"),
        ("GIT_CONFIG_VALUE_0", "/dev/null"),
        ("GIT_CONFIG_KEY_1", "core.fsmonitor"),
        ("GIT_CONFIG_VALUE_1", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The `native` tables of the default policy: `git` where [`DEFAULT_GIT`] exists, else none.
pub fn default_native_files() -> BTreeMap<String, NativeFile> {
    let mut map = BTreeMap::new();
    if Path::new(DEFAULT_GIT).is_file() {
        map.insert(
            "git".to_owned(),
            NativeFile {
                path: DEFAULT_GIT.into(),
                description: Some(
                    "Git version control (native binary, hardened environment, kernel-confined)"
                        .into(),
                ),
                access: Some(Access::Write),
                env: Some(hardened_git_env()),
                limits: Some(PartialLimits {
                    // git maps pack files and starts threads: give it room to address them.
                    memory_bytes: Some(4 * 1024 * 1024 * 1024),
                    ..PartialLimits::default()
                }),
                ..NativeFile::default()
            },
        );
    }
    map
}

/// Validates the `native` tables against the global limits.
pub fn build_native(
    files: BTreeMap<String, NativeFile>,
    limits: &Limits,
    max_timeout_ms: u64,
) -> Result<BTreeMap<String, NativeCommand>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, f) in files {
        let key = format!("native.{name}");
        if !valid_command_name(&name) {
            return Err(invalid(
                &key,
                "a command name may only hold letters, digits, '.', '_' and '-' and may not start with '.'",
            ));
        }
        let path = resolve_binary(&format!("{key}.path"), &f.path)?;
        let env = f.env.unwrap_or_default();
        for (k, v) in &env {
            check_env(&format!("{key}.env.{k}"), k, v)?;
        }
        let limits = f.limits.unwrap_or_default().over(*limits);
        check_limits(&format!("{key}.limits."), &limits, max_timeout_ms)?;
        let toolchain = Toolchain::build(
            &key,
            ToolchainFile {
                exec_paths: f.exec_paths,
                read_paths: f.read_paths,
                write_paths: f.write_paths,
                workspace_exec: f.workspace_exec,
                env_pass: f.env_pass,
                memory_rlimit: f.memory_rlimit,
            },
            |k, n| check_env(k, n, ""),
        )?;
        let description = f
            .description
            .unwrap_or_else(|| format!("{} (native binary)", path.display()));
        out.insert(
            name.clone(),
            NativeCommand {
                name,
                path,
                description,
                access: f.access.unwrap_or(Access::Write),
                env,
                limits,
                toolchain,
            },
        );
    }
    Ok(out)
}

impl NativeCommand {
    /// The table as written, every key filled in.
    pub fn to_file(&self) -> NativeFile {
        NativeFile {
            path: self.path.clone(),
            description: Some(self.description.clone()),
            access: Some(self.access),
            env: Some(self.env.clone()),
            limits: Some(PartialLimits::written(&self.limits, LimitsTable::Native)),
            exec_paths: Some(self.toolchain.exec_paths.clone()),
            read_paths: Some(self.toolchain.read_paths.clone()),
            write_paths: Some(self.toolchain.write_paths.clone()),
            workspace_exec: Some(self.toolchain.workspace_exec),
            env_pass: Some(self.toolchain.env_pass.clone()),
            memory_rlimit: Some(self.toolchain.memory_rlimit),
        }
    }
}

/// An absolute path to an existing executable regular file, canonicalized.
fn resolve_binary(key: &str, path: &Path) -> Result<PathBuf, ConfigError> {
    if !path.is_absolute() {
        return Err(invalid(
            key,
            format!(
                "{} must be an absolute path (there is no $PATH lookup)",
                path.display()
            ),
        ));
    }
    let real = std::fs::canonicalize(path)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    let meta =
        std::fs::metadata(&real).map_err(|e| invalid(key, format!("{}: {e}", real.display())))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(invalid(
            key,
            format!("{} is not an executable file", real.display()),
        ));
    }
    Ok(real)
}

/// Environment names must be plain and not ones runbox sets or that load code.
fn check_env(key: &str, name: &str, value: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(invalid(key, "not a valid environment variable name"));
    }
    if RESERVED_ENV.contains(&name) {
        return Err(invalid(
            key,
            format!("{name} is set by runbox ({})", RESERVED_ENV.join(", ")),
        ));
    }
    if name.starts_with("LD_") {
        return Err(invalid(key, "LD_* variables may not be set"));
    }
    if value.contains('\0') {
        return Err(invalid(key, "value contains a NUL byte"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(toml_text: &str) -> Result<BTreeMap<String, NativeCommand>, ConfigError> {
        let files: BTreeMap<String, NativeFile> = toml::from_str(toml_text).unwrap();
        build_native(files, &Limits::default(), 600_000)
    }

    #[test]
    fn binary_is_resolved_once_to_its_real_path() {
        let m = one("[sh]\npath = \"/bin/sh\"\n").unwrap();
        let sh = &m["sh"];
        assert_eq!(sh.path, std::fs::canonicalize("/bin/sh").unwrap());
        assert_eq!(sh.access, Access::Write);
        assert_eq!(sh.limits, Limits::default());
    }

    #[test]
    fn bad_entries_name_their_key() {
        for (text, key) in [
            ("[x]\npath = \"sh\"\n", "native.x.path"),
            ("[x]\npath = \"/no/such/binary\"\n", "native.x.path"),
            ("[x]\npath = \"/etc/passwd\"\n", "native.x.path"),
            (
                "[x]\npath = \"/bin/sh\"\nenv = { PATH = \"/tmp\" }\n",
                "native.x.env.PATH",
            ),
            (
                "[x]\npath = \"/bin/sh\"\nenv = { LD_PRELOAD = \"/w/x.so\" }\n",
                "native.x.env.LD_PRELOAD",
            ),
            (
                "[x]\npath = \"/bin/sh\"\n[x.limits]\ntimeout_ms = 700000\n",
                "native.x.limits.timeout_ms",
            ),
            (
                "[x]\npath = \"/bin/sh\"\n[x.limits]\nprocesses = 0\n",
                "native.x.limits.processes",
            ),
            ("[\"a b\"]\npath = \"/bin/sh\"\n", "native.a b"),
        ] {
            let e = one(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn per_command_limits_override_the_global_ones() {
        let m =
            one("[sh]\npath = \"/bin/sh\"\n[sh.limits]\nprocesses = 8\ncpu_seconds = 2\n").unwrap();
        assert_eq!(m["sh"].limits.processes, 8);
        assert_eq!(m["sh"].limits.cpu_seconds, 2);
        assert_eq!(m["sh"].limits.timeout_ms, Limits::default().timeout_ms);
    }

    #[test]
    fn sandbox_defaults_and_refusals() {
        let s = SandboxPolicy::build(None).unwrap();
        assert!(s.require_confinement);
        assert_eq!(s.isolation, Isolation::Auto);
        let file: SandboxFile = toml::from_str("isolation = \"reaper\"\n").unwrap();
        assert_eq!(
            SandboxPolicy::build(Some(file)).unwrap().isolation,
            Isolation::Reaper
        );
        assert!(toml::from_str::<SandboxFile>("isolation = \"none\"\n").is_err());
        assert_eq!(s.cgroup, CgroupSetting::Auto);
        for (text, want) in [
            ("off", Some(CgroupSetting::Off)),
            (
                "/sys/fs/cgroup/r",
                Some(CgroupSetting::Dir("/sys/fs/cgroup/r".into())),
            ),
            ("relative", None),
        ] {
            let f = SandboxFile {
                cgroup: Some(text.into()),
                ..SandboxFile::default()
            };
            let got = SandboxPolicy::build(Some(f));
            match want {
                Some(w) => assert_eq!(got.unwrap().cgroup, w),
                None => assert!(got.unwrap_err().to_string().contains("sandbox.cgroup")),
            }
        }
        assert_eq!((s.user, s.group), (65534, 65534));
        assert!(s.exec_paths.contains(&PathBuf::from("/usr")));
        assert!(!s.read_paths.contains(&PathBuf::from("/etc")));
        let root = SandboxFile {
            user: Some(0),
            ..SandboxFile::default()
        };
        assert!(
            SandboxPolicy::build(Some(root))
                .unwrap_err()
                .to_string()
                .contains("sandbox.user")
        );
        let rel = SandboxFile {
            exec_paths: Some(vec!["usr".into()]),
            ..SandboxFile::default()
        };
        assert!(
            SandboxPolicy::build(Some(rel))
                .unwrap_err()
                .to_string()
                .contains("sandbox.exec_paths")
        );
    }

    #[test]
    fn default_git_is_hardened_and_present_only_where_git_exists() {
        let files = default_native_files();
        assert_eq!(files.contains_key("git"), Path::new(DEFAULT_GIT).is_file());
        let env = hardened_git_env();
        assert_eq!(env["GIT_CONFIG_NOSYSTEM"], "1");
        assert_eq!(env["GIT_CONFIG_GLOBAL"], "/dev/null");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
        let count: usize = env["GIT_CONFIG_COUNT"].parse().unwrap();
        let pinned: BTreeMap<&str, &str> = (0..count)
            .map(|i| {
                (
                    env[&format!("GIT_CONFIG_KEY_{i}")].as_str(),
                    env[&format!("GIT_CONFIG_VALUE_{i}")].as_str(),
                )
            })
            .collect();
        assert_eq!(pinned["core.hooksPath"], "/dev/null");
        assert_eq!(pinned["core.fsmonitor"], "false");
    }
}
