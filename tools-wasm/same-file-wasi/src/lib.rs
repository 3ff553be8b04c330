//! runbox's stand-in for the [same-file](https://docs.rs/same-file/1.0.6) crate: whether two
//! paths, or two open files, name the same file, on `wasm32-wasip1` as well as on Unix.
//!
//! The main type is [`Handle`]: an open file and the identity of the file it names. Two handles
//! are equal when their identities are, and [`is_same_file`] compares the handles of two paths.
//! The public API is the one same-file 1.0 documents, so crates written against same-file build
//! unchanged.
//!
//! # Why it exists
//!
//! walkdir checks for symlink loops with `Handle::from_path` when it follows links (`find -L`,
//! `grep -R`), and diffutils calls `is_same_file` before comparing two files. same-file 1.0.6 has
//! no WASI backend: there every call failed with "same-file is not supported on this platform",
//! so `find -L` and `grep -R` stopped at their first directory. `tools-wasm/Cargo.toml` puts this
//! crate in its place with `[patch.crates-io]`; walkdir has no option that avoids the check.
//!
//! # Identity
//!
//! A file is its device and inode numbers, read from the open file:
//!
//! - **Unix**: `st_dev` and `st_ino` from [`std::os::unix::fs::MetadataExt`].
//! - **WASI**: `dev` and `ino` of `fd_filestat_get`, through rustix's safe `fstat` (std's
//!   `std::os::wasi::fs::MetadataExt` is unstable). Under wasmtime `dev` is always 1 and `ino` is
//!   a 64-bit hash of the host's device and inode, so two different files compare equal only
//!   through a hash collision.
//! - **Elsewhere** (Windows included: runbox-tools is built for WASI and Unix only): every
//!   constructor returns an [`io::ErrorKind::Unsupported`] error, as same-file does on a
//!   platform it does not know.
//!
//! It must not tell files apart by their paths: two spellings of one file, or a symlink and its
//! target, are the same file.
//!
//! # Example
//!
//! ```
//! use same_file::{Handle, is_same_file};
//!
//! assert!(is_same_file("src", "src/../src")?);
//! assert!(!is_same_file("src", "Cargo.toml")?);
//! assert_eq!(Handle::from_path("src/lib.rs")?, Handle::from_path("./src/lib.rs")?);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::Path;

/// An open file that compares equal to any other handle of the same file.
///
/// The file stays open as long as the handle exists; [`Handle::from_path`] opens it read-only.
/// Equality and hashing use only the file's identity (device and inode), read once when the
/// handle is made.
#[derive(Debug)]
pub struct Handle {
    file: File,
    key: Key,
}

/// A file's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    dev: u64,
    ino: u64,
}

impl Handle {
    /// Opens the file at `p` read-only, following symlinks, and reads its identity.
    ///
    /// # Errors
    ///
    /// The file cannot be opened (missing, no permission, ...) or its identity cannot be read;
    /// [`io::ErrorKind::Unsupported`] on a platform other than Unix and WASI.
    pub fn from_path<P: AsRef<Path>>(p: P) -> io::Result<Handle> {
        Handle::from_file(File::open(p)?)
    }

    /// Makes a handle of an open file.
    ///
    /// # Errors
    ///
    /// The file's identity cannot be read; [`io::ErrorKind::Unsupported`] on a platform other
    /// than Unix and WASI.
    pub fn from_file(file: File) -> io::Result<Handle> {
        let key = sys::key(&file)?;
        Ok(Handle { file, key })
    }

    /// A handle of standard input. It holds a duplicate of the descriptor, so dropping it leaves
    /// standard input open.
    ///
    /// # Errors
    ///
    /// The descriptor cannot be duplicated or its identity read. WASI cannot duplicate a
    /// descriptor, so there this always fails with [`io::ErrorKind::Unsupported`].
    pub fn stdin() -> io::Result<Handle> {
        sys::duplicate(sys::Std::In).and_then(Handle::from_file)
    }

