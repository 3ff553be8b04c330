//! Starting one native command: everything is prepared in the parent, then `clone` and a fixed
//! sequence of system calls in the child, then `execve`.
//!
//! The server is a multi-threaded tokio process, so the child may only make async-signal-safe
//! calls: no allocation, no locks, no glibc wrappers that keep process-wide state (the set*id
//! wrappers broadcast to threads that do not exist in the child, so credentials change through
//! raw system calls). Every string, pointer array, descriptor, ruleset and filter is built
//! before `clone` ([`ChildPlan`]).
//!
//! Like `posix_spawn`, the child shares the server's memory (`CLONE_VM`, on its own stack) until
//! `execve`: copying the page tables of a server with a compiled wasm module costs milliseconds,
//! sharing them costs nothing. The child only reads the prepared plan and writes its own stack;
//! descriptors, credentials, cwd, rlimits, signal dispositions, Landlock and seccomp are all
//! per-task, so its changes never reach the server. The cloning thread blocks until the child
//! has exec'd or failed (the error pipe is close-on-exec), so the one piece of state they do
//! share, that thread's `errno` slot (written by the child only on a failing call), is never in
//! use by both at once; the plan and the stack outlive the child's use of them.
//!
//! The child's side, its numbered setup steps and their failure reports, is in [`child`].
//!
//! With namespaces the child is created in a new user, PID and IPC namespace
//! ([`NAMESPACES`]): it is PID 1 there, so when it dies the kernel kills every process it left
//! behind, `setsid` and double-fork included, and `RLIMIT_NPROC` counts only this call's
//! processes; SysV shared memory, semaphores and message queues and POSIX message queues it
//! makes are its own and are freed with the namespace when the call's last process ends.
//! Mount, network, UTS and cgroup namespaces are not made: Landlock and seccomp already deny
//! what they would isolate, and a network namespace costs ~0.5 ms per call (README, "What
//! confines a native call").

use super::child;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use std::ffi::{CString, c_char};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The namespaces a native call gets when namespaces are available (the probe makes exactly
/// these).
pub(crate) const NAMESPACES: CloneFlags = CloneFlags::CLONE_NEWUSER
    .union(CloneFlags::CLONE_NEWPID)
    .union(CloneFlags::CLONE_NEWIPC);

/// Stack of the cloned child before `execve` (mapped lazily, so cheap).
const CHILD_STACK_BYTES: usize = 256 * 1024;

/// The child's setup steps, reported when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    /// Waiting for the parent's go-ahead.
    Sync = 1,
    /// `setsid`.
    Session,
    /// Dropping groups, gid and uid.
    Credentials,
    /// `PR_SET_PDEATHSIG`.
    ParentDeath,
    /// Redirecting stdin/stdout/stderr.
    Stdio,
    /// Entering the working directory.
    Cwd,
    /// Setting rlimits.
    Rlimits,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// Enforcing the Landlock ruleset.
    Landlock,
    /// Installing the seccomp filters.
    Seccomp,
    /// Closing inherited descriptors.
    CloseFds,
    /// Resetting signals.
    Signals,
    /// `execve`.
    Exec,
}

impl Step {
    /// The step with this number, as reported through the error pipe.
    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        use Step::*;
        [
            Sync,
            Session,
            Credentials,
            ParentDeath,
            Stdio,
            Cwd,
            Rlimits,
            NoNewPrivs,
            Landlock,
            Seccomp,
            CloseFds,
            Signals,
            Exec,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
}

/// Who the child becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Identity {
    /// runbox runs as root: drop to these ids (mapped to themselves in the user namespace).
    Drop {
        /// uid.
        uid: u32,
        /// gid.
        gid: u32,
    },
    /// runbox is unprivileged: keep its own ids.
    Keep {
        /// runbox's euid.
        uid: u32,
        /// runbox's egid.
        gid: u32,
    },
}

