//! Checks one refusal's result: the outcome is one the entry accepts, its message names what was
//! refused, nothing the script may not touch changed, nothing secret was printed and no command
//! outside the allowlist started.
//!
//! Reads the trees it compares; never writes.

use super::runbox::{SENTINEL_SECRET, ShellResult};
use super::spec::{NONZERO_EXIT, Refusal, Spec};
use crate::differential::tree::{self, Snapshot};
use std::path::Path;

/// A line of `/etc/passwd` on any Linux machine: no script may print it.
const PASSWD_LINE: &str = "root:x:0:0:";

/// What a refusal's outcome was, in the terms of `codes`.
pub fn outcome(r: &ShellResult) -> String {
    match (r.code(), r.exit) {
        (Some(code), _) => code.to_owned(),
        (None, Some(0)) => "exit 0".into(),
        (None, Some(_)) => NONZERO_EXIT.into(),
        (None, None) => "no exit code".into(),
    }
}

/// Every way the result of `refusal` breaks its promises, as sentences. `case_dir` is its
/// directory on the host; `sentinel_before` the sentinel as it was before the script ran.
pub fn problems(
    spec: &Spec,
    refusal: &Refusal,
    result: &ShellResult,
    case_dir: &Path,
    sentinel: &Path,
    sentinel_before: &Snapshot,
) -> Vec<String> {
    let mut out = Vec::new();
    let got = outcome(result);
    if !refusal.codes.contains(&got) {
        out.push(format!(
            "ended with {got} ({}), expected one of {}",
            result.describe(),
            refusal.codes.join(", ")
        ));
    }
    if !refusal.message.is_empty() && got != NONZERO_EXIT {
        let text = format!(
            "{} {}",
            result.error.as_ref().map_or("", |(_, m)| m.as_str()),
            result.stderr
        )
        .to_lowercase();
        if !refusal
            .message
            .iter()
            .any(|m| text.contains(&m.to_lowercase()))
        {
            out.push(format!(
                "the message names none of {:?}: {text:?}",
                refusal.message
            ));
        }
    }
    for path in &refusal.absent {
        if case_dir.join(path).symlink_metadata().is_ok() {
            out.push(format!("{path} exists: something ran before the refusal"));
        }
    }
    for s in &refusal.stdout_lacks {
        if result.stdout.contains(s.as_str()) {
            out.push(format!("stdout contains {s:?}: the script went on"));
        }
    }
    out.extend(common_problems(spec, result));
    let after = tree::snapshot(sentinel, true);
    if &after != sentinel_before {
        let lines = tree::differences(&after, sentinel_before);
        out.push(format!(
            "the sentinel next to the workspace changed (\"runbox has\": now, \"GNU has\": before):\n      {}",
            lines.join("\n      ")
        ));
    }
    out
}

/// What must hold for any script, refused or not: nothing secret printed, only allowed commands
/// started (a command refused with COMMAND_NOT_ALLOWED did not start), and only git natively.
pub fn common_problems(spec: &Spec, result: &ShellResult) -> Vec<String> {
    let mut out = Vec::new();
    let message = result.error.as_ref().map_or("", |(_, m)| m.as_str());
    for secret in [SENTINEL_SECRET, PASSWD_LINE] {
        if [result.stdout.as_str(), result.stderr.as_str(), message]
            .iter()
            .any(|t| t.contains(secret))
        {
            out.push(format!("the output contains {secret:?}"));
        }
    }
    for c in &result.commands {
        if c.error.as_deref() == Some("COMMAND_NOT_ALLOWED") {
            continue;
        }
        if !spec.allowed(&c.argv0) {
            out.push(format!("{:?} started: it is not on the allowlist", c.argv0));
        }
        if c.runner == "native" && c.argv0 != "git" {
            out.push(format!("{:?} ran natively", c.argv0));
        }
    }
    out
}

#[test]
fn common_problems_name_a_started_command_off_the_list_and_a_leaked_secret() {
    use super::runbox::CommandRun;
    let spec = Spec {
        cases: Vec::new(),
        refusals: Vec::new(),
        fixture: crate::differential::spec::Fixture::default(),
        known: std::collections::BTreeMap::new(),
        commands: vec!["cat".into()],
    };
    let run = |argv0: &str, runner: &str, error: Option<&str>| CommandRun {
        argv0: argv0.into(),
        runner: runner.into(),
        error: error.map(Into::into),
    };
    let result = ShellResult {
        stdout: format!("x {SENTINEL_SECRET}\n"),
        exit: Some(0),
        commands: vec![
            run("cat", "wasi", None),
            run("curl", "wasi", Some("COMMAND_NOT_ALLOWED")),
            run("python3", "native", Some("TIMEOUT")),
            run("cat", "native", None),
        ],
        ..ShellResult::default()
    };
    let problems = common_problems(&spec, &result).join("\n");
    for expected in [
        "the output contains \"SENTINEL-SECRET",
        "\"python3\" started: it is not on the allowlist",
        "\"cat\" ran natively",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} missing in:\n{problems}"
        );
    }
    assert!(!problems.contains("curl"), "{problems}");
}
