//! The file side of gzip: which operand becomes which output, GNU's checks and messages, and
//! the order of effects (write the whole output, copy the mtime, then remove the input).
//!
//! Must not remove an input whose output was not written completely, must not overwrite an
//! existing file without `-f`, and must not follow a symbolic link operand without `-f`.

use super::codec::{self, DecodeError, Ending, HeaderFields, Listing};
use super::{ERROR, Options, WARNING};
use crate::cli::{self, Out};
use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The exit status so far: errors win over warnings.
#[derive(Default)]
struct Status {
    code: i32,
    listed: Vec<Listing>,
}

impl Status {
    fn error(&mut self, what: impl std::fmt::Display) {
        eprintln!("gzip: {what}");
        self.code = ERROR;
    }
    fn warn(&mut self, quiet: bool, what: impl std::fmt::Display) {
        if !quiet {
            eprintln!("gzip: {what}");
        }
        if self.code == 0 {
            self.code = WARNING;
        }
    }
}

/// Runs `options` over its operands; the exit status.
pub fn run(options: &Options) -> i32 {
    let mut status = Status::default();
    let mut out = Out::new();
    if options.list {
        println_to(
            &mut out,
            "         compressed        uncompressed  ratio uncompressed_name",
        );
    }
    let stdin_only = options.files.is_empty();
    let operands: Vec<PathBuf> = if stdin_only {
        vec![PathBuf::from("-")]
    } else {
        options.files.iter().map(PathBuf::from).collect()
    };
    for path in &operands {
        if path.as_os_str() == "-" {
            standard_streams(options, &mut out, &mut status);
        } else {
            operand(options, path, &mut out, &mut status);
        }
        if out.failed().is_some() {
            break;
        }
    }
    if options.list && status.listed.len() > 1 {
        // GNU subtracts only the last file's header length from the total.
        let total = Listing {
            compressed: status.listed.iter().map(|l| l.compressed).sum(),
            uncompressed: status.listed.iter().map(|l| l.uncompressed).sum(),
            header_bytes: status.listed.last().map_or(0, |l| l.header_bytes),
        };
        list_line(&mut out, &total, "(totals)");
    }
    if !out.finish("gzip") {
        return ERROR;
    }
    status.code
}

fn println_to(out: &mut Out, line: &str) {
    let _ = writeln!(out, "{line}");
}

fn list_line(out: &mut Out, l: &Listing, name: &str) {
    let payload = l.compressed.saturating_sub(l.header_bytes);
    let line = format!(
        "{:>19} {:>19} {} {name}",
        l.compressed,
        l.uncompressed,
        codec::ratio(l.uncompressed, payload)
    );
    println_to(out, &line);
}

/// Standard input to standard output.
fn standard_streams(options: &Options, out: &mut Out, status: &mut Status) {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    if options.list {
        match codec::list(&mut input) {
            Ok(l) => {
                list_line(out, &l, "stdout");
                status.listed.push(l);
            }
            Err(e) => status.error(format_args!("stdin: {e}")),
        }
    } else if options.decompress {
        let result = if options.test {
            codec::decompress(&mut input, &mut io::sink())
        } else {
            codec::decompress(&mut input, out)
        };
        decoded(result, "stdin", options, status);
    } else {
        let fields = HeaderFields {
            name: None,
            mtime: 0,
        };
        if let Err(e) = codec::compress(&mut input, &mut *out, options.level, &fields) {
            status.error(format_args!("stdin: {}", cli::io_message(&e)));
        }
    }
}

/// Reports how a decompression ended.
fn decoded(
    result: Result<(Ending, codec::FirstHeader), DecodeError>,
    name: &str,
    options: &Options,
    status: &mut Status,
) -> bool {
    match result {
        Ok((Ending::Clean, _)) => {
            if options.test && options.verbose {
                eprintln!("{name}:\t OK");
            }
            true
        }
        Ok((Ending::TrailingGarbage, _)) => {
            status.warn(
                options.quiet,
                format_args!("{name}: decompression OK, trailing garbage ignored"),
            );
            true
        }
        Err(DecodeError::Io(e)) => {
            status.error(format_args!("{name}: {}", cli::io_message(&e)));
            false
        }
        Err(e) => {
            status.error(format_args!("{name}: {e}"));
            false
        }
    }
}

