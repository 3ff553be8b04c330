//! The interpreter proper: walks brush-parser's tree — lists, `&&`/`||`, pipelines, compound
//! commands, function calls, simple commands with their assignments and redirections — with
//! bash's semantics for `$?`, `set -e`, `set -o pipefail`, `break`/`continue`/`return`/`exit`,
//! subshells (a clone of the state: nothing leaks back) and command substitution.
//!
//! The stages of a pipeline run at the same time, each a subshell joined to the next by a
//! bounded pipe; a stage that stops the script stops the others. Every command is a step
//! ([`Ctx::step`]); every command that is not the interpreter's own goes to [`Host::run`]
//! after the allowlist says yes. This module must not start anything but through the host,
//! nor open a path but through [`super::io`].

use super::builtins;
use super::expand;
use super::io::{self, Mode};
use super::pattern::Pattern;
use super::state::{Io, State, is_name};
use super::test_expr;
use super::{CommandRecord, CommandStart, Ctx, Host, ShellError};
use crate::pipe::{PIPE_CAPACITY, pipe};
use brush_parser::ast::{
    AndOr, AndOrList, Assignment, AssignmentName, AssignmentValue, CaseItemPostAction, Command,
    CommandPrefixOrSuffixItem as Item, CompoundCommand as CC, CompoundList,
    IoFileRedirectKind as K, IoFileRedirectTarget as T, IoRedirect, Pipeline, Program,
    SeparatorOperator, SimpleCommand, Word,
};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// Why the interpreter stops walking: `exit` (or a fatal error in a subshell), or a stop of
/// the whole script.
#[derive(Debug)]
pub enum Abort {
    /// The (sub)shell exits with this status.
    Exit(i32),
    /// The script stops.
    Stop(ShellError),
}

impl From<ShellError> for Abort {
    fn from(e: ShellError) -> Self {
        Self::Stop(e)
    }
}

/// What the interpreter's steps return.
pub type Res<T> = Result<T, Abort>;

/// Where control goes after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Normal,
    Break(u32),
    Continue(u32),
    Return,
}

/// Runs a whole program in `st`; `exit` ends it with its status.
///
/// # Errors
/// The script's stop.
pub async fn run_program<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    p: &Program,
) -> Result<(), ShellError> {
    match program(ctx, st, p).await {
        Ok(_) => Ok(()),
        Err(Abort::Exit(n)) => {
            st.status = n;
            Ok(())
        }
        Err(Abort::Stop(e)) => {
            ctx.cancel.cancel();
            Err(e)
        }
    }
}

fn program<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    p: &'a Program,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(async move {
        for cc in &p.complete_commands {
            let f = list(ctx, st, cc).await?;
            if f != Flow::Normal {
                return Ok(f);
            }
        }
        Ok(Flow::Normal)
    })
}

fn list<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    l: &'a CompoundList,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(async move {
        for item in &l.0 {
            if matches!(item.1, SeparatorOperator::Async) {
                return Err(ShellError::Construct {
                    construct: "&".into(),
                    offset: None,
                    why: "background jobs are not run",
                }
                .into());
            }
            let f = and_or(ctx, st, &item.0).await?;
            if f != Flow::Normal {
                return Ok(f);
            }
        }
        Ok(Flow::Normal)
    })
}

async fn and_or<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, l: &AndOrList) -> Res<Flow> {
    let last = l.additional.is_empty();
    let mut f = pipeline(ctx, st, &l.first, !last).await?;
    for (i, ao) in l.additional.iter().enumerate() {
        if f != Flow::Normal {
            return Ok(f);
        }
        let exempt = i + 1 < l.additional.len();
        f = match ao {
            AndOr::And(p) if st.status == 0 => pipeline(ctx, st, p, exempt).await?,
            AndOr::Or(p) if st.status != 0 => pipeline(ctx, st, p, exempt).await?,
            _ => Flow::Normal,
        };
    }
    Ok(f)
}