    /// A handle of standard output; see [`Handle::stdin`].
    ///
    /// # Errors
    ///
    /// As [`Handle::stdin`].
    pub fn stdout() -> io::Result<Handle> {
        sys::duplicate(sys::Std::Out).and_then(Handle::from_file)
    }

    /// A handle of standard error; see [`Handle::stdin`].
    ///
    /// # Errors
    ///
    /// As [`Handle::stdin`].
    pub fn stderr() -> io::Result<Handle> {
        sys::duplicate(sys::Std::Err).and_then(Handle::from_file)
    }

    /// The open file.
    pub fn as_file(&self) -> &File {
        &self.file
    }

    /// The open file, mutably (to read or seek it).
    pub fn as_file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// The device number of the file (always 1 under wasmtime).
    #[cfg(any(unix, target_os = "wasi"))]
    pub fn dev(&self) -> u64 {
        self.key.dev
    }

    /// The inode number of the file (under wasmtime, a hash of the host's device and inode).
    #[cfg(any(unix, target_os = "wasi"))]
    pub fn ino(&self) -> u64 {
        self.key.ino
    }
}

impl PartialEq for Handle {
    fn eq(&self, other: &Handle) -> bool {
        self.key == other.key
    }
}

impl Eq for Handle {}

impl Hash for Handle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

#[cfg(any(unix, target_os = "wasi"))]
impl std::os::fd::AsRawFd for Handle {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(any(unix, target_os = "wasi"))]
impl std::os::fd::IntoRawFd for Handle {
    fn into_raw_fd(self) -> std::os::fd::RawFd {
        self.file.into_raw_fd()
    }
}

/// Whether `path1` and `path2` name the same file, symlinks followed.
///
/// # Errors
///
/// Either path cannot be opened, or a file's identity cannot be read (see
/// [`Handle::from_path`]); an error is never taken to mean "different".
pub fn is_same_file<P, Q>(path1: P, path2: Q) -> io::Result<bool>
where
    P: AsRef<Path>,
    Q: AsRef<Path>,
{
    Ok(Handle::from_path(path1)? == Handle::from_path(path2)?)
}

#[cfg(any(unix, target_os = "wasi"))]
mod sys {
    use super::Key;
    use std::fs::File;
    use std::io;
    use std::os::fd::AsFd;

    /// One of the three standard streams.
    pub(crate) enum Std {
        In,
        Out,
        Err,
    }

    /// An owned duplicate of a standard stream's descriptor (unsupported on WASI: std reports
    /// it).
    pub(crate) fn duplicate(which: Std) -> io::Result<File> {
        let owned = match which {
            Std::In => io::stdin().as_fd().try_clone_to_owned()?,
            Std::Out => io::stdout().as_fd().try_clone_to_owned()?,
            Std::Err => io::stderr().as_fd().try_clone_to_owned()?,
        };
        Ok(File::from(owned))
    }