/// One named operand: a file, a directory (with `-r`), or a name to complete with the suffix.
fn operand(options: &Options, path: &Path, out: &mut Out, status: &mut Status) {
    let shown = path.display().to_string();
    let (path, meta) = match fs::symlink_metadata(path) {
        Ok(m) => (path.to_path_buf(), m),
        Err(e)
            if options.decompress
                && e.kind() == io::ErrorKind::NotFound
                && !has_suffix(path, options) =>
        {
            // GNU looks for NAME.gz when asked to decompress NAME.
            let with = PathBuf::from(format!("{shown}{}", options.suffix));
            match fs::symlink_metadata(&with) {
                Ok(m) => (with, m),
                Err(e) => {
                    return status.error(format_args!(
                        "{}: {}",
                        with.display(),
                        cli::io_message(&e)
                    ));
                }
            }
        }
        Err(e) => return status.error(format_args!("{shown}: {}", cli::io_message(&e))),
    };
    let shown = path.display().to_string();
    if meta.file_type().is_symlink() && !options.force && !options.to_stdout {
        return status.warn(
            options.quiet,
            format_args!("{shown}: Too many levels of symbolic links"),
        );
    }
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => return status.error(format_args!("{shown}: {}", cli::io_message(&e))),
    };
    if meta.is_dir() {
        if !options.recursive {
            return status.warn(
                options.quiet,
                format_args!("{shown} is a directory -- ignored"),
            );
        }
        return directory(options, &path, out, status);
    }
    if !meta.is_file() {
        return status.warn(
            options.quiet,
            format_args!("{shown} is not a directory or a regular file - ignored"),
        );
    }
    if options.list {
        match File::open(&path)
            .map_err(DecodeError::Io)
            .and_then(|mut f| codec::list(&mut f))
        {
            Ok(l) => {
                let name = strip_suffix(&path, options).unwrap_or_else(|| path.clone());
                list_line(out, &l, &name.display().to_string());
                status.listed.push(l);
            }
            Err(DecodeError::Io(e)) => {
                status.error(format_args!("{shown}: {}", cli::io_message(&e)))
            }
            Err(e) => status.error(format_args!("{shown}: {e}")),
        }
    } else if options.decompress {
        decompress_file(options, &path, &meta, out, status);
    } else {
        compress_file(options, &path, &meta, out, status);
    }
}

/// `-r`: every entry of `dir`, in name order.
fn directory(options: &Options, dir: &Path, out: &mut Out, status: &mut Status) {
    let mut names = match fs::read_dir(dir).and_then(|it| {
        it.map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()
    }) {
        Ok(n) => n,
        Err(e) => return status.error(format_args!("{}: {}", dir.display(), cli::io_message(&e))),
    };
    names.sort();
    for name in names {
        let child = dir.join(name);
        // Links met during the walk are skipped, as GNU's -r does without -f.
        if fs::symlink_metadata(&child).is_ok_and(|m| m.file_type().is_symlink()) && !options.force
        {
            continue;
        }
        if !options.decompress && !options.list && has_suffix(&child, options) && child.is_file() {
            continue;
        }
        if options.decompress && child.is_file() && !has_suffix(&child, options) {
            continue;
        }
        operand(options, &child, out, status);
    }
}

fn has_suffix(path: &Path, options: &Options) -> bool {
    strip_suffix(path, options).is_some()
}

/// `NAME` for `NAME.gz` (or the `-S` suffix), and `NAME.tar` for `NAME.tgz`.
fn strip_suffix(path: &Path, options: &Options) -> Option<PathBuf> {
    let text = path.to_str()?;
    let file = path.file_name()?.to_str()?;
    for suffix in [options.suffix.as_str(), ".gz", "-gz", ".z", "-z", "_z"] {
        if file.len() > suffix.len() && file.ends_with(suffix) {
            return Some(PathBuf::from(&text[..text.len() - suffix.len()]));
        }
    }
    for suffix in [".tgz", ".taz"] {
        if file.len() > suffix.len() && file.ends_with(suffix) {
            return Some(PathBuf::from(format!(
                "{}.tar",
                &text[..text.len() - suffix.len()]
            )));
        }
    }
    None
}

fn compress_file(
    options: &Options,
    path: &Path,
    meta: &fs::Metadata,
    out: &mut Out,
    status: &mut Status,
) {
    let shown = path.display().to_string();
    if has_suffix(path, options) && !options.to_stdout {
        // A warning that GNU gzip 1.12 does not count in its exit status.
        if !options.quiet {
            eprintln!(
                "gzip: {shown} already has {} suffix -- unchanged",
                options.suffix
            );
        }
        return;
    }
    let mtime = meta.modified().ok();
    let seconds = mtime
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(0));
    let base = path.file_name().map(|n| n.as_encoded_bytes().to_vec());
    let fields = HeaderFields {
        name: base.as_deref().filter(|_| options.save_name),
        mtime: if options.save_name { seconds } else { 0 },
    };
    let mut input = match File::open(path) {
        Ok(f) => BufReader::new(f),
        Err(e) => return status.error(format_args!("{shown}: {}", cli::io_message(&e))),
    };
    if options.to_stdout {
        if let Err(e) = codec::compress(&mut input, &mut *out, options.level, &fields) {
            status.error(format_args!("{shown}: {}", cli::io_message(&e)));
        }
        return;
    }
    let target = PathBuf::from(format!("{shown}{}", options.suffix));
    let Some(mut file) = create(&target, options, status) else {
        return;
    };
    match codec::compress(&mut input, &mut file, options.level, &fields) {
        Ok((read, payload)) => {
            finish_output(options, path, &target, file, mtime, status);
            if options.verbose {
                eprintln!(
                    "{shown}:\t{} -- {} {}",
                    codec::ratio(read, payload),
                    verb(options),
                    target.display()
                );
            }
        }
        Err(e) => {
            let _ = fs::remove_file(&target);
            status.error(format_args!("{shown}: {}", cli::io_message(&e)));
        }
    }
}

