//! `xxd`: vim's xxd (2022-01-14): hex dumps (`-c -g -l -s -o -u -d -e -b -a`), plain (`-p`) and C
//! include (`-i -n -C`) styles, and `-r` / `-r -p` back to bytes, with xxd's own option syntax
//! (`-c8`, `-cols 8`, `-ps`) and messages. Exit status as xxd: 1 for usage, 2 for a file it
//! cannot open, 3 for a write error.
//!
//! Writes only the output file it is given (and only with `-r`, or an explicit outfile); must not
//! seek backwards on standard output (xxd refuses too).

mod dump;
mod revert;

use crate::cli;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Normal,
    Bits,
    Plain,
    Include,
}

pub struct Options {
    style: Style,
    little_endian: bool,
    revert: bool,
    upper: bool,
    capitalize: bool,
    autoskip: bool,
    decimal: bool,
    cols: Option<usize>,
    group: Option<usize>,
    len: Option<u64>,
    /// `-s`: (relative to the current position, from the end, value).
    seek: Option<(bool, bool, u64)>,
    offset: u64,
    name: Option<String>,
    files: Vec<OsString>,
}

const USAGE_TEXT: &str = "Usage:
       xxd [options] [infile [outfile]]
    or
       xxd -r [-s [-]offset] [-c cols] [-ps] [infile [outfile]]
Options:
    -a          toggle autoskip: A single '*' replaces nul-lines. Default off.
    -b          binary digit dump (incompatible with -ps,-i,-r). Default hex.
    -C          capitalize variable names in C include file style (-i).
    -c cols     format <cols> octets per line. Default 16 (-i: 12, -ps: 30).
    -E          show characters in EBCDIC. Default ASCII.
    -e          little-endian dump (incompatible with -ps,-i,-r).
    -g bytes    number of octets per group in normal output. Default 2 (-e: 4).
    -h          print this summary.
    -i          output in C include file style.
    -l len      stop after <len> octets.
    -n name     set the variable name used in C include output (-i).
    -o off      add <off> to the displayed file position.
    -ps         output in postscript plain hexdump style.
    -r          reverse operation: convert (or patch) hexdump into binary.
    -r -s off   revert with <off> added to file positions found in hexdump.
    -d          show offset in decimal instead of hex.
    -s [+][-]seek  start at <seek> bytes abs. (or +: rel.) infile offset.
    -u          use upper case hex letters.
    -v          show version: \"xxd 2022-01-14 by Juergen Weigert et al.\".";

fn usage() -> i32 {
    eprintln!("{USAGE_TEXT}");
    1
}

/// A number as C's `strtol(s, NULL, 0)` reads it: decimal, `0x` hex or `0` octal; the digits
/// that parse (none: 0).
fn number(s: &str) -> u64 {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    u64::from_str_radix(&digits[..end], radix).unwrap_or(0)
}

