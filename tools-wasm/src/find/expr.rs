//! find's expression tree and its evaluation against one file.
//!
//! Evaluation is lazy and short-circuiting like GNU find: `-a` stops at the first false, `-o`
//! at the first true, and actions (`-print`, `-prune`, `-quit`) take effect only when reached.

use super::printf::Format;
use crate::pattern::glob::Glob;
use regex::Regex;
use std::cell::OnceCell;
use std::fs::{FileType, Metadata};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

/// `+N`, `-N` or `N` in numeric tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `-N`: less than N.
    Less,
    /// `N`: exactly N.
    Exact,
    /// `+N`: more than N.
    More,
}

impl Cmp {
    /// Compares `value` with `n` in this sense.
    pub fn test(self, value: i128, n: i128) -> bool {
        match self {
            Cmp::Less => value < n,
            Cmp::Exact => value == n,
            Cmp::More => value > n,
        }
    }
}

/// Which timestamp a time test reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeField {
    /// Last access.
    Access,
    /// Last modification.
    Modify,
}

/// One node of a find expression.
#[derive(Debug)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Comma(Box<Expr>, Box<Expr>),
    Const(bool),
    /// `-name`/`-iname`: the base name.
    Name(Glob),
    /// `-path`/`-ipath`/`-wholename`: the whole path as printed.
    Path(Glob),
    /// `-lname`/`-ilname`: a symlink's target.
    LinkName(Glob),
    /// `-regex`/`-iregex`: the whole path, anchored.
    Regex(Regex),
    /// `-type` (several letters with `,`).
    Type(Vec<char>),
    /// `-size`: size in `unit`-byte units, rounded up.
    Size {
        cmp: Cmp,
        n: u64,
        unit: u64,
    },
    /// `-empty`.
    Empty,
    /// `-newer FILE` (modification times).
    Newer(SystemTime),
    /// `-mtime/-atime` (`unit` 86400) and `-mmin/-amin` (`unit` 60).
    Age {
        field: TimeField,
        cmp: Cmp,
        n: i64,
        unit: u64,
    },
    Prune,
    Quit,
    Print,
    Print0,
    Printf(Format),
}

/// Everything an expression may look at or change for the current file.
pub struct Visit<'a> {
    /// The path as printed (`./a/b`).
    pub path: &'a Path,
    /// The starting point this file was found under.
    pub root: &'a Path,
    /// Depth below the starting point.
    pub depth: usize,
    /// The file's type from the walk (following symlinks if `-L`): under WASI the directory
    /// listing's `d_type`, so tests that only need the type (`-type`, `%y`) cost no `stat`.
    pub file_type: Option<FileType>,
    /// The file's metadata (following symlinks if `-L`), read the first time a test asks.
    pub metadata: LazyMetadata<'a>,
    /// True when the file is a symlink (not followed).
    pub is_symlink: bool,
    /// Reference time for `-mtime` and friends (find's start).
    pub now: SystemTime,
    /// Set by `-prune`.
    pub prune: bool,
    /// Set by `-quit`.
    pub quit: bool,
}

/// Metadata read on first use: `find -name` needs none, and a `stat` per entry is most of the
/// cost of a walk under WASI.
pub struct LazyMetadata<'a> {
    entry: Option<&'a walkdir::DirEntry>,
    cell: OnceCell<Option<Metadata>>,
}

impl<'a> LazyMetadata<'a> {
    /// The metadata of a walked entry, read when first asked for.
    pub fn of(entry: &'a walkdir::DirEntry) -> Self {
        Self {
            entry: Some(entry),
            cell: OnceCell::new(),
        }
    }

    /// No metadata (it could not be read).
    #[cfg(test)]
    pub fn none() -> Self {
        Self {
            entry: None,
            cell: OnceCell::from(None),
        }
    }

    /// The metadata, if it can be read.
    pub fn get(&self) -> Option<&Metadata> {
        self.cell
            .get_or_init(|| self.entry.and_then(|e| e.metadata().ok()))
            .as_ref()
    }
}

