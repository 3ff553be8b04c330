//! `diff`: GNU diff's command line over the uutils diffutils library (`diffutilslib`), which
//! formats normal, unified (`-u`), context (`-c`), ed (`-e`) and side-by-side (`-y`) output.
//! This front end adds what the library lacks: directories and `-r`, `-N`, `--label`, binary
//! files, and GNU's "Only in" / "Common subdirectories" reports ([`compare`]); GNU's forms of
//! the library's output ([`gnu_form`], [`ed`]).
//!
//! Options that change how lines are compared (`-i -w -b -B -I ...`) are refused: the library
//! cannot honour them, and silently ignoring them would report differences the user excluded.
//! Exit status: 0 same, 1 different, 2 trouble.

mod compare;
mod ed;
mod gnu_form;

use crate::cli::{self, flag, last_str, opt};
use clap::{Arg, ArgAction, ArgMatches};
use diffutilslib::params::Format;
use std::ffi::OsString;
use std::path::PathBuf;

/// The validated command line.
#[derive(Debug)]
pub struct Options {
    pub format: Format,
    pub context: usize,
    pub brief: bool,
    pub report_identical: bool,
    pub recursive: bool,
    pub new_file: bool,
    pub text: bool,
    pub expand_tabs: bool,
    pub tabsize: usize,
    pub width: usize,
    pub labels: Vec<String>,
    /// The options as typed, for the `diff -r ... a/x b/x` lines between files.
    pub switches: String,
}

/// Options that change line comparison, which the library does not support.
const REFUSED: &[(&str, char, &str)] = &[
    ("ignore-case", 'i', "--ignore-case"),
    ("ignore-all-space", 'w', "--ignore-all-space"),
    ("ignore-space-change", 'b', "--ignore-space-change"),
    ("ignore-blank-lines", 'B', "--ignore-blank-lines"),
    ("ignore-tab-expansion", 'E', "--ignore-tab-expansion"),
    ("ignore-trailing-space", 'Z', "--ignore-trailing-space"),
    ("strip-trailing-cr", '\0', "--strip-trailing-cr"),
    ("minimal", 'd', "--minimal"),
    ("show-c-function", 'p', "--show-c-function"),
];

fn command() -> clap::Command {
    let mut cmd = cli::command("diff", "Compare FILES line by line.")
        .override_usage("diff [OPTION]... FILES")
        .args_override_self(true)
        .arg(flag("normal").long("normal"))
        .arg(flag("u").short('u'))
        .arg(opt("U").short('U').value_name("NUM"))
        .arg(
            Arg::new("unified")
                .long("unified")
                .num_args(0..=1)
                .require_equals(true)
                .action(ArgAction::Append)
                .value_name("NUM"),
        )
        .arg(flag("c").short('c'))
        .arg(opt("C").short('C').value_name("NUM"))
        .arg(
            Arg::new("context")
                .long("context")
                .num_args(0..=1)
                .require_equals(true)
                .action(ArgAction::Append)
                .value_name("NUM"),
        )
        .arg(flag("ed").short('e').long("ed"))
        .arg(flag("side").short('y').long("side-by-side"))
        .arg(opt("width").short('W').long("width").value_name("NUM"))
        .arg(flag("brief").short('q').long("brief"))
        .arg(flag("identical").short('s').long("report-identical-files"))
        .arg(flag("recursive").short('r').long("recursive"))
        .arg(flag("new-file").short('N').long("new-file"))
        .arg(flag("text").short('a').long("text"))
        .arg(flag("expand-tabs").short('t').long("expand-tabs"))
        .arg(opt("tabsize").long("tabsize").value_name("NUM"))
        .arg(opt("label").long("label").value_name("LABEL"))
        .arg(
            Arg::new("color")
                .long("color")
                .num_args(0..=1)
                .require_equals(true)
                .action(ArgAction::Append),
        )
        .arg(
            Arg::new("files")
                .action(ArgAction::Append)
                .num_args(0..)
                .value_parser(clap::value_parser!(OsString)),
        );
    for (id, short, long) in REFUSED {
        let mut a = flag(id).long(&long[2..]).hide(true);
        if *short != '\0' {
            a = a.short(*short);
        }
        cmd = cmd.arg(a);
    }
    cmd
}

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let switches = switches_as_typed(&args);
    let m = match cli::parse(command(), args, 2) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let (options, files) = match options(&m, switches) {
        Ok(x) => x,
        Err(e) => {
            cli::error("diff", e);
            return 2;
        }
    };
    compare::run(&options, &files[0], &files[1])
}

