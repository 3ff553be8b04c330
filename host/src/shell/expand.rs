//! Word expansion as bash does it, in bash's order: brace expansion, tilde, parameters,
//! command substitution and arithmetic, then field splitting on `IFS`, pathname expansion
//! ([`super::pattern::glob`]) and quote removal.
//!
//! An expanded word is a list of [`Seg`]ments that remember where each part came from: text
//! written unquoted (globbed, not split), the result of an unquoted expansion (split and
//! globbed) and quoted text (neither). Every result is bounded: a value by
//! [`super::Bounds::max_value_bytes`], a command's words by [`super::Bounds::max_fields`].
//! Command substitutions run through [`super::exec`]; this module must not start anything
//! itself.

use super::exec::{Abort, Res};
use super::pattern::{self, Pattern, Replace};
use super::state::{State, is_name};
use super::{Ctx, Host, ShellError, arith, parse};
use brush_parser::ast::Word;
use brush_parser::word::{
    self, BraceExpressionMember as BM, BraceExpressionOrText as BT, Parameter, ParameterExpr as PE,
    ParameterTestType, SpecialParameter as SP, SubstringMatchKind, WordPiece as WP,
    WordPieceWithSource,
};
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
        for text in brace(ctx, &w.value)? {
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

fn bound(msg: String) -> Abort {
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
fn push_checked<H: Host>(ctx: &Ctx<'_, H>, out: &mut Vec<Seg>, seg: Seg) -> Res<()> {
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
                WP::ParameterExpansion(expr) => param(ctx, st, expr, quoted, out).await?,
                WP::CommandSubstitution(text) | WP::BackquotedCommandSubstitution(text) => {
                    let t = super::exec::substitute(ctx, st, text).await?;
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
fn operand<'a, H: Host>(
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

/// A parameter's value: `None` when unset. `$@`/`$*` give the positional parameters.
fn lookup(st: &State, p: &Parameter) -> Result<Option<Vec<String>>, ShellError> {
    Ok(match p {
        Parameter::Positional(0) => Some(vec!["runbox".into()]),
        Parameter::Positional(n) => st.positional.get(*n as usize - 1).map(|v| vec![v.clone()]),
        Parameter::Special(s) => match s {
            SP::AllPositionalParameters { .. } => Some(st.positional.clone()),
            SP::PositionalParameterCount => Some(vec![st.positional.len().to_string()]),
            SP::LastExitStatus => Some(vec![st.status.to_string()]),
            SP::CurrentOptionFlags => {
                let mut f = String::from("hB");
                if st.options.errexit {
                    f.push('e');
                }
                if st.options.noglob {
                    f.push('f');
                }
                if st.options.nounset {
                    f.push('u');
                }
                Some(vec![f])
            }
            SP::ProcessId => Some(vec!["1".into()]),
            SP::LastBackgroundProcessId => None,
            SP::ShellName => Some(vec!["runbox".into()]),
        },
        Parameter::Named(n) => st.get(n).map(|v| vec![v.to_owned()]),
        // The one array runbox keeps: the groups of the last `[[ =~ ]]`.
        Parameter::NamedWithIndex { name, index } if name == "BASH_REMATCH" => index
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| st.rematch.get(i))
            .map(|v| vec![v.clone()]),
        Parameter::NamedWithAllIndices { name, .. } if name == "BASH_REMATCH" => {
            Some(vec![st.rematch.join(" ")])
        }
        Parameter::NamedWithIndex { name, .. } | Parameter::NamedWithAllIndices { name, .. } => {
            return Err(ShellError::Construct {
                construct: format!("${{{name}[..]}}"),
                offset: None,
                why: "arrays are not supported",
            });
        }
    })
}

fn is_all(p: &Parameter) -> Option<bool> {
    match p {
        Parameter::Special(SP::AllPositionalParameters { concatenate }) => Some(*concatenate),
        _ => None,
    }
}

fn param_name(p: &Parameter) -> String {
    match p {
        Parameter::Positional(n) => n.to_string(),
        Parameter::Named(n) => n.clone(),
        Parameter::Special(SP::AllPositionalParameters { concatenate: true }) => "*".into(),
        Parameter::Special(SP::AllPositionalParameters { concatenate: false }) => "@".into(),
        Parameter::Special(_) => "?".into(),
        Parameter::NamedWithIndex { name, .. } | Parameter::NamedWithAllIndices { name, .. } => {
            name.clone()
        }
    }
}

/// Expands one `$x`/`${…}`.
fn param<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    expr: &'a PE,
    quoted: bool,
    out: &'a mut Vec<Seg>,
) -> BoxFuture<'a, Res<()>> {
    Box::pin(async move {
        let value = |t: String| {
            if quoted {
                Seg::Quoted(t)
            } else {
                Seg::Expanded(t)
            }
        };
        let ifs_first = st
            .get("IFS")
            .map_or(" ".to_owned(), |s| s.chars().take(1).collect());
        let joined = |vals: &[String]| vals.join(&ifs_first);
        // The parameter's value as one string (unset: None).
        let scalar = |st: &State, p: &Parameter| -> Result<Option<String>, ShellError> {
            Ok(lookup(st, p)?.map(|v| {
                if is_all(p).is_some() {
                    v.join(" ")
                } else {
                    v.concat()
                }
            }))
        };
        match expr {
            PE::Parameter {
                parameter,
                indirect,
            } => {
                if *indirect {
                    let name = scalar(st, parameter)?.unwrap_or_default();
                    let v = if is_name(&name) {
                        st.get(&name).unwrap_or("").to_owned()
                    } else {
                        String::new()
                    };
                    return push_checked(ctx, out, value(v));
                }
                if let Some(concat) = is_all(parameter) {
                    let vals = st.positional.clone();
                    if quoted && !concat {
                        for (i, v) in vals.into_iter().enumerate() {
                            if i > 0 {
                                out.push(Seg::Break);
                            }
                            push_checked(ctx, out, Seg::Quoted(v))?;
                        }
                        // "$@" with no parameters makes no word: drop the empty quote that
                        // opened the double-quoted sequence.
                        if st.positional.is_empty()
                            && matches!(out.last(), Some(Seg::Quoted(s)) if s.is_empty())
                        {
                            out.pop();
                        }
                    } else if quoted {
                        push_checked(ctx, out, Seg::Quoted(joined(&vals)))?;
                    } else {
                        for (i, v) in vals.into_iter().enumerate() {
                            if i > 0 {
                                out.push(Seg::Break);
                            }
                            push_checked(ctx, out, Seg::Expanded(v))?;
                        }
                    }
                    return Ok(());
                }
                match scalar(st, parameter)? {
                    Some(v) => push_checked(ctx, out, value(v)),
                    None if st.options.nounset && !matches!(parameter, Parameter::Special(_)) => {
                        Err(unbound(st, &param_name(parameter)).await)
                    }
                    None => Ok(()),
                }
            }
            PE::UseDefaultValues {
                parameter,
                test_type,
                default_value,
                ..
            }
            | PE::AssignDefaultValues {
                parameter,
                test_type,
                default_value,
                ..
            } => {
                let v = scalar(st, parameter)?;
                let missing = match test_type {
                    ParameterTestType::UnsetOrNull => v.as_deref().is_none_or(str::is_empty),
                    ParameterTestType::Unset => v.is_none(),
                };
                if !missing {
                    return push_checked(ctx, out, value(v.unwrap_or_default()));
                }
                let text = default_value.clone().unwrap_or_default();
                if matches!(expr, PE::AssignDefaultValues { .. }) {
                    let assigned = if quoted {
                        expand_text(ctx, st, &text).await?
                    } else {
                        single(ctx, st, &text).await?
                    };
                    let name = param_name(parameter);
                    if !is_name(&name) {
                        return Err(Abort::Stop(ShellError::Syntax(format!(
                            "${name}: cannot assign in this way"
                        ))));
                    }
                    st.set(&name, assigned.clone(), &ctx.bounds)?;
                    return push_checked(ctx, out, value(assigned));
                }
                operand(ctx, st, &text, quoted, out).await
            }
            PE::UseAlternativeValue {
                parameter,
                test_type,
                alternative_value,
                ..
            } => {
                let v = scalar(st, parameter)?;
                let present = match test_type {
                    ParameterTestType::UnsetOrNull => v.as_deref().is_some_and(|s| !s.is_empty()),
                    ParameterTestType::Unset => v.is_some(),
                };
                if present {
                    operand(
                        ctx,
                        st,
                        alternative_value.as_deref().unwrap_or(""),
                        quoted,
                        out,
                    )
                    .await?;
                }
                Ok(())
            }
            PE::IndicateErrorIfNullOrUnset {
                parameter,
                test_type,
                error_message,
                ..
            } => {
                let v = scalar(st, parameter)?;
                let missing = match test_type {
                    ParameterTestType::UnsetOrNull => v.as_deref().is_none_or(str::is_empty),
                    ParameterTestType::Unset => v.is_none(),
                };
                if !missing {
                    return push_checked(ctx, out, value(v.unwrap_or_default()));
                }
                let msg = match error_message {
                    Some(m) => expand_text(ctx, st, m).await?,
                    None => "parameter null or not set".into(),
                };
                st.complain(&format!("{}: {msg}", param_name(parameter)))
                    .await;
                Err(Abort::Exit(127))
            }
            PE::ParameterLength { parameter, .. } => {
                let n = match is_all(parameter) {
                    Some(_) => st.positional.len(),
                    None => scalar(st, parameter)?.map_or(0, |v| v.chars().count()),
                };
                push_checked(ctx, out, value(n.to_string()))
            }
            PE::RemoveSmallestSuffixPattern {
                parameter, pattern, ..
            }
            | PE::RemoveLargestSuffixPattern {
                parameter, pattern, ..
            }
            | PE::RemoveSmallestPrefixPattern {
                parameter, pattern, ..
            }
            | PE::RemoveLargestPrefixPattern {
                parameter, pattern, ..
            } => {
                let v = scalar(st, parameter)?.unwrap_or_default();
                let pat = pattern_of(ctx, st, pattern.as_deref().unwrap_or("")).await?;
                let p = Pattern::new(&pat)?;
                let r = match expr {
                    PE::RemoveSmallestSuffixPattern { .. } => p.trim_suffix(&v, false)?,
                    PE::RemoveLargestSuffixPattern { .. } => p.trim_suffix(&v, true)?,
                    PE::RemoveSmallestPrefixPattern { .. } => p.trim_prefix(&v, false)?,
                    _ => p.trim_prefix(&v, true)?,
                };
                push_checked(ctx, out, value(r.to_owned()))
            }
            PE::Substring {
                parameter,
                offset,
                length,
                ..
            } => {
                let v = scalar(st, parameter)?.unwrap_or_default();
                let chars: Vec<char> = v.chars().collect();
                let len = i64::try_from(chars.len()).unwrap_or(i64::MAX);
                let off_text = expand_text(ctx, st, &offset.value).await?;
                let mut off = arith_or_exit(ctx, st, &off_text).await?;
                if off < 0 {
                    off = (len + off).max(0);
                }
                let off = off.min(len);
                let end = match length {
                    Some(l) => {
                        let t = expand_text(ctx, st, &l.value).await?;
                        let n = arith_or_exit(ctx, st, &t).await?;
                        if n < 0 {
                            (len + n).max(off)
                        } else {
                            off.saturating_add(n).min(len)
                        }
                    }
                    None => len,
                };
                let s: String = chars[off as usize..end.max(off) as usize].iter().collect();
                push_checked(ctx, out, value(s))
            }
            PE::UppercaseFirstChar { parameter, .. }
            | PE::UppercasePattern { parameter, .. }
            | PE::LowercaseFirstChar { parameter, .. }
            | PE::LowercasePattern { parameter, .. } => {
                let v = scalar(st, parameter)?.unwrap_or_default();
                let r = match expr {
                    PE::UppercaseFirstChar { .. } => first_char(&v, true),
                    PE::LowercaseFirstChar { .. } => first_char(&v, false),
                    PE::UppercasePattern { .. } => v.to_uppercase(),
                    _ => v.to_lowercase(),
                };
                push_checked(ctx, out, value(r))
            }
            PE::ReplaceSubstring {
                parameter,
                pattern,
                replacement,
                match_kind,
                ..
            } => {
                let v = scalar(st, parameter)?.unwrap_or_default();
                let pat = pattern_of(ctx, st, pattern).await?;
                let rep = match replacement {
                    Some(r) => single(ctx, st, r).await?,
                    None => String::new(),
                };
                let kind = match match_kind {
                    SubstringMatchKind::Prefix => Replace::Prefix,
                    SubstringMatchKind::Suffix => Replace::Suffix,
                    SubstringMatchKind::FirstOccurrence => Replace::First,
                    SubstringMatchKind::Anywhere => Replace::All,
                };
                let r = Pattern::new(&pat)?.replace(&v, &rep, kind, ctx.bounds.max_value_bytes)?;
                push_checked(ctx, out, value(r))
            }
            PE::Transform { parameter, op, .. } => {
                use word::ParameterTransformOp as T;
                let v = scalar(st, parameter)?.unwrap_or_default();
                let r = match op {
                    T::ToUpperCase => v.to_uppercase(),
                    T::ToLowerCase => v.to_lowercase(),
                    T::CapitalizeInitial => first_char(&v, true),
                    T::Quoted => format!("'{}'", v.replace('\'', "'\\''")),
                    T::ExpandEscapeSequences => ansi_c(&v),
                    _ => {
                        return Err(Abort::Stop(ShellError::Construct {
                            construct: format!("${{{}@..}}", param_name(parameter)),
                            offset: None,
                            why: "this transformation is not supported",
                        }));
                    }
                };
                push_checked(ctx, out, value(r))
            }
            PE::VariableNames { .. } | PE::MemberKeys { .. } => {
                Err(Abort::Stop(ShellError::Construct {
                    construct: "${!prefix*}".into(),
                    offset: None,
                    why: "listing variable names or array keys is not supported",
                }))
            }
        }
    })
}

async fn unbound(st: &State, name: &str) -> Abort {
    st.complain(&format!("{name}: unbound variable")).await;
    Abort::Exit(127)
}

fn first_char(v: &str, upper: bool) -> String {
    let mut c = v.chars();
    match c.next() {
        Some(f) if upper => f.to_uppercase().chain(c).collect(),
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
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

/// Most unclosed `{` (not of `${`) a word may have and still be brace-expanded.
pub const MAX_BRACE_OPENINGS: usize = 6;

/// Brace expansion of a word's text: the texts it becomes (itself when it has none).
fn brace<H: Host>(ctx: &Ctx<'_, H>, text: &str) -> Result<Vec<String>, ShellError> {
    brace_words_within(text, ctx.bounds.max_fields)
}

#[cfg(test)]
fn brace_words(text: &str) -> Vec<String> {
    brace_words_within(text, 1000).unwrap_or_default()
}

fn brace_words_within(text: &str, max: usize) -> Result<Vec<String>, ShellError> {
    if !text.contains('{') {
        return Ok(vec![text.to_owned()]);
    }
    // brush-parser panics on a sequence bound past i64 (`{1..99999999999999999999}`, found by
    // review and by fuzzing); such a word is left as written, as bash leaves an invalid brace
    // expression. A number that long is never given to it; the unwind guard is the backstop.
    let longest_number = text
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    if longest_number > 18 {
        return Ok(vec![text.to_owned()]);
    }
    // brush-parser's brace grammar backtracks about three times over per unclosed `{` (found by
    // fuzzing: 21 of them took minutes, on a runtime worker); a word with more than
    // MAX_BRACE_OPENINGS left unclosed is not brace-expanded (measured worst case at the
    // bound: ~0.5 ms). Closed groups parse in linear time and are bounded by `max_fields`.
    let mut open = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' if !text[..i].ends_with('$') => open += 1,
            '}' => open = open.saturating_sub(1),
            _ => {}
        }
    }
    if open > MAX_BRACE_OPENINGS {
        return Ok(vec![text.to_owned()]);
    }
    let parsed = parse::contained("word", || {
        word::parse_brace_expansions(text, &parse::options())
    });
    let Ok(Ok(Some(parts))) = parsed else {
        return Ok(vec![text.to_owned()]);
    };
    brace_list(&parts, max)
}

fn too_many(max: usize) -> ShellError {
    ShellError::Bounds(format!("a brace expansion makes more than {max} words"))
}

fn brace_list(parts: &[BT], max: usize) -> Result<Vec<String>, ShellError> {
    let mut acc = vec![String::new()];
    for part in parts {
        let alts: Vec<String> = match part {
            BT::Text(t) => vec![t.clone()],
            BT::Expr(members) => {
                let mut alts = Vec::new();
                for m in members {
                    match m {
                        BM::NumberSequence {
                            start,
                            end,
                            increment,
                        } => {
                            let step = increment.unsigned_abs().max(1);
                            let span = (start.abs_diff(*end) / step).saturating_add(1);
                            if span > max as u64 {
                                return Err(too_many(max));
                            }
                            let mut v = *start;
                            for _ in 0..span {
                                alts.push(v.to_string());
                                let step = i64::try_from(step).unwrap_or(i64::MAX);
                                v = if start <= end {
                                    v.saturating_add(step)
                                } else {
                                    v.saturating_sub(step)
                                };
                            }
                        }
                        BM::CharSequence {
                            start,
                            end,
                            increment,
                        } => {
                            let step = increment.unsigned_abs().max(1) as usize;
                            let (a, b) = (*start as u32, *end as u32);
                            let range: Vec<u32> = if a <= b {
                                (a..=b).step_by(step).collect()
                            } else {
                                (b..=a).rev().step_by(step).collect()
                            };
                            alts.extend(
                                range
                                    .into_iter()
                                    .filter_map(char::from_u32)
                                    .map(String::from),
                            );
                        }
                        BM::Child(inner) => alts.extend(brace_list(inner, max)?),
                    }
                    if alts.len() > max {
                        return Err(too_many(max));
                    }
                }
                alts
            }
        };
        if acc.len().saturating_mul(alts.len()) > max {
            return Err(too_many(max));
        }
        acc = acc
            .iter()
            .flat_map(|a| alts.iter().map(move |b| format!("{a}{b}")))
            .collect();
    }
    Ok(acc)
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

    #[test]
    fn words_the_brace_grammar_would_backtrack_on_are_left_as_written() {
        let ctx_free = |t: &str| {
            let started = std::time::Instant::now();
            let r = brace_words(t);
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{t}");
            r
        };
        assert_eq!(ctx_free(&"{,".repeat(40)), ["{,".repeat(40)]);
        assert_eq!(
            ctx_free("{1..99999999999999999999}"),
            ["{1..99999999999999999999}"]
        );
        assert_eq!(ctx_free("${a}{x,y}"), ["${a}x", "${a}y"]);
    }

    #[test]
    fn brace_lists_are_bounded_before_they_are_made() {
        let parts = word::parse_brace_expansions("a{1..3}b", &parse::options())
            .unwrap()
            .unwrap();
        assert_eq!(brace_list(&parts, 10).unwrap(), ["a1b", "a2b", "a3b"]);
        let huge = word::parse_brace_expansions("{1..100000000}", &parse::options())
            .unwrap()
            .unwrap();
        assert!(brace_list(&huge, 1000).is_err());
        let prod = word::parse_brace_expansions("{a,b}{c,d}", &parse::options())
            .unwrap()
            .unwrap();
        assert_eq!(brace_list(&prod, 10).unwrap(), ["ac", "ad", "bc", "bd"]);
    }
}
