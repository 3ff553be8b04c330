//! The audit record (schema v2): what was asked, who asked, what the policy decided, what
//! happened, and the record's place in the hash chain. `docs/audit.md` documents every field.
//!
//! Records never hold environment values or output contents: output appears only as byte counts
//! and sha256 digests, arguments longer than [`MAX_VALUE_BYTES`] only as a prefix, a length and
//! a digest. Sections that do not apply to a stage are absent from the JSON, not `null`.

use crate::error::ErrorCode;
use crate::limits::Limits;
use crate::outcome::{Captured, Outcome, Termination};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Current schema version.
pub const SCHEMA_VERSION: u32 = 2;

/// Longest string value kept whole; longer values are cut to a prefix plus length and sha256.
pub const MAX_VALUE_BYTES: usize = 256;

/// Most arguments recorded one by one; the rest are summarised by count and digest.
pub const MAX_ARGS_RECORDED: usize = 64;

/// Most bytes the recorded arguments of one record may take as JSON; the arguments past it are
/// summarised like those past [`MAX_ARGS_RECORDED`], so that no request makes a big record.
pub const MAX_ARGV_RECORD_BYTES: usize = 4096;

/// The `prevHash` of the very first record of a log.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a record stands in the life of a call or of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// A call arrived; written before anything is checked or run.
    Received,
    /// The command ran and exited by itself (any exit code).
    Completed,
    /// The policy refused the call; nothing ran.
    Denied,
    /// The call was allowed but did not end with the command's own exit: a limit, a
    /// cancellation, a crash in the module, or a fault inside runbox.
    Failed,
    /// The server (or an `exec`) started.
    Start,
    /// The server stopped cleanly.
    Stop,
    /// First record of every file: names the file before it and why a new one began.
    Open,
    /// A torn last line was found at start and set aside.
    Recovered,
    /// Lines the mirror (`audit.mirror`) could not pass on: how many, since when, and why.
    Mirror,
    /// A file runbox reads at start was read again on SIGHUP (the bearer token file): what is
    /// in force now, or why the old contents stay.
    Reload,
}

impl Stage {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Completed => "completed",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Open => "open",
            Self::Recovered => "recovered",
            Self::Mirror => "mirror",
            Self::Reload => "reload",
        }
    }

    /// Whether the record belongs to a call (as opposed to the server's or the log's own).
    pub fn is_call_record(self) -> bool {
        matches!(
            self,
            Self::Received | Self::Completed | Self::Denied | Self::Failed
        )
    }
}

/// A string as recorded: itself when short, otherwise a cut that still identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Text {
    /// The whole value (at most [`MAX_VALUE_BYTES`]).
    Full(String),
    /// A value too long to keep.
    Cut(CutText),
}

/// A long value: its first bytes, its full length and the sha256 of all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutText {
    /// The first bytes (at most [`MAX_VALUE_BYTES`], on a character boundary).
    pub head: String,
    /// Length of the full value in bytes.
    pub bytes: u64,
    /// sha256 of the full value, hex.
    pub sha256: String,
}

impl Text {
    /// Records `value`, cutting it if it is longer than [`MAX_VALUE_BYTES`].
    pub fn of(value: &str) -> Self {
        Self::of_up_to(value, MAX_VALUE_BYTES)
    }

    /// Records `value` as [`of`](Self::of) does, with a bound of `max` bytes instead (a
    /// script, whose first bytes alone could hide what it does).
    pub fn of_up_to(value: &str, max: usize) -> Self {
        let end = logged_prefix_within(value, max);
        if end == value.len() {
            return Self::Full(value.to_owned());
        }
        Self::Cut(CutText {
            head: value[..end].to_owned(),
            bytes: value.len() as u64,
            sha256: sha256_hex(value.as_bytes()),
        })
    }

    /// Records raw bytes known by their first bytes `head`, full length `bytes` and `sha256`
    /// (a client line, which may be huge and need not be UTF-8): whole when `head` is all of it,
    /// valid UTF-8 and short; otherwise cut, with invalid UTF-8 in the head replaced by U+FFFD.
    pub fn of_bytes(head: &[u8], bytes: u64, sha256: &[u8; 32]) -> Self {
        let head = &head[..head.len().min(MAX_VALUE_BYTES)];
        let lossy = String::from_utf8_lossy(head);
        let end = logged_prefix(&lossy);
        if head.len() as u64 == bytes
            && end == lossy.len()
            && let Ok(s) = std::str::from_utf8(head)
        {
            return Self::Full(s.to_owned());
        }
        Self::Cut(CutText {
            head: lossy[..end].to_owned(),
            bytes,
            sha256: hex::encode(sha256),
        })
    }

