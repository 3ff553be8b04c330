//! The rmcp [`ServerHandler`]: lists the two tools and translates calls to the [`Service`].
//! No execution logic lives here.

use super::transport::key_of;
use super::window::ReplyWindow;
use crate::api::{
    ErrorEnvelope, ListCommandsArgs, ListResult, RunArgs, RunResult, ShellArgs, ShellResult,
};
use crate::audit::record::{SessionInfo, Text};
use crate::error::RunError;
use crate::service::{CallContext, CallReply, Service};
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// Name of the tool that runs a command.
pub const RUN_TOOL: &str = "run";
/// Name of the tool that interprets a bash script.
pub const SHELL_TOOL: &str = "shell";
/// Name of the tool that lists the allowlist.
pub const LIST_TOOL: &str = "list_commands";

/// Protocol versions runbox answers (the ones its tests exercise).
pub const SUPPORTED_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2026_07_28,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
];

/// Standard methods runbox answers; malformed params for one of these are -32602.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "prompts/list",
    "completion/complete",
    "logging/setLevel",
];

/// The MCP face of a [`Service`].
#[derive(Clone)]
pub struct RunboxHandler {
    service: Arc<Service>,
    tools: Arc<Vec<Tool>>,
    shutdown: CancellationToken,
    window: Option<Arc<ReplyWindow>>,
}

impl RunboxHandler {
    /// A handler for `service`; `shutdown` cancels every running call when the server stops.
    pub fn new(service: Arc<Service>, shutdown: CancellationToken) -> Self {
        Self {
            service,
            tools: Arc::new(tool_definitions()),
            shutdown,
            window: None,
        }
    }

    /// Takes client cancellations from `window` (which handles `notifications/cancelled`
    /// itself; rmcp never sees them) instead of from rmcp's request context.
    pub fn with_cancellation(mut self, window: Arc<ReplyWindow>) -> Self {
        self.window = Some(window);
        self
    }

    async fn call_run(
        &self,
        tool: &str,
        arguments: Option<rmcp::model::JsonObject>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let mcp_id = serde_json::to_value(&context.id).ok().map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        // Cancelled by the client's notifications/cancelled, by rmcp ending the session, or by
        // server shutdown;
        let cancel = self.shutdown.child_token();
        let rmcp_ct = context.ct.clone();
        let client_ct = self
            .window
            .as_ref()
            .and_then(|w| w.cancel_token(&key_of(&context.id)))
            .unwrap_or_else(|| rmcp_ct.clone());
        // Over HTTP also when its session is closed or its token removed (rmcp alone lets a
        // closed session's call run on for seconds).
        let http_stop = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<super::http::sessions::CallStop>())
            .map(|s| s.0.clone())
            .unwrap_or_default();
        let linked = cancel.clone();
        let watcher = tokio::spawn(async move {
            tokio::select! {
                _ = client_ct.cancelled() => {}
                _ = rmcp_ct.cancelled() => {}
                _ = http_stop.cancelled() => {}
            }
            linked.cancel();
        });
        let mut ctx = CallContext::new(mcp_id, cancel);
        if let Some(peer) = context.peer.peer_info() {
            ctx = ctx.with_client(&peer.client_info.name, &peer.client_info.version);
        }
        if let Some(parts) = context.extensions.get::<http::request::Parts>() {
            ctx = ctx.with_session(session_of(parts));
        }
        let request_id = ctx.request_id.clone();
        let progress = context.meta.get_progress_token().map(|token| {
            tokio::spawn(report_progress(
                context.peer.clone(),
                token,
                Arc::clone(&ctx.live_output),
            ))
        });