    #[cfg(unix)]
    pub(crate) fn key(file: &File) -> io::Result<Key> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        Ok(Key {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    #[cfg(target_os = "wasi")]
    pub(crate) fn key(file: &File) -> io::Result<Key> {
        let stat = rustix::fs::fstat(file)?;
        Ok(Key {
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }
}

#[cfg(not(any(unix, target_os = "wasi")))]
mod sys {
    use super::Key;
    use std::fs::File;
    use std::io;

    /// One of the three standard streams.
    pub(crate) enum Std {
        In,
        Out,
        Err,
    }

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "same-file is not supported on this platform (runbox's stand-in knows Unix and WASI)",
        )
    }

    pub(crate) fn duplicate(_which: Std) -> io::Result<File> {
        Err(unsupported())
    }

    pub(crate) fn key(_file: &File) -> io::Result<Key> {
        Err(unsupported())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::{Handle, is_same_file};
    use std::collections::HashSet;
    use std::fs::{self, File};
    use std::io;
    use std::os::unix::fs::symlink;

    /// A directory with `a` (file), `b` (another file with the same contents) and `d/` (a
    /// directory).
    fn tree() -> io::Result<tempfile::TempDir> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("a"), "same\n")?;
        fs::write(dir.path().join("b"), "same\n")?;
        fs::create_dir(dir.path().join("d"))?;
        Ok(dir)
    }

    #[test]
    fn one_file_through_two_paths_is_the_same() -> io::Result<()> {
        let dir = tree()?;
        let p = dir.path();
        assert!(is_same_file(p.join("a"), p.join("d/../a"))?);
        assert!(is_same_file(p.join("d"), p.join("./d/"))?);
        Ok(())
    }

    #[test]
    fn a_symlink_is_the_same_as_its_target() -> io::Result<()> {
        let dir = tree()?;
        let p = dir.path();
        symlink("a", p.join("link-a"))?;
        symlink("d", p.join("link-d"))?;
        assert!(is_same_file(p.join("a"), p.join("link-a"))?);
        // walkdir's loop check: a link to an ancestor directory.
        symlink("..", p.join("d/up"))?;
        assert_eq!(Handle::from_path(p.join("d/up"))?, Handle::from_path(p)?);
        assert_eq!(
            Handle::from_path(p.join("link-d"))?,
            Handle::from_path(p.join("d"))?
        );
        Ok(())
    }

    #[test]
    fn a_hard_link_is_the_same_file() -> io::Result<()> {
        let dir = tree()?;
        let p = dir.path();
        fs::hard_link(p.join("a"), p.join("hard-a"))?;
        assert!(is_same_file(p.join("a"), p.join("hard-a"))?);
        Ok(())
    }

    #[test]
    fn different_files_are_not_the_same() -> io::Result<()> {
        let dir = tree()?;
        let p = dir.path();
        assert!(!is_same_file(p.join("a"), p.join("b"))?);
        assert!(!is_same_file(p.join("a"), p.join("d"))?);
        assert!(!is_same_file(p, p.join("d"))?);
        // A copy has the same contents but is another file.
        fs::copy(p.join("a"), p.join("copy-a"))?;
        assert!(!is_same_file(p.join("a"), p.join("copy-a"))?);
        Ok(())
    }

    #[test]
    fn an_open_file_matches_its_path() -> io::Result<()> {
        let dir = tree()?;
        let p = dir.path();
        let opened = Handle::from_file(File::open(p.join("a"))?)?;
        let by_path = Handle::from_path(p.join("a"))?;
        assert_eq!(opened, by_path);
        assert_eq!((opened.dev(), opened.ino()), (by_path.dev(), by_path.ino()));
        assert_ne!(opened, Handle::from_path(p.join("b"))?);
        Ok(())
    }

    #[test]
    fn hashing_follows_identity() -> io::Result<()> {
        let dir = tree()?;
        let p = dir.path();
        symlink("a", p.join("link-a"))?;
        let set: HashSet<Handle> = ["a", "link-a", "d/../a", "b", "d"]
            .iter()
            .map(|name| Handle::from_path(p.join(name)))
            .collect::<io::Result<_>>()?;
        assert_eq!(set.len(), 3);
        Ok(())
    }

    #[test]
    fn a_missing_path_is_an_error_not_a_difference() -> io::Result<()> {
        let dir = tree()?;
        let p = dir.path();
        let err = is_same_file(p.join("a"), p.join("missing"))
            .err()
            .map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::NotFound));
        symlink("missing", p.join("dangling"))?;
        assert!(Handle::from_path(p.join("dangling")).is_err());
        Ok(())
    }

    #[test]
    fn a_standard_stream_is_the_same_as_its_duplicate() -> io::Result<()> {
        use std::os::fd::AsFd;
        let stderr = Handle::stderr()?;
        let again = Handle::from_file(File::from(io::stderr().as_fd().try_clone_to_owned()?))?;
        assert_eq!(stderr, again);
        // The handle owns a duplicate: dropping it leaves fd 2 open.
        drop(stderr);
        assert!(Handle::stderr().is_ok());
        Ok(())
    }
}
