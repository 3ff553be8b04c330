//! Per-call cgroups (cgroup v2), where the host delegates a cgroup to runbox: each native call
//! gets its own cgroup with `memory.max` (the call's whole tree, resident memory, so runtimes
//! that reserve large address ranges still start), `pids.max` (a true per-call count of
//! processes and threads, where `RLIMIT_NPROC` counts per uid) and `memory.oom.group` (an
//! out-of-memory kill takes the whole tree); `cgroup.kill` kills everything in it, and an
//! `oom_kill` in its `memory.events` makes the call's result MEMORY_LIMIT.
//!
//! Where the cgroups come from (`sandbox.cgroup`):
//! - `"auto"` (the default): runbox's own cgroup on the cgroup2 hierarchy, when it offers the
//!   `memory` and `pids` controllers, is writable, and holds no process but runbox (a systemd
//!   unit with `Delegate=yes`, a container with a cgroup namespace of its own). runbox moves
//!   itself into a leaf `runbox-server` (a cgroup with processes cannot enable controllers for
//!   its children) and enables both controllers for the calls beside it.
//! - a directory: a cgroup the operator delegated; runbox only creates call cgroups inside it.
//! - `"off"`: none; the rlimits and the tree isolation are all there is.
//!
//! Without one, `doctor` says why and what is used instead. Nothing here runs a command: it
//! reads and writes cgroup files only, under the one directory it was given (so the tests run
//! it against a fake tree), and it must never write outside that directory.

use crate::limits::Limits;
use crate::policy::native::CgroupSetting;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of a call cgroup starts with this, then the server's pid and the call's number.
pub const CALL_PREFIX: &str = "runbox-call-";
/// The leaf runbox moves itself into in the `auto` mode.
pub const SERVER_LEAF: &str = "runbox-server";
/// The controllers a call cgroup needs.
const CONTROLLERS: [&str; 2] = ["memory", "pids"];
/// How long removing a call cgroup waits for its processes to be gone.
const REMOVE_TRIES: u32 = 50;

/// Why there are no per-call cgroups here; `doctor` prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CgroupUnavailable {
    /// The policy turned them off.
    #[error("sandbox.cgroup = \"off\"")]
    Off,
    /// No cgroup2 file system is mounted.
    #[error("no cgroup2 file system is mounted")]
    NotMounted,
    /// runbox's own cgroup on the unified hierarchy could not be found.
    #[error("runbox's cgroup v2 path is not in /proc/self/cgroup")]
    NoOwnCgroup,
    /// The controllers are not offered (bound to cgroup v1, or not delegated).
    #[error(
        "{}: the memory and pids controllers are not available here (cgroup.controllers: {have:?}; a cgroup v1 or hybrid host keeps them on v1)",
        dir.display()
    )]
    Controllers {
        /// The cgroup directory.
        dir: PathBuf,
        /// What it offers.
        have: String,
    },
    /// Other processes share runbox's cgroup, so it cannot be split into server and calls.
    #[error(
        "{}: other processes share runbox's cgroup; delegate one to runbox alone (systemd Delegate=yes) or set sandbox.cgroup to a delegated directory",
        dir.display()
    )]
    Shared {
        /// The cgroup directory.
        dir: PathBuf,
    },
    /// A configured directory that is not on a cgroup2 file system (a plain directory laid out
    /// like a cgroup would enforce nothing).
    #[error(
        "{}: not on a cgroup2 file system (no cgroup2 mount in /proc/self/mounts holds it); name a cgroup v2 directory delegated to runbox",
        dir.display()
    )]
    NotCgroup2 {
        /// The directory.
        dir: PathBuf,
    },
    /// A cgroup file could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupUnavailable + '_ {
    move |e| CgroupUnavailable::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// What the process sees of the cgroup hierarchy: `/proc/self/mounts`, `/proc/self/cgroup` and
/// its pid (read from the system by [`Host::current`], given by the tests).
#[derive(Debug, Clone)]
pub struct Host {
    /// The text of `/proc/self/mounts`.
    pub mounts: String,
    /// The text of `/proc/self/cgroup`.
    pub own: String,
    /// runbox's pid.
    pub pid: u32,
}

