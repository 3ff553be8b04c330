//! `gzip`, `gunzip` and `zcat`: GNU gzip 1.12's command line over [`codec`] (flate2, pure Rust).
//!
//! `gunzip` is `gzip -d` and `zcat` is `gzip -dc`, as GNU's wrappers. Options: `-c -d -f -k -l
//! -n -N -q -r -S SUF -t -v -1..-9 --fast --best`; exit status 0, 1 on an error, 2 on a warning
//! only (an existing output, a name that already has the suffix, a directory without `-r`,
//! trailing garbage). Files are compressed to `NAME.gz` next to them (mtime copied, the input
//! removed unless `-k` or `-c`); with no file, or `-`, standard input goes to standard output.
//!
//! What WASI cannot do is refused or said, never pretended: modes and owners are not copied to
//! the output (WASI has none to read or set); `--rsyncable` is refused (flate2 has no such
//! mode), and `-l -v` (the method, CRC and date columns) is refused. Compressed bytes differ from
//! GNU's (another deflate encoder); what decompresses from them is the same. Must not write
//! outside the paths it is given (plus their `.gz`/stripped twins) and must not follow a
//! symbolic link it is asked to compress unless `-f`.

mod codec;
mod files;

use crate::cli;
use std::ffi::OsString;

/// Exit codes, as GNU gzip.
pub const ERROR: i32 = 1;
pub const WARNING: i32 = 2;

/// What one invocation does, from its command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The name messages start with (`gzip`: GNU's wrappers exec gzip itself).
    pub decompress: bool,
    pub to_stdout: bool,
    pub force: bool,
    pub keep: bool,
    pub list: bool,
    pub test: bool,
    pub save_name: bool,
    pub restore_name: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub recursive: bool,
    pub suffix: String,
    pub level: u32,
    pub files: Vec<OsString>,
}

/// `gzip`.
pub fn gzip(args: Vec<OsString>) -> i32 {
    run(args, false, false)
}

/// `gunzip`: `gzip -d`.
pub fn gunzip(args: Vec<OsString>) -> i32 {
    run(args, true, false)
}

/// `zcat`: `gzip -dc`.
pub fn zcat(args: Vec<OsString>) -> i32 {
    run(args, true, true)
}

fn run(args: Vec<OsString>, decompress: bool, to_stdout: bool) -> i32 {
    let options = match parse(args, decompress, to_stdout) {
        Ok(o) => o,
        Err(code) => return code,
    };
    files::run(&options)
}

fn command() -> clap::Command {
    let mut cmd = cli::command(
        "gzip",
        "Compress or uncompress FILEs (by default, compress FILES in-place).",
    )
    .arg(
        cli::flag("stdout")
            .short('c')
            .long("stdout")
            .visible_alias("to-stdout"),
    )
    .arg(
        cli::flag("decompress")
            .short('d')
            .long("decompress")
            .visible_alias("uncompress"),
    )
    .arg(cli::flag("force").short('f').long("force"))
    .arg(cli::flag("keep").short('k').long("keep"))
    .arg(cli::flag("list").short('l').long("list"))
    .arg(
        cli::flag("no-name")
            .short('n')
            .long("no-name")
            .overrides_with("name"),
    )
    .arg(
        cli::flag("name")
            .short('N')
            .long("name")
            .overrides_with("no-name"),
    )
    .arg(cli::flag("quiet").short('q').long("quiet"))
    .arg(cli::flag("recursive").short('r').long("recursive"))
    .arg(cli::opt("suffix").short('S').long("suffix"))
    .arg(cli::flag("test").short('t').long("test"))
    .arg(
        cli::flag("verbose")
            .short('v')
            .long("verbose")
            .action(clap::ArgAction::Count),
    )
    .arg(cli::flag("fast").long("fast"))
    .arg(cli::flag("best").long("best"))
    .arg(cli::flag("rsyncable").long("rsyncable"))
    .arg(cli::flag("synchronous").long("synchronous"))
    .arg(cli::flag("ascii").short('a').long("ascii"))
    .arg(
        clap::Arg::new("files")
            .num_args(0..)
            .action(clap::ArgAction::Append)
            .value_parser(clap::value_parser!(OsString)),
    );
    for (id, short) in LEVELS {
        cmd = cmd.arg(cli::flag(id).short(short));
    }
    cmd
}

