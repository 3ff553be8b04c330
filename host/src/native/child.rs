//! The cloned child's side of [`spawn`](super::spawn): a fixed sequence of system calls between
//! `clone` and `execve`. It shares the server's memory (see `spawn`), so it only reads what the
//! parent prepared, writes its own stack, allocates nothing and takes no locks.
//!
//! The steps, in order ([`Step`]); any failure is written to the error pipe as
//! `(step, errno)` and the child exits 127 before running anything:
//! 1. wait for the parent's go-ahead (it writes the uid/gid maps of the new user namespace first);
//! 2. `setsid` (a new session: no controlling terminal, its own process group);
//! 3. as root: `setgroups([])`, `setresgid`, `setresuid` to the policy's unprivileged ids;
//! 4. `PR_SET_PDEATHSIG(SIGKILL)` (after the id change, which clears it), then check the parent
//!    is still there;
//! 5. stdin, stdout, stderr from the prepared descriptors;
//! 6. `fchdir` into the resolved workspace directory;
//! 7. rlimits: CPU, address space, file size, open files, processes, core = 0;
//! 8. `PR_SET_NO_NEW_PRIVS`;
//! 9. `landlock_restrict_self` with the call's ruleset;
//! 10. the seccomp filters;
//! 11. every descriptor above 2 marked close-on-exec (`close_range`);
//! 12. signal dispositions reset (SIGXFSZ ignored, so an over-large write fails with EFBIG),
//!     signal mask cleared;
//! 13. `execve` of the binary resolved at start, with the policy's environment only.

use super::spawn::{ChildPlan, Identity, Step};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};
use std::ffi::c_char;
use std::os::fd::{AsFd, AsRawFd, RawFd};

/// The child's arguments, passed through `clone`'s single pointer.
pub(super) struct ChildArgs<'a> {
    pub(super) plan: &'a ChildPlan<'a>,
    pub(super) argv: &'a [*const c_char],
    pub(super) envp: &'a [*const c_char],
    pub(super) fds: ChildFds,
}

/// The child's entry point on its own stack.
pub(super) extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` in `spawn`'s frame, alive until the child execs or exits;
    // this runs only in the cloned child.
    unsafe {
        let args = &*arg.cast::<ChildArgs<'_>>();
        child(args.plan, args.argv, args.envp, args.fds) as libc::c_int
    }
}

#[derive(Clone, Copy)]
pub(super) struct ChildFds {
    pub(super) err: RawFd,
    pub(super) sync_r: RawFd,
    pub(super) sync_w: RawFd,
}

/// Writes `(step, errno)` to the error pipe and exits 127.
fn fail(fds: ChildFds, step: Step, errno: nix::errno::Errno) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(step as u32).to_le_bytes());
    buf[4..].copy_from_slice(&(errno as i32).to_le_bytes());
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `buf` lives on this stack.
    unsafe {
        libc::write(fds.err, buf.as_ptr().cast(), buf.len());
        libc::_exit(127)
    }
}

fn check(fds: ChildFds, step: Step, rc: libc::c_long) {
    if rc < 0 {
        fail(fds, step, nix::errno::Errno::last());
    }
}

/// Steps 1–13 of the module documentation.
///
/// # Safety
/// Must only run in a freshly cloned child of a process that may have other threads: it makes
/// only async-signal-safe calls and never returns.
unsafe fn child(
    plan: &ChildPlan<'_>,
    argv: &[*const c_char],
    envp: &[*const c_char],
    fds: ChildFds,
) -> isize {
    use nix::errno::Errno;
    // SAFETY (for every raw call below): plain system calls on descriptors and memory prepared
    // by the parent, which stay valid in this copy of its address space.
    unsafe {
        // 1. Go-ahead. EOF means runbox died before it could map our ids: leave quietly.
        libc::close(fds.sync_w);
        let mut go = [0u8; 1];
        loop {
            let n = libc::read(fds.sync_r, go.as_mut_ptr().cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            libc::_exit(127);
        }
        // 2. New session.
        check(fds, Step::Session, libc::setsid() as libc::c_long);
        // 3. Credentials, through raw system calls (see the module documentation).
        if let Identity::Drop { uid, gid } = plan.identity {
            check(
                fds,
                Step::Credentials,
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
            );
            check(
                fds,
                Step::Credentials,
                libc::syscall(libc::SYS_setresgid, gid, gid, gid),
            );
            check(
                fds,
                Step::Credentials,
                libc::syscall(libc::SYS_setresuid, uid, uid, uid),
            );
        }
        // 4. Die with runbox. The flag is set after the id change (which clears it); if runbox
        //    died before that, the go-ahead pipe has hung up.
        if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
            fail(fds, Step::ParentDeath, Errno::last());
        }
        let mut pfd = libc::pollfd {
            fd: fds.sync_r,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, 0) != 0 && pfd.revents & libc::POLLHUP != 0 {
            libc::_exit(127);
        }
        // 5. Standard streams.
        for (fd, target) in plan.stdio.iter().zip(0..) {
            check(
                fds,
                Step::Stdio,
                libc::dup2(fd.as_raw_fd(), target) as libc::c_long,
            );
        }
        // 6. Working directory.
        if nix::unistd::fchdir(plan.cwd.as_fd()).is_err() {
            fail(fds, Step::Cwd, Errno::last());
        }
        // 7. Limits.
        for &(resource, soft, hard) in &plan.rlimits {
            if nix::sys::resource::setrlimit(resource, soft, hard).is_err() {
                fail(fds, Step::Rlimits, Errno::last());
            }
        }
        // 8. No privilege gain through execve (set-uid bits, file capabilities).
        if nix::sys::prctl::set_no_new_privs().is_err() {
            fail(fds, Step::NoNewPrivs, Errno::last());
        }
        // 9. Landlock.
        if let Some(ruleset) = &plan.ruleset {
            check(
                fds,
                Step::Landlock,
                libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0),
            );
        }
        // 10. seccomp.
        for program in plan.seccomp {
            if seccompiler::apply_filter(program).is_err() {
                fail(fds, Step::Seccomp, Errno::last());
            }
        }
        // 11. Nothing inherited survives execve except 0, 1, 2 (the error pipe closes on exec,
        //     which tells the parent execve succeeded).
        check(
            fds,
            Step::CloseFds,
            libc::syscall(
                libc::SYS_close_range,
                3,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ),
        );
        // 12. Signals: default dispositions (the server ignores SIGPIPE), SIGXFSZ ignored,
        //     nothing blocked.
        for sig in Signal::iterator() {
            let handler = if sig == Signal::SIGXFSZ {
                SigHandler::SigIgn
            } else {
                SigHandler::SigDfl
            };
            if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
                let _ = nix::sys::signal::signal(sig, handler);
            }
        }
        if nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .is_err()
        {
            fail(fds, Step::Signals, Errno::last());
        }
        // 13. Run it.
        libc::execve(plan.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(fds, Step::Exec, Errno::last())
    }
}