        let arguments = serde_json::Value::Object(arguments.unwrap_or_default());
        let call = if tool == SHELL_TOOL {
            serde_json::from_value::<ShellArgs>(arguments).map(Call::Shell)
        } else {
            serde_json::from_value::<RunArgs>(arguments).map(Call::Run)
        };
        let call = match call {
            Ok(c) => c,
            Err(e) => {
                watcher.abort();
                let err = RunError::invalid(format!("bad arguments for {tool}: {e}")).with_hint(
                    if tool == SHELL_TOOL {
                        "pass {\"script\": \"...\"} with optional cwd, stdin and timeout_ms; see the tool's inputSchema"
                    } else {
                        "pass {\"command\": NAME, \"args\": [..]} or {\"pipeline\": [{\"command\": NAME, \"args\": [..]}, ..]}; see the tool's inputSchema"
                    },
                );
                self.service.record_invalid_request(&ctx, &err).await;
                return error_result(&ErrorEnvelope::new(&request_id, &err, None));
            }
        };
        let service = Arc::clone(&self.service);
        let call_ctx = ctx.clone();
        let reply = isolate(async move {
            match call {
                Call::Run(args) => service.run(args, &call_ctx).await,
                Call::Shell(args) => service.shell(args, &call_ctx).await,
            }
        })
        .await;
        watcher.abort();
        if let Some(p) = progress {
            p.abort();
        }
        match reply {
            Ok(CallReply::Ran(out)) => ok_result(&out),
            Ok(CallReply::Script(out)) => ok_result(&out),
            Ok(CallReply::Failed(env)) => error_result(&env),
            Err(err) => {
                tracing::error!(request_id, "call task failed: {}", err.message);
                self.service.record_internal_failure(&ctx, &err).await;
                error_result(&ErrorEnvelope::new(&request_id, &err, None))
            }
        }
    }
}

/// The HTTP session of a request that came over streamable HTTP (rmcp hands the request's
/// head to the handler).
fn session_of(parts: &http::request::Parts) -> SessionInfo {
    SessionInfo {
        id: parts
            .headers
            .get("mcp-session-id")
            .map(|v| Text::of(&String::from_utf8_lossy(v.as_bytes()))),
        token: parts
            .extensions
            .get::<super::http::auth::TokenName>()
            .map(|t| t.0.to_string()),
    }
}

/// A call of one of the tools that run commands.
enum Call {
    Run(RunArgs),
    Shell(ShellArgs),
}

/// How often a running call reports progress when the client asked for it.
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Sends `notifications/progress` every [`PROGRESS_INTERVAL`] until aborted: `progress` is the
/// elapsed time in seconds (so it always increases), the message says how much output so far.
async fn report_progress(
    peer: rmcp::Peer<RoleServer>,
    token: ProgressToken,
    live_output: Arc<AtomicU64>,
) {
    let started = std::time::Instant::now();
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + PROGRESS_INTERVAL,
        PROGRESS_INTERVAL,
    );
    loop {
        ticks.tick().await;
        let elapsed = started.elapsed().as_secs_f64();
        let bytes = live_output.load(Ordering::Relaxed);
        let param =
            ProgressNotificationParam::new(token.clone(), (elapsed * 1000.0).round() / 1000.0)
                .with_message(format!(
                    "running for {elapsed:.1} s, {bytes} bytes of output so far"
                ));
        if peer.notify_progress(param).await.is_err() {
            return;
        }
    }
}

/// Runs a call on its own task, so a panic inside the pipeline becomes an INTERNAL error reply
/// instead of a request the client waits on forever (rmcp sends nothing for a panicking handler).
pub async fn isolate<F>(call: F) -> Result<CallReply, RunError>
where
    F: std::future::Future<Output = CallReply> + Send + 'static,
{
    tokio::spawn(call).await.map_err(|join_error| {
        RunError::internal(if join_error.is_panic() {
            "runbox hit an internal error while handling this call"
        } else {
            "the call was aborted"
        })
    })
}

