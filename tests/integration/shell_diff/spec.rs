//! The shell differential test's data: cases, refusals, the fixture and known differences, read
//! from `tests/shell/*.toml` and checked for consistency (and for coverage: the corpus may not
//! quietly shrink or lose a construct) before anything runs.
//!
//! Pure: parsing and validation only. Nothing here touches a workspace or starts a process.

use crate::differential::spec::{Aspect, Fixture, Known};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The fewest cases and refusals the corpus may have.
pub const MIN_CASES: usize = 250;
pub const MIN_REFUSALS: usize = 50;

/// The aspects a shell case compares (stderr wording differs between any two shells).
pub const COMPARED: [Aspect; 3] = [Aspect::Stdout, Aspect::Exit, Aspect::Tree];

/// Every construct of issue #15 with a piece of script text that shows it is used; each must
/// occur in at least one case's script.
pub const CONSTRUCTS: &[(&str, &str)] = &[
    ("single quotes", "'"),
    ("double quotes", "\""),
    ("backslash escape", "\\ "),
    ("ANSI-C quotes", "$'"),
    ("pipe", " | "),
    ("and list", " && "),
    ("or list", " || "),
    ("semicolon", "; "),
    ("negation", "! "),
    ("brace group", "{ "),
    ("subshell", "(cd "),
    ("input redirection", " < "),
    ("output redirection", " > "),
    ("append", " >> "),
    ("stderr redirection", "2>"),
    ("stdout and stderr", "&>"),
    ("stderr into stdout", "2>&1"),
    ("stdout into stderr", ">&2"),
    ("quoted here-document", "<<'EOF'"),
    ("unquoted here-document", "<<EOF"),
    ("tab-stripping here-document", "<<-"),
    ("here-string", "<<<"),
    ("/dev/null", "/dev/null"),
    ("glob star", "*"),
    ("glob question mark", "?.txt"),
    ("glob bracket", "[ab]"),
    ("brace expansion", "{1..5}"),
    ("variable", "$"),
    ("status", "$?"),
    ("argument count", "$#"),
    ("all arguments", "\"$@\""),
    ("all arguments joined", "$*"),
    ("set --", "set --"),
    ("default", ":-"),
    ("assign default", ":="),
    ("alternative", ":+"),
    ("length", "${#"),
    ("strip suffix", "%.*}"),
    ("strip prefix", "##*/}"),
    ("replace", "${x/"),
    ("substring", "${x:1:2}"),
    ("command substitution", "$("),
    ("backquotes", "`echo"),
    ("arithmetic expansion", "$(("),
    ("arithmetic command", "(("),
    ("if", "if "),
    ("elif", "elif "),
    ("else", "else "),
    ("case", "case "),
    ("case alternatives", "|*.c)"),
    ("for list", "for x in"),
    ("for over \"$@\"", "in \"$@\""),
    ("for over a glob", "in *.log"),
    ("C-style for", "for (("),
    ("while", "while "),
    ("until", "until "),
    ("break", "break"),
    ("continue", "continue"),
    ("function", "() {"),
    ("local", "local "),
    ("return", "return"),
    ("test", "test "),
    ("[", "[ "),
    ("[[", "[[ "),
    ("-f", "-f "),
    ("-d", "-d "),
    ("-e", "-e "),
    ("-s", "-s "),
    ("-n", "-n "),
    ("-z", "-z "),
    ("== pattern", "== *"),
    ("=~", "=~"),
    ("cd", "cd "),
    ("pwd", "pwd"),
    ("echo -n", "echo -n"),
    ("echo -e", "echo -e"),
    ("printf", "printf "),
    ("read -r", "read -r"),
    ("read several names", "read -r a b"),
    ("IFS=", "IFS= "),
    ("true", "true"),
    ("false", "false"),
    (":", ": "),
    ("exit", "exit "),
    ("export", "export "),
    ("set -e", "set -e"),
    ("set -o pipefail", "set -o pipefail"),
    ("shift", "shift"),
    ("unset", "unset "),
    ("streaming", "seq 1 1000000 | head"),
];

