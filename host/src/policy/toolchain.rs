//! The confinement keys one `[native.NAME]` table may add for a toolchain (a Python, Node, make
//! or Cargo installation), validated: extra read-only, read+execute and writable paths, execute
//! permission on the workspace, environment variables passed through by name, and which rlimit
//! bounds memory.
//!
//! Each key only ever widens what that one command may do, and only in ways listed here:
//! - `exec_paths`: read + execute beneath each path (a toolchain directory such as
//!   `/root/.rustup`). Never write.
//! - `read_paths`: read beneath each path (the operator's `CARGO_HOME` registry). Never write or
//!   execute.
//! - `write_paths`: read + write, never execute, beneath each path outside the workspace (a cache
//!   directory the operator owns). None may hold or lie in runbox's own paths (the audit log, the
//!   caches, the policy and token files), checked in [`check_write_paths`]. They are writable
//!   even for an `access = "read"` command: `access` is about the workspace.
//! - `workspace_exec`: execute permission on the workspace (`./gen.sh`, a test binary in
//!   `target/`), default off.
//! - `env_pass`: these variables are copied from runbox's own environment at start (a name runbox
//!   does not have is left out); the same names as `env` are refused (`PATH`, `HOME`, `TMPDIR`,
//!   `PWD`, `LD_*`).
//! - `memory_rlimit`: `"address-space"` (the default: `RLIMIT_AS` = `memory_bytes`), `"data"`
//!   (`RLIMIT_DATA` = `memory_bytes`: only written private memory counts, so runtimes that reserve
//!   large address ranges, V8 and the JVM, still start), or `"off"` (no memory rlimit: only a
//!   per-call cgroup bounds memory, where the host offers one).
//!
//! There is no key that opens the network, device files or `/proc` of other processes. This
//! module reads the filesystem only to canonicalize paths; it never changes anything.

use super::{ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which rlimit bounds a native command's memory (`[native.NAME] memory_rlimit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryRlimit {
    /// `RLIMIT_AS` = `memory_bytes`: every mapping counts, reserved or not.
    #[default]
    AddressSpace,
    /// `RLIMIT_DATA` = `memory_bytes`: private writable memory only (reservations made with
    /// `PROT_NONE` do not count until they are made writable).
    Data,
    /// No memory rlimit; a per-call cgroup's `memory.max` is the only bound, where there is one.
    Off,
}

impl MemoryRlimit {
    /// The value as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddressSpace => "address-space",
            Self::Data => "data",
            Self::Off => "off",
        }
    }
}

/// The toolchain keys of one `[native.NAME]` table as written.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct ToolchainFile {
    /// Extra read + execute paths.
    pub exec_paths: Option<Vec<PathBuf>>,
    /// Extra read-only paths.
    pub read_paths: Option<Vec<PathBuf>>,
    /// Extra writable paths outside the workspace.
    pub write_paths: Option<Vec<PathBuf>>,
    /// Execute permission on the workspace.
    pub workspace_exec: Option<bool>,
    /// Variables passed through by name from runbox's environment.
    pub env_pass: Option<Vec<String>>,
    /// Which rlimit bounds memory.
    pub memory_rlimit: Option<MemoryRlimit>,
}

/// The validated toolchain keys of one native command. The default widens nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Toolchain {
    /// Read + execute beneath each (absolute; missing ones are skipped and `doctor` names them).
    pub exec_paths: Vec<PathBuf>,
    /// Read beneath each (absolute; missing ones are skipped).
    pub read_paths: Vec<PathBuf>,
    /// Read + write without execute beneath each (absolute; never holding runbox's own paths).
    pub write_paths: Vec<PathBuf>,
    /// Whether the workspace is executable for this command (default false).
    pub workspace_exec: bool,
    /// Names copied from runbox's environment at start.
    pub env_pass: Vec<String>,
    /// Which rlimit bounds memory (default [`MemoryRlimit::AddressSpace`]).
    pub memory_rlimit: MemoryRlimit,
}

