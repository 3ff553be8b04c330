//! Comparing two operands: files through diffutilslib's formatters, directories entry by entry
//! in name order, with GNU diff's messages ("Only in", "Common subdirectories", "Binary files
//! ... differ", "File ... is a directory while file ... is a regular file").

use super::Options;
use super::gnu_form::{collapse_ranges, ctime_headers, relabel};
use crate::cli::{self, Out};
use diffutilslib::params::{Format, Params};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// The result of one comparison; the worst wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Same = 0,
    Different = 1,
    Trouble = 2,
}

/// Bytes searched for a NUL to call a file binary (like GNU diff's first buffer).
const BINARY_PEEK: usize = 32 * 1024;

struct Ctx<'a> {
    opts: &'a Options,
    out: Out,
    stdin: Option<Vec<u8>>,
}

/// Compares `from` with `to` and prints the differences; returns the exit code.
pub fn run(opts: &Options, from: &Path, to: &Path) -> i32 {
    let mut ctx = Ctx {
        opts,
        out: Out::new(),
        stdin: None,
    };
    let status = ctx.top(from, to);
    if !ctx.out.finish("diff") {
        return 2;
    }
    status as i32
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Missing,
}

fn kind(p: &Path) -> io::Result<Kind> {
    if p == Path::new("-") {
        return Ok(Kind::File);
    }
    match fs::metadata(p) {
        Ok(md) if md.is_dir() => Ok(Kind::Dir),
        Ok(_) => Ok(Kind::File),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Kind::Missing),
        Err(e) => Err(e),
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "No such file or directory")
}

fn describe(k: Kind) -> &'static str {
    if k == Kind::Dir {
        "directory"
    } else {
        "regular file"
    }
}

