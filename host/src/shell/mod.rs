//! The `shell` tool's interpreter: bash syntax, parsed by brush-parser and interpreted here —
//! never by a real shell — over a [`Host`] that runs allowlisted commands.
//!
//! A script goes through three steps: [`parse`] (bounded size and nesting), [`check`] (every
//! literal command word against the allowlist, and the constructs runbox refuses, before
//! anything runs) and [`run_script`], which walks the tree: lists, `&&`/`||`, pipelines whose
//! stages run at the same time joined by bounded pipes, compound commands, functions,
//! redirections to files inside the workspace, expansions and the interpreter's own built-ins
//! (`cd`, `echo`, `read`, `test`, …). Every other command is started through
//! [`Host::run`], which checks it against the allowlist again as it starts (a name made at run
//! time, `$cmd`, is judged there), records it and runs it on its runner.
//!
//! Everything a script can grow is bounded ([`Bounds`]): commands started, steps (commands and
//! loop iterations), nesting of functions and subshells, the size of values, words and command
//! substitutions. The deadline and the client's cancellation end the script at the next step
//! or wait. This module must not start any process or open any path but through the [`Host`]
//! and the workspace capability; it must not turn text into commands except by parsing a
//! script the check step has passed (there is no `eval`, `source` or `exec`).

mod arith;
mod brace;
mod builtins;
pub mod check;
mod compound;
mod exec;
mod expand;
mod io;
mod literal;
mod param;
pub mod parse;
mod pattern;
mod redirect;
mod simple;
mod state;
mod substitute;
mod test_expr;
#[cfg(test)]
pub(crate) mod tests;

pub use parse::parse;

use crate::error::{ErrorCode, RunError};
use crate::limits::write_pool::WritePool;
use crate::outcome::{Capture, Captured, RunnerKind};
use crate::pipe::{PipeReader, PipeWriter};
use crate::workspace::Workspace;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// How far a script may go. Each bound, once reached, stops the script with SCRIPT_LIMIT.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Commands started through the host.
    pub max_commands: u64,
    /// Steps: every command, built-in or not, and every loop iteration.
    pub max_steps: u64,
    /// Nesting of function calls, subshells and command substitutions.
    pub max_depth: usize,
    /// Bytes in one variable, one word or one expansion.
    pub max_value_bytes: usize,
    /// Words one command's expansion may produce (globs, `$@`, brace expansion).
    pub max_fields: usize,
    /// Bytes a command substitution may capture.
    pub max_capture_bytes: usize,
    /// Bytes of the script's stdout kept in the reply.
    pub stdout_bytes: u64,
    /// Bytes of the script's stderr kept in the reply.
    pub stderr_bytes: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_commands: 10_000,
            max_steps: 1_000_000,
            max_depth: 64,
            max_value_bytes: 1 << 20,
            max_fields: 100_000,
            max_capture_bytes: 4 << 20,
            stdout_bytes: 1 << 20,
            stderr_bytes: 1 << 20,
        }
    }
}

/// Why a script was refused or stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ShellError {
    /// The script is not valid shell syntax.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A bound of [`Bounds`] (or the script's size or nesting) was reached.
    #[error("{0}")]
    Bounds(String),
    /// A command outside the allowlist, named in the script or made at run time.
    #[error("{name}{} is not on the allowlist{}", at(*.offset), because(.why))]
    NotAllowed {
        /// The command word.
        name: String,
        /// Its byte offset in the script, when it is written there.
        offset: Option<usize>,
        /// Why a name that looks like a shell built-in is refused anyway.
        why: Option<&'static str>,
    },
    /// A construct runbox does not run (background jobs, process substitution, …).
    #[error("{construct}{} is refused: {why}", at(*.offset))]
    Construct {
        /// What was written.
        construct: String,
        /// Its byte offset in the script.
        offset: Option<usize>,
        /// Why.
        why: &'static str,
    },
    /// A path the interpreter itself was asked to reach (`cd`, a redirection) leads outside
    /// the workspace.
    #[error("{0}: leads outside the workspace")]
    Outside(String),
    /// The interpreter would have written while the workspace is read-only.
    #[error("{0}: the policy makes the workspace read-only")]
    ReadOnly(String),
    /// A command or the script was stopped by a limit, the deadline, a refusal at start or the
    /// client; the runner's or the host's error.
    #[error("{}", .0.message)]
    Stopped(RunError),
    /// A bug in runbox.
    #[error("{0}")]
    Internal(String),
}

