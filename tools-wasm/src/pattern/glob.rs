//! Shell wildcards as `fnmatch(3)` reads them (`*`, `?`, `[...]`, `\` quoting), translated into
//! an anchored Rust regex. Used by `find -name/-path`, `grep --include/--exclude`, `du
//! --exclude` and `tree -I/-P`.
//!
//! Unlike globset there are no `{a,b}` alternatives and no `**`: those are literal, as in find.

use super::bracket::{self, Flavor};
use super::push_literal;
use regex::{Regex, RegexBuilder};

const BRACKET: Flavor = Flavor {
    bang_negates: true,
    backslash_escapes: true,
};

/// Translates `pattern` into an anchored regex string. With `pathname`, `*`, `?` and brackets do
/// not match `/` (`FNM_PATHNAME`).
pub fn translate(pattern: &str, pathname: bool) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::from("(?s)^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => out.push_str(if pathname { "[^/]*" } else { ".*" }),
            '?' => out.push_str(if pathname { "[^/]" } else { "." }),
            '[' => match bracket::translate(&chars, i + 1, BRACKET)? {
                Some((class, end)) => {
                    if pathname {
                        // Rust class intersection: the bracket, minus `/`.
                        out.push_str(&format!("[{class}&&[^/]]"));
                    } else {
                        out.push_str(&class);
                    }
                    i = end;
                    continue;
                }
                None => push_literal(&mut out, '['),
            },
            '\\' if i + 1 < chars.len() => {
                i += 1;
                push_literal(&mut out, chars[i]);
            }
            _ => push_literal(&mut out, c),
        }
        i += 1;
    }
    out.push('$');
    Ok(out)
}

/// A compiled wildcard.
#[derive(Clone, Debug)]
pub struct Glob(Regex);

impl Glob {
    /// Compiles `pattern`; `fold_case` for `-iname` and friends.
    pub fn new(pattern: &str, pathname: bool, fold_case: bool) -> Result<Glob, String> {
        let re = translate(pattern, pathname)?;
        RegexBuilder::new(&re)
            .case_insensitive(fold_case)
            .build()
            .map(Glob)
            .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
    }

    /// True when the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p, false, false).unwrap().is_match(s)
    }

    #[test]
    fn wildcards() {
        assert!(m("*.txt", "a.txt"));
        assert!(m("*.txt", ".hidden.txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(m("[!a]*", "bcd"));
        assert!(!m("[!a]*", "abc"));
        assert!(m("{a,b}", "{a,b}"));
        assert!(m(r"\*", "*"));
        assert!(!m(r"\*", "x"));
        assert!(m("[", "["));
        assert!(m("*/b", "a/x/b"));
        assert!(!Glob::new("*/b", true, false).unwrap().is_match("a/x/b"));
        assert!(Glob::new("*.TXT", false, true).unwrap().is_match("a.txt"));
    }
}
