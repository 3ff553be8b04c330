//! Redirections: `<`, `>`, `>>`, `2>`, `&>`, `2>&1`, `>&2`, `<&-`, here-documents and
//! here-strings, applied left to right to a copy of the shell's streams. A file is opened
//! through [`super::io`] (beneath the workspace, regular files only); reading it, feeding a
//! here-document and draining into a file are side tasks run beside the command by
//! [`super::exec`]. This module must not open anything but through [`super::io`], nor run the
//! command it prepares the streams of.

use super::exec::Res;
use super::expand;
use super::io::{self, DrainError, Mode, Special};
use super::simple::process_substitution;
use super::state::{Complaint, Io, State};
use super::{Ctx, Host, ShellError};
use crate::pipe::{PIPE_CAPACITY, pipe};
use brush_parser::ast::{IoFileRedirectKind as K, IoFileRedirectTarget as T, IoRedirect};
use futures_util::future::BoxFuture;

/// The standard streams a redirection is about.
pub(super) fn fd_of(fd: Option<i32>, default: i32) -> Res<i32> {
    let fd = fd.unwrap_or(default);
    if !(0..=2).contains(&fd) {
        return Err(ShellError::Construct {
            construct: format!("descriptor {fd}"),
            offset: None,
            why: "only descriptors 0, 1 and 2 can be redirected",
        }
        .into());
    }
    Ok(fd)
}

/// A side task of a redirection (a feeder or a drain), run beside the command.
pub(super) type Side = BoxFuture<'static, ()>;

/// What applying redirections gave: the streams, the side tasks, the drains to check, or a
/// message (the file could not be opened: the command does not run, status 1).
pub(super) struct Applied {
    pub io: Io,
    pub sides: Vec<Side>,
    pub drains: Vec<DrainError>,
}

fn set_fd(io: &mut Io, fd: i32, w: crate::pipe::PipeWriter) {
    if fd == 2 {
        io.stderr = w;
    } else {
        io.stdout = w;
    }
}

/// A pipe drained into `file`.
fn to_file(
    ctx_pool: &crate::limits::write_pool::WritePool,
    file: cap_std::fs::File,
    a: &mut Applied,
) -> crate::pipe::PipeWriter {
    let (w, r) = pipe(PIPE_CAPACITY);
    let err = DrainError::default();
    a.drains.push(err.clone());
    a.sides
        .push(Box::pin(io::drain_to_file(r, file, ctx_pool.clone(), err)));
    w
}

fn null_writer(a: &mut Applied) -> crate::pipe::PipeWriter {
    let (w, r) = pipe(PIPE_CAPACITY);
    a.sides.push(Box::pin(io::discard(r)));
    w
}

fn bytes_reader(a: &mut Applied, bytes: Vec<u8>) -> crate::pipe::PipeReader {
    let (w, r) = pipe(PIPE_CAPACITY);
    a.sides
        .push(Box::pin(io::feed_bytes(w, bytes::Bytes::from(bytes))));
    r
}

