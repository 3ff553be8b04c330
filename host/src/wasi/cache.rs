//! The compiled-module cache: each WASI module is compiled once per machine, not per process.
//!
//! Artifacts from `Engine::precompile_module` are stored under a name made of the module's
//! sha256, the engine's compatibility hash and the wasmtime version, and loaded with
//! `Module::deserialize_file` (an mmap, well under a millisecond). Loading an artifact is unsafe
//! if the file could have been written by someone else, so the cache is used only when its
//! directory is owned by this user and writable by nobody else; otherwise runbox compiles in
//! memory. A corrupt or mismatched artifact is removed and rebuilt — never a crash.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// Where compiled modules are kept, if anywhere.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: Option<PathBuf>,
}

/// How a module was obtained, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a cached artifact.
    Hit,
    /// Compiled and stored.
    Stored,
    /// Compiled; the cache was not usable or not configured.
    Uncached,
}

impl ModuleCache {
    /// A cache in `dir` (created 0700 if missing), or no cache. A directory that is not safe to
    /// load from is refused here, with the reason logged, and compilation happens in memory.
    pub fn new(dir: Option<&Path>) -> Self {
        let dir = dir.and_then(|d| match prepare_dir(d) {
            Ok(()) => Some(d.to_owned()),
            Err(reason) => {
                tracing::warn!(dir = %d.display(), %reason, "module cache disabled; modules are compiled at each start");
                None
            }
        });
        Self { dir }
    }

    /// A cache that is never used.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// The directory in use, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Loads `wasm` compiled for `engine`, from the cache when possible.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Module, CacheOutcome)> {
        self.load_with_digest(engine, wasm, &sha256(wasm))
    }

    /// [`load`](Self::load) with the module's sha256 already known (the built-in module's is
    /// computed at build time, so a cache hit never reads the module's bytes).
    pub fn load_with_digest(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &[u8; 32],
    ) -> wasmtime::Result<(Module, CacheOutcome)> {
        let Some(dir) = &self.dir else {
            return Ok((Module::new(engine, wasm)?, CacheOutcome::Uncached));
        };
        let path = dir.join(artifact_name(engine, sha256));
        if path.exists() {
            // SAFETY: the artifact lies in a directory that only this user can write (checked by
            // `prepare_dir`), under a name only runbox produces; wasmtime still checks its header
            // and engine compatibility and returns an error on a mismatch.
            match unsafe { Module::deserialize_file(engine, &path) } {
                Ok(module) => return Ok((module, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(artifact = %path.display(), error = %e, "discarding unusable compiled module");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let bytes = engine.precompile_module(wasm)?;
        // SAFETY: these bytes were produced just now by `precompile_module` on this engine.
        let module = unsafe { Module::deserialize(engine, &bytes)? };
        match store(dir, &path, &bytes) {
            Ok(()) => Ok((module, CacheOutcome::Stored)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write compiled module to the cache");
                Ok((module, CacheOutcome::Uncached))
            }
        }
    }
}

/// The sha256 of a module's bytes.
pub fn sha256(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// `<sha256 of wasm>-<engine compatibility hash>-wasmtime<version>.cwasm`
fn artifact_name(engine: &Engine, sha256: &[u8; 32]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!(
        "{}-{:016x}-wasmtime{}.cwasm",
        hex::encode(sha256),
        hasher.finish(),
        wasmtime_version()
    )
}

fn wasmtime_version() -> &'static str {
    // Kept in step with the exact pin in the workspace Cargo.toml.
    "48.0.8"
}

/// Creates the directory (0700) and checks it is owned by us and not writable by others.
fn prepare_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create: {e}"))?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_dir() {
        return Err("not a directory (or a symlink)".into());
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(format!(
            "owned by uid {}, not by this user (uid {euid})",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            meta.permissions().mode() & 0o777
        ));
    }
    // Probe that we can actually write here (a read-only mount passes the checks above).
    tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("not writable: {e}"))?;
    Ok(())
}

