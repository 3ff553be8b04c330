//! `tree`: a directory tree in the layout of the `tree` program, on `std::fs`.
//!
//! The reference is tree 2.1 (Debian 12): ASCII lines unless the environment names a UTF-8
//! locale, as tree decides. Supported: `-a -d -f -i -l -L N -I PAT -P PAT -s -h -D -F -r -t -U
//! --dirsfirst --noreport --charset=ascii`; `-C/-n` are accepted and ignored (never colours).
//! Options that print modes, owners or inodes (`-p -u -g --inodes --device`) are refused: WASI
//! has none of them. Entries are sorted by name, bytewise (tree uses the locale's collation).

use crate::cli::{self, Out, all_os, flag, last_str, opt};
use crate::pattern::glob::Glob;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use uucore::format::human::{SizeFormat, human_readable};
use uucore::fs::{MissingHandling, ResolveMode, canonicalize};
use uucore::time::{FormatSystemTimeFallback, format_system_time};

fn command() -> clap::Command {
    cli::command(
        "tree",
        "List the contents of directories in a tree-like format.",
    )
    .override_usage("tree [OPTION]... [DIRECTORY]...")
    .args_override_self(true)
    .arg(flag("all").short('a'))
    .arg(flag("dirs").short('d'))
    .arg(flag("full").short('f'))
    .arg(flag("noindent").short('i'))
    .arg(flag("follow").short('l'))
    .arg(opt("level").short('L').value_name("LEVEL"))
    .arg(opt("ignore").short('I').value_name("PATTERN"))
    .arg(opt("pattern").short('P').value_name("PATTERN"))
    .arg(flag("size").short('s'))
    .arg(flag("human").short('h'))
    .arg(flag("date").short('D'))
    .arg(flag("classify").short('F'))
    .arg(flag("reverse").short('r'))
    .arg(flag("mtime").short('t'))
    .arg(flag("unsorted").short('U'))
    .arg(flag("dirsfirst").long("dirsfirst"))
    .arg(flag("noreport").long("noreport"))
    .arg(opt("charset").long("charset").value_name("CHARSET"))
    .arg(flag("color").short('C'))
    .arg(flag("nocolor").short('n'))
    .arg(flag("perms").short('p'))
    .arg(flag("user").short('u'))
    .arg(flag("group").short('g'))
    .arg(flag("inodes").long("inodes"))
    .arg(flag("device").long("device"))
    .arg(
        clap::Arg::new("dirs_operands")
            .action(clap::ArgAction::Append)
            .num_args(0..)
            .value_parser(clap::value_parser!(OsString)),
    )
}

/// The characters that draw the tree.
struct Lines {
    tee: &'static str,
    last: &'static str,
    pipe: &'static str,
    blank: &'static str,
}

const UNICODE: Lines = Lines {
    tee: "├── ",
    last: "└── ",
    pipe: "│   ",
    blank: "    ",
};
const ASCII: Lines = Lines {
    tee: "|-- ",
    last: "`-- ",
    pipe: "|   ",
    blank: "    ",
};

struct Tree {
    all: bool,
    dirs_only: bool,
    full: bool,
    noindent: bool,
    follow: bool,
    level: Option<usize>,
    ignore: Vec<Glob>,
    pattern: Vec<Glob>,
    size: Option<SizeFormat>,
    bytes: bool,
    date: bool,
    classify: bool,
    reverse: bool,
    mtime: bool,
    unsorted: bool,
    dirsfirst: bool,
    lines: Lines,
    out: Out,
    dirs: usize,
    files: usize,
    ok: bool,
    /// With `-l`: the resolved path of every directory listed so far. tree keeps their inode
    /// numbers, which WASI does not give, to list each directory once and so never loop.
    visited: HashSet<PathBuf>,
    now: SystemTime,
}

