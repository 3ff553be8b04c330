//! Waiting for a native command and killing its whole tree.
//!
//! With namespaces the command is PID 1 of its own PID namespace: killing it makes the kernel
//! kill every other process in the namespace, however it detached (`setsid`, double fork), and
//! its exit is only reported once they are all gone. In the reaper mode the server's child is
//! the call's reaper ([`reaper`](super::reaper)): a kill is a byte on its control pipe, and its
//! exit (after it has emptied the tree) carries the command's status in its report. Before a
//! kill the tree is walked through `/proc/PID/task/TID/children` to count what is killed.
//! Without either (only when the policy allows running unconfined) the session's process group
//! and every descendant found by the walk are killed; a process that was re-parented away
//! escapes that, which `runbox doctor` reports.
//!
//! [`Sandboxed`] owns the child until it is reaped: dropping it early (a cancelled task) still
//! kills and reaps the tree, so no call leaves a process or a zombie behind.

use super::reaper::wire::{REPORT_BYTES, Report};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;

/// Most processes a walk visits; a tree larger than this is killed all the same (the namespace
/// goes with its PID 1) but counted only this far.
const MAX_WALK: usize = 100_000;

/// How a reaped command ended, from `wait4`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exit {
    /// The raw wait status.
    pub status: i32,
    /// User + system CPU seconds of the process (and the children it waited for).
    pub cpu_seconds: f64,
    /// The reaper killed the tree for holding more processes and threads than allowed.
    pub over_process_limit: bool,
}

impl Exit {
    /// The exit code, when it exited by itself.
    pub fn code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }

    /// The signal that killed it, if one did.
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

/// What holds the tree of a [`Sandboxed`] together.
#[derive(Debug)]
pub enum Holder {
    /// The child is PID 1 of its own PID namespace.
    Namespace,
    /// The child is the call's reaper.
    Reaper {
        /// Write end of its control pipe (`None` once closed).
        control: Option<OwnedFd>,
        /// Read end of its report pipe.
        report: OwnedFd,
    },
    /// Nothing: the command's process group and the walk, best effort.
    Session,
}

/// A running native command, killed and reaped on drop if nobody reaped it.
#[derive(Debug)]
pub struct Sandboxed {
    pid: Pid,
    pidfd: AsyncFd<OwnedFd>,
    holder: Holder,
    reaped: bool,
}

impl Sandboxed {
    /// Takes ownership of a cloned child (the command, or its reaper).
    pub fn new(pid: Pid, pidfd: OwnedFd, holder: Holder) -> std::io::Result<Self> {
        Ok(Self {
            pid,
            // SAFETY: the AsyncFd owns the pidfd and never closes or replaces it while
            // registered.
            pidfd: unsafe { AsyncFd::register(pidfd)? },
            holder,
            reaped: false,
        })
    }

    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits until it exits and reaps it. With namespaces, everything else in its namespace is
    /// dead by then too; with a reaper, the tree is empty and the exit is the command's, from
    /// the reaper's report.
    pub async fn wait(&mut self) -> std::io::Result<Exit> {
        loop {
            // Clear the readiness before looking, so an exit right after the look still wakes.
            self.pidfd.readable().await?.clear_ready();
            if let Some(exit) = self.try_reap()? {
                return self.reported(exit);
            }
        }
    }

    /// The command's exit: `own` unless a reaper reported it.
    fn reported(&self, own: Exit) -> std::io::Result<Exit> {
        let Holder::Reaper { report, .. } = &self.holder else {
            return Ok(own);
        };
        let bytes = super::reaper::launch::read_full(report, REPORT_BYTES);
        match Report::decode(&bytes) {
            Some(Report::Ended {
                status,
                cpu_seconds,
                over_process_limit,
                ..
            }) => Ok(Exit {
                status,
                cpu_seconds,
                over_process_limit,
            }),
            _ => Err(std::io::Error::other(format!(
                "the call's reaper ended without a report (wait status {})",
                own.status
            ))),
        }
    }

