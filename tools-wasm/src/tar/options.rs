//! GNU tar's command line: old-style bundled letters (`czf out.tgz`), clusters of short options
//! (`-xvzf a.tgz`), long options with `=` or a separate value and unique abbreviations
//! (`--strip=1`), `--` and operands with `-C DIR` among them.
//!
//! Parsing only: nothing here opens a file. Options runbox cannot honour are refused with a
//! message naming them, never accepted and ignored (except those whose effect WASI makes moot:
//! `-o`, `-p`, `--no-same-owner`, `--no-same-permissions`, `--same-permissions`).

use super::{FAILURE, USAGE, usage};
use std::ffi::OsString;

/// What the invocation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    List,
    Extract,
}

/// An operand in command-line order: a name, or a `-C DIR` between names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Name(OsString),
    Directory(OsString),
}

/// An owner or group to record: the name (empty: none) and the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub name: String,
    pub number: u64,
}

/// One invocation's settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// `-f`: `None` or `-` means standard input/output.
    pub file: Option<OsString>,
    pub gzip: bool,
    pub verbose: u32,
    pub to_stdout: bool,
    pub keep_old: bool,
    pub touch: bool,
    pub strip: usize,
    pub sort_name: bool,
    pub owner: Option<Id>,
    pub group: Option<Id>,
    pub numeric_owner: bool,
    pub operands: Vec<Operand>,
}

/// Long options: name, whether it takes a value, the short letter it stands for (or a
/// long-only key).
const LONG: &[(&str, bool, char)] = &[
    ("create", false, 'c'),
    ("list", false, 't'),
    ("extract", false, 'x'),
    ("get", false, 'x'),
    ("file", true, 'f'),
    ("directory", true, 'C'),
    ("gzip", false, 'z'),
    ("gunzip", false, 'z'),
    ("ungzip", false, 'z'),
    ("verbose", false, 'v'),
    ("to-stdout", false, 'O'),
    ("keep-old-files", false, 'k'),
    ("touch", false, 'm'),
    ("no-same-owner", false, 'o'),
    ("same-permissions", false, 'p'),
    ("preserve-permissions", false, 'p'),
    ("no-same-permissions", false, '\u{1}'),
    ("strip-components", true, '\u{2}'),
    ("sort", true, '\u{3}'),
    ("owner", true, '\u{4}'),
    ("group", true, '\u{5}'),
    ("numeric-owner", false, '\u{6}'),
    ("bzip2", false, 'j'),
    ("xz", false, 'J'),
    ("zstd", false, '\u{7}'),
    ("help", false, '\u{8}'),
];

/// Short options that take a value.
const SHORT_WITH_VALUE: &[char] = &['f', 'C'];
/// Short options without one.
const SHORT_FLAGS: &[char] = &['c', 't', 'x', 'z', 'v', 'O', 'k', 'm', 'o', 'p', 'j', 'J'];

struct Builder {
    modes: Vec<Mode>,
    o: Options,
}

