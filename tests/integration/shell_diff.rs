//! The shell tool's differential test (issue #15, item 6): every case in `tests/shell/cases.toml`
//! runs through runbox's `shell` tool and through `bash --norc --noprofile -c SCRIPT` on
//! identical copies of one fixture tree; stdout, the exit status and the resulting tree must
//! agree. Every entry of `tests/shell/refusals.toml` must be refused or stopped without touching
//! anything outside the workspace or starting a command outside the allowlist.
//!
//! The `shell` tool takes `{script, cwd?, stdin?, timeout_ms?}` and answers with the `run` tool's
//! fields plus `commands`: `{argv, runner, exitCode}` or `{argv, runner, error}` per command that
//! started; a refused script is an error result (`COMMAND_NOT_ALLOWED`, `INVALID_ARGUMENT`, ...).
//!
//! A case listed in `tests/shell/known-differences.toml` must differ in exactly the aspects
//! listed there (the honesty rule of `differential.rs`). The corpus is checked on its own too:
//! bash must run every case with the declared status and stderr, using only runbox's commands
//! and the interpreter's built-ins, and the corpus may not shrink below its minimums or lose a
//! construct.
//!
//! While editing: `RUNBOX_SHELL_DIFF_FILTER=heredoc` runs the cases and refusals whose name
//! contains `heredoc`, `RUNBOX_SHELL_DIFF_VERBOSE=1` prints both sides of every case,
//! `RUNBOX_SHELL_DIFF_RUNBOX=PATH` runs them against another server binary.

mod bash;
mod judge;
mod refusal;
mod runbox;
mod spec;

use crate::differential::tree;
use crate::support::warm_cache;
use judge::{Side, Verdict, clip, runbox_side, show_both, summary};
use runbox::Runbox;
use spec::{Case, Spec};
use std::collections::BTreeMap;
use std::path::Path;

/// The wall-clock limit of one case on runbox's side (a guard; cases take milliseconds).
const CASE_TIMEOUT_MS: u64 = 20_000;

fn selected(name: &str) -> bool {
    std::env::var("RUNBOX_SHELL_DIFF_FILTER").map_or(true, |f| name.contains(f.as_str()))
}

fn verbose() -> bool {
    std::env::var_os("RUNBOX_SHELL_DIFF_VERBOSE").is_some()
}

/// Straight to the process's stderr: the harness captures `eprintln!` of passing tests.
fn print(text: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
}

#[test]
fn shell_corpus_is_large_and_covers_every_construct() {
    let spec = spec::load();
    print(&format!(
        "shell corpus: {} cases, {} refusals, {} constructs covered, {} known differences\n",
        spec.cases.len(),
        spec.refusals.len(),
        spec::CONSTRUCTS.len(),
        spec.known.len()
    ));
}

#[test]
fn shell_cases_are_valid_under_bash() {
    let spec = spec::load();
    if bash::bash_program().is_none() {
        assert!(
            std::env::var_os("RUNBOX_REQUIRE_GNU_TOOLS").is_none(),
            "RUNBOX_REQUIRE_GNU_TOOLS is set but bash is not installed"
        );
        print("SKIPPED shell_cases_are_valid_under_bash: bash is not installed\n");
        return;
    }
    let gnu = bash::GnuBin::new(&spec);
    let base = bash::scratch_dir();
    let mut errors = Vec::new();
    for (i, case) in spec.cases.iter().enumerate() {
        if !selected(&case.name) {
            continue;
        }
        let root = base.path().join(format!("case-{i:03}"));
        std::fs::create_dir(&root).unwrap();
        tree::build(&root, &spec.fixture);
        let run = gnu.run(case, &root, true);
        errors.extend(bash::corpus_error(case, &run));
        let _ = std::fs::remove_dir_all(&root);
    }
    assert!(
        errors.is_empty(),
        "{} case(s) do not run under bash as declared (GNU programs not installed: {:?}):\n{}",
        errors.len(),
        gnu.missing,
        errors.join("\n")
    );
}

/// Starts the server, which must offer the `shell` tool.
fn start_runbox(test: &str) -> Option<Runbox> {
    warm_cache();
    let mut rb = Runbox::start();
    assert!(rb.has_shell(), "{test}: the server has no `shell` tool");
    Some(rb)
}

#[test]
fn shell_matches_bash() {
    let spec = spec::load();
    let Some(mut rb) = start_runbox("shell_matches_bash") else {
        return;
    };
    let gnu = bash::GnuBin::new(&spec);
    let base = bash::scratch_dir();
    // The directory holding bash's copies, as bash's `pwd` prints it: removed from bash's
    // stdout, so `/case-007/src` reads the same on both sides.
    let bash_base = base.path().canonicalize().unwrap();
    let started = std::time::Instant::now();
    let mut results: Vec<(&Case, Verdict)> = Vec::new();
    let mut failures = Vec::new();
    for (i, case) in spec.cases.iter().enumerate() {
        if !selected(&case.name) {
            continue;
        }
        let dir_name = format!("case-{i:03}");
        let (ours, theirs, mut extra) = run_both(&spec, &mut rb, &gnu, case, &dir_name, &bash_base);
        if verbose() {
            print(&show_both(case, &ours, &theirs));
        }
        let (verdict, failure) = judge::judge(case, spec.known.get(&case.name), &ours, &theirs);
        extra.extend(failure);
        if extra.is_empty() {
            results.push((case, verdict));
        } else {
            failures.push(extra.join("\n"));
            results.push((case, Verdict::Failed));
        }
    }
    for f in &failures {
        print(&format!("{f}\n"));
    }
    print(&summary(&spec, &results, started.elapsed()));
    assert!(
        failures.is_empty(),
        "{} shell case(s) failed (details above)",
        failures.len()
    );
}