/// `-r -u` as typed: every argument before the operands that starts with `-`.
fn switches_as_typed(args: &[OsString]) -> String {
    let mut out = String::new();
    for a in args.iter().skip(1) {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            out.push(' ');
            out.push_str(&a);
        }
    }
    out
}

fn number(text: &str, what: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("invalid {what} '{text}'"))
}

fn options(m: &ArgMatches, switches: String) -> Result<(Options, [PathBuf; 2]), String> {
    for (id, _, long) in REFUSED {
        if m.get_flag(id) {
            return Err(format!("{long} is not supported by this diff"));
        }
    }
    let files: Vec<PathBuf> = m
        .get_many::<OsString>("files")
        .map(|v| v.map(PathBuf::from).collect())
        .unwrap_or_default();
    let [from, to]: [PathBuf; 2] = files.try_into().map_err(|f: Vec<PathBuf>| match f.len() {
        0 => "missing operand".to_owned(),
        1 => format!("missing operand after '{}'", f[0].display()),
        _ => format!("extra operand '{}'", f[2].display()),
    })?;
    let unified = m.get_flag("u") || m.contains_id("U") || m.contains_id("unified");
    let context_fmt = m.get_flag("c") || m.contains_id("C") || m.contains_id("context");
    let styles = [
        unified,
        context_fmt,
        m.get_flag("ed"),
        m.get_flag("side"),
        m.get_flag("normal"),
    ];
    if styles.iter().filter(|s| **s).count() > 1 {
        return Err("conflicting output style options".into());
    }
    let format = if unified {
        Format::Unified
    } else if context_fmt {
        Format::Context
    } else if m.get_flag("ed") {
        Format::Ed
    } else if m.get_flag("side") {
        Format::SideBySide
    } else {
        Format::Normal
    };
    let optional = |id: &str| {
        m.get_many::<String>(id)
            .and_then(|mut v| v.next_back().cloned())
    };
    let context = match last_str(m, "U")
        .or(last_str(m, "C"))
        .or(optional("unified"))
        .or(optional("context"))
    {
        Some(n) => number(&n, "context length")?,
        None => 3,
    };
    let labels: Vec<String> = crate::cli::all_os(m, "label")
        .iter()
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    if labels.len() > 2 {
        return Err("too many file label options".into());
    }
    Ok((
        Options {
            format,
            context,
            brief: m.get_flag("brief"),
            report_identical: m.get_flag("identical"),
            recursive: m.get_flag("recursive"),
            new_file: m.get_flag("new-file"),
            text: m.get_flag("text"),
            expand_tabs: m.get_flag("expand-tabs"),
            tabsize: last_str(m, "tabsize")
                .map(|t| number(&t, "tabsize"))
                .transpose()?
                .unwrap_or(8),
            width: last_str(m, "width")
                .map(|t| number(&t, "width"))
                .transpose()?
                .unwrap_or(130),
            labels,
            switches,
        },
        [from, to],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Result<Options, String> {
        let mut v = vec![OsString::from("diff")];
        v.extend(args.iter().map(OsString::from));
        let switches = switches_as_typed(&v);
        let m = cli::parse(command(), v, 2).map_err(|c| format!("exit {c}"))?;
        options(&m, switches).map(|(o, _)| o)
    }

    #[test]
    fn styles_and_context() {
        let o = opts(&["-u", "a", "b"]).unwrap();
        assert_eq!((o.format, o.context), (Format::Unified, 3));
        let o = opts(&["-U", "1", "a", "b"]).unwrap();
        assert_eq!((o.format, o.context), (Format::Unified, 1));
        let o = opts(&["--unified=5", "a", "b"]).unwrap();
        assert_eq!(o.context, 5);
        let o = opts(&["-C2", "a", "b"]).unwrap();
        assert_eq!((o.format, o.context), (Format::Context, 2));
        assert_eq!(opts(&["a", "b"]).unwrap().format, Format::Normal);
        assert!(opts(&["-u", "-e", "a", "b"]).is_err());
    }

    #[test]
    fn switches_are_kept_as_typed() {
        assert_eq!(opts(&["-r", "-u", "a", "b"]).unwrap().switches, " -r -u");
        assert_eq!(opts(&["-ru", "a", "b"]).unwrap().switches, " -ru");
    }

    #[test]
    fn unsupported_and_operands() {
        assert!(
            opts(&["-w", "a", "b"])
                .unwrap_err()
                .contains("not supported")
        );
        assert!(opts(&["a"]).unwrap_err().contains("missing operand"));
        assert!(
            opts(&["a", "b", "c"])
                .unwrap_err()
                .contains("extra operand")
        );
    }
}