fn at(offset: Option<usize>) -> String {
    offset.map_or_else(String::new, |o| format!(" (at byte {o})"))
}

fn because(why: &Option<&'static str>) -> String {
    why.map_or_else(String::new, |w| format!(": {w}"))
}

impl ShellError {
    /// The stable error this becomes in a reply.
    pub fn to_run_error(&self) -> RunError {
        let message = self.to_string();
        match self {
            Self::Syntax(_) | Self::Construct { .. } => RunError::invalid(message),
            Self::Bounds(_) => RunError::new(ErrorCode::ScriptLimit, message)
                .with_hint("split the work into smaller scripts or narrow it"),
            Self::NotAllowed { .. } => RunError::new(ErrorCode::CommandNotAllowed, message)
                .with_hint("call list_commands for the allowed names; only those and the shell's own built-ins run"),
            Self::Outside(_) => RunError::new(ErrorCode::PathOutsideWorkspace, message),
            Self::ReadOnly(_) => RunError::new(ErrorCode::ReadOnly, message),
            Self::Stopped(e) => e.clone(),
            Self::Internal(_) => RunError::internal(message),
        }
    }
}

/// One command the interpreter asks the host to start, fully expanded.
#[derive(Debug)]
pub struct CommandStart {
    /// `argv`, the command's name first.
    pub argv: Vec<String>,
    /// Its working directory, relative to the workspace root.
    pub cwd: String,
    /// Its stdin (a shared handle: what it reads is gone for later commands).
    pub stdin: PipeReader,
    /// Its stdout.
    pub stdout: PipeWriter,
    /// The script's exported variables.
    pub env: Vec<(String, String)>,
}

/// How a command the host ran ended.
#[derive(Debug)]
pub struct CommandEnd {
    /// Its exit code, or why it was refused or stopped (which stops the script).
    pub status: Result<i32, RunError>,
    /// What it wrote to stderr (bounded by the host).
    pub stderr: Vec<u8>,
    /// Which runner ran it (`None`: it never started).
    pub runner: Option<RunnerKind>,
}

/// What the interpreter needs from the server.
pub trait Host: Sync {
    /// Whether `name` is a command on the allowlist.
    fn allows(&self, name: &str) -> bool;

    /// Checks, records and runs one command to its end. The host judges it against the
    /// allowlist and the policy again, whatever the interpreter already checked.
    fn run(&self, start: CommandStart) -> impl Future<Output = CommandEnd> + Send;

    /// Records a command the interpreter refused as it would have started (its name is not on
    /// the allowlist): its `received` and `denied` records, with its argv.
    fn record_refusal(
        &self,
        argv: &[String],
        cwd: &str,
        error: &RunError,
    ) -> impl Future<Output = ()> + Send;

    /// The workspace, for redirections, globs, `cd` and `test`.
    fn workspace(&self) -> &Workspace;

    /// Whether the policy lets the workspace be written (redirections to files).
    fn may_write(&self) -> bool;
}

/// A script's request: what to run and with what.
#[derive(Debug)]
pub struct ScriptRequest<'a> {
    /// The parsed and checked script.
    pub program: &'a brush_parser::ast::Program,
    /// The script's text (for byte offsets in errors).
    pub text: &'a str,
    /// The working directory, relative to the workspace root.
    pub cwd: String,
    /// The script's stdin.
    pub stdin: bytes::Bytes,
    /// The bounds.
    pub bounds: Bounds,
    /// The call's write budget, which redirections draw on too.
    pub write_pool: WritePool,
    /// Fired when the script must stop (the client cancelled, the deadline passed): the host
    /// stops the command running, the interpreter stops at its next step.
    pub cancel: CancellationToken,
}

/// A command the script started, for the reply.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    /// Its argv (as started).
    pub argv: Vec<String>,
    /// Its runner.
    pub runner: Option<RunnerKind>,
    /// Its exit code or the code it was stopped with.
    pub status: Result<i32, ErrorCode>,
}

/// The status of a command that wrote to a pipe whose reader had left, as by SIGPIPE.
pub const SIGPIPE_STATUS: i32 = 141;

/// Most command records a reply carries; later ones are counted only.
pub const MAX_RECORDS: usize = 1000;

/// Most bytes of argv one record keeps (its first arguments, each cut at 128 characters).
pub const MAX_RECORD_ARGV_BYTES: usize = 1024;

/// Most bytes of argv all records of a reply keep together (found by review: 1000 records of
/// 64 long arguments of control characters made a 210 MB reply).
pub const MAX_RECORDS_BYTES: usize = 256 * 1024;

