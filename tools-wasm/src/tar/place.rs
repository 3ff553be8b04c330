//! Writing extracted members beneath the current directory, and nowhere else.
//!
//! Every path it is handed is already safe ([`super::names`]: relative, no `..`). On top of
//! that it never goes through a symbolic link already in the tree: each missing parent is
//! created, an existing parent that is a symbolic link is refused (GNU tar would follow it), and
//! the last component is removed before it is written (so an old link there is replaced, not
//! followed). Symbolic links that would lead outside the workspace are refused; hard links must
//! name a member already extracted beneath the current directory. Must not change owners or
//! modes (WASI has neither).

use super::names;
use super::{Options, Status, show};
use crate::cli;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Places members; remembers directory times to set once their contents are in.
pub struct Placer {
    /// How deep the current directory is below the workspace root.
    depth: usize,
    keep_old: bool,
    touch: bool,
    dirs: Vec<(PathBuf, u64)>,
}

#[cfg(unix)]
fn path_of(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(target_os = "wasi")]
fn path_of(bytes: &[u8]) -> PathBuf {
    use std::os::wasi::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

/// Directory times are set at the end; at most this many are remembered (the rest keep the
/// extraction time, as with `-m`).
const MAX_DIRS: usize = 100_000;

/// How deep the current directory is below the workspace root, counted from its path; 0 when
/// that path goes through a symbolic link (`-C up` with `up -> ../..`): the path's text then
/// says nothing of where it really is, and 0 is the depth that lets no link climb out.
fn current_depth() -> usize {
    let Ok(dir) = std::env::current_dir() else {
        return 0;
    };
    let mut prefix = PathBuf::new();
    for part in dir.components() {
        prefix.push(part);
        if fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return 0;
        }
    }
    names::depth_of(dir.as_os_str().as_encoded_bytes())
}

impl Placer {
    pub fn new(options: &Options) -> Placer {
        let depth = current_depth();
        Placer {
            depth,
            keep_old: options.keep_old,
            touch: options.touch,
            dirs: Vec::new(),
        }
    }

