//! `runbox audit …`: read the log as an operator. `tail [-f]`, `show REQUEST_ID`, `query`,
//! `verify`. Output is the log's own JSON lines (byte for byte, so they can be checked again
//! elsewhere) or, with `--pretty`, a table. These commands only read; they never change the log
//! and never need a workspace.

use super::files;
use super::read::{self, Entry, Filter, TABLE_HEADER, table_row};
use super::record::{Decision, Stage};
use super::verify::verify;
use crate::policy::{ConfigError, PolicyFile, default_audit_dir, read_policy_file};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status when `verify` finds a break or `show` finds nothing.
const EXIT_FOUND_PROBLEM: u8 = 1;
/// Exit status for usage errors and unreadable logs.
const EXIT_USAGE: u8 = 2;
/// How often `tail -f` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Why an `audit` command could not do its job (usage or an unreadable log); printed with
/// exit status [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
enum AuditCliError {
    #[error(transparent)]
    Policy(#[from] ConfigError),
    #[error(
        "no audit directory: pass --dir DIR or --config FILE (neither XDG_STATE_HOME nor HOME is set)"
    )]
    NoDirectory,
    #[error("cannot read the audit log in {}: {source}", dir.display())]
    Read {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    When(#[from] read::WhenError),
    #[error(
        "--stage {0:?}: not a stage (received, completed, denied, failed, start, stop, open, recovered, mirror, reload)"
    )]
    Stage(String),
    #[error("no audit files in {}", .0.display())]
    NoFiles(PathBuf),
}

/// `runbox audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Print the last records; with -f, keep printing new ones.
    Tail(TailArgs),
    /// Print every stage of one request.
    Show(ShowArgs),
    /// Print the records that match every filter given.
    Query(QueryArgs),
    /// Check the hash chain; report the first break and exit 1.
    Verify(VerifyArgs),
}

