//! The paths runbox itself reads, maps, executes or writes — the policy file, the audit log, the
//! compiled-module cache, `tools_dir` and the temp directory its scratch directories live in —
//! and the one check that none of them lies inside the workspace.
//!
//! Commands may change anything in the workspace; a file of runbox's own in there is a file a
//! command can change: a compiled module in the cache runs as native code inside the server, a
//! module in `tools_dir` becomes a command, a scratch directory in `TMPDIR` is the next call's,
//! the policy and the audit log are the rules and the record. [`Policy::own_paths`] is the list
//! (a new path runbox uses goes there, and is then checked by `serve`, `exec` and `doctor`
//! alike); [`problems`] judges each by where it really leads (device and inode, through
//! [`Workspace::contains_host_path`]), never by path text. It must not create, open or change
//! anything: doctor runs it too.

use super::Policy;
use crate::workspace::Workspace;
use std::path::PathBuf;

/// One path runbox uses for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnPath {
    /// The policy key (or flag, or environment variable) that sets it, as the error names it.
    pub key: &'static str,
    /// The path as configured.
    pub path: PathBuf,
    /// What a command could do if the path were inside the workspace.
    pub harm: &'static str,
    /// How the operator moves it out.
    pub fix: &'static str,
    /// Whether the workspace must not lie inside this directory either: true for the
    /// directories runbox creates private (mode 700) and deletes files from.
    pub must_not_hold_workspace: bool,
}

/// An own path in the wrong place, with the key at fault and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnPathError {
    /// The path is (or leads to) the workspace or something inside it.
    #[error(
        "{key} {path} is inside the workspace {workspace}, where commands could {harm}; fix: {fix}"
    )]
    InsideWorkspace {
        /// The key that sets the path.
        key: &'static str,
        /// The path as configured.
        path: PathBuf,
        /// The workspace root.
        workspace: PathBuf,
        /// What a command could do.
        harm: &'static str,
        /// How to move it out.
        fix: &'static str,
    },
    /// The path is relative or empty (an empty `TMPDIR` means the current directory), so where
    /// it leads depends on where runbox was started.
    #[error("{key} {path:?} is not an absolute path; fix: {fix}")]
    NotAbsolute {
        /// The key that sets the path.
        key: &'static str,
        /// The path as configured.
        path: PathBuf,
        /// How to set it.
        fix: &'static str,
    },
    /// The workspace lies inside a directory that must hold only runbox's own files.
    #[error(
        "the workspace {workspace} is inside {key} {path}, a directory runbox keeps private and deletes files from; fix: {fix}, or choose a workspace outside it"
    )]
    HoldsWorkspace {
        /// The key that sets the directory.
        key: &'static str,
        /// The directory as configured.
        path: PathBuf,
        /// The workspace root.
        workspace: PathBuf,
        /// How to move the directory elsewhere.
        fix: &'static str,
    },
}

impl OwnPathError {
    /// The key at fault.
    pub fn key(&self) -> &'static str {
        match self {
            Self::InsideWorkspace { key, .. }
            | Self::NotAbsolute { key, .. }
            | Self::HoldsWorkspace { key, .. } => key,
        }
    }

    /// How to fix it.
    pub fn fix(&self) -> &'static str {
        match self {
            Self::InsideWorkspace { fix, .. }
            | Self::NotAbsolute { fix, .. }
            | Self::HoldsWorkspace { fix, .. } => fix,
        }
    }
}

/// The key of the policy file in [`Policy::own_paths`].
pub const POLICY_FILE_KEY: &str = "--config";
/// The key of the temp directory in [`Policy::own_paths`].
pub const TEMP_DIR_KEY: &str = "TMPDIR";