impl ServerHandler for RunboxHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("runbox", env!("CARGO_PKG_VERSION"))
                    .with_title("runbox")
                    .with_description("Runs allowlisted commands in a confined workspace"),
            )
            .with_instructions(
                "Run commands in the workspace with the `run` tool: {\"command\": \"ls\", \"args\": [\"-la\"]}. \
                 Commands are exact names from `list_commands`; arguments are passed as they are \
                 (no shell: no pipes, globs, redirects or $VARS). Paths are relative to the workspace root, \
                 which is `/` for WASI commands. Errors carry a stable `code` and a `hint`.",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(SUPPORTED_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    /// rmcp hands over any request whose params did not fit its method's shape as a "custom"
    /// request. For the standard methods that is a params error (-32602), not an unknown method.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        if KNOWN_METHODS.contains(&request.method.as_str()) {
            Err(McpError::invalid_params(
                format!(
                    "invalid params for {}: they do not match the method's schema",
                    request.method
                ),
                None,
            ))
        } else {
            Err(McpError::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "method not found: {}",
                    request.method.chars().take(64).collect::<String>()
                ),
                None,
            ))
        }
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match request.name.as_ref() {
            RUN_TOOL | SHELL_TOOL => Ok(self
                .call_run(request.name.as_ref(), request.arguments, context)
                .await
                .into()),
            LIST_TOOL => {
                let extra = request.arguments.map(|a| a.len()).unwrap_or(0);
                if extra > 0 {
                    let request_id = crate::service::new_request_id();
                    let err = RunError::invalid("list_commands takes no arguments");
                    return Ok(error_result(&ErrorEnvelope::new(&request_id, &err, None)).into());
                }
                Ok(ok_result(&self.service.list_commands()).into())
            }
            other => Err(McpError::invalid_params(
                format!(
                    "unknown tool {:?}; the tools are run, shell and list_commands",
                    other.chars().take(64).collect::<String>()
                ),
                None,
            )),
        }
    }
}

/// A success result: the same JSON as structured content and as text (some clients show only
/// one of them).
fn ok_result<T: Serialize>(value: &T) -> CallToolResult {
    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    let mut r = CallToolResult::success(vec![ContentBlock::text(json.to_string())]);
    r.structured_content = Some(json);
    r
}

/// An error result (`isError: true`) with `{"error": {...}}` as structured content and text.
fn error_result(env: &ErrorEnvelope) -> CallToolResult {
    let json = serde_json::to_value(env).unwrap_or(serde_json::Value::Null);
    let mut r = CallToolResult::error(vec![ContentBlock::text(json.to_string())]);
    r.structured_content = Some(json);
    r
}

/// A schema derived from `T`, made portable: an optional field is written as its plain type
/// (absent means "use the default"; `["string", "null"]` unions and `"default": null` trip
/// clients that map schemas onto single-type dialects), and schemars' non-standard numeric
/// `format`s (`uint64`, ...) are dropped.
pub fn portable_schema<T: schemars::JsonSchema + std::any::Any>() -> Arc<rmcp::model::JsonObject> {
    let mut schema = serde_json::Value::Object(schema_for_type::<T>().as_ref().clone());
    make_portable(&mut schema);
    // MCP requires an object at the root; a union of object shapes still is one.
    if let serde_json::Value::Object(map) = &mut schema {
        map.entry("type")
            .or_insert_with(|| serde_json::Value::String("object".into()));
    }
    match schema {
        serde_json::Value::Object(map) => Arc::new(map),
        _ => schema_for_type::<T>(),
    }
}

fn make_portable(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get("type") {
                let non_null: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1 {
                    map.insert("type".into(), non_null[0].clone());
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if map.get("format").and_then(Value::as_str).is_some_and(|f| {
                matches!(
                    f,
                    "uint64" | "uint32" | "uint16" | "uint8" | "int64" | "int32" | "uint" | "int"
                )
            }) {
                map.remove("format");
            }
            map.values_mut().for_each(make_portable);
        }
        Value::Array(items) => items.iter_mut().for_each(make_portable),
        _ => {}
    }
}