/// `a|b` alternatives, as tree's `-I`/`-P` take them.
fn patterns(m: &clap::ArgMatches, id: &str) -> Result<Vec<Glob>, String> {
    all_os(m, id)
        .iter()
        .flat_map(|p| {
            p.to_string_lossy()
                .split('|')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .map(|p| Glob::new(&p, false, false))
        .collect()
}

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let m = match cli::parse(command(), args, 1) {
        Ok(m) => m,
        Err(code) => return code,
    };
    for (id, what) in [
        ("perms", "-p"),
        ("user", "-u"),
        ("group", "-g"),
        ("inodes", "--inodes"),
        ("device", "--device"),
    ] {
        if m.get_flag(id) {
            cli::error(
                "tree",
                format!("{what}: modes, owners, inodes and devices are not available under WASI"),
            );
            return 1;
        }
    }
    let level = match last_str(&m, "level").map(|l| l.parse::<usize>()) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => {
            cli::error("tree", "Invalid level, must be greater than 0.");
            return 1;
        }
    };
    let (ignore, pattern) = match (patterns(&m, "ignore"), patterns(&m, "pattern")) {
        (Ok(i), Ok(p)) => (i, p),
        (Err(e), _) | (_, Err(e)) => {
            cli::error("tree", e);
            return 1;
        }
    };
    let human = m.get_flag("human");
    let mut t = Tree {
        all: m.get_flag("all"),
        dirs_only: m.get_flag("dirs"),
        full: m.get_flag("full"),
        noindent: m.get_flag("noindent"),
        follow: m.get_flag("follow"),
        level,
        ignore,
        pattern,
        size: human.then_some(SizeFormat::Binary),
        bytes: m.get_flag("size") && !human,
        date: m.get_flag("date"),
        classify: m.get_flag("classify"),
        reverse: m.get_flag("reverse"),
        mtime: m.get_flag("mtime"),
        unsorted: m.get_flag("unsorted"),
        dirsfirst: m.get_flag("dirsfirst"),
        lines: lines(last_str(&m, "charset").as_deref()),
        out: Out::new(),
        dirs: 0,
        files: 0,
        ok: true,
        visited: HashSet::new(),
        now: SystemTime::now(),
    };
    let mut roots: Vec<PathBuf> = all_os(&m, "dirs_operands")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if roots.is_empty() {
        roots.push(PathBuf::from("."));
    }
    for root in &roots {
        t.root(root);
    }
    if !m.get_flag("noreport") {
        let d = if t.dirs == 1 {
            "directory"
        } else {
            "directories"
        };
        let report = if t.dirs_only {
            format!("\n{} {d}\n", t.dirs)
        } else {
            let f = if t.files == 1 { "file" } else { "files" };
            format!("\n{} {d}, {} {f}\n", t.dirs, t.files)
        };
        let _ = t.out.write_all(report.as_bytes());
    }
    let wrote = t.out.finish("tree");
    if t.ok && wrote { 0 } else { 2 }
}

