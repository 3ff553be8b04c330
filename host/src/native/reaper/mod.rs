//! The reaper mode: native commands confined without any namespace (what Docker's default
//! seccomp profile allows), their whole tree still killed on exit, timeout, cancellation and
//! server death.
//!
//! Per call the server starts a reaper ([`launch`]): a fresh `execveat` of the runbox binary
//! itself in a hidden mode (`argv[1]` = [`wire::REAPER_ARG`]), not a forked copy of the server.
//! A fresh process is single-threaded and owns its memory, so it can allocate, read `/proc` and
//! loop for the whole call; a `clone` of the multi-threaded server could only make raw,
//! allocation-free system calls, and with `CLONE_VM` would share (and with `fork` copy) the
//! server's address space for as long as the call runs. The price is one exec of the binary per
//! call (measured in the report and README). The reaper:
//! 1. reads the plan ([`wire::Plan`]) from its memfd and makes itself the child subreaper
//!    (`PR_SET_CHILD_SUBREAPER`), so every orphan of the call (`setsid`, double fork) is
//!    re-parented to it, never to init;
//! 2. starts the command exactly as the namespace mode does, without the namespaces
//!    ([`spawn`](super::spawn): new session, ids dropped, `PR_SET_PDEATHSIG` to the reaper,
//!    rlimits, no-new-privs, Landlock, seccomp with SysV IPC and message queues refused too),
//!    and reports "started" or the failed step;
//! 3. waits on its control pipe, the command's pidfd and a tick ([`TICK`]): on a byte (kill
//!    request: timeout, cancellation, broken pipe) or EOF (the server is gone, however it died),
//!    on the command's exit, or when the tree holds more processes and threads than the
//!    policy's `processes`, it kills every process below it until `wait` says ECHILD
//!    ([`tree::kill_all`]), then reports the command's own wait status and exits.
//!
//! The command cannot stop or kill its reaper: as root the reaper keeps uid 0 while the command
//! runs as the sandbox uid; unprivileged, both share the uid, and Landlock's signal scope
//! (ABI 6, required for "fully enforced") refuses signals from the sandbox to the reaper, which
//! is outside it (ptrace is refused by Landlock too). The reaper ignores the terminal signals
//! and lives in its own session. Only SIGKILL from outside the call can end it early; the
//! command itself then gets its `PDEATHSIG`, but orphans of the call would escape to init (in
//! docs/security.md, "Known limits").
//!
//! This module must never outlive its call, never report before the tree is empty, and never
//! signal a process outside the call ([`tree`]).

pub mod launch;
pub mod tree;
pub mod wire;

use super::spawn::{self, ChildPlan, Identity, SpawnError};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use wire::{Plan, Report};

/// How often the reaper counts the tree's processes while the command runs.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(20);

/// Runs the reaper when the binary was started as one (`argv[1]` is [`wire::REAPER_ARG`]);
/// `None` otherwise. Call first thing in `main`, before any thread exists.
pub fn run_if_asked() -> Option<ExitCode> {
    let arg = std::env::args_os().nth(1)?;
    (arg == wire::REAPER_ARG).then(|| match reaper() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runbox reaper: {e}");
            ExitCode::from(2)
        }
    })
}

