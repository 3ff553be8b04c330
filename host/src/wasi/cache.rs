//! The compiled-module cache: each WASI module is compiled once per machine, not per process.
//!
//! Artifacts from `Engine::precompile_module` are stored under a name made of the module's
//! sha256, the engine's compatibility hash and the wasmtime version. A compiled module is native
//! code that runs inside the server, so the cache must never load bytes it did not write, and a
//! loaded module must never depend on a file another process can change:
//!
//! - The directory is used only when it is owned by this user and writable by nobody else (and
//!   start refuses one inside the workspace, `policy::own_paths`); otherwise runbox compiles in
//!   memory.
//! - Each file holds a header, the sha256 of the artifact and the artifact, written to a
//!   temporary file and renamed into place (so the digest and the artifact are one atomic
//!   write). Loading reads the whole file into memory (bounded, without following a symlink),
//!   checks the digest over exactly the bytes it then gives to `Module::deserialize`, which
//!   copies them into memory of its own. The file is never mapped: truncating or rewriting it
//!   later cannot reach a loaded module (an mmap'd file truncated under a running server is a
//!   SIGBUS).
//! - A file that fails any check (foreign, torn, tampered, stale digest, another engine's) is
//!   logged, removed and rebuilt — never loaded, never a crash.
//!
//! The digest detects corruption and edits by anyone who cannot also rewrite the digest; what
//! keeps others from rewriting both is the directory's ownership and mode, checked here.

use super::precompiled::PrecompiledDir;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// First bytes of every cache file: names the format (header, digest, artifact).
const MAGIC: &[u8; 16] = b"runbox-cwasm-v1\n";
/// Bytes before the artifact: [`MAGIC`] and the artifact's sha256.
pub(super) const HEADER_BYTES: usize = MAGIC.len() + 32;
/// Largest cache file read; a bigger one is not runbox's and is removed. (The built-in module's
/// artifact is tens of MB; operator modules are at most 256 MiB of wasm.)
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// Where compiled modules are kept, if anywhere, and where precompiled ones are found.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: Option<PathBuf>,
    precompiled: Option<PrecompiledDir>,
}

/// How a module was obtained, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a cached artifact.
    Hit,
    /// Loaded from the read-only precompiled directory.
    Precompiled,
    /// Compiled and stored.
    Stored,
    /// Compiled; the cache was not usable or not configured.
    Uncached,
}

/// Why a cache file (or a precompiled file) was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// It could not be opened or read.
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    /// It is a symlink, a directory, or something else that is not a regular file.
    #[error("not a regular file")]
    NotAFile,
    /// It is larger than [`MAX_ARTIFACT_BYTES`].
    #[error("{0} bytes, more than any artifact runbox writes")]
    TooLarge(u64),
    /// It does not start with runbox's header (another format, or torn).
    #[error("no runbox artifact header")]
    NoHeader,
    /// The artifact does not match the digest written with it.
    #[error("the artifact does not match its sha256 (tampered or corrupt)")]
    DigestMismatch,
    /// wasmtime refused the artifact (another engine configuration or version).
    #[error("wasmtime refused it: {0}")]
    Refused(String),
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
        Self {
            dir,
            precompiled: None,
        }
    }

    /// A cache that is never used.
    pub fn disabled() -> Self {
        Self {
            dir: None,
            precompiled: None,
        }
    }

    /// The same cache, looking first in a read-only directory of precompiled modules. A
    /// directory that cannot be trusted ([`PrecompiledDir::open`]) is logged and not used.
    pub fn with_precompiled(mut self, dir: Option<&Path>) -> Self {
        self.precompiled = dir.and_then(|d| match PrecompiledDir::open(d) {
            Ok(p) => Some(p),
            Err(reason) => {
                tracing::warn!(dir = %d.display(), %reason, "precompiled modules not used");
                None
            }
        });
        self
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
        if let Some(module) = self
            .precompiled
            .as_ref()
            .and_then(|p| p.load(engine, sha256))
        {
            return Ok((module, CacheOutcome::Precompiled));
        }
        let Some(dir) = &self.dir else {
            return Ok((Module::new(engine, wasm)?, CacheOutcome::Uncached));
        };
        let path = dir.join(artifact_name(engine, sha256));
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => match load_artifact(engine, &path) {
                Ok(module) => return Ok((module, CacheOutcome::Hit)),
                Err(why) => {
                    tracing::warn!(artifact = %path.display(), reason = %why, "not loading a compiled module from the cache; removing it and compiling again");
                    let _ = std::fs::remove_file(&path);
                }
            },
        }
        let bytes = engine.precompile_module(wasm)?;
        // SAFETY: these bytes were produced just now by `precompile_module` on this engine.
        let module = unsafe { Module::deserialize(engine, &bytes)? };
        match store(dir, &path, &bytes) {
            Ok(()) => {
                // The same module in the format before digests, if an older runbox left it.
                let _ = std::fs::remove_file(dir.join(legacy_artifact_name(engine, sha256)));
                Ok((module, CacheOutcome::Stored))
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write compiled module to the cache");
                Ok((module, CacheOutcome::Uncached))
            }
        }
    }
}

