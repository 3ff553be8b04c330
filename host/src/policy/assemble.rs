//! The one function that builds the [`Catalog`] in force from the policy, the built-in command
//! list and what was found in `tools_dir`: `serve`, `exec` (both through the service's start)
//! and `doctor` call [`assemble`], so they cannot disagree about which commands exist.
//!
//! Built-ins come first (narrowed by `commands`), then the native commands, then the tools; a
//! name taken by an earlier kind refuses the later one, so nothing replaces a built-in. Every
//! refusal is a typed value ([`RejectedTool`], [`AssembleError`]); callers branch on the type,
//! never on message text. Pure: the scan of `tools_dir` (I/O) happens before, in
//! `crate::tools_dir`, which this module must not use.

use super::Policy;
use super::catalog::{Catalog, CatalogError, CommandSpec, Program, parse_builtin_manifest};
use std::fmt;
use std::path::PathBuf;

/// What a scan of `tools_dir` found: the commands it could build and the files it could not.
#[derive(Debug, Clone, Default)]
pub struct ToolsScan {
    /// The directory scanned.
    pub dir: PathBuf,
    /// One command per usable `NAME.wasm`, sorted by name.
    pub found: Vec<CommandSpec>,
    /// The files that were not usable, sorted by file.
    pub rejected: Vec<RejectedTool>,
}

/// A module file in `tools_dir` that is not offered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedTool {
    /// The `NAME.wasm` file.
    pub file: PathBuf,
    /// Why it is not offered.
    pub reason: RejectReason,
}

/// Why a module file in `tools_dir` is not offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The file name is not UTF-8.
    #[error("the name is not UTF-8")]
    NameNotUtf8,
    /// The file name is not a plain command name.
    #[error("{0:?} is not a valid command name (letters, digits, . _ -)")]
    InvalidName(String),
    /// Its `NAME.toml` is unreadable, malformed or asks for more than the policy allows.
    #[error("bad manifest: {0}")]
    BadManifest(String),
    /// The module file could not be read (or is too large).
    #[error("{0}")]
    Unreadable(String),
    /// The module is not one runbox can run (the inspector's reason).
    #[error("{0}")]
    BadModule(String),
    /// Its name is a built-in or native command's.
    #[error("{0}; built-in commands cannot be replaced")]
    NameTaken(CatalogError),
}

impl fmt::Display for RejectedTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// The catalog in force and the tools it does not offer.
#[derive(Debug, Clone)]
pub struct Assembly {
    /// Every allowed command.
    pub catalog: Catalog,
    /// The `tools_dir` files not offered: the scan's, then those whose name was taken.
    pub rejected: Vec<RejectedTool>,
}

impl Assembly {
    /// The names of the `tools_dir` commands offered, sorted.
    pub fn offered_tools(&self) -> Vec<&str> {
        self.catalog
            .iter()
            .filter(|s| matches!(s.program, Program::Module(_)))
            .map(|s| s.name.as_str())
            .collect()
    }
}

/// Why no catalog can be built: the server does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    /// The embedded built-in command list does not parse.
    #[error("built-in command manifest: {0}")]
    BuiltinManifest(CatalogError),
    /// The policy's `commands` names something that is not a built-in command.
    #[error("{0}")]
    Commands(CatalogError),
    /// A native command has the name of an enabled built-in.
    #[error(
        "native.{0}: {0:?} is also an enabled built-in WASI command; a name can only be one of the two (rename the native entry, or leave {0:?} out of `commands`)"
    )]
    NativeNameTaken(String),
}

