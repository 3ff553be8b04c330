//! The reaper's view of its call's tree: every process below it (it is their child subreaper,
//! so orphans come back to it), how many threads they hold, and killing them all until none is
//! left.
//!
//! Runs only in the reaper process (single-threaded, outside the command's sandbox). It must
//! never signal a process that is not of the call: direct children are signalled by pid (an
//! unreaped child's pid cannot be reused); deeper ones through a pidfd, and only after the
//! pidfd is open and `/proc` still shows the expected parent and the sandbox uid (so a pid
//! recycled between the walk and the kill is left alone). Every walk is bounded
//! ([`MAX_WALK`]).

use crate::native::reap::{is_alive, parse_pids};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;

/// Most processes one walk visits.
pub const MAX_WALK: usize = 100_000;

/// One process below the reaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its pid.
    pub pid: Pid,
    /// The process it was found under (the reaper for a direct child).
    pub parent: Pid,
    /// Its threads (at least 1).
    pub threads: u64,
}

/// Every process below `root`, breadth-first through `/proc/PID/task/TID/children`.
pub fn walk(root: Pid) -> Vec<Member> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([root]);
    while let Some(p) = queue.pop_front() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in parse_pids(&text) {
                if out.len() >= MAX_WALK {
                    return out;
                }
                if seen.insert(child) {
                    out.push(Member {
                        pid: child,
                        parent: p,
                        threads: threads_of(child),
                    });
                    queue.push_back(child);
                }
            }
        }
    }
    out
}

/// Threads of `pid` (1 when it cannot be read: it is gone or going).
fn threads_of(pid: Pid) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(1, |d| d.count().max(1) as u64)
}

/// Processes and threads below `root`.
pub fn tasks(root: Pid) -> u64 {
    walk(root).iter().map(|m| m.threads).sum()
}

/// `(ppid, real uid)` of a process, from `/proc/PID/status`.
fn parent_and_uid(pid: Pid) -> Option<(i32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_ascii_whitespace().next())
            .map(str::to_owned)
    };
    Some((field("PPid:")?.parse().ok()?, field("Uid:")?.parse().ok()?))
}

/// SIGKILLs `m` if it is still what the walk saw; whether a live process was signalled.
///
/// A process that looks like a zombie is signalled too: a thread-group leader whose main thread
/// called `pthread_exit` shows as `Z` while its other threads run on, and `wait` does not
/// return it until they end. SIGKILL to its pid reaches the whole thread group; for a real
/// zombie it does nothing.
fn kill_member(me: Pid, m: &Member, uid: u32) -> bool {
    let live = is_alive(m.pid);
    if m.parent == me {
        return nix::sys::signal::kill(m.pid, Signal::SIGKILL).is_ok() && live;
    }
    let Ok(fd) = crate::native::spawn::pidfd_open(m.pid) else {
        return false;
    };
    // From here the pidfd names one process for good; check that process is the one walked.
    if parent_and_uid(m.pid) != Some((m.parent.as_raw(), uid)) {
        return false;
    }
    // SAFETY: pidfd_send_signal on a pidfd this function owns (nix has no wrapper).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0 && live
}

/// What a reaped child left: its pid, wait status and CPU seconds.
pub type Reaped = (Pid, i32, f64);

/// Reaps one child of this process without blocking; `Ok(None)` when none is ready.
pub fn reap_one() -> Result<Option<Reaped>, Errno> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 for any child of this (single-threaded) process.
        let rc = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
        if rc > 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return Ok(Some((
                Pid::from_raw(rc),
                status,
                secs(usage.ru_utime) + secs(usage.ru_stime),
            )));
        }
        if rc == 0 {
            return Ok(None);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// Pause between kill passes that reaped nothing.
const KILL_PASS_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// Kills every process below this one until it has no child left (ECHILD: orphans come to it,
/// so the tree is empty), passing each reaped child to `on_reaped`. Returns how many live
/// processes it signalled. Each pass kills every process the walk finds, then reaps what has
/// gone without blocking: a blocking `wait` could sleep for good on a child whose death needs
/// another signal (a leader whose other threads live on), so a pass that reaped nothing pauses
/// [`KILL_PASS_PAUSE`] and walks and kills again. It ends: a killed process forks no more.
pub fn kill_all(uid: u32, mut on_reaped: impl FnMut(Reaped)) -> u32 {
    let me = nix::unistd::getpid();
    let mut signalled = BTreeSet::new();
    let mut count = 0u32;
    loop {
        for m in walk(me) {
            if kill_member(me, &m, uid) && signalled.len() < MAX_WALK && signalled.insert(m.pid) {
                count = count.saturating_add(1);
            }
        }
        let mut reaped = false;
        loop {
            match reap_one() {
                Ok(Some(r)) => {
                    reaped = true;
                    on_reaped(r);
                }
                Ok(None) => break,
                Err(_) => return count,
            }
        }
        if !reaped {
            std::thread::sleep(KILL_PASS_PAUSE);
        }
    }
}
