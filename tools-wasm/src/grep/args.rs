//! grep's command line: the clap definition and its conversion into a validated [`Config`].
//!
//! GNU specifics handled here: `-NUM` means `-C NUM`; `-E/-F/-G/-P` and `-c/-l/-L/-q` are
//! "last one wins"; patterns come from every `-e` and `-f`, else from the first operand; a
//! pattern containing newlines is several patterns.

use crate::cli::{self, all_os, flag, last_str, opt};
use clap::{Arg, ArgAction, ArgMatches};
use std::ffi::OsString;
use std::path::PathBuf;

/// How patterns are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `-G`, the default.
    Basic,
    /// `-E`.
    Extended,
    /// `-F`.
    Fixed,
    /// `-P`: Rust regex syntax, which covers the common Perl constructs but not look-around.
    Perl,
}

/// What is printed for each file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Matching lines (or parts with `-o`), with context.
    Lines,
    /// `-c`.
    Count,
    /// `-l`.
    FilesWithMatches,
    /// `-L`.
    FilesWithoutMatch,
    /// `-q`.
    Quiet,
}

/// `--binary-files`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// Report "binary file matches" instead of lines (the default).
    Report,
    /// `-a`: treat as text.
    Text,
    /// `-I`: a binary file never matches.
    WithoutMatch,
}

/// `-d ACTION` for directory operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directories {
    /// Report "Is a directory".
    Read,
    /// Skip silently.
    Skip,
    /// Like `-r`.
    Recurse,
}

/// The validated command line.
#[derive(Debug)]
pub struct Config {
    pub patterns: Vec<String>,
    pub dialect: Dialect,
    pub ignore_case: bool,
    pub word: bool,
    pub line: bool,
    pub invert: bool,
    pub mode: Mode,
    pub only_matching: bool,
    pub no_messages: bool,
    pub line_number: bool,
    pub byte_offset: bool,
    /// `Some(true)` for `-H`, `Some(false)` for `-h`, `None` to decide from the operands.
    pub with_filename: Option<bool>,
    pub label: String,
    pub recursive: bool,
    pub dereference: bool,
    pub before: usize,
    pub after: usize,
    pub max_count: Option<u64>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub exclude_dir: Vec<String>,
    pub binary: Binary,
    pub directories: Directories,
    pub null: bool,
    pub null_data: bool,
    pub files: Vec<PathBuf>,
}

fn command() -> clap::Command {
    let num = |id: &'static str| opt(id).value_name("NUM");
    cli::command("grep", "Search for PATTERNS in each FILE.")
        .override_usage("grep [OPTION]... PATTERNS [FILE]...")
        .args_override_self(true)
        .arg(
            opt("regexp")
                .short('e')
                .long("regexp")
                .value_name("PATTERNS")
                .allow_hyphen_values(true),
        )
        .arg(opt("file").short('f').long("file").value_name("FILE"))
        .arg(
            flag("extended")
                .short('E')
                .long("extended-regexp")
                .overrides_with_all(["fixed", "basic", "perl"]),
        )
        .arg(
            flag("fixed")
                .short('F')
                .long("fixed-strings")
                .overrides_with_all(["extended", "basic", "perl"]),
        )
        .arg(
            flag("basic")
                .short('G')
                .long("basic-regexp")
                .overrides_with_all(["extended", "fixed", "perl"]),
        )
        .arg(
            flag("perl")
                .short('P')
                .long("perl-regexp")
                .overrides_with_all(["extended", "fixed", "basic"]),
        )
        .arg(
            flag("ignore-case")
                .short('i')
                .short_alias('y')
                .long("ignore-case")
                .overrides_with("no-ignore-case"),
        )
        .arg(
            flag("no-ignore-case")
                .long("no-ignore-case")
                .overrides_with("ignore-case"),
        )
        .arg(flag("word").short('w').long("word-regexp"))
        .arg(flag("line").short('x').long("line-regexp"))
        .arg(flag("invert").short('v').long("invert-match"))
        .arg(
            flag("count")
                .short('c')
                .long("count")
                .overrides_with_all(["files-with-matches", "files-without-match"]),
        )
        .arg(
            flag("files-with-matches")
                .short('l')
                .long("files-with-matches")
                .overrides_with_all(["count", "files-without-match"]),
        )
        .arg(
            flag("files-without-match")
                .short('L')
                .long("files-without-match")
                .overrides_with_all(["count", "files-with-matches"]),
        )
        .arg(flag("only-matching").short('o').long("only-matching"))
        .arg(
            flag("quiet")
                .short('q')
                .long("quiet")
                .visible_alias("silent"),
        )
        .arg(flag("no-messages").short('s').long("no-messages"))
        .arg(flag("line-number").short('n').long("line-number"))
        .arg(flag("no-line-number").long("no-line-number"))
        .arg(flag("byte-offset").short('b').long("byte-offset"))
        .arg(
            flag("with-filename")
                .short('H')
                .long("with-filename")
                .overrides_with("no-filename"),
        )
        .arg(
            flag("no-filename")
                .short('h')
                .long("no-filename")
                .overrides_with("with-filename"),
        )
        .arg(opt("label").long("label").value_name("LABEL"))
        .arg(flag("recursive").short('r').long("recursive"))
        .arg(
            flag("dereference-recursive")
                .short('R')
                .long("dereference-recursive"),
        )
        .arg(num("after").short('A').long("after-context"))
        .arg(num("before").short('B').long("before-context"))
        .arg(num("context").short('C').long("context"))
        .arg(num("max-count").short('m').long("max-count"))
        .arg(opt("include").long("include").value_name("GLOB"))
        .arg(opt("exclude").long("exclude").value_name("GLOB"))
        .arg(opt("exclude-dir").long("exclude-dir").value_name("GLOB"))
        .arg(flag("text").short('a').long("text"))
        .arg(flag("binary-without-match").short('I'))
        .arg(opt("binary-files").long("binary-files").value_name("TYPE"))
        .arg(
            opt("directories")
                .short('d')
                .long("directories")
                .value_name("ACTION"),
        )
        .arg(
            opt("devices")
                .short('D')
                .long("devices")
                .value_name("ACTION"),
        )
        .arg(flag("null").short('Z').long("null"))
        .arg(flag("null-data").short('z').long("null-data"))
        .arg(flag("initial-tab").short('T').long("initial-tab"))
        .arg(
            Arg::new("color")
                .long("color")
                .alias("colour")
                .num_args(0..=1)
                .require_equals(true)
                .action(ArgAction::Append)
                .value_name("WHEN"),
        )
        .arg(flag("binary").short('U').long("binary"))
        .arg(flag("line-buffered").long("line-buffered"))
        .arg(flag("version-short").short('V').action(ArgAction::Version))
        .arg(
            Arg::new("operands")
                .action(ArgAction::Append)
                .num_args(0..)
                .value_parser(clap::value_parser!(OsString))
                .trailing_var_arg(false),
        )
}

