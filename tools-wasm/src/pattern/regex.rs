//! POSIX regular expressions (basic, extended, and the Emacs flavour find uses by default)
//! translated into Rust `regex` syntax, with GNU's extensions (`\+ \? \|` in BRE, `\< \> \b \B
//! \w \W \s \S`, `` \` `` and `\'`).
//!
//! What the translation keeps from POSIX that Rust reads differently: `*` (and in ERE `+ ? {`)
//! at the start of an expression or group is a literal; in BRE `^` and `$` are anchors only at
//! the ends of an expression or group; an ERE `{` that does not start a valid interval is a
//! literal. Back-references (`\1`) have no Rust equivalent and are refused.

use super::bracket::{self, Flavor};
use super::push_literal;

/// Which POSIX dialect a pattern is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// Basic regular expressions (`grep -G`, `sed`, `find -regextype posix-basic`).
    Basic,
    /// Extended regular expressions (`grep -E`, `find -regextype posix-extended`).
    Extended,
    /// GNU Emacs regexes, find's default: like BRE but `+` and `?` are operators and there are
    /// no intervals.
    Emacs,
}

const BRACKET: Flavor = Flavor {
    bang_negates: false,
    backslash_escapes: false,
};

/// Translates `pattern` into an equivalent Rust regex.
pub fn translate(pattern: &str, syntax: Syntax) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // True where a quantifier would have nothing to repeat (POSIX: it is then a literal).
    let mut at_start = true;
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\\' => {
                let Some(n) = next else {
                    return Err("trailing backslash (\\)".into());
                };
                i += 2;
                match (syntax, n) {
                    (Syntax::Basic | Syntax::Emacs, '(') => {
                        out.push('(');
                        depth += 1;
                        at_start = true;
                        continue;
                    }
                    (Syntax::Basic | Syntax::Emacs, ')') => {
                        if depth == 0 {
                            return Err("Unmatched ) or \\)".into());
                        }
                        depth -= 1;
                        out.push(')');
                    }
                    (Syntax::Basic | Syntax::Emacs, '|') => {
                        out.push('|');
                        at_start = true;
                        continue;
                    }
                    (Syntax::Basic, '{') => {
                        let Some((interval, end)) = interval(&chars, i, true) else {
                            return Err("Unmatched \\{".into());
                        };
                        if at_start {
                            return Err("invalid preceding regular expression".into());
                        }
                        out.push_str(&interval);
                        i = end;
                    }
                    (Syntax::Basic, '+' | '?') => {
                        if at_start {
                            push_literal(&mut out, n);
                        } else {
                            out.push(n);
                        }
                    }
                    (_, '1'..='9') => {
                        return Err("back-references (\\1 ... \\9) are not supported".into());
                    }
                    (_, '<') => out.push_str(r"\b{start}"),
                    (_, '>') => out.push_str(r"\b{end}"),
                    (_, 'b' | 'B' | 'w' | 'W' | 's' | 'S') => {
                        out.push('\\');
                        out.push(n);
                    }
                    (_, '`') => out.push_str(r"\A"),
                    (_, '\'') => out.push_str(r"\z"),
                    (_, 'n') => out.push_str(r"\n"),
                    (_, 't') => out.push_str(r"\t"),
                    _ => push_literal(&mut out, n),
                }
                at_start = false;
                continue;
            }
            '[' => {
                let Some((class, end)) = bracket::translate(&chars, i + 1, BRACKET)? else {
                    return Err("Unmatched [, [^, [:, [., or [=".into());
                };
                out.push_str(&class);
                i = end;
                at_start = false;
                continue;
            }
            '*' => {
                if at_start {
                    push_literal(&mut out, c);
                    at_start = false;
                } else {
                    out.push('*');
                }
            }
            '+' | '?' if syntax != Syntax::Basic => {
                if at_start {
                    push_literal(&mut out, c);
                    at_start = false;
                } else {
                    out.push(c);
                }
            }
            '{' if syntax == Syntax::Extended => match interval(&chars, i + 1, false) {
                Some((interval, end)) if !at_start => {
                    out.push_str(&interval);
                    i = end;
                    continue;
                }
                _ => {
                    push_literal(&mut out, c);
                    at_start = false;
                }
            },
            '(' if syntax == Syntax::Extended => {
                out.push('(');
                depth += 1;
                at_start = true;
                i += 1;
                continue;
            }
            ')' if syntax == Syntax::Extended => {
                if depth == 0 {
                    push_literal(&mut out, c);
                } else {
                    depth -= 1;
                    out.push(')');
                }
                at_start = false;
            }
            '|' if syntax == Syntax::Extended => {
                out.push('|');
                at_start = true;
                i += 1;
                continue;
            }
            '^' => {
                if syntax == Syntax::Extended || at_start || out.ends_with('(') || out.is_empty() {
                    out.push('^');
                    // `^*` in BRE: the star is literal.
                    i += 1;
                    continue;
                }
                push_literal(&mut out, c);
                at_start = false;
            }
            '$' => {
                let at_end = match syntax {
                    Syntax::Extended => true,
                    _ => {
                        i + 1 == chars.len()
                            || (next == Some('\\') && matches!(chars.get(i + 2), Some(')' | '|')))
                    }
                };
                if at_end {
                    out.push('$');
                } else {
                    push_literal(&mut out, c);
                }
                at_start = false;
            }
            '.' => {
                out.push('.');
                at_start = false;
            }
            _ => {
                push_literal(&mut out, c);
                at_start = false;
            }
        }
        i += 1;
    }
    if depth > 0 {
        return Err("Unmatched ( or \\(".into());
    }
    Ok(out)
}

