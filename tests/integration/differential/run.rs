//! Runs one case on both sides: through `runbox exec` in one copy of the fixture, and through
//! the GNU program in another, both with `LC_ALL=C` (or the case's locale) and `TZ=UTC` as their
//! whole environment (GNU also gets `PATH`; the guest also gets `PWD`).

use super::spec::{Case, Spec};
use super::tree::{self, Snapshot};
use crate::support::{own_cache_dir, runbox_bin};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one side did.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    /// `None` if killed by a signal.
    pub exit: Option<i32>,
    pub tree: Snapshot,
}

/// Where the GNU program of `name` is, if installed. `awk` is GNU awk (`/usr/bin/awk` may be
/// mawk), run with `--posix` ([`gnu_args`]).
pub fn gnu_program(name: &str) -> Option<PathBuf> {
    let name = if name == "awk" { "gawk" } else { name };
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Arguments the GNU side always gets for `name`, before the case's own.
fn gnu_args(name: &str) -> &'static [&'static str] {
    if name == "awk" { &["--posix"] } else { &[] }
}

/// Runs `case` on both sides, each in a fresh copy of its fixture below `dir`.
pub fn both(spec: &Spec, case: &Case, gnu: &Path, dir: &Path) -> (Outcome, Outcome) {
    let fixture = case
        .fixture
        .as_ref()
        .map(|f| spec.fixtures[f].clone())
        .unwrap_or_default();
    let rb_root = dir.join("runbox");
    let gnu_root = dir.join("gnu");
    for root in [&rb_root, &gnu_root] {
        std::fs::create_dir(root).unwrap();
        tree::build(root, &fixture);
    }
    // The guest's environment is the same as GNU's, through runbox's policy file.
    let policy = dir.join("policy.toml");
    let env = format!("[wasi.env]\nLC_ALL = {:?}\nTZ = \"UTC\"\n", case.locale());
    std::fs::write(&policy, env).unwrap();
    let runbox = run_runbox(case, &rb_root, &dir.join("audit"), &policy);
    let gnu = run_gnu(case, gnu, &gnu_root);
    (runbox, gnu)
}

/// The runbox binary under test: this build's, or `RUNBOX_DIFF_RUNBOX` (to run the corpus
/// against another build without rebuilding the test).
fn runbox() -> PathBuf {
    std::env::var_os("RUNBOX_DIFF_RUNBOX")
        .map_or_else(|| PathBuf::from(runbox_bin()), PathBuf::from)
}

fn run_runbox(case: &Case, ws: &Path, audit: &Path, policy: &Path) -> Outcome {
    let mut cmd = Command::new(runbox());
    cmd.args(["exec", "--allow-root", "--timeout-ms", "30000", "--config"])
        .arg(policy)
        .arg("--workspace")
        .arg(ws)
        .arg("--audit-dir")
        .arg(audit)
        .arg("--cache-dir")
        // runbox runs as the test's user here, whatever RUNBOX_TEST_UID says.
        .arg(own_cache_dir())
        // runbox's own informational log lines would otherwise mix into the command's stderr.
        .env("RUST_LOG", "warn");
    if let Some(cwd) = &case.cwd {
        cmd.arg("--cwd").arg(cwd);
    }
    if case.stdin.is_some() {
        cmd.arg("--stdin");
    }
    cmd.arg(&case.argv[0]).arg("--").args(&case.argv[1..]);
    finish(cmd, case, ws)
}

fn run_gnu(case: &Case, program: &Path, root: &Path) -> Outcome {
    let mut cmd = Command::new(program);
    // argv[0] as the bare name, as runbox passes it (messages are prefixed with it).
    std::os::unix::process::CommandExt::arg0(&mut cmd, &case.argv[0]);
    cmd.args(gnu_args(&case.argv[0]))
        .args(&case.gnu_extra_args)
        .args(&case.argv[1..])
        .env_clear()
        .env("LC_ALL", case.locale())
        .env("TZ", "UTC")
        .env("PATH", "/usr/bin:/bin")
        .current_dir(match &case.cwd {
            Some(c) => root.join(c),
            None => root.to_path_buf(),
        });
    finish(cmd, case, root)
}

fn finish(mut cmd: Command, case: &Case, root: &Path) -> Outcome {
    cmd.stdin(if case.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("case {}: cannot start {cmd:?}: {e}", case.name));
    let writer = child.stdin.take().map(|mut stdin| {
        let text = case.stdin.clone().unwrap_or_default();
        // A command may exit without reading its input; a broken pipe is not a failure here.
        std::thread::spawn(move || {
            let _ = stdin.write_all(text.as_bytes());
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(w) = writer {
        w.join().unwrap();
    }
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if case.sort_lines {
        let mut lines: Vec<&str> = stdout.lines().collect();
        lines.sort_unstable();
        stdout = lines.iter().map(|l| format!("{l}\n")).collect();
    }
    Outcome {
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        exit: out.status.code(),
        tree: tree::snapshot(root, case.mtimes),
    }
}
