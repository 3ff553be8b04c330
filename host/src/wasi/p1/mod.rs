//! runbox's own implementation of WASI preview 1 (`wasi_snapshot_preview1`) for its guests.
//!
//! wasmtime-wasi implements preview 1 on top of preview 2, in async mode with every filesystem
//! call handed to a blocking-pool thread; runbox replaces it with [`GuestWasi`], which
//! implements the same generated trait (so wiggle still does all the marshalling of guest
//! memory) and does each call directly:
//!
//! - **Confinement by construction.** Every path is resolved beneath an open directory handle
//!   by cap-std (`openat2(RESOLVE_BENEATH)` on Linux); the guest's only roots are its two
//!   preopens, the workspace as `/` and its private scratch directory. Writes below a
//!   read-only preopen are refused before the filesystem is touched.
//! - **Nothing blocks for good.** Files are opened `O_NONBLOCK | O_NOCTTY` and anything but a
//!   regular file or a directory (a FIFO, a socket, a device) is refused with `ENOTSUP`, so a
//!   planted FIFO cannot hold a thread; stdin is memory or a pipe from the stage before and
//!   stdout may be a pipe to the next ([`stdio`]), both awaited as futures; sleeping is a timer;
//!   the call's deadline and cancellation drop any of these waits.
//! - **Bounded.** Descriptors per guest ([`table::MAX_DESCRIPTORS`]), bytes written to files per
//!   call ([`budget::WriteBudget`], `EDQUOT` past it), host buffers per call.
//! - **Faithful.** Names are byte strings (a file name that is not UTF-8 lists, opens and
//!   stats like any other); `d_ino`/`d_type` come from `getdents64` without a `stat` per entry
//!   and `dev`/`ino` are the real ones; errnos are the kernel's.
//!
//! The calls are in [`files`] (descriptors), [`paths`] (names below a directory), [`dirs`]
//! (listings), [`process`] (arguments, environment, clocks, random, polling, exit) and [`stdio`]
//! (stdin and stdout as pipes); [`guest`]
//! holds the per-guest state; this file holds the trait, whose methods only delegate. It must not
//! resolve a path any other way than through a directory descriptor's handle.

mod budget;
mod dirs;
mod errno;
mod files;
mod guest;
mod paths;
mod process;
#[cfg(test)]
mod random_ops;
mod stdio;
mod table;

pub use budget::{WriteBudget, WritePool};
pub use guest::{GuestWasi, Preopen, add_to_linker};
pub use stdio::KilledBySigpipe;
pub use table::MAX_DESCRIPTORS;

use guest::{guest_path, write_bytes};
use table::{Descriptor, DirDesc};
use wasmtime_wasi::p1::types::{self, Errno};
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wiggle::{GuestMemory, GuestPtr};

type Result<T, E = types::Error> = std::result::Result<T, E>;

/// Most bytes one `fd_read`/`fd_write` moves through a host buffer (guest memory is used in
/// place when it can be; this bounds the copy when it cannot).
const MAX_TRANSFER: usize = 4 << 20;

impl WasiSnapshotPreview1 for GuestWasi {
    fn args_get(
        &mut self,
        memory: &mut GuestMemory<'_>,
        argv: GuestPtr<GuestPtr<u8>>,
        argv_buf: GuestPtr<u8>,
    ) -> Result<()> {
        process::write_strings(
            memory,
            self.args.iter().map(|a| vec![a.as_bytes()]),
            argv,
            argv_buf,
        )
    }

    fn args_sizes_get(
        &mut self,
        _memory: &mut GuestMemory<'_>,
    ) -> Result<(types::Size, types::Size)> {
        process::sizes(self.args.iter().map(|a| a.len()))
    }

    fn environ_get(
        &mut self,
        memory: &mut GuestMemory<'_>,
        environ: GuestPtr<GuestPtr<u8>>,
        environ_buf: GuestPtr<u8>,
    ) -> Result<()> {
        let pairs = self
            .env
            .iter()
            .map(|(k, v)| vec![k.as_bytes(), b"=".as_slice(), v.as_bytes()]);
        process::write_strings(memory, pairs, environ, environ_buf)
    }

    fn environ_sizes_get(
        &mut self,
        _memory: &mut GuestMemory<'_>,
    ) -> Result<(types::Size, types::Size)> {
        process::sizes(self.env.iter().map(|(k, v)| k.len() + 1 + v.len()))
    }

    fn clock_res_get(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        id: types::Clockid,
    ) -> Result<types::Timestamp> {
        process::clock_res(id)
    }

    fn clock_time_get(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        id: types::Clockid,
        _precision: types::Timestamp,
    ) -> Result<types::Timestamp> {
        process::clock_now(id)
    }

    async fn fd_advise(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        _offset: types::Filesize,
        _len: types::Filesize,
        _advice: types::Advice,
    ) -> Result<()> {
        self.fds.file(fd.into())?;
        Ok(())
    }

