//! The interpreter's streams: what feeds a command's stdin (the request's bytes, a file, a
//! here-document) and what takes a stream away (the reply's bounded capture, a file, `/dev/null`,
//! a command substitution's bounded buffer), and the resolution of the paths a script names
//! for redirections — relative to the script's working directory, `/` being the workspace
//! root, opened beneath it through the workspace capability.
//!
//! Files are opened without following a FIFO's wait (`O_NONBLOCK`) and only regular files are
//! used, so a FIFO or device planted in the workspace cannot wedge the server; every byte written
//! to a file is taken from the call's write budget first. This module must not open anything
//! outside the workspace, nor hold more than one chunk of a stream at a time.

use super::ShellError;
use super::state::Complaint;
use crate::error::{ErrorCode, RunError};
use crate::limits::write_pool::WritePool;
use crate::outcome::Capture;
use crate::pipe::{PipeReader, PipeWriter};
use crate::workspace::Workspace;
use cap_std::fs::{File, OpenOptions, OpenOptionsExt};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// Bytes moved at a time.
const CHUNK: usize = 64 * 1024;

/// Writes `bytes` into `w`, then ends (dropping `w` is end-of-file). A reader that leaves
/// early ends it too.
pub async fn feed_bytes(w: PipeWriter, bytes: bytes::Bytes) {
    let _ = w.write_all(&bytes).await;
}

/// Reads `r` to its end into `capture` (which keeps what its bound allows and counts the rest).
pub async fn collect(r: PipeReader, capture: Capture) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = r.read(&mut buf).await;
        if n == 0 {
            return;
        }
        capture.push(&buf[..n]);
    }
}

/// Reads `r` to its end and forgets it (`/dev/null`).
pub async fn discard(r: PipeReader) {
    let mut buf = vec![0u8; CHUNK];
    while r.read(&mut buf).await > 0 {}
}

/// A buffer a command substitution fills, bounded: past `limit` the overflow is noted and the
/// rest dropped.
#[derive(Debug, Clone, Default)]
pub struct Bounded {
    inner: Arc<Mutex<(Vec<u8>, bool)>>,
}

impl Bounded {
    /// Reads `r` to its end, keeping at most `limit` bytes.
    pub async fn fill(&self, r: PipeReader, limit: usize) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = r.read(&mut buf).await;
            if n == 0 {
                return;
            }
            let mut g = self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let room = limit.saturating_sub(g.0.len());
            if n > room {
                g.1 = true;
            }
            let take = n.min(room);
            g.0.extend_from_slice(&buf[..take]);
        }
    }

    /// What was kept, and whether more was offered than kept.
    pub fn take(&self) -> (Vec<u8>, bool) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (std::mem::take(&mut g.0), g.1)
    }
}

/// Where a stream read by [`drain_to_file`] ended badly.
#[derive(Debug, Default, Clone)]
pub struct DrainError(pub Arc<Mutex<Option<ShellError>>>);

impl DrainError {
    fn set(&self, e: ShellError) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.get_or_insert(e);
    }

    /// The error, if the drain failed.
    pub fn get(&self) -> Option<ShellError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Reads `r` to its end into `file`, taking every byte from `pool` first. On a failure (the
/// budget is spent, the disk is full) it stops reading — the writer then sees a broken pipe —
/// and notes why in `error`.
pub async fn drain_to_file(r: PipeReader, mut file: File, pool: WritePool, error: DrainError) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = r.read(&mut buf).await;
        if n == 0 {
            return;
        }
        let want = n as u64;
        if pool.take(want, true) < want {
            error.set(ShellError::Stopped(RunError::new(
                ErrorCode::WriteLimit,
                "a redirection wrote more than the call's write budget (write_bytes) allows",
            )));
            return;
        }
        if let Err(e) = file.write_all(&buf[..n]) {
            pool.give_back(want);
            error.set(ShellError::Stopped(RunError::new(
                ErrorCode::CommandFailed,
                format!("writing a redirection failed: {e}"),
            )));
            return;
        }
    }
}

