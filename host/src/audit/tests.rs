//! Tests of the writer, rotation, retention, recovery and verification, with a fake clock.

use super::record::{GENESIS_HASH, Stage};
use super::verify::verify;
use super::*;
use std::fs::OpenOptions;
use std::os::unix::fs::PermissionsExt;
use time::macros::datetime;

fn fake(start: OffsetDateTime) -> (FakeClock, Arc<dyn Clock>) {
    let c = FakeClock::new(start);
    (c.clone(), Arc::new(c))
}

fn open_in(dir: &Path, clock: &Arc<dyn Clock>) -> Arc<AuditLog> {
    AuditLog::open(AuditConfig::new(dir), Arc::clone(clock))
}

fn call(stage: Stage, id: &str) -> AuditRecord {
    let mut r = AuditRecord::new(stage);
    r.request_id = Some(id.to_owned());
    r.command = Some(record::Text::of("echo"));
    r
}

fn names(dir: &Path) -> Vec<String> {
    files::list(dir)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect()
}

fn lines(dir: &Path) -> Vec<serde_json::Value> {
    read::all_entries(dir)
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(&e.raw).unwrap())
        .collect()
}

fn assert_verifies(dir: &Path) -> verify::Report {
    match verify(dir).unwrap() {
        Ok(r) => r,
        Err(b) => panic!("does not verify: {b}"),
    }
}

#[test]
fn new_log_is_private_and_starts_from_genesis() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b");
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let log = open_in(&dir, &clock);
    log.health().unwrap();
    log.append(call(Stage::Received, "r1")).unwrap();
    log.append(call(Stage::Completed, "r1")).unwrap();
    assert_eq!(names(&dir), ["audit-20260301-000001.jsonl"]);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let file = dir.join("audit-20260301-000001.jsonl");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let l = lines(&dir);
    assert_eq!(l[0]["stage"], "open");
    assert_eq!(l[0]["file"]["reason"], "new");
    assert_eq!(l[0]["prevHash"], GENESIS_HASH);
    assert_eq!(l[1]["seq"], 2);
    assert_eq!(l[1]["time"], "2026-03-01T10:00:00.000000Z");
    assert_eq!(l[2]["prevHash"], l[1]["hash"]);
    let report = assert_verifies(&dir);
    assert!(report.from_genesis);
    assert_eq!(report.seqs, Some((1, 3)));
}

#[test]
fn concurrent_appends_never_interleave_and_the_chain_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = AuditConfig::new(tmp.path());
    config.sync = SyncPolicy::Always;
    let log = AuditLog::open(config, Arc::new(SystemClock));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut r = call(Stage::Completed, &format!("t{i}"));
                r.set_args(&["x".repeat(10_000 + i)]);
                for _ in 0..25 {
                    log.append(r.clone()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = assert_verifies(tmp.path());
    assert_eq!(report.records, 1 + 8 * 25);
    assert_eq!(log.synced_seq(), 201, "every call's last record is durable");
}

#[test]
fn a_restart_continues_the_chain_in_the_same_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    open_in(tmp.path(), &clock)
        .append(call(Stage::Received, "a"))
        .unwrap();
    let log = open_in(tmp.path(), &clock);
    assert_eq!(log.append(call(Stage::Received, "b")).unwrap(), 3);
    assert_eq!(names(tmp.path()).len(), 1);
    assert_verifies(tmp.path());
}

#[test]
fn day_rotation_and_seven_day_retention_with_a_fake_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (clock, dyn_clock) = fake(datetime!(2026-03-01 23:59:59.5 UTC));
    let log = open_in(dir, &dyn_clock);
    log.append(call(Stage::Completed, "d0")).unwrap();
    // Half a second later it is the next UTC day: the next record opens a new file.
    clock.advance(time::Duration::milliseconds(500));
    log.append(call(Stage::Completed, "d1")).unwrap();
    assert_eq!(
        names(dir),
        ["audit-20260301-000001.jsonl", "audit-20260302-000001.jsonl"]
    );
    let l = lines(dir);
    let open = &l[2];
    assert_eq!(open["stage"], "open");
    assert_eq!(open["file"]["reason"], "day");
    assert_eq!(open["file"]["previous"], "audit-20260301-000001.jsonl");
    assert_eq!(
        open["prevHash"], l[1]["hash"],
        "carries the previous file's last hash"
    );

    // One call a day for ten more days.
    for day in 2..12 {
        clock.advance(time::Duration::days(1));
        log.append(call(Stage::Completed, &format!("d{day}")))
            .unwrap();
    }
    // Now 2026-03-12 00:00: a file is kept while its newest record is at most 7 days old.
    let kept = names(dir);
    assert_eq!(
        kept.first().unwrap(),
        "audit-20260305-000001.jsonl",
        "{kept:?}"
    );
    assert_eq!(kept.len(), 8);
    let pruned: Vec<String> = lines(dir)
        .iter()
        .flat_map(|r| r["pruned"].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(
        pruned.contains(&"audit-20260304-000001.jsonl".to_owned()),
        "{pruned:?}"
    );
    let report = assert_verifies(dir);
    assert!(!report.from_genesis, "older files were pruned");

    // A restart prunes too: 8 days later every old file goes, the current one is new.
    clock.advance(time::Duration::days(8));
    let log = open_in(dir, &dyn_clock);
    log.append(call(Stage::Completed, "late")).unwrap();
    assert_eq!(names(dir), ["audit-20260320-000001.jsonl"]);
    assert_verifies(dir);
}

