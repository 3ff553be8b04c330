//! The `runbox` command line: `serve`, `exec`, `check-config`, `doctor`, `audit` and
//! `precompile`.
//!
//! Errors at start (bad policy, unusable workspace or audit directory, running as root without
//! `--allow-root`) are printed on stderr as one clear message and exit with status 2.

use crate::audit::mirror::Mirror;
use crate::policy::{ConfigError, Overrides, Policy, PolicyFile, read_policy_file};
use crate::service::{CallContext, CallReply, Service};
use clap::{Args, Parser, Subcommand};
use startup::{StartupError, http_tokens, mirror_allowed, serve_policy, take_mirror};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod startup;

/// Exit status for start-up and usage errors.
const EXIT_USAGE: u8 = 2;
/// `exec` exit status when the command timed out (as GNU `timeout`).
const EXIT_TIMEOUT: u8 = 124;
/// `exec` exit status when runbox refused or could not run the command.
const EXIT_REFUSED: u8 = 125;

/// runbox: run allowlisted commands for AI agents in a confined workspace.
#[derive(Debug, Parser)]
#[command(name = "runbox", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP on stdin/stdout, or with --listen over streamable HTTP at /mcp.
    Serve(ServeArgs),
    /// Run one command in the workspace exactly as the `run` tool would, without an MCP client.
    Exec(ExecArgs),
    /// Print the effective policy (defaults, file and flags merged) as TOML.
    CheckConfig(PolicyArgs),
    /// Read the audit log: tail, show, query, verify.
    Audit(crate::audit::cli::AuditArgs),
    /// Check the effective policy (same flags as serve) on this machine, as this user: native
    /// protections, the workspace, audit, cache and tools directories, running as root. Prints
    /// what is in force and the fix for what is missing; changes nothing. Exits 0 when everything
    /// is in force, 1 otherwise.
    Doctor(PolicyArgs),
    /// Compile the built-in module ahead of time, so that a fresh server answers its first call
    /// without compiling (seconds). With --out DIR: into a directory for `precompiled_dir`
    /// (files 0444; an image build runs this as root). Without: into the module cache
    /// (`cache_dir`), as the first `serve` would. Needs no workspace.
    Precompile(PrecompileArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Serve streamable HTTP on IP:PORT (policy: http.listen) instead of stdio; MCP is at
    /// /mcp, a health check at /healthz. Port 0 picks a free port; the address bound is printed
    /// on stderr.
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// Bearer tokens for --listen (policy: http.auth_token_file): `name:token` per line, a
    /// file only runbox's user and root can read or change (0600, or a Kubernetes Secret's
    /// root-owned 0440 with runbox's group); reloaded on SIGHUP. Required unless listening on
    /// loopback.
    #[arg(long, value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// Also write every audit line (as written to the log file) to `stdout` (only with
    /// --listen: on stdio, stdout is the MCP channel) or to an inherited descriptor `fd:N`, for a
    /// log collector (policy: audit.mirror).
    #[arg(long, value_name = "stdout|fd:N")]
    audit_mirror: Option<String>,
}

