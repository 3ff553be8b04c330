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

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Idle call directories kept for reuse; more are removed.
const MAX_IDLE: usize = 16;
/// Name prefix of a root: `runbox-scratch-PID-UNIQUE`.
const PREFIX: &str = "runbox-scratch-";

/// Removes roots whose server process is gone, owned by this user.
fn remove_stale_roots(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let ours =
            std::fs::symlink_metadata(entry.path()).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The directory that holds every call's scratch directory; removed when dropped.
#[derive(Debug)]
pub struct ScratchRoot {
    path: PathBuf,
    next: AtomicU64,
    idle: Mutex<Vec<Slot>>,
}

/// One call directory with its `home` and `tmp`.
#[derive(Debug)]
struct Slot {
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
    pub fn create() -> io::Result<Self> {
        remove_stale_roots(&std::env::temp_dir());
        let path = std::env::temp_dir().join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::DirBuilder::new().mode(0o711).create(&path)?;
        // The umask may have narrowed the mode.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
        Ok(Self {
            path,
            next: AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Where the root is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An empty call directory, owned by `owner` when given.
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
        let path = self.path.join(format!("call-{n}"));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        let made = (|| {
            for sub in ["home", "tmp"] {
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
            Ok(dir) => Ok(Slot { path, dir, owner }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(e)
            }
        }
    }

    /// Empties a used slot and keeps it, or removes it when it cannot be trusted as it is.
    fn give_back(&self, slot: Slot) {
        let kept = {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.len() < MAX_IDLE
        } && reset(&slot).unwrap_or(false);
        if kept {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(slot);
        } else if let Err(e) = std::fs::remove_dir_all(&slot.path) {
            // remove_dir_all does not follow symlinks the command may have planted.
            tracing::warn!(dir = %slot.path.display(), "cannot remove a scratch directory: {e}");
        }
    }
}

/// Empties `home` and `tmp` and checks the slot still has exactly its original shape (two real
/// directories, mode 0700, the right owner, nothing else). `Ok(false)`: discard it.
fn reset(slot: &Slot) -> io::Result<bool> {
    let mut names: Vec<_> = std::fs::read_dir(&slot.path)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    if names != ["home", "tmp"] {
        return Ok(false);
    }
    for sub in ["home", "tmp"] {
        let p = slot.path.join(sub);
        let meta = std::fs::symlink_metadata(&p)?;
        let owner_ok = slot
            .owner
            .is_none_or(|(uid, gid)| meta.uid() == uid && meta.gid() == gid);
        if !meta.is_dir() || meta.mode() & 0o7777 != 0o700 || !owner_ok {
            return Ok(false);
        }
        for entry in std::fs::read_dir(&p)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    let meta = std::fs::symlink_metadata(&slot.path)?;
    Ok(meta.mode() & 0o7777 == 0o700)
}

impl CallScratch<'_> {
    /// The open call directory, for the Landlock rule.
    pub fn dir(&self) -> Option<&OwnedFd> {
        self.slot.as_ref().map(|s| &s.dir)
    }
}

impl Drop for ScratchRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
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
        remove_stale_roots(temp.path());
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
