//! Per-call scratch directories: each native call gets an empty `HOME` and `TMPDIR` outside the
//! workspace, owned by the uid the command runs as, that no other call can see while it runs.
//!
//! They live under one root made at start in the system temp directory (mode 0711: the sandbox
//! uid can reach a directory it is given by path but cannot list the others). Landlock grants
//! the command read + write beneath its own call directory only.
//!
//! After a call its directory is emptied and kept for a later call, or removed when the command
//! changed its shape (a symlink or odd mode in place of `home`/`tmp`, extra entries). Creating
//! and removing three directories per call would add filesystem journal work that the audit
//! log's `fdatasync` then has to wait for (milliseconds on ext4); an empty directory that is
//! handed out again costs a few `getdents` calls. Nothing a command leaves survives its call.
//! Emptying and removing go through [`scratch_tree`], which copes with any depth (a command can
//! leave 30,000 nested directories) in a constant number of descriptors and never follows a
//! symlink; the root is a [`ServerRoot`], so a root left by a server that died is removed at
//! the next start.

use crate::scratch_tree::{self, root::ServerRoot};
use rustix::fs::{Dir, Mode, OFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Idle call directories kept for reuse; more are removed.
const MAX_IDLE: usize = 16;
/// Name prefix of a root: `runbox-scratch-PID-UNIQUE`.
const PREFIX: &str = "runbox-scratch-";
/// The two entries of a call directory.
const SUBDIRS: [&str; 2] = ["home", "tmp"];

/// The directory that holds every call's scratch directory; removed when dropped.
#[derive(Debug)]
pub struct ScratchRoot {
    root: ServerRoot,
    next: AtomicU64,
    idle: Mutex<Vec<Slot>>,
}

/// One call directory with its `home` and `tmp`.
#[derive(Debug)]
struct Slot {
    /// Its name in the root (`call-N`).
    name: String,
    path: PathBuf,
    dir: OwnedFd,
    owner: Option<(u32, u32)>,
}

/// One call's scratch directory, emptied (or removed) when dropped.
#[derive(Debug)]
pub struct CallScratch<'a> {
    root: &'a ScratchRoot,
    slot: Option<Slot>,
    /// `HOME` of the command (empty).
    pub home: PathBuf,
    /// `TMPDIR` of the command (empty).
    pub tmp: PathBuf,
}

impl ScratchRoot {
    /// Makes a fresh root in the system temp directory, after removing roots that servers
    /// which died without cleaning up (SIGKILL) left behind.
    ///
    /// # Errors
    /// When the root cannot be made, opened or locked.
    pub fn create() -> io::Result<Self> {
        Ok(Self {
            root: ServerRoot::create(PREFIX, 0o711)?,
            next: AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Where the root is.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// An empty call directory, owned by `owner` when given.
    ///
    /// # Errors
    /// When a new call directory cannot be made.
    pub fn call(&self, owner: Option<(u32, u32)>) -> io::Result<CallScratch<'_>> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let pos = idle.iter().position(|s| s.owner == owner);
            pos.map(|i| idle.swap_remove(i))
        };
        let slot = match reused {
            Some(s) => s,
            None => self.new_slot(owner)?,
        };
        Ok(CallScratch {
            root: self,
            home: slot.path.join("home"),
            tmp: slot.path.join("tmp"),
            slot: Some(slot),
        })
    }

    fn new_slot(&self, owner: Option<(u32, u32)>) -> io::Result<Slot> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("call-{n}");
        let path = self.path().join(&name);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let made = (|| {
            for sub in SUBDIRS {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(path.join(sub))?;
            }
            if let Some((uid, gid)) = owner {
                for p in [path.clone(), path.join("home"), path.join("tmp")] {
                    std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
                }
            }
            std::fs::File::open(&path).map(OwnedFd::from)
        })();
        match made {
            Ok(dir) => Ok(Slot {
                name,
                path,
                dir,
                owner,
            }),
            Err(e) => {
                self.remove(&name);
                Err(e)
            }
        }
    }

    /// Empties a used slot and keeps it, or removes it when it cannot be trusted as it is.
    fn give_back(&self, slot: Slot) {
        let kept = {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.len() < MAX_IDLE
        } && reset(&slot);
        if kept {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(slot);
        } else {
            let Slot { name, dir, .. } = slot;
            drop(dir);
            self.remove(&name);
        }
    }

    /// Removes the call directory `name` with everything a command left in it, however deep
    /// (never following its symlinks); a failure is logged.
    fn remove(&self, name: &str) {
        if let Err(e) = self.root.remove(name) {
            tracing::warn!(dir = %self.path().join(name).display(), "cannot remove a scratch directory: {e}");
        }
    }
}

