//! The interpreter proper: walks brush-parser's tree — lists, `&&`/`||`, pipelines, compound
//! commands, function bodies and redirections around them — with bash's semantics for `$?`,
//! `set -e`, `set -o pipefail`, `break`/`continue`/`return`/`exit` and subshells (a clone of
//! the state: nothing leaks back). Simple commands are [`super::simple`]'s, command
//! substitution [`super::substitute`]'s.
//!
//! The stages of a pipeline run at the same time, each a subshell joined to the next by a
//! bounded pipe; a stage that stops the script stops the others. Every command is a step
//! ([`Ctx::step`]); every command that is not the interpreter's own goes to [`Host::run`]
//! after the allowlist says yes. This module must not start anything but through the host,
//! nor open a path but through [`super::io`].

use super::state::{Io, State, is_name};
use super::test_expr;
use super::{Ctx, Host, ShellError};
use crate::pipe::{PIPE_CAPACITY, pipe};
use brush_parser::ast::{
    AndOr, AndOrList, Command, CompoundCommand as CC, CompoundList, IoRedirect, Pipeline, Program,
    SeparatorOperator,
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

pub(super) fn program<'a, H: Host>(
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

pub(super) fn list<'a, H: Host>(
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
pub(super) async fn condition<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    body: &CompoundList,
) -> Res<Flow> {
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
            Command::Simple(s) => super::simple::simple(ctx, st, s).await,
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
pub(super) enum Body<'a> {
    Compound(&'a CC),
    Test(&'a brush_parser::ast::ExtendedTestExpr),
    /// A simple command's expanded words and its own temporary assignments.
    Simple(Vec<String>, Vec<(String, String)>),
    /// Redirections alone (`> file`).
    Nothing,
}

pub(super) fn body<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    b: Body<'a>,
) -> BoxFuture<'a, Res<Flow>> {
    Box::pin(async move {
        match b {
            Body::Compound(cc) => super::compound::compound(ctx, st, cc).await,
            Body::Test(t) => {
                st.status = test_expr::extended(ctx, st, t).await?;
                Ok(Flow::Normal)
            }
            Body::Simple(fields, temp) => super::simple::run_fields(ctx, st, fields, temp).await,
            Body::Nothing => {
                st.status = 0;
                Ok(Flow::Normal)
            }
        }
    })
}

/// One more level of nesting, or SCRIPT_LIMIT.
pub(super) fn deeper<H: Host>(ctx: &Ctx<'_, H>, st: &State) -> Res<()> {
    if st.depth >= ctx.bounds.max_depth {
        return Err(ShellError::Bounds(format!(
            "functions, subshells and command substitutions nest more than {} deep",
            ctx.bounds.max_depth
        ))
        .into());
    }
    Ok(())
}

pub(super) fn is_cancellation(e: &ShellError) -> bool {
    matches!(e, ShellError::Stopped(r) if r.code == crate::error::ErrorCode::Cancelled)
}

/// Runs `b` with `redirects` applied, beside the tasks that feed and drain them.
pub(super) async fn with_redirects<H: Host>(
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
