//! The read-only precompiled-module directory (`precompiled_dir`): compiled modules made ahead of
//! time by `runbox precompile` (for example while a container image is built), so that a fresh
//! server answers its first call without compiling.
//!
//! Files have the module cache's format and names ([`super::cache`]): a header, the artifact's
//! sha256 and the artifact, named after the module's sha256, the engine's compatibility hash and
//! the wasmtime version, so an artifact of another module, engine, CPU or wasmtime is simply not
//! found (or refused by wasmtime) and the server falls back to its writable cache.
//!
//! A compiled module is native code run inside the server, so this directory is trusted only as
//! far as its ownership makes it trustworthy: the directory, each of its ancestors and each file
//! loaded must be owned by root or by this user and writable by no one else (a world-writable
//! ancestor is accepted only with the sticky bit, as `/tmp` has, where others cannot rename
//! what they do not own). Files are read into memory without following a symlink and checked
//! against their digest before wasmtime sees them, exactly as the cache does.
//!
//! This module never writes, removes or repairs anything in the directory at serve time: a file
//! that fails a check is logged and skipped. Writing happens only in [`write`], called by the
//! `precompile` command.

use super::cache::{self, HEADER_BYTES, MAX_ARTIFACT_BYTES};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// A precompiled-module directory that passed the ownership checks at start.
#[derive(Debug, Clone)]
pub struct PrecompiledDir {
    dir: PathBuf,
}

/// Why a precompiled directory or file is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum Untrusted {
    /// It could not be examined.
    #[error("cannot examine {path}: {source}")]
    Stat {
        /// The path examined.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The directory itself is not a directory (a symlink is not followed).
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// Owned by someone other than root or this user.
    #[error("{path} is owned by uid {owner}, neither root nor this user (uid {me})")]
    Owner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        me: u32,
    },
    /// Writable by group or others (without the sticky bit, for an ancestor).
    #[error("{path} is writable by group or others (mode {mode:o})")]
    Writable {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is relative.
    #[error("{0} is not an absolute path")]
    Relative(PathBuf),
}

/// Why a precompiled file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum NotLoaded {
    /// Its owner or mode would let someone else have written it.
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    /// Unreadable, not a regular file, too large, torn, tampered, or refused by wasmtime
    /// (another engine, CPU or version).
    #[error(transparent)]
    Artifact(#[from] cache::Unusable),
}

