//! Operator-supplied WASI commands: `NAME.wasm` files, each with an optional `NAME.toml` manifest
//! ([`crate::policy::manifest`]), in the policy's `tools_dir`.
//!
//! The directory is read once at start. A file whose name is not a plain command name, or whose
//! manifest is malformed or asks for more than the policy allows, is skipped with a warning
//! naming the file; nothing here can replace a built-in command (the catalog refuses duplicate
//! names). Reads only: nothing in the directory is created or changed.

use crate::outcome::RunnerKind;
use crate::policy::manifest::Manifest;
use crate::policy::{Catalog, CommandSpec, ModuleCommand, Policy, Program, valid_command_name};
use std::path::Path;
use std::sync::Arc;

/// Longest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// A module file that was not accepted, and why (the message names the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

/// Lists the commands in `dir`, each manifest resolved against `policy` and each module checked
/// by `check` (which gets the file's bytes). A missing directory is an error (the operator named
/// it); a bad entry is returned in the second list, with the file named, so the caller can warn
/// or, under a strict policy, stop.
pub fn scan(
    dir: &Path,
    policy: &Policy,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<(Vec<CommandSpec>, Vec<Rejected>), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("tools_dir {}: {e}", dir.display()))?;
    let mut specs = Vec::new();
    let mut rejected = Vec::new();
    let mut reject =
        |path: &Path, why: String| rejected.push(Rejected(format!("{}: {why}", path.display())));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            reject(&path, "the name is not UTF-8".into());
            continue;
        };
        if !valid_command_name(&name) {
            reject(
                &path,
                format!("{name:?} is not a valid command name (letters, digits, . _ -)"),
            );
            continue;
        }
        let toml_path = path.with_extension("toml");
        let manifest = match read_manifest(&toml_path).and_then(|m| {
            m.resolve(policy)
                .map_err(|e| format!("{}: {e}", toml_path.display()))
        }) {
            Ok(m) => m,
            Err(e) => {
                reject(&path, format!("bad manifest: {e}"));
                continue;
            }
        };
        match read_bounded(&path) {
            Ok(bytes) => {
                if let Err(why) = check(&bytes) {
                    reject(&path, why);
                    continue;
                }
            }
            Err(e) => {
                reject(&path, e);
                continue;
            }
        }
        specs.push(CommandSpec {
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
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    rejected.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((specs, rejected))
}

/// Adds scanned commands to `catalog`; one whose name is taken (a built-in or native command)
/// is returned as rejected, naming its file, since nothing may replace a command.
pub fn offer(catalog: &mut Catalog, dir: &Path, specs: Vec<CommandSpec>) -> Vec<Rejected> {
    let mut rejected = Vec::new();
    for spec in specs {
        let file = format!("{}/{}.wasm", dir.display(), spec.name);
        if let Err(e) = catalog.add(spec) {
            rejected.push(Rejected(format!(
                "{file}: {e}; built-in commands cannot be replaced"
            )));
        }
    }
    rejected
}

/// Largest module file read at start.
const MAX_MODULE_BYTES: u64 = 256 * 1024 * 1024;

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_MODULE_BYTES {
        return Err(format!("larger than {MAX_MODULE_BYTES} bytes"));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

fn read_manifest(path: &Path) -> Result<Manifest, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{}: larger than {MAX_MANIFEST_BYTES} bytes",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|sp| text[..sp.start.min(text.len())].lines().count().max(1));
        match line {
            Some(l) => format!("{} line {l}: {}", path.display(), e.message().trim()),
            None => format!("{}: {}", path.display(), e.message().trim()),
        }
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
    fn names_are_plain() {
        assert!(valid_command_name("my-tool_2.x"));
        for bad in ["", ".hidden", "a b", "a/b", "a;b", "ü"] {
            assert!(!valid_command_name(bad), "{bad}");
        }
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
        let (specs, rejected) = scan(dir.path(), &policy(), check).unwrap();
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
        let why: Vec<&str> = rejected.iter().map(|r| r.0.as_str()).collect();
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
        let (specs, rejected) = scan(dir.path(), &policy(), |_| Ok(())).unwrap();
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
        let why: Vec<&str> = rejected.iter().map(|r| r.0.as_str()).collect();
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
        let b = crate::policy::parse_builtin_manifest(
            "[[command]]\nname = \"ls\"\ndescription = \"d\"\naccess = \"read\"\n",
        )
        .unwrap();
        let mut catalog = Catalog::from_builtins(&b, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ls.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("new.wasm"), b"x").unwrap();
        let (specs, _) = scan(dir.path(), &policy(), |_| Ok(())).unwrap();
        let rejected = offer(&mut catalog, dir.path(), specs);
        assert_eq!(rejected.len(), 1);
        assert!(rejected[0].0.contains("ls.wasm"), "{rejected:?}");
        assert!(catalog.lookup("new").is_ok());
        assert_eq!(catalog.lookup("ls").unwrap().program, Program::Builtin);
    }

    #[test]
    fn missing_dir_is_an_error() {
        assert!(
            scan(
                Path::new("/nonexistent/runbox-tools"),
                &policy(),
                |_| Ok(())
            )
            .is_err()
        );
    }
}
