//! printf / sprintf formatting with C's (and so gawk's) rules: flags `- + space # 0`, width and
//! precision (also `*`), and the conversions `d i o x X u c s e E f F g G %`.
//!
//! Must not: read variables or do I/O; it turns a format and values into a string.

use super::value::Value;
use thiserror::Error;

/// A format that cannot be satisfied.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("not enough arguments to satisfy format string `{0}'")]
    TooFewArgs(String),
}

/// One parsed `%` specification.
#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

/// Formats `args` by `fmt`; numbers that become strings (`%s`) use `convfmt`.
pub fn sprintf(fmt: &str, args: &[Value], convfmt: &str) -> Result<String, FormatError> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut next = 0usize;
    let take = |out_of: &mut usize| -> Result<Value, FormatError> {
        let v = args
            .get(*out_of)
            .cloned()
            .ok_or_else(|| FormatError::TooFewArgs(fmt.to_owned()))?;
        *out_of += 1;
        Ok(v)
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let start = i - 1;
        let mut spec = Spec::default();
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => spec.left = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alt = true,
                '0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        if chars.get(i) == Some(&'*') {
            i += 1;
            let w = take(&mut next)?.num();
            if w < 0.0 {
                spec.left = true;
            }
            spec.width = clamp_count(w.abs());
        } else {
            spec.width = read_count(&chars, &mut i);
        }
        if chars.get(i) == Some(&'.') {
            i += 1;
            if chars.get(i) == Some(&'*') {
                i += 1;
                let p = take(&mut next)?.num();
                spec.precision = (p >= 0.0).then(|| clamp_count(p));
            } else {
                spec.precision = Some(read_count(&chars, &mut i));
            }
        }
        let Some(&conv) = chars.get(i) else {
            // A lone `%` (or an unfinished specification) at the end is printed as written.
            out.extend(&chars[start..]);
            break;
        };
        i += 1;
        let body = match conv {
            '%' => "%".to_owned(),
            'd' | 'i' => integer(take(&mut next)?.num(), &spec),
            'o' | 'x' | 'X' | 'u' => unsigned(take(&mut next)?.num(), conv, &spec),
            'c' => {
                let v = take(&mut next)?;
                let s = match &v {
                    Value::Num(n) => char_of(*n),
                    other => other.string(convfmt).chars().take(1).collect(),
                };
                pad(&s, &spec, false)
            }
            's' => {
                let s = take(&mut next)?.string(convfmt);
                let s: String = match spec.precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                };
                pad(&s, &spec, false)
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => float(take(&mut next)?.num(), conv, &spec),
            _ => {
                // Unknown conversions are copied through, as gawk does.
                chars[start..i].iter().collect()
            }
        };
        out.push_str(&body);
    }
    Ok(out)
}

/// CONVFMT / OFMT applied to one number (a format with no argument-taking trouble).
pub fn sprintf_number(fmt: &str, n: f64) -> String {
    sprintf(fmt, &[Value::Num(n)], "%.6g").unwrap_or_else(|_| float(n, 'g', &Spec::default()))
}

/// Widths and precisions beyond this are clamped: a huge width is a client-controlled
/// allocation.
const MAX_COUNT: usize = 1 << 20;

fn clamp_count(n: f64) -> usize {
    if n.is_finite() {
        (n as usize).min(MAX_COUNT)
    } else {
        0
    }
}

fn read_count(chars: &[char], i: &mut usize) -> usize {
    let mut n = 0usize;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        n = (n * 10 + d as usize).min(MAX_COUNT);
        *i += 1;
    }
    n
}

fn char_of(n: f64) -> String {
    let code = if n.is_finite() && n >= 0.0 {
        n as u32
    } else {
        0
    };
    char::from_u32(if code < 256 { code } else { code & 0xff })
        .map(String::from)
        .unwrap_or_default()
}

/// Pads `body` to the width; `numeric` allows zero padding after any sign or prefix.
fn pad(body: &str, spec: &Spec, numeric: bool) -> String {
    let len = body.chars().count();
    if len >= spec.width {
        return body.to_owned();
    }
    let fill = spec.width - len;
    if spec.left {
        format!("{body}{}", " ".repeat(fill))
    } else if numeric && spec.zero {
        let split = body
            .find(|c: char| c.is_ascii_digit())
            .filter(|_| !body.ends_with("inf") && !body.ends_with("nan"))
            .unwrap_or(0);
        let skip_prefix = if body[split..].starts_with("0x") || body[split..].starts_with("0X") {
            split + 2
        } else {
            split
        };
        format!(
            "{}{}{}",
            &body[..skip_prefix],
            "0".repeat(fill),
            &body[skip_prefix..]
        )
    } else {
        format!("{}{body}", " ".repeat(fill))
    }
}

fn sign_prefix(negative: bool, spec: &Spec) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn integer(n: f64, spec: &Spec) -> String {
    if !n.is_finite() {
        return float(n, 'f', spec);
    }
    let t = n.trunc();
    let digits = if t.abs() < 9.2e18 {
        (t.abs() as u64).to_string()
    } else {
        format!("{:.0}", t.abs())
    };
    let digits = with_precision(digits, spec.precision);
    let body = format!("{}{digits}", sign_prefix(t < 0.0, spec));
    pad(&body, spec, spec.precision.is_none())
}

