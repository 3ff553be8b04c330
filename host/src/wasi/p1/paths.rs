//! The path calls: opening, creating, removing, renaming, linking and stat-ing names below a
//! directory descriptor.
//!
//! Every name is resolved by cap-std beneath the descriptor's directory handle (on Linux one
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`), so `..`, absolute paths and symlinks
//! cannot lead out of the guest's preopens, whatever races the workspace runs. Changes below a
//! read-only descriptor are refused with `EROFS` before the filesystem is touched; creations
//! are charged to the write budget. Opening never blocks: `O_NONBLOCK | O_NOCTTY` on every
//! open, and anything that is not a regular file or a directory (a FIFO, a socket, a device)
//! is closed again and refused with `ENOTSUP`.

use super::dirs::DirCursor;
use super::errno;
use super::files::{errno_of, filestat_of, filestat_of_meta};
use super::table::{Descriptor, DirDesc, FileDesc};
use super::{GuestWasi, Result};
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::OpenOptionsExt;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use wasmtime_wasi::p1::types::{self, Errno};

/// What a `path_open` asks for.
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest {
    /// Follow a symlink in the last component.
    pub follow: bool,
    /// `CREAT`, `DIRECTORY`, `EXCL`, `TRUNC`.
    pub oflags: types::Oflags,
    /// The rights asked for (`FD_READ`, `FD_WRITE` decide the open mode).
    pub rights: types::Rights,
    /// `APPEND`, `NONBLOCK`, sync flags.
    pub fdflags: types::Fdflags,
}

fn io_err(e: std::io::Error) -> types::Error {
    errno::from_io(&e).into()
}

impl GuestWasi {
    /// The directory below which `path` is resolved, checked writable when `write`.
    fn base(&self, dirfd: u32, write: bool) -> Result<Arc<cap_std::fs::Dir>> {
        let d = self.fds.dir(dirfd)?;
        if write && !d.writable {
            return Err(Errno::Rofs.into());
        }
        Ok(Arc::clone(&d.dir))
    }

    /// Charges one new directory entry to the write budget.
    fn charge_entry(&mut self) -> Result<()> {
        if self.budget.create_entry() {
            Ok(())
        } else {
            Err(Errno::Dquot.into())
        }
    }

    /// `path_open`.
    pub(super) fn open(&mut self, dirfd: u32, path: &Path, req: OpenRequest) -> Result<u32> {
        use types::{Fdflags, Oflags, Rights};
        let create = req.oflags.contains(Oflags::CREAT);
        let exclusive = req.oflags.contains(Oflags::EXCL);
        let truncate = req.oflags.contains(Oflags::TRUNC);
        let directory = req.oflags.contains(Oflags::DIRECTORY);
        if directory && (create || exclusive || truncate) {
            return Err(Errno::Inval.into());
        }
        if req
            .fdflags
            .intersects(Fdflags::DSYNC | Fdflags::RSYNC | Fdflags::SYNC)
        {
            return Err(Errno::Notsup.into());
        }
        let parent = self.fds.dir(dirfd)?;
        let dir_writable = parent.writable;
        let dir = Arc::clone(&parent.dir);
        let read = req.rights.contains(Rights::FD_READ);
        let mut write = req.rights.contains(Rights::FD_WRITE);
        let mut create = create;
        if !dir_writable && (write || create || truncate) {
            // `O_RDONLY | O_CREAT` of a file that exists needs no write: open it as it is.
            let plain_read = create && !write && !truncate;
            if !plain_read || dir.symlink_metadata(path).is_err() {
                return Err(Errno::Rofs.into());
            }
            create = false;
        }
        if create {
            self.charge_entry()?;
        }
        write = write || create || truncate;
        let append = req.fdflags.contains(Fdflags::APPEND);
        let mut options = cap_std::fs::OpenOptions::new();
        options
            .read(read || !write)
            .write(write)
            .truncate(truncate)
            .follow(if req.follow {
                FollowSymlinks::Yes
            } else {
                FollowSymlinks::No
            })
            .maybe_dir(true)
            .custom_flags(
                libc::O_NONBLOCK | libc::O_NOCTTY | if append { libc::O_APPEND } else { 0 },
            );
        if create && exclusive {
            options.create_new(true);
        } else if create {
            options.create(true);
        }
        let file = dir.open_with(path, &options).map_err(io_err)?.into_std();
        let stat = rustix::fs::fstat(file.as_fd()).map_err(errno_of)?;
        let desc = match stat.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Descriptor::Dir(DirDesc {
                dir: Arc::new(cap_std::fs::Dir::from_std_file(file)),
                writable: dir_writable,
                preopen: None,
                cursor: DirCursor::with_own_inode(stat.st_ino),
            }),
            _ if directory => return Err(Errno::Notdir.into()),
            libc::S_IFREG => Descriptor::File(FileDesc {
                file,
                readable: read || !write,
                writable: write,
                below_writable: dir_writable,
                append,
                nonblocking: req.fdflags.contains(Fdflags::NONBLOCK),
            }),
            // A FIFO, socket or device: reading it could block or reach a device driver.
            _ => return Err(Errno::Notsup.into()),
        };
        Ok(self.fds.push(desc)?)
    }

    /// `path_create_directory`.
    pub(super) fn create_directory(&mut self, dirfd: u32, path: &Path) -> Result<()> {
        let dir = self.base(dirfd, true)?;
        self.charge_entry()?;
        dir.create_dir(path).map_err(io_err)
    }

    /// `path_filestat_get`.
    pub(super) fn path_filestat(
        &mut self,
        dirfd: u32,
        flags: types::Lookupflags,
        path: &Path,
    ) -> Result<types::Filestat> {
        let dir = self.base(dirfd, false)?;
        path_stat(
            &dir,
            path,
            flags.contains(types::Lookupflags::SYMLINK_FOLLOW),
        )
    }

    /// `path_filestat_set_times`.
    pub(super) fn set_path_times(
        &mut self,
        dirfd: u32,
        flags: types::Lookupflags,
        path: &Path,
        atim: u64,
        mtim: u64,
        fst_flags: types::Fstflags,
    ) -> Result<()> {
        use types::Fstflags as F;
        let dir = self.base(dirfd, true)?;
        let atime = time_spec(
            fst_flags.contains(F::ATIM),
            fst_flags.contains(F::ATIM_NOW),
            atim,
        )?;
        let mtime = time_spec(
            fst_flags.contains(F::MTIM),
            fst_flags.contains(F::MTIM_NOW),
            mtim,
        )?;
        let set = if flags.contains(types::Lookupflags::SYMLINK_FOLLOW) {
            dir.set_times(path, atime, mtime)
        } else {
            dir.set_symlink_times(path, atime, mtime)
        };
        set.map_err(io_err)
    }

    /// `path_link`: a hard link, both ends beneath writable descriptors of the same tree.
    pub(super) fn link(
        &mut self,
        src_fd: u32,
        src_flags: types::Lookupflags,
        src: &Path,
        target_fd: u32,
        target: &Path,
    ) -> Result<()> {
        if src_flags.contains(types::Lookupflags::SYMLINK_FOLLOW) {
            return Err(Errno::Inval.into());
        }
        let from = self.base(src_fd, true)?;
        let to = self.base(target_fd, true)?;
        self.charge_entry()?;
        from.hard_link(src, &to, target).map_err(io_err)
    }

    /// `path_readlink`: the link's target bytes.
    pub(super) fn readlink(&mut self, dirfd: u32, path: &Path) -> Result<Vec<u8>> {
        use std::os::unix::ffi::OsStringExt;
        let dir = self.base(dirfd, false)?;
        let target = dir.read_link_contents(path).map_err(io_err)?;
        Ok(target.into_os_string().into_vec())
    }

    /// `path_remove_directory`.
    pub(super) fn remove_directory(&mut self, dirfd: u32, path: &Path) -> Result<()> {
        let dir = self.base(dirfd, true)?;
        dir.remove_dir(path).map_err(io_err)
    }

    /// `path_rename`.
    pub(super) fn rename(
        &mut self,
        src_fd: u32,
        src: &Path,
        dest_fd: u32,
        dest: &Path,
    ) -> Result<()> {
        let from = self.base(src_fd, true)?;
        let to = self.base(dest_fd, true)?;
        from.rename(src, &to, dest).map_err(io_err)
    }

    /// `path_symlink`: the target is stored as given, but an absolute target is refused (it
    /// would name a host path; a guest's `/` is the workspace).
    pub(super) fn symlink(&mut self, target: &Path, dirfd: u32, link: &Path) -> Result<()> {
        if target.is_absolute() {
            return Err(Errno::Perm.into());
        }
        let dir = self.base(dirfd, true)?;
        self.charge_entry()?;
        dir.symlink(target, link).map_err(io_err)
    }

    /// `path_unlink_file`: removes a file or a symlink (never what the symlink names).
    pub(super) fn unlink(&mut self, dirfd: u32, path: &Path) -> Result<()> {
        let dir = self.base(dirfd, true)?;
        dir.remove_file_or_symlink(path).map_err(io_err)
    }
}

/// The preview-1 `filestat` of `path` beneath `dir`, following a final symlink when `follow`.
///
/// A single normal component (a name without `/`, not `.` or `..`: what a guest passes when it
/// stats the entries of a directory it listed) is one `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`:
/// one name relative to an open directory, with no symlink followed, cannot leave that
/// directory, so it is confined by construction and needs no beneath-resolution. When that
/// finds a symlink and the guest asked to follow it, the answer comes from cap-std's
/// beneath-resolution as for every other path.
fn path_stat(dir: &cap_std::fs::Dir, path: &Path, follow: bool) -> Result<types::Filestat> {
    if let Some(name) = single_component(path) {
        let stat = rustix::fs::statat(dir.as_fd(), name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno_of)?;
        let symlink = stat.st_mode & libc::S_IFMT == libc::S_IFLNK;
        if !(follow && symlink) {
            return Ok(filestat_of(&stat));
        }
    }
    Ok(filestat_of_meta(&stat_at(dir, path, follow)?))
}

/// `path` as one normal name, when it is exactly that: not empty, no `/`, not `.` or `..`.
fn single_component(path: &Path) -> Option<&std::ffi::OsStr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let normal = !bytes.is_empty() && !bytes.contains(&b'/') && bytes != b"." && bytes != b"..";
    normal.then_some(path.as_os_str())
}

/// `stat` of `path` beneath `dir`, following a final symlink when `follow`.
fn stat_at(dir: &cap_std::fs::Dir, path: &Path, follow: bool) -> Result<cap_std::fs::Metadata> {
    let meta = if follow {
        dir.metadata(path)
    } else {
        dir.symlink_metadata(path)
    };
    meta.map_err(io_err)
}

/// One timestamp of a preview-1 `set_times`: a value, "now", or unchanged (`None`).
fn time_spec(set: bool, now: bool, value: u64) -> Result<Option<cap_fs_ext::SystemTimeSpec>> {
    use cap_fs_ext::SystemTimeSpec;
    if set && now {
        return Err(Errno::Inval.into());
    }
    Ok(if set {
        let at = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_nanos(value))
            .ok_or(Errno::Inval)?;
        Some(SystemTimeSpec::Absolute(
            cap_std::time::SystemTime::from_std(at),
        ))
    } else if now {
        Some(SystemTimeSpec::SymbolicNow)
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a stat answer says, comparable: the identity and type of what was found, or the
    /// errno.
    fn answer(r: Result<types::Filestat>) -> std::result::Result<(u64, u64, u8, u64), Errno> {
        match r {
            Ok(s) => Ok((s.dev, s.ino, s.filetype as u8, s.size)),
            Err(e) => Err(e.downcast().unwrap_or(Errno::Io)),
        }
    }

    /// The single-component fast path gives the answer of cap-std's beneath-resolution for
    /// every kind of name, with and without following: symlinks that lead outside (absolute,
    /// relative, through a directory), dangling and looping symlinks, and names that are not
    /// single components.
    #[test]
    fn fast_stat_answers_as_the_beneath_resolution() {
        let top = tempfile::tempdir().unwrap();
        std::fs::write(top.path().join("outside"), b"secret bytes").unwrap();
        let ws = top.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::fs::write(ws.join("file"), b"inside").unwrap();
        std::fs::create_dir(ws.join("sub")).unwrap();
        let links = [
            ("in", "file"),
            ("in-dir", "sub"),
            ("abs", "/etc/passwd"),
            ("up", "../outside"),
            ("up-dir", ".."),
            ("dangling", "nope"),
            ("loop", "loop"),
        ];
        for (link, target) in links {
            std::os::unix::fs::symlink(target, ws.join(link)).unwrap();
        }
        let dir = cap_std::fs::Dir::open_ambient_dir(&ws, cap_std::ambient_authority()).unwrap();
        let mut names = vec![
            "file",
            "sub",
            "missing",
            ".",
            "..",
            "sub/../file",
            "",
            "sub/",
        ];
        names.extend(links.iter().map(|(l, _)| *l));
        for name in names {
            for follow in [false, true] {
                let fast = answer(path_stat(&dir, Path::new(name), follow));
                let slow =
                    answer(stat_at(&dir, Path::new(name), follow).map(|m| filestat_of_meta(&m)));
                assert_eq!(fast, slow, "{name:?}, follow {follow}");
            }
        }
        // The links that lead out were seen as links, never followed out.
        let outside = std::fs::metadata(top.path().join("outside")).unwrap();
        for link in ["up", "abs"] {
            let got = answer(path_stat(&dir, Path::new(link), false)).unwrap();
            assert_eq!(got.2, types::Filetype::SymbolicLink as u8);
            assert!(answer(path_stat(&dir, Path::new(link), true)).is_err());
            assert_ne!(got.1, std::os::unix::fs::MetadataExt::ino(&outside));
        }
    }
}
