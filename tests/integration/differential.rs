//! The differential test (issue #3, item 5): every case in `tests/differential/cases.toml` runs
//! through runbox and through the GNU tool on identical fixture trees, and stdout, exit code,
//! the resulting tree and (by default) whether stderr is empty must agree.
//!
//! A case listed in `tests/differential/known-differences.toml` must differ in exactly the
//! aspects listed there, for the reason given; if it starts to match, or differs in something
//! else too, the test fails, so the list stays honest. Every built-in command needs at least
//! one case.
//!
//! GNU versions the data was written against (Debian 12): coreutils 9.1, grep 3.8, sed 4.9,
//! findutils 4.9, diffutils 3.8, jq 1.6, tree 2.1, gzip 1.12, tar 1.34, xxd 2022-01-14 (vim 9.0),
//! binutils 2.40 (strings), util-linux 2.38.1 (column), gawk 5.2 (as `gawk --posix` for awk). A
//! case whose GNU program is not installed is skipped with a message, unless
//! `RUNBOX_REQUIRE_GNU_TOOLS=1` (set in CI), which fails.
//!
//! While editing cases: `RUNBOX_DIFF_FILTER=sort` runs the cases whose name contains `sort`,
//! `RUNBOX_DIFF_VERBOSE=1` prints both sides of every case, `RUNBOX_DIFF_RUNBOX=PATH` runs the
//! corpus against another runbox binary.

mod run;
pub(crate) mod spec;
pub(crate) mod tree;

use crate::support::warm_cache;
use run::Outcome;
use spec::{Aspect, Case, StderrMode};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Matched,
    Known,
    Failed,
    Skipped,
}

#[test]
fn runbox_commands_match_gnu() {
    warm_cache();
    let spec = spec::load();
    let filter = std::env::var("RUNBOX_DIFF_FILTER").ok();
    let verbose = std::env::var_os("RUNBOX_DIFF_VERBOSE").is_some();
    let base = tempfile::tempdir().unwrap();
    let mut results: Vec<(&Case, Verdict)> = Vec::new();
    let mut failures = Vec::new();
    let mut missing = BTreeSet::new();
    for (i, case) in spec.cases.iter().enumerate() {
        if filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            continue;
        }
        let Some(gnu) = run::gnu_program(&case.argv[0]) else {
            missing.insert(case.argv[0].clone());
            results.push((case, Verdict::Skipped));
            continue;
        };
        let dir = base.path().join(i.to_string());
        std::fs::create_dir(&dir).unwrap();
        let (rb, gnu) = run::both(&spec, case, &gnu, &dir);
        if verbose {
            eprintln!("{}", show_both(case, &rb, &gnu));
        }
        let (verdict, failure) = judge(case, spec.known.get(&case.name), &rb, &gnu);
        failures.extend(failure);
        results.push((case, verdict));
        let _ = std::fs::remove_dir_all(&dir);
    }
    for f in &failures {
        eprintln!("{f}");
    }
    let mut report = summary(&results);
    let bugs: Vec<&str> = results
        .iter()
        .filter(|(c, v)| *v == Verdict::Known && spec.known[&c.name].bug)
        .map(|(c, _)| c.name.as_str())
        .collect();
    if !bugs.is_empty() {
        let _ = writeln!(
            report,
            "open bugs (known-differences.toml, bug = true): {}",
            bugs.join(" ")
        );
    }
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    if !missing.is_empty() {
        let _ = writeln!(
            report,
            "SKIPPED the cases of {}: not installed",
            missing.join(" ")
        );
    }
    // Straight to the process's stderr: the test harness captures eprintln! of passing tests,
    // and the table is wanted in every run.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
    assert!(
        missing.is_empty() || std::env::var_os("RUNBOX_REQUIRE_GNU_TOOLS").is_none(),
        "RUNBOX_REQUIRE_GNU_TOOLS is set but these GNU programs are missing: {}",
        missing.join(" ")
    );
    assert!(
        failures.is_empty(),
        "{} differential case(s) failed (details above)",
        failures.len()
    );
}

/// Compares the two sides of `case` against what `known` says about it; a failure comes with
/// its report.
fn judge(
    case: &Case,
    known: Option<&spec::Known>,
    rb: &Outcome,
    gnu: &Outcome,
) -> (Verdict, Option<String>) {
    let diffs = compare(case, rb, gnu);
    let differing: BTreeSet<Aspect> = diffs.iter().map(|(a, _)| *a).collect();
    let listed: BTreeSet<Aspect> = known
        .map(|k| k.differs.iter().copied().collect())
        .unwrap_or_default();
    if listed == differing {
        let verdict = if known.is_some() {
            Verdict::Known
        } else {
            Verdict::Matched
        };
        return (verdict, None);
    }
    let what = if known.is_none() {
        "differs from GNU".to_owned()
    } else if differing.is_empty() {
        "now matches GNU: remove it from known-differences.toml".to_owned()
    } else {
        format!(
            "is listed as differing in {} but differs in {}",
            join(&listed),
            join(&differing)
        )
    };
    (Verdict::Failed, Some(failure(case, &what, &diffs, rb, gnu)))
}