    /// Reaps it if it has exited.
    fn try_reap(&mut self) -> std::io::Result<Option<Exit>> {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own unreaped child (nix has no wait with rusage).
        let rc = unsafe { libc::wait4(self.pid.as_raw(), &mut status, libc::WNOHANG, &mut usage) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if rc == 0 {
            return Ok(None);
        }
        self.reaped = true;
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok(Some(Exit {
            status,
            cpu_seconds: secs(usage.ru_utime) + secs(usage.ru_stime),
            over_process_limit: false,
        }))
    }

    /// Kills the whole tree and returns how many live processes it held (a reaper is not
    /// counted: it is runbox's). The caller still [`wait`](Self::wait)s to reap.
    pub fn kill_tree(&mut self) -> u32 {
        let tree = descendants(self.pid);
        let count = tree.iter().filter(|p| is_alive(**p)).count() as u32;
        // The root counts unless it is a reaper (counted before anything is signalled).
        let root = u32::from(is_alive(self.pid));
        match &mut self.holder {
            Holder::Reaper { control, .. } => {
                // A byte asks for the kill; closing the pipe asks the same (and is all that is
                // left when the pipe is full or broken).
                if let Some(fd) = control.take() {
                    let _ = nix::unistd::write(&fd, &[1]);
                }
                return count;
            }
            Holder::Session => {
                let _ = nix::sys::signal::killpg(self.pid, Signal::SIGKILL);
                for p in &tree {
                    let _ = nix::sys::signal::kill(*p, Signal::SIGKILL);
                }
            }
            Holder::Namespace => {}
        }
        self.signal_root(Signal::SIGKILL);
        count + root
    }

    fn signal_root(&self, sig: Signal) {
        // SAFETY: pidfd_send_signal on our own pidfd (nix has no wrapper); a pidfd cannot name a
        // recycled pid.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.get_ref().as_raw_fd(),
                sig as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }
}

impl Drop for Sandboxed {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        self.kill_tree();
        // The tree is dead or dying; this returns as soon as the kernel has torn it down.
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Every descendant of `root` (not `root` itself), by walking `/proc/PID/task/TID/children`.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path().join("children");
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            for child in parse_pids(&text) {
                if out.len() >= MAX_WALK {
                    return out;
                }
                if seen.insert(child) {
                    out.push(child);
                    queue.push(child);
                }
            }
        }
    }
    out
}

/// The pids of a `children` file: space-separated decimals.
pub(crate) fn parse_pids(text: &str) -> impl Iterator<Item = Pid> + '_ {
    text.split_ascii_whitespace()
        .filter_map(|s| s.parse::<i32>().ok())
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    state_of(&stat).is_some_and(|s| s != 'Z' && s != 'X')
}

/// The state letter of a `/proc/PID/stat` line (after the last `)`, since the command name may
/// hold spaces and parentheses).
fn state_of(stat: &str) -> Option<char> {
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_children_and_states() {
        let pids: Vec<i32> = parse_pids("12 34 \n0 x 56").map(Pid::as_raw).collect();
        assert_eq!(pids, [12, 34, 56]);
        assert_eq!(state_of("7 (a) b) (c) S 1 2"), Some('S'));
        assert_eq!(state_of("7 (zz) Z 1"), Some('Z'));
        assert_eq!(state_of("garbage"), None);
    }

    /// The fallback without namespaces: process group plus walk, on a real tree.
    #[tokio::test]
    async fn without_namespaces_the_group_and_the_walk_are_killed() {
        use std::os::unix::process::CommandExt;
        // Reaped by `tree.wait()` below through wait4, not through `Child::wait`.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 1000.5 & sleep 1000.5 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let pidfd = crate::native::spawn::pidfd_open(pid).unwrap();
        let mut tree = Sandboxed::new(pid, pidfd, Holder::Session).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while descendants(pid).len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the sleeps never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let sleeps = descendants(pid);
        assert_eq!(tree.kill_tree(), 3);
        let exit = tree.wait().await.unwrap();
        assert_eq!(exit.signal(), Some(libc::SIGKILL));
        for p in sleeps {
            // Re-parented to init and reaped there, or a zombie on its way: not running.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while is_alive(p) {
                assert!(std::time::Instant::now() < deadline, "{p} survived");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }

    #[test]
    fn this_process_is_alive_and_has_no_stray_children() {
        assert!(is_alive(nix::unistd::getpid()));
        assert!(!is_alive(Pid::from_raw(i32::MAX)));
    }
}