/// Writes an artifact atomically: a temp file in the same directory, then a rename.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        crate::wasi::engine::new_engine(None).unwrap().0
    }

    /// A tiny module in binary form: `(module (func (export "_start")))`.
    fn wasm() -> Vec<u8> {
        vec![
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
            0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
            0x03, 0x02, 0x01, 0x00, // function section
            0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export
            0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section
        ]
    }

    #[test]
    fn second_load_is_a_hit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModuleCache::new(Some(&dir.path().join("c")));
        let e = engine();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Hit);
    }

    #[test]
    fn a_known_digest_finds_the_same_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModuleCache::new(Some(&dir.path().join("c")));
        let e = engine();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        let digest = sha256(&wasm());
        let (_, how) = cache.load_with_digest(&e, &wasm(), &digest).unwrap();
        assert_eq!(how, CacheOutcome::Hit);
    }

    #[test]
    fn corrupt_artifact_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        let e = engine();
        cache.load(&e, &wasm()).unwrap();
        for entry in std::fs::read_dir(&cdir).unwrap() {
            std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
        }
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Hit);
    }

    #[test]
    fn changed_engine_config_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModuleCache::new(Some(&dir.path().join("c")));
        cache.load(&engine(), &wasm()).unwrap();
        let mut cfg = crate::wasi::engine::engine_config();
        cfg.consume_fuel(false);
        let other = Engine::new(&cfg).unwrap();
        assert_eq!(cache.load(&other, &wasm()).unwrap().1, CacheOutcome::Stored);
    }

    #[test]
    fn unsafe_directory_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        std::fs::create_dir(&cdir).unwrap();
        std::fs::set_permissions(&cdir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let cache = ModuleCache::new(Some(&cdir));
        assert!(cache.dir().is_none());
        assert_eq!(
            cache.load(&engine(), &wasm()).unwrap().1,
            CacheOutcome::Uncached
        );
    }

    #[test]
    fn artifact_of_another_engine_config_is_rebuilt() {
        // An artifact that is well-formed but was compiled for a different engine configuration
        // sits under the name this engine looks for (as if copied from elsewhere).
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        let e = engine();
        let mut cfg = crate::wasi::engine::engine_config();
        cfg.consume_fuel(false);
        let other = Engine::new(&cfg).unwrap();
        let foreign = other.precompile_module(&wasm()).unwrap();
        std::fs::write(cdir.join(artifact_name(&e, &sha256(&wasm()))), foreign).unwrap();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Hit);
    }

    // Tests run as root, where mode bits do not stop writes; a path that runs through a regular
    // file fails for every user (ENOTDIR), so it stands in for a directory that cannot be
    // written.

    #[test]
    fn unusable_cache_path_falls_back_to_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"not a directory").unwrap();
        for path in [file.clone(), file.join("c")] {
            let cache = ModuleCache::new(Some(&path));
            assert!(cache.dir().is_none(), "{}", path.display());
            let (module, how) = cache.load(&engine(), &wasm()).unwrap();
            assert_eq!(how, CacheOutcome::Uncached);
            assert!(module.get_export("_start").is_some());
        }
    }

    #[test]
    fn directory_unwritable_after_start_falls_back_to_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        assert!(cache.dir().is_some());
        // The directory is replaced by a file after start: storing must fail, loading must not.
        std::fs::remove_dir(&cdir).unwrap();
        std::fs::write(&cdir, b"in the way").unwrap();
        let (module, how) = cache.load(&engine(), &wasm()).unwrap();
        assert_eq!(how, CacheOutcome::Uncached);
        assert!(module.get_export("_start").is_some());
    }

    #[test]
    fn version_tag_follows_the_wasmtime_pin() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("wasmtime = {{ version = \"={}\"", wasmtime_version());
        assert!(
            manifest.contains(&pin),
            "wasmtime_version() must match the pin in Cargo.toml"
        );
    }
}