/// The aspects in which the two sides differ, each with a description.
fn compare(case: &Case, rb: &Outcome, gnu: &Outcome) -> Vec<(Aspect, String)> {
    let mut diffs = Vec::new();
    for aspect in case.aspects() {
        let d = match aspect {
            Aspect::Stdout => (rb.stdout != gnu.stdout).then(|| "stdout differs".to_owned()),
            Aspect::Exit => (rb.exit != gnu.exit).then(|| {
                let refused = if rb.exit == Some(125) && rb.stderr.contains("runbox: {") {
                    " (runbox itself refused or could not run the command)"
                } else {
                    ""
                };
                format!(
                    "exit code: runbox {:?}, GNU {:?}{refused}",
                    rb.exit, gnu.exit
                )
            }),
            Aspect::Tree => {
                let lines = tree::differences(&rb.tree, &gnu.tree);
                (!lines.is_empty())
                    .then(|| format!("trees differ:\n      {}", lines.join("\n      ")))
            }
            Aspect::Stderr => match case.stderr {
                StderrMode::Exact => {
                    (rb.stderr != gnu.stderr).then(|| "stderr text differs".to_owned())
                }
                StderrMode::Presence => {
                    (rb.stderr.is_empty() != gnu.stderr.is_empty()).then(|| {
                        format!(
                            "stderr is {} on runbox's side and {} on GNU's",
                            emptiness(&rb.stderr),
                            emptiness(&gnu.stderr)
                        )
                    })
                }
            },
        };
        if let Some(d) = d {
            diffs.push((aspect, d));
        }
    }
    diffs
}

fn emptiness(s: &str) -> &'static str {
    if s.is_empty() { "empty" } else { "non-empty" }
}

fn join(set: &BTreeSet<Aspect>) -> String {
    let v: Vec<String> = set.iter().map(ToString::to_string).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

fn failure(
    case: &Case,
    what: &str,
    diffs: &[(Aspect, String)],
    rb: &Outcome,
    gnu: &Outcome,
) -> String {
    let mut s = format!("FAILED differential case {}: {what}\n", case.name);
    for (_, d) in diffs {
        let _ = writeln!(s, "    {d}");
    }
    s.push_str(&show_both(case, rb, gnu));
    s
}

/// Both sides' output, for a failure message or verbose mode.
fn show_both(case: &Case, rb: &Outcome, gnu: &Outcome) -> String {
    let mut s = format!("  case {}: {}\n", case.name, case.argv.join(" "));
    for (side, o) in [("runbox", rb), ("GNU", gnu)] {
        let _ = writeln!(s, "  --- {side}: exit {:?}", o.exit);
        let _ = writeln!(s, "    stdout: {}", clip(&o.stdout));
        let _ = writeln!(s, "    stderr: {}", clip(&o.stderr));
    }
    s
}

fn clip(text: &str) -> String {
    const MAX: usize = 1500;
    let shown: String = text.chars().take(MAX).collect();
    let more = if text.chars().count() > MAX {
        " ..."
    } else {
        ""
    };
    format!("{shown:?}{more}")
}

/// The table printed at the end: totals, then cases / matched / known per command, four
/// commands a line (failures and skips are in the totals and printed in detail above).
fn summary(results: &[(&Case, Verdict)]) -> String {
    let mut per_cmd: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let mut total = [0usize; 4];
    for (case, v) in results {
        let i = match v {
            Verdict::Matched => 0,
            Verdict::Known => 1,
            Verdict::Failed => 2,
            Verdict::Skipped => 3,
        };
        per_cmd.entry(case.argv[0].as_str()).or_default()[i] += 1;
        total[i] += 1;
    }
    let mut s = String::from(
        "differential test, runbox vs GNU (LC_ALL=C unless the case sets a locale, TZ=UTC)\n",
    );
    let _ = writeln!(
        s,
        "  {:>6} {:>8} {:>6} {:>7} {:>8}",
        "cases", "matched", "known", "failed", "skipped"
    );
    let _ = writeln!(
        s,
        "  {:>6} {:>8} {:>6} {:>7} {:>8}",
        total.iter().sum::<usize>(),
        total[0],
        total[1],
        total[2],
        total[3]
    );
    s.push_str("  per command: cases matched known\n");
    let cells: Vec<String> = per_cmd
        .iter()
        .map(|(cmd, c)| {
            format!(
                "{cmd:<10}{:>3}{:>4}{:>3}",
                c.iter().sum::<usize>(),
                c[0],
                c[1]
            )
        })
        .collect();
    for row in cells.chunks(4) {
        let _ = writeln!(s, "  {}", row.join("   "));
    }
    s
}
