//! Space set aside for the log on its own disk, so that a disk filled by a command (the
//! workspace often shares the audit's file system) still takes the records that tell of it:
//! the blocks just past the end of the current file are allocated ahead (`fallocate` with
//! `KEEP_SIZE`, so readers and the chain never see them) and topped up as records use them.
//!
//! The reserve is for the records of calls already let in (their end, the server's `stop`): a
//! new call is let in only when the whole reserve can be renewed ([`renew`]), so a full disk
//! still refuses new calls. Where the file system has no `fallocate` the log runs without a
//! reserve.

use std::fs::File;

/// Bytes kept allocated past the end of the current file: room for the ~100 end records
/// (about 1 KiB each) of the calls and pipeline stages that can be in flight at once with the
/// default limits. Should more be in flight when the disk fills, a call whose end cannot be
/// recorded is answered as having run (`AUDIT_UNAVAILABLE` with its output), never lost.
pub const RESERVE_BYTES: u64 = 128 * 1024;

/// Free space (besides the reserve) below which the disk counts as full for new calls.
pub const MIN_FREE_BYTES: u64 = 32 * 1024;

/// Ensures the reserve after `len` (the file's length) reaches at least half of
/// [`RESERVE_BYTES`], extending it to a whole one; returns the new end of the reserve, or the old
/// one (`reserved_to`) when the file system refused.
pub fn top_up(file: &File, len: u64, reserved_to: u64) -> u64 {
    if reserved_to >= len.saturating_add(RESERVE_BYTES / 2) {
        return reserved_to;
    }
    match rustix::fs::fallocate(
        file,
        rustix::fs::FallocateFlags::KEEP_SIZE,
        len,
        RESERVE_BYTES,
    ) {
        Ok(()) => len.saturating_add(RESERVE_BYTES),
        Err(_) => reserved_to,
    }
}

/// Renews the whole reserve after `len` before a new call is let in: the call's own records
/// must fit even if the disk fills while it runs. Returns the new end of the reserve (`len` where
/// the file system has no `fallocate`, so nothing can be kept), or why the disk cannot give it:
/// then the call is refused, as it would be with no space at all.
pub fn renew(file: &File, len: u64) -> std::io::Result<u64> {
    let reserved_to = match rustix::fs::fallocate(
        file,
        rustix::fs::FallocateFlags::KEEP_SIZE,
        len,
        RESERVE_BYTES,
    ) {
        Ok(()) => len.saturating_add(RESERVE_BYTES),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => len,
        Err(e) => return Err(e.into()),
    };
    // Renewing needs new blocks only when the reserve's end crosses one, so it alone would let
    // calls in on a full disk now and then; the free space says it plainly.
    let fs = rustix::fs::fstatvfs(file)?;
    if fs.f_bavail.saturating_mul(fs.f_frsize) < MIN_FREE_BYTES {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(reserved_to)
}

/// Gives the reserve of a file the log is leaving back to the file system (cutting at its
/// length frees the blocks past it).
pub fn release(file: &File, len: u64) {
    // Best effort: a failure only leaves the reserved blocks allocated.
    let _ = file.set_len(len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_reserve_is_allocated_past_the_end_without_changing_the_length() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::options()
            .create(true)
            .append(true)
            .open(dir.path().join("log"))
            .unwrap();
        f.write_all(b"one record\n").unwrap();
        let to = top_up(&f, 11, 0);
        let meta = f.metadata().unwrap();
        assert_eq!(meta.len(), 11, "the reserve is invisible to readers");
        if to == 0 {
            // This file system cannot reserve; nothing else to check here.
            return;
        }
        assert_eq!(to, 11 + RESERVE_BYTES);
        assert!(
            meta.blocks() * 512 >= RESERVE_BYTES,
            "{} blocks",
            meta.blocks()
        );
        // Still more than half left: no new call.
        assert_eq!(top_up(&f, 100, to), to);
        release(&f, 11);
        assert!(f.metadata().unwrap().blocks() * 512 < RESERVE_BYTES);
        assert_eq!(f.metadata().unwrap().len(), 11);
    }
}