/// GNU's `-NUM`: rewrite it as `-C NUM` before clap sees it.
fn expand_context_shorthand(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_dashdash = false;
    let mut takes_value = false;
    for (i, a) in args.into_iter().enumerate() {
        let s = a.to_str().unwrap_or("");
        if i > 0
            && !after_dashdash
            && !takes_value
            && s.len() > 1
            && s.starts_with('-')
            && s[1..].bytes().all(|b| b.is_ascii_digit())
        {
            out.push(OsString::from("-C"));
            out.push(OsString::from(&s[1..]));
            continue;
        }
        if s == "--" {
            after_dashdash = true;
        }
        // Options whose value is the next argument (so `-e -5` keeps its `-5`).
        takes_value = matches!(s, "-e" | "-f" | "-A" | "-B" | "-C" | "-m" | "-d" | "-D")
            || (s.starts_with("--")
                && !s.contains('=')
                && matches!(
                    s,
                    "--regexp"
                        | "--file"
                        | "--after-context"
                        | "--before-context"
                        | "--context"
                        | "--max-count"
                        | "--include"
                        | "--exclude"
                        | "--exclude-dir"
                        | "--label"
                        | "--binary-files"
                        | "--directories"
                        | "--devices"
                ));
        out.push(a);
    }
    out
}

fn number(m: &ArgMatches, id: &str, what: &str) -> Result<Option<u64>, String> {
    match last_str(m, id) {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{s}: invalid {what} argument")),
    }
}

/// Parses the command line. `Err(code)` means "exit now with this code" (help, version, or a
/// usage error already reported).
pub fn parse(args: Vec<OsString>) -> Result<Config, i32> {
    let m = cli::parse(command(), expand_context_shorthand(args), 2)?;
    from_matches(&m).map_err(|e| {
        cli::error("grep", e);
        2
    })
}

