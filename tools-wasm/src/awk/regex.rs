//! awk regular expressions (POSIX EREs) with POSIX's leftmost-longest matching.
//!
//! The pattern is translated by `crate::pattern::regex` (ERE flavour); `.` also matches a
//! newline, as in awk. The `regex` crate finds the leftmost start of a match (every match kind
//! agrees on it) but picks among alternatives in order, so `ab|abcd` on "abcd" would stop at 2;
//! POSIX wants the longest match at that start. The end is therefore found by a lazy DFA built
//! with `MatchKind::All`, run anchored at the start: it reports the last (longest) match end.
//!
//! Must not: grow without bound (the cache in [`Cache`] is cleared when full).

use super::error::AwkError;
use crate::pattern::regex::{Syntax, translate};
use regex::Regex;
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::{Anchored, Input, MatchKind};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// One compiled awk regex.
pub struct AwkRegex {
    re: Regex,
    /// The longest-match DFA and its cache, built on first need; `None` inside when it could
    /// not be built (the leftmost-first end is used then).
    longest: RefCell<Option<Option<(DFA, DfaCache)>>>,
    pattern: String,
}

impl AwkRegex {
    pub fn new(src: &str) -> Result<AwkRegex, AwkError> {
        let translated = translate(&bracket_escapes(src), Syntax::Extended)
            .map_err(|m| AwkError::Runtime(format!("invalid regexp /{src}/: {m}")))?;
        let pattern = format!("(?s:{translated})");
        let re = Regex::new(&pattern)
            .map_err(|e| AwkError::Runtime(format!("invalid regexp /{src}/: {e}")))?;
        Ok(AwkRegex {
            re,
            longest: RefCell::new(None),
            pattern,
        })
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// The leftmost-longest match in `s` starting at or after byte `from`, as a byte range.
    pub fn find_at(&self, s: &str, from: usize) -> Option<(usize, usize)> {
        let m = self.re.find_at(s, from)?;
        let end = self
            .longest_end(s, m.start())
            .unwrap_or(m.end())
            .max(m.end());
        Some((m.start(), end))
    }

    fn longest_end(&self, s: &str, start: usize) -> Option<usize> {
        let mut slot = self.longest.try_borrow_mut().ok()?;
        let built = slot.get_or_insert_with(|| {
            DFA::builder()
                .configure(DFA::config().match_kind(MatchKind::All))
                .build(&self.pattern)
                .ok()
                .map(|dfa| {
                    let cache = dfa.create_cache();
                    (dfa, cache)
                })
        });
        let (dfa, cache) = built.as_mut()?;
        let input = Input::new(s).range(start..).anchored(Anchored::Yes);
        let half = dfa.try_search_fwd(cache, &input).ok()??;
        Some(half.offset())
    }
}

/// awk lets a backslash escape inside a bracket expression (`[ \t]`, `[\]]`, `[a\-z]`), which
/// POSIX brackets do not: rewrites each such bracket into an equivalent one without escapes
/// (control escapes become the characters, and an escaped `]`, `^` or `-` moves to where it is
/// literal: `]` first, `^` and `-` last).
fn bracket_escapes(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                out.push('\\');
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                }
                i += 2;
            }
            '[' => i = bracket(&chars, i, &mut out),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Copies the bracket expression starting at `chars[start] == '['` into `out`, rewritten when
