//! Judging one case: compares runbox's side with bash's under the known-differences honesty
//! rule, and formats failures and the summary table.
//!
//! Pure: no process, no file system.

use super::runbox::ShellResult;
use super::spec::{COMPARED, Case, Spec};
use crate::differential::spec::{Aspect, Known};
use crate::differential::tree::{self, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Matched,
    Known,
    Failed,
}

/// One side's result, as compared.
pub struct Side {
    pub stdout: String,
    pub exit: Option<i64>,
    pub tree: Snapshot,
    /// How it ended, for reports: runbox's error, or bash's stderr.
    pub note: String,
}

pub fn runbox_side(r: &ShellResult, tree: Snapshot) -> Side {
    let commands: Vec<String> = r
        .commands
        .iter()
        .map(|c| match &c.error {
            Some(e) => format!("{}!{e}", c.argv0),
            None => c.argv0.clone(),
        })
        .collect();
    Side {
        stdout: r.stdout.clone(),
        exit: r.exit,
        tree,
        note: format!(
            "{}, stderr {:?}, commands [{}]",
            r.describe(),
            r.stderr,
            commands.join(" ")
        ),
    }
}

/// Compares the two sides of `case` against what `known` says about it.
pub fn judge(
    case: &Case,
    known: Option<&Known>,
    ours: &Side,
    theirs: &Side,
) -> (Verdict, Option<String>) {
    let diffs = compare(ours, theirs);
    let differing: BTreeSet<Aspect> = diffs.iter().map(|(a, _)| *a).collect();
    let listed: BTreeSet<Aspect> = known
        .map(|k| k.differs.iter().copied().collect())
        .unwrap_or_default();
    if listed == differing {
        let v = if known.is_some() {
            Verdict::Known
        } else {
            Verdict::Matched
        };
        return (v, None);
    }
    let what = if known.is_none() {
        "differs from bash".to_owned()
    } else if differing.is_empty() {
        "now matches bash: remove it from known-differences.toml".to_owned()
    } else {
        format!(
            "is listed as differing in {} but differs in {}",
            join(&listed),
            join(&differing)
        )
    };
    let mut s = format!("FAILED shell case {}: {what}\n", case.name);
    for (_, d) in &diffs {
        let _ = writeln!(s, "    {d}");
    }
    s.push_str(&show_both(case, ours, theirs));
    (Verdict::Failed, Some(s))
}

fn compare(ours: &Side, theirs: &Side) -> Vec<(Aspect, String)> {
    let mut diffs = Vec::new();
    for aspect in COMPARED {
        let d = match aspect {
            Aspect::Stdout => (ours.stdout != theirs.stdout).then(|| "stdout differs".to_owned()),
            Aspect::Exit => (ours.exit != theirs.exit)
                .then(|| format!("exit: runbox {:?}, bash {:?}", ours.exit, theirs.exit)),
            Aspect::Tree => {
                let lines = tree::differences(&ours.tree, &theirs.tree);
                (!lines.is_empty()).then(|| {
                    format!(
                        "trees differ (runbox's vs bash's):\n      {}",
                        lines.join("\n      ")
                    )
                })
            }
            Aspect::Stderr => None,
        };
        if let Some(d) = d {
            diffs.push((aspect, d));
        }
    }
    diffs
}

fn join(set: &BTreeSet<Aspect>) -> String {
    let v: Vec<String> = set.iter().map(ToString::to_string).collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

/// Both sides' output, for a failure message or verbose mode.
pub fn show_both(case: &Case, ours: &Side, theirs: &Side) -> String {
    let mut s = format!("  case {}: {}\n", case.name, clip(&case.script));
    for (side, o) in [("runbox", ours), ("bash", theirs)] {
        let _ = writeln!(s, "  --- {side}: exit {:?}; {}", o.exit, clip(&o.note));
        let _ = writeln!(s, "    stdout: {}", clip(&o.stdout));
    }
    s
}

pub fn clip(text: &str) -> String {
    const MAX: usize = 1500;
    let shown: String = text.chars().take(MAX).collect();
    let more = if text.chars().count() > MAX {
        " ..."
    } else {
        ""
    };
    format!("{shown:?}{more}")
}

/// Totals, the match rate, then cases / matched / known per group of case names (the part
/// before the first `-`), four groups a line.
pub fn summary(spec: &Spec, results: &[(&Case, Verdict)], took: std::time::Duration) -> String {
    let mut groups: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let mut total = [0usize; 3];
    for (case, v) in results {
        let i = match v {
            Verdict::Matched => 0,
            Verdict::Known => 1,
            Verdict::Failed => 2,
        };
        let group = case.name.split('-').next().unwrap_or_default();
        groups.entry(group).or_default()[i] += 1;
        total[i] += 1;
    }
    let n = total.iter().sum::<usize>();
    let rate = if n == 0 {
        0.0
    } else {
        100.0 * total[0] as f64 / n as f64
    };
    let mut s =
        String::from("shell differential test, runbox's `shell` vs bash (LC_ALL=C, TZ=UTC)\n");
    let _ = writeln!(
        s,
        "  {:>6} {:>8} {:>6} {:>7}   match rate {rate:.1}% (target 95%), {:.1} s",
        "cases",
        "matched",
        "known",
        "failed",
        took.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "  {n:>6} {:>8} {:>6} {:>7}",
        total[0], total[1], total[2]
    );
    s.push_str("  per group: cases matched known\n");
    let cells: Vec<String> = groups
        .iter()
        .map(|(g, c)| {
            format!(
                "{g:<11}{:>3}{:>4}{:>3}",
                c.iter().sum::<usize>(),
                c[0],
                c[1]
            )
        })
        .collect();
    for row in cells.chunks(4) {
        let _ = writeln!(s, "  {}", row.join("   "));
    }
    let bugs: Vec<&str> = results
        .iter()
        .filter(|(c, v)| *v == Verdict::Known && spec.known[&c.name].bug)
        .map(|(c, _)| c.name.as_str())
        .collect();
    if !bugs.is_empty() {
        let _ = writeln!(
            s,
            "  open bugs (known-differences.toml, bug = true): {}",
            bugs.join(" ")
        );
    }
    s
}
