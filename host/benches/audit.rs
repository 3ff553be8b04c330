//! What the audit log costs per call, next to what a WASI `echo` call costs.
//!
//! `cargo bench --bench audit` prints:
//! 1. the raw cost of one `write` + `fdatasync` of a record-sized line in the audit directory's
//!    file system (and of a `write` alone);
//! 2. the audit cost of one call: its `received` and `completed` records through [`AuditLog`],
//!    under each [`SyncPolicy`] (`always`: the completed record is fdatasync'd before returning;
//!    `batch`: a background thread syncs within 100 ms), one caller at a time and 8 at a time;
//! 3. a WASI `echo hello` run directly on the runner (no audit), and the same call through the
//!    whole service pipeline (policy checks, both audit records, the run) under each policy.
//!
//! Environment: `RUNBOX_BENCH_DIR` (where the audit directory goes; default the system temp
//! dir, so the numbers are for that file system), `RUNBOX_BENCH_WASM` (a built
//! `runbox-tools.wasm`, when the one compiled into the binary is a stub), `RUNBOX_BENCH_CALLS`
//! (calls per measurement, default 300).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use runbox::api::RunArgs;
use runbox::audit::call::{CallTrail, Caller};
use runbox::audit::{AuditConfig, AuditLog, SyncPolicy, SystemClock};
use runbox::limits::Limits;
use runbox::outcome::Termination;
use runbox::policy::{Overrides, Policy, PolicyFile};
use runbox::runner::CallInput;
use runbox::service::{CallContext, CallReply, Service};
use runbox::wasi::cache::ModuleCache;
use runbox::wasi::{WasiProgram, WasiRuntime};
use runbox::workspace::Workspace;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn main() {
    let calls: usize = std::env::var("RUNBOX_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let base = std::env::var_os("RUNBOX_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(&base).unwrap();
    println!(
        "runbox audit benchmark: {calls} calls per row, audit directory under {}",
        base.display()
    );

    let fsync = raw_io(tmp.path(), calls, true);
    let write_only = raw_io(tmp.path(), calls, false);
    println!("\n1. raw I/O of a {LINE_BYTES}-byte line");
    row("write + fdatasync", &fsync);
    row("write only", &write_only);

    println!("\n2. audit records of one call (received + completed)");
    let always = audit_only(&tmp.path().join("a1"), calls, 1, SyncPolicy::Always);
    row("sync=always, 1 caller", &always);
    let always8 = audit_only(&tmp.path().join("a8"), calls, 8, SyncPolicy::Always);
    row("sync=always, 8 callers (wall time / calls)", &always8);
    let batch = audit_only(&tmp.path().join("b1"), calls, 1, SyncPolicy::Batch);
    row("sync=batch, 1 caller", &batch);
    let batch8 = audit_only(&tmp.path().join("b8"), calls, 8, SyncPolicy::Batch);
    row("sync=batch, 8 callers (wall time / calls)", &batch8);

    println!("\n3. WASI `echo hello` (the three take turns, call by call, so load hits all alike)");
    let wasm = builtin_module();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let [bare, svc_batch, svc_always] = runtime.block_on(echo_calls(tmp.path(), wasm, calls));
    row("runner only (no policy, no audit)", &bare);
    row("whole pipeline, sync=batch", &svc_batch);
    row("whole pipeline, sync=always", &svc_always);

    let echo = median(&bare);
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / echo.as_secs_f64();
    println!(
        "\nsummary (medians; a WASI echo on the runner = {:.1} µs)",
        micros(echo)
    );
    println!(
        "  fdatasync of one line:                      {:>7.1} µs",
        micros(median(&fsync))
    );
    for (name, audit, svc) in [
        ("batch", median(&batch), median(&svc_batch)),
        ("always", median(&always), median(&svc_always)),
    ] {
        println!(
            "  sync={name:<6} audit records of one call: {:>7.1} µs = {:>5.1} % of echo; \
             pipeline - runner: {:>7.1} µs = {:>5.1} %",
            micros(audit),
            pct(audit),
            micros(svc.saturating_sub(echo)),
            pct(svc.saturating_sub(echo))
        );
    }
}

const LINE_BYTES: usize = 900;

fn raw_io(dir: &Path, n: usize, sync: bool) -> Vec<Duration> {
    let path = dir.join(if sync { "raw-sync" } else { "raw-write" });
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    let mut line = vec![b'x'; LINE_BYTES - 1];
    line.push(b'\n');
    (0..n)
        .map(|_| {
            let t = Instant::now();
            (&f).write_all(&line).unwrap();
            if sync {
                f.sync_data().unwrap();
            }
            t.elapsed()
        })
        .collect()
}

fn call_trail(i: usize) -> CallTrail {
    let caller = Caller {
        request_id: runbox::service::new_request_id(),
        mcp_request_id: Some(i.to_string()),
        client: None,
    };
    let mut t = CallTrail::new(&caller, "run", &"0".repeat(64));
    t.request("echo", &["hello".to_owned()], None);
    t
}

fn fake_outcome() -> runbox::outcome::Outcome {
    let out = runbox::outcome::Capture::new(1024);
    out.push(b"hello\n");
    runbox::outcome::Outcome {
        termination: Termination::Exited(0),
        stdout: out.finish(),
        stderr: runbox::outcome::Capture::new(1024).finish(),
        duration: Duration::from_millis(1),
        runner: runbox::outcome::RunnerKind::Wasi,
        processes_killed: None,
        file_writes: None,
    }
}

/// Per-call time of writing a call's two records; with `threads` > 1, wall time / calls.
fn audit_only(dir: &Path, n: usize, threads: usize, sync: SyncPolicy) -> Vec<Duration> {
    let mut config = AuditConfig::new(dir);
    config.sync = sync;
    let log = AuditLog::open(config, Arc::new(SystemClock));
    let outcome = fake_outcome();
    let one_call = |log: &AuditLog, i: usize| {
        let t = Instant::now();
        let trail = call_trail(i);
        log.append(trail.received()).unwrap();
        log.append(trail.finished(&outcome)).unwrap();
        t.elapsed()
    };
    if threads == 1 {
        return (0..n).map(|i| one_call(&log, i)).collect();
    }
    let started = Instant::now();
    let per_thread = n / threads;
    std::thread::scope(|s| {
        for _ in 0..threads {
            let log = Arc::clone(&log);
            let one_call = &one_call;
            s.spawn(move || {
                for i in 0..per_thread {
                    let _ = one_call(&log, i);
                }
            });
        }
    });
    let per_call = started.elapsed() / (per_thread * threads) as u32;
    vec![per_call; per_thread * threads]
}

fn builtin_module() -> &'static [u8] {
    match std::env::var_os("RUNBOX_BENCH_WASM") {
        Some(p) => Box::leak(std::fs::read(&p).unwrap().into_boxed_slice()),
        None => runbox::BUILTIN_MODULE,
    }
}