/// Applies `redirects` left to right on a copy of the streams; `Err(Ok(msg))` when a file
/// cannot be opened (bash prints it and skips the command).
pub(super) async fn apply<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &mut State,
    redirects: &[IoRedirect],
) -> Res<Result<Applied, Complaint>> {
    let mut a = Applied {
        io: st.io.share(),
        sides: Vec::new(),
        drains: Vec::new(),
    };
    let ws = ctx.host.workspace();
    let may_write = ctx.host.may_write();
    for r in redirects {
        match r {
            IoRedirect::File(fd, kind, target) => {
                let input = matches!(kind, K::Read | K::DuplicateInput | K::ReadAndWrite);
                let fd = fd_of(*fd, if input { 0 } else { 1 })?;
                let path = match target {
                    T::Filename(w) => expand::single(ctx, st, &w.value).await?,
                    T::Fd(n) => {
                        dup(&mut a.io, fd, fd_of(Some(*n), 1)?);
                        continue;
                    }
                    T::Duplicate(w) => {
                        let v = expand::single(ctx, st, &w.value).await?;
                        if v == "-" {
                            if fd == 0 {
                                a.io.stdin = bytes_reader(&mut a, Vec::new());
                            } else {
                                let w = null_writer(&mut a);
                                set_fd(&mut a.io, fd, w);
                            }
                            continue;
                        }
                        match v.parse::<i32>() {
                            Ok(n) => {
                                dup(&mut a.io, fd, fd_of(Some(n), 1)?);
                                continue;
                            }
                            Err(_) if !input && fd == 1 => {
                                // `>& file`: stdout and stderr to the file.
                                match io::open(ws, &st.cwd, &v, Mode::Truncate, may_write)? {
                                    Ok(file) => {
                                        let w = to_file(&ctx.write_pool, file, &mut a);
                                        a.io.stderr = w.share();
                                        a.io.stdout = w;
                                    }
                                    Err(msg) => return Ok(Err(msg)),
                                }
                                continue;
                            }
                            Err(_) => return Ok(Err(format!("{v}: ambiguous redirect").into())),
                        }
                    }
                    T::ProcessSubstitution(..) => return Err(process_substitution()),
                };
                if let Some(sp) = io::special(&path) {
                    match (sp, input) {
                        (Special::Null, true) => a.io.stdin = bytes_reader(&mut a, Vec::new()),
                        (Special::Null, false) => {
                            let w = null_writer(&mut a);
                            set_fd(&mut a.io, fd, w);
                        }
                        (Special::Stdout, false) => dup(&mut a.io, fd, 1),
                        (Special::Stderr, false) => dup(&mut a.io, fd, 2),
                        (Special::Stdin, true) => {}
                        _ => return Ok(Err(format!("{path}: Bad file descriptor").into())),
                    }
                    continue;
                }
                let mode = match kind {
                    K::Read | K::DuplicateInput => Mode::Read,
                    K::Append => Mode::Append,
                    K::Write | K::Clobber | K::DuplicateOutput => Mode::Truncate,
                    K::ReadAndWrite => {
                        return Err(ShellError::Construct {
                            construct: "<>".into(),
                            offset: None,
                            why: "read-write redirection is not supported",
                        }
                        .into());
                    }
                };
                match io::open(ws, &st.cwd, &path, mode, may_write)? {
                    Ok(file) if mode == Mode::Read => {
                        let (w, r) = pipe(PIPE_CAPACITY);
                        a.sides.push(Box::pin(io::feed_file(w, file)));
                        a.io.stdin = r;
                    }
                    Ok(file) => {
                        let w = to_file(&ctx.write_pool, file, &mut a);
                        set_fd(&mut a.io, fd, w);
                    }
                    Err(msg) => return Ok(Err(msg)),
                }
            }
            IoRedirect::HereDocument(fd, doc) => {
                fd_of(*fd, 0)?;
                let mut text = doc.doc.value.clone();
                if doc.remove_tabs {
                    text = text
                        .split_inclusive('\n')
                        .map(|l| l.trim_start_matches('\t'))
                        .collect();
                }
                if doc.requires_expansion {
                    text = expand::heredoc(ctx, st, &text).await?;
                }
                a.io.stdin = bytes_reader(&mut a, text.into_bytes());
            }
            IoRedirect::HereString(fd, w) => {
                fd_of(*fd, 0)?;
                let mut text = expand::single(ctx, st, &w.value).await?;
                text.push('\n');
                a.io.stdin = bytes_reader(&mut a, text.into_bytes());
            }
            IoRedirect::OutputAndError(w, append) => {
                let path = expand::single(ctx, st, &w.value).await?;
                if io::special(&path) == Some(Special::Null) {
                    let w = null_writer(&mut a);
                    a.io.stderr = w.share();
                    a.io.stdout = w;
                    continue;
                }
                let mode = if *append {
                    Mode::Append
                } else {
                    Mode::Truncate
                };
                match io::open(ws, &st.cwd, &path, mode, may_write)? {
                    Ok(file) => {
                        let w = to_file(&ctx.write_pool, file, &mut a);
                        a.io.stderr = w.share();
                        a.io.stdout = w;
                    }
                    Err(msg) => return Ok(Err(msg)),
                }
            }
        }
    }
    Ok(Ok(a))
}

/// `to>&from`.
fn dup(io: &mut Io, to: i32, from: i32) {
    match (to, from) {
        (1, 2) => io.stdout = io.stderr.share(),
        (2, 1) => io.stderr = io.stdout.share(),
        _ => {}
    }
}