    /// A regular file with the entry's data.
    pub fn file(&mut self, status: &mut Status, path: &[u8], data: &mut impl Read, mtime: u64) {
        if path.is_empty() || !self.parents(status, path) || !self.clear(status, path) {
            return;
        }
        let p = path_of(path);
        let mut file = match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => f,
            Err(e) => return error(status, path, "Cannot open", &e),
        };
        if let Err(e) = io::copy(data, &mut file) {
            return error(status, path, "Cannot write", &e);
        }
        if !self.touch
            && let Err(e) = file.set_modified(time(mtime))
        {
            error(status, path, "Cannot utime", &e);
        }
    }

    /// A directory (an existing one is kept; a file or link in its place is replaced).
    pub fn directory(&mut self, status: &mut Status, path: &[u8], mtime: u64) {
        if path.is_empty() || !self.parents(status, path) {
            return;
        }
        let p = path_of(path);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                if let Err(e) = fs::remove_file(&p).and_then(|()| fs::create_dir(&p)) {
                    return error(status, path, "Cannot mkdir", &e);
                }
            }
            Err(_) => {
                if let Err(e) = fs::create_dir(&p) {
                    return error(status, path, "Cannot mkdir", &e);
                }
            }
        }
        if !self.touch && self.dirs.len() < MAX_DIRS {
            self.dirs.push((p, mtime));
        }
    }

    /// A symbolic link, if it stays inside the workspace.
    pub fn symlink(&mut self, status: &mut Status, path: &[u8], target: &[u8]) {
        if path.is_empty() {
            return;
        }
        if !names::link_stays_inside(path, self.depth, target) {
            status.error(format!(
                "{}: Cannot create symlink to '{}': it would lead outside the workspace",
                show(path),
                show(target)
            ));
            return;
        }
        if !self.parents(status, path) || !self.clear(status, path) {
            return;
        }
        if let Err(e) = rustix::fs::symlink(path_of(target), path_of(path)) {
            let e = io::Error::from(e);
            status.error(format!(
                "{}: Cannot create symlink to '{}': {}",
                show(path),
                show(target),
                cli::io_message(&e)
            ));
        }
    }

    /// A hard link to `target`, a member path beneath the current directory.
    pub fn hard_link(&mut self, status: &mut Status, path: &[u8], target: &[u8]) {
        if path.is_empty() {
            return;
        }
        let refuse = |status: &mut Status, why: &str| {
            status.error(format!(
                "{}: Cannot hard link to '{}': {why}",
                show(path),
                show(target)
            ));
        };
        if target.is_empty() {
            return refuse(status, "No such file or directory");
        }
        if let Some(link) = self.link_on_the_way(target, true) {
            return refuse(
                status,
                &format!(
                    "'{}' is a symbolic link, which runbox does not follow",
                    link.display()
                ),
            );
        }
        match fs::symlink_metadata(path_of(target)) {
            Err(e) => return refuse(status, &cli::io_message(&e)),
            Ok(m) if m.is_dir() => return refuse(status, "Operation not permitted"),
            Ok(_) => {}
        }
        if !self.parents(status, path) || !self.clear(status, path) {
            return;
        }
        if let Err(e) = fs::hard_link(path_of(target), path_of(path)) {
            refuse(status, &cli::io_message(&e));
        }
    }

    /// Sets the directories' times, deepest first.
    pub fn finish(&mut self, status: &mut Status) {
        for (dir, mtime) in self.dirs.drain(..).rev() {
            if let Err(e) = File::open(&dir).and_then(|f| f.set_modified(time(mtime))) {
                error(
                    status,
                    dir.as_os_str().as_encoded_bytes(),
                    "Cannot utime",
                    &e,
                );
            }
        }
    }

    /// The first existing symbolic link among the parents of `path` (and `path` itself when
    /// `itself`).
    fn link_on_the_way(&self, path: &[u8], itself: bool) -> Option<PathBuf> {
        let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        let upto = if itself { parts.len() } else { parts.len() - 1 };
        let mut cur = PathBuf::new();
        for part in &parts[..upto] {
            cur.push(path_of(part));
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => return Some(cur),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// Creates the missing parents of `path`; refuses a parent that is a symbolic link.
    fn parents(&mut self, status: &mut Status, path: &[u8]) -> bool {
        let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        let mut cur = PathBuf::new();
        for part in &parts[..parts.len() - 1] {
            cur.push(path_of(part));
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    status.error(format!(
                        "{}: Cannot open: '{}' is a symbolic link, which runbox's tar does not \
                         extract through",
                        show(path),
                        cur.display()
                    ));
                    return false;
                }
                Ok(_) => {
                    status.error(format!("{}: Cannot open: Not a directory", show(path)));
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Err(e) = fs::create_dir(&cur) {
                        error(status, path, "Cannot mkdir", &e);
                        return false;
                    }
                }
                Err(e) => {
                    error(status, path, "Cannot open", &e);
                    return false;
                }
            }
        }
        true
    }

    /// Removes what is at `path` (not a directory) so it is replaced, never written through.
    fn clear(&self, status: &mut Status, path: &[u8]) -> bool {
        let p = path_of(path);
        match fs::symlink_metadata(&p) {
            Err(_) => true,
            Ok(_) if self.keep_old => {
                status.error(format!("{}: Cannot open: File exists", show(path)));
                false
            }
            Ok(m) if m.is_dir() => {
                status.error(format!("{}: Cannot open: Is a directory", show(path)));
                false
            }
            Ok(_) => match fs::remove_file(&p) {
                Ok(()) => true,
                Err(e) => {
                    error(status, path, "Cannot unlink", &e);
                    false
                }
            },
        }
    }
}

fn error(status: &mut Status, path: &[u8], what: &str, e: &io::Error) {
    status.io_error(show(path), what, e);
}

fn time(mtime: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(mtime))
        .unwrap_or(UNIX_EPOCH)
}