/// Runs `body` with `set -e` off (a condition).
async fn condition<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, body: &CompoundList) -> Res<Flow> {
    st.errexit_off += 1;
    let r = list(ctx, st, body).await;
    st.errexit_off = st.errexit_off.saturating_sub(1);
    r
}

fn pipeline<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    p: &'a Pipeline,
    exempt: bool,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(async move {
        if p.timed.is_some() {
            return Err(ShellError::Construct {
                construct: "time".into(),
                offset: None,
                why: "timing pipelines is not supported",
            }
            .into());
        }
        let quiet = exempt || p.bang;
        if quiet {
            st.errexit_off += 1;
        }
        let r = stages(ctx, st, &p.seq).await;
        if quiet {
            st.errexit_off = st.errexit_off.saturating_sub(1);
        }
        let f = r?;
        if p.bang {
            st.status = i32::from(st.status == 0);
        }
        if !quiet
            && st.status != 0
            && st.options.errexit
            && st.errexit_off == 0
            && f == Flow::Normal
        {
            return Err(Abort::Exit(st.status));
        }
        Ok(f)
    })
}

/// The stages of a pipeline: one runs in this shell; several run at the same time, each in
/// a subshell, joined by pipes.
async fn stages<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, seq: &[Command]) -> Res<Flow> {
    if let [only] = seq {
        return command(ctx, st, only).await;
    }
    let n = seq.len();
    let mut subs = Vec::with_capacity(n);
    let mut stdin = Some(st.io.stdin.share());
    for i in 0..n {
        let (stdout, next) = if i + 1 < n {
            let (w, r) = pipe(PIPE_CAPACITY);
            (w, Some(r))
        } else {
            (st.io.stdout.share(), None)
        };
        let io = Io {
            stdin: stdin.take().unwrap_or_else(|| st.io.stdin.share()),
            stdout,
            stderr: st.io.stderr.share(),
        };
        stdin = next;
        subs.push(st.subshell(io));
    }
    let runs = subs.into_iter().zip(seq).map(|(mut sub, cmd)| async move {
        let r = match command(ctx, &mut sub, cmd).await {
            Ok(_) => Ok(sub.status),
            Err(Abort::Exit(code)) => Ok(code),
            Err(Abort::Stop(e)) => {
                ctx.cancel.cancel();
                Err(e)
            }
        };
        drop(sub);
        r
    });
    let ends = futures_util::future::join_all(runs).await;
    let mut statuses = Vec::with_capacity(n);
    let mut stop: Option<ShellError> = None;
    for e in ends {
        match e {
            Ok(s) => statuses.push(s),
            // The stage that stopped the script, not one it cancelled by stopping (found by
            // review: a stage's own failure was reported as the CANCELLED of its neighbour).
            Err(e) => {
                if stop.as_ref().is_none_or(is_cancellation) {
                    stop = Some(e);
                }
            }
        }
    }
    if let Some(e) = stop {
        return Err(e.into());
    }
    st.status = if st.options.pipefail {
        statuses
            .iter()
            .rev()
            .find(|&&s| s != 0)
            .copied()
            .unwrap_or(0)
    } else {
        statuses.last().copied().unwrap_or(0)
    };
    Ok(Flow::Normal)
}

fn command<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    c: &'a Command,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(async move {
        ctx.step()?;
        match c {
            Command::Simple(s) => simple(ctx, st, s).await,
            Command::Compound(cc, redirects) => {
                let r = redirects.as_ref().map_or(&[][..], |r| &r.0[..]);
                with_redirects(ctx, st, r, Body::Compound(cc)).await
            }
            Command::Function(f) => {
                let name = f.fname.value.clone();
                if !is_name(&name.replace('-', "_")) {
                    return Err(
                        ShellError::Syntax(format!("`{name}': not a valid function name")).into(),
                    );
                }
                st.functions.insert(name, Arc::new(f.body.clone()));
                st.status = 0;
                Ok(Flow::Normal)
            }
            Command::ExtendedTest(t, redirects) => {
                let r = redirects.as_ref().map_or(&[][..], |r| &r.0[..]);
                with_redirects(ctx, st, r, Body::Test(&t.expr)).await
            }
        }
    })
}

