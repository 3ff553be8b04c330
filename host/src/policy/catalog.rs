//! The allowlist: exact command names mapped to what runs them. Pure: no I/O here.
//!
//! A name is allowed only if it is, byte for byte, a key of the [`Catalog`]. There is no prefix,
//! suffix, case-folding, path or substring matching, and no denylist: `/bin/ls`, `ls `, `LS` and
//! `ls;rm` are simply other names, and unknown.

use crate::error::{ErrorCode, RunError};
use crate::outcome::RunnerKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest command name considered at all; longer ones are refused before lookup.
pub const MAX_COMMAND_NAME_BYTES: usize = 255;

/// Whether a command only reads the workspace or may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Reads only; it gets a read-only view of the workspace.
    Read,
    /// May create, change or delete files in the workspace.
    Write,
}

/// What actually runs for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// The built-in multicall module, entered under the command's name as `argv[0]`.
    Builtin,
    /// An operator-supplied WASI module, with what its manifest chose.
    Module(std::sync::Arc<super::manifest::ModuleCommand>),
    /// A real binary run by the native runner.
    Native(std::sync::Arc<super::native::NativeCommand>),
}

/// MCP tool annotations of one command, shown by `list_commands`. Hints for clients deciding
/// whether to ask a human first; runbox never relies on them (the policy and the sandbox do the
/// enforcing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    /// The command does not change the workspace.
    pub read_only_hint: bool,
    /// A change it makes may delete or overwrite (not only add).
    pub destructive_hint: bool,
    /// Repeating a call with the same arguments has no further effect.
    pub idempotent_hint: bool,
    /// It reaches beyond the workspace (runbox's commands have no network, so false unless a
    /// tool author says otherwise).
    pub open_world_hint: bool,
}

impl Annotations {
    /// What follows from a command's access alone: a reader is read-only and idempotent; a
    /// writer is assumed destructive and not idempotent (the cautious reading MCP gives absent
    /// hints). Neither reaches beyond the workspace.
    pub fn for_access(access: Access) -> Self {
        let read = access == Access::Read;
        Self {
            read_only_hint: read,
            destructive_hint: !read,
            idempotent_hint: read,
            open_world_hint: false,
        }
    }
}

/// One allowlisted command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The exact name a request must use.
    pub name: String,
    /// One line for `list_commands`.
    pub description: String,
    /// Which runner runs it.
    pub runner: RunnerKind,
    /// Whether it may write.
    pub access: Access,
    /// What runs.
    pub program: Program,
}

/// Whether `name` may be a command name: letters, digits, `.`, `_`, `-`, not starting with `.`.
pub fn valid_command_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_COMMAND_NAME_BYTES
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// One entry of `tools-wasm/commands.toml`, the list of built-in commands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinEntry {
    /// Command name.
    pub name: String,
    /// One line shown to clients.
    pub description: String,
    /// `read` or `write`.
    pub access: Access,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltinManifest {
    command: Vec<BuiltinEntry>,
}

/// Why the catalog could not take a command list or a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The built-in command manifest is not valid (the parser's message).
    #[error("{0}")]
    BuiltinManifest(String),
    /// The policy's `commands` names something that is not a built-in command.
    #[error("`commands` lists {0:?}, which is not a built-in command")]
    NotABuiltin(String),
    /// A command of this name is in the catalog already.
    #[error("command {0:?} is already defined")]
    NameTaken(String),
}

/// Parses the built-in command manifest (embedded at build time).
pub fn parse_builtin_manifest(text: &str) -> Result<Vec<BuiltinEntry>, CatalogError> {
    let m: BuiltinManifest =
        toml::from_str(text).map_err(|e| CatalogError::BuiltinManifest(e.to_string()))?;
    Ok(m.command)
}

impl CommandSpec {
    /// The spec of a native command from the policy.
    pub fn native(command: &super::native::NativeCommand) -> Self {
        Self {
            name: command.name.clone(),
            description: command.description.clone(),
            runner: RunnerKind::Native,
            access: command.access,
            program: Program::Native(std::sync::Arc::new(command.clone())),
        }
    }
}

impl CommandSpec {
    /// The command's default limits: its own (a native command's, or a module's from its
    /// manifest), else the policy's `policy`.
    pub fn limits(&self, policy: &crate::limits::Limits) -> crate::limits::Limits {
        match &self.program {
            Program::Native(n) => n.limits,
            Program::Module(m) => m.limits,
            Program::Builtin => *policy,
        }
    }

    /// The environment a WASI command gets: a module's own selection, else the policy's `policy`.
    pub fn guest_env<'a>(&'a self, policy: &'a [(String, String)]) -> &'a [(String, String)] {
        match &self.program {
            Program::Module(m) => &m.env,
            _ => policy,
        }
    }

    /// Its MCP annotations: a module's from its manifest, else derived from its access.
    pub fn annotations(&self) -> Annotations {
        match &self.program {
            Program::Module(m) => m.annotations,
            _ => Annotations::for_access(self.access),
        }
    }
}

/// The allowlist in force.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    commands: BTreeMap<String, CommandSpec>,
}

