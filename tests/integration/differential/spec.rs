//! The differential test's data: cases, fixture trees and known differences, read from
//! `tests/differential/*.toml` and checked for consistency before anything runs.
//!
//! Pure: parsing and validation only. Nothing here touches a workspace or starts a process.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Every file mtime in a fixture unless the fixture says otherwise: 2024-01-02 03:04:05 UTC.
pub const FIXED_MTIME: i64 = 1_704_164_645;

/// One thing a case compares between runbox and GNU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aspect {
    /// Standard output, byte for byte (after `sort_lines` if set).
    Stdout,
    /// The exit code.
    Exit,
    /// The workspace afterwards: names, types, contents, symlink targets (mtimes with `mtimes`).
    Tree,
    /// Standard error: by default only whether it is empty; exact with `stderr = "exact"`.
    Stderr,
}

impl Aspect {
    pub const ALL: [Aspect; 4] = [Aspect::Stdout, Aspect::Exit, Aspect::Tree, Aspect::Stderr];
}

impl fmt::Display for Aspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Aspect::Stdout => "stdout",
            Aspect::Exit => "exit",
            Aspect::Tree => "tree",
            Aspect::Stderr => "stderr",
        })
    }
}

/// How standard error is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StderrMode {
    /// Both empty or both non-empty (program-name prefixes and wording differ between tools).
    #[default]
    Presence,
    /// Identical text.
    Exact,
}

/// One command line run on both sides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique, `[a-z0-9-]+`.
    pub name: String,
    /// The command and its arguments; `argv[0]` is a runbox built-in and the GNU program.
    pub argv: Vec<String>,
    /// The fixture tree both sides start from (empty if absent).
    pub fixture: Option<String>,
    /// Text fed to standard input (none: stdin is empty).
    pub stdin: Option<String>,
    /// Working directory relative to the fixture root.
    pub cwd: Option<String>,
    /// `LC_ALL` on both sides (runbox's guest gets it through `[wasi.env]`); default `C`.
    pub locale: Option<String>,
    /// Extra arguments for the GNU side only, right after the program name (a documented
    /// equivalent such as `du --apparent-size`).
    #[serde(default)]
    pub gnu_extra_args: Vec<String>,
    /// Sort stdout lines on both sides before comparing (GNU walks in directory order).
    #[serde(default)]
    pub sort_lines: bool,
    /// Compare file mtimes in the resulting trees too.
    #[serde(default)]
    pub mtimes: bool,
    #[serde(default)]
    pub stderr: StderrMode,
    /// Aspects not compared at all for this case.
    #[serde(default)]
    pub skip: Vec<Aspect>,
}

impl Case {
    /// The locale both sides run in.
    pub fn locale(&self) -> &str {
        self.locale.as_deref().unwrap_or("C")
    }

    /// The aspects this case compares.
    pub fn aspects(&self) -> Vec<Aspect> {
        Aspect::ALL
            .into_iter()
            .filter(|a| !self.skip.contains(a))
            .collect()
    }
}

/// A tree declared in data: files with contents, empty directories, symlinks, and mtimes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Path → size: a file of that many bytes of repeated `abcdefghijklmnopqrstuvwxy\n`.
    #[serde(default)]
    pub fill: BTreeMap<String, usize>,
    /// Path → contents in standard base64 (whitespace ignored): binary files such as archives
    /// made by the GNU tools.
    #[serde(default)]
    pub base64: BTreeMap<String, String>,
    #[serde(default)]
    pub dirs: Vec<String>,
    /// Link path → target, created as given (relative targets stay relative).
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
    /// Path → mtime in seconds since the epoch, for files and directories; others get
    /// [`FIXED_MTIME`].
    #[serde(default)]
    pub mtimes: BTreeMap<String, i64>,
}

/// A case whose difference from GNU is documented, and in which aspects it differs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Known {
    pub case: String,
    /// Exactly the aspects that differ; the others must still match.
    pub differs: Vec<Aspect>,
    pub reason: String,
    /// A bug found by this test and not fixed yet (listed in the summary), rather than a
    /// difference by design.
    #[serde(default)]
    pub bug: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    case: Vec<Case>,
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

/// Everything the test needs, validated.
pub struct Spec {
    pub cases: Vec<Case>,
    pub fixtures: BTreeMap<String, Fixture>,
    pub known: BTreeMap<String, Known>,
    /// The built-in command names from `tools-wasm/commands.toml`.
    pub commands: Vec<String>,
}