impl Policy {
    /// Every path runbox itself reads, maps, executes or writes, with the key that sets it.
    /// Anything runbox starts using for itself belongs here.
    pub fn own_paths(&self) -> Vec<OwnPath> {
        let mut paths = Vec::with_capacity(6);
        if let Some(file) = &self.policy_file {
            paths.push(OwnPath {
                key: POLICY_FILE_KEY,
                path: file.clone(),
                harm: "edit the policy",
                fix: "keep the policy file outside the workspace",
                must_not_hold_workspace: false,
            });
        }
        paths.push(OwnPath {
            key: "audit_dir",
            path: self.audit_dir.clone(),
            harm: "edit or delete the audit log",
            fix: "set audit_dir (or --audit-dir) to a directory outside the workspace",
            must_not_hold_workspace: true,
        });
        if let Some(dir) = &self.cache_dir {
            paths.push(OwnPath {
                key: "cache_dir",
                path: dir.clone(),
                harm: "replace compiled modules, which run as native code inside the server",
                fix: "set cache_dir (or --cache-dir) to a directory outside the workspace",
                must_not_hold_workspace: true,
            });
        }
        if let Some(dir) = &self.precompiled_dir {
            paths.push(OwnPath {
                key: "precompiled_dir",
                path: dir.clone(),
                harm: "replace precompiled modules, which run as native code inside the server",
                fix: "set precompiled_dir (or --precompiled-dir) to a directory outside the workspace",
                must_not_hold_workspace: true,
            });
        }
        if let Some(dir) = &self.tools_dir {
            paths.push(OwnPath {
                key: "tools_dir",
                path: dir.clone(),
                harm: "replace the modules offered as commands",
                fix: "set tools_dir (or --tools-dir) to a directory outside the workspace",
                must_not_hold_workspace: false,
            });
        }
        paths.push(OwnPath {
            key: TEMP_DIR_KEY,
            path: std::env::temp_dir(),
            harm: "plant files in the scratch directory of a later call",
            fix: "start runbox with TMPDIR set to a directory outside the workspace (e.g. TMPDIR=/tmp)",
            must_not_hold_workspace: false,
        });
        paths
    }
}

/// Every path of `paths` that is in the wrong place relative to `workspace`, in list order.
pub fn problems(workspace: &Workspace, paths: &[OwnPath]) -> Vec<OwnPathError> {
    paths.iter().filter_map(|p| problem(workspace, p)).collect()
}

