//! `find -printf FORMAT`: parsing the format once, then writing it for each file.
//!
//! Supported: `%p %P %f %h %H %d %s %y %Y %l`, times `%a %t` and `%A`/`%T` with a strftime
//! letter, `@`, `+` or `T`, flags `-` and a width/precision, and the backslash escapes. The
//! directives for data WASI does not have (`%m %M %u %g %U %G %i %n %k %b %c %C`) print `?`.

use super::expr::{Visit, base_name, type_letter};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};
use uucore::time::{FormatSystemTimeFallback, format_system_time};

/// One piece of a format.
#[derive(Debug, Clone)]
enum Piece {
    Literal(Vec<u8>),
    Directive {
        left: bool,
        width: usize,
        precision: Option<usize>,
        kind: char,
        sub: Option<char>,
    },
    /// `\c`: stop printing this format.
    Stop,
}

/// A parsed `-printf` format.
#[derive(Debug, Clone)]
pub struct Format(Vec<Piece>);

const UNKNOWN: &str = "mMugUGinkbcCDFSZ";
const KNOWN: &str = "pPfhHdsyYlatAT";

impl Format {
    /// Parses `text`; an unknown directive is an error, as in GNU find.
    pub fn parse(text: &str) -> Result<Format, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' && i + 1 < chars.len() {
                i += 1;
                let e = chars[i];
                let byte = match e {
                    'n' => b'\n',
                    't' => b'\t',
                    'r' => b'\r',
                    'a' => 7,
                    'b' => 8,
                    'f' => 12,
                    'v' => 11,
                    '\\' => b'\\',
                    'c' => {
                        pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                        pieces.push(Piece::Stop);
                        i += 1;
                        continue;
                    }
                    '0'..='7' => {
                        let mut v = 0u32;
                        let mut n = 0;
                        while n < 3 && i < chars.len() && ('0'..='7').contains(&chars[i]) {
                            v = v * 8 + chars[i].to_digit(8).unwrap_or(0);
                            i += 1;
                            n += 1;
                        }
                        lit.push((v & 0xff) as u8);
                        continue;
                    }
                    other => {
                        lit.push(b'\\');
                        let mut buf = [0; 4];
                        lit.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                        i += 1;
                        continue;
                    }
                };
                lit.push(byte);
                i += 1;
                continue;
            }
            if c != '%' {
                let mut buf = [0; 4];
                lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 1;
                continue;
            }
            i += 1;
            if chars.get(i) == Some(&'%') {
                lit.push(b'%');
                i += 1;
                continue;
            }
            let mut left = false;
            while let Some(&f) = chars.get(i).filter(|f| "-+ #0".contains(**f)) {
                left |= f == '-';
                i += 1;
            }
            let mut width = 0usize;
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                width = width.saturating_mul(10).saturating_add(d as usize);
                i += 1;
            }
            let mut precision = None;
            if chars.get(i) == Some(&'.') {
                i += 1;
                let mut p = 0usize;
                while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    p = p.saturating_mul(10).saturating_add(d as usize);
                    i += 1;
                }
                precision = Some(p);
            }
            let Some(&kind) = chars.get(i) else {
                return Err("error: format ends in a lone %".into());
            };
            i += 1;
            let sub = if matches!(kind, 'A' | 'T' | 'C') {
                let s = chars
                    .get(i)
                    .copied()
                    .ok_or("error: missing time field after %T")?;
                i += 1;
                Some(s)
            } else {
                None
            };
            if !KNOWN.contains(kind) && !UNKNOWN.contains(kind) {
                return Err(format!("error: %{kind}: invalid format directive"));
            }
            pieces.push(Piece::Literal(std::mem::take(&mut lit)));
            pieces.push(Piece::Directive {
                left,
                width,
                precision,
                kind,
                sub,
            });
        }
        pieces.push(Piece::Literal(lit));
        Ok(Format(pieces))
    }

    /// Writes the format for one file.
    pub fn write(&self, v: &Visit<'_>, out: &mut impl Write) -> io::Result<()> {
        for piece in &self.0 {
            match piece {
                Piece::Literal(bytes) => out.write_all(bytes)?,
                Piece::Stop => return Ok(()),
                Piece::Directive {
                    left,
                    width,
                    precision,
                    kind,
                    sub,
                } => {
                    let mut text = render(v, *kind, *sub);
                    if let Some(p) = precision {
                        text = text.chars().take(*p).collect();
                    }
                    let pad = width.saturating_sub(text.chars().count());
                    let spaces = " ".repeat(pad);
                    if *left {
                        write!(out, "{text}{spaces}")?;
                    } else {
                        write!(out, "{spaces}{text}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn render(v: &Visit<'_>, kind: char, sub: Option<char>) -> String {
    let path = v.path.to_string_lossy();
    match kind {
        'p' => path.into_owned(),
        'f' => base_name(v.path),
        'h' => match path.trim_end_matches('/').rfind('/') {
            Some(0) => "/".into(),
            Some(i) => path[..i].to_owned(),
            None => ".".into(),
        },
        'P' => v
            .path
            .strip_prefix(v.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        'H' => v.root.to_string_lossy().into_owned(),
        'd' => v.depth.to_string(),
        's' => v
            .metadata
            .get()
            .map(|m| m.len().to_string())
            .unwrap_or_else(|| "?".into()),
        'y' => type_letter(v.file_type, v.is_symlink).to_string(),
        'Y' => {
            let followed = std::fs::metadata(v.path).ok();
            match followed {
                Some(md) => type_letter(Some(md.file_type()), false).to_string(),
                None if v.is_symlink => "N".into(),
                None => "?".into(),
            }
        }
        'l' if v.is_symlink => std::fs::read_link(v.path)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default(),
        'l' => String::new(),
        'a' | 't' => {
            let t = if kind == 'a' {
                v.metadata.get().and_then(|m| m.accessed().ok())
            } else {
                v.metadata.get().and_then(|m| m.modified().ok())
            };
            t.map(|t| strftime(t, "%a %b %e %H:%M:%S %Y"))
                .unwrap_or_else(|| "?".into())
        }
        'A' | 'T' => {
            let t = if kind == 'A' {
                v.metadata.get().and_then(|m| m.accessed().ok())
            } else {
                v.metadata.get().and_then(|m| m.modified().ok())
            };
            match (t, sub) {
                (Some(t), Some(s)) => time_field(t, s),
                _ => "?".into(),
            }
        }
        _ => "?".into(),
    }
}

fn strftime(t: SystemTime, fmt: &str) -> String {
    let mut buf = Vec::new();
    match format_system_time(&mut buf, t, fmt, FormatSystemTimeFallback::Integer) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => "?".into(),
    }
}

/// `%T@`, `%T+`, `%TT` and the strftime letters.
fn time_field(t: SystemTime, sub: char) -> String {
    let frac = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    };
    match sub {
        '@' => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => format!("{}.{:09}0", d.as_secs(), d.subsec_nanos()),
            Err(_) => "?".into(),
        },
        '+' => format!("{}.{:09}0", strftime(t, "%Y-%m-%d+%H:%M:%S"), frac(t)),
        'T' => format!("{}.{:09}0", strftime(t, "%H:%M:%S"), frac(t)),
        c if c.is_ascii_alphabetic() => strftime(t, &format!("%{c}")),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::Format;
    use crate::find::expr::Visit;
    use std::path::Path;
    use std::time::SystemTime;

    fn render(fmt: &str, path: &str) -> String {
        let f = Format::parse(fmt).unwrap();
        let v = Visit {
            path: Path::new(path),
            root: Path::new("."),
            depth: 2,
            file_type: None,
            metadata: crate::find::expr::LazyMetadata::none(),
            is_symlink: false,
            now: SystemTime::now(),
            prune: false,
            quit: false,
        };
        let mut out = Vec::new();
        f.write(&v, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn directives() {
        assert_eq!(
            render("%p|%f|%h|%P|%d\\n", "./a/b.txt"),
            "./a/b.txt|b.txt|./a|a/b.txt|2\n"
        );
        assert_eq!(render("[%-6f]", "./ab"), "[ab    ]");
        assert_eq!(render("[%6f]", "./ab"), "[    ab]");
        assert_eq!(render("%m %u %g\\c after", "x"), "? ? ?");
        assert_eq!(render("100%%", "x"), "100%");
        assert!(Format::parse("%Q").is_err());
    }
}
