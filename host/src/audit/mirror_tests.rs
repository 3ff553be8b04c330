//! Tests of the audit mirror with real pipes: the lines as written to the file, a reader that
//! does not read (bounded queue, counted drops, the log unaffected), a reader that went away,
//! the `mirror` record and its rate, and the descriptors refused at start.

use super::*;
use crate::audit::verify::verify;
use crate::audit::{AuditConfig, FakeClock, read};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use time::macros::datetime;

fn log_with(dir: &Path, mirror: Mirror) -> Arc<AuditLog> {
    let clock: Arc<dyn super::super::Clock> =
        Arc::new(FakeClock::new(datetime!(2026-03-01 10:00 UTC)));
    let mut config = AuditConfig::new(dir);
    config.mirror = Some(mirror.target());
    AuditLog::open_with_mirror(config, clock, Some(mirror))
}

fn call(stage: Stage, id: &str) -> AuditRecord {
    let mut r = AuditRecord::new(stage);
    r.request_id = Some(id.to_owned());
    r.command = Some(crate::audit::record::Text::of("echo"));
    r
}

/// The file's bytes, every file in chain order.
fn file_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in read::all_entries(dir).unwrap() {
        out.extend_from_slice(&e.raw);
        out.push(b'\n');
    }
    out
}

fn records(dir: &Path) -> Vec<AuditRecord> {
    read::all_entries(dir)
        .unwrap()
        .iter()
        .map(|e| e.record().unwrap())
        .collect()
}

/// A pipe whose write end is a mirror; the original write end is closed once the mirror has
/// its own copy.
fn piped_mirror() -> (std::io::PipeReader, Mirror) {
    let (reader, writer) = std::io::pipe().unwrap();
    let mirror = Mirror::start(AuditMirror::Fd(writer.as_raw_fd())).unwrap();
    drop(writer);
    (reader, mirror)
}

#[test]
fn the_mirror_gets_exactly_the_lines_of_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut reader, mirror) = piped_mirror();
    let log = log_with(tmp.path(), mirror);
    for i in 0..50 {
        log.append(call(Stage::Received, &format!("r{i}"))).unwrap();
        log.append(call(Stage::Completed, &format!("r{i}")))
            .unwrap();
    }
    log.append(AuditRecord::new(Stage::Stop)).unwrap();
    drop(log);
    // The log (and so the mirror) is gone: the writer ends after its queue, closing the pipe.
    let mut mirrored = Vec::new();
    reader.read_to_end(&mut mirrored).unwrap();
    let file = file_bytes(tmp.path());
    assert_eq!(
        String::from_utf8_lossy(&mirrored),
        String::from_utf8_lossy(&file)
    );
    assert_eq!(
        records(tmp.path()).len(),
        102,
        "open, 100 call records, stop"
    );
}

#[test]
fn a_reader_that_does_not_read_costs_the_log_nothing_and_drops_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, mirror) = piped_mirror();
    let log = log_with(tmp.path(), mirror);
    // Far more than the pipe (64 KiB) and the queue hold together.
    let calls = 2 * MAX_QUEUE_BYTES / 200;
    for i in 0..calls {
        log.append(call(Stage::Received, &format!("r{i}"))).unwrap();
    }
    log.append(AuditRecord::new(Stage::Stop)).unwrap();
    let all = records(tmp.path());
    let reports: Vec<&MirrorInfo> = all.iter().filter_map(|r| r.mirror.as_ref()).collect();
    assert!(!reports.is_empty(), "no mirror record");
    assert!(
        all.iter().filter(|r| r.stage == Stage::Received).count() == calls,
        "every record is in the file"
    );
    let last = reports.last().unwrap();
    assert!(
        last.reason.contains("queue") && last.target.starts_with("fd:"),
        "{last:?}"
    );
    let reported: u64 = reports.iter().map(|r| r.dropped).sum();
    assert_eq!(reported, last.dropped_total, "{reports:?}");
    assert!(reported > 0 && reported < calls as u64, "{reported}");
    // Reports are at least a second apart (the test takes less), but for the one before stop.
    assert!(reports.len() <= 3, "{}", reports.len());
    // The stop record's report comes right before it.
    let stop = all.iter().position(|r| r.stage == Stage::Stop).unwrap();
    assert_eq!(all[stop - 1].stage, Stage::Mirror);
    match verify(tmp.path()).unwrap() {
        Ok(r) => assert_eq!(r.records, all.len() as u64),
        Err(b) => panic!("{b}"),
    }
    // What the reader gets once it reads: whole lines of the file, in order, that end right
    // before the first line the first report names (the reader never read while the log was
    // written, so every later line found the queue full).
    drop(log);
    let mut reader = reader;
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    let file = file_bytes(tmp.path());
    let file_lines: std::collections::HashSet<&[u8]> = file.split(|b| *b == b'\n').collect();
    assert!(got.split(|b| *b == b'\n').all(|l| file_lines.contains(l)));
    let shipped = tmp.path().join("shipped.log");
    std::fs::write(&shipped, &got).unwrap();
    let copy = verify(&shipped).unwrap().unwrap();
    assert!(copy.from_genesis, "{copy:?}");
    assert_eq!(
        copy.seqs.unwrap().1 + 1,
        reports[0].first_seq,
        "{reports:?}"
    );
}