impl Ctx<'_> {
    fn trouble(&self, path: &Path, e: &io::Error) -> Status {
        cli::io_error("diff", path, e);
        Status::Trouble
    }

    fn top(&mut self, from: &Path, to: &Path) -> Status {
        let (kf, kt) = match (kind(from), kind(to)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) => return self.trouble(from, &e),
            (_, Err(e)) => return self.trouble(to, &e),
        };
        match (kf, kt) {
            (Kind::Missing, _) if !self.opts.new_file || kt == Kind::Missing => {
                self.trouble(from, &not_found())
            }
            (_, Kind::Missing) if !self.opts.new_file => self.trouble(to, &not_found()),
            (Kind::Dir, Kind::Dir) => self.dirs(from, to),
            (Kind::Dir, Kind::Missing) | (Kind::Missing, Kind::Dir) => {
                self.one_sided_dir(from, to, kf == Kind::Dir)
            }
            (Kind::Dir, Kind::File) if to != Path::new("-") => {
                let name = to.file_name().unwrap_or_default();
                self.top(&from.join(name), to)
            }
            (Kind::File, Kind::Dir) if from != Path::new("-") => {
                let name = from.file_name().unwrap_or_default();
                self.top(from, &to.join(name))
            }
            (Kind::Dir, _) | (_, Kind::Dir) => {
                cli::error("diff", "cannot compare '-' to a directory");
                Status::Trouble
            }
            _ => self.files(from, to, false),
        }
    }

    fn read(&mut self, path: &Path, kind: Kind) -> io::Result<Vec<u8>> {
        if kind == Kind::Missing {
            return Ok(Vec::new());
        }
        if path == Path::new("-") {
            if self.stdin.is_none() {
                let mut buf = Vec::new();
                io::stdin().read_to_end(&mut buf)?;
                self.stdin = Some(buf);
            }
            return Ok(self.stdin.clone().unwrap_or_default());
        }
        fs::read(path)
    }

    /// Compares two files; `nested` when inside a directory comparison (then GNU prints a
    /// `diff SWITCHES A B` line before the differences).
    fn files(&mut self, from: &Path, to: &Path, nested: bool) -> Status {
        let kf = kind(from).unwrap_or(Kind::Missing);
        let kt = kind(to).unwrap_or(Kind::Missing);
        let a = match self.read(from, kf) {
            Ok(a) => a,
            Err(e) => return self.trouble(from, &e),
        };
        let b = match self.read(to, kt) {
            Ok(b) => b,
            Err(e) => return self.trouble(to, &e),
        };
        let (f, t) = (from.display().to_string(), to.display().to_string());
        if a == b {
            if self.opts.report_identical {
                let _ = writeln!(self.out, "Files {f} and {t} are identical");
            }
            return Status::Same;
        }
        if self.opts.brief {
            let _ = writeln!(self.out, "Files {f} and {t} differ");
            return Status::Different;
        }
        let binary = |d: &[u8]| d[..d.len().min(BINARY_PEEK)].contains(&0);
        if !self.opts.text && (binary(&a) || binary(&b)) {
            let _ = writeln!(self.out, "Binary files {f} and {t} differ");
            return Status::Different;
        }
        if nested {
            let _ = writeln!(self.out, "diff{} {f} {t}", self.opts.switches);
        }
        match self.format(from, to, &a, &b) {
            Ok(text) => {
                let _ = self.out.write_all(&text);
                Status::Different
            }
            Err(e) => {
                cli::error("diff", e);
                Status::Trouble
            }
        }
    }

    fn format(&self, from: &Path, to: &Path, a: &[u8], b: &[u8]) -> Result<Vec<u8>, String> {
        let o = self.opts;
        let params = Params {
            executable: OsString::from("diff"),
            from: from.as_os_str().to_owned(),
            to: to.as_os_str().to_owned(),
            format: o.format,
            context_count: o.context,
            report_identical_files: o.report_identical,
            brief: false,
            expand_tabs: o.expand_tabs,
            tabsize: o.tabsize,
            width: o.width,
        };
        let text = match o.format {
            Format::Normal => collapse_ranges(diffutilslib::normal_diff(a, b, &params)),
            Format::Unified => relabel(diffutilslib::unified_diff(a, b, &params), &o.labels),
            Format::Context => relabel(
                ctime_headers(diffutilslib::context_diff(a, b, &params), [from, to]),
                &o.labels,
            ),
            Format::Ed => {
                // The library's script is valid but not GNU's (see `ed`); its check for a
                // missing final newline is kept.
                diffutilslib::ed_diff(a, b, &params).map_err(String::from)?;
                super::ed::from_normal(&collapse_ranges(diffutilslib::normal_diff(a, b, &params)))
            }
            Format::SideBySide => {
                let mut buf = Vec::new();
                diffutilslib::side_by_side_diff(a, b, &mut buf, &params);
                buf
            }
        };
        Ok(text)
    }

    fn dirs(&mut self, from: &Path, to: &Path) -> Status {
        let names = |p: &Path| -> io::Result<BTreeSet<OsString>> {
            fs::read_dir(p)?.map(|e| e.map(|e| e.file_name())).collect()
        };
        let (left, right) = match (names(from), names(to)) {
            (Ok(l), Ok(r)) => (l, r),
            (Err(e), _) => return self.trouble(from, &e),
            (_, Err(e)) => return self.trouble(to, &e),
        };
        let mut status = Status::Same;
        for name in left.union(&right) {
            let (a, b) = (from.join(name), to.join(name));
            let s = self.entry(
                from,
                to,
                &a,
                &b,
                name,
                left.contains(name),
                right.contains(name),
            );
            status = status.max(s);
        }
        status
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        from: &Path,
        to: &Path,
        a: &Path,
        b: &Path,
        name: &OsString,
        in_left: bool,
        in_right: bool,
    ) -> Status {
        let ka = if in_left {
            kind(a).unwrap_or(Kind::Missing)
        } else {
            Kind::Missing
        };
        let kb = if in_right {
            kind(b).unwrap_or(Kind::Missing)
        } else {
            Kind::Missing
        };
        let name = Path::new(name).display().to_string();
        match (ka, kb) {
            (Kind::Missing, _) | (_, Kind::Missing) if !self.opts.new_file => {
                let dir = if ka == Kind::Missing { to } else { from };
                let _ = writeln!(self.out, "Only in {}: {name}", dir.display());
                Status::Different
            }
            (Kind::Dir, Kind::Dir) | (Kind::Dir, Kind::Missing) | (Kind::Missing, Kind::Dir) => {
                if !self.opts.recursive {
                    if ka == kb {
                        let _ = writeln!(
                            self.out,
                            "Common subdirectories: {} and {}",
                            a.display(),
                            b.display()
                        );
                        return Status::Same;
                    }
                    let dir = if ka == Kind::Missing { to } else { from };
                    let _ = writeln!(self.out, "Only in {}: {name}", dir.display());
                    return Status::Different;
                }
                if ka == kb {
                    return self.dirs(a, b);
                }
                // -N with a directory on one side only: everything in it is new.
                self.one_sided_dir(a, b, ka == Kind::Dir)
            }
            (Kind::Dir, Kind::File) | (Kind::File, Kind::Dir) => {
                let _ = writeln!(
                    self.out,
                    "File {} is a {} while file {} is a {}",
                    a.display(),
                    describe(ka),
                    b.display(),
                    describe(kb)
                );
                Status::Different
            }
            _ => self.files(a, b, true),
        }
    }

    fn one_sided_dir(&mut self, a: &Path, b: &Path, left_exists: bool) -> Status {
        let existing = if left_exists { a } else { b };
        let names: BTreeSet<OsString> = match fs::read_dir(existing) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.file_name()).collect(),
            Err(e) => return self.trouble(existing, &e),
        };
        let mut status = Status::Same;
        for name in &names {
            let (x, y) = (a.join(name), b.join(name));
            status = status.max(self.entry(a, b, &x, &y, name, left_exists, !left_exists));
        }
        status
    }
}
