//! The shapes clients see: tool inputs and results. Their JSON Schemas are derived from these
//! types (never hand-written), so the schema and the behaviour cannot drift apart.

use crate::error::{ErrorCode, RunError};
use crate::limits::Limits;
use crate::outcome::{Outcome, RunnerKind};
use crate::policy::{Access, Annotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Input of the `run` tool.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// Exact name of an allowed command (see list_commands), e.g. "ls". Not a path, not shell
    /// text. Give either `command` or `pipeline`.
    #[serde(default)]
    pub command: Option<String>,
    /// Arguments, passed to the command as they are: no shell, no globbing, no variable expansion.
    #[serde(default)]
    pub args: Vec<String>,
    /// Instead of `command`: 2 to 8 commands run in order, each one's stdout fed to the next
    /// one's stdin (like `a | b | c` in a shell, without a shell). The result is the last
    /// command's output and exit code, plus each stage's exit code in `stages`.
    #[serde(default)]
    #[schemars(length(min = 2, max = 8))]
    pub pipeline: Option<Vec<PipelineStage>>,
    /// Working directory relative to the workspace root, e.g. "src". Defaults to the root.
    /// In a pipeline, every stage runs here.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Text given to the command (in a pipeline: the first stage) on standard input. Defaults
    /// to empty input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Wall-clock limit in milliseconds, at most the policy's maximum; a pipeline shares one
    /// deadline. Defaults to the policy's timeout.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

impl RunArgs {
    /// A request for one command (how `runbox exec` and tests build one).
    pub fn command(name: impl Into<String>, args: Vec<String>) -> Self {
        Self {
            command: Some(name.into()),
            args,
            pipeline: None,
            cwd: None,
            stdin: None,
            timeout_ms: None,
        }
    }
}

/// One command of a pipeline.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineStage {
    /// Exact name of an allowed command, as for `command`.
    pub command: String,
    /// Its arguments, passed as they are.
    #[serde(default)]
    pub args: Vec<String>,
}

/// How one stage of a pipeline ended.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StageResult {
    /// The stage's command.
    pub command: String,
    /// Its exit code; absent when it was stopped or did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it was stopped or did not run (a stable error code); absent when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorCode>,
    /// Bytes it wrote to stdout (what the next stage read).
    pub stdout_bytes: u64,
    /// Bytes it wrote to stderr.
    pub stderr_bytes: u64,
    /// Wall-clock milliseconds it ran.
    pub duration_ms: u64,
    /// Which runner ran it.
    pub runner: RunnerKind,
}

impl StageResult {
    /// The result of a stage that ran.
    pub fn of(command: &str, outcome: &Outcome) -> Self {
        Self {
            command: command.to_owned(),
            exit_code: outcome.exit_code(),
            error: outcome.error_code(),
            stdout_bytes: outcome.stdout.total_bytes,
            stderr_bytes: outcome.stderr.total_bytes,
            duration_ms: duration_ms(outcome),
            runner: outcome.runner,
        }
    }

    /// A stage that never ran because an earlier one ended the pipeline.
    pub fn not_run(command: &str, runner: RunnerKind, why: ErrorCode) -> Self {
        Self {
            command: command.to_owned(),
            exit_code: None,
            error: Some(why),
            stdout_bytes: 0,
            stderr_bytes: 0,
            duration_ms: 0,
            runner,
        }
    }
}

/// Input of the `shell` tool.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellArgs {
    /// Bash syntax, interpreted by runbox itself (never a real shell): pipes, `&&`, `||`, `;`,
    /// redirections inside the workspace, globs, variables, `$(...)`, `$((...))`, `if`/`for`/
    /// `while`/`case`, functions. Every command must be an allowlisted name (see
    /// list_commands) or one of the interpreter's built-ins (cd, echo, read, test, export, ...).
    pub script: String,
    /// Working directory relative to the workspace root, e.g. "src". Defaults to the root.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Text the script reads on standard input. Defaults to empty input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Wall-clock limit in milliseconds for the whole script, at most the policy's maximum.
    /// Defaults to the policy's timeout.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

/// One command a `shell` script started.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScriptCommand {
    /// Its arguments as started (long ones cut), the command's name first.
    pub argv: Vec<String>,
    /// Which runner ran it ("wasi" or "native"); absent when it never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerKind>,
    /// Its exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The code it was refused or stopped with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorCode>,
}

/// Result of a `shell` call that ran to its end (any exit status).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ShellOutput {
    /// runbox's id for this call; the audit log records it and every command's records.
    pub request_id: String,
    /// The script's exit status (bash's `$?` at its end, or `exit N`).
    pub exit_code: i32,
    /// Standard output (UTF-8; invalid bytes replaced), cut at the policy's cap.
    pub stdout: String,
    /// Standard error, cut at the policy's cap.
    pub stderr: String,
    /// True when stdout was cut.
    pub stdout_truncated: bool,
    /// True when stderr was cut.
    pub stderr_truncated: bool,
    /// Wall-clock milliseconds the script ran.
    pub duration_ms: u64,
    /// The commands it started, in order (at most 1000; built-ins are not listed).
    pub commands: Vec<ScriptCommand>,
    /// How many commands it started, when more than `commands` lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands_started: Option<u64>,
}

