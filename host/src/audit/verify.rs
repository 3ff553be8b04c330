//! `runbox audit verify`: walks every file in chain order and reports the first break.
//!
//! For each line it checks, in order: the line is complete (ends with a newline); its own hash
//! matches its bytes ([`super::chain::open_line`]); its schema version is known; its `prevHash`
//! is the hash of the line before it (across files); its `seq` is one more than that line's. An
//! edited line fails the second check, a deleted, inserted or reordered line the fourth.
//!
//! What a chain cannot show, and this does not claim: records cut off the *end* of the newest
//! file, or whole files removed from the *start* of the log (which is what retention does). The
//! first record's `prevHash` is reported, so an operator can match it against a copy kept
//! elsewhere, and `stop` records mark clean ends.

use super::chain::open_line;
use super::files;
use super::read::read_from;
use super::record::{GENESIS_HASH, SCHEMA_VERSION, Stage};
use std::path::Path;

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files walked.
    pub files: usize,
    /// Records checked.
    pub records: u64,
    /// `seq` of the first and last records.
    pub seqs: Option<(u64, u64)>,
    /// Whether the first record is the first ever (`prevHash` is the genesis hash); if not,
    /// older files were pruned or removed.
    pub from_genesis: bool,
    /// `prevHash` of the first record present.
    pub first_prev_hash: Option<String>,
    /// `recovered` records seen (torn lines set aside after crashes).
    pub recovered: u64,
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// File name.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The line's `seq`, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}", self.file, self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The files `verify` walks: every log file of a directory, or one file given by its path (a
/// collector's copy of mirrored lines, whatever its name).
fn files_of(path: &Path) -> std::io::Result<Vec<files::LogFile>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return files::list(path);
    }
    Ok(vec![files::LogFile {
        name: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        path: path.to_owned(),
        day: time::Date::MIN,
        index: 0,
        bytes: meta.len(),
    }])
}

/// Verifies the log in `dir` (or the one file `dir` names). The outer error is an I/O failure
/// reading it.
pub fn verify(dir: &Path) -> std::io::Result<Result<Report, Break>> {
    let mut report = Report {
        files: 0,
        records: 0,
        seqs: None,
        from_genesis: false,
        first_prev_hash: None,
        recovered: 0,
    };
    // (file, line, seq, hash) of the last good record.
    let mut prev: Option<(String, usize, u64, String)> = None;
    for file in files_of(dir)? {
        report.files += 1;
        let (entries, _) = read_from(&file, 0, 1)?;
        for e in entries {
            let brk = |seq, reason: String| Break {
                file: e.file.clone(),
                line: e.line,
                seq,
                reason,
            };
            let loose_seq = e.record().map(|r| r.seq).or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&e.raw)
                    .ok()
                    .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
            });
            if !e.complete {
                return Ok(Err(brk(
                    loose_seq,
                    "the line is incomplete (torn write, or the log is being written)".into(),
                )));
            }
            let record = match open_line(&e.raw) {
                Ok(r) => r,
                Err(fault) => return Ok(Err(brk(loose_seq, fault.to_string()))),
            };
            let seq = Some(record.seq);
            if record.v != SCHEMA_VERSION {
                return Ok(Err(brk(
                    seq,
                    format!("unknown schema version {}", record.v),
                )));
            }
            match &prev {
                None => {
                    report.from_genesis = record.prev_hash == GENESIS_HASH && record.seq == 1;
                    report.first_prev_hash = Some(record.prev_hash.clone());
                }
                Some((pfile, pline, pseq, phash)) => {
                    if record.prev_hash != *phash {
                        return Ok(Err(brk(
                            seq,
                            format!(
                                "prevHash does not match the record before it ({pfile} line {pline}, seq {pseq}): \
                                 a record was deleted, inserted or reordered"
                            ),
                        )));
                    }
                    if record.seq != pseq + 1 {
                        return Ok(Err(brk(
                            seq,
                            format!("seq jumps from {pseq} to {}", record.seq),
                        )));
                    }
                }
            }
            if record.stage == Stage::Recovered {
                report.recovered += 1;
            }
            report.records += 1;
            report.seqs = Some((report.seqs.map_or(record.seq, |s| s.0), record.seq));
            prev = Some((
                e.file.clone(),
                e.line,
                record.seq,
                record.hash.unwrap_or_default(),
            ));
        }
    }
    Ok(Ok(report))
}
