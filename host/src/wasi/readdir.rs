//! `fd_readdir` that lists a directory once per read-through, not once per call.
//!
//! wasmtime-wasi's preview-1 `fd_readdir` lists the whole directory (and stats every entry) on
//! each call and then skips `cookie` entries of that fresh listing. Guests read directories a
//! few KiB at a time, so a directory of n entries costs about n²/100 stats (`ls` of 10,000
//! files: ~55 s), and a guest that deletes entries while reading (`rm -r`, `remove_dir_all`)
//! skips the entries that moved up under its cookie and fails with "Directory not empty".
//!
//! This replacement keeps the listing a guest gets at cookie 0 (as `opendir`/`rewinddir`) and
//! serves later cookies from it, the way `getdents` callers expect: one listing per read-through,
//! and entries deleted meanwhile do not shift the rest (POSIX leaves it open whether entries
//! added or removed after the listing began are returned). The listing itself still comes from
//! wasmtime-wasi, so names, types and inode numbers are exactly what it reports, and the guest's
//! view stays its preopens. Listings are bounded: one larger than [`MAX_LISTING_BYTES`] is not
//! kept, and those calls go straight through as before.

use super::GuestState;
use std::collections::HashMap;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::types;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wiggle::{GuestMemory, GuestPtr};

/// Largest listing kept for one directory (~400,000 entries of short names).
pub const MAX_LISTING_BYTES: usize = 16 * 1024 * 1024;
/// Bytes of listings one guest may hold at once.
const MAX_HELD_BYTES: usize = MAX_LISTING_BYTES;
/// A dirent's fixed part: d_next u64, d_ino u64, d_namlen u32, d_type u8, padding.
const DIRENT_BYTES: usize = 24;
/// First host buffer tried for a listing.
const FIRST_BUFFER: usize = 64 * 1024;

/// The listings one guest is reading through, by descriptor.
#[derive(Debug, Default)]
pub struct Listings {
    by_fd: HashMap<u32, Listing>,
}

#[derive(Debug)]
struct Listing {
    /// Which directory (dev, ino): a descriptor number can be reused for another one.
    identity: (u64, u64),
    /// The dirents as wasmtime-wasi wrote them, from cookie 0 to the end.
    bytes: Vec<u8>,
    /// Where the entry with cookie `i` starts in `bytes`.
    starts: Vec<usize>,
}

impl Listing {
    /// Parses a complete dirent stream; `None` if it is malformed.
    fn parse(identity: (u64, u64), bytes: Vec<u8>) -> Option<Self> {
        let mut starts = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let header = bytes.get(at..at + DIRENT_BYTES)?;
            let namlen = u32::from_le_bytes(header[16..20].try_into().ok()?) as usize;
            let end = at.checked_add(DIRENT_BYTES)?.checked_add(namlen)?;
            if end > bytes.len() {
                return None;
            }
            starts.push(at);
            at = end;
        }
        Some(Self {
            identity,
            bytes,
            starts,
        })
    }

    /// What a guest buffer of `len` bytes gets from `cookie` on: whole entries, the last one cut
    /// at the buffer's end (the guest then knows to read again with a larger buffer).
    fn entries_at(&self, cookie: u64, len: usize) -> &[u8] {
        let start = usize::try_from(cookie)
            .ok()
            .and_then(|c| self.starts.get(c).copied())
            .unwrap_or(self.bytes.len());
        let end = self.bytes.len().min(start.saturating_add(len));
        &self.bytes[start..end]
    }
}

/// Replaces wasmtime-wasi's `fd_readdir` in `linker` (which must already hold preview 1).
pub fn link(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = linker
        .func_wrap_async(
            "wasi_snapshot_preview1",
            "fd_readdir",
            |mut caller: Caller<'_, GuestState>,
             (fd, buf, buf_len, cookie, nread): (i32, i32, i32, i64, i32)| {
                Box::new(async move {
                    fd_readdir(
                        &mut caller,
                        fd as u32,
                        buf as u32,
                        buf_len as u32,
                        cookie as u64,
                        nread as u32,
                    )
                    .await
                })
            },
        )
        .map(|_| ());
    linker.allow_shadowing(false);
    linked
}

/// The call itself: returns the errno (0 on success), or a trap.
async fn fd_readdir(
    caller: &mut Caller<'_, GuestState>,
    fd: u32,
    buf: u32,
    buf_len: u32,
    cookie: u64,
    nread: u32,
) -> wasmtime::Result<i32> {
    let len = buf_len as usize;
    let bytes = match entries(caller.data_mut(), fd, cookie, len).await {
        Ok(bytes) => bytes,
        Err(e) => return errno_of(e),
    };
    let Some(memory) = caller
        .get_export("memory")
        .and_then(wasmtime::Extern::into_memory)
    else {
        return Err(wasmtime::Error::msg(
            "fd_readdir: the module exports no memory",
        ));
    };
    let count = u32::try_from(bytes.len()).unwrap_or(buf_len);
    if memory.write(&mut *caller, buf as usize, &bytes).is_err()
        || memory
            .write(&mut *caller, nread as usize, &count.to_le_bytes())
            .is_err()
    {
        return Ok(types::Errno::Fault as i32);
    }
    Ok(0)
}