fn from_matches(m: &ArgMatches) -> Result<Config, String> {
    let mut operands = all_os(m, "operands").into_iter();
    let mut patterns: Vec<String> = Vec::new();
    let explicit = m.contains_id("regexp") || m.contains_id("file");
    for p in all_os(m, "regexp") {
        patterns.extend(p.to_string_lossy().split('\n').map(str::to_owned));
    }
    for f in all_os(m, "file") {
        let text = if f == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
        } else {
            std::fs::read_to_string(&f)
        }
        .map_err(|e| format!("{}: {}", PathBuf::from(&f).display(), cli::io_message(&e)))?;
        // One pattern per line; an empty file gives none (and so matches nothing).
        if !text.is_empty() {
            let body = text.strip_suffix('\n').unwrap_or(&text);
            patterns.extend(body.split('\n').map(str::to_owned));
        }
    }
    if !explicit {
        let Some(p) = operands.next() else {
            return Err("no pattern given\nUsage: grep [OPTION]... PATTERNS [FILE]...".into());
        };
        patterns.extend(p.to_string_lossy().split('\n').map(str::to_owned));
    }
    let dialect = if m.get_flag("extended") {
        Dialect::Extended
    } else if m.get_flag("fixed") {
        Dialect::Fixed
    } else if m.get_flag("perl") {
        Dialect::Perl
    } else {
        Dialect::Basic
    };
    let mode = if m.get_flag("quiet") {
        Mode::Quiet
    } else if m.get_flag("count") {
        Mode::Count
    } else if m.get_flag("files-with-matches") {
        Mode::FilesWithMatches
    } else if m.get_flag("files-without-match") {
        Mode::FilesWithoutMatch
    } else {
        Mode::Lines
    };
    let context = number(m, "context", "context length")?;
    let before = number(m, "before", "context length")?
        .or(context)
        .unwrap_or(0);
    let after = number(m, "after", "context length")?
        .or(context)
        .unwrap_or(0);
    let binary = match last_str(m, "binary-files").as_deref() {
        _ if m.get_flag("text") => Binary::Text,
        _ if m.get_flag("binary-without-match") => Binary::WithoutMatch,
        None | Some("binary") => Binary::Report,
        Some("text") => Binary::Text,
        Some("without-match") => Binary::WithoutMatch,
        Some(other) => return Err(format!("invalid argument '{other}' for '--binary-files'")),
    };
    let mut directories = match last_str(m, "directories").as_deref() {
        None | Some("read") => Directories::Read,
        Some("skip") => Directories::Skip,
        Some("recurse") => Directories::Recurse,
        Some(other) => return Err(format!("invalid argument '{other}' for '--directories'")),
    };
    let dereference = m.get_flag("dereference-recursive");
    let recursive = m.get_flag("recursive") || dereference || directories == Directories::Recurse;
    if recursive {
        directories = Directories::Recurse;
    }
    let to_strings = |id: &str| -> Vec<String> {
        all_os(m, id)
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    };
    Ok(Config {
        patterns,
        dialect,
        ignore_case: m.get_flag("ignore-case"),
        word: m.get_flag("word"),
        line: m.get_flag("line"),
        invert: m.get_flag("invert"),
        mode,
        only_matching: m.get_flag("only-matching"),
        no_messages: m.get_flag("no-messages"),
        line_number: m.get_flag("line-number") && !m.get_flag("no-line-number"),
        byte_offset: m.get_flag("byte-offset"),
        with_filename: if m.get_flag("with-filename") {
            Some(true)
        } else if m.get_flag("no-filename") {
            Some(false)
        } else {
            None
        },
        label: last_str(m, "label").unwrap_or_else(|| "(standard input)".into()),
        recursive,
        dereference,
        before: usize::try_from(before).unwrap_or(usize::MAX),
        after: usize::try_from(after).unwrap_or(usize::MAX),
        max_count: number(m, "max-count", "max count")?,
        include: to_strings("include"),
        exclude: to_strings("exclude"),
        exclude_dir: to_strings("exclude-dir"),
        binary,
        directories,
        null: m.get_flag("null"),
        null_data: m.get_flag("null-data"),
        files: operands.map(PathBuf::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Config {
        let mut v = vec![OsString::from("grep")];
        v.extend(args.iter().map(OsString::from));
        parse(v).unwrap_or_else(|code| panic!("exit {code}"))
    }

    #[test]
    fn first_operand_is_the_pattern() {
        let c = cfg(&["-in", "foo", "a", "b"]);
        assert_eq!(c.patterns, ["foo"]);
        assert_eq!(c.files, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(c.ignore_case && c.line_number);
    }

    #[test]
    fn e_patterns_leave_operands_as_files() {
        let c = cfg(&["-e", "a", "-e", "-b", "f"]);
        assert_eq!(c.patterns, ["a", "-b"]);
        assert_eq!(c.files, [PathBuf::from("f")]);
    }

    #[test]
    fn last_dialect_wins() {
        assert_eq!(cfg(&["-E", "-F", "x"]).dialect, Dialect::Fixed);
        assert_eq!(cfg(&["-F", "-E", "x"]).dialect, Dialect::Extended);
        assert_eq!(cfg(&["x"]).dialect, Dialect::Basic);
    }

    #[test]
    fn context_forms() {
        let c = cfg(&["-2", "x"]);
        assert_eq!((c.before, c.after), (2, 2));
        let c = cfg(&["-C1", "-A3", "x"]);
        assert_eq!((c.before, c.after), (1, 3));
        let c = cfg(&["--context=4", "x"]);
        assert_eq!((c.before, c.after), (4, 4));
        let c = cfg(&["-e", "-5"]);
        assert_eq!(c.patterns, ["-5"]);
    }

    #[test]
    fn modes_and_recursion() {
        assert_eq!(cfg(&["-c", "-l", "x"]).mode, Mode::FilesWithMatches);
        assert_eq!(cfg(&["-q", "-c", "x"]).mode, Mode::Quiet);
        assert!(cfg(&["-R", "x"]).dereference);
        assert_eq!(cfg(&["-r", "x"]).directories, Directories::Recurse);
        assert_eq!(cfg(&["-h", "x"]).with_filename, Some(false));
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        let v: Vec<OsString> = ["grep", "-A", "x", "p"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(parse(v).err(), Some(2));
    }
}
