//! The dump direction of xxd: normal and bit dumps (with groups, little-endian order and
//! autoskip), plain hex, and C include style, laid out column for column as xxd does.
//!
//! Reads its input once, front to back (after `-s`); must not buffer more than one line.

use super::{Failure, Options, ReadSeek, Style};
use std::io::{self, Read, SeekFrom, Write};

/// Dumps `input` to `out`; the exit code.
pub fn run(
    o: &Options,
    input: &mut Box<dyn ReadSeek>,
    is_stdin: bool,
    out: &mut impl Write,
) -> Result<i32, Failure> {
    let mut start = 0u64;
    if let Some((relative, from_end, n)) = o.seek {
        let n_signed = i64::try_from(n).unwrap_or(i64::MAX);
        let pos = if from_end {
            SeekFrom::End(-n_signed)
        } else if relative {
            SeekFrom::Current(n_signed)
        } else {
            SeekFrom::Start(n)
        };
        start = match input.seek_to(pos) {
            Ok(p) if !is_stdin || !from_end => p,
            _ => return Err(Failure::Message("Sorry, cannot seek.".into(), 4)),
        };
    }
    let limit = o.len.unwrap_or(u64::MAX);
    let mut reader = io::BufReader::with_capacity(64 * 1024, input.take(limit));
    match o.style {
        Style::Plain => plain(o, &mut reader, out)?,
        Style::Include => include(o, &mut reader, is_stdin, out)?,
        Style::Normal | Style::Bits => {
            let cols = o
                .cols
                .filter(|c| *c > 0)
                .unwrap_or(if o.style == Style::Bits { 6 } else { 16 });
            if cols > 256 {
                return Err(Failure::Message(
                    "invalid number of columns (max. 256).".into(),
                    1,
                ));
            }
            lines(o, cols, start, &mut reader, out)?;
        }
    }
    Ok(0)
}

fn hex_digits(upper: bool) -> &'static [u8; 16] {
    if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    }
}