/// Result of a `run` call that ran to its own exit (any exit code).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunOutput {
    /// runbox's id for this call; the audit log records it.
    pub request_id: String,
    /// The command's exit code; non-zero is a normal result, not an error.
    pub exit_code: i32,
    /// Standard output (UTF-8; invalid bytes replaced), cut at the policy's cap.
    pub stdout: String,
    /// Standard error (UTF-8; invalid bytes replaced), cut at the policy's cap.
    pub stderr: String,
    /// True when stdout was longer than the cap and was cut.
    pub stdout_truncated: bool,
    /// True when stderr was longer than the cap and was cut.
    pub stderr_truncated: bool,
    /// Wall-clock milliseconds the command ran.
    pub duration_ms: u64,
    /// Which runner ran it: "wasi" or "native" (a pipeline: its last stage's).
    pub runner: RunnerKind,
    /// WASI commands: bytes the command wrote to files (in a pipeline: all stages together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
    /// Present and true when the disk was full during the call: a write failed with "No
    /// space left on device" (the command's stderr says how it reacted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disk_full: bool,
    /// Pipelines only: how each stage ended, in order. `exitCode` above is the last stage's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageResult>>,
}

impl RunOutput {
    /// The output of a finished command with its exit code.
    pub fn from_outcome(request_id: &str, exit_code: i32, outcome: &Outcome) -> Self {
        Self {
            request_id: request_id.to_owned(),
            exit_code,
            stdout: outcome.stdout.text(),
            stderr: outcome.stderr.text(),
            stdout_truncated: outcome.stdout.truncated,
            stderr_truncated: outcome.stderr.truncated,
            duration_ms: duration_ms(outcome),
            runner: outcome.runner,
            bytes_written: outcome.file_writes.map(|w| w.bytes),
            disk_full: outcome.file_writes.is_some_and(|w| w.disk_full),
            stages: None,
        }
    }
}

fn duration_ms(outcome: &Outcome) -> u64 {
    u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX)
}

/// What a command printed before a limit stopped it, so the caller can see how far it got.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PartialOutput {
    /// Stdout so far, cut at the cap.
    pub stdout: String,
    /// Stderr so far, cut at the cap.
    pub stderr: String,
    /// True when stdout was cut.
    pub stdout_truncated: bool,
    /// True when stderr was cut.
    pub stderr_truncated: bool,
    /// Milliseconds until it was stopped.
    pub duration_ms: u64,
    /// Which runner ran it.
    pub runner: RunnerKind,
    /// Native commands: how many processes were killed with it (its whole tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes_killed: Option<u32>,
    /// WASI commands: bytes written to files before it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
    /// Present and true when the disk was full during the call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disk_full: bool,
    /// Pipelines only: how each stage ended, in order (the stage that stopped the pipeline,
    /// and those after it that did not run, carry an `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageResult>>,
    /// `shell` only: the commands the script started before it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<ScriptCommand>>,
}

impl PartialOutput {
    /// The partial output of a stopped command.
    pub fn from_outcome(outcome: &Outcome) -> Self {
        Self {
            stdout: outcome.stdout.text(),
            stderr: outcome.stderr.text(),
            stdout_truncated: outcome.stdout.truncated,
            stderr_truncated: outcome.stderr.truncated,
            duration_ms: duration_ms(outcome),
            runner: outcome.runner,
            processes_killed: outcome.processes_killed,
            bytes_written: outcome.file_writes.map(|w| w.bytes),
            disk_full: outcome.file_writes.is_some_and(|w| w.disk_full),
            stages: None,
            commands: None,
        }
    }
}

/// The machine-readable error record of a failed call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Stable code, e.g. COMMAND_NOT_ALLOWED.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
    /// runbox's id for this call; the audit log records it.
    pub request_id: String,
    /// Whether the same request may succeed if repeated.
    pub retryable: bool,
    /// What to change, when there is something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Output produced before the command was stopped (limits and cancellation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<PartialOutput>,
}

/// `{"error": {...}}`, the structured content of every error result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

impl ErrorEnvelope {
    /// Wraps a [`RunError`] for the wire.
    pub fn new(request_id: &str, e: &RunError, partial: Option<PartialOutput>) -> Self {
        Self {
            error: ErrorBody {
                code: e.code,
                message: e.message.clone(),
                request_id: request_id.to_owned(),
                retryable: e.code.retryable(),
                hint: e.hint.clone(),
                partial,
            },
        }
    }
}

/// Input of `list_commands` (none).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListCommandsArgs {}

/// One allowed command as `list_commands` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommandInfo {
    /// The exact name to pass as `command`.
    pub name: String,
    /// What it does, in one line.
    pub description: String,
    /// "wasi" or "native".
    pub runner: RunnerKind,
    /// "read" (read-only view of the workspace) or "write" (may change files).
    pub access: Access,
    /// Default limits of a call.
    pub limits: Limits,
    /// MCP tool annotations: hints for deciding whether to ask a human before calling. Derived
    /// from `access`, or from the manifest of an operator-supplied command.
    pub annotations: Annotations,
}

/// Result of `list_commands`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommandList {
    /// Allowed commands, sorted by name.
    pub commands: Vec<CommandInfo>,
    /// Highest timeout_ms a call may ask for.
    pub max_timeout_ms: u64,
    /// Whether commands may write to the workspace at all.
    pub workspace_writable: bool,
}

/// Every structured result of `run`: its output schema. Error results carry structured content
/// too (some clients validate it against the output schema even when `isError` is set), so the
/// schema admits both shapes.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RunResult {
    /// The command ran to its own exit.
    Ran(RunOutput),
    /// The call failed or was refused.
    Failed(ErrorEnvelope),
}

/// Every structured result of `shell`: its output schema.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ShellResult {
    /// The script ran to its end.
    Ran(ShellOutput),
    /// The script was refused or stopped.
    Failed(ErrorEnvelope),
}

/// Every structured result of `list_commands`: its output schema.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ListResult {
    /// The allowlist.
    Listed(CommandList),
    /// The call was refused (it takes no arguments).
    Failed(ErrorEnvelope),
}
