//! The one-name-per-line listing (`ls`, `-1`, `-a`, `-A`, `-r`, `-R` of directories) from the
//! directory entries alone: name and `d_type`, no `stat` per entry.
//!
//! Under WASI uu_ls 0.12 asks for every entry's metadata whatever the format (its non-unix
//! column padding does), which costs one host `stat` per entry, and `-R` opens each
//! subdirectory twice and stats it once more. GNU `ls` needs none of that for these formats,
//! and neither does this path: per directory it makes one open and the reads of its entries.
//!
//! It must print byte for byte what uu_ls prints for the same command line, so it reproduces
//! uu_ls's order of work: the same name comparison (bytes, or the locale's collation when uu_ls
//! would use it) applied by the same sort to the same sequence, the same headers and quoting
//! (uucore's own functions with uu_ls's `Config`), the same walk (children in order, each
//! subdirectory opened right after its parent is listed, an error reported then) and the same
//! error texts and exit codes. It takes nothing it cannot reproduce: any other option, an
//! environment that changes quoting (`QUOTING_STYLE`), or an operand that is not a directory
//! sends the whole command line to uu_ls before anything is printed ([`list`] returns `None`).
//! It does not follow symlinks (a symlink to a directory is not a directory entry to descend
//! into, as in uu_ls without `-L`).

use clap::ArgMatches;
use clap::parser::ValueSource;
use std::ffi::OsString;
use std::fs::ReadDir;
use std::io::{BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};
use uu_ls::{Config, Format, options};
use uucore::display::Quotable;
use uucore::error::{UResult, USimpleError, set_exit_code};
use uucore::quoting_style::{locale_aware_escape_dir_name, locale_aware_escape_name};

/// Subdirectories waiting to be listed that keep the descriptor they were checked with (so
/// they are opened once); past this many, one is opened again when its turn comes.
const KEPT_OPEN: usize = 64;

/// Which entries are shown, as uu_ls's `Files`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Not those whose name starts with `.`.
    Normal,
    /// All but `.` and `..` (`-A`).
    AlmostAll,
    /// All, with `.` and `..` (`-a`).
    All,
}

/// The listing options of a command line this path takes.
struct Short<'a> {
    config: &'a Config,
    shown: Shown,
    reverse: bool,
    recursive: bool,
    locale_order: bool,
    out: BufWriter<Stdout>,
}

/// One entry of a directory, as much as the listing needs.
struct Entry {
    /// The name shown (`.`/`..` for those).
    name: OsString,
    /// The path it is reached by (the directory's path joined with the name).
    path: PathBuf,
    /// A directory by its `d_type` (a symlink to one is not).
    dir: bool,
    /// `.` or `..`, never descended into.
    dot: bool,
}

/// A subdirectory waiting for its turn, with the descriptor it was checked with if kept.
struct Pending {
    path: PathBuf,
    read: Option<ReadDir>,
}

/// Lists `locs` when this path can reproduce uu_ls for `matches`; `None` when it cannot, before
/// anything was printed.
pub fn list(matches: &ArgMatches, config: &Config, locs: &[&Path]) -> Option<UResult<()>> {
    if !takes(matches, config) {
        return None;
    }
    // Operands: only directories (following a symlink, as uu_ls does for operands here).
    if !locs
        .iter()
        .all(|loc| std::fs::metadata(loc).is_ok_and(|m| m.is_dir()))
    {
        return None;
    }
    let mut short = Short {
        config,
        shown: shown(matches),
        reverse: matches.get_flag(options::REVERSE),
        recursive: matches.get_flag(options::RECURSIVE),
        locale_order: uucore::i18n::collator::should_use_locale_collation(),
        out: BufWriter::new(std::io::stdout()),
    };
    Some(short.run(locs))
}