    /// The recorded text (the head of a cut value).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Full(s) => s,
            Self::Cut(c) => &c.head,
        }
    }
}

/// Arguments past [`MAX_ARGS_RECORDED`]: how many and a digest of all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OmittedArgs {
    /// How many arguments are not listed.
    pub count: u64,
    /// sha256 over the omitted arguments, each followed by a NUL byte.
    pub sha256: String,
}

/// The MCP client, from its `initialize` handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// `clientInfo.name`.
    pub name: Text,
    /// `clientInfo.version`.
    pub version: Text,
}

/// The HTTP session a call came through (`serve --listen`); absent on stdio.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The MCP session id (`Mcp-Session-Id`); absent for a request outside a session (the
    /// stateless 2026-07-28 era, or the `initialize` that creates the session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Text>,
    /// The name of the bearer token the request presented (never the token); absent when the
    /// server has no tokens or the request presented none that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Allowed or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The call passed every check.
    Allow,
    /// The call was refused.
    Deny,
}

/// What the policy decided and by which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// `allow` or `deny`.
    pub decision: Decision,
    /// The rule that decided (see `docs/audit.md`), e.g. `allowlist:builtin`, `allowlist`,
    /// `request`, `workspace.path`, `workspace_writable`.
    pub rule: String,
    /// sha256 of the effective policy ([`crate::policy::Policy::hash`]).
    pub hash: String,
}

/// The sandbox a command ran in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxInfo {
    /// The limits in force for this call.
    pub limits: Limits,
    /// How the command was confined.
    pub confinement: Confinement,
}

/// The confinement in force for one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Confinement {
    /// How the confinement is enforced (`wasi`: the module's only capabilities are its imports).
    pub mechanism: String,
    /// The workspace as the command saw it: `read-only` or `read-write`.
    pub filesystem: String,
    /// Network access: `none`.
    pub network: String,
    /// Names (never values) of the environment variables the command received.
    pub env_names: Vec<String>,
    /// Native commands: the paths their toolchain keys add and what bounds their memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<super::call::NativeGrants>,
}

/// One output stream, described without its contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Bytes the command wrote (kept or not).
    pub bytes: u64,
    /// sha256 of every byte the command wrote, hex.
    pub sha256: String,
    /// Whether the reply carried only the first part.
    pub truncated: bool,
}

impl StreamInfo {
    /// Describes a captured stream.
    pub fn of(c: &Captured) -> Self {
        Self {
            bytes: c.total_bytes,
            sha256: hex::encode(c.sha256),
            truncated: c.truncated,
        }
    }
}

/// Which stage of a pipeline a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelinePosition {
    /// The stage, from 1.
    pub stage: u32,
    /// How many stages the pipeline has.
    pub of: u32,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    /// `exited` when the command exited by itself, otherwise the error code that stopped it.
    pub outcome: String,
    /// The exit code, when it exited by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it (native runner only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Wall-clock milliseconds it ran.
    pub duration_ms: u64,
    /// Its stdout.
    pub stdout: StreamInfo,
    /// Its stderr.
    pub stderr: StreamInfo,
    /// Processes killed when it ended (native runner only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes_killed: Option<u64>,
    /// Bytes it wrote to files (WASI runner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
    /// Present and true when the disk refused one of its writes (full).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disk_full: bool,
}

impl ResultInfo {
    /// Describes a runner's outcome.
    pub fn of(outcome: &Outcome) -> Self {
        let (name, exit_code) = match &outcome.termination {
            Termination::Exited(code) => ("exited".to_owned(), Some(*code)),
            Termination::Stopped(e) => (e.code.as_str().to_owned(), None),
        };
        Self {
            outcome: name,
            exit_code,
            signal: None,
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            stdout: StreamInfo::of(&outcome.stdout),
            stderr: StreamInfo::of(&outcome.stderr),
            processes_killed: outcome.processes_killed.map(u64::from),
            bytes_written: outcome.file_writes.map(|w| w.bytes),
            disk_full: outcome.file_writes.is_some_and(|w| w.disk_full),
        }
    }
}

