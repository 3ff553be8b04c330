//! `rev`: reverses each line of its files (or standard input) character by character, as
//! util-linux `rev` does; `-0`/`--zero` uses NUL as the line terminator.
//!
//! A line is reversed by Unicode scalar values when it is valid UTF-8; bytes that are not part
//! of a valid UTF-8 sequence are kept and reversed one by one (util-linux stops with "Invalid or
//! incomplete multibyte character" there). The terminator stays at the end. Lines are read one
//! at a time, so memory is bounded by the longest line, never by the file. Must not write
//! anything but standard output.

use crate::cli::{self, Out};
use std::ffi::OsString;
use std::io::{self, BufRead, Write};
use std::path::Path;

const NAME: &str = "rev";

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    let cmd = cli::command(NAME, "Reverse lines characterwise.")
        .arg(
            cli::flag("zero")
                .short('0')
                .long("zero")
                .help("zero line delimiter"),
        )
        .arg(
            clap::Arg::new("files")
                .num_args(0..)
                .action(clap::ArgAction::Append)
                .value_parser(clap::value_parser!(OsString)),
        );
    let m = match cli::parse(cmd, args, 1) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let terminator = if m.get_flag("zero") { b'\0' } else { b'\n' };
    let files = cli::all_os(&m, "files");
    let mut out = Out::new();
    let mut status = 0;
    if files.is_empty() {
        if let Err(e) = reverse_stream(io::stdin().lock(), &mut out, terminator) {
            status = report(&out, "stdin", &e);
        }
    } else {
        for file in &files {
            let path = Path::new(file);
            let result = std::fs::File::open(path)
                .and_then(|f| reverse_stream(io::BufReader::new(f), &mut out, terminator));
            if let Err(e) = result {
                status = report(&out, &path.display().to_string(), &e);
            }
            if out.failed().is_some() {
                break;
            }
        }
    }
    if !out.finish(NAME) {
        return 1;
    }
    status
}

/// Reports a read error (a write error is reported once by [`Out::finish`]); the exit code.
fn report(out: &Out, what: &str, e: &io::Error) -> i32 {
    if out.failed().is_none() {
        eprintln!("{NAME}: cannot open {what}: {}", cli::io_message(e));
    }
    1
}

/// Copies `input` to `out` with every line reversed.
fn reverse_stream(mut input: impl BufRead, out: &mut impl Write, terminator: u8) -> io::Result<()> {
    let mut line = Vec::new();
    let mut reversed = Vec::new();
    loop {
        line.clear();
        if input.read_until(terminator, &mut line)? == 0 {
            return Ok(());
        }
        let body = line.strip_suffix(&[terminator]).unwrap_or(&line);
        reversed.clear();
        reverse_line(body, &mut reversed);
        if body.len() < line.len() {
            reversed.push(terminator);
        }
        out.write_all(&reversed)?;
    }
}

/// Appends `line` reversed to `out`: valid UTF-8 sequences as whole characters, other bytes
/// one by one.
fn reverse_line(line: &[u8], out: &mut Vec<u8>) {
    let mut rest = line;
    let mut pieces: Vec<&[u8]> = Vec::new();
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                push_chars(text, &mut pieces);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // Valid by construction; an error here would only drop nothing.
                if let Ok(text) = std::str::from_utf8(valid) {
                    push_chars(text, &mut pieces);
                }
                let bad = e.error_len().unwrap_or(after.len()).max(1).min(after.len());
                let (invalid, next) = after.split_at(bad);
                pieces.extend(invalid.chunks(1));
                rest = next;
            }
        }
    }
    for piece in pieces.iter().rev() {
        out.extend_from_slice(piece);
    }
}

fn push_chars<'a>(text: &'a str, pieces: &mut Vec<&'a [u8]>) {
    let mut start = 0;
    for (i, _) in text.char_indices().skip(1) {
        pieces.push(&text.as_bytes()[start..i]);
        start = i;
    }
    if start < text.len() {
        pieces.push(&text.as_bytes()[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::{reverse_line, reverse_stream};

    fn rev(line: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        reverse_line(line, &mut out);
        out
    }

    #[test]
    fn ascii_and_utf8_reverse_by_character() {
        assert_eq!(rev(b"abc"), b"cba");
        assert_eq!(rev("héllo".as_bytes()), "olléh".as_bytes());
        assert_eq!(rev(b""), b"");
    }

    #[test]
    fn invalid_bytes_are_kept_and_reversed_singly() {
        assert_eq!(rev(b"a\xff\xfeb"), b"b\xfe\xffa");
        assert_eq!(rev(b"\xc3"), b"\xc3");
    }

    #[test]
    fn terminator_stays_last_and_a_missing_one_is_not_added() {
        let mut out = Vec::new();
        reverse_stream(&b"ab\ncd"[..], &mut out, b'\n').unwrap();
        assert_eq!(out, b"ba\ndc");
        out.clear();
        reverse_stream(&b"ab\0c\0"[..], &mut out, b'\0').unwrap();
        assert_eq!(out, b"ba\0c\0");
    }
}
