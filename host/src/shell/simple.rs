//! Simple commands: assignments, expansion of the words, then a function, a built-in or an
//! allowlisted command (through [`super::Host::run`], after the allowlist says yes), with
//! temporary assignments (`X=1 cmd`) and redirections applied around it. This module must not
//! start anything but through the host, nor open a path but through [`super::io`].

use super::builtins;
use super::exec::{Abort, Body, Flow, Res, deeper, with_redirects};
use super::expand;
use super::state::State;
use super::{CommandRecord, CommandStart, Ctx, Host, ShellError};
use brush_parser::ast::{
    Assignment, AssignmentName, AssignmentValue, CommandPrefixOrSuffixItem as Item, IoRedirect,
    SimpleCommand, Word,
};
use futures_util::future::BoxFuture;

/// An assignment's name and value, expanded.
async fn assignment<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    a: &Assignment,
) -> Res<(String, String)> {
    let name = match &a.name {
        AssignmentName::VariableName(n) => n.clone(),
        AssignmentName::ArrayElementName(n, _) => {
            return Err(ShellError::Construct {
                construct: format!("{n}[..]="),
                offset: None,
                why: "arrays are not supported",
            }
            .into());
        }
    };
    let value = match &a.value {
        AssignmentValue::Scalar(w) => expand::single(ctx, st, &w.value).await?,
        AssignmentValue::Array(_) => {
            return Err(ShellError::Construct {
                construct: format!("{name}=(..)"),
                offset: None,
                why: "arrays are not supported",
            }
            .into());
        }
    };
    let value = if a.append {
        format!("{}{value}", st.get(&name).unwrap_or(""))
    } else {
        value
    };
    Ok((name, value))
}

pub(super) async fn simple<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    s: &SimpleCommand,
) -> Res<Flow> {
    let mut assigns = Vec::new();
    let mut redirects: Vec<&IoRedirect> = Vec::new();
    // Each word, and whether it is an assignment to a declaration built-in (`local x=$y`),
    // which bash expands without splitting or globbing.
    let mut words: Vec<(&Word, bool)> = Vec::new();
    let declares = s
        .word_or_name
        .as_ref()
        .and_then(|w| super::literal::literal(&w.value))
        .is_some_and(|n| matches!(n.as_str(), "export" | "local"));
    for item in s.prefix.iter().flat_map(|p| p.0.iter()) {
        match item {
            Item::AssignmentWord(a, _) => assigns.push(a),
            Item::IoRedirect(r) => redirects.push(r),
            Item::Word(w) => words.push((w, false)),
            Item::ProcessSubstitution(..) => return Err(process_substitution()),
        }
    }
    if let Some(w) = &s.word_or_name {
        words.push((w, false));
    }
    for item in s.suffix.iter().flat_map(|p| p.0.iter()) {
        match item {
            Item::Word(w) => words.push((w, false)),
            Item::AssignmentWord(_, w) => words.push((w, declares)),
            Item::IoRedirect(r) => redirects.push(r),
            Item::ProcessSubstitution(..) => return Err(process_substitution()),
        }
    }
    let substitutions = st.substitutions;
    // The command's words first, then the assignments left to right, each visible to the
    // next (POSIX's order: `x=1 echo $x` prints the old `x`).
    let mut fields = Vec::new();
    for (w, whole) in words {
        if whole {
            fields.push(expand::single(ctx, st, &w.value).await?);
        } else {
            fields.extend(expand::fields(ctx, st, &[w]).await?);
        }
        if fields.len() > ctx.bounds.max_fields {
            return Err(ShellError::Bounds(format!(
                "a command's words expanded to more than {} fields",
                ctx.bounds.max_fields
            ))
            .into());
        }
    }
    let mut values = Vec::with_capacity(assigns.len());
    let mut saved: Saved = Vec::with_capacity(assigns.len());
    for a in assigns {
        let (k, v) = assignment(ctx, st, a).await?;
        saved.push((k.clone(), st.get(&k).map(str::to_owned)));
        st.set(&k, v.clone(), &ctx.bounds)?;
        values.push((k, v));
    }
    let redirects: Vec<IoRedirect> = redirects.into_iter().cloned().collect();
    if fields.is_empty() {
        // `$?` of an assignment alone: its last command substitution's, or 0.
        let status = if st.substitutions == substitutions {
            0
        } else {
            st.status
        };
        if redirects.is_empty() {
            st.status = status;
            return Ok(Flow::Normal);
        }
        return with_redirects(ctx, st, &redirects, Body::Nothing).await;
    }
    // A command's assignments are its own: undone here, set again around it.
    restore(st, saved, &ctx.bounds)?;
    with_redirects(ctx, st, &redirects, Body::Simple(fields, values)).await
}