/// `tests/differential/` in the source tree.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/differential")
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads and validates the data files; panics with every problem found.
pub fn load() -> Spec {
    let dir = data_dir();
    let cases = read_toml::<CasesFile>(&dir.join("cases.toml")).case;
    let fixtures = read_toml::<FixturesFile>(&dir.join("fixtures.toml")).fixture;
    let known_list = read_toml::<KnownFile>(&dir.join("known-differences.toml")).difference;
    let commands_toml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools-wasm/commands.toml");
    let commands = read_toml::<CommandsFile>(&commands_toml)
        .command
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut known = BTreeMap::new();
    let mut problems = Vec::new();
    for k in known_list {
        if known.contains_key(&k.case) {
            problems.push(format!("known difference {} listed twice", k.case));
        }
        known.insert(k.case.clone(), k);
    }
    let spec = Spec {
        cases,
        fixtures,
        known,
        commands,
    };
    problems.extend(validate(&spec));
    assert!(
        problems.is_empty(),
        "tests/differential data is inconsistent:\n  {}",
        problems.join("\n  ")
    );
    spec
}

/// Every inconsistency in the data, as sentences.
pub fn validate(spec: &Spec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut used_fixtures = BTreeSet::new();
    for c in &spec.cases {
        let valid_name = !c.name.is_empty()
            && c.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_name {
            problems.push(format!("case name {:?} is not [a-z0-9-]+", c.name));
        }
        if !names.insert(c.name.as_str()) {
            problems.push(format!("case {} is defined twice", c.name));
        }
        match c.argv.first() {
            None => problems.push(format!("case {}: argv is empty", c.name)),
            Some(cmd) if !spec.commands.contains(cmd) => problems.push(format!(
                "case {}: {cmd} is not a built-in command (tools-wasm/commands.toml)",
                c.name
            )),
            Some(_) => {}
        }
        if let Some(f) = &c.fixture {
            used_fixtures.insert(f.as_str());
            if !spec.fixtures.contains_key(f) {
                problems.push(format!("case {}: no fixture named {f}", c.name));
            }
        }
        if c.stderr == StderrMode::Exact && c.skip.contains(&Aspect::Stderr) {
            problems.push(format!("case {}: stderr is both exact and skipped", c.name));
        }
    }
    for (name, k) in &spec.known {
        let Some(case) = spec.cases.iter().find(|c| &c.name == name) else {
            problems.push(format!("known difference {name}: no such case"));
            continue;
        };
        if k.differs.is_empty() {
            problems.push(format!("known difference {name}: `differs` is empty"));
        }
        if k.reason.trim().len() < 20 {
            problems.push(format!("known difference {name}: give a real reason"));
        }
        for a in &k.differs {
            if case.skip.contains(a) {
                problems.push(format!(
                    "known difference {name}: {a} is skipped by the case"
                ));
            }
        }
    }
    for f in spec.fixtures.keys() {
        if !used_fixtures.contains(f.as_str()) {
            problems.push(format!("fixture {f} is not used by any case"));
        }
    }
    for cmd in &spec.commands {
        if !spec.cases.iter().any(|c| c.argv.first() == Some(cmd)) {
            problems.push(format!("command {cmd} has no differential case"));
        }
    }
    problems
}

#[test]
fn validation_names_every_inconsistency() {
    let case = |name: &str, cmd: &str, fixture: Option<&str>| Case {
        name: name.into(),
        argv: vec![cmd.into()],
        fixture: fixture.map(Into::into),
        stdin: None,
        cwd: None,
        locale: None,
        gnu_extra_args: Vec::new(),
        sort_lines: false,
        mtimes: false,
        stderr: StderrMode::Presence,
        skip: vec![Aspect::Tree],
    };
    let known = Known {
        case: "ghost".into(),
        differs: vec![Aspect::Stdout],
        reason: "a reason that is long enough".into(),
        bug: false,
    };
    let spec = Spec {
        cases: vec![
            case("cat-a", "cat", Some("nope")),
            case("cat-a", "cat", None),
            case("Bad_Name", "cat", None),
            case("env-x", "env", None),
        ],
        fixtures: BTreeMap::from([("unused".into(), Fixture::default())]),
        known: BTreeMap::from([("ghost".into(), known)]),
        commands: vec!["cat".into(), "ls".into()],
    };
    let problems = validate(&spec).join("\n");
    for expected in [
        "case cat-a: no fixture named nope",
        "case cat-a is defined twice",
        "case name \"Bad_Name\" is not [a-z0-9-]+",
        "case env-x: env is not a built-in command",
        "known difference ghost: no such case",
        "fixture unused is not used by any case",
        "command ls has no differential case",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} missing in:\n{problems}"
        );
    }
}
