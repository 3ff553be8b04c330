//! `fd_readdir`: directory listings straight from `getdents64`, resumable by the kernel's own
//! cookies.
//!
//! A preview-1 guest reads a directory in buffer-sized pieces, passing back the `d_next` cookie
//! of the last entry it took. runbox hands out the kernel's `d_off` as that cookie, so resuming
//! is one `lseek` on a directory stream and no listing is ever kept whole: a directory of any
//! size costs one pass, entries removed while a guest reads (`rm -r`) do not shift the rest,
//! and the host holds at most one entry per open directory between calls. `d_ino` and `d_type`
//! are the kernel's (a `stat` only where the filesystem does not report a type); `..` is given
//! the directory's own inode, so the listing of a preopen's root tells nothing about what is
//! above it. Names are bytes, whatever their encoding. This module must not resolve paths.

use super::files::{errno_of, filetype_of_mode};
use super::table::DirDesc;
use super::{Result, write_bytes};
use std::os::fd::AsFd;
use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::{GuestMemory, GuestPtr};

/// Size of a dirent's fixed part in guest memory: `d_next` u64, `d_ino` u64, `d_namlen` u32,
/// `d_type` u8, padding.
const DIRENT_BYTES: usize = 24;

/// Where a guest is in reading one directory.
#[derive(Debug, Default)]
pub struct DirCursor {
    /// The host's stream over the directory (its own descriptor), opened at the first read.
    stream: Option<rustix::fs::Dir>,
    /// The cookie the stream is positioned at (0: the start).
    position: u64,
    /// An entry read from the stream but not yet (completely) given to the guest; it starts at
    /// `position`.
    pending: Option<Entry>,
    /// The directory's own inode, reported for `..` (from the open's `fstat`, or an `fstat` when
    /// `..` is first met).
    own_ino: Option<u64>,
}

impl DirCursor {
    /// A cursor for a directory whose inode is already known (from the `fstat` of its open),
    /// so that reading its `..` costs no further system call.
    pub fn with_own_inode(ino: u64) -> Self {
        Self {
            own_ino: Some(ino),
            ..Self::default()
        }
    }
}

#[derive(Debug)]
struct Entry {
    name: Vec<u8>,
    ino: u64,
    filetype: types::Filetype,
    next: u64,
}

/// `fd_readdir` of `dir` into the guest's `buf`, from `cookie` on.
pub fn readdir(
    dir: &mut DirDesc,
    memory: &mut GuestMemory<'_>,
    buf: GuestPtr<u8>,
    buf_len: types::Size,
    cookie: types::Dircookie,
) -> Result<types::Size> {
    let handle = std::sync::Arc::clone(&dir.dir);
    let cursor = &mut dir.cursor;
    if cursor.stream.is_none() {
        // A descriptor of its own (the handle's offset may be shared with a preopen's
        // original), opened on `.` of the handle itself, so nothing is resolved.
        use rustix::fs::OFlags;
        let own = rustix::fs::openat(
            handle.as_fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            rustix::fs::Mode::empty(),
        )
        .map_err(errno_of)?;
        let stream = rustix::fs::Dir::new(own).map_err(errno_of)?;
        cursor.stream = Some(stream);
        cursor.position = 0;
        cursor.pending = None;
    }
    if cookie != cursor.position {
        let stream = cursor.stream.as_mut().ok_or(Errno::Badf)?;
        let at = i64::try_from(cookie).map_err(|_| Errno::Inval)?;
        stream.seek(at).map_err(errno_of)?;
        cursor.position = cookie;
        cursor.pending = None;
    }

    let capacity = buf_len as usize;
    let mut out = Vec::with_capacity(capacity.min(64 * 1024));
    while out.len() < capacity {
        let entry = match cursor.pending.take() {
            Some(e) => e,
            None => match next_entry(cursor, &handle)? {
                Some(e) => e,
                None => break,
            },
        };
        let mut bytes = Vec::with_capacity(DIRENT_BYTES + entry.name.len());
        bytes.extend_from_slice(&entry.next.to_le_bytes());
        bytes.extend_from_slice(&entry.ino.to_le_bytes());
        bytes.extend_from_slice(&u32::try_from(entry.name.len())?.to_le_bytes());
        bytes.push(entry.filetype as u8);
        bytes.extend_from_slice(&[0, 0, 0]);
        bytes.extend_from_slice(&entry.name);
        let room = capacity - out.len();
        if bytes.len() > room {
            // Fill the buffer to the end: the guest sees it is full, and asks again from the
            // last whole entry's cookie, where this entry waits.
            out.extend_from_slice(&bytes[..room]);
            cursor.pending = Some(entry);
            break;
        }
        out.extend_from_slice(&bytes);
        cursor.position = entry.next;
    }
    write_bytes(memory, buf, &out)?;
    Ok(u32::try_from(out.len())?)
}

/// The next entry of the stream, its type resolved.
fn next_entry(cursor: &mut DirCursor, dir: &cap_std::fs::Dir) -> Result<Option<Entry>> {
    let Some(stream) = cursor.stream.as_mut() else {
        return Err(Errno::Badf.into());
    };
    let Some(read) = stream.read() else {
        return Ok(None);
    };
    let raw = read.map_err(errno_of)?;
    let name = raw.file_name().to_bytes().to_vec();
    let next = u64::try_from(raw.offset()).map_err(|_| Errno::Overflow)?;
    let ino = if name == b".." {
        match cursor.own_ino {
            Some(ino) => ino,
            None => {
                let ino = rustix::fs::fstat(dir.as_fd()).map_err(errno_of)?.st_ino;
                cursor.own_ino = Some(ino);
                ino
            }
        }
    } else {
        raw.ino()
    };
    use rustix::fs::FileType as T;
    let filetype = match raw.file_type() {
        T::RegularFile => types::Filetype::RegularFile,
        T::Directory => types::Filetype::Directory,
        T::Symlink => types::Filetype::SymbolicLink,
        T::CharacterDevice => types::Filetype::CharacterDevice,
        T::BlockDevice => types::Filetype::BlockDevice,
        T::Socket => types::Filetype::SocketStream,
        T::Fifo => types::Filetype::Unknown,
        // The filesystem does not say: ask for this one entry (never following a link).
        _ => rustix::fs::statat(
            dir.as_fd(),
            raw.file_name(),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map(|s| filetype_of_mode(s.st_mode))
        .unwrap_or(types::Filetype::Unknown),
    };
    Ok(Some(Entry {
        name,
        ino,
        filetype,
        next,
    }))
}