/// Runs `case` on both sides in fresh copies named `dir_name`; returns both results and the
/// problems that are failures whatever known-differences.toml says (a corpus error, a command
/// outside the allowlist, a write outside the case's directory).
fn run_both(
    spec: &Spec,
    rb: &mut Runbox,
    gnu: &bash::GnuBin,
    case: &Case,
    dir_name: &str,
    bash_base: &Path,
) -> (Side, Side, Vec<String>) {
    let mut problems = Vec::new();
    let rb_root = rb.case_dir(dir_name);
    tree::build(&rb_root, &spec.fixture);
    rb.hand_over(&rb_root);
    let cwd = match &case.cwd {
        Some(c) => format!("{dir_name}/{c}"),
        None => dir_name.to_owned(),
    };
    let (result, raw) = rb.shell(
        &case.script,
        Some(&cwd),
        case.stdin.as_deref(),
        CASE_TIMEOUT_MS,
    );
    for p in refusal::common_problems(spec, &result) {
        problems.push(format!("FAILED shell case {}: {p}\n    {raw}", case.name));
    }
    let ours = runbox_side(&result, tree::snapshot(&rb_root, false));
    let _ = std::fs::remove_dir_all(&rb_root);
    // Anything else in the workspace was written outside the case's directory.
    for e in std::fs::read_dir(rb.ws()).unwrap().flatten() {
        problems.push(format!(
            "FAILED shell case {}: wrote {:?} outside its directory",
            case.name,
            e.file_name()
        ));
        let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
    }
    let bash_root = bash_base.join(dir_name);
    std::fs::create_dir(&bash_root).unwrap();
    tree::build(&bash_root, &spec.fixture);
    let run = gnu.run(case, &bash_root, false);
    problems.extend(bash::corpus_error(case, &run));
    let theirs = Side {
        stdout: run.stdout.replace(&bash_base.display().to_string(), ""),
        exit: run.exit.map(i64::from),
        tree: tree::snapshot(&bash_root, false),
        note: format!("stderr {:?}", run.stderr),
    };
    let _ = std::fs::remove_dir_all(&bash_root);
    (ours, theirs, problems)
}

#[test]
fn shell_refusals_are_refused() {
    let spec = spec::load();
    let Some(mut rb) = start_runbox("shell_refusals_are_refused") else {
        return;
    };
    let sentinel_before = tree::snapshot(&rb.sentinel, true);
    let beside = |rb: &Runbox| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(rb.env.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let beside_before = beside(&rb);
    let mut failures = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in spec.refusals.iter().enumerate() {
        if !selected(&r.name) {
            continue;
        }
        let dir_name = format!("refusal-{i:03}");
        let dir = rb.case_dir(&dir_name);
        tree::build(&dir, &spec.fixture);
        rb.hand_over(&dir);
        let cwd = (!r.root).then_some(dir_name.as_str());
        let (result, raw) = rb.shell(
            &r.script,
            cwd,
            r.stdin.as_deref(),
            r.timeout_ms.unwrap_or(CASE_TIMEOUT_MS),
        );
        *outcomes.entry(refusal::outcome(&result)).or_default() += 1;
        let mut problems =
            refusal::problems(&spec, r, &result, &dir, &rb.sentinel, &sentinel_before);
        if tree::snapshot(&rb.sentinel, true) != sentinel_before {
            rb.reset_sentinel();
        }
        let now_beside = beside(&rb);
        for new in now_beside.iter().filter(|n| !beside_before.contains(n)) {
            problems.push(format!("{new:?} appeared next to the workspace"));
            let path = rb.env.dir.path().join(new);
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
        for gone in beside_before.iter().filter(|n| !now_beside.contains(n)) {
            problems.push(format!("{gone:?} next to the workspace is gone"));
        }
        if verbose() || !problems.is_empty() {
            print(&format!(
                "refusal {}: {} -> {}\n",
                r.name,
                clip(&r.script),
                result.describe()
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "FAILED refusal {}: {}\n    script: {}\n    result: {raw}",
                r.name,
                problems.join("\n    "),
                clip(&r.script)
            ));
        }
        // Whatever the script did to the workspace (`rm -rf /` at its root), start clean.
        for e in std::fs::read_dir(rb.ws()).unwrap().flatten() {
            let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
        }
    }
    for f in &failures {
        print(&format!("{f}\n"));
    }
    let counts: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    print(&format!(
        "shell refusals: {} run, {} failed; outcomes: {}\n",
        outcomes.values().sum::<usize>(),
        failures.len(),
        counts.join(", ")
    ));
    assert!(
        failures.is_empty(),
        "{} refusal(s) failed (details above)",
        failures.len()
    );
}
