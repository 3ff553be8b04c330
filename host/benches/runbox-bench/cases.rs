//! The benchmark cases. Each drives the real `runbox serve` over stdio and, where the issue asks
//! for it, runs the same command natively (GNU coreutils / grep through `std::process`) in the
//! same run, interleaved with the runbox runs so both see the same machine state.

use crate::client::{Memory, Server};
use crate::fixture::{CORPUS, Fixture, MANY};
use crate::report::{Goal, Row};
use crate::stats::Summary;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes of stdout runbox keeps by default (`limits.stdout_bytes`); native output is cut at the
/// same point when outputs are compared.
const KEPT_STDOUT: usize = 1024 * 1024;

/// How much work each case does.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Effort {
    /// Sequential echo calls.
    pub calls: usize,
    /// Runs of each large (corpus, ls) case, per side.
    pub reps: usize,
    /// Warm start-ups.
    pub starts: usize,
    /// Cold start-ups (each compiles the built-in module).
    pub cold_starts: usize,
    /// Calls in the 8-in-flight throughput case.
    pub throughput_calls: usize,
    /// Long calls in the short-during-long case (per variant).
    pub long_calls: usize,
}

/// Everything a case needs.
pub struct Ctx {
    /// The runbox binary.
    pub bin: PathBuf,
    /// The files.
    pub fx: Fixture,
    /// How much work.
    pub effort: Effort,
}

type Res<T> = std::io::Result<T>;

impl Ctx {
    /// A server on the warm cache, initialized, with the built-in module loaded (one call made).
    pub fn ready_server(&self) -> Res<Server> {
        let mut s = Server::spawn(&self.bin, &self.fx.args(&self.fx.warm_cache), &self.fx.log)?;
        s.initialize()?;
        s.run(&echo_args())?;
        Ok(s)
    }
}

fn echo_args() -> Value {
    json!({"command": "echo", "args": ["hi"]})
}

/// Runs `f`, returning how long it took with its value.
pub fn timed<T>(f: impl FnOnce() -> Res<T>) -> Res<(Duration, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed(), v))
}

/// Start-up to `initialize` answered and to the first call answered, with a warm and a cold
/// module cache.
pub fn startup(ctx: &Ctx) -> Res<Vec<Row>> {
    // Make sure the warm cache holds the built-in module.
    ctx.ready_server()?.close(Duration::from_secs(5));
    let mut rows = Vec::new();
    for (cold, n) in [(false, ctx.effort.starts), (true, ctx.effort.cold_starts)] {
        let mut init = Vec::new();
        let mut first = Vec::new();
        for i in 0..n {
            let cache = if cold {
                let c = ctx.fx.base.join(format!("cache-cold-{i}"));
                let _ = std::fs::remove_dir_all(&c);
                c
            } else {
                ctx.fx.warm_cache.clone()
            };
            let start = Instant::now();
            let mut s = Server::spawn(&ctx.bin, &ctx.fx.args(&cache), &ctx.fx.log)?;
            s.initialize()?;
            init.push(start.elapsed());
            s.run(&echo_args())?;
            first.push(start.elapsed());
            s.close(Duration::from_secs(5));
            if cold {
                let _ = std::fs::remove_dir_all(&cache);
            }
        }
        let which = if cold { "cold" } else { "warm" };
        let mut r = Row::new(
            if cold { "startup_cold" } else { "startup_warm" },
            format!("start-up to initialize answered, {which} module cache"),
        )
        .runbox(Summary::of(&init));
        if !cold {
            r = r.goal(Goal::MedianMs(50.0));
        }
        rows.push(r);
        rows.push(
            Row::new(
                if cold {
                    "first_call_cold"
                } else {
                    "first_call_warm"
                },
                format!("start-up to first echo answered, {which} module cache"),
            )
            .runbox(Summary::of(&first))
            .note(if cold {
                "includes compiling the built-in module (9.7 MB of wasm) and storing it"
            } else {
                "includes loading the compiled module from the cache (mmap)"
            }),
        );
    }
    Ok(rows)
}

