//! Word expansion as bash does it, in bash's order: brace expansion, tilde, parameters,
//! command substitution and arithmetic, then field splitting on `IFS`, pathname expansion
//! ([`super::pattern::glob`]) and quote removal.
//!
//! An expanded word is a list of [`Seg`]ments that remember where each part came from: text
//! written unquoted (globbed, not split), the result of an unquoted expansion (split and
//! globbed) and quoted text (neither). Every result is bounded: a value by
//! [`super::Bounds::max_value_bytes`], a command's words by [`super::Bounds::max_fields`].
//! Parameter expansion is [`super::param`]'s, brace expansion [`super::brace`]'s, command
//! substitution [`super::substitute`]'s; this module must not start anything itself.

use super::exec::{Abort, Res};
use super::pattern;
use super::state::State;
use super::{Ctx, Host, ShellError, arith, parse};
use brush_parser::ast::Word;
use brush_parser::word::{self, WordPiece as WP, WordPieceWithSource};
use futures_util::future::BoxFuture;

/// A part of an expanded word.
#[derive(Debug, Clone)]
pub enum Seg {
    /// Written unquoted in the script: globbed, not split.
    Literal(String),
    /// The result of an unquoted expansion: split on `IFS` and globbed.
    Expanded(String),
    /// Quoted: neither split nor globbed (an empty one still makes a word).
    Quoted(String),
    /// A word boundary (`"$@"`).
    Break,
}

/// Expands `words` into the fields of a command: every step, with splitting and globbing.
///
/// # Errors
/// A bound, a failing command substitution's stop, a refused construct.
pub async fn fields<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    words: &[&Word],
) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for w in words {
        for text in super::brace::brace(ctx, &w.value)? {
            let pieces = parse_word(&text)?;
            let mut segs = Vec::new();
            pieces_into(ctx, st, &pieces, false, &mut segs).await?;
            split_and_glob(ctx, st, segs, &mut out)?;
            if out.len() > ctx.bounds.max_fields {
                return Err(bound(format!(
                    "a command's words expanded to more than {} fields",
                    ctx.bounds.max_fields
                )));
            }
        }
    }
    Ok(out)
}

/// The text of expanded segments as one string; quoted parts escaped as pattern text when
/// `as_pattern`.
fn join_segs(segs: Vec<Seg>, as_pattern: bool) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Quoted(t) if as_pattern => s.push_str(&pattern::escape(&t)),
            Seg::Literal(t) | Seg::Expanded(t) | Seg::Quoted(t) => s.push_str(&t),
            Seg::Break => s.push(' '),
        }
    }
    s
}

/// Expands one word into one string: no splitting, no globbing (assignments, redirection
/// targets, `case` words, here-strings, `[[ ]]` operands).
///
/// # Errors
/// As [`fields`].
pub async fn single<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, w: &str) -> Res<String> {
    let pieces = parse_word(w)?;
    let mut segs = Vec::new();
    pieces_into(ctx, st, &pieces, false, &mut segs).await?;
    Ok(join_segs(segs, false))
}

/// Expands one word into a pattern: quoted parts are escaped so they match only themselves.
///
/// # Errors
/// As [`fields`].
pub async fn pattern_of<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, w: &str) -> Res<String> {
    let pieces = parse_word(w)?;
    let mut segs = Vec::new();
    pieces_into(ctx, st, &pieces, false, &mut segs).await?;
    Ok(join_segs(segs, true))
}

/// Expands a here-document's body (unquoted delimiter): parameters, command substitution and
/// arithmetic; quotes are plain characters.
///
/// # Errors
/// As [`fields`].
pub async fn heredoc<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, body: &str) -> Res<String> {
    expand_text(ctx, st, body).await
}

fn parse_word(w: &str) -> Result<Vec<WordPieceWithSource>, ShellError> {
    parse::contained("word", || word::parse(w, &parse::options()))?
        .map_err(|e| ShellError::Syntax(e.to_string()))
}

pub(super) fn bound(msg: String) -> Abort {
    Abort::Stop(ShellError::Bounds(msg))
}

fn seg_len(seg: &Seg) -> usize {
    match seg {
        Seg::Literal(t) | Seg::Expanded(t) | Seg::Quoted(t) => t.len(),
        Seg::Break => 0,
    }
}

