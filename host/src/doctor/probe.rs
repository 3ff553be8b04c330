//! Whether this process could use a directory, asked of the kernel without touching it.
//!
//! Every answer comes from `stat` and `eaccess(3)` (the effective uid and gid, with supplementary
//! groups, as the server will have them): nothing is created, written, or removed, so running
//! `runbox doctor` leaves the machine as it found it. `eaccess` also sees read-only mounts.

use nix::unistd::{AccessFlags, eaccess};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The effective uid and gid the checks are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
}

impl User {
    /// The user this process runs as.
    pub fn current() -> Self {
        Self {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

/// What this user could do with a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirProbe {
    /// It exists, is a directory, and the access asked for is allowed.
    Usable,
    /// It does not exist, and this user could create it (in `under`, the nearest existing
    /// ancestor, which it may write and search).
    Creatable {
        /// The nearest existing ancestor.
        under: PathBuf,
    },
    /// It does not exist, and this user could not create it.
    Uncreatable(String),
    /// It exists but is not usable as asked: not a directory, or the access is denied.
    Denied(String),
}

/// Read + search.
pub const READ: AccessFlags = AccessFlags::R_OK.union(AccessFlags::X_OK);
/// Read + write + search.
pub const WRITE: AccessFlags = READ.union(AccessFlags::W_OK);

/// Whether `user` (this process) may use `path` as a directory with `want`, or create it.
pub fn probe_dir(path: &Path, want: AccessFlags, user: User) -> DirProbe {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => DirProbe::Denied(format!("{} is not a directory", path.display())),
        Ok(m) => match eaccess(path, want) {
            Ok(()) => DirProbe::Usable,
            Err(e) => DirProbe::Denied(format!(
                "uid {} cannot {} {} (owner {}:{}, mode {:o}): {}",
                user.uid,
                verb(want),
                path.display(),
                m.uid(),
                m.gid(),
                m.permissions().mode() & 0o7777,
                e.desc()
            )),
        },
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            creatable(path, user)
        }
        Err(e) => DirProbe::Denied(format!(
            "uid {} cannot reach {}: {e}{}",
            user.uid,
            path.display(),
            unsearchable(path)
                .map(|d| format!(" ({} is not searchable)", d.display()))
                .unwrap_or_default()
        )),
    }
}

/// A missing directory: could `mkdir -p` make it?
fn creatable(path: &Path, user: User) -> DirProbe {
    for a in path.ancestors().skip(1) {
        match std::fs::metadata(a) {
            Ok(m) if !m.is_dir() => {
                return DirProbe::Uncreatable(format!(
                    "{} does not exist and cannot be created: {} is not a directory",
                    path.display(),
                    a.display()
                ));
            }
            Ok(m) => {
                return match eaccess(a, AccessFlags::W_OK.union(AccessFlags::X_OK)) {
                    Ok(()) => DirProbe::Creatable {
                        under: a.to_owned(),
                    },
                    Err(e) => DirProbe::Uncreatable(format!(
                        "{} does not exist and uid {} cannot create it: {} (owner {}:{}, mode {:o}) is not writable: {}",
                        path.display(),
                        user.uid,
                        a.display(),
                        m.uid(),
                        m.gid(),
                        m.permissions().mode() & 0o7777,
                        e.desc()
                    )),
                };
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
            Err(e) => {
                return DirProbe::Uncreatable(format!(
                    "{} does not exist and cannot be created: {}: {e}",
                    path.display(),
                    a.display()
                ));
            }
        }
    }
    DirProbe::Uncreatable(format!("{} has no existing ancestor", path.display()))
}

/// The first ancestor of `path` this process cannot search, if any.
fn unsearchable(path: &Path) -> Option<PathBuf> {
    let mut chain: Vec<&Path> = path.ancestors().skip(1).collect();
    chain.reverse();
    chain
        .into_iter()
        .find(|d| eaccess(*d, AccessFlags::X_OK).is_err())
        .map(Path::to_owned)
}

fn verb(want: AccessFlags) -> &'static str {
    if want.contains(AccessFlags::W_OK) {
        "write to"
    } else {
        "read"
    }
}

