//! `stat`: file status from `std::fs` metadata, in GNU stat's layouts (default, `-t`, `-c`,
//! `--printf`). uutils' stat does not build for WASI.
//!
//! Honest output: WASI gives the type, size, access and modification times, and a third time
//! (`ctim`) that wasmtime fills with the host's creation time, shown as `Birth` (`-` when
//! unknown). Mode, owner, group, inode, device, link count, blocks and change time are printed
//! as `?`, never guessed. `-f` (file system status) is refused.

use crate::cli::{self, Out, all_os, flag, last_str, opt};
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use uucore::time::{FormatSystemTimeFallback, format_system_time};

fn command() -> clap::Command {
    cli::command("stat", "Display file status.")
        .override_usage("stat [OPTION]... FILE...")
        .args_override_self(true)
        .arg(flag("dereference").short('L').long("dereference"))
        .arg(flag("file-system").short('f').long("file-system"))
        .arg(opt("format").short('c').long("format").value_name("FORMAT"))
        .arg(opt("printf").long("printf").value_name("FORMAT"))
        .arg(flag("terse").short('t').long("terse"))
        .arg(
            clap::Arg::new("files")
                .action(clap::ArgAction::Append)
                .num_args(0..)
                .value_parser(clap::value_parser!(OsString)),
        )
}

const DEFAULT_TERSE: &str = "%n %s %b %f %u %g %D %i %h %t %T %X %Y %Z %W %o";

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let m = match cli::parse(command(), args, 1) {
        Ok(m) => m,
        Err(code) => return code,
    };
    if m.get_flag("file-system") {
        cli::error("stat", "-f: file system status is not available under WASI");
        return 1;
    }
    let files = all_os(&m, "files");
    if files.is_empty() {
        cli::error(
            "stat",
            "missing operand\nTry 'stat --help' for more information.",
        );
        return 1;
    }
    let (format, newline, escapes) = match (last_str(&m, "printf"), last_str(&m, "format")) {
        (Some(p), _) => (Some(p), false, true),
        (None, Some(c)) => (Some(c), true, false),
        _ if m.get_flag("terse") => (Some(DEFAULT_TERSE.to_owned()), true, false),
        _ => (None, true, false),
    };
    let mut out = Out::new();
    let mut status = 0;
    for file in &files {
        let path = Path::new(file);
        let md = if m.get_flag("dereference") {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        };
        let md = match md {
            Ok(md) => md,
            Err(e) => {
                cli::error(
                    "stat",
                    format!("cannot stat '{}': {}", path.display(), cli::io_message(&e)),
                );
                status = 1;
                continue;
            }
        };
        let text = match &format {
            Some(f) => {
                let f = if escapes { unescape(f) } else { f.clone() };
                render(&f, path, &md)
            }
            None => default_layout(path, &md),
        };
        let _ = out.write_all(text.as_bytes());
        if newline {
            let _ = out.write_all(b"\n");
        }
    }
    if !out.finish("stat") {
        return 1;
    }
    status
}

fn file_type(md: &Metadata) -> &'static str {
    let ft = md.file_type();
    if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        if md.len() == 0 {
            "regular empty file"
        } else {
            "regular file"
        }
    } else {
        "unknown"
    }
}

/// The birth time. Under WASI it comes from the `ctim` field, which wasmtime fills with the
/// host's creation time, or 0 when the host has none (then it is unknown, not 1970).
fn birth(md: &Metadata) -> Option<SystemTime> {
    md.created().ok().filter(|t| *t != UNIX_EPOCH)
}

fn human_time(t: Option<SystemTime>) -> String {
    let Some(t) = t else { return "?".into() };
    let mut buf = Vec::new();
    match format_system_time(
        &mut buf,
        t,
        "%Y-%m-%d %H:%M:%S.%N %z",
        FormatSystemTimeFallback::Float,
    ) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => "?".into(),
    }
}

