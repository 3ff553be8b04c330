//! Runs grep over its operands and prints in GNU grep's format.
//!
//! - Operands: none means stdin (or `.` with `-r`, shown without the `./`); `-` is stdin.
//! - `-r/-R` walk with walkdir in name order (GNU uses directory order), skipping symlinks met
//!   during the walk unless `-R`, and applying `--include/--exclude/--exclude-dir` to base names.
//!   With `-R`, a link back to a directory being walked is not entered: GNU's "recursive
//!   directory loop" warning, and the exit status is unchanged.
//! - A file whose first 32 KiB hold a NUL byte is binary: unless `-a`, its lines are not
//!   printed and `grep: FILE: binary file matches` goes to stderr, as GNU grep 3.8 does.
//! - Output goes through [`Out`], so a failed write stops the run with exit 2 instead of
//!   being mistaken for an unreadable input.

use super::args::{Binary, Config, Directories, Mode};
use super::only::OnlyMatching;
use crate::cli::{self, Out};
use crate::pattern::glob::Glob;
use grep_matcher::LineTerminator;
use grep_printer::{Standard, StandardBuilder};
use grep_regex::RegexMatcher;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use termcolor::NoColor;

/// Bytes looked at to decide whether a file is binary (GNU reads a 32 KiB buffer).
const BINARY_PEEK: usize = 32 * 1024;

/// What the run found so far.
#[derive(Default)]
struct Status {
    selected: bool,
    error: bool,
}

/// One grep run: its settings, compiled globs and printers.
struct Grep<'a> {
    cfg: &'a Config,
    matcher: &'a RegexMatcher,
    searcher: Searcher,
    with_filename: bool,
    include: Vec<Glob>,
    exclude: Vec<Glob>,
    exclude_dir: Vec<Glob>,
    standard: Standard<NoColor<Out>>,
    status: Status,
}

/// Why a run stopped early.
enum Stop {
    /// `-q` found a line.
    Quiet,
    /// Writing stdout failed.
    Write,
}

/// Runs grep; returns the exit code.
pub fn run(cfg: &Config, matcher: &RegexMatcher) -> i32 {
    let mut grep = match Grep::new(cfg, matcher) {
        Ok(g) => g,
        Err(e) => {
            cli::error("grep", e);
            return 2;
        }
    };
    let outcome = grep.run_all();
    let wrote = grep.finish();
    match outcome {
        Err(Stop::Quiet) => 0,
        Err(Stop::Write) => 2,
        Ok(()) if !wrote => 2,
        Ok(()) if grep.status.error && !(cfg.mode == Mode::Quiet && grep.status.selected) => 2,
        Ok(()) if grep.status.selected => 0,
        Ok(()) => 1,
    }
}

fn globs(patterns: &[String]) -> Result<Vec<Glob>, String> {
    patterns
        .iter()
        .map(|p| Glob::new(p, false, false))
        .collect()
}

impl<'a> Grep<'a> {
    fn new(cfg: &'a Config, matcher: &'a RegexMatcher) -> Result<Self, String> {
        let terminator = if cfg.null_data { b'\0' } else { b'\n' };
        let (before, after) = if cfg.only_matching {
            (0, 0)
        } else {
            (cfg.before, cfg.after)
        };
        let searcher = SearcherBuilder::new()
            .line_terminator(LineTerminator::byte(terminator))
            .invert_match(cfg.invert)
            .line_number(cfg.line_number)
            .before_context(before)
            .after_context(after)
            .max_matches(cfg.max_count)
            .binary_detection(BinaryDetection::none())
            .build();
        let with_filename = cfg.with_filename.unwrap_or_else(|| {
            cfg.files.len() > 1 || (cfg.recursive && cfg.files.first().is_none_or(|f| f.is_dir()))
        });
        let path_terminator = cfg.null.then_some(b'\0');
        let context_sep = (before > 0 || after > 0).then(|| b"--".to_vec());
        let standard = StandardBuilder::new()
            .path(with_filename)
            .heading(false)
            .only_matching(cfg.only_matching)
            .byte_offset(cfg.byte_offset)
            .separator_context(context_sep.clone())
            .separator_search(context_sep)
            .separator_field_match(b":".to_vec())
            .separator_field_context(b"-".to_vec())
            .path_terminator(path_terminator)
            .build(NoColor::new(Out::new()));
        Ok(Grep {
            cfg,
            matcher,
            searcher,
            with_filename,
            include: globs(&cfg.include)?,
            exclude: globs(&cfg.exclude)?,
            exclude_dir: globs(&cfg.exclude_dir)?,
            standard,
            status: Status::default(),
        })
    }