impl Host {
    /// This process's view.
    pub fn current() -> Self {
        Self {
            mounts: std::fs::read_to_string("/proc/self/mounts").unwrap_or_default(),
            own: std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            pid: std::process::id(),
        }
    }

    /// Whether `dir` is on a cgroup2 file system: on the device of one of the cgroup2 mounts.
    fn holds_cgroup2(&self, dir: &Path) -> Result<bool, CgroupUnavailable> {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(dir).map_err(io(dir))?.dev();
        Ok(self.mounts.lines().any(|l| {
            let mut f = l.split_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some(_), Some(at), Some("cgroup2")) => {
                    std::fs::metadata(at).is_ok_and(|m| m.dev() == dev)
                }
                _ => false,
            }
        }))
    }

    /// The first cgroup2 mount point.
    fn mount(&self) -> Option<PathBuf> {
        self.mounts.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
            (kind == "cgroup2").then(|| PathBuf::from(at))
        })
    }

    /// runbox's cgroup on the unified hierarchy (`0::/PATH`), relative.
    fn own_path(&self) -> Option<PathBuf> {
        self.own.lines().find_map(|l| {
            let rest = l.strip_prefix("0::/")?;
            Some(PathBuf::from(rest.trim_end()))
        })
    }
}

/// Where this server makes its call cgroups.
#[derive(Debug)]
pub struct CallCgroups {
    parent: PathBuf,
    pid: u32,
    next: AtomicU64,
}

/// Whether `dir` offers every controller of [`CONTROLLERS`] in `file`.
fn offers(dir: &Path, file: &str) -> Result<bool, CgroupUnavailable> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    Ok(CONTROLLERS
        .iter()
        .all(|c| text.split_whitespace().any(|w| w == *c)))
}

/// Writes `text` to an existing cgroup file (created in a fake tree), without truncating.
fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?
        .write_all(text.as_bytes())
}

impl CallCgroups {
    /// Sets up per-call cgroups as `setting` says (in the `auto` mode moving runbox into its
    /// leaf), or says why there are none.
    pub fn establish(setting: &CgroupSetting, host: &Host) -> Result<Self, CgroupUnavailable> {
        let parent = Self::parent_for(setting, host, true)?;
        let cgroups = Self {
            parent,
            pid: host.pid,
            next: AtomicU64::new(0),
        };
        cgroups.remove_stale();
        Ok(cgroups)
    }

    /// Where call cgroups would be made, found without changing anything (for `doctor`).
    pub fn assess(setting: &CgroupSetting, host: &Host) -> Result<PathBuf, CgroupUnavailable> {
        Self::parent_for(setting, host, false)
    }

    fn parent_for(
        setting: &CgroupSetting,
        host: &Host,
        act: bool,
    ) -> Result<PathBuf, CgroupUnavailable> {
        match setting {
            CgroupSetting::Off => Err(CgroupUnavailable::Off),
            CgroupSetting::Dir(dir) => {
                if !host.holds_cgroup2(dir)? {
                    return Err(CgroupUnavailable::NotCgroup2 { dir: dir.clone() });
                }
                Self::delegated(dir, act)
            }
            CgroupSetting::Auto => Self::split_own(host, act),
        }
    }

    /// A directory the operator delegated: both controllers offered, and (when `act`) enabled
    /// for its children.
    fn delegated(dir: &Path, act: bool) -> Result<PathBuf, CgroupUnavailable> {
        if !offers(dir, "cgroup.controllers")? {
            let have = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            return Err(CgroupUnavailable::Controllers {
                dir: dir.to_owned(),
                have: have.trim().to_owned(),
            });
        }
        if act && !offers(dir, "cgroup.subtree_control")? {
            let path = dir.join("cgroup.subtree_control");
            write_file(&path, "+memory +pids").map_err(io(&path))?;
        }
        Ok(dir.to_owned())
    }

