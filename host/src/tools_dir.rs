//! Operator-supplied WASI commands: `NAME.wasm` files, each with an optional `NAME.toml` manifest
//! ([`crate::policy::manifest`]), in the policy's `tools_dir`.
//!
//! The directory is read once at start. A file whose name is not a plain command name, or whose
//! manifest is malformed or asks for more than the policy allows, is skipped with a warning
//! naming the file; nothing here can replace a built-in command (the catalog refuses duplicate
//! names). Reads only: nothing in the directory is created or changed.

use crate::outcome::RunnerKind;
use crate::policy::assemble::{RejectReason, RejectedTool, ToolsScan};
use crate::policy::manifest::Manifest;
use crate::policy::{CommandSpec, ModuleCommand, Policy, Program, valid_command_name};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// Why `tools_dir` could not be scanned at all (a bad entry is a [`RejectedTool`] instead).
#[derive(Debug, thiserror::Error)]
#[error("tools_dir {}: {source}", dir.display())]
pub struct ScanError {
    /// The directory.
    pub dir: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// Why a file of `tools_dir` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The OS refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than runbox reads.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// Why a manifest could not be read; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestReadError {
    /// The file could not be read, or is too large.
    #[error("{}: {source}", path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// What went wrong.
        source: ReadError,
    },
    /// Not valid TOML, or an unknown key or a wrong type.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        /// The manifest.
        path: PathBuf,
        /// The line at fault, when the parser knows it.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
}

/// Lists the commands in `dir`, each manifest resolved against `policy` and each module checked
/// by `check` (which gets the file's bytes and says why it is unusable). A missing directory is
/// an error (the operator named it); a bad entry is returned in [`ToolsScan::rejected`], with
/// the file named, so the caller ([`crate::policy::assemble`]) can warn or, under a strict
/// policy, stop.
pub fn scan<E: std::fmt::Display>(
    dir: &Path,
    policy: &Policy,
    check: impl Fn(&[u8]) -> Result<(), E>,
) -> Result<ToolsScan, ScanError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ScanError {
        dir: dir.to_owned(),
        source,
    })?;
    let mut found = Vec::new();
    let mut rejected = Vec::new();
    let mut reject = |file: &Path, reason: RejectReason| {
        rejected.push(RejectedTool {
            file: file.to_owned(),
            reason,
        })
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            reject(&path, RejectReason::NameNotUtf8);
            continue;
        };
        if !valid_command_name(&name) {
            reject(&path, RejectReason::InvalidName(name));
            continue;
        }
        let toml_path = path.with_extension("toml");
        let manifest = match read_manifest(&toml_path) {
            Ok(m) => m
                .resolve(policy)
                .map_err(|e| format!("{}: {e}", toml_path.display())),
            Err(e) => Err(e.to_string()),
        };
        let manifest = match manifest {
            Ok(m) => m,
            Err(e) => {
                reject(&path, RejectReason::BadManifest(e));
                continue;
            }
        };
        match read_bounded(&path, MAX_MODULE_BYTES) {
            Ok(bytes) => {
                if let Err(why) = check(&bytes) {
                    reject(&path, RejectReason::BadModule(why.to_string()));
                    continue;
                }
            }
            Err(e) => {
                reject(&path, RejectReason::Unreadable(e.to_string()));
                continue;
            }
        }
        found.push(CommandSpec {
            description: manifest
                .description
                .unwrap_or_else(|| format!("operator-supplied WASI command {name}")),
            access: manifest.access,
            runner: RunnerKind::Wasi,
            program: Program::Module(Arc::new(ModuleCommand {
                path: path.clone(),
                limits: manifest.limits,
                env: manifest.env,
                annotations: manifest.annotations,
            })),
            name,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    // By the message, as warnings are read.
    rejected.sort_by_cached_key(RejectedTool::to_string);
    Ok(ToolsScan {
        dir: dir.to_owned(),
        found,
        rejected,
    })
}

/// Largest module file read at start.
const MAX_MODULE_BYTES: u64 = 256 * 1024 * 1024;

/// Reads `path` whole, refusing one larger than `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(std::fs::read(path)?)
}