impl Toolchain {
    /// Validates the keys of `[native.NAME]` (`key` is `native.NAME`). `check_env` is the rule
    /// for a variable's name, shared with `env`.
    pub fn build(
        key: &str,
        f: ToolchainFile,
        check_name: impl Fn(&str, &str) -> Result<(), ConfigError>,
    ) -> Result<Self, ConfigError> {
        let t = Self {
            exec_paths: f.exec_paths.unwrap_or_default(),
            read_paths: f.read_paths.unwrap_or_default(),
            write_paths: f.write_paths.unwrap_or_default(),
            workspace_exec: f.workspace_exec.unwrap_or(false),
            env_pass: f.env_pass.unwrap_or_default(),
            memory_rlimit: f.memory_rlimit.unwrap_or_default(),
        };
        for (name, list) in [
            ("exec_paths", &t.exec_paths),
            ("read_paths", &t.read_paths),
            ("write_paths", &t.write_paths),
        ] {
            if let Some(p) = list.iter().find(|p| !p.is_absolute()) {
                return Err(invalid(
                    &format!("{key}.{name}"),
                    format!("{} must be an absolute path", p.display()),
                ));
            }
        }
        if let Some(p) = t.write_paths.iter().find(|p| p.parent().is_none()) {
            return Err(invalid(
                &format!("{key}.write_paths"),
                format!("{} would make the whole filesystem writable", p.display()),
            ));
        }
        for name in &t.env_pass {
            check_name(&format!("{key}.env_pass.{name}"), name)?;
        }
        Ok(t)
    }

    /// The keys as written, every one filled in.
    pub fn to_file(&self) -> ToolchainFile {
        ToolchainFile {
            exec_paths: Some(self.exec_paths.clone()),
            read_paths: Some(self.read_paths.clone()),
            write_paths: Some(self.write_paths.clone()),
            workspace_exec: Some(self.workspace_exec),
            env_pass: Some(self.env_pass.clone()),
            memory_rlimit: Some(self.memory_rlimit),
        }
    }

    /// The `env_pass` variables runbox has, with their values (read now, from its environment).
    pub fn passed_env(&self) -> Vec<(String, String)> {
        self.env_pass
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
            .filter(|(_, v)| !v.contains('\0'))
            .collect()
    }
}

/// Where a path really leads (through links) when it exists, else the path as written.
fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

/// One of runbox's own paths as [`check_write_paths`] sees it.
pub struct OwnPath<'a> {
    /// The key that sets it.
    pub key: &'a str,
    /// The path.
    pub path: PathBuf,
    /// Whether a writable directory may lie inside it (the temp directory, where only runbox's
    /// own `runbox-*` scratch roots matter).
    pub shared: bool,
}