/// Everything the child needs, prepared before `clone`.
pub struct ChildPlan<'a> {
    /// The binary (absolute, resolved at start).
    pub path: CString,
    /// `argv`, NUL-terminated strings.
    pub argv: Vec<CString>,
    /// `envp` as `KEY=VALUE`.
    pub envp: Vec<CString>,
    /// The child's stdin, stdout and stderr (all above fd 2).
    pub stdio: [OwnedFd; 3],
    /// The working directory.
    pub cwd: BorrowedFd<'a>,
    /// The Landlock ruleset to enforce (`None` when the kernel has none and the policy allows
    /// running unconfined).
    pub ruleset: Option<OwnedFd>,
    /// seccomp programs to install (empty when unavailable and allowed).
    pub seccomp: &'a [seccompiler::BpfProgram],
    /// The ids to drop to.
    pub identity: Identity,
    /// Whether to create the [`NAMESPACES`] (user, PID, IPC).
    pub namespaces: bool,
    /// `(resource, soft, hard)`.
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// The call cgroup's `cgroup.procs`, open for writing: the child's pid is written to it
    /// before the child runs anything, so everything it starts is in the call's cgroup.
    pub cgroup: Option<BorrowedFd<'a>>,
}

/// A child that has been cloned but may not have reached `execve` yet.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid (in runbox's PID namespace).
    pub pid: Pid,
    /// Its pidfd, readable once it has exited.
    pub pidfd: OwnedFd,
}

/// Why a command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The parent could not prepare or clone.
    #[error("{what}: {errno}")]
    Parent {
        /// What failed.
        what: &'static str,
        /// The OS error.
        errno: nix::errno::Errno,
    },
    /// A step in the child failed.
    #[error("{step:?} failed in the child: {errno}")]
    Child {
        /// The step.
        step: Step,
        /// The OS error.
        errno: nix::errno::Errno,
    },
}