/// Sequential `echo hi` calls, timed at the client; plus the fork/exec floor of `/bin/echo`.
pub fn echo(ctx: &Ctx, s: &mut Server) -> Res<Vec<Row>> {
    for _ in 0..50 {
        s.run(&echo_args())?;
    }
    let args = echo_args();
    let mut samples = Vec::with_capacity(ctx.effort.calls);
    for _ in 0..ctx.effort.calls {
        let (d, out) = timed(|| s.run(&args))?;
        if out["stdout"] != json!("hi\n") {
            return Err(std::io::Error::other(format!("echo gave {out}")));
        }
        samples.push(d);
    }
    let mut floor = Vec::new();
    for _ in 0..ctx.effort.calls.min(300) {
        let (d, _) = native(&ctx.fx.ws, "echo", &["hi"])?;
        floor.push(d);
    }
    Ok(vec![
        Row::new("echo_wasi", "echo hi via WASI, round trip at the client")
            .runbox(Summary::of(&samples))
            .goal(Goal::MedianMs(0.3)),
        Row::new(
            "echo_fork_exec",
            "fork+exec of /bin/echo hi from the bench itself (no runbox; the floor for a native runner)",
        )
        .native(Summary::of(&floor)),
    ])
}

/// The policy addition that would route `echo` to the native runner.
const NATIVE_ECHO_POLICY: &str =
    "\n[native.native-echo]\npath = \"/bin/echo\"\naccess = \"read\"\n";

/// The call of the native echo case (`echo` itself is a built-in WASI command).
fn native_echo_args() -> Value {
    json!({"command": "native-echo", "args": ["hi"]})
}

/// `echo` through runbox's native runner, when this build has one.
pub fn echo_native(ctx: &Ctx) -> Res<Row> {
    let row = Row::new(
        "echo_native",
        "echo hi via the native runner, round trip at the client",
    );
    let policy = ctx.fx.base.join("policy-native.toml");
    std::fs::write(
        &policy,
        format!(
            "{}{NATIVE_ECHO_POLICY}",
            std::fs::read_to_string(&ctx.fx.policy)?
        ),
    )?;
    let check = Command::new(&ctx.bin)
        .arg("check-config")
        .args(ctx.fx.args_with_policy(&ctx.fx.warm_cache, &policy))
        .stdout(Stdio::null())
        .output()?;
    if !check.status.success() {
        let why = String::from_utf8_lossy(&check.stderr);
        return Ok(row.note(format!(
            "not available: this build has no native runner (its policy refuses [native.native-echo]: {})",
            why.lines().next().unwrap_or("").trim()
        )));
    }
    let mut s = Server::spawn(
        &ctx.bin,
        &ctx.fx.args_with_policy(&ctx.fx.warm_cache, &policy),
        &ctx.fx.log,
    )?;
    s.initialize()?;
    let first = s.run(&native_echo_args())?;
    if first["runner"] != json!("native") {
        return Ok(row.note(format!(
            "not available: [native.native-echo] was accepted but native-echo ran on the {} runner",
            first["runner"]
        )));
    }
    for _ in 0..50 {
        s.run(&native_echo_args())?;
    }
    let mut samples = Vec::new();
    for _ in 0..ctx.effort.calls {
        samples.push(timed(|| s.run(&native_echo_args()))?.0);
    }
    Ok(row.runbox(Summary::of(&samples)).goal(Goal::MedianMs(1.5)))
}

/// Runs a program natively in the workspace with `LC_ALL=C`, draining its stdout; returns the
/// time from spawn to exit and the first [`KEPT_STDOUT`] bytes of output.
fn native(ws: &Path, prog: &str, args: &[&str]) -> Res<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut child = Command::new(prog)
        .args(args)
        .current_dir(ws)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let room = KEPT_STDOUT.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buf[..room]);
    }
    let status = child.wait()?;
    let elapsed = start.elapsed();
    if !(status.success() || (prog == "grep" && status.code() == Some(1))) {
        return Err(std::io::Error::other(format!(
            "{prog} {args:?} failed: {status}"
        )));
    }
    Ok((elapsed, kept))
}

