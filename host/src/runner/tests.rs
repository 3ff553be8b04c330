//! Unit tests of the runner contract's driver ([`super::call`]) with a runner that only
//! pretends: its start writes to stdout and then may wait forever, its program may exit at
//! once or never. Timings here bound nothing; the deadlines are only short so the tests are.

use super::*;
use crate::workspace::Workspace;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How the pretend program behaves.
#[derive(Clone, Copy)]
enum Script {
    /// The start never completes.
    StartHangs,
    /// The program exits by itself with this code.
    Exits(i32),
    /// The program never ends.
    Hangs,
}

struct Fake {
    script: Script,
    stops: AtomicU32,
}

struct FakeRunning<'r> {
    script: Script,
    stops: &'r AtomicU32,
}

impl Runner for Fake {
    type Program = ();
    type Running<'r> = FakeRunning<'r>;
    const KIND: RunnerKind = RunnerKind::Native;
    const WHILE_STARTING: &'static str = "it was starting";
    const ON_TIMEOUT: &'static str = "was stopped by the test";

    fn sandbox(&self, _: &(), limits: Limits, writable: bool) -> SandboxInfo {
        crate::audit::call::wasi_sandbox(limits, writable, std::iter::empty())
    }

    async fn start<'r>(
        &'r self,
        _: &CallInput<'_, ()>,
        streams: Streams,
    ) -> Result<FakeRunning<'r>, RunError> {
        if let Output::Capture(stdout) = &streams.stdout {
            stdout.push(b"partial ");
        }
        streams.stderr.push(b"err");
        if let Script::StartHangs = self.script {
            std::future::pending::<()>().await;
        }
        Ok(FakeRunning {
            script: self.script,
            stops: &self.stops,
        })
    }
}

impl Running for FakeRunning<'_> {
    type Exit = i32;

    async fn wait(&mut self) -> i32 {
        match self.script {
            Script::Exits(code) => code,
            Script::Hangs | Script::StartHangs => std::future::pending().await,
        }
    }

    async fn exited(self, exit: i32, _: &Limits, _: Instant) -> (Termination, Aftermath) {
        (Termination::Exited(exit), Aftermath::default())
    }

    async fn stop(self, _: Instant) -> Aftermath {
        self.stops.fetch_add(1, Ordering::SeqCst);
        Aftermath {
            processes_killed: Some(3),
            file_writes: Some(FileWrites {
                bytes: 7,
                disk_full: false,
            }),
        }
    }
}

/// Runs `script` with a `timeout_ms` limit under `cancel`; returns the outcome and how many
/// times the runner was told to stop.
async fn drive(script: Script, timeout_ms: u64, cancel: &CancellationToken) -> (Outcome, u32) {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Workspace::open(dir.path()).unwrap();
    let cwd = workspace.resolve_dir("").unwrap();
    let live = Arc::new(AtomicU64::new(0));
    let runner = Fake {
        script,
        stops: AtomicU32::new(0),
    };
    let input = CallInput {
        program: &(),
        argv: &["fake".to_owned()],
        workspace: &workspace,
        cwd: &cwd,
        stdin: Input::Bytes(bytes::Bytes::new()),
        stdout_pipe: None,
        write_pool: WritePool::new(0),
        deadline: None,
        limits: Limits {
            timeout_ms,
            stdout_bytes: 4,
            ..Limits::default()
        },
        writable: false,
        cancel,
        live_output: &live,
    };
    let outcome = call(&runner, input).await;
    assert_eq!(
        live.load(Ordering::SeqCst),
        11,
        "every byte is counted live"
    );
    (outcome, runner.stops.load(Ordering::SeqCst))
}

fn stopped_with(outcome: &Outcome) -> &RunError {
    match &outcome.termination {
        Termination::Stopped(e) => e,
        Termination::Exited(code) => panic!("expected a stop, got exit {code}"),
    }
}

#[tokio::test]
async fn a_program_that_never_ends_is_stopped_at_the_deadline_with_its_output() {
    let (outcome, stops) = drive(Script::Hangs, 30, &CancellationToken::new()).await;
    let e = stopped_with(&outcome);
    assert_eq!(e.code, ErrorCode::Timeout);
    assert_eq!(
        e.message,
        "the command ran past its 30 ms limit and was stopped by the test"
    );
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("timeout_ms")));
    assert_eq!(stops, 1, "the runner is told to kill what is left");
    assert!(outcome.duration >= Duration::from_millis(30));
    assert_eq!(
        outcome.stdout.bytes, b"part",
        "partial output is kept, capped"
    );
    assert_eq!(outcome.stdout.total_bytes, 8);
    assert!(outcome.stdout.truncated);
    assert_eq!(outcome.stderr.text(), "err");
    assert_eq!(outcome.processes_killed, Some(3));
    assert_eq!(outcome.file_writes.map(|w| w.bytes), Some(7));
    assert_eq!(outcome.runner, RunnerKind::Native);
}

#[tokio::test]
async fn a_cancelled_run_ends_cancelled_with_its_output_long_before_the_deadline() {
    let cancel = CancellationToken::new();
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        later.cancel();
    });
    let (outcome, stops) = drive(Script::Hangs, 600_000, &cancel).await;
    let e = stopped_with(&outcome);
    assert_eq!(e.code, ErrorCode::Cancelled);
    assert_eq!(e.message, "the call was cancelled");
    assert_eq!(stops, 1);
    assert_eq!(outcome.stdout.bytes, b"part");
    assert_eq!(outcome.processes_killed, Some(3));
}

#[tokio::test]
async fn a_cancellation_during_a_start_that_waits_ends_the_call() {
    let cancel = CancellationToken::new();
    let later = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        later.cancel();
    });
    let (outcome, stops) = drive(Script::StartHangs, 600_000, &cancel).await;
    let e = stopped_with(&outcome);
    assert_eq!(e.code, ErrorCode::Cancelled);
    assert_eq!(e.message, "the call was cancelled while it was starting");
    assert_eq!(stops, 0, "nothing started, nothing to stop");
    assert_eq!(
        outcome.stdout.bytes, b"part",
        "what the start wrote is kept"
    );
    assert_eq!(outcome.processes_killed, None);
    assert_eq!(outcome.file_writes, None);
}

#[tokio::test]
async fn a_cancellation_wins_over_an_exit_ready_at_the_same_moment() {
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (outcome, stops) = drive(Script::Exits(0), 600_000, &cancel).await;
    assert_eq!(stopped_with(&outcome).code, ErrorCode::Cancelled);
    assert_eq!(
        stops, 1,
        "a start that is ready at once is stopped, not abandoned"
    );
}

#[tokio::test]
async fn a_program_that_exits_is_classified_by_its_runner() {
    let (outcome, stops) = drive(Script::Exits(3), 600_000, &CancellationToken::new()).await;
    assert_eq!(outcome.termination, Termination::Exited(3));
    assert_eq!(stops, 0);
    assert_eq!(outcome.processes_killed, None);
    assert_eq!(outcome.stdout.bytes, b"part");
}
