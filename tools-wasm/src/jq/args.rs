//! jq's command line, parsed by hand because `--args`/`--jsonargs` change the meaning of the
//! operands that follow them, which clap cannot express.

use std::ffi::OsString;

/// The validated command line.
#[derive(Debug, Default)]
pub struct Args {
    pub filter: String,
    /// Where the filter came from, for error messages.
    pub filter_name: String,
    pub files: Vec<OsString>,
    pub raw_output: bool,
    pub join_output: bool,
    pub ascii: bool,
    pub compact: bool,
    pub tab: bool,
    pub indent: usize,
    pub sort_keys: bool,
    pub null_input: bool,
    pub raw_input: bool,
    pub slurp: bool,
    pub exit_status: bool,
    /// `--arg`, `--argjson`, `--slurpfile`, `--rawfile`: name and value source.
    pub named: Vec<(String, Named)>,
    /// `--args` / `--jsonargs` operands.
    pub positional: Vec<Named>,
}

/// Where a named or positional argument's value comes from.
#[derive(Debug, Clone)]
pub enum Named {
    /// A string.
    Text(String),
    /// JSON text to parse.
    Json(String),
    /// A file whose JSON values become an array.
    SlurpFile(OsString),
    /// A file whose contents become a string.
    RawFile(OsString),
}

/// What to do instead of running.
pub enum Early {
    /// Print this and exit 0.
    Print(String),
    /// A usage error (exit 2).
    Usage(String),
}

pub const HELP: &str = "Usage: jq [OPTION]... FILTER [FILE]...\n\
    Options: -r -j -a -c -n -s -R -e -S --tab --indent N -f FILE\n\
    \x20        --arg NAME VALUE --argjson NAME JSON --slurpfile NAME FILE --rawfile NAME FILE\n\
    \x20        --args --jsonargs (remaining operands become $ARGS.positional)\n\
    The filter language is jq's, as implemented by jaq.\n";

