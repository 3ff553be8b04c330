//! The `tree` group: commands agents run on real source trees (`find`, `grep -r`, `ls -R`,
//! `du`), and `cat` of the 100 MB corpus into `wc -l`, each through runbox as a pipeline over
//! MCP and natively as the same pipeline of GNU processes, in the same run.
//!
//! The tree is built reproducibly from what any build of this repository leaves on the machine:
//! the `.crate` archives in cargo's registry cache of the crates.io packages named in
//! `Cargo.lock` and `tools-wasm/Cargo.lock` (a package whose archive is not in the cache, e.g.
//! a Windows-only one never downloaded here, is skipped and counted). No network is needed.
//! The tree is extracted with `tar` into `ws/tree`, once; a stamp outside the workspace records
//! which packages it holds, so it is rebuilt only when the lock files change. This module must
//! not write anywhere but the benchmark's base directory.

use crate::cases::{Ctx, first_bytes, timed};
use crate::client::Server;
use crate::fixture::CORPUS;
use crate::report::{Goal, Row};
use crate::stats::Summary;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Name of the source tree inside the workspace.
pub const TREE: &str = "tree";

/// What the tree holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TreeInfo {
    /// Packages extracted.
    pub packages: usize,
    /// Packages of the lock files with no archive in the cache.
    pub skipped: usize,
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes in regular files.
    pub bytes: u64,
}

/// The benchmark policy plus room for a 100 MB stage output between pipeline stages.
const TREE_POLICY_EXTRA: &str = "max_stdin_bytes = 134217728\n";

/// Builds (or reuses) `ws/tree`.
pub fn ensure(base: &Path, ws: &Path) -> std::io::Result<TreeInfo> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut wanted = Vec::new();
    for lock in ["Cargo.lock", "tools-wasm/Cargo.lock"] {
        wanted.extend(registry_packages(&std::fs::read_to_string(
            repo.join(lock),
        )?));
    }
    wanted.sort();
    wanted.dedup();
    let caches = cache_dirs();
    let mut archives = Vec::new();
    let mut skipped = 0;
    for (name, version) in &wanted {
        let file = format!("{name}-{version}.crate");
        match caches.iter().map(|d| d.join(&file)).find(|p| p.is_file()) {
            Some(p) => archives.push(p),
            None => skipped += 1,
        }
    }
    let stamp = base.join("tree.stamp");
    let listing: String = archives
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| format!("{}\n", n.to_string_lossy()))
        .collect();
    let dest = ws.join(TREE);
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(listing.as_str()) || !dest.is_dir() {
        eprintln!(
            "runbox-bench: extracting {} crates into {}",
            archives.len(),
            dest.display()
        );
        let tmp = base.join("tree.tmp");
        for d in [&tmp, &dest] {
            if d.exists() {
                std::fs::remove_dir_all(d)?;
            }
        }
        std::fs::create_dir_all(&tmp)?;
        for a in &archives {
            let st = Command::new("tar")
                .arg("-xzf")
                .arg(a)
                .arg("-C")
                .arg(&tmp)
                .arg("--no-same-owner")
                .status()?;
            if !st.success() {
                return Err(std::io::Error::other(format!(
                    "tar -xzf {} failed: {st}",
                    a.display()
                )));
            }
        }
        std::fs::rename(&tmp, &dest)?;
        std::fs::write(&stamp, &listing)?;
    }
    let mut info = TreeInfo {
        packages: archives.len(),
        skipped,
        files: 0,
        dirs: 0,
        bytes: 0,
    };
    count(&dest, &mut info)?;
    Ok(info)
}

/// `(name, version)` of every crates.io package in a `Cargo.lock`.
fn registry_packages(lock: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in lock.split("[[package]]") {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.trim().strip_prefix("= "))
                    .map(|v| v.trim_matches('"').to_owned())
            })
        };
        let from_crates_io =
            field("source").is_some_and(|s| s.contains("github.com/rust-lang/crates.io-index"));
        if let (true, Some(n), Some(v)) = (from_crates_io, field("name"), field("version")) {
            out.push((n, v));
        }
    }
    out
}

/// Cargo's registry archive directories (`$CARGO_HOME/registry/cache/*`), sorted.
fn cache_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(home.join("registry/cache"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn count(dir: &Path, info: &mut TreeInfo) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            info.dirs += 1;
            count(&e.path(), info)?;
        } else if t.is_file() {
            info.files += 1;
            info.bytes += e.metadata()?.len();
        }
    }
    Ok(())
}

/// One stage: a program and its arguments.
type Stage<'a> = (&'a str, &'a [&'a str]);