#[derive(Debug, Args)]
struct PrecompileArgs {
    /// Directory to write into, for the policy's `precompiled_dir` (created 0755 if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Policy file, read for `cache_dir` when --out is not given.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The module cache to fill when --out is not given.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// Flags that locate and override the policy.
#[derive(Debug, Args, Clone)]
pub struct PolicyArgs {
    /// The workspace directory commands run in.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Policy file (TOML); every key is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Audit log directory (outside the workspace).
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,
    /// Compiled-module cache directory.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Directory of extra WASI commands (NAME.wasm + optional NAME.toml).
    #[arg(long, value_name = "DIR")]
    tools_dir: Option<PathBuf>,
    /// Read-only directory of modules compiled ahead of time (`runbox precompile --out DIR`).
    #[arg(long, value_name = "DIR")]
    precompiled_dir: Option<PathBuf>,
    /// Allow running as root (refused by default).
    #[arg(long)]
    allow_root: bool,
}

#[derive(Debug, Args)]
struct ExecArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Working directory relative to the workspace.
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Wall-clock limit in milliseconds.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Pass this process's stdin to the command.
    #[arg(long)]
    stdin: bool,
    /// The command name.
    name: String,
    /// Its arguments (put them after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // A call's reaper is this binary started in a hidden mode (native/reaper): before anything
    // else, and before any thread exists.
    if let Some(code) = crate::native::reaper::run_if_asked() {
        return code;
    }
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::CheckConfig(p) => match load_policy(&p) {
            Ok(policy) => {
                print!("{}", policy.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        Command::Doctor(d) => doctor(&d),
        Command::Serve(p) => serve_main(&p),
        Command::Exec(a) => exec_main(a),
        Command::Audit(a) => crate::audit::cli::run(a),
        Command::Precompile(a) => precompile(&a),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,runbox=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn fail(message: &str) -> ExitCode {
    eprintln!("runbox: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs `f` on a multi-threaded runtime and shuts it down without waiting on a blocked stdin read.
fn with_runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let code = runtime.block_on(f());
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

/// `runbox doctor`: the effective policy, checked on this machine ([`crate::doctor`]).
fn doctor(p: &PolicyArgs) -> ExitCode {
    let file = match &p.config {
        Some(path) => match read_policy_file(path) {
            Ok(f) => f,
            Err(e) => return fail(&e.to_string()),
        },
        None => PolicyFile::default(),
    };
    match crate::doctor::report(file, &overrides(p)) {
        Ok((text, complete)) => {
            print!("{text}");
            if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// `runbox precompile`: the built-in module compiled for the engine `serve` uses.
fn precompile(a: &PrecompileArgs) -> ExitCode {
    use crate::wasi::{cache::CacheOutcome, cache::ModuleCache, precompiled};
    let started = std::time::Instant::now();
    let engine = match crate::wasi::engine::new_engine(None) {
        Ok((engine, _)) => engine,
        Err(e) => return fail(&format!("cannot create the wasm engine: {e}")),
    };
    let (wasm, sha256) = (crate::BUILTIN_MODULE, crate::BUILTIN_MODULE_SHA256);
    if let Some(out) = &a.out {
        return match precompiled::write(out, &engine, wasm, sha256) {
            Ok(path) => {
                println!(
                    "compiled the built-in module into {} in {} ms",
                    path.display(),
                    started.elapsed().as_millis()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    let from_file = match &a.config {
        Some(path) => match read_policy_file(path) {
            Ok(f) => f.cache_dir,
            Err(e) => return fail(&e.to_string()),
        },
        None => None,
    };
    let Some(dir) = a
        .cache_dir
        .clone()
        .or(from_file)
        .or_else(crate::policy::file::default_cache_dir)
    else {
        return fail(
            "no module cache: pass --cache-dir DIR or --out DIR (neither XDG_CACHE_HOME nor HOME is set)",
        );
    };
    let cache = ModuleCache::new(Some(&dir));
    if cache.dir().is_none() {
        return fail(&format!(
            "the module cache {} is not usable (see the warning above); pass --cache-dir DIR or --out DIR",
            dir.display()
        ));
    }
    match cache.load_with_digest(&engine, wasm, sha256) {
        Ok((_, CacheOutcome::Hit)) => {
            println!(
                "the built-in module is already compiled in {}",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok((_, CacheOutcome::Stored)) => {
            println!(
                "compiled the built-in module into {} in {} ms",
                dir.display(),
                started.elapsed().as_millis()
            );
            ExitCode::SUCCESS
        }
        Ok((_, how)) => fail(&format!(
            "compiled, but could not store it in {} ({how:?}; see the warning above)",
            dir.display()
        )),
        Err(e) => fail(&format!("cannot compile the built-in module: {e:#}")),
    }
}

/// The flags that override the policy file. `--config` is kept as the absolute path of the file
/// read at start (a relative one names the file in the directory runbox was started in, as
/// `runbox serve --config examples/policies/python.toml` does), so the check that it lies
/// outside the workspace judges the file that was read.
fn overrides(p: &PolicyArgs) -> Overrides {
    Overrides {
        workspace: p.workspace.clone(),
        audit_dir: p.audit_dir.clone(),
        cache_dir: p.cache_dir.clone(),
        tools_dir: p.tools_dir.clone(),
        precompiled_dir: p.precompiled_dir.clone(),
        config: p
            .config
            .as_ref()
            .map(|c| std::path::absolute(c).unwrap_or_else(|_| c.clone())),
        allow_root: p.allow_root,
    }
}

/// Reads the file (if any), merges the flags, validates.
fn load_policy(p: &PolicyArgs) -> Result<Policy, ConfigError> {
    let file = match &p.config {
        Some(path) => read_policy_file(path)?,
        None => PolicyFile::default(),
    };
    Policy::build(file, &overrides(p))
}

/// Refuses root without consent and starts the service (which refuses a policy file, or any
/// other path of runbox's own, inside the workspace) for a policy already loaded (and adjusted
/// by `serve`'s own flags).
fn start_with(policy: Policy, mirror: Option<Mirror>) -> Result<Service, StartupError> {
    if nix::unistd::geteuid().is_root() && !policy.allow_root {
        return Err(StartupError::Root);
    }
    Ok(Service::start_mirrored(
        policy,
        crate::BUILTIN_MODULE,
        crate::BUILTIN_MANIFEST,
        mirror,
    )?)
}

/// `runbox serve`: the policy with serve's own flags applied and the audit mirror taken before
/// the async runtime exists ([`take_mirror`]), then stdio or HTTP.
fn serve_main(args: &ServeArgs) -> ExitCode {
    let policy = match serve_policy(args) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    match take_mirror(&policy) {
        Ok(mirror) => with_runtime(|| serve(policy, mirror)),
        Err(e) => fail(&e.to_string()),
    }
}

async fn serve(policy: Policy, mirror: Option<Mirror>) -> ExitCode {
    let listen = policy.http.listen;
    let tokens = match listen.map(|addr| http_tokens(&policy, addr)).transpose() {
        Ok(t) => t.flatten(),
        Err(e) => return fail(&e.to_string()),
    };
    let service = match start_with(policy, mirror) {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(&e.to_string()),
    };
    match listen {
        Some(addr) => serve_http(service, addr, tokens).await,
        None => serve_stdio(service).await,
    }
}

/// Sets up the signal watch: the token fires on SIGTERM or SIGINT, the cell names it.
fn termination() -> (CancellationToken, Arc<std::sync::OnceLock<&'static str>>) {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    let signalled = Arc::new(std::sync::OnceLock::new());
    let which = Arc::clone(&signalled);
    tokio::spawn(async move {
        let _ = which.set(wait_for_termination().await);
        signals.cancel();
    });
    (shutdown, signalled)
}

async fn serve_stdio(service: Arc<Service>) -> ExitCode {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        workspace = %service.policy().workspace.display(),
        audit = %service.audit().dir().display(),
        policy_hash = %service.policy().hash(),
        "runbox serving MCP on stdio"
    );
    service.announce("serve").await;
    let (shutdown, signalled) = termination();
    let served = crate::mcp::serve(
        Arc::clone(&service),
        crate::mcp::stdio::input(),
        crate::mcp::stdio::output(),
        shutdown,
    )
    .await;
    let reason = match (&served, signalled.get()) {
        (Err(_), _) => "the MCP session failed",
        (Ok(()), Some(signal)) => signal,
        (Ok(()), None) => "the client closed stdin",
    };
    service.stop("serve", reason).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

async fn serve_http(
    service: Arc<Service>,
    addr: std::net::SocketAddr,
    tokens: Option<Arc<crate::mcp::http::token_file::TokenFile>>,
) -> ExitCode {
    use crate::mcp::http;
    let listener = match http::bind(addr).await {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let settings = http::HttpSettings::resolve(&service.policy().http, bound);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        workspace = %service.policy().workspace.display(),
        audit = %service.audit().dir().display(),
        policy_hash = %service.policy().hash(),
        tokens = tokens.as_ref().map_or(0, |t| t.current().len()),
        "runbox serving MCP over streamable HTTP"
    );
    let (shutdown, signalled) = termination();
    if let Some(file) = &tokens {
        // Watched before the address is announced: a SIGHUP after it reloads, never kills.
        tokio::spawn(http::token_reload::reload_on_sighup(
            Arc::clone(file),
            Arc::clone(&service),
            shutdown.clone(),
        ));
    }
    // On stderr whatever the log filter: tests and operators read the port a `:0` got here.
    eprintln!("runbox: serving MCP on http://{bound}/mcp");
    service.announce("serve").await;
    http::serve(Arc::clone(&service), listener, &settings, tokens, shutdown).await;
    service
        .stop("serve", signalled.get().copied().unwrap_or("shutdown"))
        .await;
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or SIGINT, naming the signal.
async fn wait_for_termination() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// `runbox exec`: the policy checked and the audit mirror taken before the async runtime
/// exists ([`take_mirror`]), then the command.
fn exec_main(a: ExecArgs) -> ExitCode {
    let policy = match load_policy(&a.policy) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    if let Err(e) = mirror_allowed(&policy, "exec") {
        return fail(&e.to_string());
    }
    match take_mirror(&policy) {
        Ok(mirror) => with_runtime(|| exec(a, policy, mirror)),
        Err(e) => fail(&e.to_string()),
    }
}

async fn exec(a: ExecArgs, policy: Policy, mirror: Option<Mirror>) -> ExitCode {
    let service = match start_with(policy, mirror) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let stdin = if a.stdin {
        let mut buf = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf) {
            return fail(&format!("cannot read stdin: {e}"));
        }
        Some(buf)
    } else {
        None
    };
    let args = crate::api::RunArgs {
        cwd: a.cwd,
        stdin,
        timeout_ms: a.timeout_ms,
        ..crate::api::RunArgs::command(a.name, a.args)
    };
    let ctx = CallContext::new(None, CancellationToken::new());
    service.announce("exec").await;
    let reply = service.run(args, &ctx).await;
    service.stop("exec", "the command finished").await;
    match reply {
        CallReply::Ran(out) => {
            let _ = std::io::stdout().write_all(out.stdout.as_bytes());
            let _ = std::io::stderr().write_all(out.stderr.as_bytes());
            if out.stdout_truncated || out.stderr_truncated {
                eprintln!("runbox: output was truncated at the policy's cap");
            }
            ExitCode::from(u8::try_from(out.exit_code).unwrap_or(1))
        }
        CallReply::Script(out) => {
            let _ = std::io::stdout().write_all(out.stdout.as_bytes());
            let _ = std::io::stderr().write_all(out.stderr.as_bytes());
            ExitCode::from(u8::try_from(out.exit_code).unwrap_or(1))
        }
        CallReply::Failed(env) => {
            if let Some(p) = &env.error.partial {
                let _ = std::io::stdout().write_all(p.stdout.as_bytes());
                let _ = std::io::stderr().write_all(p.stderr.as_bytes());
            }
            eprintln!(
                "runbox: {}",
                serde_json::to_string(&env).unwrap_or_default()
            );
            if env.error.code == crate::error::ErrorCode::Timeout {
                ExitCode::from(EXIT_TIMEOUT)
            } else {
                ExitCode::from(EXIT_REFUSED)
            }
        }
    }
}
