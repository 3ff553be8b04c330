//! awk's scalar values and the conversions between strings and numbers: `strtod`-style
//! reading of a number's prefix, POSIX "numeric string" recognition for input, and number to
//! string through CONVFMT / OFMT (integral values print as integers, as gawk does).
//!
//! Must not: format anything but the one `%.Ng`-style conversion it is handed (printf lives in
//! `format`), or know about variables and fields.

use super::format;

/// One awk value.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// A variable or element never assigned: both "" and 0.
    #[default]
    Uninit,
    /// A number.
    Num(f64),
    /// A string constant or the result of a string operation.
    Str(String),
    /// Input that looks like a number (fields, getline, split, -v, ENVIRON): compares
    /// numerically with numbers, keeps its text.
    StrNum(String, f64),
}

impl Value {
    /// A string from input: a numeric string when the whole text looks like a number.
    pub fn from_input(s: String) -> Value {
        match looks_numeric(&s) {
            Some(n) => Value::StrNum(s, n),
            None => Value::Str(s),
        }
    }

    /// The numeric value.
    pub fn num(&self) -> f64 {
        match self {
            Value::Uninit => 0.0,
            Value::Num(n) | Value::StrNum(_, n) => *n,
            Value::Str(s) => str_to_num(s),
        }
    }

    /// The string value, numbers converted with `convfmt`.
    pub fn string(&self, convfmt: &str) -> String {
        match self {
            Value::Uninit => String::new(),
            Value::Num(n) => num_to_str(*n, convfmt),
            Value::Str(s) | Value::StrNum(s, _) => s.clone(),
        }
    }

    /// True when comparisons treat the value as a number.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Value::Uninit | Value::Num(_) | Value::StrNum(..))
    }

    /// awk truth: a number is true when non-zero, a string when non-empty; a numeric string
    /// by its number.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Uninit => false,
            Value::Num(n) | Value::StrNum(_, n) => *n != 0.0,
            Value::Str(s) => !s.is_empty(),
        }
    }
}

/// A number as a string: integral values as integers, others through `fmt` (CONVFMT or OFMT).
pub fn num_to_str(n: f64, fmt: &str) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "+nan" }.into();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "+inf" }.into();
    }
    if n == n.trunc() {
        // Exact decimal expansion, as gawk prints integral values; `-0` prints as `0`.
        return format!("{:.0}", if n == 0.0 { 0.0 } else { n });
    }
    format::sprintf_number(fmt, n)
}

/// The longest prefix of `s` that `strtod` reads, as a number (0 when there is none).
pub fn str_to_num(s: &str) -> f64 {
    scan_number(s).map_or(0.0, |(n, _)| n)
}

/// POSIX numeric string: blanks, a number, blanks, and nothing else.
pub fn looks_numeric(s: &str) -> Option<f64> {
    let (n, used) = scan_number(s)?;
    s[used..]
        .bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
        .then_some(n)
}

/// `strtod`: leading blanks, sign, then `inf`/`nan`, a hexadecimal integer or a decimal number
/// with optional fraction and exponent. Returns the value and the bytes consumed, or `None`
/// when no number starts the text.
fn scan_number(s: &str) -> Option<(f64, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c') {
        i += 1;
    }
    let start = i;
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    let rest = &s[i..];
    let lower: String = rest
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with("infinity") {
        return Some((sign * f64::INFINITY, i + 8));
    }
    if lower.starts_with("inf") {
        return Some((sign * f64::INFINITY, i + 3));
    }
    if lower.starts_with("nan") {
        return Some((sign * f64::NAN, i + 3));
    }
    if (lower.starts_with("0x")) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
        let mut j = i + 2;
        let mut n = 0.0f64;
        while let Some(d) = b.get(j).and_then(|c| (*c as char).to_digit(16)) {
            n = n * 16.0 + f64::from(d);
            j += 1;
        }
        return Some((sign * n, j));
    }
    let digits_from = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut mantissa_digits = i - digits_from;
    if b.get(i) == Some(&b'.') {
        let f = i + 1;
        let mut j = f;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        mantissa_digits += j - f;
        if mantissa_digits > 0 {
            i = j;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            i = j;
        }
    }
    let n = s[start..i].parse::<f64>().unwrap_or(0.0);
    Some((n, i))
}

/// Compares two values by awk's rules: numerically when both are numeric, else as strings.
pub fn compare(a: &Value, b: &Value, convfmt: &str) -> std::cmp::Ordering {
    if a.is_numeric() && b.is_numeric() {
        a.num()
            .partial_cmp(&b.num())
            .unwrap_or(std::cmp::Ordering::Equal)
    } else {
        a.string(convfmt).cmp(&b.string(convfmt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_numeric_strings() {
        assert_eq!(str_to_num(" 12abc"), 12.0);
        assert_eq!(str_to_num("-1.5e3x"), -1500.0);
        assert_eq!(str_to_num("1e"), 1.0);
        assert_eq!(str_to_num("."), 0.0);
        assert_eq!(str_to_num("0x1A"), 26.0);
        assert_eq!(looks_numeric(" 3.5 "), Some(3.5));
        assert_eq!(looks_numeric("3x"), None);
        assert_eq!(looks_numeric(""), None);
    }

    #[test]
    fn numbers_to_strings() {
        assert_eq!(num_to_str(3.0, "%.6g"), "3");
        assert_eq!(num_to_str(-0.0, "%.6g"), "0");
        assert_eq!(num_to_str(1e30, "%.6g"), "1000000000000000019884624838656");
        assert_eq!(num_to_str(0.1, "%.6g"), "0.1");
        assert_eq!(num_to_str(1.23456, "%.2f"), "1.23");
    }
}