/// Empties `home` and `tmp` and checks the slot still has exactly its original shape (two real
/// directories, mode 0700, the right owner, nothing else), all through the slot's descriptor.
/// `false`: discard it (also when anything fails).
fn reset(slot: &Slot) -> bool {
    if !shaped_as_made(slot.dir.as_fd(), slot.owner) || !only_home_and_tmp(slot.dir.as_fd()) {
        return false;
    }
    SUBDIRS.iter().all(|sub| {
        let opened = rustix::fs::openat(
            &slot.dir,
            *sub,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        // Not a directory (a symlink: ELOOP), or one the server cannot open: discard.
        opened.is_ok_and(|fd| {
            shaped_as_made(fd.as_fd(), slot.owner) && scratch_tree::empty_dir(fd.as_fd()).is_ok()
        })
    })
}

/// A directory of mode 0700 owned by `owner` (when given).
fn shaped_as_made(dir: BorrowedFd<'_>, owner: Option<(u32, u32)>) -> bool {
    rustix::fs::fstat(dir).is_ok_and(|st| {
        st.st_mode & 0o7777 == 0o700
            && owner.is_none_or(|(uid, gid)| st.st_uid == uid && st.st_gid == gid)
    })
}

/// Whether the call directory holds exactly `home` and `tmp` (read through its descriptor;
/// stops at the first other entry).
fn only_home_and_tmp(dir: BorrowedFd<'_>) -> bool {
    let Ok(mut entries) = Dir::read_from(dir) else {
        return false;
    };
    let mut seen = 0;
    while let Some(entry) = entries.read() {
        let Ok(entry) = entry else {
            return false;
        };
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if !SUBDIRS.iter().any(|s| s.as_bytes() == name) {
            return false;
        }
        seen += 1;
    }
    seen == SUBDIRS.len()
}

impl CallScratch<'_> {
    /// The open call directory, for the Landlock rule.
    pub fn dir(&self) -> Option<&OwnedFd> {
        self.slot.as_ref().map(|s| &s.dir)
    }
}

impl Drop for CallScratch<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.root.give_back(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_gets_an_empty_private_home() {
        let root = ScratchRoot::create().unwrap();
        let a = root.call(None).unwrap();
        let b = root.call(None).unwrap();
        assert_ne!(a.home, b.home, "concurrent calls share nothing");
        assert!(a.home.is_dir() && a.tmp.is_dir());
        std::fs::write(a.home.join("f"), "x").unwrap();
        std::fs::create_dir_all(a.tmp.join("d/e")).unwrap();
        std::os::unix::fs::symlink("/etc", a.tmp.join("link")).unwrap();
        let home = a.home.clone();
        drop(a);
        let c = root.call(None).unwrap();
        assert_eq!(c.home, home, "an emptied directory is reused");
        assert_eq!(std::fs::read_dir(&c.home).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(&c.tmp).unwrap().count(), 0);
        assert!(
            Path::new("/etc/passwd").exists(),
            "symlinks are removed, not followed"
        );
        let root_path = root.path().to_owned();
        drop((b, c));
        drop(root);
        assert!(!root_path.exists());
    }

    /// `depth` nested directories below `dir` (by descriptor; deeper than `PATH_MAX` allows by
    /// path), the deepest made unreadable and unwritable.
    fn nest(dir: &Path, depth: usize) {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut cur = rustix::fs::open(dir, flags, Mode::empty()).unwrap();
        for _ in 0..depth {
            rustix::fs::mkdirat(&cur, "d", Mode::RWXU).unwrap();
            cur = rustix::fs::openat(&cur, "d", flags, Mode::empty()).unwrap();
        }
        rustix::fs::mkdirat(&cur, "locked", Mode::empty()).unwrap();
        rustix::fs::fchmod(&cur, Mode::empty()).unwrap();
    }

    #[test]
    fn a_deep_tree_left_in_home_and_tmp_is_emptied_and_the_slot_reused() {
        let root = ScratchRoot::create().unwrap();
        let a = root.call(None).unwrap();
        nest(&a.home, 200);
        nest(&a.tmp, 200);
        std::os::unix::fs::symlink("/etc", a.tmp.join("etc")).unwrap();
        let home = a.home.clone();
        drop(a);
        let b = root.call(None).unwrap();
        assert_eq!(b.home, home, "emptied and reused");
        assert_eq!(std::fs::read_dir(&b.home).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(&b.tmp).unwrap().count(), 0);
        assert!(Path::new("/etc/passwd").exists());
        // A reshaped slot with a deep tree in it is removed whole.
        nest(&b.tmp, 200);
        std::fs::write(b.home.parent().unwrap().join("extra"), "x").unwrap();
        drop(b);
        assert!(!home.exists());
        let root_path = root.path().to_owned();
        let c = root.call(None).unwrap();
        nest(&c.tmp, 200);
        std::mem::forget(c); // still in use when the root goes (a leaked call)
        drop(root);
        assert!(!root_path.exists(), "the root goes with everything in it");
    }

    #[test]
    fn roots_of_dead_servers_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        let dead = temp.path().join(format!("{PREFIX}{}-x", i32::MAX));
        let alive = temp
            .path()
            .join(format!("{PREFIX}{}-x", std::process::id()));
        let other = temp.path().join("unrelated-1");
        for d in [&dead, &alive, &other] {
            std::fs::create_dir_all(d.join("call-0/home")).unwrap();
        }
        crate::scratch_tree::root::remove_stale(temp.path(), PREFIX);
        assert!(!dead.exists());
        assert!(alive.exists() && other.exists());
    }

    #[test]
    fn a_reshaped_directory_is_discarded() {
        let root = ScratchRoot::create().unwrap();
        let a = root.call(None).unwrap();
        let home = a.home.clone();
        std::fs::remove_dir(&a.home).unwrap();
        std::os::unix::fs::symlink("/etc", &a.home).unwrap();
        drop(a);
        let b = root.call(None).unwrap();
        assert_ne!(b.home, home);
        assert!(!home.exists() && std::fs::symlink_metadata(&home).is_err());
        assert!(Path::new("/etc/passwd").exists());
    }
}
