//! Compound commands: `{ }`, `( )`, `if`, `while`/`until`, `for`, `for ((;;))`, `case`,
//! `[[ ]]` and `(( ))`, each with bash's status and `break`/`continue` counting. The bodies go
//! back to [`super::exec`]; this module must not start anything nor open a path itself.

use super::exec::{Abort, Flow, Res, condition, deeper, list};
use super::expand;
use super::pattern::Pattern;
use super::state::{State, is_name};
use super::{Ctx, Host, ShellError};
use brush_parser::ast::{CaseItemPostAction, CompoundCommand as CC, Word};
use futures_util::future::BoxFuture;

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

pub(super) fn compound<'a, H: Host>(
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
