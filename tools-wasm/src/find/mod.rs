//! `find`: a GNU find subset on walkdir and regex (uutils findutils needs a C compiler for
//! oniguruma, so it is not used).
//!
//! [`parse`] builds the expression, [`expr`] evaluates it, [`printf`] handles `-printf`; this
//! file walks the starting points. Entries are visited in name order (GNU find uses directory
//! order), so output is stable. With `-L`, walkdir does not enter a link back to a directory being
//! walked (or above the starting point): GNU's "File system loop detected" message. Exit status:
//! 0, or 1 if any file could not be read or a loop was met.

mod expr;
mod parse;
mod printf;

use crate::cli::{self, Out};
use expr::{LazyMetadata, Visit};
use parse::{Command, Follow};
use std::ffi::OsString;
use std::io::Write;
use std::time::SystemTime;

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args
        .first()
        .is_some_and(|a| a == "--help" || a == "--version")
    {
        let text = if args[0] == "--help" {
            "Usage: find [-H] [-L] [-P] [starting-point...] [expression]\n\
             Tests: -name -iname -path -ipath -regex -iregex -regextype -lname -type -size -empty\n\
             \x20      -newer -mtime -mmin -atime -amin -true -false\n\
             Actions: -print -print0 -printf -prune -quit\n\
             Options: -maxdepth -mindepth -depth -follow\n\
             Operators: ( ) ! -not -a -and -o -or ,\n"
        } else {
            concat!("find (runbox-tools) ", env!("CARGO_PKG_VERSION"), "\n")
        };
        print!("{text}");
        return 0;
    }
    let cmd = match parse::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            cli::error("find", e);
            return 1;
        }
    };
    let mut out = Out::new();
    let ok = run(&cmd, &mut out);
    if !out.finish("find") {
        return 1;
    }
    if ok { 0 } else { 1 }
}

/// Walks every starting point; false if anything could not be read.
fn run(cmd: &Command, out: &mut Out) -> bool {
    let now = SystemTime::now();
    let mut ok = true;
    for root in &cmd.roots {
        let mut walker = walkdir::WalkDir::new(root)
            .follow_links(cmd.follow == Follow::Always)
            .follow_root_links(cmd.follow != Follow::Never)
            .contents_first(cmd.depth_first)
            .min_depth(cmd.min_depth)
            .sort_by_file_name();
        if let Some(max) = cmd.max_depth {
            walker = walker.max_depth(max);
        }
        let mut it = walker.into_iter();
        while let Some(entry) = it.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    ok = false;
                    let path = e.path().unwrap_or(root).to_path_buf();
                    match (e.io_error(), e.loop_ancestor()) {
                        (Some(io), _) => cli::error(
                            "find",
                            format!("'{}': {}", path.display(), cli::io_message(io)),
                        ),
                        // A link back to a directory being walked: GNU's wording, not entered.
                        (None, ancestor) => cli::error(
                            "find",
                            format!(
                                "File system loop detected; '{}' is part of the same file system loop as '{}'.",
                                path.display(),
                                ancestor.unwrap_or(root).display()
                            ),
                        ),
                    }
                    continue;
                }
            };
            let mut visit = Visit {
                path: entry.path(),
                root,
                depth: entry.depth(),
                file_type: Some(entry.file_type()),
                metadata: LazyMetadata::of(&entry),
                is_symlink: entry.file_type().is_symlink(),
                now,
                prune: false,
                quit: false,
            };
            if let Err(e) = cmd.expr.eval(&mut visit, out) {
                if out.failed().is_some() {
                    return false;
                }
                ok = false;
                cli::error(
                    "find",
                    format!("'{}': {}", entry.path().display(), cli::io_message(&e)),
                );
            }
            if visit.quit {
                return ok;
            }
            if visit.prune && !cmd.depth_first && entry.file_type().is_dir() {
                it.skip_current_dir();
            }
        }
    }
    let _ = out.flush();
    ok
}
