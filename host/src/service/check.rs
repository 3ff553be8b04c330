//! The check step of a call: the request's shape, then every stage judged against the policy,
//! before anything is recorded as allowed or runs.
//!
//! A `command` request is a call of one stage, a `pipeline` request one of 2 to [`MAX_STAGES`];
//! both are checked here the same way, stage by stage, and a refused stage refuses the whole
//! call. The may-write decision is made here, once ([`Checked::writable`]); the audit record
//! and the runner take it from there. The program is resolved to its runner's own type
//! ([`Target`]), so a native command can only reach the native runner.
//!
//! Pure: no I/O except resolving the working directory through the workspace capability. This
//! module must not record, run or change anything.

use crate::api::RunArgs;
use crate::error::{ErrorCode, RunError};
use crate::limits::Limits;
use crate::native::NativeRunner;
use crate::policy::NativeCommand;
use crate::policy::Policy;
use crate::policy::{Access, Catalog, CommandSpec, Program};
use crate::wasi::WasiProgram;
use crate::workspace::{Workspace, WorkspaceDir};
use std::sync::Arc;

/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 8;

/// How a call was asked for: it decides how stages are named in errors, how the audit records
/// are marked and how the reply is shaped; the flow is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// `command`: one stage, replied to as that command.
    Single,
    /// `pipeline`: each stage's stdout is the next one's stdin.
    Pipeline,
}

/// One command of a call, as asked.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    pub cwd: Option<&'a str>,
    /// The request's stdin for the first stage; `None` for the others (they read the stage
    /// before them).
    pub stdin: Option<&'a str>,
    pub timeout_ms: Option<u64>,
}

/// A call as asked: its shape and its stages in order (one for [`Shape::Single`]).
#[derive(Debug)]
pub(super) struct CallRequest<'a> {
    pub shape: Shape,
    pub stages: Vec<Request<'a>>,
    /// The request's `timeout_ms`, which bounds a whole pipeline.
    pub timeout_ms: Option<u64>,
}

/// The request's shape: exactly one of `command` and `pipeline`, a pipeline of 2 to
/// [`MAX_STAGES`] stages and without top-level `args`.
///
/// # Errors
/// INVALID_ARGUMENT saying what is wrong with the shape; such a request has no stages to record.
pub(super) fn shape_of(args: &RunArgs) -> Result<CallRequest<'_>, RunError> {
    let stage = |command, stage_args, first: bool| Request {
        command,
        args: stage_args,
        cwd: args.cwd.as_deref(),
        stdin: if first { args.stdin.as_deref() } else { None },
        timeout_ms: args.timeout_ms,
    };
    match (&args.command, &args.pipeline) {
        (Some(command), None) => Ok(CallRequest {
            shape: Shape::Single,
            stages: vec![stage(command.as_str(), &args.args, true)],
            timeout_ms: args.timeout_ms,
        }),
        (None, Some(stages)) => {
            if !(2..=MAX_STAGES).contains(&stages.len()) {
                return Err(RunError::invalid(format!(
                    "a pipeline has 2 to {MAX_STAGES} stages; this one has {}",
                    stages.len()
                ))
                .with_hint("for a single command use `command`; for a longer chain, write an intermediate result to a workspace file"));
            }
            if !args.args.is_empty() {
                return Err(RunError::invalid(
                    "`args` is for a single `command`; in a pipeline each stage has its own `args`",
                ));
            }
            Ok(CallRequest {
                shape: Shape::Pipeline,
                stages: stages
                    .iter()
                    .enumerate()
                    .map(|(i, s)| stage(s.command.as_str(), &s.args, i == 0))
                    .collect(),
                timeout_ms: args.timeout_ms,
            })
        }
        (Some(_), Some(_)) => Err(RunError::invalid(
            "give either `command` or `pipeline`, not both",
        )
        .with_hint(
            "for one command use {\"command\", \"args\"}; for several, list them all in `pipeline`",
        )),
        (None, None) => Err(RunError::invalid("the request names no command").with_hint(
            "pass {\"command\": NAME, \"args\": [..]}, or `pipeline` with 2 to 8 stages",
        )),
    }
}

/// What runs a checked stage: a WASI program, or a native command with the runner that was
/// found ready for it.
#[derive(Debug)]
pub(super) enum Target<'a> {
    Wasi(WasiProgram),
    Native {
        runner: &'a NativeRunner,
        command: Arc<NativeCommand>,
    },
}