/// The two tools, with schemas derived from their Rust types and honest annotations.
pub fn tool_definitions() -> Vec<Tool> {
    let run = Tool::new_with_raw(
        RUN_TOOL,
        Some(Cow::Borrowed(
            "Run one allowlisted command in the workspace and return its exit code, stdout and stderr. \
             `command` is an exact name from list_commands; `args` are passed verbatim (no shell). \
             A non-zero exit code is a normal result. Failures (not allowed, path outside the workspace, \
             timeout, limits) are errors with a stable code, a hint and the requestId.",
        )),
        portable_schema::<RunArgs>(),
    )
    .with_title("Run a command")
    .with_raw_output_schema(portable_schema::<RunResult>())
    .with_annotations(
        ToolAnnotations::with_title("Run a command")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false),
    );
    let list = Tool::new_with_raw(
        LIST_TOOL,
        Some(Cow::Borrowed(
            "List the commands `run` accepts: name, description, runner (wasi/native), whether it may write, and its limits.",
        )),
        portable_schema::<ListCommandsArgs>(),
    )
    .with_title("List allowed commands")
    .with_raw_output_schema(portable_schema::<ListResult>())
    .with_annotations(
        ToolAnnotations::with_title("List allowed commands")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    );
    let shell = Tool::new_with_raw(
        SHELL_TOOL,
        Some(Cow::Borrowed(
            "Run a bash script in the workspace: pipes, &&, ||, ;, redirections, globs, variables, $(...), \
             if/for/while/case and functions, interpreted by runbox itself (never a real shell). Every \
             command must be a name from list_commands or a shell built-in (cd, echo, read, test, export, ...); \
             a script naming any other command, or using &, eval, exec or source, is refused before it runs. \
             Paths stay inside the workspace (`/` is its root); the result has exitCode, stdout, stderr and \
             each command that ran.",
        )),
        portable_schema::<ShellArgs>(),
    )
    .with_title("Run a shell script")
    .with_raw_output_schema(portable_schema::<ShellResult>())
    .with_annotations(
        ToolAnnotations::with_title("Run a shell script")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false),
    );
    vec![run, shell, list]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[tokio::test]
    async fn a_panicking_call_becomes_an_internal_error() {
        let r = isolate(async { panic!("boom") }).await;
        assert_eq!(r.unwrap_err().code, ErrorCode::Internal);
    }

    #[tokio::test]
    async fn a_normal_call_passes_through() {
        let env = ErrorEnvelope::new("id", &RunError::invalid("x"), None);
        let r = isolate(async move { CallReply::Failed(env) }).await;
        assert!(matches!(r, Ok(CallReply::Failed(_))));
    }

    #[test]
    fn results_carry_the_same_json_twice() {
        let env = ErrorEnvelope::new("rid", &RunError::invalid("bad"), None);
        let r = error_result(&env);
        assert_eq!(r.is_error, Some(true));
        let ContentBlock::Text(t) = &r.content[0] else {
            panic!("text block")
        };
        let text: serde_json::Value = serde_json::from_str(&t.text).unwrap();
        assert_eq!(Some(text), r.structured_content);
    }

    #[test]
    fn schemas_are_portable() {
        let run = portable_schema::<RunArgs>();
        let text = serde_json::to_string(run.as_ref()).unwrap();
        assert!(!text.contains("\"null\""), "{text}");
        assert!(!text.contains("uint64"), "{text}");
        assert_eq!(run["properties"]["cwd"]["type"], "string");
        assert_eq!(run["properties"]["timeout_ms"]["type"], "integer");
        assert_eq!(run["properties"]["timeout_ms"]["minimum"], 1);
        assert_eq!(run["additionalProperties"], false);
    }

    #[test]
    fn output_schemas_admit_success_and_error_shapes() {
        use crate::api::{PartialOutput, RunOutput};
        use crate::outcome::RunnerKind;
        let schema = serde_json::Value::Object(portable_schema::<RunResult>().as_ref().clone());
        assert_eq!(schema["type"], "object");
        let validator = jsonschema::validator_for(&schema).unwrap();
        let ok = RunOutput {
            request_id: "r".into(),
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            duration_ms: 1,
            runner: RunnerKind::Wasi,
            bytes_written: Some(0),
            disk_full: false,
            stages: None,
        };
        assert!(validator.is_valid(&serde_json::to_value(&ok).unwrap()));
        let partial = PartialOutput::from_outcome(&crate::outcome::Outcome {
            termination: crate::outcome::Termination::Exited(0),
            stdout: Default::default(),
            stderr: Default::default(),
            duration: std::time::Duration::from_millis(3),
            runner: RunnerKind::Native,
            processes_killed: Some(2),
            file_writes: None,
        });
        let err = ErrorEnvelope::new("r", &RunError::invalid("x").with_hint("h"), Some(partial));
        assert!(validator.is_valid(&serde_json::to_value(&err).unwrap()));
        assert!(!validator.is_valid(&serde_json::json!({"stdout": 1})));
    }

    #[test]
    fn tool_schemas_are_objects_with_annotations() {
        let tools = tool_definitions();
        assert_eq!(tools.len(), 3);
        for t in &tools {
            assert_eq!(
                t.input_schema.get("type").and_then(|v| v.as_str()),
                Some("object")
            );
            assert!(t.output_schema.is_some());
            assert!(t.annotations.is_some());
        }
    }
}
