//! `runbox-bench`: drives the real `runbox serve` over stdio and reports median / p90 / p99 for
//! the cases of issue #7 next to the same commands run natively, as a plain-text table on stdout
//! and as JSON in a file.
//!
//! Run it with `cargo bench --bench runbox-bench` (add `-- --quick` for a smoke run, `-- --help`
//! for the options). Cargo builds the `runbox` binary first and hands its path to this program.
//! No timing here is a pass/fail test: the report says, per target, whether it was met and by
//! how much it was missed.

mod cases;
mod client;
mod fixture;
mod report;
mod stats;
mod tree;

use cases::{Ctx, Effort, mib};
use clap::Parser;
use report::{Goal, Row};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Benchmarks runbox against native tools.
#[derive(Debug, Parser)]
#[command(name = "runbox-bench")]
struct Args {
    /// A short smoke run: a 10 MB corpus and few repetitions (figures are not comparable).
    #[arg(long)]
    quick: bool,
    /// Size of the generated corpus in MB (10^6 bytes).
    #[arg(long, default_value_t = 100)]
    corpus_mb: u64,
    /// Only these groups (comma-separated): startup, echo, native, ls, corpus, concurrency, tree.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Base directory for the workspace, caches and logs (kept between runs).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where to write the JSON report (default: DIR/report.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// The runbox binary (default: the one cargo built for this benchmark).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runbox-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let base = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runbox-bench"));
    std::fs::create_dir_all(&base)?;
    let corpus_mb = if args.quick { 10 } else { args.corpus_mb };
    let effort = if args.quick {
        Effort {
            calls: 200,
            reps: 2,
            starts: 5,
            cold_starts: 1,
            throughput_calls: 400,
            long_calls: 1,
        }
    } else {
        Effort {
            calls: 2000,
            reps: 5,
            starts: 20,
            cold_starts: 3,
            throughput_calls: 4000,
            long_calls: 3,
        }
    };
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runbox")));
    eprintln!(
        "runbox-bench: preparing {} (corpus {corpus_mb} MB)",
        base.display()
    );
    let fx = fixture::Fixture::prepare(&base, corpus_mb * 1_000_000)?;
    let ctx = Ctx { bin, fx, effort };
    let want = |group: &str| args.only.is_empty() || args.only.iter().any(|g| g == group);
    let load_before = loadavg();
    let mut rows: Vec<Row> = Vec::new();

    if want("startup") {
        eprintln!("runbox-bench: start-up");
        rows.extend(cases::startup(&ctx)?);
    }
    if want("native") {
        eprintln!("runbox-bench: native echo");
        rows.push(cases::echo_native(&ctx)?);
    }
    if want("echo") || want("ls") || want("corpus") || want("concurrency") {
        // A server that finds the module's compiled form in the cache, as the one measured
        // must: when the module changed since the last run (and the `startup` group did not
        // run), the first server compiles it in-process and its RSS would be the compiler's.
        ctx.ready_server()?.close(Duration::from_secs(5));
        let mut s = ctx.ready_server()?;
        std::thread::sleep(Duration::from_millis(300));
        let idle = s.memory();
        rows.push(
            Row::new(
                "rss_idle",
                "server RSS when idle (after initialize and one call)",
            )
            .value(mib(idle.rss_kib), "MiB")
            .goal(Goal::ValueAtMost(40.0)),
        );
        if want("echo") {
            eprintln!("runbox-bench: echo");
            rows.extend(cases::echo(&ctx, &mut s)?);
        }
        if want("concurrency") {
            eprintln!("runbox-bench: throughput and short-during-long");
            let (row, mid) = cases::throughput(&ctx, &mut s)?;
            rows.push(row);
            rows.push(
                Row::new(
                    "rss_load_echo",
                    "server RSS with 8 echo calls in flight (VmRSS mid-run)",
                )
                .value(mib(mid.rss_kib), "MiB"),
            );
            rows.extend(cases::short_during_long(&ctx, &mut s)?);
        }
        if want("ls") {
            eprintln!("runbox-bench: ls");
            rows.push(cases::ls(&ctx, &mut s)?);
        }
        if want("corpus") {
            eprintln!("runbox-bench: corpus (wc, grep, sort)");
            rows.extend(cases::corpus(&ctx, &mut s)?);
        }
        let end = s.memory();
        rows.push(
            Row::new("rss_peak", "server peak RSS over the whole session (VmHWM)")
                .value(mib(end.hwm_kib), "MiB")
                .note("includes the guests' linear memory: sort holds the whole corpus"),
        );
        s.close(Duration::from_secs(5));
    }
    let mut tree_info = None;
    if want("tree") {
        eprintln!("runbox-bench: tree (find, grep -r, ls -R, du, cat | wc)");
        let info = tree::ensure(&ctx.fx.base, &ctx.fx.ws)?;
        eprintln!(
            "runbox-bench: tree: {} packages ({} not in the cargo cache), {} files, {} directories, {} bytes",
            info.packages, info.skipped, info.files, info.dirs, info.bytes
        );
        rows.extend(tree::cases(&ctx, &info)?);
        tree_info = Some(info);
    }

    let load_after = loadavg();
    let log = std::fs::read_to_string(&ctx.fx.log).unwrap_or_default();
    let allocator = if log.contains("cannot reserve the instance pool") {
        "on-demand (the pool could not be reserved)"
    } else if log.contains("pooling allocator") {
        "pooling"
    } else {
        "unknown (not in the log)"
    };
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let table = report::table(&rows);
    println!("{table}");
    let machine = machine();
    println!(
        "machine: {}; load average before {load_before}, after {load_after}",
        machine["summary"].as_str().unwrap_or("")
    );
    if let Some(t) = &tree_info {
        println!(
            "tree: {} crates.io packages of the lock files ({} not in the cargo cache), {} files, {} directories, {} bytes",
            t.packages, t.skipped, t.files, t.dirs, t.bytes
        );
    }
    println!(
        "runbox {} ({revision}), instance allocator: {allocator}",
        ctx.bin.display()
    );
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| base.join("report.json"));
    let doc = serde_json::json!({
        "schema": 1,
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        "machine": machine,
        "runbox": {"binary": ctx.bin.display().to_string(), "revision": revision, "allocator": allocator},
        "load_average": {"before": load_before, "after": load_after},
        "corpus_bytes": ctx.fx.corpus_bytes,
        "tree": tree_info,
        "effort": ctx.effort,
        "quick": args.quick,
        "rows": rows,
    });
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?,
    )?;
    println!("JSON report: {}", json_path.display());
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU model, core count, memory and kernel, from /proc.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    serde_json::json!({
        "cpu": model,
        "cores": cores,
        "memory_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "kernel": kernel,
        "summary": format!("{model}, {cores} cores, {:.0} GiB, Linux {kernel}", mem_kib as f64 / 1048576.0),
    })
}