/// The base name as find sees it: trailing slashes dropped, `/` for the root.
pub fn base_name(path: &Path) -> String {
    let s = path.to_string_lossy();
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() {
        return if s.is_empty() {
            String::new()
        } else {
            "/".into()
        };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// The type letter find uses for a file type (`f d l p s b c`, `?` if unknown).
pub fn type_letter(ft: Option<FileType>, is_symlink: bool) -> char {
    if is_symlink {
        return 'l';
    }
    let Some(ft) = ft else { return '?' };
    if ft.is_dir() {
        'd'
    } else if ft.is_file() {
        'f'
    } else if ft.is_symlink() {
        'l'
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_fifo() {
                return 'p';
            } else if ft.is_socket() {
                return 's';
            } else if ft.is_block_device() {
                return 'b';
            } else if ft.is_char_device() {
                return 'c';
            }
        }
        // WASI reports sockets and devices too, but std exposes them only through the
        // unstable `wasi_ext`; such files are rare in a workspace and show as `?`.
        '?'
    }
}

fn age_units(now: SystemTime, t: SystemTime, unit: u64) -> i128 {
    let secs = match now.duration_since(t) {
        Ok(d) => d.as_secs() as i128,
        Err(e) => -(e.duration().as_secs() as i128) - 1,
    };
    secs.div_euclid(unit as i128)
}

impl Expr {
    /// True if the expression (or a sub-expression) is an action, so no implicit `-print`.
    pub fn has_action(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Comma(a, b) => {
                a.has_action() || b.has_action()
            }
            Expr::Not(a) => a.has_action(),
            Expr::Print | Expr::Print0 | Expr::Printf(_) | Expr::Quit => true,
            _ => false,
        }
    }

    /// Evaluates the expression for one file, writing any output to `out`.
    pub fn eval(&self, v: &mut Visit<'_>, out: &mut impl Write) -> std::io::Result<bool> {
        Ok(match self {
            Expr::And(a, b) => a.eval(v, out)? && !v.quit && b.eval(v, out)?,
            Expr::Or(a, b) => a.eval(v, out)? || (!v.quit && b.eval(v, out)?),
            Expr::Not(a) => !a.eval(v, out)?,
            Expr::Comma(a, b) => {
                a.eval(v, out)?;
                !v.quit && b.eval(v, out)?
            }
            Expr::Const(b) => *b,
            Expr::Name(g) => g.is_match(&base_name(v.path)),
            Expr::Path(g) => g.is_match(&v.path.to_string_lossy()),
            Expr::LinkName(g) => {
                v.is_symlink
                    && std::fs::read_link(v.path).is_ok_and(|t| g.is_match(&t.to_string_lossy()))
            }
            Expr::Regex(r) => r.is_match(&v.path.to_string_lossy()),
            Expr::Type(letters) => letters.contains(&type_letter(v.file_type, v.is_symlink)),
            Expr::Size { cmp, n, unit } => v.metadata.get().is_some_and(|md| {
                let units = md.len().div_ceil(*unit);
                cmp.test(units as i128, *n as i128)
            }),
            Expr::Empty => v.metadata.get().is_some_and(|md| {
                if md.is_dir() {
                    std::fs::read_dir(v.path).is_ok_and(|mut d| d.next().is_none())
                } else {
                    md.is_file() && md.len() == 0
                }
            }),
            Expr::Newer(t) => v
                .metadata
                .get()
                .and_then(|md| md.modified().ok())
                .is_some_and(|m| m > *t),
            Expr::Age {
                field,
                cmp,
                n,
                unit,
            } => v
                .metadata
                .get()
                .and_then(|md| match field {
                    TimeField::Modify => md.modified().ok(),
                    TimeField::Access => md.accessed().ok(),
                })
                .is_some_and(|t| cmp.test(age_units(v.now, t, *unit), *n as i128)),
            Expr::Prune => {
                v.prune = true;
                true
            }
            Expr::Quit => {
                v.quit = true;
                true
            }
            Expr::Print => {
                out.write_all(v.path.to_string_lossy().as_bytes())?;
                out.write_all(b"\n")?;
                true
            }
            Expr::Print0 => {
                out.write_all(v.path.to_string_lossy().as_bytes())?;
                out.write_all(b"\0")?;
                true
            }
            Expr::Printf(f) => {
                f.write(v, out)?;
                true
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Cmp, base_name};
    use std::path::Path;

    #[test]
    fn base_names() {
        assert_eq!(base_name(Path::new(".")), ".");
        assert_eq!(base_name(Path::new("./a/b.txt")), "b.txt");
        assert_eq!(base_name(Path::new("dir/")), "dir");
        assert_eq!(base_name(Path::new("/")), "/");
    }

    #[test]
    fn comparisons() {
        assert!(Cmp::Less.test(0, 1));
        assert!(!Cmp::Less.test(1, 1));
        assert!(Cmp::More.test(2, 1));
        assert!(Cmp::Exact.test(1, 1));
    }
}
