//! POSIX pattern languages translated into Rust `regex` syntax, shared by grep, find, du and
//! tree: regular expressions in basic (BRE), extended (ERE) and Emacs flavours ([`regex`]),
//! shell wildcards as `fnmatch(3)` reads them ([`glob`]), and the bracket expressions both use
//! ([`bracket`]).
//!
//! The translators are pure functions from a pattern string to a regex string; compiling is left
//! to the caller, which picks the engine (`grep-regex` or `regex`).

pub mod bracket;
pub mod glob;
pub mod regex;

/// Appends `c` to `out` as a regex literal (escaped when it is not alphanumeric).
pub fn push_literal(out: &mut String, c: char) {
    if c.is_alphanumeric() || c == '_' || !c.is_ascii() {
        out.push(c);
    } else {
        // `\x{..}` is valid inside and outside classes, whatever the character.
        out.push_str(&format!("\\x{{{:x}}}", c as u32));
    }
}