/// True when every option given is one this path reproduces and the format is one name per line.
fn takes(matches: &ArgMatches, config: &Config) -> bool {
    // The options this path reproduces; any other one given on the command line goes to uu_ls.
    let taken = [
        options::PATHS,
        options::format::ONE_LINE,
        options::files::ALL,
        options::files::ALMOST_ALL,
        options::REVERSE,
        options::RECURSIVE,
    ];
    config.format == Format::OneLine
        && std::env::var_os("QUOTING_STYLE").is_none()
        && matches.ids().all(|id| {
            let id = id.as_str();
            match matches.value_source(id) {
                None | Some(ValueSource::DefaultValue) => true,
                Some(_) => taken.contains(&id),
            }
        })
}

/// `-a` and `-A`, the last one given winning, as uu_ls decides.
fn shown(matches: &ArgMatches) -> Shown {
    let last = |id: &str| {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            matches.index_of(id).unwrap_or(0)
        } else {
            0
        }
    };
    let (all, almost) = (last(options::files::ALL), last(options::files::ALMOST_ALL));
    if all == 0 && almost == 0 {
        Shown::Normal
    } else if almost > all {
        Shown::AlmostAll
    } else {
        Shown::All
    }
}

impl Short<'_> {
    fn run(&mut self, locs: &[&Path]) -> UResult<()> {
        let mut dirs: Vec<Entry> = locs
            .iter()
            .map(|loc| Entry {
                name: loc.as_os_str().to_owned(),
                path: loc.to_path_buf(),
                dir: true,
                dot: false,
            })
            .collect();
        self.sort(&mut dirs);
        let headers = locs.len() > 1 || self.recursive;
        for (pos, top) in dirs.iter().enumerate() {
            let read = match std::fs::read_dir(&top.path) {
                Ok(read) => read,
                Err(e) => {
                    self.flush()?;
                    self.show_context(&top.path, &e, true);
                    continue;
                }
            };
            if headers {
                if pos > 0 {
                    writeln!(self.out)?;
                }
                self.header(&top.path)?;
            }
            self.walk(&top.path, read)?;
        }
        self.flush()
    }

    /// Lists `top` (already opened as `read`) and, with `-R`, everything below it, depth first
    /// in listing order.
    fn walk(&mut self, top: &Path, read: ReadDir) -> UResult<()> {
        let mut stack: Vec<Pending> = Vec::new();
        // Open descriptors among `next` and `stack`: `top`'s so far.
        let mut kept = 1usize;
        let mut next = Some(Pending {
            path: top.to_path_buf(),
            read: Some(read),
        });
        let mut first = true;
        while let Some(dir) = next.take().or_else(|| stack.pop()) {
            if !first {
                writeln!(self.out)?;
                self.header(&dir.path)?;
            }
            first = false;
            let read = match dir.read {
                Some(read) => {
                    kept = kept.saturating_sub(1);
                    read
                }
                None => match std::fs::read_dir(&dir.path) {
                    Ok(read) => read,
                    Err(e) => {
                        self.flush()?;
                        self.show_context(&dir.path, &e, false);
                        continue;
                    }
                },
            };
            let entries = self.entries(&dir.path, read)?;
            for e in &entries {
                let name = locale_aware_escape_name(&e.name, self.config.quoting_style);
                self.out.write_all(&uucore::os_str_as_bytes_lossy(&name))?;
                self.out.write_all(b"\n")?;
            }
            if !self.recursive {
                continue;
            }
            for child in entries.into_iter().filter(|e| e.dir && !e.dot).rev() {
                match std::fs::read_dir(&child.path) {
                    Ok(read) => {
                        let read = (kept < KEPT_OPEN).then_some(read);
                        kept += usize::from(read.is_some());
                        stack.push(Pending {
                            path: child.path,
                            read,
                        });
                    }
                    Err(e) => {
                        self.flush()?;
                        self.show_context(&child.path, &e, false);
                    }
                }
            }
        }
        Ok(())
    }

    /// The shown entries of `dir`, sorted; `.` and `..` first in reading order with `-a`.
    fn entries(&mut self, dir: &Path, read: ReadDir) -> UResult<Vec<Entry>> {
        let mut entries = Vec::new();
        if self.shown == Shown::All {
            for (name, path) in [(".", dir.to_path_buf()), ("..", dir.join(".."))] {
                entries.push(Entry {
                    name: OsString::from(name),
                    path,
                    dir: true,
                    dot: true,
                });
            }
        }
        for raw in read {
            let entry = match raw {
                Ok(entry) => entry,
                Err(e) => {
                    self.flush()?;
                    let text = uucore::translate!("ls-error-general-io", "error" => e);
                    show(&text, 1);
                    continue;
                }
            };
            let name = entry.file_name();
            if self.shown == Shown::Normal && name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            entries.push(Entry {
                dir: entry.file_type().is_ok_and(|t| t.is_dir()),
                path: entry.path(),
                name,
                dot: false,
            });
        }
        self.sort(&mut entries);
        Ok(entries)
    }

    /// uu_ls's name order: the same comparison by the same (unstable) sort, then `-r`.
    fn sort(&self, entries: &mut [Entry]) {
        if self.locale_order {
            entries.sort_unstable_by(|a, b| {
                uucore::i18n::collator::locale_cmp(
                    uucore::os_str_as_bytes_lossy(&a.name).as_ref(),
                    uucore::os_str_as_bytes_lossy(&b.name).as_ref(),
                )
            });
        } else {
            entries.sort_unstable_by(|a, b| a.name.as_os_str().cmp(b.name.as_os_str()));
        }
        if self.reverse {
            entries.reverse();
        }
    }

    /// `PATH:` as uu_ls heads a directory's listing.
    fn header(&mut self, path: &Path) -> UResult<()> {
        let name = locale_aware_escape_dir_name(path.as_os_str(), self.config.quoting_style);
        self.out.write_all(&uucore::os_str_as_bytes_lossy(&name))?;
        self.out.write_all(b":\n")?;
        Ok(())
    }

    fn flush(&mut self) -> UResult<()> {
        self.out
            .flush()
            .map_err(|e| USimpleError::new(2, format!("write error: {e}")))?;
        Ok(())
    }

    /// uu_ls's report of a directory it could not open (its `IOErrorContext`): exit status 2
    /// for an operand, 1 below it.
    fn show_context(&self, path: &Path, e: &std::io::Error, operand: bool) {
        show(&context_message(path, e), if operand { 2 } else { 1 });
    }
}