/// Reads an interval body starting at `chars[start]` (just after `{` or `\{`): `m`, `m,`, `m,n`
/// or `,n`, closed by `}` (or `\}` when `escaped`). Returns the Rust quantifier and the index
/// after the close.
fn interval(chars: &[char], start: usize, escaped: bool) -> Option<(String, usize)> {
    let mut i = start;
    let mut min = String::new();
    while let Some(&c) = chars.get(i).filter(|c| c.is_ascii_digit()) {
        min.push(c);
        i += 1;
    }
    let mut max = None;
    if chars.get(i) == Some(&',') {
        i += 1;
        let mut m = String::new();
        while let Some(&c) = chars.get(i).filter(|c| c.is_ascii_digit()) {
            m.push(c);
            i += 1;
        }
        max = Some(m);
    }
    if escaped {
        if chars.get(i) != Some(&'\\') {
            return None;
        }
        i += 1;
    }
    if chars.get(i) != Some(&'}') || (min.is_empty() && max.as_deref().is_none_or(str::is_empty)) {
        return None;
    }
    let min = if min.is_empty() { "0".to_owned() } else { min };
    let q = match max {
        None => format!("{{{min}}}"),
        Some(m) if m.is_empty() => format!("{{{min},}}"),
        Some(m) => format!("{{{min},{m}}}"),
    };
    Some((q, i + 1))
}

#[cfg(test)]
mod tests {
    use super::{Syntax, translate};

    fn is_match(p: &str, s: Syntax, text: &str) -> bool {
        let r = translate(p, s).unwrap();
        regex::Regex::new(&r)
            .unwrap_or_else(|e| panic!("{p} -> {r}: {e}"))
            .is_match(text)
    }

    #[test]
    fn bre_basics() {
        let b = Syntax::Basic;
        assert!(is_match(r"a\(b\)*c", b, "abbc"));
        assert!(is_match("a+b", b, "a+b"));
        assert!(!is_match("a+b", b, "aab"));
        assert!(is_match(r"a\+b", b, "aab"));
        assert!(is_match(r"x\{2\}", b, "xx"));
        assert!(!is_match(r"^x\{2\}$", b, "x"));
        assert!(is_match("a{1}", b, "a{1}"));
        assert!(is_match(r"cat\|dog", b, "dog"));
        assert!(is_match("*a", b, "*a"));
        assert!(is_match("a^b", b, "a^b"));
        assert!(is_match("a$b", b, "a$b"));
        assert!(is_match("^ab$", b, "ab"));
        assert!(is_match(r"\(^a\)", b, "a"));
        assert!(is_match("(x)", b, "(x)"));
        assert!(is_match("a|b", b, "a|b"));
    }

    #[test]
    fn ere_basics() {
        let e = Syntax::Extended;
        assert!(is_match("a(b|c)+d", e, "abcbd"));
        assert!(is_match("x{2,}", e, "xxx"));
        assert!(is_match("a{", e, "a{"));
        assert!(is_match("a{x}", e, "a{x}"));
        assert!(is_match("*a", e, "*a"));
        assert!(is_match("(+x)", e, "+x"));
        assert!(is_match(r"\<foo\>", e, "a foo b"));
        assert!(!is_match(r"\<foo\>", e, "afoob"));
        assert!(is_match(r"\.", e, "."));
        assert!(!is_match(r"\.", e, "a"));
        assert!(is_match("a)", e, "a)"));
    }

    #[test]
    fn emacs_flavor() {
        let m = Syntax::Emacs;
        assert!(is_match(r".*\.txt", m, "./a.txt"));
        assert!(is_match(r"a+", m, "aa"));
        assert!(is_match(r"\(a\|b\)c", m, "bc"));
        assert!(is_match(r"x{2}", m, "x{2}"));
    }

    #[test]
    fn refusals() {
        assert!(translate(r"\(a\)\1", Syntax::Basic).is_err());
        assert!(translate("[abc", Syntax::Extended).is_err());
        assert!(translate(r"a\", Syntax::Extended).is_err());
        assert!(translate(r"\(a", Syntax::Basic).is_err());
    }
}
