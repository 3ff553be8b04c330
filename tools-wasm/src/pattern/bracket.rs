//! POSIX bracket expressions (`[a-z]`, `[^[:digit:]_]`, `[]x]`, `[!ab]` in globs) translated
//! into Rust regex classes.
//!
//! Every member is re-emitted escaped, so characters that mean something inside a Rust class
//! (`\`, `[`, `&&`, `--`, `~~`) stay literal as POSIX wants.

use super::push_literal;

/// How to read a bracket expression.
#[derive(Clone, Copy)]
pub struct Flavor {
    /// `!` negates as well as `^` (shell wildcards).
    pub bang_negates: bool,
    /// A backslash quotes the next character (shell wildcards); in POSIX regexes it is literal.
    pub backslash_escapes: bool,
}

const CLASSES: &[&str] = &[
    "alpha", "digit", "alnum", "upper", "lower", "space", "blank", "punct", "print", "graph",
    "cntrl", "xdigit",
];

/// Translates the bracket expression starting just after the `[` at `chars[start - 1]`.
///
/// Returns the Rust class and the index just past the closing `]`, or `None` when the
/// expression is not terminated (the caller decides whether that is an error or a literal `[`).
/// An unknown class name (`[[:foo:]]`) is an `Err`.
pub fn translate(
    chars: &[char],
    start: usize,
    flavor: Flavor,
) -> Result<Option<(String, usize)>, String> {
    let mut i = start;
    let mut out = String::from("[");
    if i < chars.len() && (chars[i] == '^' || (flavor.bang_negates && chars[i] == '!')) {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Ok(None);
        };
        if c == ']' && !first {
            out.push(']');
            return Ok(Some((out, i + 1)));
        }
        first = false;
        // One member: a class, an equivalence class, a collating symbol or a character.
        let low = if c == '[' && matches!(chars.get(i + 1), Some(':' | '=' | '.')) {
            let kind = chars[i + 1];
            let body_start = i + 2;
            let Some(end) = (body_start..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == kind && chars[j + 1] == ']')
            else {
                return Ok(None);
            };
            let body: String = chars[body_start..end].iter().collect();
            i = end + 2;
            if kind == ':' {
                if !CLASSES.contains(&body.as_str()) {
                    return Err(format!("invalid character class [:{body}:]"));
                }
                out.push_str(&format!("[:{body}:]"));
                continue;
            }
            let mut it = body.chars();
            match (it.next(), it.next()) {
                (Some(one), None) => one,
                _ => return Err(format!("invalid collation element [{kind}{body}{kind}]")),
            }
        } else if c == '\\' && flavor.backslash_escapes && i + 1 < chars.len() {
            i += 2;
            chars[i - 1]
        } else {
            i += 1;
            c
        };
        // A range `low-high`, unless the `-` is the last member.
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let mut j = i + 1;
            let mut high = chars[j];
            if high == '\\' && flavor.backslash_escapes && j + 1 < chars.len() {
                j += 1;
                high = chars[j];
            } else if high == '[' && chars.get(j + 1) == Some(&'.') {
                let Some(end) = (j + 2..chars.len().saturating_sub(1))
                    .find(|&k| chars[k] == '.' && chars[k + 1] == ']')
                else {
                    return Ok(None);
                };
                let body: Vec<char> = chars[j + 2..end].to_vec();
                if body.len() != 1 {
                    return Err("invalid collation element".into());
                }
                high = body[0];
                j = end + 1;
            }
            if high < low {
                return Err("invalid range end".into());
            }
            push_literal(&mut out, low);
            out.push('-');
            push_literal(&mut out, high);
            i = j + 1;
        } else {
            push_literal(&mut out, low);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Flavor, translate};

    const RE: Flavor = Flavor {
        bang_negates: false,
        backslash_escapes: false,
    };
    const GLOB: Flavor = Flavor {
        bang_negates: true,
        backslash_escapes: true,
    };

    fn class(p: &str, f: Flavor) -> String {
        let chars: Vec<char> = p.chars().collect();
        let (out, end) = translate(&chars, 1, f).unwrap().unwrap();
        assert_eq!(end, chars.len(), "{p}");
        out
    }

    fn matches(p: &str, f: Flavor, s: &str) -> bool {
        regex::Regex::new(&format!("^{}$", class(p, f)))
            .unwrap()
            .is_match(s)
    }

    #[test]
    fn members_stay_literal() {
        assert!(matches("[]a]", RE, "]"));
        assert!(matches("[^]a]", RE, "b"));
        assert!(!matches("[^]a]", RE, "]"));
        assert!(matches(r"[\]", RE, "\\"));
        assert!(matches("[a&&b]", RE, "&"));
        assert!(matches("[a-]", RE, "-"));
        assert!(matches("[[]", RE, "["));
        assert!(matches("[--/]", RE, "."));
    }

    #[test]
    fn classes_and_ranges() {
        assert!(matches("[[:digit:]x]", RE, "7"));
        assert!(matches("[[:digit:]x]", RE, "x"));
        assert!(matches("[a-c]", RE, "b"));
        assert!(!matches("[a-c]", RE, "d"));
        assert!(matches("[[=e=]]", RE, "e"));
        assert!(translate(&"[[:nope:]]".chars().collect::<Vec<_>>(), 1, RE).is_err());
        assert!(translate(&"[z-a]".chars().collect::<Vec<_>>(), 1, RE).is_err());
    }

    #[test]
    fn glob_flavor() {
        assert!(matches("[!a]", GLOB, "b"));
        assert!(!matches("[!a]", GLOB, "a"));
        assert!(matches(r"[\]]", GLOB, "]"));
    }

    #[test]
    fn unterminated_is_none() {
        assert!(
            translate(&"[abc".chars().collect::<Vec<_>>(), 1, RE)
                .unwrap()
                .is_none()
        );
    }
}
