//! The descriptor calls: reading, writing, seeking, flags and metadata of an open descriptor.
//!
//! Reads go straight into guest memory and writes straight out of it when the memory is not
//! shared (runbox's guests never share memory), so a large read costs one system call and no
//! host buffer. Writes to files are charged to the call's write budget; writes to stdout and
//! stderr go into the bounded captures and never fail, or into the next stage's pipe
//! ([`super::stdio`]). This module must not open anything: it
//! only works on descriptors [`super::paths`] opened.

use super::table::{Descriptor, FileDesc};
use super::{GuestWasi, MAX_TRANSFER, Result};
use super::{errno, stdio};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::{GuestMemory, GuestPtr};

impl GuestWasi {
    /// `fd_read` (`offset` `None`) and `fd_pread`: into the first non-empty buffer, as a short
    /// read (what preview-1 guests expect).
    pub(super) fn read(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: u32,
        iovs: types::IovecArray,
        offset: Option<u64>,
    ) -> Result<types::Size> {
        let Some(buf) = first_buffer(memory, iovs.iter().map(|p| p.map(|p| p.cast())))? else {
            self.fds.get(fd)?;
            return Ok(0);
        };
        let buf = buf
            .get_range(0..buf.len().min(MAX_TRANSFER as u32))
            .unwrap_or(buf);
        match self.fds.get(fd)? {
            Descriptor::Stdin => {
                if offset.is_some() {
                    return Err(Errno::Spipe.into());
                }
                self.read_stdin(memory, buf)
            }
            Descriptor::File(f) => {
                if !f.readable {
                    return Err(Errno::Badf.into());
                }
                let file = &f.file;
                let n = match memory.as_slice_mut(buf)? {
                    Some(dest) => read_into(file, dest, offset),
                    None => {
                        let mut host = vec![0u8; buf.len() as usize];
                        let n = read_into(file, &mut host, offset)?;
                        if let Some(dest) = buf.get_range(0..u32::try_from(n)?) {
                            memory.copy_from_slice(&host[..n], dest)?;
                        }
                        Ok(n)
                    }
                }?;
                Ok(u32::try_from(n)?)
            }
            Descriptor::Dir(_) => Err(Errno::Isdir.into()),
            Descriptor::Stdout(_) | Descriptor::Stderr(_) => Err(Errno::Badf.into()),
        }
    }

    /// `fd_write` (`offset` `None`) and `fd_pwrite`: every buffer in order, stopping at a short
    /// write.
    pub(super) fn write(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: u32,
        ciovs: types::CiovecArray,
        offset: Option<u64>,
    ) -> Result<types::Size> {
        let mut total: usize = 0;
        for iov in ciovs.iter() {
            let iov = memory.read(iov?)?;
            if iov.buf_len == 0 {
                continue;
            }
            let room = MAX_TRANSFER.saturating_sub(total);
            if room == 0 {
                break;
            }
            let len = iov.buf_len.min(u32::try_from(room).unwrap_or(u32::MAX));
            let bytes = memory.as_cow(iov.buf.as_array(len))?;
            let at = offset.map(|o| o.saturating_add(total as u64));
            let n = match self.write_one(fd, &bytes, at) {
                Ok(n) => n,
                // Bytes already written make this a short write, not a failure.
                Err(_) if total > 0 => break,
                Err(e) => return Err(e),
            };
            total += n;
            if n < bytes.len() {
                break;
            }
        }
        if total == 0 {
            // Nothing to write, but the descriptor must still be writable.
            match self.fds.get(fd)? {
                Descriptor::Stdout(_) | Descriptor::Stderr(_) => {}
                Descriptor::File(f) if f.writable => {}
                Descriptor::Dir(_) => return Err(Errno::Isdir.into()),
                _ => return Err(Errno::Badf.into()),
            }
        }
        Ok(u32::try_from(total)?)
    }