/// One command run through runbox and natively, `reps` times each, interleaved.
fn versus(
    ctx: &Ctx,
    s: &mut Server,
    key: &'static str,
    case: &str,
    prog: &str,
    args: &[&str],
    reps: usize,
) -> Res<Row> {
    let call = json!({"command": prog, "args": args, "timeout_ms": 600_000});
    // One unmeasured run of each warms the page cache and the guest's code.
    let (warm_time, warm) = timed(|| s.run(&call))?;
    let (_, native_out) = native(&ctx.fx.ws, prog, args)?;
    let same = warm["stdout"].as_str().unwrap_or("").as_bytes() == native_out.as_slice();
    // A case that takes many seconds per run gets fewer runs, and says so.
    let slow = warm_time > Duration::from_secs(5);
    let reps = if slow { reps.min(2) } else { reps };
    let (mut rb, mut nat) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        rb.push(timed(|| s.run(&call))?.0);
        nat.push(native(&ctx.fx.ws, prog, args)?.0);
    }
    let mut row = Row::new(key, case)
        .runbox(Summary::of(&rb))
        .native(Summary::of(&nat));
    if slow {
        row = row.note(format!(
            "over 5 s per run ({:.1} s unmeasured first run), so only {reps} measured runs",
            warm_time.as_secs_f64()
        ));
    }
    if !same {
        row = row.note(format!(
            "OUTPUT DIFFERS from the native command (first bytes: runbox {:?}, native {:?})",
            first_bytes(warm["stdout"].as_str().unwrap_or("").as_bytes()),
            first_bytes(&native_out)
        ));
    }
    Ok(row)
}

/// The first bytes of an output, for a note.
pub fn first_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(60)]).into_owned()
}

/// `ls` of the 10,000-file directory.
pub fn ls(ctx: &Ctx, s: &mut Server) -> Res<Row> {
    let reps = ctx.effort.reps * 2;
    versus(
        ctx,
        s,
        "ls_10k",
        "ls of a 10,000-file directory",
        "ls",
        &[MANY],
        reps,
    )
}

/// `wc -l`, `grep -c` (literal and regex) and `sort` over the corpus.
pub fn corpus(ctx: &Ctx, s: &mut Server) -> Res<Vec<Row>> {
    let mb = ctx.fx.corpus_bytes as f64 / 1e6;
    let reps = ctx.effort.reps;
    let mut rows = vec![
        versus(
            ctx,
            s,
            "wc_l",
            &format!("wc -l, {mb:.0} MB corpus"),
            "wc",
            &["-l", CORPUS],
            reps,
        )?,
        versus(
            ctx,
            s,
            "grep_literal",
            &format!("grep -c level=ERROR, {mb:.0} MB corpus"),
            "grep",
            &["-c", "level=ERROR", CORPUS],
            reps,
        )?,
        versus(
            ctx,
            s,
            "grep_regex",
            &format!("grep -c -E 'latency_ms=19[0-9]{{2}} ', {mb:.0} MB corpus"),
            "grep",
            &["-c", "-E", "latency_ms=19[0-9]{2} ", CORPUS],
            reps,
        )?,
    ];
    let sort = versus(
        ctx,
        s,
        "sort",
        &format!("sort, {mb:.0} MB corpus (output drained, first 1 MiB kept)"),
        "sort",
        &[CORPUS],
        reps,
    )?;
    rows.push(sort);
    // GNU sort uses every core; the WASI guest has one thread. Show the single-threaded figure.
    let mut single = Vec::new();
    for _ in 0..reps {
        single.push(native(&ctx.fx.ws, "sort", &["--parallel=1", CORPUS])?.0);
    }
    let last = rows.last().and_then(|r| r.runbox);
    let mut r = Row::new(
        "sort_vs_single_thread",
        format!("sort, {mb:.0} MB corpus, native limited to --parallel=1"),
    )
    .native(Summary::of(&single));
    if let Some(rb) = last {
        r = r.runbox(rb);
    }
    rows.push(r.note("same runbox timings as the row above, against single-threaded GNU sort"));
    for r in &mut rows {
        if r.key != "sort_vs_single_thread" {
            *r = r.clone().goal(Goal::Ratio(2.0));
        }
    }
    Ok(rows)
}

