//! One directory per server in the system temp directory (`PREFIX` + `PID-UNIQUE`) that holds
//! its calls' scratch directories, removed with everything in it when the server ends, and at
//! the next start when the server died first (SIGKILL, OOM, power loss).
//!
//! A server holds an exclusive `flock` on its root for its whole life. A later server removes a
//! root of its own uid with a matching prefix only when that lock is free (the owner is gone: the
//! kernel drops the lock when the last descriptor closes) and no process with the PID in its
//! name is alive here. The lock keeps a live root safe from a server in another PID namespace
//! sharing the temp directory; the PID keeps the roots of older servers, which took no lock,
//! safe. A PID reused by an unrelated process only delays the clean-up to a later start.
//!
//! It must not remove anything that is not a root of its own uid and prefix, nor follow a
//! symlink planted in the temp directory.

use super::{DIR_FLAGS, TreeError, remove_tree};
use rustix::fs::{FlockOperation, Mode};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A server's root directory of scratch directories, locked while it lives, removed on drop.
#[derive(Debug)]
pub struct ServerRoot {
    path: PathBuf,
    /// Open (and locked) for the server's whole life.
    dir: OwnedFd,
}

impl ServerRoot {
    /// Removes the roots with `prefix` that dead servers left in the system temp directory,
    /// then makes this server's root there with `mode` (not narrowed by the umask).
    ///
    /// # Errors
    /// When the directory cannot be made, opened or locked.
    pub fn create(prefix: &str, mode: u32) -> io::Result<Self> {
        let temp = std::env::temp_dir();
        remove_stale(&temp, prefix);
        let path = temp.join(format!(
            "{prefix}{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::DirBuilder::new().mode(mode).create(&path)?;
        let made = (|| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            let dir = rustix::fs::open(&path, DIR_FLAGS, Mode::empty())?;
            rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive)?;
            Ok::<_, io::Error>(dir)
        })();
        match made {
            Ok(dir) => Ok(Self { path, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// Where the root is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open root, for `*at` calls on the call directories.
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Removes the entry `name` of the root, with everything beneath it.
    ///
    /// # Errors
    /// As [`remove_tree`].
    pub fn remove(&self, name: &str) -> Result<(), TreeError> {
        remove_tree(self.dir.as_fd(), name.as_ref())
    }
}

impl Drop for ServerRoot {
    fn drop(&mut self) {
        if let Err(e) = super::remove_path(&self.path) {
            tracing::warn!(dir = %self.path.display(), "cannot remove the scratch root: {e}");
        }
    }
}

/// Removes the roots with `prefix` in `temp` whose server is gone (see the module
/// documentation); failures are logged, never fatal.
pub fn remove_stale(temp: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    let Ok(temp_dir) = rustix::fs::open(
        temp,
        DIR_FLAGS.difference(rustix::fs::OFlags::NOFOLLOW),
        Mode::empty(),
    ) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = pid_in_name(&name, prefix) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Held until the removal is done, so two starting servers do not remove it together.
        // `O_NOFOLLOW | O_DIRECTORY`: a planted symlink or file is not opened at all.
        let Ok(dir) = rustix::fs::openat(&temp_dir, name.as_os_str(), DIR_FLAGS, Mode::empty())
        else {
            continue;
        };
        if rustix::fs::fstat(&dir).map_or(true, |s| s.st_uid != me) {
            continue;
        }
        if rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a live server (in another PID namespace) holds it
        }
        if let Err(e) = remove_tree(temp_dir.as_fd(), &name) {
            tracing::warn!(dir = %entry.path().display(), "cannot remove a dead server's scratch root: {e}");
        }
        drop(dir);
    }
}

/// The PID in a root's name `PREFIX` + `PID-...`.
fn pid_in_name(name: &OsString, prefix: &str) -> Option<u32> {
    name.to_str()?
        .strip_prefix(prefix)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const TEST_PREFIX: &str = "runbox-roottest-";

    fn try_lock(path: &Path) -> bool {
        let dir = rustix::fs::open(path, DIR_FLAGS, Mode::empty()).unwrap();
        rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_ok()
    }

    #[test]
    fn a_root_is_locked_while_it_lives_and_removed_on_drop() {
        let root = ServerRoot::create(TEST_PREFIX, 0o711).unwrap();
        let path = root.path().to_owned();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o711);
        assert!(!try_lock(&path), "held by the server");
        std::fs::create_dir_all(path.join("call-0/tmp/a/b")).unwrap();
        drop(root);
        assert!(std::fs::symlink_metadata(&path).is_err());
    }

    #[test]
    fn only_roots_of_dead_servers_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        let root = |pid: &str| temp.path().join(format!("{TEST_PREFIX}{pid}-x"));
        let dead = root(&i32::MAX.to_string());
        let alive = root(&std::process::id().to_string());
        let locked = temp.path().join(format!("{TEST_PREFIX}{}-y", i32::MAX));
        let other = temp.path().join(format!("runbox-other-{}-x", i32::MAX));
        for d in [&dead, &alive, &locked, &other] {
            std::fs::create_dir_all(d.join("call-0/home/deep")).unwrap();
        }
        std::os::unix::fs::symlink(outside.path().join("precious"), dead.join("call-0/link"))
            .unwrap();
        let planted = root(&format!("{}-link", i32::MAX - 1));
        std::os::unix::fs::symlink(outside.path(), &planted).unwrap();
        // A live server in another PID namespace holds its lock.
        let held = rustix::fs::open(&locked, DIR_FLAGS, Mode::empty()).unwrap();
        rustix::fs::flock(&held, FlockOperation::NonBlockingLockExclusive).unwrap();

        remove_stale(temp.path(), TEST_PREFIX);
        assert!(!dead.exists(), "a dead server's root is removed");
        for kept in [&alive, &locked, &other] {
            assert!(kept.join("call-0/home/deep").is_dir(), "{}", kept.display());
        }
        assert!(planted.is_symlink(), "a symlink is not a root");
        assert_eq!(
            std::fs::read(outside.path().join("precious")).unwrap(),
            b"keep"
        );
        drop(held);
        remove_stale(temp.path(), TEST_PREFIX);
        assert!(!locked.exists(), "removed once its lock is free");
    }

    #[test]
    fn the_pid_is_read_from_the_name() {
        let pid = |n: &str| pid_in_name(&OsString::from(n), "runbox-wasi-");
        assert_eq!(pid("runbox-wasi-42-0193abc"), Some(42));
        assert_eq!(pid("runbox-wasi-x-1"), None);
        assert_eq!(pid("runbox-call-42-1"), None);
        assert_eq!(pid("runbox-wasi-"), None);
    }
}
