//! `runbox doctor`'s view of `tools_dir`: readable, and each module as `runbox serve` would judge
//! it at start (manifest, imports, name collisions). Modules are read and inspected, never
//! compiled or run. Whether it lies inside the workspace is judged with runbox's other own paths
//! (`policy::own_paths`), before this runs.

use super::Finding;
use super::probe::{self, DirProbe, User};
use crate::policy::Policy;
use crate::policy::assemble::{RejectedTool, assemble};
use std::path::{Path, PathBuf};

/// The tools directory: readable, and each module as start would judge it (manifest, imports,
/// name collisions).
pub(super) fn tools_findings(policy: &Policy, user: User) -> Vec<Finding> {
    let Some(dir) = &policy.tools_dir else {
        return vec![Finding::info(
            "tools",
            "no tools_dir: only built-in and native commands",
        )];
    };
    let readable = match probe::probe_dir(dir, probe::READ, user) {
        DirProbe::Usable => Ok(()),
        DirProbe::Creatable { .. } | DirProbe::Uncreatable(_) => {
            Err(ToolsError::Missing(dir.clone()))
        }
        DirProbe::Denied(why) => Err(ToolsError::Denied(why)),
    };
    let scanned = readable.and_then(|()| scan_tools(policy, dir));
    let (offered, rejected) = match scanned {
        Ok(r) => r,
        Err(why) => {
            return vec![Finding::missing(
                "tools",
                format!("{why}; serve refuses to start"),
                format!(
                    "make {} readable by uid {} (chmod a+rx, or chown), or correct tools_dir",
                    dir.display(),
                    user.uid
                ),
            )];
        }
    };
    let mut out = vec![Finding::ok(
        "tools",
        format!(
            "{}: {}",
            dir.display(),
            if offered.is_empty() {
                "no module offered".to_owned()
            } else {
                format!("offers {}", offered.join(", "))
            }
        ),
    )];
    let consequence = if policy.strict_tools {
        "strict_tools is set, so serve refuses to start"
    } else {
        "it is skipped"
    };
    for r in rejected {
        out.push(Finding::missing(
            "tools",
            format!("{r}; {consequence}"),
            "correct the module or its manifest (see docs/writing-commands.md), or remove it",
        ));
    }
    out
}

/// Why doctor cannot list what `tools_dir` offers: serve would not start.
#[derive(Debug, thiserror::Error)]
enum ToolsError {
    /// The directory does not exist.
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    /// The directory cannot be read (the probe's reason).
    #[error("{0}")]
    Denied(String),
    /// The WASI linker, which knows the imports start accepts, could not be made.
    #[error(transparent)]
    Runtime(#[from] crate::error::RunError),
    /// The directory could not be listed.
    #[error(transparent)]
    Scan(#[from] crate::tools_dir::ScanError),
    /// The catalog cannot be built.
    #[error(transparent)]
    Assemble(#[from] crate::policy::assemble::AssembleError),
}

/// The names start would offer from `dir`, and the files it would reject: the same
/// [`assemble`] that start calls.
fn scan_tools(policy: &Policy, dir: &Path) -> Result<(Vec<String>, Vec<RejectedTool>), ToolsError> {
    let builtin = crate::wasi::BuiltinModule {
        wasm: crate::BUILTIN_MODULE,
        sha256: *crate::BUILTIN_MODULE_SHA256,
    };
    // No pool, no cache: only the linker is needed, to know which imports are provided.
    let wasi =
        crate::wasi::WasiRuntime::new(crate::wasi::cache::ModuleCache::disabled(), builtin, None)?;
    let check = |bytes: &[u8]| {
        crate::wasi::inspect::check_module(bytes, |m, n| wasi.provides(m, n)).map(|_| ())
    };
    let scan = crate::tools_dir::scan(dir, policy, check)?;
    let assembly = assemble(policy, crate::BUILTIN_MANIFEST, Some(scan))?;
    let offered = assembly
        .offered_tools()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((offered, assembly.rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Overrides;

    fn missing(findings: &[Finding]) -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.status == super::super::Status::Missing)
            .map(|f| format!("{} / {}", f.text, f.fix.clone().unwrap_or_default()))
            .collect()
    }

    fn policy(dir: &Path, extra: &str) -> Policy {
        let flags = Overrides {
            workspace: Some(dir.join("ws")),
            audit_dir: Some(dir.join("audit")),
            ..Overrides::default()
        };
        Policy::build(crate::policy::parse_policy(extra).unwrap(), &flags).unwrap()
    }

    #[test]
    fn bad_modules_are_listed_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        let tools = dir.path().join("tools");
        std::fs::create_dir(&tools).unwrap();
        std::fs::write(tools.join("garbage.wasm"), b"nope").unwrap();
        std::fs::write(tools.join("cat.wasm"), b"nope").unwrap();
        let mut p = policy(dir.path(), "strict_tools = true\n");
        p.tools_dir = Some(tools);
        let f = tools_findings(&p, User::current());
        let m = missing(&f);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m.iter().all(|l| l.contains("strict_tools")), "{m:?}");
        assert!(m.iter().any(|l| l.contains("garbage.wasm")), "{m:?}");
    }

    #[test]
    fn a_module_that_would_shadow_a_command_is_not_offered() {
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join("tools");
        std::fs::create_dir(&tools).unwrap();
        let wasm =
            wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
                .unwrap();
        std::fs::write(tools.join("cat.wasm"), &wasm).unwrap();
        std::fs::write(tools.join("mine.wasm"), &wasm).unwrap();
        let mut p = policy(dir.path(), "");
        p.tools_dir = Some(tools);
        let f = tools_findings(&p, User::current());
        assert!(f[0].text.ends_with("offers mine"), "{f:?}");
        let m = missing(&f);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("cat.wasm")
                && m[0].contains("cannot be replaced")
                && m[0].contains("it is skipped"),
            "{m:?}"
        );
    }
}
