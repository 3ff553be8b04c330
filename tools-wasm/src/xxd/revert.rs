//! `xxd -r` and `xxd -r -p`: hex dumps back to bytes, with xxd's tolerance rules: in a normal
//! dump each line's offset positions its bytes (gaps become zeros on a pipe, seeks in a file),
//! at most `cols` bytes are taken per line, and three non-hex characters in a row end the line;
//! in plain style whitespace is ignored and every pair of adjacent hex digits is a byte.
//!
//! Writes only to the output it is given; never seeks backwards on standard output.

use super::{Failure, Options, Output, Style};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

fn hex_value(c: u8) -> i32 {
    match c {
        b'0'..=b'9' => i32::from(c - b'0'),
        b'a'..=b'f' => i32::from(c - b'a' + 10),
        b'A'..=b'F' => i32::from(c - b'A' + 10),
        _ => -1,
    }
}

/// Reverts `input` into `out`; the exit code.
pub fn run(o: &Options, input: &mut impl BufRead, out: &mut Output) -> Result<i32, Failure> {
    let plain = o.style == Style::Plain;
    let cols = o.cols.filter(|c| *c > 0).unwrap_or(16);
    // -r -s: an offset added to the positions in the dump (negative: subtracted).
    let base: i64 = match o.seek {
        Some((_, negative, n)) => {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            if negative { -n } else { n }
        }
        None => 0,
    };
    let (mut n1, mut n2) = (-1i32, 0i32);
    let mut n3;
    let mut p = cols;
    let mut ignore = true;
    let mut want: i64 = 0;
    let mut have: i64 = 0;
    let mut skipping = false;
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        if input.read_until(b'\n', &mut chunk)? == 0 {
            break;
        }
        for &c in &chunk {
            if skipping {
                if c == b'\n' {
                    skipping = false;
                    // xxd's end-of-line handling after skipping to it.
                    want = 0;
                    p = cols;
                    ignore = true;
                }
                continue;
            }
            if c == b'\r' || (plain && (c == b' ' || c == b'\n' || c == b'\t')) {
                continue;
            }
            n3 = n2;
            n2 = n1;
            n1 = hex_value(c);
            if n1 == -1 && ignore {
                continue;
            }
            ignore = false;
            if !plain && p >= cols {
                if n1 < 0 {
                    p = 0;
                    continue;
                }
                want = want.wrapping_shl(4) | i64::from(n1);
                continue;
            }
            let target = base.saturating_add(want);
            if target != have {
                move_to(out, &mut have, target)?;
            }
            let mut skip_line = false;
            if n2 >= 0 && n1 >= 0 {
                // Both are hex digits, 0..=15.
                out.write_all(&[((n2 << 4) | n1) as u8])?;
                have += 1;
                want += 1;
                n1 = -1;
                if !plain {
                    p += 1;
                    skip_line = p >= cols;
                }
            } else if n1 < 0 && n2 < 0 && n3 < 0 {
                skip_line = true;
            }
            if skip_line && c != b'\n' {
                skipping = true;
            } else if c == b'\n' {
                if !plain {
                    want = 0;
                }
                p = cols;
                ignore = true;
            }
        }
    }
    if let Output::File(f) = out {
        f.flush()?;
        f.get_mut().seek(SeekFrom::End(0))?;
    }
    Ok(0)
}

/// Moves the output to `target`: a seek in a file, zeros forward on a pipe.
fn move_to(out: &mut Output, have: &mut i64, target: i64) -> Result<(), Failure> {
    if let Output::File(f) = out {
        f.flush()?;
        if target >= 0 && f.get_mut().seek(SeekFrom::Start(target as u64)).is_ok() {
            *have = target;
            return Ok(());
        }
    }
    if target < *have {
        return Err(Failure::Message("Sorry, cannot seek backwards.".into(), 5));
    }
    io::copy(
        &mut io::repeat(0).take(u64::try_from(target - *have).unwrap_or(0)),
        out,
    )?;
    *have = target;
    Ok(())
}