fn parse(args: &[OsString]) -> Result<Options, i32> {
    let mut o = Options {
        style: Style::Normal,
        little_endian: false,
        revert: false,
        upper: false,
        capitalize: false,
        autoskip: false,
        decimal: false,
        cols: None,
        group: None,
        len: None,
        seek: None,
        offset: 0,
        name: None,
        files: Vec::new(),
    };
    let mut i = 1;
    let mut options_done = false;
    while i < args.len() {
        let arg = args[i].to_string_lossy().into_owned();
        i += 1;
        if options_done || !arg.starts_with('-') || arg == "-" {
            o.files.push(args[i - 1].clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        // Options with a value: the value attached (`-c8`) or the next argument.
        let valued = [
            ("-c", "-cols"),
            ("-g", "-groupsize"),
            ("-l", "-len"),
            ("-s", "-skip"),
            ("-o", "-offset"),
            ("-n", "-name"),
        ];
        let mut value_of = None;
        for (short, long) in valued {
            if arg.starts_with(short) {
                let rest = if long.starts_with(&arg) && arg.len() > 2 {
                    ""
                } else {
                    &arg[2..]
                };
                let value = if rest.is_empty() {
                    match args.get(i) {
                        Some(v) => {
                            i += 1;
                            v.to_string_lossy().into_owned()
                        }
                        None => return Err(usage()),
                    }
                } else {
                    rest.to_owned()
                };
                value_of = Some((short, value));
                break;
            }
        }
        if let Some((short, value)) = value_of {
            match short {
                "-c" => o.cols = Some(usize::try_from(number(&value)).unwrap_or(usize::MAX)),
                "-g" => o.group = Some(usize::try_from(number(&value)).unwrap_or(usize::MAX)),
                "-l" => o.len = Some(number(&value)),
                "-o" => o.offset = number(&value),
                "-n" => o.name = Some(value),
                _ => {
                    let relative = value.starts_with('+');
                    let v = value.trim_start_matches('+');
                    let from_end = v.starts_with('-');
                    o.seek = Some((relative, from_end, number(v.trim_start_matches('-'))));
                }
            }
            continue;
        }
        match arg.as_str() {
            a if a.starts_with("-a") => o.autoskip = !o.autoskip,
            a if a.starts_with("-b") => o.style = Style::Bits,
            a if a.starts_with("-e") => o.little_endian = true,
            a if a.starts_with("-u") => o.upper = true,
            a if a.starts_with("-p") => o.style = Style::Plain,
            a if a.starts_with("-i") => o.style = Style::Include,
            a if a.starts_with("-C") => o.capitalize = true,
            a if a.starts_with("-d") => o.decimal = true,
            a if a.starts_with("-r") => o.revert = true,
            a if a.starts_with("-v") => {
                println!("xxd 2022-01-14 by Juergen Weigert et al.");
                return Err(0);
            }
            a if a.starts_with("-E") => {
                eprintln!("xxd: -E (EBCDIC) is not supported by runbox's xxd");
                return Err(1);
            }
            _ => return Err(usage()),
        }
    }
    if o.files.len() > 2 {
        return Err(usage());
    }
    Ok(o)
}

/// `xxd`.
pub fn main(args: Vec<OsString>) -> i32 {
    let o = match parse(&args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let input_name = o.files.first().filter(|f| *f != "-").cloned();
    let mut input: Box<dyn ReadSeek> = match &input_name {
        None => Box::new(Stdin(io::stdin())),
        Some(f) => match File::open(f) {
            Ok(file) => Box::new(file),
            Err(e) => {
                eprintln!("xxd: {}: {}", f.to_string_lossy(), cli::io_message(&e));
                return 2;
            }
        },
    };
    let output_file = o.files.get(1).filter(|f| *f != "-");
    let mut output = match output_file {
        None => Output::Stdout(io::BufWriter::with_capacity(64 * 1024, io::stdout())),
        Some(f) => {
            let mut open = OpenOptions::new();
            open.write(true).create(true);
            // xxd -r patches an existing output file in place; a dump truncates it.
            if !o.revert {
                open.truncate(true);
            }
            match open.open(f) {
                Ok(file) => Output::File(io::BufWriter::new(file)),
                Err(e) => {
                    eprintln!("xxd: {}: {}", f.to_string_lossy(), cli::io_message(&e));
                    return 3;
                }
            }
        }
    };
    let result = if o.revert {
        if o.style == Style::Bits || o.style == Style::Include || o.little_endian {
            // xxd exits with -1 (255), which WASI cannot: 125 (docs/commands.md).
            eprintln!("xxd: Sorry, cannot revert this type of hexdump");
            return 255;
        }
        revert::run(&o, &mut BufReader::new(input), &mut output)
    } else {
        dump::run(&o, &mut input, input_name.is_none(), &mut output)
    };
    let flushed = result.and_then(|code| output.flush().map(|()| code));
    match flushed {
        Ok(code) => code,
        Err(Failure::Message(m, code)) => {
            eprintln!("xxd: {m}");
            code
        }
        Err(Failure::Io(e)) => {
            eprintln!("xxd: {}", cli::io_message(&e));
            3
        }
    }
}

/// Why a run stopped.
pub enum Failure {
    Io(io::Error),
    Message(String, i32),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

pub trait ReadSeek: Read {
    fn seek_to(&mut self, pos: SeekFrom) -> io::Result<u64>;
}

impl ReadSeek for File {
    fn seek_to(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek(pos)
    }
}

struct Stdin(io::Stdin);

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl ReadSeek for Stdin {
    fn seek_to(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            // Forward on a pipe: read and drop.
            SeekFrom::Start(n) => io::copy(&mut (&mut self.0).take(n), &mut io::sink()),
            SeekFrom::Current(n @ 0..) => {
                let n = u64::try_from(n).unwrap_or(0);
                io::copy(&mut (&mut self.0).take(n), &mut io::sink())
            }
            _ => Err(io::Error::other("sorry cannot seek.")),
        }
    }
}

pub enum Output {
    Stdout(io::BufWriter<io::Stdout>),
    File(io::BufWriter<File>),
}

impl Output {
    fn flush(&mut self) -> Result<(), Failure> {
        match self {
            Output::Stdout(w) => w.flush()?,
            Output::File(w) => w.flush()?,
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File(w) => w.flush(),
        }
    }
}
