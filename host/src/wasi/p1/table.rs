//! The guest's descriptor table: what each preview-1 `fd` number stands for.
//!
//! Numbers are handed out lowest-free-first, as POSIX does (0–2 are stdio, then the preopens),
//! and the table is bounded ([`MAX_DESCRIPTORS`]): a guest that opens without closing gets
//! `EMFILE`, never unbounded host descriptors. A descriptor owns its host file; closing it or
//! dropping the table closes the host file. Permissions travel with the descriptor (a file
//! opened read-only can never be written, a read-only preopen yields read-only descendants);
//! this module only stores them, the calls check them.

use super::dirs::DirCursor;
use crate::outcome::Capture;
use std::sync::Arc;
use wasmtime_wasi::p1::types::Errno;

/// Most descriptors one guest may hold at once (stdio and preopens included).
pub const MAX_DESCRIPTORS: usize = 1024;

/// One open directory.
#[derive(Debug)]
pub struct DirDesc {
    /// The directory, through which every path below it is resolved (beneath it, always).
    pub dir: Arc<cap_std::fs::Dir>,
    /// Whether entries below it may be created, changed or removed.
    pub writable: bool,
    /// The name a preopen is announced under; `None` for a directory the guest opened.
    pub preopen: Option<Vec<u8>>,
    /// Read-ahead of `fd_readdir`, kept between calls.
    pub cursor: DirCursor,
}

/// One open regular file. Reads and writes use the host file's own offset and `O_APPEND`.
#[derive(Debug)]
pub struct FileDesc {
    /// The file.
    pub file: std::fs::File,
    /// Opened for reading.
    pub readable: bool,
    /// Opened for writing (only ever true below a writable preopen).
    pub writable: bool,
    /// Lies below a writable preopen, so its metadata (times) may change even when it was
    /// opened for reading only, as `futimens` allows the owner.
    pub below_writable: bool,
    /// The guest asked for `O_APPEND` (also set on the host file).
    pub append: bool,
    /// The guest asked for non-blocking I/O (regular files never block; reported back only).
    pub nonblocking: bool,
}

/// What a descriptor number stands for.
#[derive(Debug)]
pub enum Descriptor {
    /// Standard input (the request's bytes or a pipe, held by the guest's state).
    Stdin,
    /// Standard output, into the call's bounded capture or the next stage's pipe.
    Stdout(crate::runner::Output),
    /// Standard error, into the call's bounded capture.
    Stderr(Capture),
    /// A directory.
    Dir(DirDesc),
    /// A regular file.
    File(FileDesc),
}

/// The table itself.
#[derive(Debug, Default)]
pub struct FdTable {
    slots: Vec<Option<Descriptor>>,
}

impl FdTable {
    /// The descriptor behind `fd`.
    pub fn get(&self, fd: u32) -> Result<&Descriptor, Errno> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .ok_or(Errno::Badf)
    }

    /// The descriptor behind `fd`, mutably.
    pub fn get_mut(&mut self, fd: u32) -> Result<&mut Descriptor, Errno> {
        self.slots
            .get_mut(fd as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::Badf)
    }

    /// The directory behind `fd` (`ENOTDIR` for a file, `EBADF` for stdio or a closed number).
    pub fn dir(&self, fd: u32) -> Result<&DirDesc, Errno> {
        match self.get(fd)? {
            Descriptor::Dir(d) => Ok(d),
            Descriptor::File(_) => Err(Errno::Notdir),
            _ => Err(Errno::Badf),
        }
    }

    /// The directory behind `fd`, mutably.
    pub fn dir_mut(&mut self, fd: u32) -> Result<&mut DirDesc, Errno> {
        match self.get_mut(fd)? {
            Descriptor::Dir(d) => Ok(d),
            Descriptor::File(_) => Err(Errno::Notdir),
            _ => Err(Errno::Badf),
        }
    }

    /// The regular file behind `fd` (`EBADF` for anything else, as for stdio `ESPIPE` is
    /// decided by the caller).
    pub fn file(&self, fd: u32) -> Result<&FileDesc, Errno> {
        match self.get(fd)? {
            Descriptor::File(f) => Ok(f),
            Descriptor::Dir(_) => Err(Errno::Isdir),
            _ => Err(Errno::Badf),
        }
    }

    /// The regular file behind `fd`, mutably.
    pub fn file_mut(&mut self, fd: u32) -> Result<&mut FileDesc, Errno> {
        match self.get_mut(fd)? {
            Descriptor::File(f) => Ok(f),
            Descriptor::Dir(_) => Err(Errno::Isdir),
            _ => Err(Errno::Badf),
        }
    }

    /// Stores `desc` under the lowest free number.
    pub fn push(&mut self, desc: Descriptor) -> Result<u32, Errno> {
        let free = self.slots.iter().position(Option::is_none);
        let index = match free {
            Some(i) => i,
            None if self.slots.len() < MAX_DESCRIPTORS => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(Errno::Mfile),
        };
        self.slots[index] = Some(desc);
        u32::try_from(index).map_err(|_| Errno::Mfile)
    }

    /// Removes `fd`, closing its host file when the returned value is dropped.
    pub fn remove(&mut self, fd: u32) -> Result<Descriptor, Errno> {
        let slot = self.slots.get_mut(fd as usize).ok_or(Errno::Badf)?;
        let desc = slot.take().ok_or(Errno::Badf)?;
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        Ok(desc)
    }

    /// Moves `from` onto `to`, closing what `to` held (both must be open).
    pub fn renumber(&mut self, from: u32, to: u32) -> Result<(), Errno> {
        self.get(from)?;
        self.get(to)?;
        if from == to {
            return Ok(());
        }
        let desc = self.remove(from)?;
        let slot = self.slots.get_mut(to as usize).ok_or(Errno::Badf)?;
        *slot = Some(desc);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_lowest_free_first_and_bounded() {
        let mut t = FdTable::default();
        for expected in 0..3 {
            assert_eq!(t.push(Descriptor::Stdin).unwrap(), expected);
        }
        t.remove(1).unwrap();
        assert_eq!(t.push(Descriptor::Stdin).unwrap(), 1);
        assert_eq!(t.remove(7).unwrap_err(), Errno::Badf);
        while t.push(Descriptor::Stdin).is_ok() {}
        assert_eq!(t.push(Descriptor::Stdin).unwrap_err(), Errno::Mfile);
        assert_eq!(t.slots.len(), MAX_DESCRIPTORS);
    }

    #[test]
    fn renumber_replaces_the_target() {
        let mut t = FdTable::default();
        t.push(Descriptor::Stdin).unwrap();
        t.push(Descriptor::Stderr(Capture::new(1))).unwrap();
        t.renumber(0, 1).unwrap();
        assert!(matches!(t.get(1), Ok(Descriptor::Stdin)));
        assert_eq!(t.get(0).unwrap_err(), Errno::Badf);
        assert_eq!(t.renumber(0, 1).unwrap_err(), Errno::Badf);
        assert_eq!(t.renumber(1, 9).unwrap_err(), Errno::Badf);
    }
}