    /// runbox's own cgroup, split (when `act`) into a leaf for runbox and room for the calls.
    fn split_own(host: &Host, act: bool) -> Result<PathBuf, CgroupUnavailable> {
        let mount = host.mount().ok_or(CgroupUnavailable::NotMounted)?;
        let own = mount.join(host.own_path().ok_or(CgroupUnavailable::NoOwnCgroup)?);
        let leaf = own.join(SERVER_LEAF);
        let procs_of = |dir: &Path| -> Result<Vec<u32>, CgroupUnavailable> {
            let path = dir.join("cgroup.procs");
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            Ok(text
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect())
        };
        // Already split by this process (the leaf is where it lives): nothing to do.
        if own.file_name().is_some_and(|n| n == SERVER_LEAF) {
            let parent = own.parent().map(Path::to_path_buf).unwrap_or(own);
            return Self::delegated(&parent, act);
        }
        if !offers(&own, "cgroup.controllers")? {
            let have = std::fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
            return Err(CgroupUnavailable::Controllers {
                dir: own,
                have: have.trim().to_owned(),
            });
        }
        if procs_of(&own)?.iter().any(|p| *p != host.pid) {
            return Err(CgroupUnavailable::Shared { dir: own });
        }
        if !act {
            return Ok(own);
        }
        match std::fs::create_dir(&leaf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&leaf)(e)),
        }
        let procs = leaf.join("cgroup.procs");
        write_file(&procs, &host.pid.to_string()).map_err(io(&procs))?;
        Self::delegated(&own, true)
    }

    /// Removes the (empty) call cgroups a killed server left, best effort.
    fn remove_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.parent) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(CALL_PREFIX) {
                let _ = remove(&e.path(), 1);
            }
        }
    }

    /// The directory call cgroups are made in.
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// Makes one call's cgroup with its limits set.
    pub fn create(&self, limits: &Limits) -> std::io::Result<CallCgroup> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.parent.join(format!("{CALL_PREFIX}{}-{n}", self.pid));
        std::fs::create_dir(&dir)?;
        let mut call = CallCgroup {
            procs: None,
            dir: dir.clone(),
        };
        write_file(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
        write_file(&dir.join("pids.max"), &limits.processes.to_string())?;
        // Best effort: swap accounting may be off (no file), and older kernels lack the group
        // kill; memory.max and pids.max are what must hold.
        let _ = write_file(&dir.join("memory.swap.max"), "0");
        let _ = write_file(&dir.join("memory.oom.group"), "1");
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("cgroup.procs"))?;
        call.procs = Some(procs);
        Ok(call)
    }
}

/// One call's cgroup: the command's pid is written to [`CallCgroup::procs`] before it runs;
/// dropped, it kills what is left in it and removes it.
#[derive(Debug)]
pub struct CallCgroup {
    dir: PathBuf,
    procs: Option<std::fs::File>,
}

impl CallCgroup {
    /// `cgroup.procs`, open for writing: the spawner writes the child's pid to it.
    pub fn procs(&self) -> Option<BorrowedFd<'_>> {
        self.procs.as_ref().map(AsFd::as_fd)
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills every process in it (`cgroup.kill`), best effort.
    pub fn kill(&self) {
        let _ = write_file(&self.dir.join("cgroup.kill"), "1");
    }

    /// Whether the kernel killed a process of it for going over `memory.max`.
    pub fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.dir.join("memory.events"))
            .map(|t| oom_kills(&t) > 0)
            .unwrap_or(false)
    }
}

impl Drop for CallCgroup {
    fn drop(&mut self) {
        self.procs = None;
        self.kill();
        if let Err(e) = remove(&self.dir, REMOVE_TRIES) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove a call cgroup");
        }
    }
}

/// `oom_kill N` of a `memory.events` text (0 when absent or malformed).
pub fn oom_kills(events: &str) -> u64 {
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Removes a cgroup directory, retrying while its last processes are being torn down. In a
/// real cgroup the interface files vanish with the directory; in a fake tree they are removed
/// first (only regular files, never a subdirectory).
fn remove(dir: &Path, tries: u32) -> std::io::Result<()> {
    let mut last = Ok(());
    for i in 0..tries.max(1) {
        last = std::fs::remove_dir(dir);
        match &last {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                remove_plain_files(dir);
            }
            Err(_) => {}
        }
        if i + 1 < tries {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    last
}

/// Regular files directly in `dir` (a fake tree's interface files; cgroupfs refuses unlink).
fn remove_plain_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