/// Parses `args` (with `argv[0]`); a usage error is printed and its exit code returned.
pub fn parse(args: &[OsString]) -> Result<Options, i32> {
    let mut b = Builder {
        modes: Vec::new(),
        o: Options {
            mode: Mode::List,
            file: None,
            gzip: false,
            verbose: 0,
            to_stdout: false,
            keep_old: false,
            touch: false,
            strip: 0,
            sort_name: false,
            owner: None,
            group: None,
            numeric_owner: false,
            operands: Vec::new(),
        },
    };
    let mut rest: std::collections::VecDeque<OsString> = args.iter().skip(1).cloned().collect();
    // Old style: a first argument without a dash is a bundle of letters whose values follow.
    if let Some(first) = rest.front().and_then(|a| a.to_str())
        && !first.starts_with('-')
        && !first.is_empty()
    {
        let letters: Vec<char> = first.chars().collect();
        rest.pop_front();
        for c in letters {
            let value = if SHORT_WITH_VALUE.contains(&c) {
                match rest.pop_front() {
                    Some(v) => Some(v),
                    None => {
                        return Err(usage(
                            format!("option requires an argument -- '{c}'"),
                            USAGE,
                        ));
                    }
                }
            } else {
                None
            };
            b.short(c, value)?;
        }
    }
    let mut only_operands = false;
    while let Some(arg) = rest.pop_front() {
        let text = arg.to_string_lossy().into_owned();
        if only_operands || text == "-" || !text.starts_with('-') {
            b.o.operands.push(Operand::Name(arg));
        } else if text == "--" {
            only_operands = true;
        } else if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(OsString::from(v))),
                None => (long, None),
            };
            let (full, takes, key) = lookup_long(name, &text)?;
            let value = match (takes, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => match rest.pop_front() {
                    Some(v) => Some(v),
                    None => {
                        return Err(usage(
                            format!("option '--{full}' requires an argument"),
                            USAGE,
                        ));
                    }
                },
                (false, Some(_)) => {
                    return Err(usage(
                        format!("option '--{full}' doesn't allow an argument"),
                        USAGE,
                    ));
                }
                (false, None) => None,
            };
            b.short(key, value)?;
        } else {
            let chars: Vec<char> = text.chars().skip(1).collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                if SHORT_WITH_VALUE.contains(&c) {
                    let attached: String = chars[i + 1..].iter().collect();
                    let value = if !attached.is_empty() {
                        OsString::from(attached)
                    } else {
                        match rest.pop_front() {
                            Some(v) => v,
                            None => {
                                return Err(usage(
                                    format!("option requires an argument -- '{c}'"),
                                    USAGE,
                                ));
                            }
                        }
                    };
                    b.short(c, Some(value))?;
                    break;
                }
                if !SHORT_FLAGS.contains(&c) {
                    return Err(usage(format!("invalid option -- '{c}'"), USAGE));
                }
                b.short(c, None)?;
                i += 1;
            }
        }
    }
    b.finish()
}

fn lookup_long(name: &str, text: &str) -> Result<(&'static str, bool, char), i32> {
    if let Some(exact) = LONG.iter().find(|(n, _, _)| *n == name) {
        return Ok(*exact);
    }
    let matches: Vec<_> = LONG
        .iter()
        .filter(|(n, _, _)| !name.is_empty() && n.starts_with(name))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [first, ..] if matches.iter().all(|(_, _, k)| *k == first.2) => Ok(**first),
        [] => Err(usage(format!("unrecognized option '{text}'"), USAGE)),
        _ => Err(usage(format!("option '{text}' is ambiguous"), USAGE)),
    }
}