/// The bytes for the guest's buffer: from the kept listing, or straight from wasmtime-wasi.
async fn entries(
    state: &mut GuestState,
    fd: u32,
    cookie: u64,
    len: usize,
) -> Result<Vec<u8>, types::Error> {
    let stat = state
        .wasi
        .fd_filestat_get(&mut GuestMemory::Unshared(&mut []), types::Fd::from(fd))
        .await?;
    let identity = (stat.dev, stat.ino);
    if cookie == 0 || state.listings.by_fd.get(&fd).map(|l| l.identity) != Some(identity) {
        state.listings.by_fd.remove(&fd);
        if let Some(listing) = list(state, fd, identity).await? {
            let held: usize = state.listings.by_fd.values().map(|l| l.bytes.len()).sum();
            if held + listing.bytes.len() > MAX_HELD_BYTES {
                state.listings.by_fd.clear();
            }
            state.listings.by_fd.insert(fd, listing);
        }
    }
    if let Some(listing) = state.listings.by_fd.get(&fd) {
        return Ok(listing.entries_at(cookie, len).to_vec());
    }
    // Too large to keep: the original call, into a host buffer of the guest's size.
    original(state, fd, len, cookie).await
}

/// wasmtime-wasi's own `fd_readdir` into a host buffer of `len` bytes: what it wrote.
async fn original(
    state: &mut GuestState,
    fd: u32,
    len: usize,
    cookie: u64,
) -> Result<Vec<u8>, types::Error> {
    let mut host = vec![0u8; len];
    let n = state
        .wasi
        .fd_readdir(
            &mut GuestMemory::Unshared(&mut host),
            types::Fd::from(fd),
            GuestPtr::new(0),
            u32::try_from(len).unwrap_or(u32::MAX),
            cookie,
        )
        .await?;
    host.truncate(n as usize);
    Ok(host)
}

/// The whole listing of `fd`, or `None` when it is larger than [`MAX_LISTING_BYTES`].
async fn list(
    state: &mut GuestState,
    fd: u32,
    identity: (u64, u64),
) -> Result<Option<Listing>, types::Error> {
    let mut size = FIRST_BUFFER;
    loop {
        let host = original(state, fd, size, 0).await?;
        if host.len() < size {
            return Ok(Listing::parse(identity, host));
        }
        if size >= MAX_LISTING_BYTES {
            return Ok(None);
        }
        size = (size * 4).min(MAX_LISTING_BYTES);
    }
}

/// An error of the original implementation as this call's result.
fn errno_of(e: types::Error) -> wasmtime::Result<i32> {
    match e.downcast() {
        Ok(errno) => Ok(errno as i32),
        Err(trap) => Err(trap),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirent(next: u64, name: &str) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&next.to_le_bytes());
        d.extend_from_slice(&7u64.to_le_bytes());
        d.extend_from_slice(&(name.len() as u32).to_le_bytes());
        d.extend_from_slice(&[4, 0, 0, 0]);
        d.extend_from_slice(name.as_bytes());
        d
    }

    fn stream(names: &[&str]) -> Vec<u8> {
        names
            .iter()
            .enumerate()
            .flat_map(|(i, n)| dirent(i as u64 + 1, n))
            .collect()
    }

    #[test]
    fn cookies_index_whole_entries() {
        let bytes = stream(&[".", "..", "alpha", "b"]);
        let l = Listing::parse((1, 2), bytes.clone()).unwrap();
        assert_eq!(l.starts, [0, 25, 51, 80]);
        assert_eq!(l.entries_at(0, usize::MAX), &bytes[..]);
        assert_eq!(l.entries_at(2, usize::MAX), &bytes[51..]);
        assert_eq!(l.entries_at(3, usize::MAX), &bytes[80..]);
        assert!(l.entries_at(4, usize::MAX).is_empty());
        assert!(l.entries_at(u64::MAX, 100).is_empty());
        // A short buffer gets the entries that fit and the next one cut, as the original does.
        assert_eq!(l.entries_at(2, 40), &bytes[51..91]);
    }

    #[test]
    fn malformed_streams_are_not_kept() {
        let mut bytes = stream(&["a"]);
        bytes.pop();
        assert!(Listing::parse((0, 0), bytes).is_none());
        assert!(Listing::parse((0, 0), vec![0; 10]).is_none());
        let mut huge = dirent(1, "x");
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Listing::parse((0, 0), huge).is_none());
        assert!(
            Listing::parse((0, 0), Vec::new())
                .unwrap()
                .starts
                .is_empty()
        );
    }
}