/// it holds escapes; returns the index after it (or copies the rest when it never closes).
fn bracket(chars: &[char], start: usize, out: &mut String) -> usize {
    let mut i = start + 1;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let (mut body, mut close_first, mut caret, mut dash) = (String::new(), false, false, false);
    if chars.get(i) == Some(&']') {
        close_first = true;
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            ']' => {
                // A literal `-` at either end of the members stays literal only at the end.
                if body.len() > 1 && body.starts_with('-') {
                    body.remove(0);
                    dash = true;
                }
                if body.len() > 1 && body.ends_with('-') || body == "-" && (close_first || caret) {
                    body.pop();
                    dash = true;
                }
                if caret && body.is_empty() && !close_first && !negated {
                    // `^` would come first and negate: `[\^]` is `\^`, `[\^\-]` is `[-^]`.
                    out.push_str(if dash { "[-^]" } else { "\\^" });
                    return i + 1;
                }
                out.push('[');
                if negated {
                    out.push('^');
                }
                if close_first {
                    out.push(']');
                }
                out.push_str(&body);
                if caret {
                    out.push('^');
                }
                if dash {
                    out.push('-');
                }
                out.push(']');
                return i + 1;
            }
            '[' if matches!(chars.get(i + 1), Some(':' | '=' | '.')) => {
                let kind = chars[i + 1];
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&k| chars[k] == kind && chars[k + 1] == ']');
                let stop = end.map_or(chars.len(), |k| k + 2);
                body.extend(&chars[i..stop]);
                i = stop;
            }
            '\\' if i + 1 < chars.len() => {
                match chars[i + 1] {
                    ']' => close_first = true,
                    '^' => caret = true,
                    '-' => dash = true,
                    'n' => body.push('\n'),
                    't' => body.push('\t'),
                    'r' => body.push('\r'),
                    'f' => body.push('\x0c'),
                    'v' => body.push('\x0b'),
                    'a' => body.push('\x07'),
                    'b' => body.push('\x08'),
                    c => body.push(c),
                }
                i += 2;
            }
            c => {
                body.push(c);
                i += 1;
            }
        }
    }
    // Never closed: leave it as written for the translator to report.
    out.extend(&chars[start..]);
    chars.len()
}

/// Compiled regexes by source text, so a dynamic regex in a loop compiles once.
#[derive(Default)]
pub struct Cache {
    map: HashMap<String, Rc<AwkRegex>>,
}

/// More distinct dynamic regexes than this and the cache starts over.
const CACHE_MAX: usize = 256;

impl Cache {
    pub fn get(&mut self, src: &str) -> Result<Rc<AwkRegex>, AwkError> {
        if let Some(r) = self.map.get(src) {
            return Ok(Rc::clone(r));
        }
        let r = Rc::new(AwkRegex::new(src)?);
        if self.map.len() >= CACHE_MAX {
            self.map.clear();
        }
        self.map.insert(src.to_owned(), Rc::clone(&r));
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::AwkRegex;

    fn find(p: &str, s: &str) -> Option<(usize, usize)> {
        AwkRegex::new(p).ok()?.find_at(s, 0)
    }

    #[test]
    fn escapes_in_brackets() {
        assert_eq!(super::bracket_escapes(r"[ \t]+"), "[ \t]+");
        assert_eq!(super::bracket_escapes(r"[\]a]"), "[]a]");
        assert_eq!(super::bracket_escapes(r"[^a\-z\^]"), "[^az^-]");
        assert_eq!(super::bracket_escapes(r"[\^]"), r"\^");
        assert_eq!(super::bracket_escapes(r"[\^\-]"), "[-^]");
        assert_eq!(super::bracket_escapes(r"[\]\^-]"), "[]^-]");
        assert_eq!(super::bracket_escapes(r"[-a\]]"), "[]a-]");
        assert_eq!(
            super::bracket_escapes(r"[[:alpha:]\\]x\[y"),
            r"[[:alpha:]\]x\[y"
        );
        assert_eq!(find(r"[\]]", "a]b"), Some((1, 2)));
        assert_eq!(find(r"[a\-z]+", "b-za"), Some((1, 4)));
        assert_eq!(find(r"[\t ]+", "x\t y"), Some((1, 3)));
    }

    #[test]
    fn leftmost_longest() {
        assert_eq!(find("ab|abcd", "abcd"), Some((0, 4)));
        assert_eq!(find("(a|ab)(c|bcd)", "abcd"), Some((0, 4)));
        assert_eq!(find("x*", "abc"), Some((0, 0)));
        assert_eq!(find("b+", "xxabbbc"), Some((3, 6)));
        assert_eq!(find("a.c", "a\nc"), Some((0, 3)));
        assert_eq!(find("z", "abc"), None);
    }
}