/// An error as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The stable error code.
    pub code: String,
    /// The message (cut if long).
    pub message: Text,
}

/// The server, in `start` and `stop` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// runbox's version.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// `serve` or `exec`.
    pub mode: String,
    /// sha256 of the effective policy.
    pub policy_hash: String,
    /// The protections in force, one short phrase each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protections: Vec<String>,
    /// Audit settings in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditSettings>,
    /// Why the server stopped (`stop` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Calls still running when the stop record was written (`stop` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
}

/// The audit log's own settings, recorded at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditSettings {
    /// Files whose newest record is older than this are deleted.
    pub retention_days: u64,
    /// A file is closed and a new one begun past this size.
    pub max_file_bytes: u64,
    /// New calls are refused once the log reaches this size.
    pub max_total_bytes: u64,
    /// Which records are synced before the writer returns.
    pub durability: String,
    /// Where every line is also written (`stdout`, `fd:N`), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
}

/// A reload (`reload` records): which file, and what is in force after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadInfo {
    /// The policy key of the file (`http.auth_token_file`).
    pub key: String,
    /// The file, as configured.
    pub path: Text,
    /// Whether the new contents are in force (`false`: the old ones stay; `error` says why).
    pub applied: bool,
    /// How many tokens are in force now.
    pub tokens: u64,
    /// Their names (never the tokens), the first [`MAX_ARGS_RECORDED`].
    pub names: Vec<Text>,
}

/// Lines the mirror dropped (`mirror` records): the file has them, the mirror's reader does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorInfo {
    /// Where the mirror writes (`stdout`, `fd:N`).
    pub target: String,
    /// Lines dropped since the last `mirror` record.
    pub dropped: u64,
    /// Lines dropped since this server started.
    pub dropped_total: u64,
    /// The `seq` of the first and the last line dropped since the last `mirror` record.
    pub first_seq: u64,
    /// See `first_seq`.
    pub last_seq: u64,
    /// Why the last of them was dropped.
    pub reason: String,
}

/// The file a record begins (`open` records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// This file's name.
    pub name: String,
    /// The file before it in the chain, if any is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Why a new file began: `new` (first file of a log), `start`, `day`, `size`, or `lost`
    /// (the previous file vanished while the server ran).
    pub reason: String,
}