/// C's integer precision: at least that many digits; `.0` with zero prints nothing.
fn with_precision(digits: String, precision: Option<usize>) -> String {
    match precision {
        Some(0) if digits == "0" => String::new(),
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    }
}

fn unsigned(n: f64, conv: char, spec: &Spec) -> String {
    if !n.is_finite() || n.abs() >= 1.8e19 {
        return float(n, 'g', spec);
    }
    let t = n.trunc();
    // Negative values wrap to their two's-complement pattern, as C's conversion does.
    let u = if t < 0.0 { (t as i64) as u64 } else { t as u64 };
    let mut digits = match conv {
        'o' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        _ => u.to_string(),
    };
    digits = with_precision(digits, spec.precision);
    if spec.alt && u != 0 {
        match conv {
            'o' if !digits.starts_with('0') => digits.insert(0, '0'),
            'x' => digits.insert_str(0, "0x"),
            'X' => digits.insert_str(0, "0X"),
            _ => {}
        }
    }
    pad(&digits, spec, spec.precision.is_none())
}

fn float(n: f64, conv: char, spec: &Spec) -> String {
    let upper = conv.is_ascii_uppercase();
    let body = if n.is_finite() {
        let p = spec.precision.unwrap_or(6).min(MAX_COUNT);
        let s = match conv.to_ascii_lowercase() {
            'e' => exp_form(n.abs(), p, spec.alt),
            'f' => {
                let mut s = format!("{:.p$}", n.abs());
                if spec.alt && p == 0 {
                    s.push('.');
                }
                s
            }
            _ => general(n.abs(), p, spec.alt),
        };
        format!(
            "{}{s}",
            sign_prefix(n.is_sign_negative() && n != 0.0 || n < 0.0, spec)
        )
    } else {
        let word = if n.is_nan() { "nan" } else { "inf" };
        let sign = if n.is_sign_negative() {
            "-"
        } else if spec.plus {
            "+"
        } else if spec.space {
            " "
        } else {
            ""
        };
        format!("{sign}{word}")
    };
    let body = if upper { body.to_uppercase() } else { body };
    pad(&body, spec, n.is_finite())
}

/// `%e` of a non-negative finite number: d.ddde±XX.
fn exp_form(x: f64, p: usize, alt: bool) -> String {
    let s = format!("{x:.p$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let mut m = mantissa.to_owned();
    if alt && p == 0 {
        m.push('.');
    }
    let sign = if e < 0 { '-' } else { '+' };
    format!("{m}e{sign}{:02}", e.abs())
}

/// `%g`: `%e` or `%f` by the exponent, trailing zeros removed unless `#`.
fn general(x: f64, p: usize, alt: bool) -> String {
    let p = p.max(1);
    let e_form = format!("{x:.prec$e}", prec = p - 1);
    let exp: i32 = e_form
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let mut s = if exp < -4 || exp >= p as i32 {
        exp_form(x, p - 1, alt)
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        let mut f = format!("{x:.decimals$}");
        if alt && decimals == 0 {
            f.push('.');
        }
        f
    };
    if !alt {
        let (mantissa, tail) = match s.find('e') {
            Some(i) => (s[..i].to_owned(), s[i..].to_owned()),
            None => (s.clone(), String::new()),
        };
        if mantissa.contains('.') {
            let trimmed = mantissa.trim_end_matches('0').trim_end_matches('.');
            s = format!("{trimmed}{tail}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[Value]) -> String {
        sprintf(fmt, args, "%.6g").unwrap_or_default()
    }

    #[test]
    fn c_like_conversions() {
        let n = |x| Value::Num(x);
        assert_eq!(
            f("%d|%5d|%-5d|%05d", &[n(42.9), n(7.0), n(3.0), n(-42.0)]),
            "42|    7|3    |-0042"
        );
        assert_eq!(
            f(
                "%x %o %u %#x %#o",
                &[n(-1.0), n(8.0), n(5.0), n(255.0), n(8.0)]
            ),
            "ffffffffffffffff 10 5 0xff 010"
        );
        assert_eq!(
            f("%e|%.2E", &[n(1234.5678), n(0.0)]),
            "1.234568e+03|0.00E+00"
        );
        assert_eq!(
            f(
                "%g %g %g %g %#g",
                &[n(100000.0), n(1e6), n(0.00001234), n(1e-4), n(1.0)]
            ),
            "100000 1e+06 1.234e-05 0.0001 1.00000"
        );
        assert_eq!(
            f("%.3g|%10.2f|%+d|% d", &[n(1.23456), n(2.5), n(5.0), n(5.0)]),
            "1.23|      2.50|+5| 5"
        );
        assert_eq!(
            f(
                "%c%c%s|%.2s|%5.3d",
                &[
                    n(65.0),
                    Value::Str("hi".into()),
                    Value::Str("x".into()),
                    Value::Str("abc".into()),
                    n(7.0)
                ]
            ),
            "Ahx|ab|  007"
        );
        assert_eq!(f("%*d|%5%|100%", &[n(4.0), n(1.0)]), "   1|%|100%");
        assert!(sprintf("%s", &[], "%.6g").is_err());
    }
}