/// A stage that passed every check.
#[derive(Debug)]
pub(super) struct Checked<'a> {
    pub spec: &'a CommandSpec,
    pub target: Target<'a>,
    pub argv: Vec<String>,
    pub cwd: WorkspaceDir,
    pub stdin: bytes::Bytes,
    pub limits: Limits,
    /// Whether the command may write to the workspace: its access is `write` and the policy
    /// makes the workspace writable. Decided here and nowhere else.
    pub writable: bool,
}

impl Checked<'_> {
    /// The allowlist rule that let the command through, for `policy.rule`.
    pub fn rule(&self) -> &'static str {
        match self.spec.program {
            Program::Builtin => "allowlist:builtin",
            Program::Module(_) => "allowlist:tools_dir",
            Program::Native(_) => "allowlist:native",
        }
    }
}

/// A call the policy refused: the first refused stage (from 0) and why.
#[derive(Debug)]
pub(super) struct Refusal {
    pub stage: usize,
    pub error: RunError,
}

/// What the check step judges by: the policy, the allowlist, the workspace and the runners'
/// readiness.
pub(super) struct Checker<'a> {
    pub policy: &'a Policy,
    pub catalog: &'a Catalog,
    pub workspace: &'a Workspace,
    pub native: Option<&'a NativeRunner>,
    /// The built-in module's environment (the policy's `[wasi.env]`).
    pub guest_env: &'a Arc<[(String, String)]>,
}

impl<'a> Checker<'a> {
    /// Checks every stage in order; the first refused stage refuses the call.
    pub fn check_call(&self, call: &CallRequest<'_>) -> Result<Vec<Checked<'a>>, Refusal> {
        call.stages
            .iter()
            .enumerate()
            .map(|(stage, r)| self.check(r).map_err(|error| Refusal { stage, error }))
            .collect()
    }

    /// Validates one stage against the policy; nothing runs before this passes.
    pub fn check(&self, r: &Request<'_>) -> Result<Checked<'a>, RunError> {
        let spec = self.catalog.lookup(r.command)?;
        let bounds = &self.policy.request;
        if r.args.len() > bounds.max_args {
            return Err(RunError::invalid(format!(
                "{} arguments given; the limit is {}",
                r.args.len(),
                bounds.max_args
            )));
        }
        let arg_bytes: usize = r.args.iter().map(String::len).sum();
        if arg_bytes > bounds.max_arg_bytes {
            return Err(RunError::invalid(format!(
                "arguments total {arg_bytes} bytes; the limit is {}",
                bounds.max_arg_bytes
            ))
            .with_hint("pass large data on stdin or in a workspace file instead"));
        }
        if let Some(i) = r.args.iter().position(|a| a.contains('\0')) {
            return Err(RunError::invalid(format!(
                "argument {i} contains a NUL byte"
            )));
        }
        let stdin_len = r.stdin.map_or(0, str::len);
        if stdin_len > bounds.max_stdin_bytes {
            return Err(RunError::invalid(format!(
                "stdin is {stdin_len} bytes; the limit is {}",
                bounds.max_stdin_bytes
            ))
            .with_hint("write large input to a workspace file and pass its name"));
        }
        let writes = spec.access == Access::Write;
        if writes && !self.policy.workspace_writable {
            return Err(RunError::new(
                ErrorCode::ReadOnly,
                format!("{} changes files, and the policy makes the workspace read-only", spec.name),
            )
            .with_hint("use a command that only reads, or ask the operator to set workspace_writable = true"));
        }
        let writable = writes && self.policy.workspace_writable;
        let cwd = self.workspace.resolve_dir(r.cwd.unwrap_or(""))?;
        let target = match &spec.program {
            Program::Native(command) => {
                let runner = self
                    .native
                    .ok_or_else(|| RunError::internal("no native runner"))?;
                runner.ready(writable)?;
                Target::Native {
                    runner,
                    command: Arc::clone(command),
                }
            }
            Program::Module(m) => Target::Wasi(WasiProgram::Module(Arc::clone(m))),
            Program::Builtin => Target::Wasi(WasiProgram::Builtin {
                env: Arc::clone(self.guest_env),
            }),
        };
        let limits = spec
            .limits(&self.policy.limits)
            .with_timeout(r.timeout_ms, self.policy.max_timeout_ms)?;
        let mut argv = Vec::with_capacity(r.args.len() + 1);
        argv.push(spec.name.clone());
        argv.extend(r.args.iter().cloned());
        Ok(Checked {
            spec,
            target,
            argv,
            cwd,
            stdin: bytes::Bytes::from(r.stdin.unwrap_or_default().to_owned()),
            limits,
            writable,
        })
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
