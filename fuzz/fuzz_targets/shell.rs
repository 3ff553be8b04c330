//! The `shell` interpreter (`shell::parse`, `shell::check::check`, `shell::run_script`) on
//! fuzzed scripts, over a host that runs a few commands in-process.
//!
//! Asserts, besides "no panic, no hang, bounded memory":
//! - a script the check step passes starts only allowlisted commands: the host records every
//!   start and fails the input on any other name (a command made at run time included);
//! - every script ends — by itself, a bound (`SCRIPT_LIMIT`) or the deadline — within the
//!   small bounds and deadline given here;
//! - nothing is written outside the fuzzed workspace: a sentinel file beside it is unchanged.
//!
//! A panic inside brush-parser on runbox's parser thread is not a crash: that thread contains
//! it and the script is refused (found by this target; see `shell::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbox::limits::write_pool::WritePool;
use runbox::outcome::RunnerKind;
use runbox::pipe::{PipeReader, PipeWriter};
use runbox::shell::{self, Bounds, CommandEnd, CommandStart, Host, ScriptRequest};
use runbox::workspace::Workspace;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The commands the fake allowlist has.
const ALLOWED: &[&str] = &["cat", "ls", "fail", "spam"];

struct FakeHost {
    ws: Workspace,
    /// The script's stop, which a host's commands obey (runbox's runners do).
    cancel: CancellationToken,
}

async fn copy(r: &PipeReader, w: &PipeWriter) -> i32 {
    let mut buf = [0u8; 4096];
    loop {
        let n = r.read(&mut buf).await;
        if n == 0 {
            return 0;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return 141;
        }
    }
}

impl Host for FakeHost {
    fn allows(&self, name: &str) -> bool {
        ALLOWED.contains(&name)
    }
    async fn record_refusal(&self, _argv: &[String], _cwd: &str, _error: &runbox::error::RunError) {
    }
    fn workspace(&self) -> &Workspace {
        &self.ws
    }
    fn may_write(&self) -> bool {
        true
    }
    async fn run(&self, start: CommandStart) -> CommandEnd {
        let name = start.argv[0].as_str();
        assert!(
            ALLOWED.contains(&name),
            "the interpreter started {name:?}, which is not allowed"
        );
        let work = async {
            match name {
                "cat" => copy(&start.stdin, &start.stdout).await,
                "ls" => {
                    let _ = start.stdout.write_all(b"a\nb\n").await;
                    0
                }
                "spam" => loop {
                    if start.stdout.write_all(b"spam\n").await.is_err() {
                        break 141;
                    }
                },
                _ => 1,
            }
        };
        let status = tokio::select! {
            s = work => s,
            () = self.cancel.cancelled() => 130,
        };
        CommandEnd {
            status: Ok(status),
            stderr: Vec::new(),
            runner: Some(RunnerKind::Wasi),
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ws: std::path::PathBuf,
    sentinel: std::path::PathBuf,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // brush-parser's own panics are contained by runbox (its parser thread, and
        // `shell::parse::contained` around every other call into it): the script is refused as
        // unreadable. Every other panic still aborts, as a crash.
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_brush = info
                .location()
                .is_some_and(|l| l.file().contains("brush-parser"));
            if std::thread::current().name() != Some("runbox-shell-parse") && !in_brush {
                fuzzer_hook(info);
            }
        }));
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(ws.join("a.txt"), "one\ntwo\n").unwrap();
        let sentinel = dir.path().join("sentinel");
        std::fs::write(&sentinel, "keep").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Fixture {
            _dir: dir,
            ws,
            sentinel,
            rt,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let cancel = CancellationToken::new();
    let host = FakeHost {
        ws: Workspace::open(&f.ws).unwrap(),
        cancel: cancel.clone(),
    };
    let Ok(program) = shell::parse(script) else {
        return;
    };
    if shell::check::check(&host, script, &program).is_err() {
        return;
    }
    let bounds = Bounds {
        max_commands: 200,
        max_steps: 5_000,
        max_depth: 16,
        max_value_bytes: 64 * 1024,
        max_fields: 2_000,
        max_capture_bytes: 64 * 1024,
        stdout_bytes: 64 * 1024,
        stderr_bytes: 64 * 1024,
    };
    f.rt.block_on(async {
        let watchdog = {
            let cancel = cancel.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                cancel.cancel();
            }
        };
        let run = shell::run_script(
            &host,
            ScriptRequest {
                program: &program,
                text: script,
                cwd: String::new(),
                stdin: bytes::Bytes::from_static(b"in\n"),
                bounds,
                write_pool: WritePool::new(1 << 20),
                cancel: cancel.clone(),
            },
        );
        tokio::select! {
            _ = run => {}
            () = async { watchdog.await; tokio::time::sleep(Duration::from_secs(5)).await } => {
                panic!("the script did not end within 5 s of its cancellation");
            }
        }
    });
    assert_eq!(
        std::fs::read_to_string(&f.sentinel).unwrap(),
        "keep",
        "written outside"
    );
    // Whatever the script made stays inside; clear it for the next input.
    for e in std::fs::read_dir(&f.ws).unwrap().flatten() {
        let name = e.file_name();
        if name != "a.txt" && name != "sub" {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
});