impl Builder {
    fn short(&mut self, c: char, value: Option<OsString>) -> Result<(), i32> {
        let o = &mut self.o;
        let text = || {
            value
                .clone()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        match c {
            'c' => self.modes.push(Mode::Create),
            't' => self.modes.push(Mode::List),
            'x' => self.modes.push(Mode::Extract),
            'f' => o.file = value,
            'C' => o
                .operands
                .push(Operand::Directory(value.unwrap_or_default())),
            'z' => o.gzip = true,
            'v' => o.verbose += 1,
            'O' => o.to_stdout = true,
            'k' => o.keep_old = true,
            'm' => o.touch = true,
            // Owners and modes cannot be set under WASI: asking not to is already satisfied.
            'o' | 'p' | '\u{1}' => {}
            '\u{2}' => {
                o.strip = text().parse().map_err(|_| {
                    usage(format!("Invalid number of elements: '{}'", text()), FAILURE)
                })?;
            }
            '\u{3}' => match text().as_str() {
                "name" => o.sort_name = true,
                "none" => o.sort_name = false,
                other => {
                    return Err(usage(
                        format!(
                            "invalid argument '{other}' for '--sort'\nValid arguments are:\n  - 'none'\n  - 'name'"
                        ),
                        USAGE,
                    ));
                }
            },
            '\u{4}' => o.owner = Some(id(&text(), "owner")?),
            '\u{5}' => o.group = Some(id(&text(), "group")?),
            '\u{6}' => o.numeric_owner = true,
            'j' | 'J' | '\u{7}' => {
                return Err(usage(
                    "only gzip compression (-z) is available in runbox's tar",
                    FAILURE,
                ));
            }
            '\u{8}' => {
                println!("Usage: tar [OPTION...] [FILE]...\n{}", HELP);
                return Err(0);
            }
            _ => return Err(usage(format!("invalid option -- '{c}'"), USAGE)),
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Options, i32> {
        self.modes.dedup();
        match self.modes.as_slice() {
            [] => Err(usage(
                "You must specify one of the '-Acdtrux', '--delete' or '--test-label' options",
                FAILURE,
            )),
            [m] => {
                self.o.mode = *m;
                Ok(self.o)
            }
            _ => Err(usage(
                "You may not specify more than one '-Acdtrux', '--delete' or  '--test-label' option",
                FAILURE,
            )),
        }
    }
}

/// `--owner`/`--group`: `NAME:NUMBER`, `+NUMBER` or `NUMBER` (no name), or `root` (0). Other
/// bare names are refused: the guest has no user database to look them up in.
fn id(text: &str, what: &str) -> Result<Id, i32> {
    let number = |s: &str| s.parse::<u64>().ok().filter(|n| *n < 0o7777777);
    let parsed = if let Some((name, n)) = text.split_once(':') {
        number(n).map(|n| Id {
            name: name.to_owned(),
            number: n,
        })
    } else if let Some(n) = number(text.strip_prefix('+').unwrap_or(text)) {
        Some(Id {
            name: String::new(),
            number: n,
        })
    } else if text == "root" {
        Some(Id {
            name: "root".to_owned(),
            number: 0,
        })
    } else {
        None
    };
    parsed.ok_or_else(|| {
        usage(
            format!(
                "'{text}': Invalid {what} (runbox has no user database: give NAME:NUMBER or NUMBER)"
            ),
            FAILURE,
        )
    })
}

const HELP: &str = "GNU tar's options as runbox implements them:
  -c, --create             create a new archive
  -t, --list               list the contents of an archive
  -x, --extract, --get     extract files from an archive
  -f, --file=ARCHIVE       use archive file ARCHIVE (- or none: standard input/output)
  -z, --gzip               filter the archive through gzip
  -v, --verbose            list files processed
  -C, --directory=DIR      change to directory DIR
  -O, --to-stdout          extract files to standard output
  -k, --keep-old-files     don't replace existing files when extracting
  -m, --touch              don't extract file modified time
      --strip-components=NUMBER  strip NUMBER leading components from file names
      --sort=ORDER         directory sorting order: none (default) or name
      --owner=NAME[:UID], --group=NAME[:GID], --numeric-owner";

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Options, i32> {
        let args: Vec<OsString> = std::iter::once("tar")
            .chain(v.iter().copied())
            .map(OsString::from)
            .collect();
        parse(&args)
    }

    #[test]
    fn old_style_letters_take_values_in_order() {
        let o = p(&["czf", "out.tgz", "dir"]).unwrap();
        assert_eq!(o.mode, Mode::Create);
        assert!(o.gzip);
        assert_eq!(o.file, Some(OsString::from("out.tgz")));
        assert_eq!(o.operands, vec![Operand::Name("dir".into())]);
    }

    #[test]
    fn clusters_long_options_and_abbreviations() {
        let o = p(&["-xvzfa.tgz", "--strip=1", "-C", "out", "--", "-n"]).unwrap();
        assert_eq!(o.mode, Mode::Extract);
        assert_eq!(o.file, Some(OsString::from("a.tgz")));
        assert_eq!(o.strip, 1);
        assert_eq!(o.verbose, 1);
        assert_eq!(
            o.operands,
            vec![Operand::Directory("out".into()), Operand::Name("-n".into())]
        );
    }

    #[test]
    fn usage_errors_have_gnus_codes() {
        assert_eq!(p(&[]).unwrap_err(), FAILURE);
        assert_eq!(p(&["-ct"]).unwrap_err(), FAILURE);
        assert_eq!(p(&["--frobnicate"]).unwrap_err(), USAGE);
        assert_eq!(p(&["-Q"]).unwrap_err(), USAGE);
        assert_eq!(p(&["-tjf", "a"]).unwrap_err(), FAILURE);
        assert_eq!(p(&["-tf"]).unwrap_err(), USAGE);
    }

    #[test]
    fn owners() {
        let o = p(&["-c", "--owner=root", "--group=staff:50", "x"]).unwrap();
        assert_eq!(o.owner.unwrap().number, 0);
        assert_eq!(o.group.unwrap().name, "staff");
        assert!(p(&["-c", "--owner=alice", "x"]).is_err());
    }
}