const LEVELS: [(&str, char); 9] = [
    ("1", '1'),
    ("2", '2'),
    ("3", '3'),
    ("4", '4'),
    ("5", '5'),
    ("6", '6'),
    ("7", '7'),
    ("8", '8'),
    ("9", '9'),
];

fn parse(args: Vec<OsString>, decompress: bool, to_stdout: bool) -> Result<Options, i32> {
    let m = cli::parse(command(), args.clone(), ERROR)?;
    if m.get_flag("rsyncable") {
        cli::error(
            "gzip",
            "--rsyncable is not supported: flate2 has no rsync-friendly mode",
        );
        return Err(ERROR);
    }
    let list = m.get_flag("list");
    let verbose = m.get_count("verbose") > 0;
    if list && verbose {
        cli::error(
            "gzip",
            "--list --verbose is not supported (the method, CRC and date columns); use -l alone",
        );
        return Err(ERROR);
    }
    let suffix = cli::last_str(&m, "suffix").unwrap_or_else(|| ".gz".to_owned());
    if suffix.is_empty() || suffix.contains('/') {
        cli::error("gzip", format!("invalid suffix '{suffix}'"));
        return Err(ERROR);
    }
    Ok(Options {
        decompress: decompress || m.get_flag("decompress") || m.get_flag("test") || list,
        to_stdout: to_stdout || m.get_flag("stdout") || m.get_flag("test"),
        force: m.get_flag("force"),
        keep: m.get_flag("keep"),
        list,
        test: m.get_flag("test"),
        save_name: !m.get_flag("no-name"),
        restore_name: m.get_flag("name"),
        quiet: m.get_flag("quiet"),
        verbose,
        recursive: m.get_flag("recursive"),
        suffix,
        level: level(&args),
        files: cli::all_os(&m, "files"),
    })
}

/// The compression level: the last of `-1`..`-9`, `--fast` (1), `--best` (9) on the command
/// line, 6 if none. Read from the raw arguments because the last one wins wherever it is
/// (`-9c`, `-c9`, `--fast -5`).
fn level(args: &[OsString]) -> u32 {
    let mut level = 6;
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { continue };
        match arg {
            "--" => break,
            "--fast" => level = 1,
            "--best" => level = 9,
            _ if arg.starts_with('-') && !arg.starts_with("--") => {
                for c in arg.chars().skip(1) {
                    if let Some(d) = c.to_digit(10).filter(|d| (1..=9).contains(d)) {
                        level = d;
                    }
                    if c == 'S' {
                        // The rest of this argument is the suffix.
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    level
}

#[cfg(test)]
mod tests {
    use super::{level, parse};
    use std::ffi::OsString;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_last_level_wins() {
        assert_eq!(level(&args(&["gzip", "f"])), 6);
        assert_eq!(level(&args(&["gzip", "-9c", "f"])), 9);
        assert_eq!(level(&args(&["gzip", "--fast", "-3", "f"])), 3);
        assert_eq!(level(&args(&["gzip", "-1", "--best"])), 9);
        assert_eq!(level(&args(&["gzip", "-S9", "f"])), 6);
    }

    #[test]
    fn wrappers_and_flags_combine() {
        let o = parse(args(&["zcat", "a.gz"]), true, true).unwrap();
        assert!(o.decompress && o.to_stdout);
        let o = parse(args(&["gzip", "-dkf", "a.gz"]), false, false).unwrap();
        assert!(o.decompress && o.keep && o.force && !o.to_stdout);
        let o = parse(args(&["gzip", "-t", "a.gz"]), false, false).unwrap();
        assert!(o.test && o.decompress);
    }

    #[test]
    fn what_cannot_be_done_is_refused() {
        assert!(parse(args(&["gzip", "--rsyncable", "a"]), false, false).is_err());
        assert!(parse(args(&["gzip", "-lv", "a.gz"]), false, false).is_err());
        assert!(parse(args(&["gzip", "-S", "", "a"]), false, false).is_err());
    }
}