/// The group's cases, on a server whose policy lets a 100 MB stage output through.
pub fn cases(ctx: &Ctx, info: &TreeInfo) -> std::io::Result<Vec<Row>> {
    let policy = ctx.fx.base.join("policy-tree.toml");
    std::fs::write(
        &policy,
        format!(
            "{}{TREE_POLICY_EXTRA}",
            std::fs::read_to_string(&ctx.fx.policy)?
        ),
    )?;
    let mut s = Server::spawn(
        &ctx.bin,
        &ctx.fx.args_with_policy(&ctx.fx.warm_cache, &policy),
        &ctx.fx.log,
    )?;
    s.initialize()?;
    let what = format!("{} files, {:.0} MB", info.files, info.bytes as f64 / 1e6);
    let wc: Stage = ("wc", &["-l"]);
    let cases: [(&'static str, String, Option<&str>, Vec<Stage>); 6] = [
        (
            "tree_find_name",
            format!("find . -name '*.rs' | wc -l, tree of {what}"),
            Some(TREE),
            vec![("find", &[".", "-name", "*.rs"]), wc],
        ),
        (
            "tree_grep_rl",
            format!("grep -rl unsafe . | wc -l, tree of {what}"),
            Some(TREE),
            vec![("grep", &["-rl", "unsafe", "."]), wc],
        ),
        (
            "tree_grep_rn_include",
            format!("grep -rn 'fn main' --include=*.rs . | wc -l, tree of {what}"),
            Some(TREE),
            vec![("grep", &["-rn", "fn main", "--include=*.rs", "."]), wc],
        ),
        (
            "tree_ls_r",
            format!("ls -R . | wc -l, tree of {what}"),
            Some(TREE),
            vec![("ls", &["-R", "."]), wc],
        ),
        (
            "tree_du_s",
            format!("du -s ., tree of {what}"),
            Some(TREE),
            vec![("du", &["-s", "."])],
        ),
        (
            "cat_wc_l",
            format!(
                "cat | wc -l, {:.0} MB corpus through a pipeline",
                ctx.fx.corpus_bytes as f64 / 1e6
            ),
            None,
            vec![("cat", &[CORPUS]), wc],
        ),
    ];
    let mut rows = Vec::new();
    for (key, case, cwd, stages) in cases {
        eprintln!("runbox-bench: tree: {case}");
        rows.push(versus(ctx, &mut s, key, case, cwd, &stages)?.goal(Goal::Ratio(2.0)));
    }
    s.close(Duration::from_secs(5));
    Ok(rows)
}

/// One pipeline through runbox and natively, `reps` times each, interleaved.
fn versus(
    ctx: &Ctx,
    s: &mut Server,
    key: &'static str,
    case: String,
    cwd: Option<&str>,
    stages: &[Stage],
) -> std::io::Result<Row> {
    let mut call = if let [(prog, args)] = stages {
        json!({"command": prog, "args": args})
    } else {
        let list: Vec<Value> = stages
            .iter()
            .map(|(p, a)| json!({"command": p, "args": a}))
            .collect();
        json!({ "pipeline": list })
    };
    call["timeout_ms"] = json!(600_000);
    if let Some(c) = cwd {
        call["cwd"] = json!(c);
    }
    let dir = cwd.map_or_else(|| ctx.fx.ws.clone(), |c| ctx.fx.ws.join(c));
    // Unmeasured runs first, native first: the first read of a freshly extracted tree is cold
    // (seconds), and that must not decide how many runs a case gets.
    let (_, native_out) = native_pipeline(&dir, stages)?;
    let (warm_time, warm) = timed(|| s.run(&call))?;
    let rb_out = warm["stdout"].as_str().unwrap_or("").as_bytes();
    let slow = warm_time > Duration::from_secs(5);
    let reps = if slow {
        ctx.effort.reps.min(2)
    } else {
        ctx.effort.reps
    };
    let (mut rb, mut nat) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        rb.push(timed(|| s.run(&call))?.0);
        nat.push(native_pipeline(&dir, stages)?.0);
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
    if key == "tree_du_s" {
        // runbox's du counts apparent sizes (WASI has no allocated blocks), GNU du blocks.
        row = row.note(format!(
            "outputs differ by design: runbox's du sums apparent sizes, GNU du allocated blocks (runbox {:?}, native {:?})",
            first_bytes(rb_out).trim_end(),
            first_bytes(&native_out).trim_end()
        ));
    } else if rb_out != native_out.as_slice() {
        row = row.note(format!(
            "OUTPUT DIFFERS from the native pipeline (runbox {:?}, native {:?})",
            first_bytes(rb_out),
            first_bytes(&native_out)
        ));
    }
    Ok(row)
}

/// Runs `stages` natively in `dir` as a real pipeline (each stage's stdout the next one's
/// stdin, all running at once), `LC_ALL=C`; returns the time from the first spawn to the last
/// exit and the last stage's output.
fn native_pipeline(dir: &Path, stages: &[Stage]) -> std::io::Result<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    let mut previous: Option<ChildStdout> = None;
    for (prog, args) in stages {
        let stdin = previous.take().map_or_else(Stdio::null, Stdio::from);
        let mut child = Command::new(prog)
            .args(*args)
            .current_dir(dir)
            .env("LC_ALL", "C")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        previous = child.stdout.take();
        children.push(child);
    }
    let mut out = Vec::new();
    if let Some(mut last) = previous {
        last.read_to_end(&mut out)?;
    }
    for (mut c, (prog, args)) in children.into_iter().zip(stages) {
        let status = c.wait()?;
        if !(status.success() || (*prog == "grep" && status.code() == Some(1))) {
            return Err(std::io::Error::other(format!(
                "{prog} {args:?} failed: {status}"
            )));
        }
    }
    Ok((start.elapsed(), out))
}
