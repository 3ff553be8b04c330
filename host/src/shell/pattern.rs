//! Shell patterns: matching (`case`, `[[ == ]]`, `${x%pat}`, `${x/pat/rep}`) and pathname
//! expansion (globs) beneath the workspace.
//!
//! A pattern is text in which a quoted character is escaped with `\` (so `"*"` is a literal
//! star). brush-parser turns it into a regular expression, compiled here with a size limit.
//! Globs follow bash's defaults: a name starting with `.` matches only a pattern starting with
//! `.`, `.` and `..` are never produced, results are sorted bytewise (LC_ALL=C), and a
//! pattern that matches nothing stays as written. Directories are read through the workspace
//! capability only; the number of entries read and names produced is bounded. This module
//! must not open anything for writing.

use super::ShellError;
use crate::workspace::Workspace;
use regex::{Regex, RegexBuilder};

/// Most directory entries one pathname expansion may read.
const MAX_ENTRIES_READ: usize = 200_000;

/// Longest pattern compiled (a glob, a `case` pattern, an operand of `${x%…}`).
pub const MAX_PATTERN_BYTES: usize = 64 * 1024;

/// Most `[` a compiled pattern may have: brush-parser's translation is quadratic in them
/// (found by review: 16,384 took 12 s; at this bound about 2 ms).
pub const MAX_PATTERN_BRACKETS: usize = 256;

/// Longest value a prefix or suffix removal (`${x%pat}`, quadratic in the length) works on.
pub const MAX_TRIM_BYTES: usize = 16 * 1024;

/// Escapes the pattern characters of `text`, which then matches only itself.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Removes the escapes [`escape`] added (a pattern used as plain text).
pub fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `pattern` has an unescaped `*` or `?`, or an unescaped `[` with a `]` after it.
/// Linear in the pattern (brush-parser's own check is quadratic in its brackets, and this runs
/// on every unquoted word).
pub fn has_glob(pattern: &str) -> bool {
    let last_close = pattern.rfind(']');
    let mut escaped = false;
    for (i, c) in pattern.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '*' | '?' => return true,
            '[' if last_close.is_some_and(|j| j > i) => return true,
            _ => {}
        }
    }
    false
}

/// `pattern` as a regular expression body (not anchored).
fn regex_body(pattern: &str) -> Result<String, ShellError> {
    super::parse::contained("pattern", || {
        brush_parser::pattern::pattern_to_regex_str(pattern, false)
    })?
    .map_err(|e| ShellError::Syntax(format!("bad pattern {pattern:?}: {e}")))
}

fn build(re: &str) -> Result<Regex, ShellError> {
    RegexBuilder::new(re)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| ShellError::Bounds(format!("pattern too large or invalid: {e}")))
}

/// A compiled pattern matching whole strings.
pub struct Pattern {
    whole: Regex,
    body: String,
}