fn decompress_file(
    options: &Options,
    path: &Path,
    meta: &fs::Metadata,
    out: &mut Out,
    status: &mut Status,
) {
    let shown = path.display().to_string();
    let stripped = strip_suffix(path, options);
    if stripped.is_none() && !options.to_stdout {
        return status.warn(
            options.quiet,
            format_args!("{shown}: unknown suffix -- ignored"),
        );
    }
    let mut input = match File::open(path) {
        Ok(f) => BufReader::new(f),
        Err(e) => return status.error(format_args!("{shown}: {}", cli::io_message(&e))),
    };
    if options.to_stdout {
        let result = if options.test {
            codec::decompress(&mut input, &mut io::sink())
        } else {
            codec::decompress(&mut input, out)
        };
        decoded(result, &shown, options, status);
        return;
    }
    let Some(mut target) = stripped else { return };
    if options.restore_name
        && let Some(name) = stored_name(&mut input)
    {
        target = path
            .parent()
            .map_or_else(|| PathBuf::from(&name), |p| p.join(&name));
    }
    let Some(mut file) = create(&target, options, status) else {
        return;
    };
    let result = codec::decompress(&mut input, &mut file);
    let header_mtime = result.as_ref().ok().map(|(_, h)| h.mtime);
    if decoded(result, &shown, options, status) {
        let mtime = match header_mtime.filter(|&t| options.restore_name && t != 0) {
            Some(t) => Some(UNIX_EPOCH + Duration::from_secs(u64::from(t))),
            None => meta.modified().ok(),
        };
        finish_output(options, path, &target, file, mtime, status);
        if options.verbose {
            eprintln!("{shown}:\t -- {} {}", verb(options), target.display());
        }
    } else {
        drop(file);
        let _ = fs::remove_file(&target);
    }
}

/// The base name stored in the first member's header (`-N`), if it is a plain file name.
fn stored_name(input: &mut BufReader<File>) -> Option<String> {
    use std::io::{BufRead, Seek};
    let bytes = input.fill_buf().ok()?.to_vec();
    input.rewind().ok()?;
    if bytes.len() < 10 || bytes[..3] != [0x1f, 0x8b, 8] || bytes[3] & 0x08 == 0 {
        return None;
    }
    let mut at = 10;
    if bytes[3] & 0x04 != 0 {
        at += 2 + usize::from(u16::from_le_bytes([*bytes.get(10)?, *bytes.get(11)?]));
    }
    let end = bytes.get(at..)?.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&bytes[at..at + end]).ok()?;
    // Only the last component, as GNU: a stored name never leads elsewhere.
    let base = name.rsplit('/').next()?;
    (!base.is_empty() && base != "." && base != "..").then(|| base.to_owned())
}

fn verb(options: &Options) -> &'static str {
    if options.keep {
        "created"
    } else {
        "replaced with"
    }
}

/// Creates `target`, refusing to replace an existing one without `-f`.
fn create(target: &Path, options: &Options, status: &mut Status) -> Option<File> {
    if fs::symlink_metadata(target).is_ok() {
        if !options.force {
            status.warn(
                options.quiet,
                format_args!("{} already exists;\tnot overwritten", target.display()),
            );
            return None;
        }
        if let Err(e) = fs::remove_file(target) {
            status.error(format_args!(
                "{}: {}",
                target.display(),
                cli::io_message(&e)
            ));
            return None;
        }
    }
    match File::options().write(true).create_new(true).open(target) {
        Ok(f) => Some(f),
        Err(e) => {
            status.error(format_args!(
                "{}: {}",
                target.display(),
                cli::io_message(&e)
            ));
            None
        }
    }
}

/// After a complete output: its mtime from the input, then the input removed (unless `-k`).
fn finish_output(
    options: &Options,
    input: &Path,
    target: &Path,
    file: File,
    mtime: Option<SystemTime>,
    status: &mut Status,
) {
    if let Some(t) = mtime {
        let _ = file.set_modified(t);
    }
    drop(file);
    if !options.keep
        && let Err(e) = fs::remove_file(input)
    {
        status.error(format_args!(
            "{}: {}",
            target.display(),
            cli::io_message(&e)
        ));
    }
}