    /// The output behind the printer (also used for `-o`, `-c`, `-l` and `-L`).
    fn out(&mut self) -> &mut Out {
        self.standard.get_mut().get_mut()
    }

    /// Flushes the output; false if any of it was lost.
    fn finish(&mut self) -> bool {
        self.out().finish("grep")
    }

    fn run_all(&mut self) -> Result<(), Stop> {
        if self.cfg.files.is_empty() {
            if self.cfg.directories == Directories::Recurse {
                return self.walk(Path::new("."), true);
            }
            return self.search_operand(Path::new("-"));
        }
        for file in &self.cfg.files {
            self.search_operand(file)?;
        }
        Ok(())
    }

    fn report(&mut self, path: &Path, e: &io::Error) {
        self.status.error = true;
        if !self.cfg.no_messages {
            cli::io_error("grep", path, e);
        }
    }

    fn excluded_file(&self, path: &Path) -> bool {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let full = path.to_string_lossy();
        let hit = |g: &Glob| g.is_match(&base) || g.is_match(&full);
        (!self.include.is_empty() && !self.include.iter().any(hit)) || self.exclude.iter().any(hit)
    }

    fn excluded_dir_operand(&self, path: &Path) -> bool {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let full = path.to_string_lossy();
        self.exclude_dir
            .iter()
            .any(|g| g.is_match(&base) || g.is_match(&full))
    }

    fn search_operand(&mut self, path: &Path) -> Result<(), Stop> {
        if path == Path::new("-") {
            let label = PathBuf::from(&self.cfg.label);
            return self.search_reader(&label, Box::new(io::stdin()));
        }
        match std::fs::metadata(path) {
            // --include/--exclude select files (a missing one is still reported, as by GNU); a
            // directory operand is searched whatever its name.
            Ok(md) if !md.is_dir() && self.excluded_file(path) => Ok(()),
            Ok(md) if md.is_dir() => match self.cfg.directories {
                // As GNU, --exclude-dir also skips a directory operand whose name matches.
                Directories::Recurse if self.excluded_dir_operand(path) => Ok(()),
                Directories::Recurse => self.walk(path, false),
                Directories::Skip => Ok(()),
                Directories::Read => {
                    self.status.error = true;
                    if !self.cfg.no_messages {
                        eprintln!("grep: {}: Is a directory", path.display());
                    }
                    Ok(())
                }
            },
            Ok(_) => self.search_file(path),
            Err(e) => {
                self.report(path, &e);
                Ok(())
            }
        }
    }