/// Where the log is.
#[derive(Debug, Args, Clone)]
struct DirArgs {
    /// The audit directory (default: the policy's `audit_dir`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Policy file to take `audit_dir` from.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TailArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// How many records to print first.
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: usize,
    /// Keep printing records as they are written (follows rotation).
    #[arg(short = 'f', long)]
    follow: bool,
    /// A table instead of JSON lines.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// The requestId from a reply.
    request_id: String,
    /// A table instead of JSON lines.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Records at or after: RFC 3339, YYYY-MM-DD (UTC), or an age such as 15m, 2h, 7d.
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Records before: same forms as --since.
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Exact command name.
    #[arg(long, value_name = "NAME")]
    command: Option<String>,
    /// The policy's decision.
    #[arg(long, value_parser = ["allow", "deny"])]
    decision: Option<String>,
    /// Error code, e.g. TIMEOUT or COMMAND_NOT_ALLOWED.
    #[arg(long, value_name = "CODE")]
    code: Option<String>,
    /// One stage: received, completed, denied, failed, start, stop, open, recovered, mirror, reload.
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
    /// A table instead of JSON lines.
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The audit directory (default: --dir, else the policy's `audit_dir`), or one file of
    /// log lines of any name (e.g. what a collector shipped from the mirror).
    #[arg(value_name = "DIR|FILE")]
    path: Option<PathBuf>,
    #[command(flatten)]
    dir: DirArgs,
}

/// Runs an `audit` subcommand.
pub fn run(args: AuditArgs) -> ExitCode {
    let result = match args.command {
        AuditCommand::Tail(a) => tail(a),
        AuditCommand::Show(a) => show(a),
        AuditCommand::Query(a) => query(a),
        AuditCommand::Verify(a) => run_verify(a),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("runbox audit: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

impl DirArgs {
    fn resolve(&self) -> Result<PathBuf, AuditCliError> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let file = match &self.config {
            Some(path) => read_policy_file(path)?,
            None => PolicyFile::default(),
        };
        file.audit_dir
            .or_else(default_audit_dir)
            .ok_or(AuditCliError::NoDirectory)
    }
}

/// Writes lines to stdout; a closed pipe (`| head`) ends the command quietly.
struct Out {
    out: std::io::StdoutLock<'static>,
    pretty: bool,
    header_done: bool,
}

impl Out {
    fn new(pretty: bool) -> Self {
        Self {
            out: std::io::stdout().lock(),
            pretty,
            header_done: false,
        }
    }

    /// Prints an entry; `false` once stdout is gone.
    fn entry(&mut self, e: &Entry) -> bool {
        let res = if self.pretty {
            let row = e.record().map_or_else(
                || format!("{}:{}: (not a record)", e.file, e.line),
                |r| table_row(&r),
            );
            let header = if self.header_done {
                Ok(())
            } else {
                self.header_done = true;
                writeln!(self.out, "{TABLE_HEADER}")
            };
            header.and_then(|()| writeln!(self.out, "{row}"))
        } else {
            self.out
                .write_all(&e.raw)
                .and_then(|()| self.out.write_all(b"\n"))
        };
        res.and_then(|()| self.out.flush()).is_ok()
    }
}

fn read_err(dir: &std::path::Path, source: std::io::Error) -> AuditCliError {
    AuditCliError::Read {
        dir: dir.to_owned(),
        source,
    }
}

fn tail(a: TailArgs) -> Result<ExitCode, AuditCliError> {
    let dir = a.dir.resolve()?;
    let mut out = Out::new(a.pretty);
    let listed = files::list(&dir).map_err(|e| read_err(&dir, e))?;
    // Read newest files first until there are enough lines.
    let mut shown: Vec<Entry> = Vec::new();
    // Where following continues: the newest file, the offset after its last whole line, and
    // the number of that next line.
    let mut position: Option<Position> = None;
    for f in listed.iter().rev() {
        let (entries, end) = read::read_from(f, 0, 1).map_err(|e| read_err(&dir, e))?;
        let complete: Vec<Entry> = entries.into_iter().filter(|e| e.complete).collect();
        position.get_or_insert(Position {
            key: (f.day, f.index),
            offset: end,
            next_line: complete.len() + 1,
        });
        let take = a.lines.saturating_sub(shown.len()).min(complete.len());
        let mut part = complete[complete.len() - take..].to_vec();
        part.append(&mut shown);
        shown = part;
        if shown.len() >= a.lines {
            break;
        }
    }
    for e in &shown {
        if !out.entry(e) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let listed = files::list(&dir).map_err(|e| read_err(&dir, e))?;
        // Finish the file being followed, then any newer ones, in order.
        for f in &listed {
            let key = (f.day, f.index);
            let (start, first) = match &position {
                Some(p) if p.key == key => (p.offset, p.next_line),
                Some(p) if p.key > key => continue,
                _ => (0, 1),
            };
            let (entries, end) = read::read_from(f, start, first).map_err(|e| read_err(&dir, e))?;
            let mut next_line = first;
            for e in entries.iter().filter(|e| e.complete) {
                if !out.entry(e) {
                    return Ok(ExitCode::SUCCESS);
                }
                next_line += 1;
            }
            position = Some(Position {
                key,
                offset: end,
                next_line,
            });
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Where `tail -f` has read up to.
struct Position {
    key: (time::Date, u32),
    offset: u64,
    next_line: usize,
}

fn show(a: ShowArgs) -> Result<ExitCode, AuditCliError> {
    let dir = a.dir.resolve()?;
    let filter = Filter {
        request_id: Some(a.request_id.clone()),
        ..Default::default()
    };
    let found = print_matching(&dir, &filter, a.pretty)?;
    if found == 0 {
        eprintln!(
            "runbox audit: no records for request {} in {}",
            a.request_id,
            dir.display()
        );
        return Ok(ExitCode::from(EXIT_FOUND_PROBLEM));
    }
    Ok(ExitCode::SUCCESS)
}

fn query(a: QueryArgs) -> Result<ExitCode, AuditCliError> {
    let dir = a.dir.resolve()?;
    let now = time::OffsetDateTime::now_utc();
    let when = |s: &Option<String>| s.as_deref().map(|s| read::parse_when(s, now)).transpose();
    let stage = match a.stage.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<Stage>(serde_json::Value::String(s.to_owned()))
                .map_err(|_| AuditCliError::Stage(s.to_owned()))?,
        ),
    };
    let filter = Filter {
        since: when(&a.since)?,
        until: when(&a.until)?,
        command: a.command,
        decision: a.decision.map(|d| {
            if d == "allow" {
                Decision::Allow
            } else {
                Decision::Deny
            }
        }),
        code: a.code,
        request_id: None,
        stage,
    };
    print_matching(&dir, &filter, a.pretty)?;
    Ok(ExitCode::SUCCESS)
}

fn print_matching(
    dir: &std::path::Path,
    filter: &Filter,
    pretty: bool,
) -> Result<usize, AuditCliError> {
    let mut out = Out::new(pretty);
    let mut found = 0;
    for f in files::list(dir).map_err(|e| read_err(dir, e))? {
        if !filter.may_hold(f.day) {
            continue;
        }
        let (entries, _) = read::read_from(&f, 0, 1).map_err(|e| read_err(dir, e))?;
        for e in entries {
            if e.record().is_some_and(|r| filter.matches(&r)) {
                found += 1;
                if !out.entry(&e) {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
}

fn run_verify(a: VerifyArgs) -> Result<ExitCode, AuditCliError> {
    let dir = match a.path {
        Some(p) => p,
        None => a.dir.resolve()?,
    };
    let outcome = verify(&dir).map_err(|e| read_err(&dir, e))?;
    match outcome {
        Ok(report) if report.files == 0 => Err(AuditCliError::NoFiles(dir)),
        Ok(report) => {
            let (first, last) = report.seqs.unwrap_or_default();
            let start = if report.from_genesis {
                "from the first record ever".to_owned()
            } else {
                format!(
                    "from seq {first}, whose predecessor (prevHash {}) is no longer present (pruned or removed)",
                    report.first_prev_hash.as_deref().unwrap_or("?")
                )
            };
            println!(
                "ok: {} records (seq {first}..{last}) in {} files, chained {start}; {} recovered torn line(s)",
                report.records, report.files, report.recovered
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(brk) => {
            println!("BROKEN: {brk}");
            eprintln!(
                "runbox audit: the audit log in {} does not verify",
                dir.display()
            );
            Ok(ExitCode::from(EXIT_FOUND_PROBLEM))
        }
    }
}