/// A torn tail found at start (`recovered` records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveredInfo {
    /// The file that ended in a torn line.
    pub file: String,
    /// Byte offset where the torn part began (the file now ends there).
    pub offset: u64,
    /// Length of the torn part.
    pub bytes: u64,
    /// sha256 of the torn part.
    pub sha256: String,
    /// Where the torn bytes were saved, next to the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_as: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u32,
    /// Position in the log: 1 for the first record ever, +1 for each record after, across files
    /// and restarts. Set by the writer.
    pub seq: u64,
    /// RFC 3339 UTC time with microseconds when the record was written. Set by the writer.
    pub time: String,
    /// What the record is about.
    pub stage: Stage,
    /// runbox's id for the call (UUID v7), the same in every stage and in the reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The JSON-RPC id the client used (a number as its decimal text), cut like any value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_request_id: Option<Text>,
    /// The MCP client, from the handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientInfo>,
    /// The HTTP session (`serve --listen` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
    /// The MCP tool (`run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// `wasi` or `native`, once the command is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// The command name as requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Text>,
    /// A client line the MCP front refused (`tool` is `protocol`): never kept whole when long,
    /// invalid UTF-8 in its head replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<Text>,
    /// A `shell` call's script (on its own records, not on those of the commands it started):
    /// never kept whole when long, as an argument is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Text>,
    /// How many arguments the request carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argc: Option<u64>,
    /// The arguments (at most [`MAX_ARGS_RECORDED`], each cut if long).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<Text>>,
    /// Arguments past [`MAX_ARGS_RECORDED`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv_omitted: Option<OmittedArgs>,
    /// The record's place in a pipeline: every stage has its own records, all under the
    /// call's `requestId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelinePosition>,
    /// Working directory: workspace-relative once resolved, as requested before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<Text>,
    /// The policy's decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyInfo>,
    /// The sandbox in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxInfo>,
    /// How the command ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultInfo>,
    /// Why the call was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// The server (`start`, `stop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    /// The file this record opens (`open`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// What was set aside (`recovered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<RecoveredInfo>,
    /// Lines the mirror dropped (`mirror`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorInfo>,
    /// A file read again (`reload`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadInfo>,
    /// Log files deleted by retention since the record before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<String>,
    /// `hash` of the record before this one ([`GENESIS_HASH`] for the first). Set by the writer.
    pub prev_hash: String,
    /// sha256 over this line up to this member (see [`super::chain`]). Set by the writer;
    /// always the last member of the line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl AuditRecord {
    /// An empty record of a stage; the writer fills `seq`, `time` and the hashes.
    pub fn new(stage: Stage) -> Self {
        Self {
            v: SCHEMA_VERSION,
            seq: 0,
            time: String::new(),
            stage,
            request_id: None,
            mcp_request_id: None,
            client: None,
            session: None,
            tool: None,
            runner: None,
            command: None,
            line: None,
            script: None,
            argc: None,
            argv: None,
            argv_omitted: None,
            pipeline: None,
            cwd: None,
            policy: None,
            sandbox: None,
            result: None,
            error: None,
            server: None,
            file: None,
            recovered: None,
            mirror: None,
            reload: None,
            pruned: Vec::new(),
            prev_hash: String::new(),
            hash: None,
        }
    }

    /// Sets `argc`, `argv` and `argv_omitted` from a request's arguments.
    pub fn set_args(&mut self, args: &[String]) {
        self.argc = Some(args.len() as u64);
        let mut recorded = Vec::new();
        let mut room = MAX_ARGV_RECORD_BYTES;
        for a in args.iter().take(MAX_ARGS_RECORDED) {
            let text = Text::of(a);
            // A cut value also carries its length and digest (~100 bytes more).
            let cost = match &text {
                Text::Full(v) => v.chars().map(logged_len).sum::<usize>() + 8,
                Text::Cut(c) => c.head.chars().map(logged_len).sum::<usize>() + 120,
            };
            if cost > room {
                break;
            }
            room -= cost;
            recorded.push(text);
        }
        let listed = recorded.len();
        self.argv = Some(recorded);
        self.argv_omitted = (args.len() > listed).then(|| {
            let mut h = Sha256::new();
            for a in &args[listed..] {
                h.update(a.as_bytes());
                h.update([0]);
            }
            OmittedArgs {
                count: (args.len() - listed) as u64,
                sha256: hex::encode(h.finalize()),
            }
        });
    }

    /// Sets `error` from a code and message.
    pub fn set_error(&mut self, code: ErrorCode, message: &str) {
        self.error = Some(ErrorInfo {
            code: code.as_str().to_owned(),
            message: Text::of(message),
        });
    }

    /// The error code, if the record has one (`error.code`, else a stopped `result.outcome`).
    pub fn code(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.code.as_str()).or_else(|| {
            self.result
                .as_ref()
                .filter(|r| r.exit_code.is_none())
                .map(|r| r.outcome.as_str())
        })
    }
}

/// The policy rule behind a refusal with `code`, for `policy.rule`.
pub fn denial_rule(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::CommandNotAllowed => "allowlist",
        ErrorCode::PathOutsideWorkspace | ErrorCode::PathNotFound => "workspace.path",
        ErrorCode::ReadOnly => "workspace_writable",
        ErrorCode::InvalidArgument => "request",
        ErrorCode::AuditUnavailable => "audit",
        ErrorCode::Cancelled => "cancelled",
        ErrorCode::SandboxUnavailable => "sandbox",
        // Limits and failures end a call that ran; they are never a refusal. Listed one by one
        // so that a new code must be placed here on purpose.
        ErrorCode::Timeout
        | ErrorCode::CpuLimit
        | ErrorCode::MemoryLimit
        | ErrorCode::OutputLimit
        | ErrorCode::WriteLimit
        | ErrorCode::ScriptLimit
        | ErrorCode::ProcessLimit
        | ErrorCode::CommandFailed
        | ErrorCode::Internal => "internal",
    }
}

/// Most bytes of a `shell` script the log keeps whole (agents' scripts are almost always
/// shorter; a longer one is cut with its length and sha256).
pub const MAX_SCRIPT_BYTES: usize = 8 * 1024;

/// The length of the longest prefix of `value` that takes at most [`MAX_VALUE_BYTES`] in the
/// log's JSON (on a character boundary).
fn logged_prefix(value: &str) -> usize {
    logged_prefix_within(value, MAX_VALUE_BYTES)
}

