//! How a native command that ended by itself ended, as the client sees it: an exit code,
//! CPU_LIMIT, MEMORY_LIMIT (its cgroup's out-of-memory kill), or a failure to start blamed on the binary (COMMAND_FAILED) or on the sandbox
//! (SANDBOX_UNAVAILABLE). TIMEOUT and CANCELLED are the runner contract's ([`crate::runner`]).
//! Classification is by type (wait status, signal, failed step), never by message text. Pure.

use super::reap::Exit;
use super::spawn::{SpawnError, Step};
use crate::error::{ErrorCode, RunError};
use crate::limits::Limits;
use crate::outcome::Termination;
use crate::policy::NativeCommand;

/// An exit by itself (any code) or by a signal. A CPU-limit kill is CPU_LIMIT: SIGXCPU, or a
/// SIGKILL runbox did not send after at least half the budget. (The kernel enforces the limit on
/// tick-sampled CPU time, while wait4 reports precise time, which on a busy machine can be
/// noticeably lower; nothing else sends SIGKILL to a PID 1 from inside its namespace.) Any other
/// signal is reported as exit code 128 + signal, as shells do.
pub(super) fn classify(exit: Exit, limits: &Limits) -> Termination {
    if exit.over_process_limit {
        return Termination::Stopped(
            RunError::new(
                ErrorCode::ProcessLimit,
                format!(
                    "the command had more than {} processes and threads at once and was stopped with all of them",
                    limits.processes
                ),
            )
            .with_hint("start fewer processes at once, or ask the operator to raise processes"),
        );
    }
    if let Some(code) = exit.code() {
        return Termination::Exited(code);
    }
    let cpu_spent = exit.cpu_seconds >= limits.cpu_seconds as f64 * 0.5;
    match exit.signal() {
        Some(sig) if sig == libc::SIGXCPU || (sig == libc::SIGKILL && cpu_spent) => {
            Termination::Stopped(
                RunError::new(
                    ErrorCode::CpuLimit,
                    format!(
                        "the command used up its CPU budget of {} seconds",
                        limits.cpu_seconds
                    ),
                )
                .with_hint("narrow the work, or ask the operator to raise cpu_seconds"),
            )
        }
        Some(sig) => Termination::Exited(128 + sig),
        None => Termination::Exited(exit.status),
    }
}

/// The call's cgroup recorded an out-of-memory kill: the tree went over `memory.max`.
pub(super) fn out_of_memory(limits: &Limits) -> RunError {
    RunError::new(
        ErrorCode::MemoryLimit,
        format!(
            "the command's processes together used more than {} bytes of memory and were stopped",
            limits.memory_bytes
        ),
    )
    .with_hint("use less memory at once, or ask the operator to raise memory_bytes")
}

/// A failure to start, by whose fault: the binary (COMMAND_FAILED) or the sandbox.
pub(super) fn spawn_error(command: &NativeCommand, e: &SpawnError) -> RunError {
    match e {
        SpawnError::Child {
            step: Step::Exec,
            errno,
        } => RunError::new(
            ErrorCode::CommandFailed,
            format!("cannot execute {}: {errno}", command.path.display()),
        )
        .with_hint(
            "the binary, its interpreter or its libraries may lie outside sandbox.exec_paths",
        ),
        SpawnError::Child {
            step: Step::Cwd,
            errno,
        } => RunError::new(
            ErrorCode::SandboxUnavailable,
            format!("the sandbox user cannot enter the working directory: {errno}"),
        )
        .with_hint("the workspace must be readable and searchable by sandbox.user"),
        other => RunError::new(
            ErrorCode::SandboxUnavailable,
            format!("the command could not be confined, so it was not run: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(status: i32, cpu: f64) -> Exit {
        Exit {
            status,
            cpu_seconds: cpu,
            over_process_limit: false,
        }
    }

    #[test]
    fn exits_and_signals_are_classified_by_type() {
        let l = Limits {
            cpu_seconds: 2,
            ..Limits::default()
        };
        assert_eq!(classify(exit(3 << 8, 0.0), &l), Termination::Exited(3));
        assert_eq!(
            classify(exit(libc::SIGSEGV, 0.0), &l),
            Termination::Exited(139)
        );
        let cpu =
            |t: Termination| matches!(t, Termination::Stopped(e) if e.code == ErrorCode::CpuLimit);
        assert!(cpu(classify(exit(libc::SIGXCPU, 2.0), &l)));
        assert!(cpu(classify(exit(libc::SIGKILL, 3.0), &l)));
        assert!(cpu(classify(exit(libc::SIGKILL, 1.2), &l)));
        assert_eq!(
            classify(exit(libc::SIGKILL, 0.1), &l),
            Termination::Exited(137)
        );
        let over = Exit {
            over_process_limit: true,
            ..exit(libc::SIGKILL, 3.0)
        };
        assert!(
            matches!(classify(over, &l), Termination::Stopped(e) if e.code == ErrorCode::ProcessLimit)
        );
    }
}