impl Catalog {
    /// The built-ins, restricted to `enabled` when the policy lists names. A listed name that is
    /// not a built-in is an error naming it.
    pub fn from_builtins(
        builtins: &[BuiltinEntry],
        enabled: Option<&[String]>,
    ) -> Result<Self, CatalogError> {
        let mut commands = BTreeMap::new();
        for b in builtins {
            commands.insert(
                b.name.clone(),
                CommandSpec {
                    name: b.name.clone(),
                    description: b.description.clone(),
                    runner: RunnerKind::Wasi,
                    access: b.access,
                    program: Program::Builtin,
                },
            );
        }
        if let Some(names) = enabled {
            for n in names {
                if !commands.contains_key(n) {
                    return Err(CatalogError::NotABuiltin(n.clone()));
                }
            }
            commands.retain(|k, _| names.contains(k));
        }
        Ok(Self { commands })
    }

    /// Adds a command; refuses a name already taken so nothing can shadow a built-in.
    pub fn add(&mut self, spec: CommandSpec) -> Result<(), CatalogError> {
        if self.commands.contains_key(&spec.name) {
            return Err(CatalogError::NameTaken(spec.name));
        }
        self.commands.insert(spec.name.clone(), spec);
        Ok(())
    }

    /// Looks a requested name up by exact match.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for an empty, over-long or NUL-containing name; `COMMAND_NOT_ALLOWED`
    /// for every other name that is not in the catalog.
    pub fn lookup(&self, name: &str) -> Result<&CommandSpec, RunError> {
        check_name(name)?;
        self.commands.get(name).ok_or_else(|| {
            RunError::new(
                ErrorCode::CommandNotAllowed,
                format!("command {:?} is not allowed", printable(name)),
            )
            .with_hint("call list_commands for the allowed names; commands are exact names, not paths or shell text")
        })
    }

    /// All commands, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &CommandSpec> {
        self.commands.values()
    }

    /// How many commands are allowed.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// Refuses names that are not worth a lookup.
fn check_name(name: &str) -> Result<(), RunError> {
    if name.is_empty() {
        return Err(RunError::invalid("command is empty")
            .with_hint("call list_commands for the allowed names"));
    }
    if name.len() > MAX_COMMAND_NAME_BYTES {
        return Err(RunError::invalid(format!(
            "command name is {} bytes long; the limit is {MAX_COMMAND_NAME_BYTES}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(RunError::invalid("command name contains a NUL byte"));
    }
    Ok(())
}

/// A name shortened for messages so a huge or odd name cannot flood a reply.
fn printable(name: &str) -> String {
    let mut s: String = name.chars().take(64).collect();
    if s.len() < name.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let b = parse_builtin_manifest(
            "[[command]]\nname = \"ls\"\ndescription = \"list\"\naccess = \"read\"\n\
             [[command]]\nname = \"rm\"\ndescription = \"remove\"\naccess = \"write\"\n",
        )
        .unwrap();
        Catalog::from_builtins(&b, None).unwrap()
    }

    #[test]
    fn command_names_are_plain() {
        assert!(valid_command_name("my-tool_2.x"));
        for bad in ["", ".hidden", "a b", "a/b", "a;b", "ü"] {
            assert!(!valid_command_name(bad), "{bad}");
        }
    }

    #[test]
    fn exact_names_only() {
        let c = catalog();
        assert_eq!(c.lookup("ls").unwrap().access, Access::Read);
        for bad in [
            "LS", "ls ", " ls", "/bin/ls", "./ls", "ls;rm", "ls && rm", "l", "ls\n", "$(ls)",
            "`ls`", "ｌｓ",
        ] {
            assert_eq!(
                c.lookup(bad).unwrap_err().code,
                ErrorCode::CommandNotAllowed,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn degenerate_names_are_invalid() {
        let c = catalog();
        assert_eq!(c.lookup("").unwrap_err().code, ErrorCode::InvalidArgument);
        assert_eq!(
            c.lookup("l\0s").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let huge = "a".repeat(100_000);
        let e = c.lookup(&huge).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.len() < 200);
    }

    #[test]
    fn policy_can_narrow_but_not_invent() {
        let b = parse_builtin_manifest(
            "[[command]]\nname = \"ls\"\ndescription = \"d\"\naccess = \"read\"\n",
        )
        .unwrap();
        let c = Catalog::from_builtins(&b, Some(&[])).unwrap();
        assert!(c.is_empty());
        assert!(Catalog::from_builtins(&b, Some(&["sudo".into()])).is_err());
    }

    #[test]
    fn added_commands_cannot_shadow() {
        let mut c = catalog();
        let spec = CommandSpec {
            name: "ls".into(),
            description: "evil".into(),
            runner: RunnerKind::Wasi,
            access: Access::Write,
            program: Program::Module(std::sync::Arc::new(crate::policy::ModuleCommand {
                path: "/x.wasm".into(),
                limits: crate::limits::Limits::default(),
                env: Vec::new(),
                annotations: Annotations::for_access(Access::Write),
            })),
        };
        assert!(c.add(spec).is_err());
        assert_eq!(c.lookup("ls").unwrap().description, "list");
    }
}
