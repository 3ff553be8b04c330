//! The server's side of the reaper mode: starting a call's reaper (a fresh `execveat` of the
//! runbox binary, opened once at start) with its descriptors at the fixed numbers of
//! [`wire`], and reading its first report.
//!
//! The same rules as [`spawn`](crate::native::spawn) hold: the server is multi-threaded, so the
//! cloned child (`CLONE_VM`, on its own stack, until `execveat`) only makes raw system calls on
//! values prepared before `clone`: `dup2` of each descriptor from a copy above
//! [`HIGH_FD`] (so no move clobbers another source) to its fixed number, `/dev/null` on stdin and
//! stdout (stdout is the MCP channel), `setsid`, every other descriptor close-on-exec, an empty
//! signal mask, `execveat`. The reaper keeps the server's ids. It must not be left running if
//! the launch fails: every failure path kills and reaps it.

use super::wire::{self, Plan, Report};
use crate::native::spawn::{ChildPlan, SpawnError, Step, pidfd_open};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use std::ffi::c_char;
use std::io::{Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Sources are copied to descriptors at or above this before `clone`.
const HIGH_FD: RawFd = 64;
/// Stack of the cloned child before `execveat`.
const STACK_BYTES: usize = 64 * 1024;

/// The runbox binary, opened once so every reaper runs the same file the server runs, even if
/// the path is replaced later.
#[derive(Debug)]
pub struct ReaperBinary(OwnedFd);

impl ReaperBinary {
    /// Opens `/proc/self/exe` (`O_PATH`).
    pub fn open() -> std::io::Result<Self> {
        let fd = nix::fcntl::open(
            "/proc/self/exe",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        Ok(Self(fd))
    }
}

/// The descriptors a reaper gets besides its plan and pipes.
pub struct HandOver<'a> {
    /// The command's stdin, stdout, stderr.
    pub stdio: [OwnedFd; 3],
    /// The working directory.
    pub cwd: BorrowedFd<'a>,
    /// The Landlock ruleset.
    pub ruleset: Option<OwnedFd>,
    /// The call cgroup's `cgroup.procs`.
    pub cgroup: Option<BorrowedFd<'a>>,
}

/// A started reaper whose command has exec'd.
#[derive(Debug)]
pub struct Launched {
    /// The reaper's pid.
    pub pid: Pid,
    /// Its pidfd.
    pub pidfd: OwnedFd,
    /// Write end of its control pipe (a byte: kill the tree; closing it: the same).
    pub control: OwnedFd,
    /// Read end of its report pipe (the final report is read once it has exited).
    pub report: OwnedFd,
}

struct Args<'a> {
    moves: &'a [(RawFd, RawFd)],
    null: RawFd,
    err: RawFd,
    exe: RawFd,
    argv: &'a [*const c_char],
    envp: &'a [*const c_char],
}

extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Args` in `launch`'s frame, alive until this child execs or exits;
    // only raw, async-signal-safe system calls follow.
    unsafe {
        let a = &*arg.cast::<Args<'_>>();
        let fail = |step: Step| -> ! {
            let mut buf = [0u8; 8];
            buf[..4].copy_from_slice(&(step as u32).to_le_bytes());
            buf[4..].copy_from_slice(&(Errno::last() as i32).to_le_bytes());
            libc::write(a.err, buf.as_ptr().cast(), buf.len());
            libc::_exit(127)
        };
        for &(from, to) in a.moves {
            if libc::dup2(from, to) < 0 {
                fail(Step::Stdio);
            }
        }
        if libc::dup2(a.null, 0) < 0 || libc::dup2(a.null, 1) < 0 {
            fail(Step::Stdio);
        }
        if libc::setsid() < 0 {
            fail(Step::Session);
        }
        let first = wire::FIRST_FREE_FD as libc::c_uint;
        if libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) < 0
        {
            fail(Step::CloseFds);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) < 0 {
            fail(Step::Signals);
        }
        libc::syscall(
            libc::SYS_execveat,
            a.exe,
            c"".as_ptr(),
            a.argv.as_ptr(),
            a.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        fail(Step::Exec)
    }
}

/// The reaper's plan and descriptors from a child plan.
pub fn split(plan: ChildPlan<'_>, max_tasks: u64) -> (Plan, HandOver<'_>) {
    let bytes = |c: &std::ffi::CString| c.as_bytes().to_vec();
    let wire_plan = Plan {
        path: bytes(&plan.path),
        argv: plan.argv.iter().map(bytes).collect(),
        envp: plan.envp.iter().map(bytes).collect(),
        ruleset: plan.ruleset.is_some(),
        seccomp: plan
            .seccomp
            .iter()
            .map(|p| p.iter().map(wire::pack).collect())
            .collect(),
        identity: plan.identity,
        rlimits: wire::encode_rlimits(&plan.rlimits),
        max_tasks,
        cgroup: plan.cgroup.is_some(),
    };
    let hand_over = HandOver {
        stdio: plan.stdio,
        cwd: plan.cwd,
        ruleset: plan.ruleset,
        cgroup: plan.cgroup,
    };
    (wire_plan, hand_over)
}

fn parent(what: &'static str) -> impl FnOnce(Errno) -> SpawnError {
    move |errno| SpawnError::Parent { what, errno }
}

fn high_copy(fd: BorrowedFd<'_>) -> Result<OwnedFd, SpawnError> {
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(HIGH_FD))
        .map_err(parent("copying a descriptor for the reaper"))?;
    // SAFETY: fcntl returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Starts a reaper for `plan` and returns once its command has exec'd (or failed to: then the
/// reaper is reaped and the error names the command's failed step).
pub fn launch(
    binary: &ReaperBinary,
    plan: &Plan,
    fds: HandOver<'_>,
) -> Result<Launched, SpawnError> {
    use nix::fcntl::OFlag;
    let text = serde_json::to_vec(plan).map_err(|_| SpawnError::Parent {
        what: "encoding the reaper's plan",
        errno: Errno::EINVAL,
    })?;
    let memfd =
        nix::sys::memfd::memfd_create(c"runbox-plan", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(parent("memfd_create"))?;
    let mut file = std::fs::File::from(memfd);
    let io = |e: std::io::Error| SpawnError::Parent {
        what: "writing the reaper's plan",
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    };
    file.write_all(&text).map_err(io)?;
    file.rewind().map_err(io)?;
    let (control_r, control_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(parent("pipe"))?;
    let (report_r, report_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(parent("pipe"))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(parent("pipe"))?;
    let null = std::fs::File::open("/dev/null").map_err(io)?;
    let mut sources: Vec<(BorrowedFd<'_>, RawFd)> = vec![
        (file.as_fd(), wire::PLAN_FD),
        (control_r.as_fd(), wire::CONTROL_FD),
        (report_w.as_fd(), wire::REPORT_FD),
        (fds.stdio[0].as_fd(), wire::STDIO_FDS[0]),
        (fds.stdio[1].as_fd(), wire::STDIO_FDS[1]),
        (fds.stdio[2].as_fd(), wire::STDIO_FDS[2]),
        (fds.cwd, wire::CWD_FD),
    ];
    if let Some(r) = &fds.ruleset {
        sources.push((r.as_fd(), wire::RULESET_FD));
    }
    if let Some(c) = fds.cgroup {
        sources.push((c, wire::CGROUP_FD));
    }
    let copies = sources
        .iter()
        .map(|(fd, _)| high_copy(*fd))
        .collect::<Result<Vec<_>, _>>()?;
    let moves: Vec<(RawFd, RawFd)> = copies
        .iter()
        .zip(&sources)
        .map(|(c, (_, to))| (c.as_raw_fd(), *to))
        .collect();
    drop(sources);
    let argv: [*const c_char; 3] = [
        c"runbox-reaper".as_ptr(),
        c"__native-reaper".as_ptr(),
        std::ptr::null(),
    ];
    let envp: [*const c_char; 1] = [std::ptr::null()];
    let args = Args {
        moves: &moves,
        null: null.as_raw_fd(),
        err: err_w.as_raw_fd(),
        exe: binary.0.as_raw_fd(),
        argv: &argv,
        envp: &envp,
    };
    let mut stack = vec![0u8; STACK_BYTES];
    let stack_top = {
        let end = stack.as_mut_ptr_range().end as usize;
        (end - end % 16) as *mut libc::c_void
    };
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .map_err(parent("block signals"))?;
    // SAFETY: the child runs `entry` on `stack`, sharing this address space until execveat; it
    // only reads `args` (alive in this frame until the error pipe reports the exec) and makes
    // raw system calls.
    let cloned = unsafe {
        libc::clone(
            entry,
            stack_top,
            libc::CLONE_VM | libc::SIGCHLD,
            std::ptr::from_ref(&args).cast_mut().cast(),
        )
    };
    let cloned = Errno::result(cloned).map(Pid::from_raw);
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    let pid = cloned.map_err(parent("clone"))?;
    drop(err_w);
    let exec = read_full(&err_r, 8);
    drop((stack, copies, control_r, report_w, file, null, fds));
    if let Err(e) = crate::native::spawn::decode_report(&exec) {
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(errno) => return Err(abandon(pid, "pidfd_open", errno)),
    };
    match Report::decode(&read_full(&report_r, wire::REPORT_BYTES)) {
        Some(Report::Started) => Ok(Launched {
            pid,
            pidfd,
            control: control_w,
            report: report_r,
        }),
        Some(Report::Failed { step, errno }) => {
            let _ = nix::sys::wait::waitpid(pid, None);
            let errno = Errno::from_raw(errno);
            Err(match Step::from_u32(step) {
                Some(step) => SpawnError::Child { step, errno },
                None => SpawnError::Parent {
                    what: "the reaper could not start the command",
                    errno,
                },
            })
        }
        _ => Err(abandon(
            pid,
            "the reaper ended without a report",
            Errno::EIO,
        )),
    }
}

fn abandon(pid: Pid, what: &'static str, errno: Errno) -> SpawnError {
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    SpawnError::Parent { what, errno }
}

/// Reads up to `n` bytes, until EOF (blocking; the writer is our own child doing bounded work).
pub fn read_full(fd: &OwnedFd, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    buf.truncate(got);
    buf
}