impl Pattern {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// A pattern brush-parser cannot read, or one whose regex is too large.
    pub fn new(pattern: &str) -> Result<Self, ShellError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(ShellError::Bounds(format!(
                "a pattern of {} bytes; the limit is {MAX_PATTERN_BYTES}",
                pattern.len()
            )));
        }
        let brackets = pattern.bytes().filter(|&b| b == b'[').count();
        if brackets > MAX_PATTERN_BRACKETS {
            return Err(ShellError::Bounds(format!(
                "a pattern with {brackets} `[`; the limit is {MAX_PATTERN_BRACKETS}"
            )));
        }
        let body = regex_body(pattern)?;
        Ok(Self {
            whole: build(&format!("^(?s:{body})$"))?,
            body,
        })
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.whole.is_match(text)
    }

    /// `text` without the shortest (`longest = false`) or longest prefix that matches.
    ///
    /// # Errors
    /// A value longer than [`MAX_TRIM_BYTES`].
    pub fn trim_prefix<'t>(&self, text: &'t str, longest: bool) -> Result<&'t str, ShellError> {
        check_trim(text)?;
        let mut ends: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        if longest {
            ends.reverse();
        }
        Ok(ends
            .into_iter()
            .find(|&e| self.matches(&text[..e]))
            .map_or(text, |e| &text[e..]))
    }

    /// `text` without the shortest or longest suffix that matches.
    ///
    /// # Errors
    /// A value longer than [`MAX_TRIM_BYTES`].
    pub fn trim_suffix<'t>(&self, text: &'t str, longest: bool) -> Result<&'t str, ShellError> {
        check_trim(text)?;
        let mut starts: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        if !longest {
            starts.reverse();
        }
        Ok(starts
            .into_iter()
            .find(|&s| self.matches(&text[s..]))
            .map_or(text, |s| &text[..s]))
    }

    /// `${x/pat/rep}` and its kinds: replaces the first (or every) longest match, or one
    /// anchored at the start or end.
    ///
    /// # Errors
    /// A regex too large to build.
    pub fn replace(
        &self,
        text: &str,
        rep: &str,
        kind: Replace,
        max: usize,
    ) -> Result<String, ShellError> {
        if self.body.is_empty() {
            return Ok(text.to_owned());
        }
        let anchored = match kind {
            Replace::Prefix => format!("^(?s:{})", self.body),
            Replace::Suffix => format!("(?s:{})$", self.body),
            Replace::First | Replace::All => format!("(?s:{})", self.body),
        };
        let re = build(&anchored)?;
        Ok(match kind {
            Replace::All => {
                // The result is measured before it is built (found by review: a 1 MiB value
                // with every character replaced by itself asked for a terabyte).
                let mut size = text.len();
                for m in re.find_iter(text) {
                    size = size - m.len() + rep.len();
                    if size > max {
                        return Err(ShellError::Bounds(format!(
                            "a replacement would make more than {max} bytes"
                        )));
                    }
                }
                re.replace_all(text, regex::NoExpand(rep)).into_owned()
            }
            Replace::Suffix => {
                // The longest suffix: the earliest start from which the rest matches.
                let starts = text.char_indices().map(|(i, _)| i);
                match starts.into_iter().find(|&s| self.matches(&text[s..])) {
                    Some(s) => format!("{}{rep}", &text[..s]),
                    None => text.to_owned(),
                }
            }
            _ => re.replace(text, regex::NoExpand(rep)).into_owned(),
        })
    }
}

/// Which match `${x/…}` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    First,
    All,
    Prefix,
    Suffix,
}

fn check_trim(text: &str) -> Result<(), ShellError> {
    if text.len() > MAX_TRIM_BYTES {
        return Err(ShellError::Bounds(format!(
            "a pattern removal on a value of {} bytes; the limit is {MAX_TRIM_BYTES}",
            text.len()
        )));
    }
    Ok(())
}

/// Expands the glob `pattern` (escaped as above) relative to `cwd`; `None` when it matches
/// nothing (the caller keeps the word as written).
///
/// # Errors
/// Past `max_fields` names or [`MAX_ENTRIES_READ`] entries read, or a bad pattern.
pub fn glob(
    ws: &Workspace,
    cwd: &str,
    pattern: &str,
    max_fields: usize,
) -> Result<Option<Vec<String>>, ShellError> {
    let absolute = pattern.starts_with('/');
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    // (the path as it will be printed, the path relative to the workspace root)
    let start_shown = if absolute {
        "/".to_owned()
    } else {
        String::new()
    };
    let start_rel = if absolute {
        String::new()
    } else {
        cwd.to_owned()
    };
    let mut found = vec![(start_shown, start_rel)];
    let mut read = 0usize;
    let trailing_slash = pattern.ends_with('/');
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for (shown, rel) in &found {
            if !has_glob(part) {
                let name = unescape(part);
                let (s, r) = (join_shown(shown, &name), join_rel(rel, &name));
                if last && !exists(ws, &r, trailing_slash) {
                    continue;
                }
                next.push((s, r));
                continue;
            }
            let matcher = Pattern::new(part)?;
            let dot_ok = part.starts_with('.') || part.starts_with("\\.");
            let dir = if rel.is_empty() {
                ws.root().try_clone()
            } else {
                ws.root().open_dir(rel)
            };
            let Ok(dir) = dir else { continue };
            let Ok(entries) = dir.entries() else { continue };
            let mut names = Vec::new();
            for e in entries.flatten() {
                read += 1;
                if read > MAX_ENTRIES_READ {
                    return Err(ShellError::Bounds(format!(
                        "a glob read more than {MAX_ENTRIES_READ} directory entries"
                    )));
                }
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') && !dot_ok {
                    continue;
                }
                if !last || trailing_slash {
                    let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                        || (e.file_type().map(|t| t.is_symlink()).unwrap_or(false)
                            && dir.metadata(&name).map(|m| m.is_dir()).unwrap_or(false));
                    if !is_dir {
                        continue;
                    }
                }
                if matcher.matches(&name) {
                    names.push(name);
                }
            }
            names.sort();
            for name in names {
                next.push((join_shown(shown, &name), join_rel(rel, &name)));
                if next.len() > max_fields {
                    return Err(ShellError::Bounds(format!(
                        "a glob matched more than {max_fields} names"
                    )));
                }
            }
        }
        found = next;
        if found.is_empty() {
            return Ok(None);
        }
    }
    let mut out: Vec<String> = found
        .into_iter()
        .map(|(s, _)| if trailing_slash { format!("{s}/") } else { s })
        .collect();
    if out.is_empty() {
        return Ok(None);
    }
    out.sort();
    Ok(Some(out))
}