/// Adds `seg` to a word being expanded, within the bound on a word's (or a here-document's)
/// whole size, not only on each part's (found by review: `"$x$x…"` of a 1 MiB `x` made a
/// word of gigabytes).
pub(super) fn push_checked<H: Host>(ctx: &Ctx<'_, H>, out: &mut Vec<Seg>, seg: Seg) -> Res<()> {
    let total = out.iter().map(seg_len).sum::<usize>() + seg_len(&seg);
    if total > ctx.bounds.max_value_bytes {
        return Err(bound(format!(
            "an expansion produced {total} bytes; the limit is {}",
            ctx.bounds.max_value_bytes
        )));
    }
    if out.len() >= ctx.bounds.max_fields {
        return Err(bound(format!(
            "an expansion made more than {} parts",
            ctx.bounds.max_fields
        )));
    }
    out.push(seg);
    Ok(())
}

/// Expands the pieces of a word into `out`; `quoted` when inside double quotes (or a
/// here-document).
fn pieces_into<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    pieces: &'a [WordPieceWithSource],
    quoted: bool,
    out: &'a mut Vec<Seg>,
) -> BoxFuture<'a, Res<()>> {
    Box::pin(async move {
        for p in pieces {
            let value = |t: String| {
                if quoted {
                    Seg::Quoted(t)
                } else {
                    Seg::Expanded(t)
                }
            };
            match &p.piece {
                WP::Text(t) => {
                    let seg = if quoted {
                        Seg::Quoted(t.clone())
                    } else {
                        Seg::Literal(t.clone())
                    };
                    push_checked(ctx, out, seg)?;
                }
                WP::SingleQuotedText(t) => push_checked(ctx, out, Seg::Quoted(t.clone()))?,
                WP::AnsiCQuotedText(t) => push_checked(ctx, out, Seg::Quoted(ansi_c(t)))?,
                WP::DoubleQuotedSequence(inner) | WP::GettextDoubleQuotedSequence(inner) => {
                    out.push(Seg::Quoted(String::new()));
                    pieces_into(ctx, st, inner, true, out).await?;
                }
                WP::EscapeSequence(s) => {
                    let c = s.strip_prefix('\\').unwrap_or(s);
                    let t = if c == "\n" {
                        String::new()
                    } else {
                        c.to_owned()
                    };
                    push_checked(ctx, out, Seg::Quoted(t))?;
                }
                WP::TildeExpansion(t) => {
                    let home = st.get("HOME").unwrap_or("/").to_owned();
                    let text = match t {
                        word::TildeExpr::Home => home,
                        word::TildeExpr::WorkingDir => st.guest_cwd(),
                        word::TildeExpr::UserHome(u) => format!("~{u}"),
                        _ => "~".to_owned(),
                    };
                    push_checked(ctx, out, Seg::Quoted(text))?;
                }
                WP::ParameterExpansion(expr) => {
                    super::param::param(ctx, st, expr, quoted, out).await?
                }
                WP::CommandSubstitution(text) | WP::BackquotedCommandSubstitution(text) => {
                    let t = super::substitute::substitute(ctx, st, text).await?;
                    push_checked(ctx, out, value(t))?;
                }
                WP::ArithmeticExpression(e) => {
                    let text = expand_text(ctx, st, &e.value).await?;
                    let n = arith_or_exit(ctx, st, &text).await?;
                    push_checked(ctx, out, value(n.to_string()))?;
                }
            }
        }
        Ok(())
    })
}

/// Evaluates arithmetic; a malformed expression (or a division by zero) is printed and ends
/// the shell with status 1, as in a non-interactive bash.
pub async fn arith_or_exit<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, text: &str) -> Res<i64> {
    match arith::eval_text(
        text,
        &mut ArithVars {
            st,
            ctx_bounds: ctx.bounds,
        },
    ) {
        Ok(v) => Ok(v),
        Err(ShellError::Syntax(m)) => {
            st.complain(&m).await;
            Err(Abort::Exit(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// Expands `text` as if double-quoted (arithmetic text, parameter defaults inside quotes).
pub fn expand_text<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    text: &'a str,
) -> BoxFuture<'a, Res<String>> {
    Box::pin(async move {
        let pieces = parse::contained("text", || word::parse_heredoc(text, &parse::options()))?
            .map_err(|e| ShellError::Syntax(e.to_string()))?;
        let mut segs = Vec::new();
        pieces_into(ctx, st, &pieces, true, &mut segs).await?;
        Ok(join_segs(segs, false))
    })
}

/// Expands an operand word of a parameter expansion (a default, a pattern, a replacement),
/// in the quoting of the expansion.
pub(super) fn operand<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    text: &'a str,
    quoted: bool,
    out: &'a mut Vec<Seg>,
) -> BoxFuture<'a, Res<()>> {
    Box::pin(async move {
        let pieces = parse_word(text)?;
        pieces_into(ctx, st, &pieces, quoted, out).await
    })
}

/// Arithmetic's view of the shell's variables.
pub struct ArithVars<'s> {
    pub st: &'s mut State,
    pub ctx_bounds: super::Bounds,
}