fn parent_err(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> SpawnError {
    move |errno| SpawnError::Parent { what, errno }
}

/// A null-terminated pointer array over `strings` (which must outlive it).
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Clones the child, lets it through its setup steps and returns once it has exec'd the binary.
/// If a step fails, the child has been reaped and the error says which step.
pub fn spawn(plan: &ChildPlan<'_>) -> Result<Spawned, SpawnError> {
    use nix::fcntl::OFlag;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(parent_err("pipe"))?;
    let (sync_r, sync_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(parent_err("pipe"))?;
    let argv = pointers(&plan.argv);
    let envp = pointers(&plan.envp);
    let mut stack = vec![0u8; CHILD_STACK_BYTES];
    let flags = if plan.namespaces {
        CloneFlags::CLONE_VM | NAMESPACES
    } else {
        CloneFlags::CLONE_VM
    };
    let raw = child::ChildFds {
        err: err_w.as_raw_fd(),
        sync_r: sync_r.as_raw_fd(),
        sync_w: sync_w.as_raw_fd(),
    };

    // Block every signal around clone so no handler of the server runs in the child; the child
    // resets dispositions and unblocks just before execve.
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .map_err(parent_err("block signals"))?;
    // What the child gets, in this frame: it must outlive the child's use of it, which ends at
    // execve (nix's `clone` keeps its callback in its own frame, gone when it returns, so it
    // cannot be used with CLONE_VM).
    let args = child::ChildArgs {
        plan,
        argv: &argv,
        envp: &envp,
        fds: raw,
    };
    let stack_top = {
        let end = stack.as_mut_ptr_range().end as usize;
        (end - end % 16) as *mut libc::c_void
    };
    // SAFETY: the child runs `child` on `stack`, sharing this address space until execve (see
    // the module documentation): it only reads `plan`, `argv` and `envp`, makes only
    // async-signal-safe calls, and ends in execve or _exit. All of them, and `stack`, live until
    // the error pipe below reports that the child is done with them.
    let cloned = unsafe {
        libc::clone(
            child::entry,
            stack_top,
            flags.bits() | libc::SIGCHLD,
            std::ptr::from_ref(&args).cast_mut().cast(),
        )
    };
    let cloned = nix::errno::Errno::result(cloned).map(Pid::from_raw);
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    let pid = cloned.map_err(parent_err("clone"))?;
    drop((err_w, sync_r));

    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(errno) => {
            abandon(pid);
            return Err(SpawnError::Parent {
                what: "pidfd_open",
                errno,
            });
        }
    };
    if let Some(procs) = plan.cgroup
        && let Err(errno) = nix::unistd::write(procs, pid.as_raw().to_string().as_bytes())
    {
        abandon(pid);
        return Err(SpawnError::Parent {
            what: "placing the child in its cgroup",
            errno,
        });
    }
    if plan.namespaces
        && let Err(errno) = write_id_maps(pid, plan.identity)
    {
        abandon(pid);
        return Err(SpawnError::Parent {
            what: "writing the user namespace's id maps",
            errno,
        });
    }
    if let Err(errno) = nix::unistd::write(&sync_w, &[1]) {
        abandon(pid);
        return Err(SpawnError::Parent {
            what: "starting the child",
            errno,
        });
    }
    // Blocks until execve (EOF: the pipe is close-on-exec) or a failure report; bounded by the
    // child's setup, which never waits on anything but the go-ahead already sent.
    let mut report = [0u8; 8];
    let mut got = 0;
    while got < report.len() {
        match nix::unistd::read(&err_r, &mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    drop((sync_w, stack));
    if let Err(e) = decode_report(&report[..got]) {
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    Ok(Spawned { pid, pidfd })
}

/// Kills and reaps a child that never got going.
fn abandon(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// Maps the child's ids to themselves in its new user namespace. As root any ids may be mapped
/// and `setgroups` stays allowed (the child drops its groups itself); unprivileged, only runbox's
/// own ids, after denying `setgroups`.
pub(crate) fn write_id_maps(pid: Pid, identity: Identity) -> Result<(), nix::errno::Errno> {
    let errno =
        |e: std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let proc = format!("/proc/{pid}");
    let (uid, gid) = match identity {
        Identity::Drop { uid, gid } => (uid, gid),
        Identity::Keep { uid, gid } => {
            std::fs::write(format!("{proc}/setgroups"), "deny").map_err(errno)?;
            (uid, gid)
        }
    };
    std::fs::write(format!("{proc}/uid_map"), format!("{uid} {uid} 1\n")).map_err(errno)?;
    std::fs::write(format!("{proc}/gid_map"), format!("{gid} {gid} 1\n")).map_err(errno)?;
    Ok(())
}

pub(crate) fn pidfd_open(pid: Pid) -> Result<OwnedFd, nix::errno::Errno> {
    // SAFETY: plain system call; nix has no wrapper for pidfd_open.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Decodes what the error pipe held: nothing once the child has exec'd, `(step, errno)` if a
/// step failed.
pub fn decode_report(bytes: &[u8]) -> Result<(), SpawnError> {
    let Some(report) = bytes.get(..8) else {
        return Ok(());
    };
    let step = u32::from_le_bytes([report[0], report[1], report[2], report[3]]);
    let errno = i32::from_le_bytes([report[4], report[5], report[6], report[7]]);
    Err(SpawnError::Child {
        step: Step::from_u32(step).unwrap_or(Step::Exec),
        errno: nix::errno::Errno::from_raw(errno),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        assert!(decode_report(&[]).is_ok());
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&(Step::Landlock as u32).to_le_bytes());
        buf[4..].copy_from_slice(&libc::EPERM.to_le_bytes());
        match decode_report(&buf) {
            Err(SpawnError::Child { step, errno }) => {
                assert_eq!(step, Step::Landlock);
                assert_eq!(errno, nix::errno::Errno::EPERM);
            }
            other => panic!("{other:?}"),
        }
        for v in 1..=13 {
            assert_eq!(Step::from_u32(v).map(|s| s as u32), Some(v));
        }
    }
}