/// What runs once a command's redirections are in place.
enum Body<'a> {
    Compound(&'a CC),
    Test(&'a brush_parser::ast::ExtendedTestExpr),
    /// A simple command's expanded words and its own temporary assignments.
    Simple(Vec<String>, Vec<(String, String)>),
    /// Redirections alone (`> file`).
    Nothing,
}

fn body<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    b: Body<'a>,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(async move {
        match b {
            Body::Compound(cc) => compound(ctx, st, cc).await,
            Body::Test(t) => {
                st.status = test_expr::extended(ctx, st, t).await?;
                Ok(Flow::Normal)
            }
            Body::Simple(fields, temp) => run_fields(ctx, st, fields, temp).await,
            Body::Nothing => {
                st.status = 0;
                Ok(Flow::Normal)
            }
        }
    })
}

/// Runs `f` with `break`/`continue` counted for one loop level; `Some` leaves the loop with
/// that flow.
fn loop_exit(f: Flow) -> Option<Flow> {
    match f {
        Flow::Normal | Flow::Continue(1) => None,
        Flow::Break(1) => Some(Flow::Normal),
        Flow::Break(n) => Some(Flow::Break(n - 1)),
        Flow::Continue(n) => Some(Flow::Continue(n - 1)),
        Flow::Return => Some(Flow::Return),
    }
}

fn compound<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    cc: &'a CC,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(async move {
        match cc {
            CC::BraceGroup(b) => list(ctx, st, &b.list).await,
            CC::Subshell(s) => {
                deeper(ctx, st)?;
                let mut sub = st.subshell(st.io.share());
                let status = match list(ctx, &mut sub, &s.list).await {
                    Ok(_) => sub.status,
                    Err(Abort::Exit(n)) => n,
                    Err(stop) => return Err(stop),
                };
                drop(sub);
                st.status = status;
                Ok(Flow::Normal)
            }
            CC::ForClause(f) => {
                if !is_name(&f.variable_name) {
                    return Err(ShellError::Syntax(format!(
                        "`{}': not a valid identifier",
                        f.variable_name
                    ))
                    .into());
                }
                let values = match &f.values {
                    Some(words) => {
                        let ws: Vec<&Word> = words.iter().collect();
                        expand::fields(ctx, st, &ws).await?
                    }
                    None => st.positional.clone(),
                };
                st.status = 0;
                for v in values {
                    ctx.step()?;
                    st.set(&f.variable_name, v, &ctx.bounds)?;
                    if let Some(out) = loop_exit(list(ctx, st, &f.body.list).await?) {
                        return Ok(out);
                    }
                }
                Ok(Flow::Normal)
            }
            CC::ArithmeticForClause(f) => {
                if let Some(init) = &f.initializer {
                    arith(ctx, st, &init.value).await?;
                }
                st.status = 0;
                loop {
                    ctx.step()?;
                    if let Some(c) = &f.condition
                        && arith(ctx, st, &c.value).await? == 0
                    {
                        break;
                    }
                    if let Some(out) = loop_exit(list(ctx, st, &f.body.list).await?) {
                        return Ok(out);
                    }
                    if let Some(u) = &f.updater {
                        arith(ctx, st, &u.value).await?;
                    }
                }
                Ok(Flow::Normal)
            }
            CC::CaseClause(c) => {
                let value = expand::single(ctx, st, &c.value.value).await?;
                st.status = 0;
                let mut fall_through = false;
                for item in &c.cases {
                    let mut hit = fall_through;
                    if !hit {
                        for p in &item.patterns {
                            let pat = expand::pattern_of(ctx, st, &p.value).await?;
                            if Pattern::new(&pat)?.matches(&value) {
                                hit = true;
                                break;
                            }
                        }
                    }
                    if !hit {
                        continue;
                    }
                    if let Some(cmd) = &item.cmd {
                        let f = list(ctx, st, cmd).await?;
                        if f != Flow::Normal {
                            return Ok(f);
                        }
                    }
                    match item.post_action {
                        CaseItemPostAction::ExitCase => return Ok(Flow::Normal),
                        CaseItemPostAction::UnconditionallyExecuteNextCaseItem => {
                            fall_through = true
                        }
                        CaseItemPostAction::ContinueEvaluatingCases => fall_through = false,
                    }
                }
                Ok(Flow::Normal)
            }
            CC::IfClause(i) => {
                let f = condition(ctx, st, &i.condition).await?;
                if f != Flow::Normal {
                    return Ok(f);
                }
                if st.status == 0 {
                    return list(ctx, st, &i.then).await;
                }
                for e in i.elses.iter().flatten() {
                    match &e.condition {
                        Some(c) => {
                            let f = condition(ctx, st, c).await?;
                            if f != Flow::Normal {
                                return Ok(f);
                            }
                            if st.status == 0 {
                                return list(ctx, st, &e.body).await;
                            }
                        }
                        None => return list(ctx, st, &e.body).await,
                    }
                }
                st.status = 0;
                Ok(Flow::Normal)
            }
            CC::WhileClause(w) | CC::UntilClause(w) => {
                let until = matches!(cc, CC::UntilClause(_));
                let mut last = 0;
                loop {
                    ctx.step()?;
                    let f = condition(ctx, st, &w.0).await?;
                    if let Some(out) = loop_exit(f) {
                        st.status = last;
                        return Ok(out);
                    }
                    if (st.status == 0) == until {
                        break;
                    }
                    let f = list(ctx, st, &w.1.list).await?;
                    last = st.status;
                    if let Some(out) = loop_exit(f) {
                        return Ok(out);
                    }
                }
                st.status = last;
                Ok(Flow::Normal)
            }
            CC::Arithmetic(a) => {
                let v = arith(ctx, st, &a.expr.value).await?;
                st.status = i32::from(v == 0);
                Ok(Flow::Normal)
            }
            CC::Coprocess(_) => Err(ShellError::Construct {
                construct: "coproc".into(),
                offset: None,
                why: "background jobs are not run",
            }
            .into()),
        }
    })
}