impl arith::Vars for ArithVars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.st.get(name).map(str::to_owned)
    }
    fn set(&mut self, name: &str, value: i64) -> Result<(), ShellError> {
        self.st.set(name, value.to_string(), &self.ctx_bounds)
    }
}

/// The escapes of `$'…'`.
pub fn ansi_c(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\x07'),
            Some('b') => out.push('\x08'),
            Some('e' | 'E') => out.push('\x1b'),
            Some('f') => out.push('\x0c'),
            Some('v') => out.push('\x0b'),
            Some('\\') => out.push('\\'),
            Some('\'') => out.push('\''),
            Some('"') => out.push('"'),
            Some('?') => out.push('?'),
            Some('x') => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && it.peek().is_some_and(char::is_ascii_hexdigit) {
                    v = v * 16 + it.next().and_then(|d| d.to_digit(16)).unwrap_or(0);
                    n += 1;
                }
                if n == 0 {
                    out.push_str("\\x");
                } else if let Some(ch) = char::from_u32(v) {
                    out.push(ch);
                }
            }
            Some(d @ '0'..='7') => {
                let mut v = d.to_digit(8).unwrap_or(0);
                let mut n = 1;
                while n < 3 && it.peek().is_some_and(|c| ('0'..='7').contains(c)) {
                    v = v * 8 + it.next().and_then(|d| d.to_digit(8)).unwrap_or(0);
                    n += 1;
                }
                if let Some(ch) = char::from_u32(v) {
                    out.push(ch);
                }
            }
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Splits the segments of one word into fields on `IFS`, then expands globs in each.
fn split_and_glob<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &State,
    segs: Vec<Seg>,
    out: &mut Vec<String>,
) -> Res<()> {
    let ifs = st.get("IFS").unwrap_or(" \t\n").to_owned();
    let is_ws = |c: char| ifs.contains(c) && c.is_whitespace();
    // A field in progress: (text, pattern, started, has an unquoted glob part)
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    let mut pat = String::new();
    let mut started = false;
    let end = |text: &mut String,
               pat: &mut String,
               started: &mut bool,
               fields: &mut Vec<(String, String)>| {
        if *started {
            fields.push((std::mem::take(text), std::mem::take(pat)));
        }
        text.clear();
        pat.clear();
        *started = false;
    };
    for seg in segs {
        match seg {
            Seg::Literal(t) => {
                text.push_str(&t);
                pat.push_str(&t);
                started |= !t.is_empty();
            }
            Seg::Quoted(t) => {
                pat.push_str(&pattern::escape(&t));
                text.push_str(&t);
                started = true;
            }
            Seg::Break => end(&mut text, &mut pat, &mut started, &mut fields),
            Seg::Expanded(t) => {
                if ifs.is_empty() {
                    pat.push_str(&t);
                    text.push_str(&t);
                    started |= !t.is_empty();
                    continue;
                }
                let mut chars = t.chars().peekable();
                while let Some(c) = chars.next() {
                    if ifs.contains(c) {
                        if is_ws(c) {
                            end(&mut text, &mut pat, &mut started, &mut fields);
                            while chars.peek().is_some_and(|&n| is_ws(n)) {
                                chars.next();
                            }
                            // A non-blank IFS character after blanks is one delimiter with them.
                            if chars.peek().is_some_and(|&n| ifs.contains(n) && !is_ws(n)) {
                                chars.next();
                                while chars.peek().is_some_and(|&n| is_ws(n)) {
                                    chars.next();
                                }
                            }
                        } else {
                            started = true;
                            end(&mut text, &mut pat, &mut started, &mut fields);
                            while chars.peek().is_some_and(|&n| is_ws(n)) {
                                chars.next();
                            }
                        }
                    } else {
                        text.push(c);
                        // An expansion's own pattern characters are live, as in bash.
                        pat.push(c);
                        started = true;
                    }
                }
            }
        }
    }
    end(&mut text, &mut pat, &mut started, &mut fields);
    for (text, pat) in fields {
        if !st.options.noglob
            && pattern::has_glob(&pat)
            && let Some(names) =
                pattern::glob(ctx.host.workspace(), &st.cwd, &pat, ctx.bounds.max_fields)?
        {
            out.extend(names);
            continue;
        }
        out.push(text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_c_escapes() {
        assert_eq!(ansi_c(r"a\tb\n\x41\101\\"), "a\tb\nAA\\");
    }
}
