//! The current record and its fields: splitting by FS (blanks by default, one literal
//! character, or a regex; newline also separates in paragraph mode), lazily on first use, and
//! rebuilding `$0` with OFS when a field or NF is assigned.
//!
//! Must not: read input or know about variables other than what it is handed (FS at the time
//! the record was read, OFS at the time of a rebuild).

use super::error::AwkError;
use super::regex::{AwkRegex, Cache};
use std::rc::Rc;

/// The largest field number that may be assigned or NF set to: a client-controlled
/// allocation otherwise.
pub const MAX_FIELDS: usize = 1 << 20;

/// How a string is split into fields.
pub enum FieldSep {
    /// FS = " ": runs of blanks and newlines, leading and trailing ones ignored.
    Blanks,
    /// A single literal character.
    Char(char),
    /// Every character is a field (FS = "").
    Chars,
    Regex(Rc<AwkRegex>),
}

impl FieldSep {
    /// FS's meaning; `paragraph` (RS = "") makes newline a separator too.
    pub fn from_fs(fs: &str, paragraph: bool, cache: &mut Cache) -> Result<FieldSep, AwkError> {
        let mut chars = fs.chars();
        Ok(match (chars.next(), chars.next()) {
            (Some(' '), None) => FieldSep::Blanks,
            (None, _) => FieldSep::Chars,
            (Some(c), None) if !paragraph || c == '\n' => FieldSep::Char(c),
            (Some(c), None) => {
                let mut lit = String::new();
                crate::pattern::push_literal(&mut lit, c);
                FieldSep::Regex(cache.get(&format!("{lit}|\n"))?)
            }
            _ if paragraph => FieldSep::Regex(cache.get(&format!("({fs})|\n"))?),
            _ => FieldSep::Regex(cache.get(fs)?),
        })
    }

    /// Splits `s`.
    pub fn split(&self, s: &str) -> Vec<String> {
        match self {
            FieldSep::Blanks => s
                .split([' ', '\t', '\n'])
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            _ if s.is_empty() => Vec::new(),
            FieldSep::Char(c) => s.split(*c).map(str::to_owned).collect(),
            FieldSep::Chars => s.chars().map(String::from).collect(),
            FieldSep::Regex(re) => {
                let mut out = Vec::new();
                let mut start = 0;
                let mut at = 0;
                while at <= s.len() {
                    let Some((a, b)) = re.find_at(s, at) else {
                        break;
                    };
                    if b == a {
                        // An empty match separates nothing; look further on.
                        at = next_boundary(s, a);
                        continue;
                    }
                    out.push(s[start..a].to_owned());
                    start = b;
                    at = b;
                }
                out.push(s[start..].to_owned());
                out
            }
        }
    }
}

/// The byte index of the character after the one at `i` (or past the end).
pub fn next_boundary(s: &str, i: usize) -> usize {
    s[i..]
        .chars()
        .next()
        .map_or(s.len() + 1, |c| i + c.len_utf8())
}

/// `$0` and its fields.
#[derive(Default)]
pub struct Record {
    text: String,
    /// `$1`.. once split.
    fields: Option<Vec<String>>,
}

impl Record {
    /// A new `$0`; fields are split on first use.
    pub fn set_text(&mut self, text: String) {
        self.text = text;
        self.fields = None;
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Splits if not split yet.
    pub fn ensure_split(&mut self, sep: &FieldSep) {
        if self.fields.is_none() {
            self.fields = Some(sep.split(&self.text));
        }
    }

    pub fn is_split(&self) -> bool {
        self.fields.is_some()
    }

    /// NF (after [`Record::ensure_split`]).
    pub fn nf(&self) -> usize {
        self.fields.as_ref().map_or(0, Vec::len)
    }

    /// `$i` for i ≥ 1 (after [`Record::ensure_split`]); `None` past NF.
    pub fn field(&self, i: usize) -> Option<&str> {
        self.fields
            .as_ref()
            .and_then(|f| f.get(i.wrapping_sub(1)))
            .map(String::as_str)
    }

    /// Assigns `$i` (i ≥ 1), growing NF as needed, and rebuilds `$0` with `ofs`.
    pub fn set_field(&mut self, i: usize, value: String, ofs: &str) -> Result<(), AwkError> {
        if i > MAX_FIELDS {
            return Err(AwkError::Runtime(format!("field index {i} too large")));
        }
        let fields = self.fields.get_or_insert_with(Vec::new);
        if fields.len() < i {
            fields.resize(i, String::new());
        }
        fields[i - 1] = value;
        self.rebuild(ofs);
        Ok(())
    }

    /// Sets NF: drops or adds empty fields and rebuilds `$0`.
    pub fn set_nf(&mut self, n: usize, ofs: &str) -> Result<(), AwkError> {
        if n > MAX_FIELDS {
            return Err(AwkError::Runtime(format!("NF value {n} too large")));
        }
        self.fields
            .get_or_insert_with(Vec::new)
            .resize(n, String::new());
        self.rebuild(ofs);
        Ok(())
    }

    fn rebuild(&mut self, ofs: &str) {
        if let Some(f) = &self.fields {
            self.text = f.join(ofs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(fs: &str, s: &str) -> Vec<String> {
        let mut cache = Cache::default();
        FieldSep::from_fs(fs, false, &mut cache)
            .map(|f| f.split(s))
            .unwrap_or_default()
    }

    #[test]
    fn separators() {
        assert_eq!(split(" ", "  a b\t c \n"), ["a", "b", "c"]);
        assert_eq!(split(":", "a::b"), ["a", "", "b"]);
        assert_eq!(split("|", "a|b"), ["a", "b"]);
        assert_eq!(split("[:,]+", ":a,,b"), ["", "a", "b"]);
        assert_eq!(split(",", ""), Vec::<String>::new());
    }
}
