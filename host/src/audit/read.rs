//! Reading the log back for operators: every line of every file in chain order, filters for
//! `audit query`, and the table `--pretty` prints. Read-only; never changes the directory.

use super::clock::parse_time;
use super::files::{self, LogFile};
use super::record::{AuditRecord, Decision, Stage};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use time::OffsetDateTime;

/// One line of the log.
#[derive(Debug, Clone)]
pub struct Entry {
    /// File it is in.
    pub file: String,
    /// 1-based line number in that file.
    pub line: usize,
    /// The line as written, without its newline.
    pub raw: Vec<u8>,
    /// Whether the line ended with a newline (a line without one is torn or still being written).
    pub complete: bool,
}

impl Entry {
    /// The line parsed as a record (not verified: that is [`super::verify`]'s job).
    pub fn record(&self) -> Option<AuditRecord> {
        serde_json::from_slice(&self.raw).ok()
    }
}

/// Reads the lines of `file` from byte `offset`; returns them with the offset after the last
/// complete line.
pub fn read_from(
    file: &LogFile,
    offset: u64,
    first_line: usize,
) -> std::io::Result<(Vec<Entry>, u64)> {
    let mut f = std::fs::File::open(&file.path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(f);
    let mut out = Vec::new();
    let mut pos = offset;
    let mut line_no = first_line;
    loop {
        let mut buf = Vec::new();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let complete = buf.last() == Some(&b'\n');
        if complete {
            buf.pop();
            pos += n as u64;
        }
        out.push(Entry {
            file: file.name.clone(),
            line: line_no,
            raw: buf,
            complete,
        });
        line_no += 1;
        if !complete {
            break;
        }
    }
    Ok((out, pos))
}

/// Every line of every log file in `dir`, in chain order.
pub fn all_entries(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for f in files::list(dir)? {
        out.extend(read_from(&f, 0, 1)?.0);
    }
    Ok(out)
}

/// The mirror's account for the newest server run in a log: its `start` record (when the log
/// still holds it) and the last `mirror` record after it (whose `droppedTotal` counts the run).
#[derive(Debug, Clone, Default)]
pub struct MirrorAccount {
    /// The newest `start` record.
    pub start: Option<AuditRecord>,
    /// The last `mirror` record after it.
    pub last_report: Option<AuditRecord>,
}

/// Reads the log newest file first, streaming, until the newest `start` record: the mirror's
/// drops since then ([`MirrorAccount`]). Only `start` and `mirror` lines are parsed.
pub fn mirror_account(dir: &Path) -> std::io::Result<MirrorAccount> {
    let mut account = MirrorAccount::default();
    for f in files::list(dir)?.iter().rev() {
        let mut reader = BufReader::new(std::fs::File::open(&f.path)?);
        let (mut start, mut report) = (None, None);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            // A string value cannot hold these bytes unescaped, so only the member matches.
            let is = |stage: &str| memchr::memmem::find(&buf, stage.as_bytes()).is_some();
            if !is("\"stage\":\"start\"") && !is("\"stage\":\"mirror\"") {
                continue;
            }
            match serde_json::from_slice::<AuditRecord>(&buf) {
                Ok(r) if r.stage == Stage::Start => (start, report) = (Some(r), None),
                Ok(r) if r.stage == Stage::Mirror => report = Some(r),
                _ => {}
            }
        }
        // A newer file's report is the newer one; this file's counts only if none came after.
        if account.last_report.is_none() {
            account.last_report = report;
        }
        if start.is_some() {
            account.start = start;
            break;
        }
    }
    Ok(account)
}

/// What `audit query` selects. Every set field must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Records at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Records before this time.
    pub until: Option<OffsetDateTime>,
    /// Exact command name.
    pub command: Option<String>,
    /// The policy's decision (records that carry one).
    pub decision: Option<Decision>,
    /// Error code (`error.code`, or the code that stopped a command), case-insensitive.
    pub code: Option<String>,
    /// One request's records.
    pub request_id: Option<String>,
    /// One stage.
    pub stage: Option<Stage>,
}

impl Filter {
    /// Whether `r` is selected.
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let time = parse_time(&r.time);
        if let Some(since) = self.since
            && time.is_none_or(|t| t < since)
        {
            return false;
        }
        if let Some(until) = self.until
            && time.is_none_or(|t| t >= until)
        {
            return false;
        }
        if let Some(c) = &self.command
            && r.command.as_ref().map(|t| t.as_str()) != Some(c.as_str())
        {
            return false;
        }
        if let Some(d) = self.decision
            && r.policy.as_ref().map(|p| p.decision) != Some(d)
        {
            return false;
        }
        if let Some(code) = &self.code
            && !r.code().is_some_and(|c| c.eq_ignore_ascii_case(code))
        {
            return false;
        }
        if let Some(id) = &self.request_id
            && r.request_id.as_deref() != Some(id.as_str())
        {
            return false;
        }
        if let Some(s) = self.stage
            && r.stage != s
        {
            return false;
        }
        true
    }

    /// Whether a file of `day` can hold selected records (files hold one UTC day each).
    pub fn may_hold(&self, day: time::Date) -> bool {
        self.since.is_none_or(|s| day >= s.date()) && self.until.is_none_or(|u| day <= u.date())
    }
}

