//! The audit directory's files: names, order, the last record of a file, torn tails, and which
//! files retention removes. Reading only; the writer ([`super::AuditLog`]) does the changing.
//!
//! A log file is `audit-YYYYMMDD-NNNNNN.jsonl`: the UTC day of its records and a counter within
//! the day (size rotation). Files sort by (day, counter), which is also chain order. A torn tail
//! set aside at start is kept as `<file>.torn-<offset>`. Other files in the directory (such as
//! a v1 `audit.jsonl`) are not part of the log and are left alone.

use super::chain::open_line;
use super::record::AuditRecord;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use time::{Date, OffsetDateTime};

/// Longest line the reader accepts when looking for a file's last record (records are far
/// smaller: arguments are cut at 256 bytes and at most 64 are listed).
pub const MAX_LINE_BYTES: u64 = 1024 * 1024;

/// One log file in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// File name.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// UTC day in the name.
    pub day: Date,
    /// Counter within the day.
    pub index: u32,
    /// Size in bytes when listed.
    pub bytes: u64,
}

/// The name of the `index`th file of `day`.
pub fn file_name(day: Date, index: u32) -> String {
    format!(
        "audit-{:04}{:02}{:02}-{index:06}.jsonl",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Parses a log file name into its day and counter.
pub fn parse_name(name: &str) -> Option<(Date, u32)> {
    let rest = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (day, index) = rest.split_once('-')?;
    if day.len() != 8 || index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = day.get(0..4)?.parse().ok()?;
    let month: u8 = day.get(4..6)?.parse().ok()?;
    let dom: u8 = day.get(6..8)?.parse().ok()?;
    let date = Date::from_calendar_date(year, time::Month::try_from(month).ok()?, dom).ok()?;
    Some((date, index.parse().ok()?))
}

/// The log files in `dir`, in chain order.
pub fn list(dir: &Path) -> std::io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some((day, index)) = parse_name(&name) else {
            continue;
        };
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        files.push(LogFile {
            path: entry.path(),
            name,
            day,
            index,
            bytes: meta.len(),
        });
    }
    files.sort_by_key(|f| (f.day, f.index));
    Ok(files)
}

/// Torn-tail files (`<log>.torn-<offset>`) in `dir`, with the log file each belongs to.
pub fn list_torn(dir: &Path) -> std::io::Result<Vec<(PathBuf, String, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some((base, _)) = name.split_once(".torn-")
            && parse_name(base).is_some()
        {
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((entry.path(), base.to_owned(), bytes));
        }
    }
    Ok(out)
}

/// Where a file stops being whole: the offset after its last complete, parseable line, and the
/// file's length. Equal when the file ends cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// Offset just after the last good line.
    pub good_end: u64,
    /// The file's length.
    pub len: u64,
}

/// Reads the end of `file`: the last whole record (if any) and where the good part ends. A last
/// line with no newline, or one that is not JSON, is torn; only that one line is considered, so
/// damage further up is left for `verify` to report rather than silently cut.
pub fn read_tail(file: &mut File) -> std::io::Result<(Tail, Option<AuditRecord>)> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(2 * MAX_LINE_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    file.take(len - start).read_to_end(&mut buf)?;
    let mut good_end = len;
    // Bytes after the last newline are torn.
    let body_end = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if start == 0 => 0,
        None => buf.len(),
    };
    if body_end < buf.len() {
        good_end = start + body_end as u64;
    }
    let body = &buf[..body_end];
    if body.is_empty() {
        return Ok((Tail { good_end, len }, None));
    }
    let line_end = body.len() - 1;
    let line_start = body[..line_end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = &body[line_start..line_end];
    match open_line(line) {
        Ok(r) => Ok((Tail { good_end, len }, Some(r))),
        Err(_) => match serde_json::from_slice::<AuditRecord>(line) {
            // Edited but whole: keep it; verify will name it.
            Ok(r) => Ok((Tail { good_end, len }, Some(r))),
            // Garbage ending in a newline (a torn write followed by a later one): torn as well.
            Err(_) if start == 0 || line_start > 0 => {
                let before = Tail {
                    good_end: start + line_start as u64,
                    len,
                };
                let prev = last_whole_record(&body[..line_start]);
                Ok((before, prev))
            }
            Err(_) => Ok((Tail { good_end, len }, None)),
        },
    }
}

fn last_whole_record(body: &[u8]) -> Option<AuditRecord> {
    let body = body.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    serde_json::from_slice(&body[start..]).ok()
}

