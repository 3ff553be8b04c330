//! The `-o` printer: each non-empty match on its own line, prefixed like GNU grep
//! (`FILE:`, `LINE:`, `OFFSET:` of the match). GNU skips empty matches; ripgrep's printer does
//! not, hence this sink.

use grep_matcher::Matcher;
use grep_regex::RegexMatcher;
use grep_searcher::{Searcher, Sink, SinkMatch};
use std::io::{self, Write};

/// Prints the matches of one file.
pub struct OnlyMatching<'a, W: Write> {
    pub matcher: &'a RegexMatcher,
    pub out: &'a mut W,
    /// The file name prefix (already with its `:` or NUL), if file names are shown.
    pub prefix: Option<Vec<u8>>,
    pub byte_offset: bool,
    pub terminator: u8,
    /// Whether any line matched (even if all its matches were empty).
    pub matched: bool,
}

impl<W: Write> Sink for OnlyMatching<'_, W> {
    type Error = io::Error;

    fn matched(&mut self, _: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.matched = true;
        let mut line_number = mat.line_number();
        let mut offset = mat.absolute_byte_offset();
        for line in mat.lines() {
            let mut result = Ok(());
            let found = self.matcher.find_iter(line, |m| {
                if m.is_empty() {
                    return true;
                }
                result = self.write_one(line_number, offset + m.start() as u64, &line[m]);
                result.is_ok()
            });
            found.map_err(io::Error::other)?;
            result?;
            line_number = line_number.map(|n| n + 1);
            offset += line.len() as u64;
        }
        Ok(true)
    }
}

impl<W: Write> OnlyMatching<'_, W> {
    fn write_one(&mut self, line: Option<u64>, offset: u64, text: &[u8]) -> io::Result<()> {
        if let Some(p) = &self.prefix {
            self.out.write_all(p)?;
        }
        if let Some(n) = line {
            write!(self.out, "{n}:")?;
        }
        if self.byte_offset {
            write!(self.out, "{offset}:")?;
        }
        self.out.write_all(text)?;
        self.out.write_all(&[self.terminator])
    }
}
