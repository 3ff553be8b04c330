//! The reference side: runs a case's script with `bash --norc --noprofile -c SCRIPT` in a copy of
//! the fixture, with `LC_ALL=C`, `TZ=UTC` and a `PATH` holding only the GNU programs of runbox's
//! built-in commands, so a case that uses any other program fails here too.
//!
//! In strict mode (the corpus check) bash's own built-ins are cut down to those runbox's
//! interpreter has, and every command bash cannot find is recorded, even when the script hides
//! the failure. Only ever writes below the directories it is given.

use super::spec::{Case, Spec};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one bash run may take before it is killed (a guard, not a measurement).
const BASH_DEADLINE: Duration = Duration::from_secs(30);

/// The built-ins runbox's interpreter has; strict mode disables bash's others.
const INTERPRETER_BUILTINS: &str = "cd|pwd|echo|printf|read|true|false|:|exit|export|set|shift|unset|local|return|break|continue|test|\\[";

/// The bash to run: Debian's, wherever PATH says otherwise.
pub fn bash_program() -> Option<PathBuf> {
    ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A temporary directory for bash's copies of the fixture: in memory (`/dev/shm`) where there is
/// one, as deleting a few hundred small trees from a disk takes seconds.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let in_memory = shm
        .is_dir()
        .then(|| tempfile::tempdir_in(shm).ok())
        .flatten();
    in_memory.unwrap_or_else(|| tempfile::tempdir().unwrap())
}

/// What bash did in one copy of the fixture.
#[derive(Debug)]
pub struct BashRun {
    pub stdout: String,
    pub stderr: String,
    /// `None` if killed by a signal or by the deadline.
    pub exit: Option<i32>,
    /// Commands bash could not find (strict mode only).
    pub not_found: Vec<String>,
}

/// A directory whose `bin` holds a symlink to the GNU program of every built-in command that is
/// installed; the names that are not are listed.
pub struct GnuBin {
    dir: tempfile::TempDir,
    pub missing: Vec<String>,
}

impl GnuBin {
    pub fn new(spec: &Spec) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let mut missing = Vec::new();
        for name in &spec.commands {
            match ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
            {
                Some(program) => std::os::unix::fs::symlink(program, bin.join(name)).unwrap(),
                None => missing.push(name.clone()),
            }
        }
        Self { dir, missing }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// Runs `case` in `root` (a fresh copy of the fixture; the case's cwd is below it).
    pub fn run(&self, case: &Case, root: &Path, strict: bool) -> BashRun {
        let not_found_log = self.dir.path().join("not-found");
        let _ = std::fs::remove_file(&not_found_log);
        let script = if strict {
            format!("{}{}", strict_prelude(&not_found_log), case.script)
        } else {
            case.script.clone()
        };
        let Some(bash) = bash_program() else {
            panic!("bash is not installed")
        };
        let mut cmd = Command::new(bash);
        cmd.args(["--norc", "--noprofile", "-c"])
            .arg(script)
            .env_clear()
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .env("PATH", self.path())
            .current_dir(
                case.cwd
                    .as_ref()
                    .map_or_else(|| root.to_path_buf(), |c| root.join(c)),
            );
        let mut run = run_bounded(cmd, case.stdin.as_deref());
        if strict {
            run.not_found = std::fs::read_to_string(&not_found_log)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
        }
        run
    }
}

/// Bash text that disables every built-in the interpreter lacks and logs each command bash
/// cannot find to `log` (bash calls `command_not_found_handle` in a subshell for those).
fn strict_prelude(log: &Path) -> String {
    let log = log.display().to_string().replace('\'', "'\\''");
    format!(
        "command_not_found_handle() {{ echo \"$1\" >> '{log}'; echo \"bash: $1: command not found\" >&2; return 127; }}\n\
         for b in $(compgen -b); do case $b in {INTERPRETER_BUILTINS}|enable) ;; *) enable -n \"$b\";; esac; done; enable -n enable\n"
    )
}

/// Runs `cmd` with `stdin` as its input, collecting both outputs, killed at [`BASH_DEADLINE`].
fn run_bounded(mut cmd: Command, stdin: Option<&str>) -> BashRun {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Its own process group, so the deadline kills the script's children too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("spawn bash");
    let writer = child.stdin.take().map(|mut pipe| {
        let text = stdin.unwrap_or_default().to_owned();
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        })
    });
    let readers = [
        child.stdout.take().map(drain),
        child.stderr.take().map(drain),
    ];
    let deadline = Instant::now() + BASH_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group this function created; no memory involved.
            unsafe { libc::kill(-i32::try_from(child.id()).unwrap(), libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let [stdout, stderr] = readers.map(|r| r.map(|h| h.join().unwrap()).unwrap_or_default());
    BashRun {
        stdout,
        stderr,
        exit: status.and_then(|s| s.code()),
        not_found: Vec::new(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Why bash's run of `case` shows the case itself is wrong (a program not installed or not on
/// runbox's list, a built-in the interpreter lacks, a status or stderr other than declared).
pub fn corpus_error(case: &Case, run: &BashRun) -> Option<String> {
    let mut why = Vec::new();
    if !run.not_found.is_empty() {
        why.push(format!(
            "bash found no command {}",
            run.not_found.join(", ")
        ));
    }
    if run.exit != Some(case.exit) {
        why.push(format!(
            "bash exited {:?}, the case says {}",
            run.exit, case.exit
        ));
    }
    if run.stderr.is_empty() == case.stderr {
        why.push(format!(
            "bash's stderr is {:?}, the case says stderr = {}",
            run.stderr, case.stderr
        ));
    }
    (!why.is_empty()).then(|| format!("corpus case {}: {}", case.name, why.join("; ")))
}
