//! Per-call scratch directories: each native call gets a fresh, empty `HOME` and `TMPDIR` outside
//! the workspace, owned by the uid the command runs as, and removed when the call ends.
//!
//! They live under one root made at start in the system temp directory (mode 0711: the sandbox
//! uid can reach its own directory by path but cannot list the others). Landlock grants the
//! command read + write beneath its own call directory only.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory that holds every call's scratch directory; removed when dropped.
#[derive(Debug)]
pub struct ScratchRoot {
    path: PathBuf,
    next: AtomicU64,
}

/// One call's scratch directory, removed when dropped.
#[derive(Debug)]
pub struct CallScratch {
    path: PathBuf,
    /// The open directory, for the Landlock rule.
    pub dir: OwnedFd,
    /// `HOME` of the command (empty).
    pub home: PathBuf,
    /// `TMPDIR` of the command (empty).
    pub tmp: PathBuf,
}

impl ScratchRoot {
    /// Makes a fresh root in the system temp directory.
    pub fn create() -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "runbox-scratch-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::DirBuilder::new().mode(0o711).create(&path)?;
        // The umask may have narrowed the mode.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
        Ok(Self {
            path,
            next: AtomicU64::new(0),
        })
    }

    /// Where the root is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh call directory with empty `home` and `tmp`, owned by `owner` when given.
    pub fn call(&self, owner: Option<(u32, u32)>) -> io::Result<CallScratch> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.path.join(format!("call-{n}"));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        // From here on a failure must still remove the directory.
        let mut scratch = CallScratch {
            dir: std::fs::File::open(&path)?.into(),
            home: path.join("home"),
            tmp: path.join("tmp"),
            path,
        };
        for p in [&scratch.home, &scratch.tmp] {
            std::fs::DirBuilder::new().mode(0o700).create(p)?;
        }
        if let Some((uid, gid)) = owner {
            for p in [&scratch.path, &scratch.home, &scratch.tmp] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))?;
            }
        }
        scratch.dir = std::fs::File::open(&scratch.path)?.into();
        Ok(scratch)
    }
}

impl Drop for ScratchRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Drop for CallScratch {
    fn drop(&mut self) {
        // remove_dir_all does not follow symlinks the command may have planted.
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), "cannot remove a scratch directory: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_directories_are_fresh_and_removed() {
        let root = ScratchRoot::create().unwrap();
        let a = root.call(None).unwrap();
        let b = root.call(None).unwrap();
        assert_ne!(a.home, b.home);
        assert!(a.home.is_dir() && a.tmp.is_dir());
        std::fs::write(a.home.join("f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", a.tmp.join("link")).unwrap();
        let home = a.home.clone();
        drop(a);
        assert!(!home.exists());
        assert!(Path::new("/etc/passwd").exists());
        let root_path = root.path().to_owned();
        drop((b, root));
        assert!(!root_path.exists());
    }
}