/// Evaluates arithmetic text (expanded first).
async fn arith<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, text: &str) -> Res<i64> {
    let expanded = expand::expand_text(ctx, st, text).await?;
    expand::arith_or_exit(ctx, st, &expanded).await
}

/// One more level of nesting, or SCRIPT_LIMIT.
fn deeper<H: Host>(ctx: &Ctx<'_, H>, st: &State) -> Res<()> {
    if st.depth >= ctx.bounds.max_depth {
        return Err(ShellError::Bounds(format!(
            "functions, subshells and command substitutions nest more than {} deep",
            ctx.bounds.max_depth
        ))
        .into());
    }
    Ok(())
}

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

async fn simple<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, s: &SimpleCommand) -> Res<Flow> {
    let mut assigns = Vec::new();
    let mut redirects: Vec<&IoRedirect> = Vec::new();
    // Each word, and whether it is an assignment to a declaration built-in (`local x=$y`),
    // which bash expands without splitting or globbing.
    let mut words: Vec<(&Word, bool)> = Vec::new();
    let declares = s
        .word_or_name
        .as_ref()
        .and_then(|w| super::check::literal(&w.value))
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
async fn run_fields<H: Host>(
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

/// A command substitution: runs `text` in a subshell and returns its stdout without trailing
/// newlines; `$?` becomes its status.
///
/// # Errors
/// The script's stop, or SCRIPT_LIMIT past the capture bound.
pub async fn substitute<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, text: &str) -> Res<String> {
    deeper(ctx, st)?;
    let program_ast = super::parse::parse(text)?;
    if let Some(path) = read_file_shortcut(&program_ast) {
        return read_whole_file(ctx, st, path).await;
    }
    let (w, r) = pipe(PIPE_CAPACITY);
    let mut sub = st.subshell(Io {
        stdin: st.io.stdin.share(),
        stdout: w,
        stderr: st.io.stderr.share(),
    });
    let buf = io::Bounded::default();
    let limit = ctx.bounds.max_capture_bytes;
    let run = async {
        let r = match program(ctx, &mut sub, &program_ast).await {
            Ok(_) => Ok(sub.status),
            Err(Abort::Exit(n)) => Ok(n),
            Err(e) => Err(e),
        };
        drop(sub);
        r
    };
    let (status, ()) = futures_util::join!(run, buf.fill(r, limit));
    st.status = status?;
    st.substitutions += 1;
    let (bytes, overflow) = buf.take();
    if overflow {
        return Err(ShellError::Bounds(format!(
            "a command substitution captured more than {limit} bytes"
        ))
        .into());
    }
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    while s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

/// `$(< file)`: the file named by a command substitution that is one input redirection alone.
fn read_file_shortcut(p: &Program) -> Option<&Word> {
    let [list] = p.complete_commands.as_slice() else {
        return None;
    };
    let [item] = list.0.as_slice() else {
        return None;
    };
    if !item.0.additional.is_empty() || item.0.first.bang || item.0.first.seq.len() != 1 {
        return None;
    }
    let Command::Simple(s) = &item.0.first.seq[0] else {
        return None;
    };
    if s.word_or_name.is_some() || s.suffix.as_ref().is_some_and(|x| !x.0.is_empty()) {
        return None;
    }
    match s.prefix.as_ref().map(|x| x.0.as_slice()) {
        Some([Item::IoRedirect(IoRedirect::File(None | Some(0), K::Read, T::Filename(w)))]) => {
            Some(w)
        }
        _ => None,
    }
}

/// The contents of the file `$(< file)` names, bounded as any command substitution.
async fn read_whole_file<H: Host>(ctx: &Ctx<'_, H>, st: &mut State, w: &Word) -> Res<String> {
    let path = expand::single(ctx, st, &w.value).await?;
    let file = match io::open(ctx.host.workspace(), &st.cwd, &path, Mode::Read, false)? {
        Ok(f) => f,
        Err(msg) => {
            st.complain(&msg).await;
            st.status = 1;
            return Ok(String::new());
        }
    };
    let (wr, r) = pipe(PIPE_CAPACITY);
    let buf = io::Bounded::default();
    let limit = ctx.bounds.max_capture_bytes;
    futures_util::join!(io::feed_file(wr, file), buf.fill(r, limit));
    let (bytes, overflow) = buf.take();
    if overflow {
        return Err(ShellError::Bounds(format!(
            "a command substitution captured more than {limit} bytes"
        ))
        .into());
    }
    st.status = 0;
    st.substitutions += 1;
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    while s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

fn is_cancellation(e: &ShellError) -> bool {
    matches!(e, ShellError::Stopped(r) if r.code == crate::error::ErrorCode::Cancelled)
}

/// Runs `b` with `redirects` applied, beside the tasks that feed and drain them.
async fn with_redirects<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    redirects: &[IoRedirect],
    b: Body<'_>,
) -> Res<Flow> {
    if redirects.is_empty() {
        return body(ctx, st, b).await;
    }
    let applied = match super::redirect::apply(ctx, st, redirects).await? {
        Ok(a) => a,
        Err(msg) => {
            st.complain(&msg).await;
            st.status = 1;
            return Ok(Flow::Normal);
        }
    };
    let super::redirect::Applied { io, sides, drains } = applied;
    let saved = std::mem::replace(&mut st.io, io);
    let run = async {
        let r = body(ctx, st, b).await;
        drop(std::mem::replace(&mut st.io, saved));
        r
    };
    let (r, _) = futures_util::join!(run, futures_util::future::join_all(sides));
    for d in drains {
        if let Some(e) = d.get() {
            return Err(e.into());
        }
    }
    r
}

/// Runs `name` as a command word for [`builtins`] that run commands (`command`).
pub fn run_command_word<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    fields: Vec<String>,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(run_fields(ctx, st, fields, Vec::new()))
}