/// Time of the newest record of a file: from its last record, else the end of the day in its
/// name (a file holds records of one UTC day).
pub fn newest_time(file: &LogFile) -> OffsetDateTime {
    let from_record = File::open(&file.path)
        .and_then(|mut f| read_tail(&mut f))
        .ok()
        .and_then(|(_, r)| r)
        .and_then(|r| super::clock::parse_time(&r.time));
    from_record.unwrap_or_else(|| {
        file.day
            .with_hms(23, 59, 59)
            .map(|d| d.assume_utc())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    })
}

/// Files retention removes: every file but `keep` whose newest record is older than
/// `retention` at `now`. Pure, given the newest times.
pub fn expired<'a>(
    files: &'a [(LogFile, OffsetDateTime)],
    now: OffsetDateTime,
    retention: time::Duration,
    keep: Option<&str>,
) -> Vec<&'a LogFile> {
    files
        .iter()
        .filter(|(f, newest)| Some(f.name.as_str()) != keep && now - *newest > retention)
        .map(|(f, _)| f)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn names_round_trip_and_sort_by_day_then_counter() {
        let n = file_name(date!(2026 - 01 - 09), 12);
        assert_eq!(n, "audit-20260109-000012.jsonl");
        assert_eq!(parse_name(&n), Some((date!(2026 - 01 - 09), 12)));
        assert_eq!(parse_name("audit.jsonl"), None);
        assert_eq!(parse_name("audit-20261340-000001.jsonl"), None);
        assert_eq!(parse_name("audit-20260101-000001.jsonl.torn-5"), None);
        let dir = tempfile::tempdir().unwrap();
        for n in [
            file_name(date!(2026 - 01 - 10), 1),
            file_name(date!(2026 - 01 - 09), 1_000_000),
            file_name(date!(2026 - 01 - 09), 2),
            "audit.jsonl".into(),
        ] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let names: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            [
                "audit-20260109-000002.jsonl",
                "audit-20260109-1000000.jsonl",
                "audit-20260110-000001.jsonl"
            ]
        );
    }

    fn tail_of(content: &[u8]) -> (Tail, Option<AuditRecord>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, content).unwrap();
        read_tail(&mut File::open(&p).unwrap()).unwrap()
    }

    fn line(seq: u64) -> Vec<u8> {
        let mut r = AuditRecord::new(super::super::record::Stage::Start);
        r.seq = seq;
        r.time = "2026-01-01T00:00:00.000000Z".into();
        r.prev_hash = super::super::record::GENESIS_HASH.into();
        super::super::chain::seal(&mut r).unwrap()
    }

    #[test]
    fn a_clean_file_has_no_torn_tail() {
        let mut c = line(1);
        c.extend(line(2));
        let (t, r) = tail_of(&c);
        assert_eq!(t.good_end, t.len);
        assert_eq!(r.unwrap().seq, 2);
        let (t, r) = tail_of(b"");
        assert_eq!((t.good_end, t.len), (0, 0));
        assert!(r.is_none());
    }

    #[test]
    fn a_line_without_newline_or_not_json_is_torn() {
        let mut c = line(1);
        let good = c.len() as u64;
        c.extend_from_slice(b"{\"v\":2,\"seq\":2,\"ti");
        let (t, r) = tail_of(&c);
        assert_eq!(t.good_end, good);
        assert_eq!(r.unwrap().seq, 1);

        let mut c = line(1);
        c.extend_from_slice(b"\0\0\0\0garbage\n");
        let (t, r) = tail_of(&c);
        assert_eq!(t.good_end, good);
        assert_eq!(r.unwrap().seq, 1);

        let (t, r) = tail_of(b"\0\0\0");
        assert_eq!((t.good_end, t.len), (0, 3));
        assert!(r.is_none());
    }

    #[test]
    fn retention_keeps_the_current_file_and_young_ones() {
        let f = |name: &str| LogFile {
            name: name.into(),
            path: name.into(),
            day: date!(2026 - 01 - 01),
            index: 1,
            bytes: 0,
        };
        let now = datetime!(2026-01-10 12:00 UTC);
        let files = vec![
            (f("old"), datetime!(2026-01-01 12:00 UTC)),
            (f("edge"), datetime!(2026-01-03 12:00 UTC)),
            (f("young"), datetime!(2026-01-05 00:00 UTC)),
            (f("current"), datetime!(2026-01-01 00:00 UTC)),
        ];
        let gone: Vec<&str> = expired(&files, now, time::Duration::days(7), Some("current"))
            .into_iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(gone, ["old"]);
    }
}