/// Reads a cache file into memory, checks it, and deserializes the checked bytes.
fn load_artifact(engine: &Engine, path: &Path) -> Result<Module, Unusable> {
    let (_, bytes) = read_bounded(path)?;
    let artifact = checked_artifact(&bytes)?;
    // SAFETY: the bytes are in this process's memory (not a mapping of the file) and are exactly
    // the artifact runbox wrote, as the digest written with it in the same atomic rename says,
    // in a directory only this user can write (`prepare_dir`). wasmtime copies them and still
    // checks the header and the engine configuration.
    unsafe { Module::deserialize(engine, artifact) }.map_err(|e| Unusable::Refused(e.to_string()))
}

/// A regular file's metadata (from the open descriptor) and bytes, read into memory without
/// following a symlink or blocking on a FIFO, at most [`MAX_ARTIFACT_BYTES`].
pub(super) fn read_bounded(path: &Path) -> Result<(std::fs::Metadata, Vec<u8>), Unusable> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(Unusable::NotAFile);
    }
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(Unusable::TooLarge(meta.len()));
    }
    // The size may change while reading; `take` bounds what is read whatever happens.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_ARTIFACT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_ARTIFACT_BYTES {
        return Err(Unusable::TooLarge(bytes.len() as u64));
    }
    Ok((meta, bytes))
}

/// The artifact inside a cache file's bytes, if the header and the digest agree.
pub(super) fn checked_artifact(file: &[u8]) -> Result<&[u8], Unusable> {
    if file.len() < HEADER_BYTES || &file[..MAGIC.len()] != MAGIC {
        return Err(Unusable::NoHeader);
    }
    let (digest, artifact) = file[MAGIC.len()..].split_at(32);
    if sha256(artifact).as_slice() != digest {
        return Err(Unusable::DigestMismatch);
    }
    Ok(artifact)
}

/// The sha256 of a module's bytes.
pub fn sha256(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// `<sha256 of wasm>-<engine compatibility hash>-wasmtime<version>-checked.cwasm`
pub(super) fn artifact_name(engine: &Engine, sha256: &[u8; 32]) -> String {
    format!("{}-checked.cwasm", artifact_stem(engine, sha256))
}

/// The name artifacts had before they carried a digest (mapped straight from the file).
fn legacy_artifact_name(engine: &Engine, sha256: &[u8; 32]) -> String {
    format!("{}.cwasm", artifact_stem(engine, sha256))
}

fn artifact_stem(engine: &Engine, sha256: &[u8; 32]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!(
        "{}-{:016x}-wasmtime{}",
        hex::encode(sha256),
        hasher.finish(),
        wasmtime_version()
    )
}

fn wasmtime_version() -> &'static str {
    // Kept in step with the exact pin in the workspace Cargo.toml.
    "48.0.8"
}

/// Why a cache directory is not used.
#[derive(Debug, thiserror::Error)]
enum UnsafeDir {
    #[error("cannot create: {0}")]
    Create(std::io::Error),
    #[error("cannot stat: {0}")]
    Stat(std::io::Error),
    #[error("not a directory (or a symlink)")]
    NotADirectory,
    #[error("owned by uid {owner}, not by this user (uid {me})")]
    NotOwned { owner: u32, me: u32 },
    #[error("writable by group or others (mode {0:o})")]
    SharedWritable(u32),
    #[error("not writable: {0}")]
    NotWritable(std::io::Error),
}

/// Creates the directory (0700) and checks it is owned by us and not writable by others.
fn prepare_dir(dir: &Path) -> Result<(), UnsafeDir> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(UnsafeDir::Create)?;
    let meta = std::fs::symlink_metadata(dir).map_err(UnsafeDir::Stat)?;
    if !meta.is_dir() {
        return Err(UnsafeDir::NotADirectory);
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(UnsafeDir::NotOwned {
            owner: meta.uid(),
            me,
        });
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(UnsafeDir::SharedWritable(meta.permissions().mode() & 0o777));
    }
    // Probe that we can actually write here (a read-only mount passes the checks above).
    tempfile::NamedTempFile::new_in(dir).map_err(UnsafeDir::NotWritable)?;
    Ok(())
}

/// Writes header, digest and artifact atomically: a temp file in the same directory (mode
/// 0600), then a rename over the final name.
fn store(dir: &Path, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    write_artifact(dir, path, artifact, 0o600)
}