#[test]
fn size_rotation_starts_numbered_files_in_the_same_day() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let mut config = AuditConfig::new(tmp.path());
    config.max_file_bytes = 4096;
    let log = AuditLog::open(config, clock);
    for i in 0..40 {
        log.append(call(Stage::Completed, &format!("r{i}")))
            .unwrap();
    }
    let files = files::list(tmp.path()).unwrap();
    assert!(files.len() >= 3, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.day == time::macros::date!(2026 - 03 - 01))
    );
    assert!(files.iter().all(|f| f.bytes < 4096 + 1024));
    assert_eq!(
        lines(tmp.path())
            .iter()
            .filter(|l| l["file"]["reason"] == "size")
            .count(),
        files.len() - 1
    );
    assert_verifies(tmp.path());
}

#[test]
fn the_size_cap_refuses_new_calls_but_not_their_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let mut config = AuditConfig::new(tmp.path());
    config.max_file_bytes = 4096;
    config.max_total_bytes = 8192;
    let log = AuditLog::open(config, clock);
    let mut refused = None;
    for i in 0..100 {
        match log.append(call(Stage::Received, &format!("r{i}"))) {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(AuditError::Full { cap: 8192, .. })),
        "{refused:?}"
    );
    // A call already admitted still gets its last record.
    log.append(call(Stage::Completed, "in-flight")).unwrap();
    // Nothing young was deleted to make room.
    assert_eq!(lines(tmp.path())[0]["file"]["reason"], "new");
    assert_verifies(tmp.path());
}

#[test]
fn a_torn_last_line_is_set_aside_and_the_chain_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let log = open_in(dir, &clock);
    log.append(call(Stage::Received, "a")).unwrap();
    log.append(call(Stage::Completed, "a")).unwrap();
    drop(log);
    let file = dir.join("audit-20260301-000001.jsonl");
    let good_len = std::fs::metadata(&file).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(b"{\"v\":2,\"seq\":4,\"time\":\"2026-03")
        .unwrap();
    drop(f);
    assert!(verify(dir).unwrap().is_err(), "a torn line does not verify");

    let log = open_in(dir, &clock);
    log.append(call(Stage::Received, "b")).unwrap();
    let l = lines(dir);
    let rec = l.iter().find(|r| r["stage"] == "recovered").unwrap();
    assert_eq!(
        rec["seq"], 4,
        "the chain continues from the last whole record"
    );
    assert_eq!(rec["recovered"]["offset"], good_len);
    assert_eq!(rec["recovered"]["bytes"], 30);
    let saved = dir.join(rec["recovered"]["savedAs"].as_str().unwrap());
    assert_eq!(
        std::fs::read(saved).unwrap(),
        b"{\"v\":2,\"seq\":4,\"time\":\"2026-03"
    );
    let report = assert_verifies(dir);
    assert_eq!(report.recovered, 1);
}

#[test]
fn verify_pinpoints_edited_deleted_and_reordered_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let log = open_in(dir, &clock);
    for i in 0..5 {
        log.append(call(Stage::Completed, &format!("r{i}")))
            .unwrap();
    }
    let file = dir.join("audit-20260301-000001.jsonl");
    let original = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<&str> = original.lines().collect();
    let write = |rows: &[&str]| {
        let mut text = rows.join("\n");
        text.push('\n');
        std::fs::write(&file, text).unwrap();
    };
    let broken = |expect_line: usize, expect_seq: u64, words: &str| {
        let b = verify(dir).unwrap().unwrap_err();
        assert_eq!(b.file, "audit-20260301-000001.jsonl");
        assert_eq!((b.line, b.seq), (expect_line, Some(expect_seq)), "{b}");
        assert!(b.reason.contains(words), "{b}");
    };

    let edited = rows[2].replace("\"r1\"", "\"r9\"");
    write(&[rows[0], rows[1], &edited, rows[3], rows[4], rows[5]]);
    broken(3, 3, "edited");

    write(&[rows[0], rows[1], rows[3], rows[4], rows[5]]);
    broken(3, 4, "deleted, inserted or reordered");

    write(&[rows[0], rows[1], rows[3], rows[2], rows[4], rows[5]]);
    broken(3, 4, "deleted, inserted or reordered");

    write(&rows);
    assert_verifies(dir);
}