fn epoch(t: Option<SystemTime>) -> String {
    match t.map(|t| t.duration_since(UNIX_EPOCH)) {
        Some(Ok(d)) => d.as_secs().to_string(),
        Some(Err(e)) => format!("-{}", e.duration().as_secs()),
        None => "?".into(),
    }
}

fn name_with_target(path: &Path, md: &Metadata, quoted: bool) -> String {
    let q = |s: &str| {
        if quoted {
            format!("'{s}'")
        } else {
            s.to_owned()
        }
    };
    let name = q(&path.display().to_string());
    if md.file_type().is_symlink()
        && let Ok(target) = std::fs::read_link(path)
    {
        return format!("{name} -> {}", q(&target.display().to_string()));
    }
    name
}

fn default_layout(path: &Path, md: &Metadata) -> String {
    let birth = birth(md)
        .map(|t| human_time(Some(t)))
        .unwrap_or_else(|| "-".into());
    format!(
        "  File: {}\n  Size: {:<10}\tBlocks: {:<10} IO Block: {:<6} {}\n\
         Device: ?\tInode: ?           Links: ?\n\
         Access: (?/?)  Uid: (?/?)   Gid: (?/?)\n\
         Access: {}\nModify: {}\nChange: ?\n Birth: {}",
        name_with_target(path, md, false),
        md.len(),
        "?",
        "?",
        file_type(md),
        human_time(md.accessed().ok()),
        human_time(md.modified().ok()),
        birth
    )
}

/// Expands the `%` directives of `format` for one file.
fn render(format: &str, path: &Path, md: &Metadata) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags and width, as printf: `%-10s`, `%5n`.
        let mut spec = String::new();
        while let Some(&f) = chars.peek().filter(|f| "-+ #0123456789.'".contains(**f)) {
            spec.push(f);
            chars.next();
        }
        let Some(d) = chars.next() else {
            out.push('%');
            out.push_str(&spec);
            break;
        };
        let value = match d {
            '%' => "%".into(),
            'n' => path.display().to_string(),
            'N' => name_with_target(path, md, true),
            's' => md.len().to_string(),
            'F' => file_type(md).into(),
            'B' => "512".into(),
            'x' => human_time(md.accessed().ok()),
            'X' => epoch(md.accessed().ok()),
            'y' => human_time(md.modified().ok()),
            'Y' => epoch(md.modified().ok()),
            'w' => birth(md)
                .map(|t| human_time(Some(t)))
                .unwrap_or_else(|| "-".into()),
            'W' => birth(md)
                .map(|t| epoch(Some(t)))
                .unwrap_or_else(|| "0".into()),
            'a' | 'A' | 'b' | 'C' | 'd' | 'D' | 'f' | 'g' | 'G' | 'h' | 'i' | 'm' | 'o' | 'r'
            | 'R' | 't' | 'T' | 'u' | 'U' | 'z' | 'Z' => "?".into(),
            other => format!("%{spec}{other}"),
        };
        out.push_str(&pad(&spec, &value));
    }
    out
}

/// Applies a printf-style `-`/width to a value.
fn pad(spec: &str, value: &str) -> String {
    let left = spec.contains('-');
    let width: usize = spec
        .trim_start_matches(|c: char| !c.is_ascii_digit() || c == '0')
        .split('.')
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    if left {
        format!("{value:<width$}")
    } else {
        format!("{value:>width$}")
    }
}

/// Backslash escapes for `--printf`.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('0') => out.push('\0'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{pad, render, unescape};
    use std::path::Path;

    #[test]
    fn directives_and_unknowns() {
        let dir = std::env::temp_dir();
        let md = std::fs::metadata(&dir).unwrap();
        let text = render("%F|%a|%U|%h|%i|%%", &dir, &md);
        assert_eq!(text, "directory|?|?|?|?|%");
        assert_eq!(render("%n", Path::new("x"), &md), "x");
    }

    #[test]
    fn padding_and_escapes() {
        assert_eq!(pad("-5", "ab"), "ab   ");
        assert_eq!(pad("5", "ab"), "   ab");
        assert_eq!(unescape("a\\tb\\n"), "a\tb\n");
    }
}