/// The manifest at `path`; none there is the empty manifest.
fn read_manifest(path: &Path) -> Result<Manifest, ManifestReadError> {
    let read_err = |source| ManifestReadError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => return Err(read_err(e.into())),
    };
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(read_err(ReadError::TooLarge(MAX_MANIFEST_BYTES)));
    }
    let text = std::fs::read_to_string(path).map_err(|e| read_err(e.into()))?;
    toml::from_str(&text).map_err(|e| ManifestReadError::Parse {
        path: path.to_owned(),
        line: e
            .span()
            .map(|sp| text[..sp.start.min(text.len())].lines().count().max(1)),
        message: e.message().trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Access;

    fn policy() -> Policy {
        let flags = crate::policy::Overrides {
            workspace: Some("/ws".into()),
            audit_dir: Some("/audit".into()),
            ..Default::default()
        };
        Policy::build(crate::policy::PolicyFile::default(), &flags).unwrap()
    }

    #[test]
    fn scans_modules_and_manifests() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("one.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("two.wasm"), b"x").unwrap();
        std::fs::write(
            dir.path().join("two.toml"),
            "description = \"Two\"\nfilesystem = \"read-write\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("bad.toml"), "nope = 1\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("broken.wasm"), b"nope").unwrap();
        std::fs::write(dir.path().join("bad name.wasm"), b"x").unwrap();
        let check = |b: &[u8]| {
            if b == b"x" {
                Ok(())
            } else {
                Err("not a module".to_owned())
            }
        };
        let ToolsScan {
            found: specs,
            rejected,
            ..
        } = scan(dir.path(), &policy(), check).unwrap();
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
        let why: Vec<String> = rejected.iter().map(RejectedTool::to_string).collect();
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(
            why.iter()
                .any(|w| w.contains("bad name.wasm") && w.contains("valid command name"))
        );
        assert!(
            why.iter()
                .any(|w| w.contains("bad.wasm") && w.contains("bad manifest"))
        );
        assert!(
            why.iter()
                .any(|w| w.contains("broken.wasm") && w.contains("not a module"))
        );
        assert_eq!(specs[0].access, Access::Read);
        assert_eq!(specs[1].access, Access::Write);
        assert_eq!(specs[1].description, "Two");
    }

    #[test]
    fn manifests_choose_limits_env_and_annotations_within_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, manifest: &str| {
            std::fs::write(dir.path().join(format!("{name}.wasm")), b"x").unwrap();
            std::fs::write(dir.path().join(format!("{name}.toml")), manifest).unwrap();
        };
        write(
            "fast",
            "env = [\"TZ\"]\n[limits]\ntimeout_ms = 100\nfuel = 5000\n[annotations]\nidempotent_hint = false\n",
        );
        write("greedy", "[limits]\nfuel = 999999999999999\n");
        write("inventor", "env = [\"SECRET\"]\n");
        write(
            "liar",
            "filesystem = \"read-write\"\n[annotations]\nread_only_hint = true\n",
        );
        write("nativeish", "[limits]\nprocesses = 2\n");
        let ToolsScan {
            found: specs,
            rejected,
            ..
        } = scan(dir.path(), &policy(), |_| Ok::<(), String>(())).unwrap();
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fast"]);
        let fast = &specs[0];
        let p = policy();
        assert_eq!(fast.limits(&p.limits).timeout_ms, 100);
        assert_eq!(fast.limits(&p.limits).fuel, 5000);
        assert_eq!(fast.limits(&p.limits).memory_bytes, p.limits.memory_bytes);
        assert_eq!(fast.guest_env(&[]), [("TZ".to_owned(), "UTC".to_owned())]);
        let a = fast.annotations();
        assert!(a.read_only_hint && !a.idempotent_hint && !a.open_world_hint);
        let why: Vec<String> = rejected.iter().map(RejectedTool::to_string).collect();
        for (file, reason) in [
            ("greedy.toml", "limits.fuel"),
            ("inventor.toml", "SECRET"),
            ("liar.toml", "read_only_hint"),
            ("nativeish.toml", "processes"),
        ] {
            assert!(
                why.iter().any(|w| w.contains(file) && w.contains(reason)),
                "{file}: {why:?}"
            );
        }
    }

    #[test]
    fn a_taken_name_is_rejected_naming_the_file() {
        let builtins = "[[command]]\nname = \"ls\"\ndescription = \"d\"\naccess = \"read\"\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ls.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("new.wasm"), b"x").unwrap();
        let found = scan(dir.path(), &policy(), |_| Ok::<(), String>(())).unwrap();
        let a = crate::policy::assemble::assemble(&policy(), builtins, Some(found)).unwrap();
        assert_eq!(a.rejected.len(), 1);
        assert!(
            matches!(a.rejected[0].reason, RejectReason::NameTaken(_)),
            "{:?}",
            a.rejected
        );
        let why = a.rejected[0].to_string();
        assert!(
            why.contains("ls.wasm") && why.contains("cannot be replaced"),
            "{why}"
        );
        assert_eq!(a.offered_tools(), ["new"]);
        assert_eq!(a.catalog.lookup("ls").unwrap().program, Program::Builtin);
    }

    #[test]
    fn missing_dir_is_an_error() {
        assert!(
            scan(Path::new("/nonexistent/runbox-tools"), &policy(), |_| Ok::<
                (),
                String,
            >(
                ()
            ))
            .is_err()
        );
    }
}