    fn fd_allocate(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        _offset: types::Filesize,
        _len: types::Filesize,
    ) -> Result<()> {
        self.fds.file(fd.into())?;
        Err(Errno::Notsup.into())
    }

    async fn fd_close(&mut self, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<()> {
        self.fds.remove(fd.into())?;
        Ok(())
    }

    async fn fd_datasync(&mut self, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<()> {
        self.sync(fd.into(), true)
    }

    async fn fd_fdstat_get(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
    ) -> Result<types::Fdstat> {
        self.fdstat(fd.into())
    }

    fn fd_fdstat_set_flags(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        flags: types::Fdflags,
    ) -> Result<()> {
        self.set_fdflags(fd.into(), flags)
    }

    fn fd_fdstat_set_rights(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        _base: types::Rights,
        _inheriting: types::Rights,
    ) -> Result<()> {
        self.fds.get(fd.into())?;
        Err(Errno::Notsup.into())
    }

    async fn fd_filestat_get(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
    ) -> Result<types::Filestat> {
        self.filestat(fd.into())
    }

    async fn fd_filestat_set_size(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        size: types::Filesize,
    ) -> Result<()> {
        self.set_size(fd.into(), size)
    }

    async fn fd_filestat_set_times(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        atim: types::Timestamp,
        mtim: types::Timestamp,
        fst_flags: types::Fstflags,
    ) -> Result<()> {
        self.set_fd_times(fd.into(), atim, mtim, fst_flags)
    }

    async fn fd_read(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        iovs: types::IovecArray,
    ) -> Result<types::Size> {
        self.stdin_wait(fd.into()).await;
        self.read(memory, fd.into(), iovs, None)
    }

    async fn fd_pread(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        iovs: types::IovecArray,
        offset: types::Filesize,
    ) -> Result<types::Size> {
        self.read(memory, fd.into(), iovs, Some(offset))
    }

    async fn fd_write(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        ciovs: types::CiovecArray,
    ) -> Result<types::Size> {
        self.stdout_wait(fd.into()).await?;
        self.write(memory, fd.into(), ciovs, None)
    }

    async fn fd_pwrite(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        ciovs: types::CiovecArray,
        offset: types::Filesize,
    ) -> Result<types::Size> {
        self.write(memory, fd.into(), ciovs, Some(offset))
    }

    fn fd_prestat_get(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
    ) -> Result<types::Prestat> {
        match &self.fds.get(fd.into())? {
            Descriptor::Dir(DirDesc {
                preopen: Some(name),
                ..
            }) => Ok(types::Prestat::Dir(types::PrestatDir {
                pr_name_len: u32::try_from(name.len())?,
            })),
            _ => Err(Errno::Badf.into()),
        }
    }

    fn fd_prestat_dir_name(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        path: GuestPtr<u8>,
        path_max_len: types::Size,
    ) -> Result<()> {
        match &self.fds.get(fd.into())? {
            Descriptor::Dir(DirDesc {
                preopen: Some(name),
                ..
            }) => {
                if name.len() > path_max_len as usize {
                    return Err(Errno::Nametoolong.into());
                }
                write_bytes(memory, path, name)?;
                Ok(())
            }
            _ => Err(Errno::Notdir.into()),
        }
    }

    async fn fd_renumber(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        from: types::Fd,
        to: types::Fd,
    ) -> Result<()> {
        self.fds.renumber(from.into(), to.into())?;
        Ok(())
    }

    async fn fd_seek(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        offset: types::Filedelta,
        whence: types::Whence,
    ) -> Result<types::Filesize> {
        self.seek(fd.into(), offset, whence)
    }

    async fn fd_sync(&mut self, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<()> {
        self.sync(fd.into(), false)
    }

    fn fd_tell(&mut self, _memory: &mut GuestMemory<'_>, fd: types::Fd) -> Result<types::Filesize> {
        self.seek(fd.into(), 0, types::Whence::Cur)
    }

    async fn fd_readdir(
        &mut self,
        memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        buf: GuestPtr<u8>,
        buf_len: types::Size,
        cookie: types::Dircookie,
    ) -> Result<types::Size> {
        let dir = self.fds.dir_mut(fd.into())?;
        dirs::readdir(dir, memory, buf, buf_len, cookie)
    }

    async fn path_create_directory(
        &mut self,
        memory: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> Result<()> {
        let path = guest_path(memory, path)?;
        self.create_directory(dirfd.into(), &path)
    }

    async fn path_filestat_get(
        &mut self,
        memory: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        flags: types::Lookupflags,
        path: GuestPtr<str>,
    ) -> Result<types::Filestat> {
        let path = guest_path(memory, path)?;
        self.path_filestat(dirfd.into(), flags, &path)
    }

    async fn path_filestat_set_times(
        &mut self,
        memory: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        flags: types::Lookupflags,
        path: GuestPtr<str>,
        atim: types::Timestamp,
        mtim: types::Timestamp,
        fst_flags: types::Fstflags,
    ) -> Result<()> {
        let path = guest_path(memory, path)?;
        self.set_path_times(dirfd.into(), flags, &path, atim, mtim, fst_flags)
    }

    async fn path_link(
        &mut self,
        memory: &mut GuestMemory<'_>,
        src_fd: types::Fd,
        src_flags: types::Lookupflags,
        src_path: GuestPtr<str>,
        target_fd: types::Fd,
        target_path: GuestPtr<str>,
    ) -> Result<()> {
        let src = guest_path(memory, src_path)?;
        let target = guest_path(memory, target_path)?;
        self.link(src_fd.into(), src_flags, &src, target_fd.into(), &target)
    }

    async fn path_open(
        &mut self,
        memory: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        dirflags: types::Lookupflags,
        path: GuestPtr<str>,
        oflags: types::Oflags,
        fs_rights_base: types::Rights,
        _fs_rights_inheriting: types::Rights,
        fdflags: types::Fdflags,
    ) -> Result<types::Fd> {
        let path = guest_path(memory, path)?;
        let request = paths::OpenRequest {
            follow: dirflags.contains(types::Lookupflags::SYMLINK_FOLLOW),
            oflags,
            rights: fs_rights_base,
            fdflags,
        };
        self.open(dirfd.into(), &path, request).map(types::Fd::from)
    }

    async fn path_readlink(
        &mut self,
        memory: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
        buf: GuestPtr<u8>,
        buf_len: types::Size,
    ) -> Result<types::Size> {
        let path = guest_path(memory, path)?;
        let mut target = self.readlink(dirfd.into(), &path)?;
        target.truncate(buf_len as usize);
        write_bytes(memory, buf, &target)?;
        Ok(u32::try_from(target.len())?)
    }

    async fn path_remove_directory(
        &mut self,
        memory: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> Result<()> {
        let path = guest_path(memory, path)?;
        self.remove_directory(dirfd.into(), &path)
    }

    async fn path_rename(
        &mut self,
        memory: &mut GuestMemory<'_>,
        src_fd: types::Fd,
        src_path: GuestPtr<str>,
        dest_fd: types::Fd,
        dest_path: GuestPtr<str>,
    ) -> Result<()> {
        let src = guest_path(memory, src_path)?;
        let dest = guest_path(memory, dest_path)?;
        self.rename(src_fd.into(), &src, dest_fd.into(), &dest)
    }

    async fn path_symlink(
        &mut self,
        memory: &mut GuestMemory<'_>,
        src_path: GuestPtr<str>,
        dirfd: types::Fd,
        dest_path: GuestPtr<str>,
    ) -> Result<()> {
        let target = guest_path(memory, src_path)?;
        let link = guest_path(memory, dest_path)?;
        self.symlink(&target, dirfd.into(), &link)
    }

    async fn path_unlink_file(
        &mut self,
        memory: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> Result<()> {
        let path = guest_path(memory, path)?;
        self.unlink(dirfd.into(), &path)
    }

    async fn poll_oneoff(
        &mut self,
        memory: &mut GuestMemory<'_>,
        subs: GuestPtr<types::Subscription>,
        events: GuestPtr<types::Event>,
        nsubscriptions: types::Size,
    ) -> Result<types::Size> {
        process::poll_oneoff(self, memory, subs, events, nsubscriptions).await
    }

    fn proc_exit(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        status: types::Exitcode,
    ) -> wasmtime::Error {
        process::exit(status)
    }

    fn proc_raise(&mut self, _memory: &mut GuestMemory<'_>, _sig: types::Signal) -> Result<()> {
        Err(Errno::Notsup.into())
    }

    fn sched_yield(&mut self, _memory: &mut GuestMemory<'_>) -> Result<()> {
        Ok(())
    }

    fn random_get(
        &mut self,
        memory: &mut GuestMemory<'_>,
        buf: GuestPtr<u8>,
        buf_len: types::Size,
    ) -> Result<()> {
        process::random(memory, buf, buf_len)
    }

    fn sock_accept(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        _flags: types::Fdflags,
    ) -> Result<types::Fd> {
        self.fds.get(fd.into())?;
        Err(Errno::Notsock.into())
    }

    fn sock_recv(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        _ri_data: types::IovecArray,
        _ri_flags: types::Riflags,
    ) -> Result<(types::Size, types::Roflags)> {
        self.fds.get(fd.into())?;
        Err(Errno::Notsock.into())
    }

    fn sock_send(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        _si_data: types::CiovecArray,
        _si_flags: types::Siflags,
    ) -> Result<types::Size> {
        self.fds.get(fd.into())?;
        Err(Errno::Notsock.into())
    }

    fn sock_shutdown(
        &mut self,
        _memory: &mut GuestMemory<'_>,
        fd: types::Fd,
        _how: types::Sdflags,
    ) -> Result<()> {
        self.fds.get(fd.into())?;
        Err(Errno::Notsock.into())
    }
}