    /// Walks `root`; `implicit` when grep chose `.` itself (then paths lose their `./`).
    fn walk(&mut self, root: &Path, implicit: bool) -> Result<(), Stop> {
        let mut walker = walkdir::WalkDir::new(root)
            .follow_links(self.cfg.dereference)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walker.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = shown_path(e.path().unwrap_or(root), implicit);
                    if e.loop_ancestor().is_some() {
                        // A link back to a directory being walked: a warning, as GNU's, that
                        // leaves the exit status alone; the link is not entered.
                        if !self.cfg.no_messages {
                            eprintln!(
                                "grep: {}: warning: recursive directory loop",
                                path.display()
                            );
                        }
                    } else {
                        let io = e
                            .into_io_error()
                            .unwrap_or_else(|| io::Error::other("cannot walk the directory"));
                        self.report(&path, &io);
                    }
                    continue;
                }
            };
            let shown = shown_path(entry.path(), implicit);
            let ft = entry.file_type();
            if ft.is_dir() {
                if entry.depth() > 0 {
                    let name = entry.file_name().to_string_lossy();
                    if self.exclude_dir.iter().any(|g| g.is_match(&name)) {
                        walker.skip_current_dir();
                    }
                }
                continue;
            }
            if ft.is_symlink() || !ft.is_file() {
                // -r skips symlinks met in the walk; devices and fifos are never read.
                continue;
            }
            if entry.depth() > 0 && self.excluded_file(&shown) {
                continue;
            }
            self.search_file_as(entry.path(), &shown)?;
        }
        Ok(())
    }

    fn search_file(&mut self, path: &Path) -> Result<(), Stop> {
        self.search_file_as(path, path)
    }

    fn search_file_as(&mut self, path: &Path, shown: &Path) -> Result<(), Stop> {
        match std::fs::File::open(path) {
            Ok(f) => self.search_reader(shown, Box::new(f)),
            Err(e) => {
                self.report(shown, &e);
                Ok(())
            }
        }
    }

    fn search_reader(&mut self, shown: &Path, mut reader: Box<dyn Read>) -> Result<(), Stop> {
        let mut head = Vec::with_capacity(BINARY_PEEK);
        if let Err(e) = (&mut reader)
            .take(BINARY_PEEK as u64)
            .read_to_end(&mut head)
        {
            self.report(shown, &e);
            return Ok(());
        }
        let binary = self.cfg.binary != Binary::Text && !self.cfg.null_data && head.contains(&0);
        if binary && self.cfg.binary == Binary::WithoutMatch {
            return self.record(false);
        }
        let input = io::Cursor::new(head).chain(reader);
        let result = match self.cfg.mode {
            Mode::Lines if binary || (self.cfg.only_matching && self.cfg.invert) => {
                let mut sink = Counter {
                    count: 0,
                    stop: true,
                };
                let r = self.searcher.search_reader(self.matcher, input, &mut sink);
                r.map(|()| {
                    if sink.count > 0 && binary {
                        eprintln!("grep: {}: binary file matches", shown.display());
                    }
                    sink.count > 0
                })
            }
            Mode::Lines if self.cfg.only_matching => {
                let prefix = self.with_filename.then(|| {
                    let mut p = shown.to_string_lossy().into_owned().into_bytes();
                    p.push(if self.cfg.null { b'\0' } else { b':' });
                    p
                });
                let mut sink = OnlyMatching {
                    matcher: self.matcher,
                    out: self.standard.get_mut().get_mut(),
                    prefix,
                    byte_offset: self.cfg.byte_offset,
                    terminator: if self.cfg.null_data { b'\0' } else { b'\n' },
                    matched: false,
                };
                let r = self.searcher.search_reader(self.matcher, input, &mut sink);
                r.map(|()| sink.matched)
            }
            Mode::Lines => {
                let mut sink = self.standard.sink_with_path(self.matcher, shown);
                let r = self.searcher.search_reader(self.matcher, input, &mut sink);
                r.map(|()| sink.has_match())
            }
            mode => {
                let mut sink = Counter {
                    count: 0,
                    stop: mode != Mode::Count,
                };
                let r = self.searcher.search_reader(self.matcher, input, &mut sink);
                r.and_then(|()| {
                    self.summarize(mode, shown, sink.count)
                        .map(|()| sink.count > 0)
                })
            }
        };
        match result {
            Ok(found) => self.record(found),
            Err(e) => {
                if self.out().failed().is_some() {
                    return Err(Stop::Write);
                }
                self.report(shown, &e);
                Ok(())
            }
        }
    }

    /// Prints the `-c`, `-l` or `-L` line for one file, as GNU does (a count line always ends
    /// in a newline; a file name ends in NUL with `-Z`).
    fn summarize(&mut self, mode: Mode, shown: &Path, count: u64) -> io::Result<()> {
        let name = shown.to_string_lossy().into_owned();
        let (with_filename, null) = (self.with_filename, self.cfg.null);
        let sep = if null { "\0" } else { ":" };
        let end = if null { "\0" } else { "\n" };
        let line = match mode {
            Mode::Count if with_filename => format!("{name}{sep}{count}\n"),
            Mode::Count => format!("{count}\n"),
            Mode::FilesWithMatches if count > 0 => format!("{name}{end}"),
            Mode::FilesWithoutMatch if count == 0 => format!("{name}{end}"),
            _ => return Ok(()),
        };
        self.out().write_all(line.as_bytes())
    }

    /// Notes whether a file had a selected line; `-q` stops at the first one. For `-L`, a file
    /// counts as selected when it is listed (GNU grep 3.5 and later).
    fn record(&mut self, found: bool) -> Result<(), Stop> {
        let selected = if self.cfg.mode == Mode::FilesWithoutMatch {
            !found
        } else {
            found
        };
        if selected {
            self.status.selected = true;
            if self.cfg.mode == Mode::Quiet {
                return Err(Stop::Quiet);
            }
        }
        Ok(())
    }
}

/// How a walked path is shown: without the leading `.` when grep chose `.` itself (`implicit`).
fn shown_path(path: &Path, implicit: bool) -> PathBuf {
    if implicit {
        path.strip_prefix(".").unwrap_or(path).to_path_buf()
    } else {
        path.to_path_buf()
    }
}

/// A sink that counts selected lines; with `stop`, it stops at the first one.
struct Counter {
    count: u64,
    stop: bool,
}

impl Sink for Counter {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, _: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.count += 1;
        Ok(!self.stop)
    }
}
