//! `du`: disk usage from apparent sizes (uutils' du does not build for WASI).
//!
//! WASI reports file lengths but not allocated blocks, so every figure is an apparent size, as
//! with GNU `du --apparent-size`: the bytes of each file and directory entry, summed, then shown
//! in 1 KiB units (rounded up), or as chosen by `-b -k -m -B -h --si`. Hard links are counted
//! once per path (WASI does not expose inode numbers). Entries are visited in name order.

use crate::cli::{self, Out, all_os, flag, last_str, opt};
use crate::pattern::glob::Glob;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use uucore::format::human::{SizeFormat, human_readable};

fn command() -> clap::Command {
    cli::command(
        "du",
        "Summarize apparent disk usage of each FILE, recursively for directories.",
    )
    .override_usage("du [OPTION]... [FILE]...")
    .args_override_self(true)
    .arg(flag("all").short('a').long("all"))
    .arg(flag("summarize").short('s').long("summarize"))
    .arg(flag("total").short('c').long("total"))
    .arg(flag("human").short('h').long("human-readable"))
    .arg(flag("si").long("si"))
    .arg(flag("k").short('k'))
    .arg(flag("m").short('m'))
    .arg(flag("bytes").short('b').long("bytes"))
    .arg(
        opt("block-size")
            .short('B')
            .long("block-size")
            .value_name("SIZE"),
    )
    .arg(flag("apparent-size").long("apparent-size"))
    .arg(
        opt("max-depth")
            .short('d')
            .long("max-depth")
            .value_name("N"),
    )
    .arg(flag("dereference").short('L').long("dereference"))
    .arg(flag("no-dereference").short('P').long("no-dereference"))
    .arg(flag("one-file-system").short('x').long("one-file-system"))
    .arg(flag("count-links").short('l').long("count-links"))
    .arg(flag("separate-dirs").short('S').long("separate-dirs"))
    .arg(flag("null").short('0').long("null"))
    .arg(opt("exclude").long("exclude").value_name("PATTERN"))
    .arg(flag("inodes").long("inodes"))
    .arg(
        clap::Arg::new("time")
            .long("time")
            .num_args(0..=1)
            .require_equals(true),
    )
    .arg(
        clap::Arg::new("files")
            .action(clap::ArgAction::Append)
            .num_args(0..)
            .value_parser(clap::value_parser!(OsString)),
    )
}

/// What `du` needs of an entry: its apparent size and whether it is a directory to descend
/// into (a symlink is not, unless followed).
#[derive(Clone, Copy)]
struct Size {
    len: u64,
    dir: bool,
}

/// A name's bytes as an `OsStr` (names are bytes on WASI and Unix alike).
fn os_str(bytes: &[u8]) -> &std::ffi::OsStr {
    #[cfg(unix)]
    use std::os::unix::ffi::OsStrExt;
    #[cfg(target_os = "wasi")]
    use std::os::wasi::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes)
}

/// How sizes are printed.
#[derive(Clone, Copy)]
enum Unit {
    Blocks(u64),
    Human(SizeFormat),
}

struct Du {
    all: bool,
    max_depth: Option<usize>,
    follow: bool,
    separate: bool,
    exclude: Vec<Glob>,
    unit: Unit,
    end: u8,
    out: Out,
    ok: bool,
}

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let m = match cli::parse(command(), args, 1) {
        Ok(m) => m,
        Err(code) => return code,
    };
    if m.get_flag("inodes") || m.contains_id("time") {
        cli::error("du", "--inodes and --time are not supported under WASI");
        return 1;
    }
    let unit = if m.get_flag("human") {
        Unit::Human(SizeFormat::Binary)
    } else if m.get_flag("si") {
        Unit::Human(SizeFormat::Decimal)
    } else if m.get_flag("bytes") {
        Unit::Blocks(1)
    } else if m.get_flag("m") {
        Unit::Blocks(1024 * 1024)
    } else if let Some(b) = last_str(&m, "block-size") {
        match uucore::parser::parse_size::parse_size_u64(&b)
            .ok()
            .filter(|n| *n > 0)
        {
            Some(n) => Unit::Blocks(n),
            None => {
                cli::error("du", format!("invalid -B argument '{b}'"));
                return 1;
            }
        }
    } else {
        Unit::Blocks(1024)
    };
    let max_depth = match last_str(&m, "max-depth") {
        Some(d) => match d.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                cli::error("du", format!("invalid maximum depth '{d}'"));
                return 1;
            }
        },
        None if m.get_flag("summarize") => Some(0),
        None => None,
    };
    let exclude: Result<Vec<Glob>, String> = all_os(&m, "exclude")
        .iter()
        .map(|p| Glob::new(&p.to_string_lossy(), false, false))
        .collect();
    let exclude = match exclude {
        Ok(e) => e,
        Err(e) => {
            cli::error("du", e);
            return 1;
        }
    };
    let mut du = Du {
        all: m.get_flag("all"),
        max_depth,
        follow: m.get_flag("dereference"),
        separate: m.get_flag("separate-dirs"),
        exclude,
        unit,
        end: if m.get_flag("null") { b'\0' } else { b'\n' },
        out: Out::new(),
        ok: true,
    };
    let mut files: Vec<PathBuf> = all_os(&m, "files").into_iter().map(PathBuf::from).collect();
    if files.is_empty() {
        files.push(PathBuf::from("."));
    }
    let mut grand = 0u64;
    for f in &files {
        match std::fs::symlink_metadata(f) {
            Ok(md) => {
                let md = if md.file_type().is_symlink() {
                    std::fs::metadata(f).unwrap_or(md)
                } else {
                    md
                };
                let size = Size {
                    len: md.len(),
                    dir: md.is_dir(),
                };
                grand += du.visit(f, size, 0);
            }
            Err(e) => {
                cli::error(
                    "du",
                    format!("cannot access '{}': {}", f.display(), cli::io_message(&e)),
                );
                du.ok = false;
            }
        }
    }
    if m.get_flag("total") {
        du.print(grand, Path::new("total"));
    }
    let wrote = du.out.finish("du");
    if du.ok && wrote { 0 } else { 1 }
}

