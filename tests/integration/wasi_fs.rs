//! The WASI file layer against what a workspace can hold: FIFOs that would block a host thread,
//! names that are not UTF-8, writes past the call's budget, and a disk that fills up mid-call.
//! Each test reproduces an attack found by review (docs/security.md, "Found by review").

use crate::support::*;
use serde_json::json;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// 530 calls reading a FIFO used to leave one blocking host thread each, stuck for good, until
/// every file-opening command timed out and the server could no longer stop. A FIFO is now
/// refused at open, so each call ends at once and the server stays whole.
#[test]
fn a_fifo_in_the_workspace_never_holds_a_host_thread() {
    let env = Env::new();
    env.file("a.txt", "still readable\n");
    nix::unistd::mkfifo(
        &env.ws.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o666),
    )
    .expect("mkfifo");
    let mut s = env.serve();
    let first = s.call(
        "run",
        json!({"command": "head", "args": ["fifo"], "timeout_ms": 20}),
    );
    assert!(!is_error(&first), "{first}");
    assert_eq!(structured(&first)["exitCode"], 1, "{first}");
    let stderr = structured(&first)["stderr"].as_str().unwrap().to_owned();
    assert!(stderr.contains("fifo"), "names the file: {stderr}");
    for _ in 0..530 {
        let r = s.call(
            "run",
            json!({"command": "head", "args": ["fifo"], "timeout_ms": 20}),
        );
        // Refused at open (or, on a loaded machine, out of time): never a reply that hangs.
        let refused = !is_error(&r) && structured(&r)["exitCode"] == 1;
        assert!(refused || error_code(&r) == "TIMEOUT", "{r}");
    }
    let r = s.call(
        "run",
        json!({"command": "cat", "args": ["a.txt"], "timeout_ms": 5000}),
    );
    assert_eq!(structured(&r)["stdout"], "still readable\n", "{r}");
    assert!(s.close().success());
    let records = env.audit_records();
    let stop = records.last().unwrap();
    assert_eq!(stop["stage"], "stop", "{stop}");
    assert_eq!(stop["server"]["inFlight"], 0);
}

/// A file name that is not UTF-8 used to make its whole directory unlistable.
#[test]
fn directories_with_names_that_are_not_utf8_stay_listable() {
    let env = Env::new();
    env.file("d/plain.txt", "needle\n");
    let odd = env
        .ws
        .join("d")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&odd, "needle\n").unwrap();
    let mut s = env.serve();
    for argv in [
        &["ls", "d"][..],
        &["find", "d"],
        &["du", "-a", "d"],
        &["tree", "d"],
        &["grep", "-r", "needle", "d"],
    ] {
        let r = s.run(argv[0], &argv[1..]);
        assert!(!is_error(&r), "{argv:?}: {r}");
        let out = structured(&r);
        assert_eq!(out["exitCode"], 0, "{argv:?}: {r}");
        let stdout = out["stdout"].as_str().unwrap();
        assert!(stdout.contains("plain.txt"), "{argv:?}: {stdout}");
        assert!(
            stdout.contains("caf"),
            "{argv:?} lists the odd name: {stdout}"
        );
    }
}

/// A 100 GB sparse file costs no disk; copying it used to write until the disk was full.
#[test]
fn a_copy_of_a_huge_sparse_file_stops_at_the_write_budget() {
    const BUDGET: u64 = 8 * 1024 * 1024;
    let env = Env::new().with_config(&format!("[limits]\nwrite_bytes = {BUDGET}\n"));
    let big = std::fs::File::create(env.ws.join("big")).unwrap();
    big.set_len(100 * 1024 * 1024 * 1024).unwrap();
    drop(big);
    let mut s = env.serve();
    let r = s.run("cp", &["big", "copy"]);
    assert_eq!(error_code(&r), "WRITE_LIMIT", "{r}");
    let partial = &structured(&r)["error"]["partial"];
    let written = partial["bytesWritten"].as_u64().unwrap();
    assert!(written <= BUDGET, "wrote {written} bytes");
    let on_disk = std::fs::metadata(env.ws.join("copy")).unwrap().len();
    assert!(on_disk <= BUDGET, "copy has {on_disk} bytes");
    let end = env.call_ends().pop().unwrap();
    assert_eq!(end["error"]["code"], "WRITE_LIMIT", "{end}");
    assert_eq!(end["result"]["bytesWritten"], written);
    // The budget is per call: the next one writes again.
    let r = s.run("cp", &["copy", "copy2"]);
    assert!(!is_error(&r), "{r}");
    assert_eq!(structured(&r)["bytesWritten"], on_disk);
}

/// The budget is per call, not per stage: eight `tee` stages of 1 MB each under a 1 MiB budget
/// used to write 8 MB (found by review of the write budget).
#[test]
fn a_pipeline_shares_one_write_budget_across_its_stages() {
    const BUDGET: u64 = 1024 * 1024;
    let env = Env::new().with_config(&format!("[limits]\nwrite_bytes = {BUDGET}\n"));
    let mut s = env.serve();
    let stages: Vec<_> = (0..8)
        .map(|i| json!({"command": "tee", "args": [format!("p{i}")]}))
        .collect();
    let r = s.call(
        "run",
        json!({"pipeline": stages, "stdin": "b".repeat(1_000_000)}),
    );
    assert_eq!(error_code(&r), "WRITE_LIMIT", "{r}");
    let on_disk: u64 = (0..8)
        .filter_map(|i| std::fs::metadata(env.ws.join(format!("p{i}"))).ok())
        .map(|m| m.len())
        .sum();
    assert!(on_disk <= BUDGET, "the stages wrote {on_disk} bytes in all");
}