/// One script run on both sides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique, `[a-z0-9-]+`.
    pub name: String,
    pub script: String,
    pub stdin: Option<String>,
    /// Working directory relative to the fixture root.
    pub cwd: Option<String>,
    /// The exit status bash gives.
    #[serde(default)]
    pub exit: i32,
    /// Whether bash writes to stderr.
    #[serde(default)]
    pub stderr: bool,
}

/// A script runbox must refuse or stop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub name: String,
    pub script: String,
    /// Accepted outcomes: error codes, or [`NONZERO_EXIT`].
    pub codes: Vec<String>,
    /// Alternatives, one of which the error message must contain (ignoring case).
    #[serde(default)]
    pub message: Vec<String>,
    #[serde(default)]
    pub root: bool,
    pub timeout_ms: Option<u64>,
    pub stdin: Option<String>,
    #[serde(default)]
    pub absent: Vec<String>,
    #[serde(default)]
    pub stdout_lacks: Vec<String>,
}

/// The outcome "the script ran inside the workspace and failed".
pub const NONZERO_EXIT: &str = "nonzero-exit";

/// The error codes a refusal may expect (README.md's table).
const ERROR_CODES: &[&str] = &[
    "COMMAND_NOT_ALLOWED",
    "INVALID_ARGUMENT",
    "PATH_OUTSIDE_WORKSPACE",
    "PATH_NOT_FOUND",
    "TIMEOUT",
    "CPU_LIMIT",
    "MEMORY_LIMIT",
    "OUTPUT_LIMIT",
    "WRITE_LIMIT",
    "SCRIPT_LIMIT",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalsFile {
    refusal: Vec<Refusal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixturesFile {
    fixture: BTreeMap<String, Fixture>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownFile {
    #[serde(default)]
    difference: Vec<Known>,
}

#[derive(Deserialize)]
struct CommandsFile {
    command: Vec<CommandEntry>,
}

#[derive(Deserialize)]
struct CommandEntry {
    name: String,
}

/// Everything the tests need, validated.
pub struct Spec {
    pub cases: Vec<Case>,
    pub refusals: Vec<Refusal>,
    pub fixture: Fixture,
    pub known: BTreeMap<String, Known>,
    /// The built-in command names from `tools-wasm/commands.toml`.
    pub commands: Vec<String>,
}

impl Spec {
    /// Whether a command may start at all: a built-in, or git (runbox's one native command).
    pub fn allowed(&self, name: &str) -> bool {
        name == "git" || self.commands.iter().any(|c| c == name)
    }
}

/// `tests/shell/` in the source tree.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/shell")
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads and validates the data files; panics with every problem found.
pub fn load() -> Spec {
    let dir = data_dir();
    let mut fixtures = read_toml::<FixturesFile>(&dir.join("fixtures.toml")).fixture;
    let fixture = fixtures
        .remove("project")
        .unwrap_or_else(|| panic!("tests/shell/fixtures.toml has no fixture `project`"));
    let commands_toml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools-wasm/commands.toml");
    let mut problems: Vec<String> = fixtures
        .keys()
        .map(|k| format!("fixture {k}: only `project` is used"))
        .collect();
    let mut known = BTreeMap::new();
    for k in read_toml::<KnownFile>(&dir.join("known-differences.toml")).difference {
        if known.contains_key(&k.case) {
            problems.push(format!("known difference {} listed twice", k.case));
        }
        known.insert(k.case.clone(), k);
    }
    let spec = Spec {
        cases: read_toml::<CasesFile>(&dir.join("cases.toml")).case,
        refusals: read_toml::<RefusalsFile>(&dir.join("refusals.toml")).refusal,
        fixture,
        known,
        commands: read_toml::<CommandsFile>(&commands_toml)
            .command
            .into_iter()
            .map(|c| c.name)
            .collect(),
    };
    problems.extend(validate(&spec));
    assert!(
        problems.is_empty(),
        "tests/shell data is inconsistent:\n  {}",
        problems.join("\n  ")
    );
    spec
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every inconsistency in the data, as sentences.
pub fn validate(spec: &Spec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let cases = spec.cases.iter().map(|c| ("case", c.name.as_str()));
    let refusals = spec.refusals.iter().map(|r| ("refusal", r.name.as_str()));
    for (kind, name) in cases.chain(refusals) {
        if !valid_name(name) {
            problems.push(format!("{kind} name {name:?} is not [a-z0-9-]+"));
        }
        if !names.insert(name) {
            problems.push(format!("{kind} {name} is defined twice"));
        }
    }
    for c in &spec.cases {
        if c.cwd
            .as_deref()
            .is_some_and(|d| d.starts_with('/') || d.split('/').any(|p| p == ".."))
        {
            problems.push(format!("case {}: cwd must stay inside the fixture", c.name));
        }
    }
    for r in &spec.refusals {
        if r.codes.is_empty() {
            problems.push(format!("refusal {}: `codes` is empty", r.name));
        }
        for code in &r.codes {
            if code != NONZERO_EXIT && !ERROR_CODES.contains(&code.as_str()) {
                problems.push(format!("refusal {}: unknown outcome {code}", r.name));
            }
        }
    }
    if spec.cases.len() < MIN_CASES {
        problems.push(format!(
            "only {} cases (at least {MIN_CASES})",
            spec.cases.len()
        ));
    }
    if spec.refusals.len() < MIN_REFUSALS {
        problems.push(format!(
            "only {} refusals (at least {MIN_REFUSALS})",
            spec.refusals.len()
        ));
    }
    for (label, text) in CONSTRUCTS {
        if !spec.cases.iter().any(|c| c.script.contains(text)) {
            problems.push(format!("no case uses {label} ({text:?})"));
        }
    }
    for (name, k) in &spec.known {
        if !spec.cases.iter().any(|c| &c.name == name) {
            problems.push(format!("known difference {name}: no such case"));
        }
        if k.differs.is_empty() {
            problems.push(format!("known difference {name}: `differs` is empty"));
        }
        if k.differs.iter().any(|a| !COMPARED.contains(a)) {
            problems.push(format!(
                "known difference {name}: only stdout, exit and tree are compared"
            ));
        }
        if k.reason.trim().len() < 20 {
            problems.push(format!("known difference {name}: give a real reason"));
        }
    }
    problems
}

#[test]
fn validation_names_every_inconsistency() {
    let case = |name: &str, script: &str| Case {
        name: name.into(),
        script: script.into(),
        stdin: None,
        cwd: None,
        exit: 0,
        stderr: false,
    };
    let mut escaping = case("up", "ls");
    escaping.cwd = Some("src/../..".into());
    let refusal = Refusal {
        name: "echo-a".into(),
        script: "curl x".into(),
        codes: vec!["NOT_A_CODE".into()],
        message: Vec::new(),
        root: false,
        timeout_ms: None,
        stdin: None,
        absent: Vec::new(),
        stdout_lacks: Vec::new(),
    };
    let known = |case: &str, differs: Vec<Aspect>| Known {
        case: case.into(),
        differs,
        reason: "a reason that is long enough".into(),
        bug: false,
    };
    let spec = Spec {
        cases: vec![
            case("echo-a", "echo a"),
            case("Bad_Name", "echo b"),
            escaping,
        ],
        refusals: vec![refusal],
        fixture: Fixture::default(),
        known: BTreeMap::from([
            ("ghost".into(), known("ghost", vec![Aspect::Stdout])),
            ("up".into(), known("up", vec![Aspect::Stderr])),
        ]),
        commands: vec!["echo".into()],
    };
    let problems = validate(&spec).join("\n");
    for expected in [
        "refusal echo-a is defined twice",
        "case name \"Bad_Name\" is not [a-z0-9-]+",
        "case up: cwd must stay inside the fixture",
        "refusal echo-a: unknown outcome NOT_A_CODE",
        "only 3 cases (at least 250)",
        "only 1 refusals (at least 50)",
        "no case uses here-string (\"<<<\")",
        "known difference ghost: no such case",
        "known difference up: only stdout, exit and tree are compared",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} missing in:\n{problems}"
        );
    }
}