/// A `--since`/`--until` value that [`parse_when`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    /// Neither a time, a day nor an age.
    #[error("{0:?} is not a time: use RFC 3339, YYYY-MM-DD, or an age like 15m, 2h, 7d")]
    NotATime(String),
    /// An age with a unit other than s, m, h, d.
    #[error("{0:?}: the unit must be s, m, h or d")]
    Unit(String),
}

/// Parses a `--since`/`--until` value: RFC 3339 (`2026-01-02T03:04:05Z`), a UTC day
/// (`2026-01-02`, its start), or an age before `now` (`90s`, `15m`, `2h`, `7d`).
///
/// # Errors
/// [`WhenError`] when `s` is none of these.
pub fn parse_when(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, WhenError> {
    if let Some(t) = parse_time(s) {
        return Ok(t);
    }
    let day_fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &day_fmt) {
        return Ok(d.midnight().assume_utc());
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| WhenError::NotATime(s.to_owned()))?;
    let age = match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => return Err(WhenError::Unit(s.to_owned())),
    };
    Ok(now - age)
}

/// The header of the `--pretty` table.
pub const TABLE_HEADER: &str = "TIME                        SEQ     STAGE      REQUEST   COMMAND          DECISION  RESULT                  MS";

/// One record as a `--pretty` table row.
pub fn table_row(r: &AuditRecord) -> String {
    let request = r
        .request_id
        .as_deref()
        .map(|id| id.get(id.len().saturating_sub(8)..).unwrap_or(id))
        .unwrap_or("-");
    let command = r
        .command
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .or_else(|| r.file.as_ref().map(|f| format!("[{}]", f.reason)))
        .or_else(|| r.server.as_ref().map(|s| format!("[{}]", s.mode)))
        .or_else(|| {
            r.mirror
                .as_ref()
                .map(|m| format!("[{} dropped]", m.dropped))
        })
        .unwrap_or_else(|| "-".into());
    let decision = match r.policy.as_ref().map(|p| p.decision) {
        Some(Decision::Allow) => "allow",
        Some(Decision::Deny) => "deny",
        None => "-",
    };
    let result = match (&r.result, &r.error) {
        (Some(res), _) if res.exit_code.is_some() => {
            format!("exit {}", res.exit_code.unwrap_or_default())
        }
        (Some(res), _) => res.outcome.clone(),
        (None, Some(e)) => e.code.clone(),
        (None, None) => "-".into(),
    };
    let ms = r
        .result
        .as_ref()
        .map_or_else(|| "-".into(), |res| res.duration_ms.to_string());
    format!(
        "{:<27} {:<7} {:<10} {:<9} {:<16} {:<9} {:<23} {}",
        r.time,
        r.seq,
        r.stage.as_str(),
        request,
        clip_cell(&command, 16),
        decision,
        clip_cell(&result, 23),
        ms
    )
}

fn clip_cell(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{PolicyInfo, Text};
    use time::macros::datetime;

    #[test]
    fn when_accepts_rfc3339_days_and_ages() {
        let now = datetime!(2026-01-10 12:00 UTC);
        assert_eq!(
            parse_when("2026-01-02T03:04:05Z", now).unwrap(),
            datetime!(2026-01-02 03:04:05 UTC)
        );
        assert_eq!(
            parse_when("2026-01-02", now).unwrap(),
            datetime!(2026-01-02 00:00 UTC)
        );
        assert_eq!(
            parse_when("2h", now).unwrap(),
            datetime!(2026-01-10 10:00 UTC)
        );
        assert_eq!(
            parse_when("7d", now).unwrap(),
            datetime!(2026-01-03 12:00 UTC)
        );
        assert!(parse_when("yesterday", now).is_err());
        assert!(parse_when("5w", now).is_err());
    }

    #[test]
    fn filters_combine() {
        let mut r = AuditRecord::new(Stage::Denied);
        r.time = "2026-01-05T00:00:00.000000Z".into();
        r.command = Some(Text::of("sudo"));
        r.policy = Some(PolicyInfo {
            decision: Decision::Deny,
            rule: "allowlist".into(),
            hash: String::new(),
        });
        r.set_error(crate::error::ErrorCode::CommandNotAllowed, "no");
        let f = Filter {
            since: Some(datetime!(2026-01-04 00:00 UTC)),
            command: Some("sudo".into()),
            decision: Some(Decision::Deny),
            code: Some("command_not_allowed".into()),
            ..Default::default()
        };
        assert!(f.matches(&r));
        let late = Filter {
            since: Some(datetime!(2026-01-06 00:00 UTC)),
            ..Default::default()
        };
        assert!(!late.matches(&r));
        let allow = Filter {
            decision: Some(Decision::Allow),
            ..Default::default()
        };
        assert!(!allow.matches(&r));
        assert!(table_row(&r).contains("COMMAND_NOT_ALLOWED"));
        assert!(late.may_hold(time::macros::date!(2026 - 01 - 06)));
        assert!(!late.may_hold(time::macros::date!(2026 - 01 - 05)));
    }
}