#[test]
fn a_reader_that_falls_behind_and_catches_up_gets_a_copy_whose_gap_verify_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut reader, mirror) = piped_mirror();
    let log = log_with(tmp.path(), mirror);
    let mut i = 0;
    while log.mirror_dropped().map(|m| m.1) == Some(0) {
        log.append(call(Stage::Received, &format!("r{i}"))).unwrap();
        i += 1;
        assert!(i < 4 * MAX_QUEUE_BYTES / 100, "nothing was ever dropped");
    }
    let copy = std::thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    assert!(log.mirror.as_ref().unwrap().drain(Duration::from_secs(60)));
    for j in 0..10 {
        log.append(call(Stage::Received, &format!("late{j}")))
            .unwrap();
    }
    log.append(AuditRecord::new(Stage::Stop)).unwrap();
    let all = records(tmp.path());
    drop(log);
    let shipped = tmp.path().join("shipped.log");
    std::fs::write(&shipped, copy.join().unwrap()).unwrap();
    let brk = verify(&shipped).unwrap().unwrap_err();
    assert!(brk.reason.contains("prevHash does not match"), "{brk}");
    // The log's own mirror record names the lines missing before the break.
    let first = all.iter().find_map(|r| r.mirror.clone()).unwrap();
    assert!(first.first_seq < brk.seq.unwrap(), "{brk} {first:?}");
    assert!(first.last_seq < brk.seq.unwrap(), "{brk} {first:?}");
}

#[test]
fn a_reader_that_went_away_is_counted_and_the_log_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, mirror) = piped_mirror();
    drop(reader);
    let log = log_with(tmp.path(), mirror);
    log.append(call(Stage::Received, "r1")).unwrap();
    log.append(call(Stage::Completed, "r1")).unwrap();
    // The writer fails on its own thread: wait (bounded) until it has counted both records.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.mirror_dropped().map(|m| m.1) < Some(3) {
        assert!(Instant::now() < deadline, "{:?}", log.mirror_dropped());
        std::thread::sleep(Duration::from_millis(5));
    }
    log.append(AuditRecord::new(Stage::Stop)).unwrap();
    let all = records(tmp.path());
    let reports: Vec<MirrorInfo> = all.iter().filter_map(|r| r.mirror.clone()).collect();
    let last = reports.last().expect("a mirror record");
    assert!(last.reason.contains("Broken pipe"), "{last:?}");
    assert_eq!(reports[0].first_seq, 1, "from the first line: {reports:?}");
    assert!(last.dropped_total >= 3, "{reports:?}");
    assert_eq!(
        reports.iter().map(|r| r.dropped).sum::<u64>(),
        last.dropped_total,
        "{reports:?}"
    );
    assert_eq!(all.last().unwrap().stage, Stage::Stop);
    // What doctor reads: the last report of the newest run.
    let account = read::mirror_account(tmp.path()).unwrap();
    assert!(account.start.is_none(), "this log has no start record");
    assert_eq!(account.last_report.unwrap().mirror.as_ref(), Some(last));
}

#[test]
fn reports_are_rate_limited_but_a_forced_one_is_not_and_a_failed_one_comes_back() {
    let (_reader, mirror) = piped_mirror();
    {
        let mut q = mirror.shared.lock();
        q.drop_line(7, "one".into());
    }
    let first = mirror.take_report(false).unwrap();
    assert_eq!((first.dropped, first.first_seq, first.last_seq), (1, 7, 7));
    mirror.shared.lock().drop_line(9, "two".into());
    assert!(mirror.take_report(false).is_none(), "within the interval");
    let forced = mirror.take_report(true).unwrap();
    assert_eq!((forced.dropped, forced.dropped_total), (1, 2));
    mirror.restore(forced);
    mirror.shared.lock().drop_line(12, "three".into());
    let merged = mirror.take_report(true).unwrap();
    assert_eq!(
        (
            merged.dropped,
            merged.first_seq,
            merged.last_seq,
            merged.reason.as_str()
        ),
        (2, 9, 12, "three")
    );
    assert!(mirror.take_report(true).is_none(), "nothing left");
}

#[test]
fn a_descriptor_not_open_or_open_for_reading_is_refused() {
    let e = Mirror::start(AuditMirror::Fd(1000))
        .unwrap_err()
        .to_string();
    assert!(e.contains("descriptor 1000 is not open"), "{e}");
    let (reader, _writer) = std::io::pipe().unwrap();
    let e = Mirror::start(AuditMirror::Fd(reader.as_raw_fd()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("reading only"), "{e}");
}