    fn write_one(&mut self, fd: u32, bytes: &[u8], offset: Option<u64>) -> Result<usize> {
        match self.fds.get(fd)? {
            Descriptor::Stdout(out) => {
                if offset.is_some() {
                    return Err(Errno::Spipe.into());
                }
                stdio::write_stdout(out, bytes)
            }
            Descriptor::Stderr(c) => {
                if offset.is_some() {
                    return Err(Errno::Spipe.into());
                }
                c.push(bytes);
                Ok(bytes.len())
            }
            Descriptor::File(f) => {
                if !f.writable {
                    return Err(Errno::Badf.into());
                }
                let granted = self.budget.grant(bytes.len());
                if granted == 0 {
                    return Err(Errno::Dquot.into());
                }
                let chunk = &bytes[..granted];
                let result = match offset {
                    // On Linux, pwrite to a file opened O_APPEND appends whatever the offset.
                    Some(at) => f.file.write_at(chunk, at),
                    None => (&f.file).write(chunk),
                };
                match result {
                    Ok(n) => {
                        self.budget.spend(n);
                        Ok(n)
                    }
                    Err(e) => {
                        self.budget.spend(0);
                        if e.raw_os_error() == Some(libc::ENOSPC) {
                            self.budget.disk_was_full();
                        }
                        Err(errno::from_io(&e).into())
                    }
                }
            }
            Descriptor::Dir(_) => Err(Errno::Isdir.into()),
            Descriptor::Stdin => Err(Errno::Badf.into()),
        }
    }