/// Parses the arguments after `argv[0]`.
pub fn parse(argv: &[OsString]) -> Result<Args, Early> {
    let mut a = Args {
        indent: 2,
        ..Args::default()
    };
    let mut filter: Option<String> = None;
    let mut from_file: Option<OsString> = None;
    let mut rest_mode: Option<bool> = None; // Some(false) = --args, Some(true) = --jsonargs
    let mut only_operands = false;
    let mut i = 0;
    let text = |i: usize| -> Result<String, Early> {
        argv.get(i)
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Early::Usage(format!(
                    "{} takes a parameter",
                    argv[i - 1].to_string_lossy()
                ))
            })
    };
    while i < argv.len() {
        let arg = argv[i].to_string_lossy().into_owned();
        i += 1;
        if only_operands || !arg.starts_with('-') || arg == "-" {
            if filter.is_none() && from_file.is_none() {
                filter = Some(arg);
            } else {
                match rest_mode {
                    None => a.files.push(argv[i - 1].clone()),
                    Some(false) => a.positional.push(Named::Text(arg)),
                    Some(true) => a.positional.push(Named::Json(arg)),
                }
            }
            continue;
        }
        match arg.as_str() {
            "--" => only_operands = true,
            "--help" | "-h" => return Err(Early::Print(HELP.into())),
            "--version" => {
                return Err(Early::Print(
                    concat!("jq (jaq ", "3.1", "; runbox-tools)\n").into(),
                ));
            }
            "--raw-output" => a.raw_output = true,
            "--join-output" => {
                a.raw_output = true;
                a.join_output = true;
            }
            "--ascii-output" => a.ascii = true,
            "--compact-output" => a.compact = true,
            "--tab" => a.tab = true,
            "--indent" => {
                let v = text(i)?;
                i += 1;
                a.indent =
                    v.parse().ok().filter(|n| *n <= 7).ok_or_else(|| {
                        Early::Usage("Cannot indent more than 7 characters".into())
                    })?;
            }
            "--sort-keys" => a.sort_keys = true,
            "--null-input" => a.null_input = true,
            "--raw-input" => a.raw_input = true,
            "--slurp" => a.slurp = true,
            "--exit-status" => a.exit_status = true,
            "--color-output" | "--monochrome-output" => {}
            "--from-file" => {
                from_file = Some(
                    argv.get(i)
                        .cloned()
                        .ok_or_else(|| Early::Usage("-f takes a parameter".into()))?,
                );
                i += 1;
            }
            "--arg" | "--argjson" | "--slurpfile" | "--rawfile" => {
                let (name, value) = (text(i)?, text(i + 1)?);
                let source = match arg.as_str() {
                    "--arg" => Named::Text(value),
                    "--argjson" => Named::Json(value),
                    "--slurpfile" => Named::SlurpFile(argv[i + 1].clone()),
                    _ => Named::RawFile(argv[i + 1].clone()),
                };
                i += 2;
                a.named.push((name, source));
            }
            "--args" => rest_mode = Some(false),
            "--jsonargs" => rest_mode = Some(true),
            "--stream" | "--seq" | "--stream-errors" | "-L" => {
                return Err(Early::Usage(format!("{arg} is not supported by this jq")));
            }
            long if long.starts_with("--") => {
                return Err(Early::Usage(format!("Unknown option: {long}")));
            }
            short => {
                for c in short.chars().skip(1) {
                    match c {
                        'r' => a.raw_output = true,
                        'j' => {
                            a.raw_output = true;
                            a.join_output = true;
                        }
                        'a' => a.ascii = true,
                        'c' => a.compact = true,
                        'S' => a.sort_keys = true,
                        'n' => a.null_input = true,
                        'R' => a.raw_input = true,
                        's' => a.slurp = true,
                        'e' => a.exit_status = true,
                        'C' | 'M' => {}
                        'h' => return Err(Early::Print(HELP.into())),
                        'f' => {
                            from_file = Some(
                                argv.get(i)
                                    .cloned()
                                    .ok_or_else(|| Early::Usage("-f takes a parameter".into()))?,
                            );
                            i += 1;
                        }
                        other => return Err(Early::Usage(format!("Unknown option: -{other}"))),
                    }
                }
            }
        }
    }
    match (from_file, filter) {
        (Some(path), first) => {
            a.filter = std::fs::read_to_string(&path).map_err(|e| {
                Early::Usage(format!(
                    "Could not open {}: {}",
                    path.to_string_lossy(),
                    crate::cli::io_message(&e)
                ))
            })?;
            a.filter_name = path.to_string_lossy().into_owned();
            // With -f, the first operand is a file, not the filter.
            if let Some(first) = first {
                a.files.insert(0, OsString::from(first));
            }
        }
        (None, Some(f)) => {
            a.filter = f;
            a.filter_name = "<top-level>".into();
        }
        (None, None) => return Err(Early::Usage(HELP.into())),
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::{Early, Named, parse};
    use std::ffi::OsString;

    fn p(args: &[&str]) -> super::Args {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        match parse(&v) {
            Ok(a) => a,
            Err(Early::Print(s) | Early::Usage(s)) => panic!("{s}"),
        }
    }

    #[test]
    fn filter_files_and_flags() {
        let a = p(&["-rc", ".a", "x.json", "y.json"]);
        assert_eq!(a.filter, ".a");
        assert_eq!(a.files.len(), 2);
        assert!(a.raw_output && a.compact);
    }

    #[test]
    fn named_and_positional() {
        let a = p(&[
            "--arg",
            "x",
            "1",
            "--argjson",
            "y",
            "{}",
            "-n",
            "$x",
            "--args",
            "a",
            "b",
        ]);
        assert_eq!(a.named.len(), 2);
        assert!(matches!(a.named[1].1, Named::Json(_)));
        assert_eq!(a.positional.len(), 2);
        assert!(a.files.is_empty());
    }

    #[test]
    fn errors() {
        let v: Vec<OsString> = ["--arg", "x"].iter().map(OsString::from).collect();
        assert!(matches!(parse(&v), Err(Early::Usage(_))));
        let v: Vec<OsString> = ["--stream", "."].iter().map(OsString::from).collect();
        assert!(matches!(parse(&v), Err(Early::Usage(_))));
    }
}