/// [`store`] with the file's final mode given (the precompiled directory's files are 0444).
pub(super) fn write_artifact(
    dir: &Path,
    path: &Path,
    artifact: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    if artifact.len() as u64 + HEADER_BYTES as u64 > MAX_ARTIFACT_BYTES {
        return Err(std::io::Error::other(format!(
            "the artifact is {} bytes, more than the cache keeps",
            artifact.len()
        )));
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(MAGIC)?;
    tmp.write_all(&sha256(artifact))?;
    tmp.write_all(artifact)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::wasi) fn engine() -> Engine {
        crate::wasi::engine::new_engine(None).unwrap().0
    }

    /// A tiny module in binary form: `(module (func (export "_start")))`.
    pub(in crate::wasi) fn wasm() -> Vec<u8> {
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
        // An artifact that is well-formed, with a matching digest, but was compiled for a
        // different engine configuration sits under the name this engine looks for.
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        let e = engine();
        let mut cfg = crate::wasi::engine::engine_config();
        cfg.consume_fuel(false);
        let other = Engine::new(&cfg).unwrap();
        let foreign = other.precompile_module(&wasm()).unwrap();
        let path = cdir.join(artifact_name(&e, &sha256(&wasm())));
        store(&cdir, &path, &foreign).unwrap();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Hit);
    }

    /// The one artifact file in `cdir`.
    fn the_artifact(cdir: &Path) -> PathBuf {
        let files: Vec<PathBuf> = std::fs::read_dir(cdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    /// Another module's compiled code: what an attacker would put in the artifact's place.
    fn evil_artifact(e: &Engine) -> Vec<u8> {
        let evil =
            wat::parse_str(r#"(module (func (export "_start")) (func (export "evil")))"#).unwrap();
        e.precompile_module(&evil).unwrap()
    }

    #[test]
    fn a_tampered_artifact_with_a_stale_digest_is_rebuilt_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        let e = engine();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        let path = the_artifact(&cdir);

        // Another module's code behind the header and digest written for this one.
        let mut file = std::fs::read(&path).unwrap();
        file.truncate(HEADER_BYTES);
        file.extend(evil_artifact(&e));
        std::fs::write(&path, &file).unwrap();
        let (module, how) = cache.load(&e, &wasm()).unwrap();
        assert_eq!(how, CacheOutcome::Stored, "a tampered artifact was loaded");
        assert!(module.get_export("evil").is_none());
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Hit);

        // Bytes appended to a good artifact (the shape of the reported attack: shellcode at
        // the end of the file).
        let mut file = std::fs::read(&path).unwrap();
        file.extend(std::iter::repeat_n(0xcc, 4096));
        std::fs::write(&path, &file).unwrap();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Hit);
    }

    #[test]
    fn a_loaded_module_does_not_depend_on_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        let e = engine();
        cache.load(&e, &wasm()).unwrap();
        let (module, how) = cache.load(&e, &wasm()).unwrap();
        assert_eq!(how, CacheOutcome::Hit);
        // Truncated after load (a mapped file would make the next access a SIGBUS), then
        // rewritten with garbage: the loaded module still runs.
        let path = the_artifact(&cdir);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        for _ in 0..3 {
            let mut store = wasmtime::Store::new(&e, ());
            store.set_fuel(1_000_000).unwrap();
            store.set_epoch_deadline(1_000);
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .unwrap();
            start.call(&mut store, ()).unwrap();
        }
        // The emptied file is not runbox's artifact any more: rebuilt on the next load.
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
    }

    #[test]
    fn links_fifos_and_directories_at_the_artifact_name_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        let e = engine();
        let path = cdir.join(artifact_name(&e, &sha256(&wasm())));
        // A well-formed artifact of another module elsewhere, reached through a symlink.
        let elsewhere = dir.path().join("elsewhere.cwasm");
        store(dir.path(), &elsewhere, &evil_artifact(&e)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let (module, how) = cache.load(&e, &wasm()).unwrap();
        assert_eq!(how, CacheOutcome::Stored);
        assert!(module.get_export("evil").is_none());
        assert!(elsewhere.exists(), "the link's target was touched");
        // A FIFO would block a plain open forever.
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Hit);
    }

    #[test]
    fn an_artifact_of_the_format_before_digests_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("c");
        let cache = ModuleCache::new(Some(&cdir));
        let e = engine();
        let legacy = cdir.join(legacy_artifact_name(&e, &sha256(&wasm())));
        std::fs::write(&legacy, e.precompile_module(&wasm()).unwrap()).unwrap();
        assert_eq!(cache.load(&e, &wasm()).unwrap().1, CacheOutcome::Stored);
        assert!(!legacy.exists());
        assert_eq!(
            the_artifact(&cdir),
            cdir.join(artifact_name(&e, &sha256(&wasm())))
        );
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