impl Du {
    fn excluded(&self, path: &Path) -> bool {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        self.exclude
            .iter()
            .any(|g| g.is_match(&base) || g.is_match(&path.to_string_lossy()))
    }

    fn print(&mut self, bytes: u64, path: &Path) {
        let size = match self.unit {
            Unit::Blocks(b) => bytes.div_ceil(b).to_string(),
            Unit::Human(f) => human_readable(bytes, f),
        };
        let _ = write!(self.out, "{size}\t{}", path.display());
        let _ = self.out.write_all(&[self.end]);
    }

    /// The entries of directory `path` in name order, each with its size (or why there is
    /// none), excluded ones left out. Each entry is stat-ed by its name relative to the open
    /// directory (`fstatat`, following a symlink only with `-L`), which the host answers with
    /// one system call, not by a path walked from the workspace root again. The directory is
    /// closed before any entry is visited, so the descriptors in use do not grow with the
    /// depth.
    fn children(&mut self, path: &Path) -> Vec<(PathBuf, std::io::Result<Size>)> {
        let mut dir = match std::fs::File::open(path)
            .and_then(|f| rustix::fs::Dir::new(f).map_err(std::io::Error::from))
        {
            Ok(dir) => dir,
            Err(e) => {
                cli::error(
                    "du",
                    format!(
                        "cannot read directory '{}': {}",
                        path.display(),
                        cli::io_message(&e)
                    ),
                );
                self.ok = false;
                return Vec::new();
            }
        };
        let flags = if self.follow {
            rustix::fs::AtFlags::empty()
        } else {
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW
        };
        let mut entries = Vec::new();
        while let Some(Ok(entry)) = dir.read() {
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let child = path.join(os_str(name.to_bytes()));
            if self.excluded(&child) {
                continue;
            }
            let size = dir
                .fd()
                .and_then(|fd| rustix::fs::statat(fd, name, flags))
                .map(|st| Size {
                    len: u64::try_from(st.st_size).unwrap_or(0),
                    dir: rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::Directory,
                })
                .map_err(std::io::Error::from);
            entries.push((child, size));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// Returns the apparent size of `path` and everything below it, printing as it goes.
    fn visit(&mut self, path: &Path, size: Size, depth: usize) -> u64 {
        let shown = self.max_depth.is_none_or(|max| depth <= max);
        if !size.dir {
            if depth == 0 || (self.all && shown) {
                self.print(size.len, path);
            }
            return size.len;
        }
        let mut total = size.len;
        let mut below = 0;
        for (child, size) in self.children(path) {
            match size {
                Ok(size) => {
                    let bytes = self.visit(&child, size, depth + 1);
                    if size.dir && self.separate {
                        below += bytes;
                    } else {
                        total += bytes;
                    }
                }
                Err(e) => {
                    cli::error(
                        "du",
                        format!(
                            "cannot access '{}': {}",
                            child.display(),
                            cli::io_message(&e)
                        ),
                    );
                    self.ok = false;
                }
            }
        }
        if shown {
            self.print(total, path);
        }
        total + below
    }
}
