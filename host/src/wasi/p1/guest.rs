//! The preview-1 state of one guest (arguments, environment, stdin, its descriptor table and
//! write budget), how it is made, and the helpers every call uses to move bytes and paths
//! across guest memory. It must not touch the filesystem: the calls themselves are in the
//! sibling modules, which resolve every path through a directory descriptor's handle.

use super::table::{Descriptor, DirDesc, FdTable};
use super::{Result, WriteBudget, dirs};
use crate::outcome::Capture;
use crate::runner::{Input, Output};
use std::sync::Arc;
use wasmtime_wasi::p1::types::Errno;
use wiggle::{GuestMemory, GuestPtr};

/// One preopened directory.
#[derive(Debug)]
pub struct Preopen {
    /// The directory.
    pub dir: cap_std::fs::Dir,
    /// The name the guest sees it under (`/`, `/.runbox-tmp`).
    pub guest_path: String,
    /// Whether it may be written.
    pub writable: bool,
}

/// The preview-1 state of one guest: arguments, environment, stdio and its descriptors.
#[derive(Debug)]
pub struct GuestWasi {
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) stdin: Input,
    pub(super) stdin_pos: usize,
    pub(super) fds: FdTable,
    pub(super) budget: WriteBudget,
}

impl GuestWasi {
    /// A guest with `args` (argv\[0\] first), `env`, `stdin` as its standard input, `stdout`
    /// (a capture or the next stage's pipe) and `stderr` taking its output, and `preopens` as
    /// fds 3, 4, … in order. Writes to files are charged to `budget`.
    pub fn new(
        args: Vec<String>,
        env: Vec<(String, String)>,
        stdin: Input,
        stdout: Output,
        stderr: Capture,
        preopens: Vec<Preopen>,
        budget: WriteBudget,
    ) -> std::result::Result<Self, Errno> {
        let mut fds = FdTable::default();
        fds.push(Descriptor::Stdin)?;
        fds.push(Descriptor::Stdout(stdout))?;
        fds.push(Descriptor::Stderr(stderr))?;
        for p in preopens {
            fds.push(Descriptor::Dir(DirDesc {
                dir: Arc::new(p.dir),
                writable: p.writable,
                preopen: Some(p.guest_path.into_bytes()),
                cursor: dirs::DirCursor::default(),
            }))?;
        }
        Ok(Self {
            args,
            env,
            stdin,
            stdin_pos: 0,
            fds,
            budget,
        })
    }

    /// A guest with nothing: no arguments, no files (for enumerating the linker's imports).
    pub fn empty() -> Self {
        Self {
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Bytes(bytes::Bytes::new()),
            stdin_pos: 0,
            fds: FdTable::default(),
            budget: WriteBudget::new(0),
        }
    }

    /// The write budget: what was written, and whether a write was refused for it.
    pub fn budget(&self) -> &WriteBudget {
        &self.budget
    }
}

/// Adds runbox's preview 1 to `linker`; `get` projects the store's state onto the guest's
/// [`GuestWasi`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::Linker<T>,
    get: impl Fn(&mut T) -> &mut GuestWasi + Send + Sync + Copy + 'static,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::wasi_snapshot_preview1::add_to_linker(linker, get)
}

/// Copies `bytes` to guest memory at `ptr`; returns the pointer just past them.
pub(super) fn write_bytes(
    memory: &mut GuestMemory<'_>,
    ptr: GuestPtr<u8>,
    bytes: &[u8],
) -> Result<GuestPtr<u8>> {
    let len = u32::try_from(bytes.len())?;
    memory.copy_from_slice(bytes, ptr.as_array(len))?;
    Ok(ptr.add(len)?)
}

/// A guest path as host path bytes (preview 1 calls them strings; runbox takes any bytes but
/// NUL, which no file name can hold).
pub(super) fn guest_path(
    memory: &GuestMemory<'_>,
    path: GuestPtr<str>,
) -> Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = memory.as_cow(path.as_bytes())?;
    if bytes.contains(&0) {
        return Err(Errno::Ilseq.into());
    }
    // An empty path names no file (as `openat` without `AT_EMPTY_PATH`), never the directory.
    if bytes.is_empty() {
        return Err(Errno::Noent.into());
    }
    Ok(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(
        &bytes,
    )))
}