/// The argv a command record keeps: arguments in order, each at most 128 characters, until
/// [`MAX_RECORD_ARGV_BYTES`].
pub fn record_argv(argv: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut room = MAX_RECORD_ARGV_BYTES;
    for a in argv {
        let cut: String = a.chars().take(128).collect();
        if cut.len() > room {
            break;
        }
        room -= cut.len();
        kept.push(cut);
    }
    kept
}

/// How a script ended.
#[derive(Debug)]
pub struct ScriptEnd {
    /// Its exit status, or why it was stopped.
    pub status: Result<i32, ShellError>,
    /// Its stdout and stderr as kept.
    pub stdout: Captured,
    /// Its stderr.
    pub stderr: Captured,
    /// The commands it started (at most [`MAX_RECORDS`], within [`MAX_RECORDS_BYTES`]).
    pub commands: Vec<CommandRecord>,
    /// Commands started in all.
    pub commands_started: u64,
}

/// What every part of a running script shares: the host, the bounds and the counters.
pub(crate) struct Ctx<'h, H: Host> {
    pub host: &'h H,
    pub bounds: Bounds,
    pub cancel: CancellationToken,
    pub write_pool: WritePool,
    steps: AtomicU64,
    commands: AtomicU64,
    records: Mutex<(Vec<CommandRecord>, usize)>,
}

impl<H: Host> Ctx<'_, H> {
    /// Counts one step.
    ///
    /// # Errors
    /// Past the step bound, or once the script was stopped.
    pub fn step(&self) -> Result<(), ShellError> {
        if self.cancel.is_cancelled() {
            return Err(ShellError::Stopped(RunError::new(
                ErrorCode::Cancelled,
                "the script was stopped",
            )));
        }
        let n = self.steps.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.bounds.max_steps {
            return Err(ShellError::Bounds(format!(
                "the script ran more than {} steps (commands and loop iterations)",
                self.bounds.max_steps
            )));
        }
        Ok(())
    }

    /// Counts one command started through the host.
    ///
    /// # Errors
    /// Past the command bound.
    pub fn command_started(&self) -> Result<(), ShellError> {
        let n = self.commands.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.bounds.max_commands {
            return Err(ShellError::Bounds(format!(
                "the script started more than {} commands",
                self.bounds.max_commands
            )));
        }
        Ok(())
    }

    /// Records a command that ran, for the reply.
    pub fn record(&self, r: CommandRecord) {
        let mut all = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes: usize = r.argv.iter().map(String::len).sum();
        if all.0.len() < MAX_RECORDS && all.1 + bytes <= MAX_RECORDS_BYTES {
            all.1 += bytes;
            all.0.push(r);
        }
    }
}

/// Runs a checked script to its end, its stop or its cancellation.
pub async fn run_script<H: Host>(host: &H, req: ScriptRequest<'_>) -> ScriptEnd {
    let ctx = Ctx {
        host,
        bounds: req.bounds,
        cancel: req.cancel.clone(),
        write_pool: req.write_pool.clone(),
        steps: AtomicU64::new(0),
        commands: AtomicU64::new(0),
        records: Mutex::new((Vec::new(), 0)),
    };
    let (stdin_w, stdin_r) = crate::pipe::pipe(crate::pipe::PIPE_CAPACITY);
    let (stdout_w, stdout_r) = crate::pipe::pipe(crate::pipe::PIPE_CAPACITY);
    let (stderr_w, stderr_r) = crate::pipe::pipe(crate::pipe::PIPE_CAPACITY);
    let stdout = Capture::new(req.bounds.stdout_bytes);
    let stderr = Capture::new(req.bounds.stderr_bytes);
    let state = state::State::new(
        req.cwd,
        state::Io {
            stdin: stdin_r,
            stdout: stdout_w,
            stderr: stderr_w,
        },
    );
    let interpret = async {
        let mut state = state;
        let r = exec::run_program(&ctx, &mut state, req.program).await;
        let status = state.status;
        drop(state);
        r.map(|()| status)
    };
    let (status, (), (), ()) = futures_util::join!(
        interpret,
        io::feed_bytes(stdin_w, req.stdin),
        io::collect(stdout_r, stdout.clone()),
        io::collect(stderr_r, stderr.clone()),
    );
    let (records, _) = ctx
        .records
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ScriptEnd {
        status,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
        commands: records,
        commands_started: ctx.commands.load(Ordering::Relaxed),
    }
}
