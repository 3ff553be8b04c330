//! One directory per server in the system temp directory (`PREFIX` + `PID-UNIQUE`) that holds
//! its calls' scratch directories, removed with everything in it when the server ends, and at
//! the next start when the server died first (SIGKILL, OOM, power loss).
//!
//! A server holds an exclusive `flock` on its root for its whole life. A later server removes a
//! root of its own uid with a matching prefix only when that lock is free (the owner is gone: the
//! kernel drops the lock when the last descriptor closes) and the PID in its name is not a live
//! process that may own it. The lock keeps a live root safe from a server in another PID
//! namespace sharing the temp directory; the PID keeps the roots of older servers, which took no
//! lock, safe. A PID that the kernel handed to another process after the owner died does not
//! keep a root: the name's UUIDv7 says when the root was made, and a process that started after
//! that (more than a second later, the precision of the boot time) cannot be its owner. Only
//! where the start time cannot be read is a live PID taken at its word.
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
use std::time::Duration;

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
        let Some((pid, made)) = owner_in_name(&name, prefix) else {
            continue;
        };
        if may_own(pid, made) {
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

/// The PID in a root's name `PREFIX` + `PID-UUID`, and when the root was made (the UUIDv7's
/// time) where the name says it.
fn owner_in_name(name: &OsString, prefix: &str) -> Option<(u32, Option<Duration>)> {
    let (pid, rest) = name.to_str()?.strip_prefix(prefix)?.split_once('-')?;
    let made = uuid::Uuid::try_parse(rest)
        .ok()
        .and_then(|u| u.get_timestamp())
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            Duration::new(secs, nanos)
        });
    Some((pid.parse().ok()?, made))
}

/// Slack for comparing a process's start time (boot time in whole seconds plus clock ticks)
/// with a root's UUIDv7 time (milliseconds).
const START_TIME_SLACK: Duration = Duration::from_secs(2);

/// Whether the live process `pid`, if any, may be the server that made a root at `made`
/// (Unix time): false when no such process exists or it started after the root was made.
fn may_own(pid: u32, made: Option<Duration>) -> bool {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    match (made, started_at(&stat, boot_time())) {
        (Some(made), Some(started)) => started <= made + START_TIME_SLACK,
        _ => true,
    }
}

/// When the process whose `/proc/PID/stat` is `stat` started (Unix time), given the boot time.
fn started_at(stat: &str, boot: Option<Duration>) -> Option<Duration> {
    // Field 22 (starttime, clock ticks since boot); fields are counted after the command name,
    // which is in parentheses and may hold spaces and parentheses itself.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let per_second = rustix::param::clock_ticks_per_second();
    if per_second == 0 {
        return None;
    }
    let since_boot = Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second);
    boot?.checked_add(since_boot)
}

/// The boot time (Unix time, whole seconds) from `/proc/stat`.
fn boot_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs = stat.lines().find_map(|l| l.strip_prefix("btime "))?;
    Some(Duration::from_secs(secs.trim().parse().ok()?))
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
    fn the_pid_and_the_time_are_read_from_the_name() {
        let owner = |n: &str| owner_in_name(&OsString::from(n), "runbox-wasi-");
        assert_eq!(owner("runbox-wasi-42-0193abc"), Some((42, None)));
        assert_eq!(
            owner("runbox-wasi-42-01a250b347607426bf336e2ebf5c93a3"),
            Some((42, Some(Duration::from_millis(0x01a2_50b3_4760))))
        );
        assert_eq!(owner("runbox-wasi-x-1"), None);
        assert_eq!(owner("runbox-call-42-1"), None);
        assert_eq!(owner("runbox-wasi-42"), None);
        assert_eq!(owner("runbox-wasi-"), None);
    }

    /// The CI failure this guards against: a server was killed, its PID went to an unrelated
    /// process (a fork bomb in another test wrapped the PID counter), and the next server kept
    /// the dead server's roots.
    #[test]
    fn a_pid_reused_after_the_root_was_made_does_not_keep_it() {
        let me = std::process::id();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!(may_own(me, Some(now)), "started before its root was made");
        assert!(
            may_own(me, None),
            "no time in the name: the PID is taken at its word"
        );
        assert!(
            !may_own(me, Some(Duration::from_secs(1_000_000))),
            "this process started long after 1970-01-12"
        );
        assert!(!may_own(i32::MAX as u32, Some(now)), "no such process");

        let temp = tempfile::tempdir().unwrap();
        let made_long_ago =
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, 1_000_000, 0));
        let reused = temp
            .path()
            .join(format!("{TEST_PREFIX}{me}-{}", made_long_ago.simple()));
        let mine = temp.path().join(format!(
            "{TEST_PREFIX}{me}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(reused.join("call-0")).unwrap();
        std::fs::create_dir_all(mine.join("call-0")).unwrap();
        remove_stale(temp.path(), TEST_PREFIX);
        assert!(
            !reused.exists(),
            "the PID's process is younger than the root"
        );
        assert!(mine.exists(), "the PID's process may own it");
    }

    #[test]
    fn the_start_time_is_read_after_the_command_name() {
        let boot = Some(Duration::from_secs(1_000));
        let hz = rustix::param::clock_ticks_per_second();
        let stat = format!(
            "7 (a) b (c)) S 1 7 7 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {} 0 0",
            3 * hz
        );
        assert_eq!(started_at(&stat, boot), Some(Duration::from_secs(1_003)));
        assert_eq!(started_at("7 (a) S 1", boot), None);
        assert_eq!(started_at(&stat, None), None);
    }
}
