//! A command word's literal text: what a word written with quotes and escapes but no expansion
//! stands for. The allowlist check judges such words before the script runs; a word made at run
//! time has no literal text and is judged as it starts. Pure: no state, no I/O.

use brush_parser::word::{self, WordPiece as WP, WordPieceWithSource};

/// A command word's text when it is written literally (quotes and escapes allowed, no
/// expansion); `None` when it is made at run time.
pub fn literal(text: &str) -> Option<String> {
    let pieces = super::parse::contained("word", || word::parse(text, &super::parse::options()))
        .ok()?
        .ok()?;
    let mut out = String::new();
    fn walk(pieces: &[WordPieceWithSource], out: &mut String) -> bool {
        for p in pieces {
            match &p.piece {
                WP::Text(t) | WP::SingleQuotedText(t) => out.push_str(t),
                WP::AnsiCQuotedText(t) => out.push_str(&super::expand::ansi_c(t)),
                WP::EscapeSequence(s) => out.push_str(s.strip_prefix('\\').unwrap_or(s)),
                WP::DoubleQuotedSequence(inner) | WP::GettextDoubleQuotedSequence(inner) => {
                    if !walk(inner, out) {
                        return false;
                    }
                }
                WP::TildeExpansion(_) => out.push('~'),
                _ => return false,
            }
        }
        true
    }
    walk(&pieces, &mut out).then_some(out)
}