impl NotLoaded {
    fn is_absent(&self) -> bool {
        matches!(self, Self::Artifact(cache::Unusable::Read(e)) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Why `runbox precompile` could not write an artifact.
#[derive(Debug, thiserror::Error)]
pub enum PrecompileError {
    /// wasmtime could not compile the module.
    #[error("cannot compile the module: {0}")]
    Compile(String),
    /// The output directory or file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// What was being written.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The artifact is larger than runbox ever loads.
    #[error("the compiled module is {0} bytes, more than runbox loads")]
    TooLarge(u64),
}

impl PrecompiledDir {
    /// Checks that `dir` and its ancestors can be trusted to hold native code for this server.
    pub fn open(dir: &Path) -> Result<Self, Untrusted> {
        if !dir.is_absolute() {
            return Err(Untrusted::Relative(dir.to_owned()));
        }
        let meta = stat(dir)?;
        if !meta.is_dir() {
            return Err(Untrusted::NotADirectory(dir.to_owned()));
        }
        check_owner_and_mode(dir, &meta, false)?;
        for ancestor in dir.ancestors().skip(1) {
            // Ancestors may be symlinks (`/lib` → `usr/lib`): what matters is who can replace
            // the entry, which the symlink's own directory decides, and that is an ancestor too.
            let meta = stat(ancestor)?;
            check_owner_and_mode(ancestor, &meta, true)?;
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The module with this sha256 compiled for `engine`, if the directory holds a trusted,
    /// intact artifact of it. Anything else is logged (except a plain absence) and skipped.
    pub fn load(&self, engine: &Engine, sha256: &[u8; 32]) -> Option<Module> {
        let path = self.dir.join(cache::artifact_name(engine, sha256));
        match load_trusted(engine, &path) {
            Ok(module) => Some(module),
            Err(why) if why.is_absent() => None,
            Err(why) => {
                tracing::warn!(artifact = %path.display(), reason = %why, "not loading a precompiled module; compiling instead");
                None
            }
        }
    }

    /// Whether the directory holds an artifact of this module for `engine` that would load
    /// (for `runbox doctor`: the check `load` makes, without keeping the module).
    pub fn holds(&self, engine: &Engine, sha256: &[u8; 32]) -> Result<bool, NotLoaded> {
        let path = self.dir.join(cache::artifact_name(engine, sha256));
        match load_trusted(engine, &path) {
            Ok(_) => Ok(true),
            Err(why) if why.is_absent() => Ok(false),
            Err(why) => Err(why),
        }
    }
}

fn stat(path: &Path) -> Result<std::fs::Metadata, Untrusted> {
    std::fs::symlink_metadata(path).map_err(|source| Untrusted::Stat {
        path: path.to_owned(),
        source,
    })
}

/// Owned by root or this user; not writable by group or others (unless `sticky_ok` and the
/// sticky bit is set, or it is a symlink, whose mode means nothing).
fn check_owner_and_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    sticky_ok: bool,
) -> Result<(), Untrusted> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(Untrusted::Owner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    if meta.file_type().is_symlink() || (sticky_ok && sticky) {
        return Ok(());
    }
    if mode & 0o022 != 0 {
        return Err(Untrusted::Writable {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Reads one file as the cache does (no symlink, bounded, into memory), checks its owner and
/// mode on the open descriptor's metadata, then its header and digest, and deserializes the
/// checked bytes.
fn load_trusted(engine: &Engine, path: &Path) -> Result<Module, NotLoaded> {
    let (meta, bytes) = cache::read_bounded(path)?;
    check_owner_and_mode(path, &meta, false)?;
    let artifact = cache::checked_artifact(&bytes)?;
    // SAFETY: the bytes are in this process's memory, match the digest written with them, and
    // come from a file and directory chain that only root or this user can write (checked on
    // the open descriptor and at start). wasmtime copies them and checks the header and the
    // engine configuration itself.
    unsafe { Module::deserialize(engine, artifact) }
        .map_err(|e| NotLoaded::Artifact(cache::Unusable::Refused(e.to_string())))
}

/// Compiles `wasm` for `engine` and writes it into `dir` (created 0755 if missing) under the
/// name the server looks for, readable by everyone and writable by no one (0444), through a
/// temporary file renamed into place. Returns the file written.
pub fn write(
    dir: &Path,
    engine: &Engine,
    wasm: &[u8],
    sha256: &[u8; 32],
) -> Result<PathBuf, PrecompileError> {
    let artifact = engine
        .precompile_module(wasm)
        .map_err(|e| PrecompileError::Compile(format!("{e:#}")))?;
    let total = artifact.len() as u64 + HEADER_BYTES as u64;
    if total > MAX_ARTIFACT_BYTES {
        return Err(PrecompileError::TooLarge(total));
    }
    let written = |source| PrecompileError::Write {
        path: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(written)?;
    let path = dir.join(cache::artifact_name(engine, sha256));
    cache::write_artifact(dir, &path, &artifact, 0o444).map_err(|source| {
        PrecompileError::Write {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasi::cache::{CacheOutcome, ModuleCache, sha256};

    use crate::wasi::cache::tests::{engine, wasm};

    /// The one artifact in `pre`.
    fn the_file(pre: &Path) -> PathBuf {
        let mut entries = std::fs::read_dir(pre).unwrap();
        entries.next().unwrap().unwrap().path()
    }

    /// A precompiled directory with the module in it, and a cache directory next to it.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let pre = tmp.path().join("pre");
        let written = write(&pre, &engine(), &wasm(), &sha256(&wasm())).unwrap();
        let mode = std::fs::metadata(&written).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o444, "written read-only for everyone");
        let cache = tmp.path().join("cache");
        (tmp, pre, cache)
    }

    fn load(pre: &Path, cache: &Path) -> CacheOutcome {
        let c = ModuleCache::new(Some(cache)).with_precompiled(Some(pre));
        c.load(&engine(), &wasm()).unwrap().1
    }

    fn cache_is_empty(cache: &Path) -> bool {
        std::fs::read_dir(cache).unwrap().next().is_none()
    }

    #[test]
    fn a_precompiled_module_is_loaded_before_the_cache_is_touched() {
        let (_tmp, pre, cache) = setup();
        assert_eq!(load(&pre, &cache), CacheOutcome::Precompiled);
        assert!(cache_is_empty(&cache), "nothing compiled, nothing stored");
    }

    #[test]
    fn without_the_directory_the_cache_compiles_as_before() {
        let tmp = tempfile::tempdir().unwrap();
        let c = ModuleCache::new(Some(&tmp.path().join("c"))).with_precompiled(None);
        assert_eq!(c.load(&engine(), &wasm()).unwrap().1, CacheOutcome::Stored);
    }

    #[test]
    fn a_directory_others_may_write_is_not_trusted() {
        let (_tmp, pre, cache) = setup();
        std::fs::set_permissions(&pre, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(matches!(
            PrecompiledDir::open(&pre),
            Err(Untrusted::Writable { .. })
        ));
        assert_eq!(load(&pre, &cache), CacheOutcome::Stored);
    }

    #[test]
    fn a_writable_parent_without_the_sticky_bit_is_not_trusted() {
        let (tmp, pre, _cache) = setup();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = PrecompiledDir::open(&pre).unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(PrecompiledDir::open(&pre).is_ok(), "sticky like /tmp");
    }

    #[test]
    fn a_file_others_may_write_is_skipped_not_removed() {
        let (_tmp, pre, cache) = setup();
        let file = the_file(&pre);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(load(&pre, &cache), CacheOutcome::Stored);
        assert!(
            file.exists(),
            "serve never deletes in the read-only directory"
        );
    }

    #[test]
    fn a_tampered_artifact_is_skipped() {
        let (_tmp, pre, cache) = setup();
        let file = the_file(&pre);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&file, &bytes).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
        let trusted = PrecompiledDir::open(&pre).unwrap();
        assert!(matches!(
            trusted.holds(&engine(), &sha256(&wasm())),
            Err(NotLoaded::Artifact(cache::Unusable::DigestMismatch))
        ));
        assert_eq!(load(&pre, &cache), CacheOutcome::Stored);
    }

    #[test]
    fn a_symlink_at_the_artifact_name_is_not_followed() {
        let (tmp, pre, cache) = setup();
        let file = the_file(&pre);
        let elsewhere = tmp.path().join("elsewhere.cwasm");
        std::fs::rename(&file, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        assert_eq!(load(&pre, &cache), CacheOutcome::Stored);
    }

    #[test]
    fn an_artifact_of_another_engine_configuration_is_not_found() {
        let (_tmp, pre, cache) = setup();
        let mut config = crate::wasi::engine::engine_config();
        config.consume_fuel(false);
        let other = Engine::new(&config).unwrap();
        let c = ModuleCache::new(Some(&cache)).with_precompiled(Some(&pre));
        assert_eq!(c.load(&other, &wasm()).unwrap().1, CacheOutcome::Stored);
    }

    #[test]
    fn a_relative_or_missing_directory_is_refused_at_start() {
        assert!(matches!(
            PrecompiledDir::open(Path::new("rel/dir")),
            Err(Untrusted::Relative(_))
        ));
        assert!(matches!(
            PrecompiledDir::open(Path::new("/nonexistent/runbox-precompiled")),
            Err(Untrusted::Stat { .. })
        ));
    }
}
