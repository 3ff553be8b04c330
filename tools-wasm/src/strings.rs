//! `strings`: GNU binutils 2.40 `strings` over whole files (its default, `-a`): runs of at least
//! `-n` (4) printable characters — ASCII graphic, space and tab; with `-w` all whitespace; with
//! `-e S` bytes above 127 too — each followed by a newline or `-s SEP`, with `-f` file names and
//! `-t d|o|x` / `-o` offsets. Exit 1 when a file cannot be read.
//!
//! Reads only the files it is given; holds at most `-n` bytes of a run in memory (the rest of a
//! long run is written as it is read). Object-file section selection (`-d`, `-T`) and the
//! 16/32-bit encodings are refused, not approximated.

use crate::cli::{self, Out};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};

#[derive(Clone, Copy)]
enum Radix {
    Octal,
    Decimal,
    Hex,
}

struct Options {
    min: usize,
    radix: Option<Radix>,
    names: bool,
    whitespace: bool,
    eight_bit: bool,
    separator: Vec<u8>,
    files: Vec<OsString>,
}

fn command() -> clap::Command {
    cli::command(
        "strings",
        "Display printable strings in [file(s)] (stdin by default)",
    )
    .arg(cli::flag("all").short('a').long("all"))
    .arg(cli::flag("data").short('d').long("data"))
    .arg(
        cli::flag("print-file-name")
            .short('f')
            .long("print-file-name"),
    )
    .arg(cli::opt("bytes").short('n').long("bytes"))
    .arg(cli::opt("radix").short('t').long("radix"))
    .arg(cli::flag("octal").short('o'))
    .arg(cli::opt("encoding").short('e').long("encoding"))
    .arg(
        cli::flag("include-all-whitespace")
            .short('w')
            .long("include-all-whitespace"),
    )
    .arg(
        cli::opt("output-separator")
            .short('s')
            .long("output-separator"),
    )
    .arg(cli::opt("target").short('T').long("target"))
    .arg(cli::opt("unicode").short('U').long("unicode"))
    .arg(
        clap::Arg::new("files")
            .num_args(0..)
            .action(clap::ArgAction::Append)
            .value_parser(clap::value_parser!(OsString)),
    )
}

/// binutils' `-NUMBER` means `-n NUMBER`; clap does not know that form.
fn expand_digit_options(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut options_done = false;
    for (i, a) in args.into_iter().enumerate() {
        let s = a.to_string_lossy();
        if i > 0 && !options_done && s.len() > 1 && s.starts_with('-') {
            if s == "--" {
                options_done = true;
            } else if s[1..].bytes().all(|b| b.is_ascii_digit()) {
                out.push(OsString::from("-n"));
                out.push(OsString::from(&s[1..]));
                continue;
            }
        }
        out.push(a);
    }
    out
}

fn refuse(message: impl std::fmt::Display) -> i32 {
    cli::error("strings", message);
    1
}

fn parse(args: Vec<OsString>) -> Result<Options, i32> {
    let m = cli::parse(command(), expand_digit_options(args), 1)?;
    if m.get_flag("data") || m.contains_id("target") || m.contains_id("unicode") {
        return Err(refuse(
            "-d, -T and -U need an object-file reader, which runbox's strings does not have",
        ));
    }
    let min = match cli::last_str(&m, "bytes") {
        None => 4,
        Some(n) => match n.parse::<usize>() {
            Ok(v) if v > 0 => v,
            _ => return Err(refuse(format!("invalid minimum string length {n}"))),
        },
    };
    let mut radix = m.get_flag("octal").then_some(Radix::Octal);
    if let Some(r) = cli::last_str(&m, "radix") {
        radix = Some(match r.as_str() {
            "o" => Radix::Octal,
            "d" => Radix::Decimal,
            "x" => Radix::Hex,
            _ => return Err(refuse(format!("invalid radix: {r}"))),
        });
    }
    let eight_bit = match cli::last_str(&m, "encoding").as_deref() {
        None | Some("s") => false,
        Some("S") => true,
        Some(e) => {
            return Err(refuse(format!(
                "encoding {e} (16 or 32-bit characters) is not supported by runbox's strings"
            )));
        }
    };
    Ok(Options {
        min,
        radix,
        names: m.get_flag("print-file-name"),
        whitespace: m.get_flag("include-all-whitespace"),
        eight_bit,
        separator: cli::last_str(&m, "output-separator")
            .map_or_else(|| b"\n".to_vec(), String::into_bytes),
        files: cli::all_os(&m, "files"),
    })
}

/// `strings`.
pub fn main(args: Vec<OsString>) -> i32 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut out = Out::new();
    let mut code = 0;
    if o.files.is_empty() {
        let name = b"{standard input}";
        if let Err(e) = scan(&o, name, &mut io::stdin().lock(), &mut out) {
            cli::error("strings", cli::io_message(&e));
            code = 1;
        }
    }
    for f in &o.files {
        let name = f.to_string_lossy();
        let opened = File::open(f).and_then(|file| {
            if file.metadata()?.is_dir() {
                Err(io::Error::new(io::ErrorKind::IsADirectory, "directory"))
            } else {
                Ok(file)
            }
        });
        match opened {
            Ok(mut file) => {
                if let Err(e) = scan(&o, name.as_bytes(), &mut file, &mut out) {
                    if out.failed().is_some() {
                        break;
                    }
                    cli::error("strings", format!("{name}: {}", cli::io_message(&e)));
                    code = 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
                cli::error("strings", format!("Warning: '{name}' is a directory"));
                code = 1;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                cli::error("strings", format!("'{name}': No such file"));
                code = 1;
            }
            Err(e) => {
                cli::error("strings", format!("{name}: {}", cli::io_message(&e)));
                code = 1;
            }
        }
        if out.failed().is_some() {
            break;
        }
    }
    if !out.finish("strings") {
        return 1;
    }
    code
}

fn printable(o: &Options, b: u8) -> bool {
    b == b'\t'
        || (0x20..0x7f).contains(&b)
        || (o.eight_bit && b > 127)
        || (o.whitespace && matches!(b, b'\n' | b'\x0b' | b'\x0c' | b'\r'))
}

/// Scans one input, writing its strings.
fn scan(o: &Options, name: &[u8], input: &mut impl Read, out: &mut Out) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    // The run being collected (up to `min` bytes), where it started, and whether it is already
    // being written.
    let mut run: Vec<u8> = Vec::with_capacity(o.min.min(4096));
    let mut start = 0u64;
    let mut writing = false;
    let mut offset = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            if printable(o, b) {
                if writing {
                    out.write_all(&[b])?;
                } else {
                    if run.is_empty() {
                        start = offset;
                    }
                    run.push(b);
                    if run.len() >= o.min {
                        prefix(o, name, start, out)?;
                        out.write_all(&run)?;
                        run.clear();
                        writing = true;
                    }
                }
            } else {
                if writing {
                    out.write_all(&o.separator)?;
                    writing = false;
                }
                run.clear();
            }
            offset += 1;
        }
    }
    if writing {
        out.write_all(&o.separator)?;
    }
    Ok(())
}

fn prefix(o: &Options, name: &[u8], start: u64, out: &mut Out) -> io::Result<()> {
    if o.names {
        out.write_all(name)?;
        out.write_all(b": ")?;
    }
    match o.radix {
        None => Ok(()),
        Some(Radix::Octal) => write!(out, "{start:7o} "),
        Some(Radix::Decimal) => write!(out, "{start:7} "),
        Some(Radix::Hex) => write!(out, "{start:7x} "),
    }
}