/// Per-call times of `echo hello` on the bare runner and through a service under each sync
/// policy, taking turns.
async fn echo_calls(dir: &Path, wasm: &'static [u8], n: usize) -> [Vec<Duration>; 3] {
    let ws_dir = dir.join("ws");
    std::fs::create_dir_all(&ws_dir).unwrap();
    let ws = Workspace::open(&ws_dir).unwrap();
    let cwd = ws.resolve_dir("").unwrap();
    let builtin = runbox::wasi::BuiltinModule {
        wasm,
        sha256: runbox::wasi::cache::sha256(wasm),
    };
    let rt = WasiRuntime::new(ModuleCache::new(Some(&dir.join("cache"))), builtin, None).unwrap();
    let argv = vec!["echo".to_owned(), "hello".to_owned()];
    let program = WasiProgram::Builtin {
        env: Arc::from(vec![("LANG".to_owned(), "C.UTF-8".to_owned())]),
    };
    let cancel = CancellationToken::new();
    let live_output = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bare = || async {
        let run = CallInput {
            program: &program,
            argv: &argv,
            workspace: &ws,
            cwd: &cwd,
            stdin: runbox::runner::Input::Bytes(bytes::Bytes::new()),
            stdout_pipe: None,
            deadline: None,
            write_pool: runbox::wasi::p1::WritePool::new(Limits::default().write_bytes),
            limits: Limits::default(),
            writable: false,
            cancel: &cancel,
            live_output: &live_output,
        };
        let t = Instant::now();
        let out = runbox::runner::call(&rt, run).await;
        let took = t.elapsed();
        if out.termination != Termination::Exited(0) {
            eprintln!(
                "echo did not run ({:?}); is the built-in module a stub? Set RUNBOX_BENCH_WASM to a \
                 built runbox-tools.wasm",
                out.termination
            );
            std::process::exit(1);
        }
        took
    };
    let batch = service(dir, &ws_dir, wasm, SyncPolicy::Batch).await;
    let always = service(dir, &ws_dir, wasm, SyncPolicy::Always).await;
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..n + 5 {
        let times = [
            bare().await,
            echo_via(&batch).await,
            echo_via(&always).await,
        ];
        if i >= 5 {
            for (v, t) in out.iter_mut().zip(times) {
                v.push(t);
            }
        }
    }
    out
}

async fn service(dir: &Path, ws: &Path, wasm: &'static [u8], sync: SyncPolicy) -> Service {
    let flags = Overrides {
        workspace: Some(ws.to_owned()),
        audit_dir: Some(dir.join(format!("audit-service-{sync:?}"))),
        cache_dir: Some(dir.join("cache")),
        tools_dir: None,
        precompiled_dir: None,
        config: None,
        allow_root: true,
    };
    let mut policy = Policy::build(PolicyFile::default(), &flags).unwrap();
    policy.audit.sync = sync;
    let service = Service::start(policy, wasm, runbox::BUILTIN_MANIFEST).unwrap();
    service.announce("bench").await;
    service
}

async fn echo_via(service: &Service) -> Duration {
    let args = RunArgs::command("echo", vec!["hello".into()]);
    let ctx = CallContext::new(None, CancellationToken::new());
    let t = Instant::now();
    let reply = service.run(args, &ctx).await;
    let took = t.elapsed();
    assert!(matches!(reply, CallReply::Ran(_)), "{reply:?}");
    took
}

fn mean(v: &[Duration]) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.iter().sum::<Duration>() / v.len() as u32
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn p99(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[(s.len() * 99 / 100).min(s.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn row(label: &str, v: &[Duration]) {
    println!(
        "  {label:<44} mean {:>8.1} µs   median {:>8.1} µs   p99 {:>8.1} µs",
        micros(mean(v)),
        micros(median(v)),
        micros(p99(v))
    );
}