fn join_shown(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

fn join_rel(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}/{name}")
    }
}

fn exists(ws: &Workspace, rel: &str, want_dir: bool) -> bool {
    match ws.root().metadata(rel) {
        Ok(m) => !want_dir || m.is_dir(),
        Err(_) => ws.root().symlink_metadata(rel).is_ok() && !want_dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_bash_does() {
        let p = Pattern::new("*.rs").unwrap();
        assert!(p.matches("a.rs") && !p.matches("a.rsx"));
        assert!(Pattern::new("[ab]?").unwrap().matches("bz"));
        assert!(!Pattern::new(&escape("*")).unwrap().matches("x"));
        assert!(Pattern::new(&escape("*")).unwrap().matches("*"));
        assert!(Pattern::new("[!a]*").unwrap().matches("bcd"));
    }

    #[test]
    fn glob_checks_are_linear_and_bracket_heavy_patterns_are_bounded() {
        let brackets = "[".repeat(1 << 20);
        let started = std::time::Instant::now();
        assert!(!has_glob(&brackets));
        assert!(has_glob(&format!("{brackets}]")));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(matches!(
            Pattern::new(&"[a".repeat(300)),
            Err(ShellError::Bounds(_))
        ));
        assert!(has_glob("a*") && has_glob("[ab]") && !has_glob("\\*") && !has_glob("a[b"));
    }

    #[test]
    fn trims_and_replacements() {
        let p = Pattern::new("*/").unwrap();
        assert_eq!(p.trim_prefix("a/b/c", true).unwrap(), "c");
        assert_eq!(p.trim_prefix("a/b/c", false).unwrap(), "b/c");
        let dot = Pattern::new(".*").unwrap();
        assert_eq!(dot.trim_suffix("x.tar.gz", false).unwrap(), "x.tar");
        assert_eq!(dot.trim_suffix("x.tar.gz", true).unwrap(), "x");
        let o = Pattern::new("o").unwrap();
        assert_eq!(o.replace("foo", "0", Replace::All, 100).unwrap(), "f00");
        assert!(o.replace("foo", "0000", Replace::All, 8).is_err());
        assert_eq!(o.replace("foo", "0", Replace::First, 100).unwrap(), "f0o");
        assert_eq!(o.replace("foo", "0", Replace::Suffix, 100).unwrap(), "fo0");
        assert!(
            p.trim_prefix(&"a".repeat(MAX_TRIM_BYTES + 1), true)
                .is_err()
        );
    }

    #[test]
    fn globs_read_the_workspace_sorted_and_skip_dotfiles() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.rs", "a.rs", ".h.rs", "c.txt", "sub/d.rs"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let ws = Workspace::open(dir.path()).unwrap();
        let g = |p: &str| glob(&ws, "", p, 100).unwrap();
        assert_eq!(g("*.rs").unwrap(), ["a.rs", "b.rs"]);
        assert_eq!(g(".*.rs").unwrap(), [".h.rs"]);
        assert_eq!(g("*/*.rs").unwrap(), ["sub/d.rs"]);
        assert_eq!(g("/sub/*").unwrap(), ["/sub/d.rs"]);
        assert_eq!(g("*/").unwrap(), ["sub/"]);
        assert!(g("*.none").is_none());
        assert_eq!(glob(&ws, "sub", "*", 100).unwrap().unwrap(), ["d.rs"]);
        assert!(glob(&ws, "", "*", 1).is_err(), "past max_fields");
    }
}