/// The line-drawing characters: `--charset` if given (`ascii`, else Unicode), otherwise as
/// tree chooses them from the locale: Unicode only in a UTF-8 one. (The host's default guest
/// environment has `LANG=C.UTF-8`; with `LC_ALL=C` this gives GNU's ASCII output.)
fn lines(charset: Option<&str>) -> Lines {
    if let Some(c) = charset {
        return if c.eq_ignore_ascii_case("ascii") {
            ASCII
        } else {
            UNICODE
        };
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if locale.contains("utf-8") || locale.contains("utf8") {
        UNICODE
    } else {
        ASCII
    }
}

impl Tree {
    /// One operand. As tree 2.x: the line shows `-s`/`-D` and `-F` like any entry, a directory
    /// counts in the report only if something is listed under it, and an operand that is not a
    /// directory is reported, counted as a file, and is no error unless it does not exist.
    fn root(&mut self, root: &Path) {
        match std::fs::metadata(root) {
            Ok(md) if md.is_dir() => {
                let slash = if self.classify { "/" } else { "" };
                let info = self.info(Some(&md));
                let _ = writeln!(self.out, "{info}{}{slash}", root.display());
                self.first_visit(root);
                if self.dir(root, "", 1) > 0 {
                    self.dirs += 1;
                }
            }
            Ok(_) => {
                let _ = writeln!(self.out, "{}  [error opening dir]", root.display());
                self.files += 1;
            }
            Err(_) => {
                let _ = writeln!(self.out, "{}  [error opening dir]", root.display());
                self.ok = false;
            }
        }
    }

    fn keep(&self, name: &str, is_dir: bool) -> bool {
        if !self.all && name.starts_with('.') {
            return false;
        }
        if self.ignore.iter().any(|g| g.is_match(name)) {
            return false;
        }
        if is_dir {
            return true;
        }
        !self.dirs_only
            && (self.pattern.is_empty() || self.pattern.iter().any(|g| g.is_match(name)))
    }

    /// Lists the entries of `path`; returns how many it listed.
    fn dir(&mut self, path: &Path, prefix: &str, depth: usize) -> usize {
        let rd = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                cli::error(
                    "tree",
                    format!("{}: {}", path.display(), cli::io_message(&e)),
                );
                self.ok = false;
                return 0;
            }
        };
        // (name, path, metadata following links, is a symlink)
        let mut entries: Vec<(String, PathBuf, Option<Metadata>, bool)> = rd
            .filter_map(Result::ok)
            .map(|e| {
                let p = e.path();
                let link = e.file_type().is_ok_and(|t| t.is_symlink());
                let md = std::fs::metadata(&p)
                    .ok()
                    .or_else(|| std::fs::symlink_metadata(&p).ok());
                (e.file_name().to_string_lossy().into_owned(), p, md, link)
            })
            .filter(|(name, _, md, _)| self.keep(name, md.as_ref().is_some_and(Metadata::is_dir)))
            .collect();
        if !self.unsorted {
            if !self.mtime {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                // Oldest first, equal times by name (tree's mtimesort).
                entries.sort_by(|a, b| {
                    let t = |e: &(String, PathBuf, Option<Metadata>, bool)| {
                        e.2.as_ref().and_then(|m| m.modified().ok())
                    };
                    t(a).cmp(&t(b)).then_with(|| a.0.cmp(&b.0))
                });
            }
            if self.reverse {
                entries.reverse();
            }
            if self.dirsfirst {
                entries.sort_by_key(|e| !e.2.as_ref().is_some_and(Metadata::is_dir));
            }
        }
        let count = entries.len();
        for (i, (name, p, md, link)) in entries.into_iter().enumerate() {
            let last = i + 1 == count;
            let is_dir = md.as_ref().is_some_and(Metadata::is_dir);
            let mut line = String::new();
            if !self.noindent {
                line.push_str(prefix);
                line.push_str(if last {
                    self.lines.last
                } else {
                    self.lines.tee
                });
            }
            line.push_str(&self.info(md.as_ref()));
            line.push_str(&if self.full {
                p.display().to_string()
            } else {
                name.clone()
            });
            if link && let Ok(target) = std::fs::read_link(&p) {
                line.push_str(&format!(" -> {}", target.display()));
            }
            let eligible = is_dir && (!link || self.follow) && self.level.is_none_or(|l| depth < l);
            // As tree: every directory is recorded, a followed link to one already listed is
            // not entered (real directories always are).
            let seen = eligible && !self.first_visit(&p);
            let descend = eligible && !(link && seen);
            if link && seen {
                line.push_str("  [recursive, not followed]");
            }
            if self.classify {
                line.push_str(if is_dir {
                    "/"
                } else if link {
                    "@"
                } else {
                    ""
                });
            }
            let _ = writeln!(self.out, "{line}");
            if is_dir {
                self.dirs += 1;
                if descend {
                    let next = format!(
                        "{prefix}{}",
                        if last {
                            self.lines.blank
                        } else {
                            self.lines.pipe
                        }
                    );
                    self.dir(&p, &next, depth + 1);
                }
            } else {
                self.files += 1;
            }
        }
        count
    }

    /// With `-l`, records the directory `path` as listed; false if it was listed before (a link
    /// back to an ancestor, or to a directory already shown). Without `-l` nothing repeats.
    fn first_visit(&mut self, path: &Path) -> bool {
        if !self.follow {
            return true;
        }
        match canonicalize(path, MissingHandling::Normal, ResolveMode::Physical) {
            Ok(real) => self.visited.insert(real),
            Err(_) => true,
        }
    }

    /// The bracketed `[size date]` column for `-s -h -D`.
    fn info(&self, md: Option<&Metadata>) -> String {
        if !self.bytes && self.size.is_none() && !self.date {
            return String::new();
        }
        let mut parts = Vec::new();
        if self.bytes {
            parts.push(
                md.map(|m| format!("{:>11}", m.len()))
                    .unwrap_or_else(|| format!("{:>11}", "?")),
            );
        } else if let Some(f) = self.size {
            parts.push(
                md.map(|m| format!("{:>4}", human_readable(m.len(), f)))
                    .unwrap_or_else(|| "   ?".into()),
            );
        }
        if self.date {
            let mut buf = Vec::new();
            // As tree (and ls): the year instead of the time for dates over six months old or
            // in the future.
            let half_year = Duration::from_secs(182 * 24 * 60 * 60);
            let ok = md.and_then(|m| m.modified().ok()).is_some_and(|t| {
                let old = t > self.now || t + half_year < self.now;
                let fmt = if old { "%b %e  %Y" } else { "%b %e %H:%M" };
                format_system_time(&mut buf, t, fmt, FormatSystemTimeFallback::Integer).is_ok()
            });
            parts.push(if ok {
                String::from_utf8_lossy(&buf).into_owned()
            } else {
                "?".into()
            });
        }
        format!("[{}]  ", parts.join(" "))
    }
}
