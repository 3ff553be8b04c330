//! `runbox doctor`'s line about `precompiled_dir`: whether the directory is trusted and holds
//! the built-in module compiled for this binary's engine on this machine. It loads the artifact
//! the way `serve` would (checks included) and keeps nothing; it never writes.

use super::Finding;
use crate::wasi::precompiled::PrecompiledDir;
use std::path::Path;

/// The finding for a configured `precompiled_dir`.
pub(super) fn precompiled_finding(dir: &Path) -> Finding {
    let refresh = format!(
        "run `runbox precompile --out {}` with this binary on this machine (in an image, as a build step)",
        dir.display()
    );
    let trusted = match PrecompiledDir::open(dir) {
        Ok(t) => t,
        Err(why) => {
            return Finding::missing(
                "precompiled",
                format!("{why}; not used, so a fresh start compiles the built-in module (seconds)"),
                format!(
                    "as root: chown -R root:root {0} && chmod -R go-w {0} (its parents too); or unset precompiled_dir",
                    dir.display()
                ),
            );
        }
    };
    let engine = match crate::wasi::engine::new_engine(None) {
        Ok((engine, _)) => engine,
        Err(e) => {
            return Finding::missing(
                "precompiled",
                format!("cannot create the wasm engine to check it: {e}"),
                refresh,
            );
        }
    };
    match trusted.holds(&engine, crate::BUILTIN_MODULE_SHA256) {
        Ok(true) => Finding::ok(
            "precompiled",
            format!(
                "{} holds the built-in module compiled for this engine: the first call needs no compile",
                dir.display()
            ),
        ),
        Ok(false) => Finding::missing(
            "precompiled",
            format!(
                "{} has no built-in module for this runbox on this machine (another version, or \
                 compiled where the CPU differs): a fresh start compiles it (seconds)",
                dir.display()
            ),
            refresh,
        ),
        Err(why) => Finding::missing(
            "precompiled",
            format!(
                "the built-in module in {} is not loadable: {why}; a fresh start compiles it",
                dir.display()
            ),
            refresh,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use std::os::unix::fs::PermissionsExt;

    fn precompile_into(dir: &Path) {
        let (engine, _) = crate::wasi::engine::new_engine(None).unwrap();
        crate::wasi::precompiled::write(
            dir,
            &engine,
            crate::BUILTIN_MODULE,
            crate::BUILTIN_MODULE_SHA256,
        )
        .unwrap();
    }

    #[test]
    fn an_empty_trusted_directory_is_reported_with_the_command_that_fills_it() {
        let tmp = tempfile::tempdir().unwrap();
        let f = precompiled_finding(tmp.path());
        assert_eq!(f.status, Status::Missing);
        assert!(f.text.contains("no built-in module"), "{}", f.text);
        assert!(f.fix.unwrap().contains("runbox precompile --out"));
    }

    #[test]
    fn a_group_writable_directory_is_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o775)).unwrap();
        let f = precompiled_finding(tmp.path());
        assert_eq!(f.status, Status::Missing);
        assert!(f.text.contains("writable by group or others"), "{}", f.text);
    }

    #[test]
    fn a_filled_directory_is_in_force() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("modules");
        precompile_into(&out);
        let f = precompiled_finding(&out);
        assert_eq!(f.status, Status::Ok, "{}", f.text);
    }
}