/// Refuses a command's `write_paths` entry that holds or lies inside one of runbox's own paths,
/// so no command can write the audit log, a cache of compiled code, the tools or the policy; in
/// a shared directory (the temp directory) only an entry that holds it, or lies in one of
/// runbox's `runbox-*` roots there, is refused. `key` is `native.NAME.write_paths`.
pub fn check_write_paths(
    key: &str,
    write_paths: &[PathBuf],
    own: &[OwnPath<'_>],
) -> Result<(), ConfigError> {
    check_grants(key, write_paths, own, "change")
}

/// The same rule for `read_paths` and `exec_paths` (review of the toolchain keys: a grant
/// covering the audit directory let the command read the log where runbox runs unprivileged).
/// `key` is `native.NAME.read_paths` or `native.NAME.exec_paths`.
pub fn check_read_paths(
    key: &str,
    read_paths: &[PathBuf],
    own: &[OwnPath<'_>],
) -> Result<(), ConfigError> {
    check_grants(key, read_paths, own, "read")
}

fn check_grants(
    key: &str,
    write_paths: &[PathBuf],
    own: &[OwnPath<'_>],
    verb: &str,
) -> Result<(), ConfigError> {
    for w in write_paths {
        let w_real = real(w);
        for OwnPath {
            key: own_key,
            path,
            shared,
        } in own
        {
            let o = real(path);
            let inside = match w_real.strip_prefix(&o) {
                Ok(rest) if *shared => rest
                    .components()
                    .next()
                    .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with("runbox-")),
                Ok(_) => true,
                Err(_) => false,
            };
            if o.starts_with(&w_real) || inside {
                return Err(invalid(
                    key,
                    format!(
                        "{} overlaps {own_key} {}: a command could {verb} runbox's own files",
                        w.display(),
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_check(_: &str, _: &str) -> Result<(), ConfigError> {
        Ok(())
    }

    #[test]
    fn defaults_widen_nothing() {
        let t = Toolchain::build("native.x", ToolchainFile::default(), no_check).unwrap();
        assert_eq!(t, Toolchain::default());
        assert!(!t.workspace_exec);
        assert_eq!(t.memory_rlimit, MemoryRlimit::AddressSpace);
    }

    #[test]
    fn relative_paths_and_the_root_are_refused_by_key() {
        for (file, key) in [
            (
                ToolchainFile {
                    exec_paths: Some(vec!["opt".into()]),
                    ..ToolchainFile::default()
                },
                "native.x.exec_paths",
            ),
            (
                ToolchainFile {
                    read_paths: Some(vec!["".into()]),
                    ..ToolchainFile::default()
                },
                "native.x.read_paths",
            ),
            (
                ToolchainFile {
                    write_paths: Some(vec!["/".into()]),
                    ..ToolchainFile::default()
                },
                "native.x.write_paths",
            ),
        ] {
            let e = Toolchain::build("native.x", file, no_check).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn env_pass_names_go_through_the_env_rule() {
        let f = ToolchainFile {
            env_pass: Some(vec!["CARGO_HOME".into(), "LD_PRELOAD".into()]),
            ..ToolchainFile::default()
        };
        let e = Toolchain::build("native.x", f, |k, n| {
            if n.starts_with("LD_") {
                Err(invalid(k, "no"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("native.x.env_pass.LD_PRELOAD"),
            "{e}"
        );
    }

    #[test]
    fn write_paths_may_not_overlap_runbox_own_paths() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("state/audit");
        std::fs::create_dir_all(&audit).unwrap();
        let tmp = dir.path().join("tmp");
        let own = [
            OwnPath {
                key: "audit_dir",
                path: audit.clone(),
                shared: false,
            },
            OwnPath {
                key: "TMPDIR",
                path: tmp.clone(),
                shared: true,
            },
        ];
        for bad in [dir.path().join("state"), audit.join("x"), audit.clone()] {
            let e = check_write_paths("native.x.write_paths", &[bad], &own).unwrap_err();
            assert!(e.to_string().contains("audit_dir"), "{e}");
        }
        // Through a link too.
        std::os::unix::fs::symlink(dir.path().join("state"), dir.path().join("alias")).unwrap();
        assert!(check_write_paths("k", &[dir.path().join("alias")], &own).is_err());
        assert!(check_write_paths("k", &[dir.path().join("cache")], &own).is_ok());
        // The temp directory: holding it or a runbox root in it is refused, a directory of its
        // own in it is not.
        for bad in [tmp.clone(), tmp.join("runbox-scratch-1-x")] {
            let e = check_write_paths("k", std::slice::from_ref(&bad), &own).unwrap_err();
            assert!(e.to_string().contains("TMPDIR"), "{}: {e}", bad.display());
        }
        assert!(check_write_paths("k", &[tmp.join("cache")], &own).is_ok());
        // Review: read and exec grants covering the audit directory let the command read it.
        let e =
            check_read_paths("native.x.read_paths", &[dir.path().join("state")], &own).unwrap_err();
        assert!(
            e.to_string().contains("could read runbox's own files"),
            "{e}"
        );
        assert!(check_read_paths("k", &[dir.path().join("cache")], &own).is_ok());
    }

    #[test]
    fn memory_rlimit_values_parse() {
        let f: ToolchainFile = toml::from_str("memory_rlimit = \"data\"\n").unwrap();
        assert_eq!(f.memory_rlimit, Some(MemoryRlimit::Data));
        assert!(toml::from_str::<ToolchainFile>("memory_rlimit = \"none\"\n").is_err());
        assert_eq!(MemoryRlimit::Off.as_str(), "off");
    }
}
