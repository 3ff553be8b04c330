//! Command substitution, `$(…)` and backquotes: the text runs in a subshell whose stdout is
//! captured through a bounded pipe ([`super::Bounds::max_capture_bytes`]); `$(< file)` reads the
//! file beneath the workspace without running anything. This module must not start anything but
//! through [`super::exec`], nor open a path but through [`super::io`].

use super::exec::{Abort, Res, deeper};
use super::expand;
use super::io::{self, Mode};
use super::state::{Io, State};
use super::{Ctx, Host, ShellError};
use crate::pipe::{PIPE_CAPACITY, pipe};
use brush_parser::ast::{
    Command, CommandPrefixOrSuffixItem as Item, IoFileRedirectKind as K, IoFileRedirectTarget as T,
    IoRedirect, Program, Word,
};

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
        let r = match super::exec::program(ctx, &mut sub, &program_ast).await {
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
