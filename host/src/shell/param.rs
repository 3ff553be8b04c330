//! Parameter expansion: `$x`, `${x}`, `$@`/`$*`, the special parameters and every `${x…}`
//! operator bash has for scalars (defaults, assignments, errors, lengths, substrings, pattern
//! trims and replacements, case changes, transformations). Values are bounded as every expansion
//! ([`super::Bounds::max_value_bytes`]); a replacement's result is measured before it is built.
//! Arrays and name listings are refused. This module must not start anything nor open a path:
//! command substitutions inside operands go back through [`super::expand`].

use super::exec::{Abort, Res};
use super::expand::{
    Seg, ansi_c, arith_or_exit, expand_text, operand, pattern_of, push_checked, single,
};
use super::pattern::{Pattern, Replace};
use super::state::{State, is_name};
use super::{Ctx, Host, ShellError};
use brush_parser::word::{
    self, Parameter, ParameterExpr as PE, ParameterTestType, SpecialParameter as SP,
    SubstringMatchKind,
};
use futures_util::future::BoxFuture;

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
pub fn param<'a, H: Host>(
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