fn plain(o: &Options, input: &mut impl Read, out: &mut impl Write) -> io::Result<()> {
    let cols = o.cols.unwrap_or(30);
    let hex = hex_digits(o.upper);
    let mut p = 0usize;
    let mut buf = [0u8; 8192];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            out.write_all(&[hex[usize::from(b >> 4)], hex[usize::from(b & 15)]])?;
            p += 1;
            if cols > 0 && p == cols {
                out.write_all(b"\n")?;
                p = 0;
            }
        }
    }
    if p > 0 {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The C identifier xxd makes of a file name.
fn c_name(o: &Options, file: &str) -> String {
    if let Some(n) = &o.name {
        return n.clone();
    }
    let mut s = String::new();
    if file.starts_with(|c: char| c.is_ascii_digit()) {
        s.push_str("__");
    }
    for c in file.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        s.push(if o.capitalize {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    s
}

fn include(
    o: &Options,
    input: &mut impl Read,
    is_stdin: bool,
    out: &mut impl Write,
) -> io::Result<()> {
    let cols = o.cols.filter(|c| *c > 0).unwrap_or(12);
    let file = o
        .files
        .first()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = (!is_stdin || o.name.is_some()).then(|| c_name(o, &file));
    if let Some(name) = &name {
        writeln!(out, "unsigned char {name}[] = {{")?;
    }
    let (prefix, hex) = if o.upper {
        ("0X", hex_digits(true))
    } else {
        ("0x", hex_digits(false))
    };
    let mut p = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            let sep: &str = if !p.is_multiple_of(cols as u64) {
                ", "
            } else if p == 0 {
                "  "
            } else {
                ",\n  "
            };
            out.write_all(sep.as_bytes())?;
            out.write_all(prefix.as_bytes())?;
            out.write_all(&[hex[usize::from(b >> 4)], hex[usize::from(b & 15)]])?;
            p += 1;
        }
    }
    if p > 0 {
        out.write_all(b"\n")?;
    }
    if let Some(name) = &name {
        let len = if o.capitalize { "_LEN" } else { "_len" };
        writeln!(out, "}};\nunsigned int {name}{len} = {p};")?;
    }
    Ok(())
}

/// Normal and bit dumps: one line per `cols` bytes, laid out as xxd computes positions.
fn lines(
    o: &Options,
    cols: usize,
    start: u64,
    input: &mut impl Read,
    out: &mut impl Write,
) -> io::Result<()> {
    let bits = o.style == Style::Bits;
    let default_group = if bits {
        1
    } else if o.little_endian {
        4
    } else {
        2
    };
    let group = match o.group {
        Some(g) if g >= 1 && g <= cols => g,
        Some(_) => cols,
        None => default_group.min(cols),
    };
    let digits = if bits { 8 } else { 2 };
    let grplen = digits * group + 1;
    let hex = hex_digits(o.upper);
    let mut skip = Autoskip::default();
    let mut line: Vec<u8> = Vec::new();
    let mut ascii_at = 0;
    let mut p = 0usize;
    let mut nonzero = false;
    let mut n = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let got = input.read(&mut buf)?;
        if got == 0 {
            break;
        }
        for &e in &buf[..got] {
            if p == 0 {
                let addr = n.wrapping_add(start).wrapping_add(o.offset);
                line = if o.decimal {
                    format!("{addr:08}:")
                } else {
                    format!("{addr:08x}:")
                }
                .into_bytes();
                let addrlen = line.len();
                ascii_at = addrlen + 3 + (grplen * cols - 1) / group;
                line.resize(ascii_at + cols + 1, b' ');
            }
            let addrlen = ascii_at - 3 - (grplen * cols - 1) / group;
            let x = if o.little_endian { p ^ (group - 1) } else { p };
            let c = addrlen + 1 + (grplen * x) / group;
            if bits {
                for i in 0..8 {
                    line[c + i] = if e & (0x80 >> i) != 0 { b'1' } else { b'0' };
                }
            } else if c + 1 < line.len() {
                line[c] = hex[usize::from(e >> 4)];
                line[c + 1] = hex[usize::from(e & 15)];
            }
            nonzero |= e != 0;
            line[ascii_at + p] = if (32..127).contains(&e) { e } else { b'.' };
            n += 1;
            p += 1;
            if p == cols {
                line.truncate(ascii_at + p);
                line.push(b'\n');
                skip.line(out, &line, !o.autoskip || nonzero)?;
                nonzero = false;
                p = 0;
            }
        }
    }
    if p > 0 {
        line.truncate(ascii_at + p);
        line.push(b'\n');
        skip.line(out, &line, true)?;
    } else if o.autoskip {
        skip.end(out)?;
    }
    Ok(())
}

/// xxd's autoskip: three or more lines of zeros become one `*`, the last line always shows.
#[derive(Default)]
struct Autoskip {
    zero_seen: u32,
    first_zero: Vec<u8>,
    last: Vec<u8>,
}

impl Autoskip {
    fn line(&mut self, out: &mut impl Write, l: &[u8], nonzero: bool) -> io::Result<()> {
        if nonzero {
            self.flush_zeros(out)?;
            self.zero_seen = 0;
            return out.write_all(l);
        }
        if self.zero_seen == 0 {
            out.write_all(l)?;
        } else if self.zero_seen == 1 {
            self.first_zero = l.to_vec();
        }
        self.last = l.to_vec();
        self.zero_seen = self.zero_seen.saturating_add(1);
        Ok(())
    }

    /// Before a non-zero line: the held zero line, or `*`.
    fn flush_zeros(&mut self, out: &mut impl Write) -> io::Result<()> {
        match self.zero_seen {
            0 | 1 => Ok(()),
            2 => out.write_all(&self.first_zero),
            _ => out.write_all(b"*\n"),
        }
    }

    /// At the end of a dump whose last line was whole: xxd shows its last line.
    fn end(&mut self, out: &mut impl Write) -> io::Result<()> {
        let seen = self.zero_seen.saturating_sub(1);
        if seen == 2 {
            out.write_all(&self.first_zero)?;
        } else if seen > 2 {
            out.write_all(b"*\n")?;
        }
        if seen > 0 {
            out.write_all(&self.last)?;
        }
        Ok(())
    }
}