    /// `fd_seek` and `fd_tell`.
    pub(super) fn seek(&mut self, fd: u32, offset: i64, whence: types::Whence) -> Result<u64> {
        let f = match self.fds.get(fd)? {
            Descriptor::File(f) => f,
            Descriptor::Dir(_) => return Err(Errno::Badf.into()),
            _ => return Err(Errno::Spipe.into()),
        };
        let to = match whence {
            types::Whence::Set => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::Inval)?),
            types::Whence::Cur => SeekFrom::Current(offset),
            types::Whence::End => SeekFrom::End(offset),
        };
        (&f.file).seek(to).map_err(|e| errno::from_io(&e).into())
    }

    /// `fd_fdstat_get`: the type, flags and rights guests derive their open mode from
    /// (wasi-libc's `fcntl(F_GETFL)` reads `FD_READ`/`FD_WRITE`, `isatty` the type and rights).
    pub(super) fn fdstat(&self, fd: u32) -> Result<types::Fdstat> {
        use types::Rights as R;
        let stdio = |rights: R| types::Fdstat {
            fs_filetype: types::Filetype::Unknown,
            fs_flags: types::Fdflags::empty(),
            fs_rights_base: rights,
            fs_rights_inheriting: rights,
        };
        Ok(match self.fds.get(fd)? {
            Descriptor::Stdin => stdio(R::FD_READ),
            Descriptor::Stdout(_) | Descriptor::Stderr(_) => stdio(R::FD_WRITE),
            Descriptor::Dir(d) => {
                let mut base =
                    R::all() & !(R::FD_SEEK | R::FD_FILESTAT_SET_SIZE | R::PATH_FILESTAT_SET_SIZE);
                if !d.writable {
                    base &= !(R::FD_WRITE
                        | R::PATH_CREATE_DIRECTORY
                        | R::PATH_CREATE_FILE
                        | R::PATH_LINK_TARGET
                        | R::PATH_RENAME_TARGET
                        | R::PATH_SYMLINK
                        | R::PATH_REMOVE_DIRECTORY
                        | R::PATH_UNLINK_FILE);
                }
                types::Fdstat {
                    fs_filetype: types::Filetype::Directory,
                    fs_flags: types::Fdflags::empty(),
                    fs_rights_base: base,
                    fs_rights_inheriting: R::all(),
                }
            }
            Descriptor::File(f) => {
                let mut base = R::all();
                if !f.readable {
                    base &= !(R::FD_READ | R::FD_READDIR);
                }
                if !f.writable {
                    base &= !R::FD_WRITE;
                }
                let mut flags = types::Fdflags::empty();
                if f.append {
                    flags |= types::Fdflags::APPEND;
                }
                if f.nonblocking {
                    flags |= types::Fdflags::NONBLOCK;
                }
                types::Fdstat {
                    fs_filetype: types::Filetype::RegularFile,
                    fs_flags: flags,
                    fs_rights_base: base,
                    fs_rights_inheriting: base,
                }
            }
        })
    }

    /// `fd_fdstat_set_flags`: only `APPEND` and `NONBLOCK` can change.
    pub(super) fn set_fdflags(&mut self, fd: u32, flags: types::Fdflags) -> Result<()> {
        if flags.intersects(types::Fdflags::DSYNC | types::Fdflags::RSYNC | types::Fdflags::SYNC) {
            return Err(Errno::Inval.into());
        }
        let f = self.fds.file_mut(fd)?;
        let append = flags.contains(types::Fdflags::APPEND);
        if append != f.append {
            let mut os = rustix::fs::fcntl_getfl(f.file.as_fd()).map_err(errno_of)?;
            os.set(rustix::fs::OFlags::APPEND, append);
            rustix::fs::fcntl_setfl(f.file.as_fd(), os).map_err(errno_of)?;
            f.append = append;
        }
        f.nonblocking = flags.contains(types::Fdflags::NONBLOCK);
        Ok(())
    }

    /// `fd_filestat_get`: the real device, inode, type, links, size and times.
    pub(super) fn filestat(&self, fd: u32) -> Result<types::Filestat> {
        let stat = match self.fds.get(fd)? {
            Descriptor::File(f) => rustix::fs::fstat(f.file.as_fd()),
            Descriptor::Dir(d) => rustix::fs::fstat(d.dir.as_fd()),
            _ => {
                return Ok(types::Filestat {
                    dev: 0,
                    ino: 0,
                    filetype: types::Filetype::Unknown,
                    nlink: 0,
                    size: 0,
                    atim: 0,
                    mtim: 0,
                    ctim: 0,
                });
            }
        };
        Ok(filestat_of(&stat.map_err(errno_of)?))
    }

    /// `fd_filestat_set_size` (`ftruncate`): a file opened for writing only. Growing a file
    /// makes it sparse and writes nothing, so it is not charged to the budget.
    pub(super) fn set_size(&mut self, fd: u32, size: u64) -> Result<()> {
        let f = writable_file(self.fds.file(fd)?)?;
        f.file.set_len(size).map_err(|e| errno::from_io(&e).into())
    }

    /// `fd_filestat_set_times` (`futimens`).
    pub(super) fn set_fd_times(
        &mut self,
        fd: u32,
        atim: u64,
        mtim: u64,
        flags: types::Fstflags,
    ) -> Result<()> {
        let times = times_of(atim, mtim, flags)?;
        match self.fds.get(fd)? {
            Descriptor::File(f) => {
                if !f.below_writable {
                    return Err(Errno::Perm.into());
                }
                rustix::fs::futimens(f.file.as_fd(), &times).map_err(errno_of)?;
            }
            Descriptor::Dir(d) => {
                if !d.writable {
                    return Err(Errno::Perm.into());
                }
                rustix::fs::futimens(d.dir.as_fd(), &times).map_err(errno_of)?;
            }
            _ => return Err(Errno::Badf.into()),
        }
        Ok(())
    }

    /// `fd_sync` / `fd_datasync`.
    pub(super) fn sync(&mut self, fd: u32, data_only: bool) -> Result<()> {
        let f = self.fds.file(fd)?;
        let r = if data_only {
            f.file.sync_data()
        } else {
            f.file.sync_all()
        };
        r.map_err(|e| errno::from_io(&e).into())
    }
}

/// The first non-empty guest buffer of an iovec array, if any.
fn first_buffer(
    memory: &GuestMemory<'_>,
    iovs: impl Iterator<Item = std::result::Result<GuestPtr<types::Iovec>, wiggle::GuestError>>,
) -> Result<Option<GuestPtr<[u8]>>> {
    for iov in iovs {
        let iov = memory.read(iov?)?;
        if iov.buf_len > 0 {
            return Ok(Some(iov.buf.as_array(iov.buf_len)));
        }
    }
    Ok(None)
}

