//! The benchmark's result rows, their targets, and the two renderings: a plain-text table and
//! JSON.

use crate::stats::Summary;
use serde::Serialize;

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Stable key, e.g. `echo_wasi`.
    pub key: &'static str,
    /// What was measured, for people.
    pub case: String,
    /// runbox's timings (milliseconds).
    pub runbox: Option<Summary>,
    /// The same command run natively in the same run (milliseconds).
    pub native: Option<Summary>,
    /// runbox median / native median.
    pub ratio: Option<f64>,
    /// A single value that is not a timing (calls/s, KiB).
    pub value: Option<Value>,
    /// The goal, if the issue sets one.
    pub target: Option<Verdict>,
    /// Why a case did not run, or what to know about it.
    pub note: Option<String>,
}

/// A non-timing measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Value {
    /// The number.
    pub amount: f64,
    /// Its unit.
    pub unit: &'static str,
}

/// A goal and whether it was met.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The goal in words, e.g. `median <= 0.3 ms`.
    pub goal: String,
    /// What was compared against the limit.
    pub measured: f64,
    /// The limit.
    pub limit: f64,
    /// Whether `measured <= limit`.
    pub met: bool,
    /// How far off, in words (empty when met).
    pub gap: String,
}

/// What a goal constrains.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// The runbox median, in ms.
    MedianMs(f64),
    /// runbox median / native median.
    Ratio(f64),
    /// The row's value (same unit as the value).
    ValueAtMost(f64),
}

impl Row {
    /// A row with only a name.
    pub fn new(key: &'static str, case: impl Into<String>) -> Self {
        Self {
            key,
            case: case.into(),
            runbox: None,
            native: None,
            ratio: None,
            value: None,
            target: None,
            note: None,
        }
    }

    /// Sets runbox's timings.
    pub fn runbox(mut self, s: Summary) -> Self {
        self.runbox = Some(s);
        self.update_ratio();
        self
    }

    /// Sets the native timings.
    pub fn native(mut self, s: Summary) -> Self {
        self.native = Some(s);
        self.update_ratio();
        self
    }

    /// Sets a value.
    pub fn value(mut self, amount: f64, unit: &'static str) -> Self {
        self.value = Some(Value { amount, unit });
        self
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Judges the row against a goal (no verdict when the needed figure is missing).
    pub fn goal(mut self, goal: Goal) -> Self {
        let judged = match goal {
            Goal::MedianMs(limit) => self
                .runbox
                .map(|s| (format!("median <= {limit} ms"), s.median, limit, "ms")),
            Goal::Ratio(limit) => self
                .ratio
                .map(|r| (format!("<= {limit}x native"), r, limit, "x")),
            Goal::ValueAtMost(limit) => self
                .value
                .as_ref()
                .map(|v| (format!("<= {limit} {}", v.unit), v.amount, limit, v.unit)),
        };
        self.target = judged.map(|(goal, measured, limit, unit)| {
            let met = measured <= limit;
            let gap = if met {
                String::new()
            } else {
                format!(
                    "missed by {} {unit} ({:.0}% over)",
                    fmt_num(measured - limit),
                    (measured / limit - 1.0) * 100.0
                )
            };
            Verdict {
                goal,
                measured,
                limit,
                met,
                gap,
            }
        });
        self
    }

    fn update_ratio(&mut self) {
        if let (Some(r), Some(n)) = (self.runbox, self.native)
            && n.median > 0.0
        {
            self.ratio = Some(r.median / n.median);
        }
    }
}

/// Formats a number with sensible precision for the table.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a < 1.0 {
        format!("{v:.3}")
    } else if a < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

fn fmt_summary(s: Option<Summary>) -> String {
    match s {
        Some(s) => format!(
            "{} / {} / {}",
            fmt_num(s.median),
            fmt_num(s.p90),
            fmt_num(s.p99)
        ),
        None => "-".into(),
    }
}

/// The plain-text table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "case",
        "n",
        "runbox ms (med / p90 / p99)",
        "native ms (med / p90 / p99)",
        "ratio",
        "value",
        "target",
    ];
    let mut cells: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    for r in rows {
        let verdict = match &r.target {
            Some(v) if v.met => format!("met ({})", v.goal),
            Some(v) => format!("MISSED ({}): {}", v.goal, v.gap),
            None => String::new(),
        };
        cells.push([
            r.case.clone(),
            r.runbox.map_or(String::new(), |s| s.n.to_string()),
            fmt_summary(r.runbox),
            fmt_summary(r.native),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}x")),
            r.value
                .as_ref()
                .map_or("-".into(), |v| format!("{} {}", fmt_num(v.amount), v.unit)),
            verdict,
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join(" | ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-|-"));
            out.push('\n');
        }
    }
    let notes: Vec<String> = rows
        .iter()
        .filter_map(|r| r.note.as_ref().map(|n| format!("- {}: {n}", r.case)))
        .collect();
    if !notes.is_empty() {
        out.push_str("\nnotes:\n");
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out
}