/// Reads `file` into `w` chunk by chunk until its end or until the reader leaves.
pub async fn feed_file(w: PipeWriter, mut file: File) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A path named in the script, as the guest sees it, made relative to the workspace root:
/// absolute paths start at the root, relative ones at `cwd`; `.` and `..` are applied as
/// text (a `..` above the root is refused), as bash's own `cd` does.
///
/// # Errors
/// [`ShellError::Outside`] for a path that climbs above the root.
pub fn resolve(cwd: &str, path: &str) -> Result<String, ShellError> {
    let mut parts: Vec<&str> = if path.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ShellError::Outside(path.to_owned()));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The special files a redirection may name besides workspace files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `/dev/null`.
    Null,
    /// `/dev/stdout`.
    Stdout,
    /// `/dev/stderr`.
    Stderr,
    /// `/dev/stdin`.
    Stdin,
}

/// Whether `path` names one of the [`Special`] files.
pub fn special(path: &str) -> Option<Special> {
    match path {
        "/dev/null" => Some(Special::Null),
        "/dev/stdout" | "/dev/fd/1" => Some(Special::Stdout),
        "/dev/stderr" | "/dev/fd/2" => Some(Special::Stderr),
        "/dev/stdin" | "/dev/fd/0" => Some(Special::Stdin),
        _ => None,
    }
}

/// How a redirection opens its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Truncate,
    Append,
}

/// Opens `path` (named in the script, relative to `cwd`) beneath the workspace for `mode`.
/// Only a regular file is used; a FIFO or device is refused without waiting on it.
///
/// # Errors
/// [`ShellError::Outside`] for a path leading outside; a [`Complaint`] (the `io::Error` as bash
/// prints it) for a file that cannot be opened.
pub fn open(
    ws: &Workspace,
    cwd: &str,
    path: &str,
    mode: Mode,
    may_write: bool,
) -> Result<Result<File, Complaint>, ShellError> {
    let rel = resolve(cwd, path)?;
    if mode != Mode::Read && !may_write {
        return Err(ShellError::ReadOnly(path.to_owned()));
    }
    let mut o = OpenOptions::new();
    match mode {
        Mode::Read => o.read(true),
        Mode::Truncate => o.write(true).create(true).truncate(true),
        Mode::Append => o.append(true).create(true),
    };
    o.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    let target = if rel.is_empty() { "." } else { rel.as_str() };
    let file = match ws.root().open_with(target, &o) {
        Ok(f) => f,
        Err(e) => {
            if is_escape(&e) {
                return Err(ShellError::Outside(path.to_owned()));
            }
            return Ok(Err(format!("{path}: {}", describe(&e)).into()));
        }
    };
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(Ok(file)),
        Ok(m) if m.is_dir() => Ok(Err(format!("{path}: Is a directory").into())),
        Ok(_) => Ok(Err(format!(
            "{path}: not a regular file (runbox redirects only to and from regular files)"
        )
        .into())),
        Err(e) => Ok(Err(format!("{path}: {}", describe(&e)).into())),
    }
}

/// Whether an open failed because the path leads outside the workspace (cap-std's refusal).
fn is_escape(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied && e.raw_os_error().is_none()
        || e.raw_os_error() == Some(libc::EXDEV)
}

/// An `io::Error` as bash prints it (`No such file or directory`).
pub fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let s = std::io::Error::from_raw_os_error(code).to_string();
            s.split(" (os error").next().unwrap_or(&s).to_owned()
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_the_guest_sees_them() {
        assert_eq!(resolve("src", "a.rs").unwrap(), "src/a.rs");
        assert_eq!(resolve("src", "/a.rs").unwrap(), "a.rs");
        assert_eq!(resolve("src/x", "../y/./z").unwrap(), "src/y/z");
        assert_eq!(resolve("", ".").unwrap(), "");
        assert!(matches!(resolve("", ".."), Err(ShellError::Outside(_))));
        assert!(matches!(
            resolve("a", "../../etc"),
            Err(ShellError::Outside(_))
        ));
        assert!(matches!(
            resolve("a", "/../etc"),
            Err(ShellError::Outside(_))
        ));
    }
}