fn read_into(file: &std::fs::File, dest: &mut [u8], offset: Option<u64>) -> Result<usize> {
    let r = match offset {
        Some(at) => file.read_at(dest, at),
        None => {
            let mut f = file;
            f.read(dest)
        }
    };
    r.map_err(|e| errno::from_io(&e).into())
}

fn writable_file(f: &FileDesc) -> Result<&FileDesc> {
    if f.writable {
        Ok(f)
    } else {
        Err(Errno::Badf.into())
    }
}

/// A rustix errno as the guest's.
pub(super) fn errno_of(e: rustix::io::Errno) -> types::Error {
    errno::from_raw(e.raw_os_error()).into()
}

/// Preview-1 file type of a `st_mode`; FIFOs have none and are `Unknown`.
pub(super) fn filetype_of_mode(mode: u32) -> types::Filetype {
    match mode & libc::S_IFMT {
        libc::S_IFREG => types::Filetype::RegularFile,
        libc::S_IFDIR => types::Filetype::Directory,
        libc::S_IFLNK => types::Filetype::SymbolicLink,
        libc::S_IFCHR => types::Filetype::CharacterDevice,
        libc::S_IFBLK => types::Filetype::BlockDevice,
        libc::S_IFSOCK => types::Filetype::SocketStream,
        _ => types::Filetype::Unknown,
    }
}

/// A preview-1 `filestat` of a host `stat`.
pub(super) fn filestat_of(s: &rustix::fs::Stat) -> types::Filestat {
    types::Filestat {
        dev: s.st_dev,
        ino: s.st_ino,
        filetype: filetype_of_mode(s.st_mode),
        nlink: s.st_nlink,
        size: u64::try_from(s.st_size).unwrap_or(0),
        atim: nanos(s.st_atime, s.st_atime_nsec as i64),
        mtim: nanos(s.st_mtime, s.st_mtime_nsec as i64),
        ctim: nanos(s.st_ctime, s.st_ctime_nsec as i64),
    }
}

/// A preview-1 `filestat` of cap-std metadata (what a path `stat` returns).
pub(super) fn filestat_of_meta(m: &cap_std::fs::Metadata) -> types::Filestat {
    use cap_std::fs::MetadataExt;
    types::Filestat {
        dev: m.dev(),
        ino: m.ino(),
        filetype: filetype_of_mode(m.mode()),
        nlink: m.nlink(),
        size: m.len(),
        atim: nanos(m.atime(), m.atime_nsec()),
        mtim: nanos(m.mtime(), m.mtime_nsec()),
        ctim: nanos(m.ctime(), m.ctime_nsec()),
    }
}

/// Nanoseconds since the epoch; times before it are 0.
fn nanos(sec: i64, nsec: i64) -> u64 {
    u64::try_from(sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(nsec).unwrap_or(0))
}

/// The `utimensat` times for a preview-1 `(atim, mtim, fst_flags)`.
pub(super) fn times_of(
    atim: u64,
    mtim: u64,
    flags: types::Fstflags,
) -> Result<rustix::fs::Timestamps> {
    let one = |set: bool, now: bool, value: u64| -> Result<rustix::fs::Timespec> {
        if set && now {
            return Err(Errno::Inval.into());
        }
        Ok(if set {
            rustix::fs::Timespec {
                tv_sec: i64::try_from(value / 1_000_000_000)?,
                tv_nsec: (value % 1_000_000_000) as _,
            }
        } else if now {
            rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            }
        } else {
            rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            }
        })
    };
    Ok(rustix::fs::Timestamps {
        last_access: one(
            flags.contains(types::Fstflags::ATIM),
            flags.contains(types::Fstflags::ATIM_NOW),
            atim,
        )?,
        last_modification: one(
            flags.contains(types::Fstflags::MTIM),
            flags.contains(types::Fstflags::MTIM_NOW),
            mtim,
        )?,
    })
}