/// Found by review of streaming pipelines: `tee` hit the write budget (its file cut short),
/// went on writing to stdout, got a broken pipe from `head` and ended 141; the call answered
/// exit 0 and nothing said the file was cut. A refused write is the call's WRITE_LIMIT.
#[test]
fn a_write_budget_overrun_is_reported_even_when_the_writer_then_meets_a_closed_pipe() {
    const BUDGET: u64 = 1024 * 1024;
    let env = Env::new().with_config(&format!("[limits]\nwrite_bytes = {BUDGET}\n"));
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({"pipeline": [
            {"command": "seq", "args": ["1", "3000000"]},
            {"command": "tee", "args": ["c"]},
            {"command": "head", "args": ["-c", "5000000"]},
            {"command": "wc", "args": ["-c"]},
        ]}),
    );
    assert_eq!(error_code(&r), "WRITE_LIMIT", "{r}");
    let written = std::fs::metadata(env.ws.join("c")).unwrap().len();
    assert!(written <= BUDGET, "{written}");
}

/// A small file system mounted for one test and unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` on `at` (needs root, as the suite's CI has).
    fn mount(at: &Path, bytes: u64) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0755"))
            .arg("tmpfs")
            .arg(at)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs (the suite runs as root)");
        Self(at.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// With the disk full mid-call, the reply used to say "nothing was run" although 64 MiB had been
/// written, and the audit kept only the `received` record. Now the command's own failure comes
/// back with what it wrote, and the audit (on the same full disk) still records how every stage
/// of the call ended, from the space it keeps for calls already let in. New calls are refused
/// while the disk stays full, and resume once space is freed.
#[test]
fn a_disk_that_fills_up_mid_call_gives_a_truthful_result_and_every_end_record() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a small file system needs root");
        return;
    }
    let mut env = Env::new();
    let disk = SmallDisk::mount(&env.dir.path().join("small"), 16 * 1024 * 1024);
    env.ws = disk.0.join("ws");
    env.audit = disk.0.join("audit");
    std::fs::create_dir(&env.ws).unwrap();
    let big = std::fs::File::create(env.ws.join("big")).unwrap();
    big.set_len(64 * 1024 * 1024).unwrap();
    drop(big);
    let mut s = env.serve();
    // The copy fills the disk; seven more stages then need end records on the full disk
    // (more than the slack of a file's last page could hold).
    let pad = "x".repeat(1000);
    let mut stages = vec![json!({"command": "cp", "args": ["big", "copy"]})];
    stages.extend((0..7).map(|_| json!({"command": "echo", "args": [pad]})));
    let r = s.call("run", json!({ "pipeline": stages }));
    assert!(!is_error(&r), "the pipeline ran: {r}");
    let out = structured(&r);
    assert_eq!(out["stages"][0]["exitCode"], 1, "{r}");
    assert_eq!(out["diskFull"], true, "{r}");
    let written = out["bytesWritten"].as_u64().unwrap();
    assert!(
        written > 1024 * 1024,
        "wrote {written} bytes before the disk filled"
    );
    assert!(
        out["stderr"].as_str().unwrap().contains("No space left"),
        "{r}"
    );
    let ends = env.call_ends();
    let this_call: Vec<_> = ends
        .iter()
        .filter(|e| e["requestId"] == out["requestId"])
        .collect();
    assert_eq!(this_call.len(), 8, "one end record per stage: {ends:?}");
    // Stages run at once and are recorded as they end: find cp's record by its stage.
    let cp = this_call
        .iter()
        .find(|e| e["pipeline"]["stage"] == 1)
        .expect("cp's end record");
    assert_eq!(cp["result"]["diskFull"], true, "{cp:?}");
    assert_eq!(cp["result"]["bytesWritten"], written);
    // While the disk stays full, new calls are refused before they run...
    let r = s.run("echo", &["refused"]);
    assert_eq!(error_code(&r), "AUDIT_UNAVAILABLE", "{r}");
    assert!(
        structured(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{r}"
    );
    // ...and served again once the operator frees space.
    std::fs::remove_file(env.ws.join("copy")).unwrap();
    assert_eq!(structured(&s.run("echo", &["ok"]))["stdout"], "ok\n");
    assert!(s.close().success());
    let stop = env.audit_records().pop().unwrap();
    assert_eq!(stop["stage"], "stop", "{stop}");
    drop(disk);
}

/// Found by review of the listing paths: an empty path meant the current directory (wasi-libc
/// makes `""` absolute as the cwd), so `rm -rf ''` removed the call's cwd — at the root, the
/// whole workspace — and `stat ''`/`test -e ''` found a directory. It names no file now, as on
/// Linux.
#[test]
fn an_empty_path_names_no_file() {
    let env = Env::new();
    std::fs::create_dir_all(env.ws.join("project/src")).unwrap();
    std::fs::write(env.ws.join("project/src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(env.ws.join("notes.txt"), "n\n").unwrap();
    let mut s = env.serve();
    for cwd in ["project", ""] {
        let r = s.call(
            "run",
            json!({"command": "rm", "args": ["-rf", ""], "cwd": cwd}),
        );
        assert_eq!(structured(&r)["exitCode"], 0, "{r}");
    }
    assert!(
        env.ws.join("project/src/main.rs").is_file(),
        "rm -rf '' removed the cwd"
    );
    assert!(
        env.ws.join("notes.txt").is_file(),
        "rm -rf '' emptied the workspace"
    );
    for (command, args) in [
        ("stat", vec![""]),
        ("test", vec!["-e", ""]),
        ("du", vec![""]),
    ] {
        let r = s.run(command, &args);
        assert_ne!(structured(&r)["exitCode"], 0, "{command} {args:?}: {r}");
    }
    let r = s.run("stat", &[""]);
    let stderr = structured(&r)["stderr"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(stderr.contains("No such file or directory"), "{stderr}");
}