/// Prints `ls: TEXT` on stderr and raises the exit status to `code`, as uucore's `show!`.
fn show(text: &str, code: i32) {
    set_exit_code(code);
    uucore::show_error!("{text}");
}

/// The text uu_ls gives an error met at `path`, chosen as uu_ls chooses it.
fn context_message(path: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let quoted = path.quote();
    match e.kind() {
        ErrorKind::NotADirectory => uucore::translate!("ls-error-not-directory", "path" => quoted),
        ErrorKind::NotFound => {
            uucore::translate!("ls-error-cannot-access-no-such-file", "path" => quoted)
        }
        ErrorKind::PermissionDenied => match e.raw_os_error().unwrap_or(1) {
            1 => uucore::translate!(
                "ls-error-cannot-access-operation-not-permitted",
                "path" => quoted
            ),
            _ if path.is_dir() => uucore::translate!(
                "ls-error-cannot-open-directory-permission-denied",
                "path" => quoted
            ),
            _ => uucore::translate!("ls-error-cannot-access-permission-denied", "path" => quoted),
        },
        _ if e.raw_os_error() == Some(9) => uucore::translate!(
            "ls-error-cannot-open-directory-bad-descriptor",
            "path" => quoted
        ),
        _ => uucore::translate!(
            "ls-error-unknown-io-error",
            "path" => quoted,
            "error" => format!("{e:?}")
        ),
    }
}