/// Why the compiled-module cache in `dir` would not be used, as the cache itself decides
/// (`wasi::cache`): it must be a real directory (not a symlink) owned by this user, writable by
/// nobody else, and writable by this user; or not exist yet and be creatable.
pub fn cache_problem(dir: &Path, user: User) -> Option<(String, String)> {
    let Ok(m) = std::fs::symlink_metadata(dir) else {
        return match probe_dir(dir, WRITE, user) {
            DirProbe::Usable | DirProbe::Creatable { .. } => None,
            DirProbe::Uncreatable(why) | DirProbe::Denied(why) => Some((
                why,
                format!(
                    "as root: install -d -o {} -g {} -m 700 {}; or set cache_dir to a directory uid {} owns",
                    user.uid,
                    user.gid,
                    dir.display(),
                    user.uid
                ),
            )),
        };
    };
    let mode = m.permissions().mode() & 0o7777;
    if m.file_type().is_symlink() || !m.is_dir() {
        return Some((
            format!("{} is not a directory (or is a symlink)", dir.display()),
            "set cache_dir to a real directory".to_owned(),
        ));
    }
    if m.uid() != user.uid {
        return Some((
            format!(
                "{} is owned by uid {}, not by uid {} (a compiled module from another user's directory is never loaded)",
                dir.display(),
                m.uid(),
                user.uid
            ),
            format!("chown {}:{} {}", user.uid, user.gid, dir.display()),
        ));
    }
    if mode & 0o022 != 0 {
        return Some((
            format!(
                "{} is writable by group or others (mode {mode:o})",
                dir.display()
            ),
            format!("chmod go-w {}", dir.display()),
        ));
    }
    match probe_dir(dir, WRITE, user) {
        DirProbe::Usable | DirProbe::Creatable { .. } => None,
        DirProbe::Uncreatable(why) | DirProbe::Denied(why) => Some((
            why,
            format!("chmod u+rwx {} (or fix the mount)", dir.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tests run as root, where mode bits do not stop access; a path through a regular file fails
    // for every user (ENOTDIR), so it stands in for a directory that cannot be used or created.

    #[test]
    fn existing_missing_and_blocked_directories() {
        let user = User::current();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe_dir(dir.path(), WRITE, user), DirProbe::Usable);
        let missing = dir.path().join("a/b");
        assert_eq!(
            probe_dir(&missing, WRITE, user),
            DirProbe::Creatable {
                under: dir.path().to_owned()
            }
        );
        assert!(!missing.exists(), "probing created it");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(
            matches!(probe_dir(&file, READ, user), DirProbe::Denied(w) if w.contains("not a directory"))
        );
        let through = file.join("audit");
        assert!(
            matches!(probe_dir(&through, WRITE, user), DirProbe::Uncreatable(w) if w.contains("file is not a directory")),
            "{:?}",
            probe_dir(&through, WRITE, user)
        );
    }

    #[test]
    fn cache_rules_follow_the_cache() {
        let user = User::current();
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("c");
        assert_eq!(cache_problem(&c, user), None, "creatable is fine");
        std::fs::create_dir(&c).unwrap();
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(cache_problem(&c, user), None);
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (why, fix) = cache_problem(&c, user).unwrap();
        assert!(
            why.contains("group or others") && fix.contains("chmod go-w"),
            "{why} / {fix}"
        );
        let other = User {
            uid: user.uid + 1,
            gid: user.gid,
        };
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o700)).unwrap();
        let (why, fix) = cache_problem(&c, other).unwrap();
        assert!(
            why.contains("owned by uid") && fix.starts_with("chown"),
            "{why}"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&c, &link).unwrap();
        assert!(cache_problem(&link, user).unwrap().0.contains("symlink"));
    }
}