/// Why the reaper could not do its job (printed on stderr; the server sees a missing report).
#[derive(Debug, thiserror::Error)]
enum ReaperError {
    #[error("descriptor {0} was not handed over: not started by runbox")]
    NotLaunched(i32),
    #[error("cannot read the plan: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Plan(#[from] wire::PlanError),
    #[error("malformed plan: {0}")]
    Json(#[from] serde_json::Error),
}

/// Takes a descriptor the launcher placed at a fixed number.
fn handed_over(fd: i32) -> Result<OwnedFd, ReaperError> {
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(ReaperError::NotLaunched(fd));
    }
    // SAFETY: the launcher put this descriptor here for the reaper alone; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn reaper() -> Result<(), ReaperError> {
    for sig in [
        libc::SIGPIPE,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
    ] {
        // SAFETY: setting a signal to SIG_IGN in this single-threaded process.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let mut report = std::fs::File::from(handed_over(wire::REPORT_FD)?);
    let control = handed_over(wire::CONTROL_FD)?;
    let mut text = Vec::new();
    std::fs::File::from(handed_over(wire::PLAN_FD)?)
        .take(wire::MAX_PLAN_BYTES)
        .read_to_end(&mut text)?;
    let plan: Plan = serde_json::from_slice(&text)?;
    let stdio = [
        handed_over(wire::STDIO_FDS[0])?,
        handed_over(wire::STDIO_FDS[1])?,
        handed_over(wire::STDIO_FDS[2])?,
    ];
    let cwd = handed_over(wire::CWD_FD)?;
    let ruleset = if plan.ruleset {
        Some(handed_over(wire::RULESET_FD)?)
    } else {
        None
    };
    let cgroup = if plan.cgroup {
        Some(handed_over(wire::CGROUP_FD)?)
    } else {
        None
    };
    let send = |report: &mut std::fs::File, r: Report| {
        let _ = report.write_all(&r.encode());
    };
    // SAFETY: prctl with plain integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        let errno = nix::errno::Errno::last() as i32;
        send(&mut report, Report::Failed { step: 0, errno });
        return Ok(());
    }
    let started = start(&plan, stdio, cwd.as_fd(), ruleset, cgroup.as_ref());
    drop((cwd, cgroup));
    let (command, pidfd) = match started {
        Ok(s) => (s.pid, s.pidfd),
        Err(failure) => {
            send(&mut report, failure);
            return Ok(());
        }
    };
    send(&mut report, Report::Started);
    let (Identity::Drop { uid, .. } | Identity::Keep { uid, .. }) = plan.identity;
    send(
        &mut report,
        watch(command, &pidfd, &control, plan.max_tasks, uid),
    );
    Ok(())
}

/// Starts the command from the plan (the same child steps as the namespace mode, without
/// namespaces).
fn start(
    plan: &Plan,
    stdio: [OwnedFd; 3],
    cwd: BorrowedFd<'_>,
    ruleset: Option<OwnedFd>,
    cgroup: Option<&OwnedFd>,
) -> Result<spawn::Spawned, Report> {
    let failed = |errno: i32| Report::Failed { step: 0, errno };
    let cstr = |b: &Vec<u8>| CString::new(b.clone()).map_err(|_| failed(libc::EINVAL));
    let rlimits = plan.resources().map_err(|_| failed(libc::EINVAL))?;
    let programs = plan.programs();
    let child = ChildPlan {
        path: cstr(&plan.path)?,
        argv: plan.argv.iter().map(cstr).collect::<Result<_, _>>()?,
        envp: plan.envp.iter().map(cstr).collect::<Result<_, _>>()?,
        stdio,
        cwd,
        ruleset,
        seccomp: &programs,
        identity: plan.identity,
        namespaces: false,
        rlimits,
        cgroup: cgroup.map(AsFd::as_fd),
    };
    // The command's ends of its pipes and the ruleset close here, in the reaper, once the
    // command has them (so the server sees EOF when the command's side closes).
    spawn::spawn(&child).map_err(|e| match e {
        SpawnError::Child { step, errno } => Report::Failed {
            step: step as u32,
            errno: errno as i32,
        },
        SpawnError::Parent { errno, .. } => failed(errno as i32),
    })
}

/// Waits for the command's exit, a kill request, the server's death or an overgrown tree, then
/// kills the tree and says how the command ended.
fn watch(
    command: nix::unistd::Pid,
    pidfd: &OwnedFd,
    control: &OwnedFd,
    max: u64,
    uid: u32,
) -> Report {
    let me = nix::unistd::getpid();
    let mut exit: Option<(i32, f64)> = None;
    let mut over_process_limit = false;
    let tick = i32::try_from(TICK.as_millis()).unwrap_or(20);
    let record = |(pid, status, cpu): tree::Reaped, exit: &mut Option<(i32, f64)>| {
        if pid == command {
            *exit = Some((status, cpu));
        }
    };
    loop {
        let mut fds = [
            libc::pollfd {
                fd: control.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two descriptors this function borrows, for at most one tick.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, tick) };
        while let Ok(Some(r)) = tree::reap_one() {
            record(r, &mut exit);
        }
        if exit.is_some() || fds[0].revents != 0 {
            break;
        }
        if tree::tasks(me) > max {
            over_process_limit = true;
            break;
        }
    }
    let killed = tree::kill_all(uid, |r| record(r, &mut exit));
    let (status, cpu_seconds) = exit.unwrap_or((libc::SIGKILL, 0.0));
    Report::Ended {
        status,
        cpu_seconds,
        killed,
        over_process_limit,
    }
}