/// [`logged_prefix`] for a bound of `max` bytes.
fn logged_prefix_within(value: &str, max: usize) -> usize {
    let mut end = 0;
    let mut cost = 0;
    for (i, c) in value.char_indices() {
        cost += logged_len(c);
        if cost > max {
            break;
        }
        end = i + c.len_utf8();
    }
    end
}

/// Bytes a character takes in the log's JSON: six for a control character (`\u0001`), two for
/// a quote or backslash, else its UTF-8 length.
fn logged_len(c: char) -> usize {
    match c {
        '"' | '\\' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// sha256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_stay_whole_and_long_ones_are_cut_with_length_and_digest() {
        assert_eq!(Text::of("abc"), Text::Full("abc".into()));
        let long = "é".repeat(2000);
        let Text::Cut(c) = Text::of(&long) else {
            panic!("not cut")
        };
        assert!(c.head.len() <= MAX_VALUE_BYTES);
        assert!(long.starts_with(&c.head));
        assert_eq!(c.bytes, 4000);
        assert_eq!(c.sha256, sha256_hex(long.as_bytes()));
        let json = serde_json::to_value(Text::of(&long)).unwrap();
        assert_eq!(json["bytes"], 4000);
        assert_eq!(serde_json::to_value(Text::of("x")).unwrap(), "x");
    }

    #[test]
    fn raw_lines_are_whole_only_when_short_and_utf8() {
        let sha = [7u8; 32];
        assert_eq!(Text::of_bytes(b"{x", 2, &sha), Text::Full("{x".into()));
        let Text::Cut(c) = Text::of_bytes(b"{x", 20, &sha) else {
            panic!("a head of a longer line is cut")
        };
        assert_eq!((c.head.as_str(), c.bytes), ("{x", 20));
        assert_eq!(c.sha256, hex::encode(sha));
        let Text::Cut(c) = Text::of_bytes(b"a\xffb", 3, &sha) else {
            panic!("invalid UTF-8 is never whole")
        };
        assert_eq!(c.head, "a\u{fffd}b");
        let bad = vec![0xff; 1000];
        let Text::Cut(c) = Text::of_bytes(&bad, 1000, &sha) else {
            panic!()
        };
        assert!(c.head.len() <= MAX_VALUE_BYTES && c.head.starts_with('\u{fffd}'));
    }

    #[test]
    fn escaped_characters_count_at_their_logged_size() {
        let ctl = "\u{1}".repeat(255);
        let Text::Cut(c) = Text::of(&ctl) else {
            panic!("not cut")
        };
        let logged = serde_json::to_string(&c.head).unwrap().len();
        assert!(logged <= MAX_VALUE_BYTES + 2, "{logged} bytes logged");
    }

    #[test]
    fn big_arguments_are_summarised_past_the_record_budget() {
        let args: Vec<String> = (0..64).map(|_| "\u{1}".repeat(255)).collect();
        let mut r = AuditRecord::new(Stage::Received);
        r.set_args(&args);
        let logged = serde_json::to_string(r.argv.as_ref().unwrap())
            .unwrap()
            .len();
        assert!(
            logged <= MAX_ARGV_RECORD_BYTES + 512,
            "{logged} bytes of argv"
        );
        let listed = r.argv.as_ref().unwrap().len();
        assert!(listed < 64);
        assert_eq!(r.argv_omitted.as_ref().unwrap().count as usize, 64 - listed);
    }

    #[test]
    fn many_arguments_are_summarised() {
        let args: Vec<String> = (0..70).map(|i| i.to_string()).collect();
        let mut r = AuditRecord::new(Stage::Received);
        r.set_args(&args);
        assert_eq!(r.argc, Some(70));
        assert_eq!(r.argv.as_ref().unwrap().len(), MAX_ARGS_RECORDED);
        assert_eq!(r.argv_omitted.as_ref().unwrap().count, 6);
    }

    #[test]
    fn absent_sections_are_left_out_and_round_trip() {
        let mut r = AuditRecord::new(Stage::Denied);
        r.request_id = Some("id".into());
        r.set_error(ErrorCode::CommandNotAllowed, "no");
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("result").is_none());
        assert!(json.get("hash").is_none());
        assert_eq!(json["stage"], "denied");
        assert_eq!(json["error"]["code"], "COMMAND_NOT_ALLOWED");
        let back: AuditRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.code(), Some("COMMAND_NOT_ALLOWED"));
    }
}