#[test]
fn a_deleted_live_file_refuses_once_then_a_new_file_names_the_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let log = open_in(dir, &clock);
    log.append(call(Stage::Completed, "a")).unwrap();
    std::fs::remove_file(dir.join("audit-20260301-000001.jsonl")).unwrap();
    assert!(matches!(log.health(), Err(AuditError::Vanished(_))));
    assert!(matches!(
        log.append(call(Stage::Received, "b")),
        Err(AuditError::Vanished(_))
    ));
    log.append(call(Stage::Received, "c")).unwrap();
    let l = lines(dir);
    assert_eq!(l[0]["file"]["reason"], "lost");
    assert_eq!(l[0]["file"]["previous"], "audit-20260301-000001.jsonl");
    assert_eq!(l[0]["seq"], 3, "the seq gap shows what is missing");
    let report = assert_verifies(dir);
    assert!(!report.from_genesis);
}

#[test]
fn an_unusable_directory_is_reported_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    // A regular file where the directory should be: fails for root too.
    std::fs::write(&dir, "").unwrap();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let log = open_in(&dir, &clock);
    assert!(matches!(log.health(), Err(AuditError::Open { .. })));
    assert!(log.append(call(Stage::Received, "a")).is_err());
    std::fs::remove_file(&dir).unwrap();
    log.append(call(Stage::Received, "b")).unwrap();
    assert_verifies(&dir);
}

#[test]
fn other_files_in_the_directory_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("audit.jsonl"), "{\"v\":1}\n").unwrap();
    let (clock, dyn_clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let log = open_in(tmp.path(), &dyn_clock);
    clock.advance(time::Duration::days(30));
    log.append(call(Stage::Completed, "a")).unwrap();
    assert!(tmp.path().join("audit.jsonl").exists());
    assert_verifies(tmp.path());
}

#[test]
fn always_syncs_a_calls_end_before_returning_but_not_its_received_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let mut config = AuditConfig::new(tmp.path());
    config.sync = SyncPolicy::Always;
    let log = AuditLog::open(config, clock);
    assert_eq!(log.synced_seq(), 1, "the open record");
    let seq = log.append(call(Stage::Received, "a")).unwrap();
    assert_eq!(log.synced_seq(), seq - 1);
    let seq = log.append(call(Stage::Completed, "a")).unwrap();
    assert_eq!(log.synced_seq(), seq);
}

#[test]
fn batch_syncs_call_records_in_the_background_within_the_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, clock) = fake(datetime!(2026-03-01 10:00 UTC));
    let log = open_in(tmp.path(), &clock);
    assert_eq!(log.config().sync, SyncPolicy::Batch);
    let started = std::time::Instant::now();
    let seq = log.append(call(Stage::Completed, "a")).unwrap();
    assert!(log.synced_seq() < seq, "the reply does not wait");
    // Wait for the flusher (bounded; a hung flusher fails the test).
    while log.synced_seq() < seq {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never synced"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Lifecycle records are synced at once.
    let mut start = AuditRecord::new(Stage::Start);
    start.server = None;
    let seq = log.append(start).unwrap();
    assert_eq!(log.synced_seq(), seq);
    // Dropping the log syncs what is left.
    log.append(call(Stage::Received, "b")).unwrap();
    drop(log);
    assert_verifies(tmp.path());
}

#[test]
fn a_clock_set_back_a_day_keeps_files_in_chain_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (clock, dyn_clock) = fake(datetime!(2026-03-02 10:00 UTC));
    let log = open_in(tmp.path(), &dyn_clock);
    log.append(call(Stage::Completed, "a")).unwrap();
    clock.advance(time::Duration::days(-1));
    log.append(call(Stage::Completed, "b")).unwrap();
    assert_eq!(names(tmp.path()).len(), 1, "no rotation backwards");
    drop(log);
    // A restart on the earlier day continues after the newest file, not before it.
    let log = open_in(tmp.path(), &dyn_clock);
    log.append(call(Stage::Completed, "c")).unwrap();
    assert_eq!(
        names(tmp.path()),
        ["audit-20260302-000001.jsonl", "audit-20260302-000002.jsonl"]
    );
    assert_verifies(tmp.path());
}