/// The catalog of `policy`: the built-ins of `builtin_manifest` that `commands` enables, the
/// native commands, and the usable tools of `tools` (the `tools_dir` scan, if there is one).
///
/// # Errors
/// [`AssembleError`] when the built-in list does not parse, `commands` names a non-built-in,
/// or a native command takes a built-in's name. A tool whose name is taken is not an error: it
/// is in [`Assembly::rejected`].
pub fn assemble(
    policy: &Policy,
    builtin_manifest: &str,
    tools: Option<ToolsScan>,
) -> Result<Assembly, AssembleError> {
    let builtins =
        parse_builtin_manifest(builtin_manifest).map_err(AssembleError::BuiltinManifest)?;
    let mut catalog = Catalog::from_builtins(&builtins, policy.commands.as_deref())
        .map_err(AssembleError::Commands)?;
    for (name, command) in &policy.native {
        catalog
            .add(CommandSpec::native(command))
            .map_err(|_| AssembleError::NativeNameTaken(name.clone()))?;
    }
    let mut rejected = Vec::new();
    if let Some(scan) = tools {
        rejected = scan.rejected;
        for spec in scan.found {
            let file = PathBuf::from(format!("{}/{}.wasm", scan.dir.display(), spec.name));
            if let Err(e) = catalog.add(spec) {
                rejected.push(RejectedTool {
                    file,
                    reason: RejectReason::NameTaken(e),
                });
            }
        }
    }
    Ok(Assembly { catalog, rejected })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RunnerKind;
    use crate::policy::{Access, ModuleCommand, Overrides, parse_policy};

    const BUILTINS: &str = "[[command]]\nname = \"ls\"\ndescription = \"d\"\naccess = \"read\"\n\
                            [[command]]\nname = \"rm\"\ndescription = \"d\"\naccess = \"write\"\n";

    fn policy(text: &str) -> Policy {
        let flags = Overrides {
            workspace: Some("/ws".into()),
            audit_dir: Some("/audit".into()),
            ..Overrides::default()
        };
        Policy::build(parse_policy(text).unwrap(), &flags).unwrap()
    }

    fn tool(name: &str) -> CommandSpec {
        CommandSpec {
            name: name.into(),
            description: "tool".into(),
            runner: RunnerKind::Wasi,
            access: Access::Read,
            program: Program::Module(std::sync::Arc::new(ModuleCommand {
                path: format!("/tools/{name}.wasm").into(),
                limits: crate::limits::Limits::default(),
                env: Vec::new(),
                annotations: crate::policy::Annotations::for_access(Access::Read),
            })),
        }
    }

    fn names(a: &Assembly) -> Vec<&str> {
        a.catalog.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn builtins_are_narrowed_by_commands_then_native_commands_join() {
        let a = assemble(
            &policy("commands = [\"ls\"]\n[native.sh]\npath = \"/bin/sh\"\n"),
            BUILTINS,
            None,
        )
        .unwrap();
        assert_eq!(names(&a), ["ls", "sh"]);
        assert!(a.rejected.is_empty() && a.offered_tools().is_empty());
    }

    #[test]
    fn start_errors_are_typed_and_worded_as_before() {
        let e = assemble(&policy("commands = [\"sudo\"]\n"), BUILTINS, None).unwrap_err();
        assert_eq!(
            e,
            AssembleError::Commands(CatalogError::NotABuiltin("sudo".into()))
        );
        assert_eq!(
            e.to_string(),
            "`commands` lists \"sudo\", which is not a built-in command"
        );
        let e = assemble(&policy("[native.ls]\npath = \"/bin/sh\"\n"), BUILTINS, None).unwrap_err();
        assert_eq!(e, AssembleError::NativeNameTaken("ls".into()));
        assert!(
            e.to_string()
                .starts_with("native.ls: \"ls\" is also an enabled built-in WASI command"),
            "{e}"
        );
        // Leaving the built-in out of `commands` frees the name.
        let a = assemble(
            &policy("commands = [\"rm\"]\n[native.ls]\npath = \"/bin/sh\"\n"),
            BUILTINS,
            None,
        )
        .unwrap();
        assert_eq!(names(&a), ["ls", "rm"]);
        let e = assemble(&policy(""), "[[command]]\nnope = 1\n", None).unwrap_err();
        assert!(matches!(e, AssembleError::BuiltinManifest(_)), "{e:?}");
        assert!(
            e.to_string().starts_with("built-in command manifest: "),
            "{e}"
        );
    }

    #[test]
    fn a_tool_cannot_take_a_builtin_or_native_name() {
        let scan = ToolsScan {
            dir: "/tools".into(),
            found: vec![tool("ls"), tool("new"), tool("sh")],
            rejected: vec![RejectedTool {
                file: "/tools/bad name.wasm".into(),
                reason: RejectReason::InvalidName("bad name".into()),
            }],
        };
        let a = assemble(
            &policy("[native.sh]\npath = \"/bin/sh\"\n"),
            BUILTINS,
            Some(scan),
        )
        .unwrap();
        assert_eq!(a.offered_tools(), ["new"]);
        assert_eq!(a.catalog.lookup("ls").unwrap().program, Program::Builtin);
        assert!(matches!(
            a.catalog.lookup("sh").unwrap().program,
            Program::Native(_)
        ));
        let why: Vec<String> = a.rejected.iter().map(ToString::to_string).collect();
        assert_eq!(
            why,
            [
                "/tools/bad name.wasm: \"bad name\" is not a valid command name (letters, digits, . _ -)",
                "/tools/ls.wasm: command \"ls\" is already defined; built-in commands cannot be replaced",
                "/tools/sh.wasm: command \"sh\" is already defined; built-in commands cannot be replaced",
            ]
        );
    }
}