/// The first path of `paths` in the wrong place, as an error.
///
/// # Errors
/// [`OwnPathError`] naming the key, the path and the fix.
pub fn check(workspace: &Workspace, paths: &[OwnPath]) -> Result<(), OwnPathError> {
    match paths.iter().find_map(|p| problem(workspace, p)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn problem(workspace: &Workspace, p: &OwnPath) -> Option<OwnPathError> {
    let root = || workspace.host_path().to_owned();
    if !p.path.is_absolute() {
        return Some(OwnPathError::NotAbsolute {
            key: p.key,
            path: p.path.clone(),
            fix: p.fix,
        });
    }
    if workspace.contains_host_path(&p.path) {
        return Some(OwnPathError::InsideWorkspace {
            key: p.key,
            path: p.path.clone(),
            workspace: root(),
            harm: p.harm,
            fix: p.fix,
        });
    }
    if p.must_not_hold_workspace && workspace.lies_inside(&p.path) {
        return Some(OwnPathError::HoldsWorkspace {
            key: p.key,
            path: p.path.clone(),
            workspace: root(),
            fix: p.fix,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Overrides, PolicyFile};
    use std::path::Path;

    fn policy(dir: &Path, audit: &str, cache: &str, tools: Option<&str>) -> Policy {
        let flags = Overrides {
            workspace: Some(dir.join("ws")),
            audit_dir: Some(dir.join(audit)),
            cache_dir: Some(dir.join(cache)),
            tools_dir: tools.map(|t| dir.join(t)),
            precompiled_dir: None,
            config: Some(dir.join("policy.toml")),
            allow_root: true,
        };
        Policy::build(PolicyFile::default(), &flags).unwrap()
    }

    #[test]
    fn the_list_names_every_path_runbox_uses() {
        let p = policy(Path::new("/x"), "audit", "cache", Some("tools"));
        let keys: Vec<&str> = p.own_paths().iter().map(|o| o.key).collect();
        assert_eq!(
            keys,
            ["--config", "audit_dir", "cache_dir", "tools_dir", "TMPDIR"]
        );
        let tmp = p.own_paths().into_iter().find(|o| o.key == TEMP_DIR_KEY);
        assert_eq!(tmp.map(|o| o.path), Some(std::env::temp_dir()));
    }

    #[test]
    fn an_empty_or_relative_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        let ws = Workspace::open(&dir.path().join("ws")).unwrap();
        for path in ["", "tmp"] {
            let own = OwnPath {
                key: TEMP_DIR_KEY,
                path: PathBuf::from(path),
                harm: "plant files",
                fix: "set TMPDIR to an absolute directory",
                must_not_hold_workspace: false,
            };
            assert!(
                matches!(
                    check(&ws, &[own]),
                    Err(OwnPathError::NotAbsolute {
                        key: TEMP_DIR_KEY,
                        ..
                    })
                ),
                "{path:?}"
            );
        }
    }

    #[test]
    fn paths_outside_pass_and_each_inside_is_named_with_its_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        let ws = Workspace::open(&dir.path().join("ws")).unwrap();
        let good = policy(dir.path(), "audit", "cache", Some("tools"));
        assert_eq!(problems(&ws, &good.own_paths()), []);
        assert_eq!(check(&ws, &good.own_paths()), Ok(()));

        // A symlink outside the workspace that leads into it counts as inside.
        std::os::unix::fs::symlink(dir.path().join("ws/.cache"), dir.path().join("alias")).unwrap();
        let bad = policy(dir.path(), "ws/state/audit", "alias/runbox", Some("ws"));
        let found = problems(&ws, &bad.own_paths());
        let keys: Vec<&str> = found.iter().map(OwnPathError::key).collect();
        assert_eq!(keys, ["audit_dir", "cache_dir", "tools_dir"], "{found:?}");
        let text = found[1].to_string();
        assert!(
            text.contains("cache_dir")
                && text.contains("native code")
                && text.contains("fix: set cache_dir"),
            "{text}"
        );
        assert_eq!(check(&ws, &bad.own_paths()).unwrap_err().key(), "audit_dir");
        assert!(
            !dir.path().join("ws/state").exists(),
            "the check created a path"
        );
    }

    #[test]
    fn precompiled_modules_inside_the_workspace_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        let ws = Workspace::open(&dir.path().join("ws")).unwrap();
        let mut p = policy(dir.path(), "audit", "cache", None);
        p.precompiled_dir = Some(dir.path().join("ws/modules"));
        let found = problems(&ws, &p.own_paths());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key(), "precompiled_dir");
        assert!(found[0].to_string().contains("native code"), "{}", found[0]);
        p.precompiled_dir = Some(dir.path().join("modules"));
        assert_eq!(check(&ws, &p.own_paths()), Ok(()));
    }

    #[test]
    fn a_workspace_inside_the_cache_or_audit_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cache/ws")).unwrap();
        let flags = Overrides {
            workspace: Some(dir.path().join("cache/ws")),
            audit_dir: Some(dir.path().join("audit")),
            cache_dir: Some(dir.path().join("cache")),
            ..Overrides::default()
        };
        let p = Policy::build(PolicyFile::default(), &flags).unwrap();
        let ws = Workspace::open(&p.workspace).unwrap();
        let e = check(&ws, &p.own_paths()).unwrap_err();
        assert!(
            matches!(
                e,
                OwnPathError::HoldsWorkspace {
                    key: "cache_dir",
                    ..
                }
            ),
            "{e}"
        );
        // tools_dir and TMPDIR may hold the workspace (a workspace under /tmp is common).
        let flags = Overrides {
            workspace: Some(dir.path().join("cache/ws")),
            audit_dir: Some(dir.path().join("audit")),
            cache_dir: Some(dir.path().join("other")),
            tools_dir: Some(dir.path().join("cache")),
            ..Overrides::default()
        };
        let p = Policy::build(PolicyFile::default(), &flags).unwrap();
        assert_eq!(check(&ws, &p.own_paths()), Ok(()));
    }
}