pub(super) fn process_substitution() -> Abort {
    ShellError::Construct {
        construct: "<(…)".into(),
        offset: None,
        why: "process substitution is not supported",
    }
    .into()
}

/// Runs an expanded command: a function, a built-in or an allowlisted command.
pub(super) async fn run_fields<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    fields: Vec<String>,
    temp: Vec<(String, String)>,
) -> Res<Flow> {
    let name = fields[0].clone();
    if let Some(f) = st.functions.get(&name).cloned() {
        let saved = set_temporarily(ctx, st, &temp)?;
        let r = call_function(ctx, st, &f, fields[1..].to_vec()).await;
        restore(st, saved, &ctx.bounds)?;
        return r;
    }
    if builtins::is_builtin(&name) {
        let saved = set_temporarily(ctx, st, &temp)?;
        let r = builtins::run(ctx, st, &fields).await;
        // `export`/`local`/`unset` of a temporarily set name keep what they did.
        if !matches!(name.as_str(), "export" | "local" | "unset") {
            restore(st, saved, &ctx.bounds)?;
        }
        return r;
    }
    external(ctx, st, fields, temp).await?;
    Ok(Flow::Normal)
}

type Saved = Vec<(String, Option<String>)>;

fn set_temporarily<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    temp: &[(String, String)],
) -> Res<Saved> {
    let mut saved = Vec::with_capacity(temp.len());
    for (k, v) in temp {
        saved.push((k.clone(), st.get(k).map(str::to_owned)));
        st.set(k, v.clone(), &ctx.bounds)?;
    }
    Ok(saved)
}

fn restore(st: &mut State, saved: Saved, bounds: &super::Bounds) -> Res<()> {
    for (k, old) in saved.into_iter().rev() {
        match old {
            Some(v) => st.set(&k, v, bounds)?,
            None => st.unset(&k),
        }
    }
    Ok(())
}

async fn call_function<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    f: &brush_parser::ast::FunctionBody,
    args: Vec<String>,
) -> Res<Flow> {
    deeper(ctx, st)?;
    let caller = st.enter_function(args);
    let r = {
        let redirects = f.1.as_ref().map_or(&[][..], |r| &r.0[..]);
        with_redirects(ctx, st, redirects, Body::Compound(&f.0)).await
    };
    st.leave_function(caller);
    match r? {
        Flow::Return | Flow::Normal => Ok(Flow::Normal),
        other => Ok(other),
    }
}

/// Starts an allowlisted command through the host.
async fn external<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    argv: Vec<String>,
    temp: Vec<(String, String)>,
) -> Res<()> {
    let name = argv[0].clone();
    if !ctx.host.allows(&name) {
        let refusal = ShellError::NotAllowed {
            name,
            offset: None,
            why: super::check::why_refused(&argv[0]),
        };
        // Recorded as any refused command is, with its argv (found by review: it had no
        // record of its own).
        ctx.host
            .record_refusal(&argv, &st.cwd, &refusal.to_run_error())
            .await;
        return Err(refusal.into());
    }
    ctx.command_started()?;
    let mut env = st.exported();
    for (k, v) in temp {
        env.retain(|(n, _)| *n != k);
        env.push((k, v));
    }
    let record_argv = super::record_argv(&argv);
    let end = ctx
        .host
        .run(CommandStart {
            argv,
            cwd: st.cwd.clone(),
            stdin: st.io.stdin.share(),
            stdout: st.io.stdout.share(),
            env,
        })
        .await;
    ctx.record(CommandRecord {
        argv: record_argv,
        runner: end.runner,
        status: end.status.as_ref().map(|c| *c).map_err(|e| e.code),
    });
    if !end.stderr.is_empty() {
        let _ = st.io.stderr.write_all(&end.stderr).await;
    }
    match end.status {
        Ok(code) => {
            st.status = code;
            Ok(())
        }
        Err(e) => Err(ShellError::Stopped(e).into()),
    }
}

/// Runs `name` as a command word for [`builtins`] that run commands (`command`).
pub fn run_command_word<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    fields: Vec<String>,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(run_fields(ctx, st, fields, Vec::new()))
}