/// A short call issued while a 2-second call runs, with an idle (`sleep 2`) and a CPU-bound
/// (stopped by its 2000 ms timeout) long call.
pub fn short_during_long(ctx: &Ctx, s: &mut Server) -> Res<Vec<Row>> {
    // Enough input that hashing it takes well over 2 s whatever the corpus size.
    let copies =
        usize::try_from((4_000_000_000 / ctx.fx.corpus_bytes.max(1)).clamp(20, 1000)).unwrap_or(20);
    let busy_args: Vec<&str> = std::iter::repeat_n(CORPUS, copies).collect();
    let variants = [
        (
            "short_during_sleep",
            "echo while `sleep 2` runs",
            json!({"command": "sleep", "args": ["2"]}),
        ),
        (
            "short_during_cpu",
            "echo while a CPU-bound 2 s call runs (sha256sum, stopped by timeout_ms=2000)",
            json!({"command": "sha256sum", "args": busy_args, "timeout_ms": 2000}),
        ),
    ];
    let mut rows = Vec::new();
    for (key, case, long) in variants {
        let mut samples = Vec::new();
        for rep in 0..ctx.effort.long_calls {
            let token = format!("long-{key}-{rep}");
            let long_id = s.send(
                "tools/call",
                json!({"name": "run", "arguments": long, "_meta": {"progressToken": token}}),
            )?;
            // The first progress notification (at 0.5 s) proves the long call is running.
            loop {
                let m = s.recv()?;
                if m["method"] == json!("notifications/progress") {
                    break;
                }
                if m["id"] == json!(long_id) {
                    return Err(std::io::Error::other(format!(
                        "{key}: long call ended early: {m}"
                    )));
                }
            }
            let started = Instant::now();
            let mut long_done = false;
            while !long_done && started.elapsed() < Duration::from_secs(5) {
                let t = Instant::now();
                let id = s.send_run(&echo_args())?;
                loop {
                    let (v, at) = s.next_response()?;
                    if v["id"] == json!(long_id) {
                        long_done = true;
                        continue;
                    }
                    if v["id"] == json!(id) {
                        crate::client::run_result(&v)?;
                        samples.push(at - t);
                        break;
                    }
                }
            }
            if !long_done {
                s.wait(long_id)?;
            }
        }
        rows.push(
            Row::new(key, case)
                .runbox(Summary::of(&samples))
                .goal(Goal::MedianMs(5.0)),
        );
    }
    Ok(rows)
}

/// Echo calls with 8 in flight at all times: throughput, latency and memory under load.
pub fn throughput(ctx: &Ctx, s: &mut Server) -> Res<(Row, Memory)> {
    let total = ctx.effort.throughput_calls;
    let window = 8;
    let args = echo_args();
    let mut inflight: HashMap<u64, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(total);
    let mut sent = 0;
    let mut mid = Memory::default();
    let start = Instant::now();
    while sent < window.min(total) {
        let id = s.send_run(&args)?;
        inflight.insert(id, Instant::now());
        sent += 1;
    }
    while latencies.len() < total {
        let (v, at) = s.next_response()?;
        crate::client::run_result(&v)?;
        let id = v["id"].as_u64().unwrap_or(0);
        if let Some(t) = inflight.remove(&id) {
            latencies.push(at - t);
        }
        if latencies.len() == total / 2 {
            mid = s.memory();
        }
        if sent < total {
            let id = s.send_run(&args)?;
            inflight.insert(id, Instant::now());
            sent += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let row = Row::new(
        "throughput_8",
        "echo hi with 8 calls in flight (latency per call)",
    )
    .runbox(Summary::of(&latencies))
    .value(total as f64 / elapsed, "calls/s");
    Ok((row, mid))
}

/// KiB → MiB for the report.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
