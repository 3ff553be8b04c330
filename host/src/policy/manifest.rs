//! `NAME.toml`, the manifest a tool author ships next to `NAME.wasm`: as written, and as
//! resolved against the operator's policy into a [`ModuleCommand`].
//!
//! The operator's policy always wins over a tool author's file. A manifest may only *lower* the
//! policy's limits (a higher value is refused, not clamped, so the author learns the real bound),
//! may only *choose* among the environment variables the policy's `[wasi.env]` sets (it cannot
//! invent names or values), and may not claim `read_only_hint = true` for a command that gets a
//! writable view. Every refusal names the key; the caller adds the file. Pure: no I/O here.

use super::catalog::{Access, Annotations};
use super::limits::{PartialLimits, check_limits};
use super::{ConfigError, Policy};
use crate::limits::Limits;
use serde::Deserialize;
use std::path::PathBuf;

/// `NAME.toml` as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// One line shown to clients.
    pub description: Option<String>,
    /// `read-only` (default) or `read-write`.
    pub filesystem: Option<FsAccess>,
    /// Names from the policy's `[wasi.env]` this command receives (default: all of them).
    pub env: Option<Vec<String>>,
    /// Limits lower than the policy's `[limits]`: the keys of `[limits]` that apply to a WASI
    /// guest; each one, when given, must be at most the policy's value (and within the policy's
    /// own ranges).
    #[serde(default, deserialize_with = "super::limits::manifest_table")]
    pub limits: Option<PartialLimits>,
    /// MCP tool annotations (hints for clients).
    pub annotations: Option<ManifestAnnotations>,
}

/// Filesystem access a manifest may declare.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FsAccess {
    /// Read-only view of the workspace.
    ReadOnly,
    /// May change files.
    ReadWrite,
}

/// `[annotations]` of a manifest: MCP tool annotations; each absent key is derived from
/// `filesystem` ([`Annotations::for_access`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestAnnotations {
    /// The command does not change its environment.
    pub read_only_hint: Option<bool>,
    /// A change it makes may be destructive (not only additive).
    pub destructive_hint: Option<bool>,
    /// Repeating a call with the same arguments has no further effect.
    pub idempotent_hint: Option<bool>,
    /// It reaches beyond a closed world (a WASI guest has no network, so rarely true).
    pub open_world_hint: Option<bool>,
}

/// An operator-supplied WASI command, resolved against the policy at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleCommand {
    /// The module file.
    pub path: PathBuf,
    /// Its limits: the policy's `[limits]` with the manifest's lower values.
    pub limits: Limits,
    /// Its environment: the policy's `[wasi.env]`, or the part of it the manifest names.
    pub env: Vec<(String, String)>,
    /// Its MCP annotations.
    pub annotations: Annotations,
}

/// A manifest with the policy applied: what the `tools_dir` scan needs to build the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The description, if the manifest gave one.
    pub description: Option<String>,
    /// Whether the command may write.
    pub access: Access,
    /// Its limits.
    pub limits: Limits,
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// Its annotations.
    pub annotations: Annotations,
}

/// Why a manifest cannot be applied to the policy; each names the key at fault (the caller adds
/// the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A limit above the operator's.
    #[error(
        "limits.{key} = {value} is above the operator's policy ({policy_value}); a manifest may only lower limits"
    )]
    AboveThePolicy {
        /// The key under `[limits]`.
        key: &'static str,
        /// The manifest's value.
        value: u64,
        /// The policy's value.
        policy_value: u64,
    },
    /// A limit outside the range the policy itself allows.
    #[error("{key}: {message}")]
    OutOfRange {
        /// The dotted key.
        key: String,
        /// The range it is outside.
        message: String,
    },
    /// `env` names a variable twice.
    #[error("env lists {0:?} twice")]
    EnvTwice(String),
    /// `env` names a variable the operator's `[wasi.env]` does not set.
    #[error(
        "env names {name:?}, which the operator's [wasi.env] does not set (it sets: {set}); a manifest can only choose among those"
    )]
    EnvNotSet {
        /// The name.
        name: String,
        /// The names the policy sets, comma-separated, or `nothing`.
        set: String,
    },
    /// `read_only_hint = true` on a command that may write.
    #[error("annotations.read_only_hint = true contradicts filesystem = \"read-write\"")]
    ReadOnlyHintOnWriter,
}

impl Manifest {
    /// Applies the manifest to `policy`.
    ///
    /// # Errors
    /// A [`ManifestError`] naming the key when a limit is above the policy's or outside the policy's
    /// ranges, an `env` name is not set by the policy's `[wasi.env]` (or listed twice), or
    /// `read_only_hint = true` is claimed with `filesystem = "read-write"`.
    pub fn resolve(self, policy: &Policy) -> Result<Resolved, ManifestError> {
        let access = match self.filesystem {
            Some(FsAccess::ReadWrite) => Access::Write,
            _ => Access::Read,
        };
        let limits = lower_limits(self.limits.unwrap_or_default(), policy)?;
        let env = select_env(self.env, policy)?;
        let annotations = annotate(self.annotations.unwrap_or_default(), access)?;
        Ok(Resolved {
            description: self.description,
            access,
            limits,
            env,
            annotations,
        })
    }
}

/// The policy's limits with the manifest's values, each of which may only lower its key.
fn lower_limits(l: PartialLimits, policy: &Policy) -> Result<Limits, ManifestError> {
    if let Some((key, value, policy_value)) = l.first_above(&policy.limits) {
        return Err(ManifestError::AboveThePolicy {
            key,
            value,
            policy_value,
        });
    }
    let out = l.over(policy.limits);
    check_limits("limits.", &out, policy.max_timeout_ms).map_err(|e| match e {
        ConfigError::Invalid { key, message } => ManifestError::OutOfRange { key, message },
        other => ManifestError::OutOfRange {
            key: "limits".to_owned(),
            message: other.to_string(),
        },
    })?;
    Ok(out)
}

/// The part of the policy's `[wasi.env]` the manifest names; all of it when it names nothing.
fn select_env(
    names: Option<Vec<String>>,
    policy: &Policy,
) -> Result<Vec<(String, String)>, ManifestError> {
    let all = &policy.wasi_env;
    let Some(names) = names else {
        return Ok(all.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(names.len());
    for n in names {
        if out.iter().any(|(k, _)| *k == n) {
            return Err(ManifestError::EnvTwice(n));
        }
        let Some(v) = all.get(&n) else {
            let set: Vec<&str> = all.keys().map(String::as_str).collect();
            return Err(ManifestError::EnvNotSet {
                name: n,
                set: if set.is_empty() {
                    "nothing".to_owned()
                } else {
                    set.join(", ")
                },
            });
        };
        out.push((n, v.clone()));
    }
    out.sort();
    Ok(out)
}

/// The manifest's annotations over those derived from its access.
fn annotate(a: ManifestAnnotations, access: Access) -> Result<Annotations, ManifestError> {
    let d = Annotations::for_access(access);
    if access == Access::Write && a.read_only_hint == Some(true) {
        return Err(ManifestError::ReadOnlyHintOnWriter);
    }
    Ok(Annotations {
        read_only_hint: a.read_only_hint.unwrap_or(d.read_only_hint),
        destructive_hint: a.destructive_hint.unwrap_or(d.destructive_hint),
        idempotent_hint: a.idempotent_hint.unwrap_or(d.idempotent_hint),
        open_world_hint: a.open_world_hint.unwrap_or(d.open_world_hint),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Overrides, parse_policy};

    fn policy(text: &str) -> Policy {
        let flags = Overrides {
            workspace: Some("/ws".into()),
            audit_dir: Some("/audit".into()),
            ..Overrides::default()
        };
        Policy::build(parse_policy(text).unwrap(), &flags).unwrap()
    }

    fn resolve(manifest: &str, policy_text: &str) -> Result<Resolved, String> {
        let m: Manifest = toml::from_str(manifest).map_err(|e| e.to_string())?;
        m.resolve(&policy(policy_text)).map_err(|e| e.to_string())
    }

    #[test]
    fn an_empty_manifest_takes_the_policy() {
        let p = policy("");
        let r = resolve("", "").unwrap();
        assert_eq!(r.access, Access::Read);
        assert_eq!(r.limits, p.limits);
        let names: Vec<&str> = r.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["LANG", "TZ"]);
        assert_eq!(r.annotations, Annotations::for_access(Access::Read));
    }

    #[test]
    fn limits_may_be_lowered() {
        let r = resolve(
            "[limits]\ntimeout_ms = 500\nfuel = 1000000\nmemory_bytes = 16777216\nstdout_bytes = 10\n",
            "",
        )
        .unwrap();
        assert_eq!(r.limits.timeout_ms, 500);
        assert_eq!(r.limits.fuel, 1_000_000);
        assert_eq!(r.limits.memory_bytes, 16 << 20);
        assert_eq!(r.limits.stdout_bytes, 10);
        assert_eq!(r.limits.stderr_bytes, Limits::default().stderr_bytes);
        // Equal to the policy is not raising.
        assert!(resolve("[limits]\ntimeout_ms = 30000\n", "").is_ok());
    }

    #[test]
    fn limits_may_not_be_raised_or_leave_the_ranges() {
        for (manifest, policy_text, key) in [
            ("[limits]\ntimeout_ms = 30001\n", "", "limits.timeout_ms"),
            (
                "[limits]\nfuel = 2000\n",
                "[limits]\nfuel = 1000\n",
                "limits.fuel",
            ),
            ("[limits]\nmemory_bytes = 1024\n", "", "limits.memory_bytes"),
            (
                "[limits]\ntable_elements = 0\n",
                "",
                "limits.table_elements",
            ),
            (
                "[limits]\nstderr_bytes = 999999999\n",
                "",
                "limits.stderr_bytes",
            ),
        ] {
            let e = resolve(manifest, policy_text).unwrap_err();
            assert!(e.contains(key), "{manifest}: {e}");
        }
        let e = resolve("[limits]\nfuel = 300000000000\n", "").unwrap_err();
        assert!(e.contains("only lower"), "{e}");
    }

    #[test]
    fn native_only_and_unknown_keys_are_refused() {
        for text in [
            "[limits]\ncpu_seconds = 1\n",
            "[limits]\nmax_timeout_ms = 1\n",
            "[annotations]\ntitle = \"x\"\n",
            "envs = [\"TZ\"]\n",
        ] {
            assert!(toml::from_str::<Manifest>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn env_selects_among_the_operators_names() {
        let r = resolve("env = [\"TZ\"]\n", "").unwrap();
        assert_eq!(r.env, [("TZ".to_owned(), "UTC".to_owned())]);
        assert!(resolve("env = []\n", "").unwrap().env.is_empty());
        let e = resolve("env = [\"COLUMNS\"]\n", "").unwrap_err();
        assert!(e.contains("COLUMNS") && e.contains("LANG, TZ"), "{e}");
        let e = resolve("env = [\"HOME\"]\n", "").unwrap_err();
        assert!(e.contains("HOME"), "{e}");
        assert!(
            resolve("env = [\"TZ\", \"TZ\"]\n", "")
                .unwrap_err()
                .contains("twice")
        );
        let r = resolve("env = [\"COLUMNS\"]\n", "[wasi.env]\nCOLUMNS = \"80\"\n").unwrap();
        assert_eq!(r.env, [("COLUMNS".to_owned(), "80".to_owned())]);
    }

    #[test]
    fn annotations_default_from_access_and_cannot_lie_about_writing() {
        let r = resolve("filesystem = \"read-write\"\n", "").unwrap();
        assert_eq!(r.access, Access::Write);
        assert!(!r.annotations.read_only_hint);
        assert!(r.annotations.destructive_hint);
        let r = resolve(
            "filesystem = \"read-write\"\n[annotations]\ndestructive_hint = false\nidempotent_hint = true\n",
            "",
        )
        .unwrap();
        assert!(!r.annotations.destructive_hint);
        assert!(r.annotations.idempotent_hint);
        let e = resolve(
            "filesystem = \"read-write\"\n[annotations]\nread_only_hint = true\n",
            "",
        )
        .unwrap_err();
        assert!(e.contains("annotations.read_only_hint"), "{e}");
        let r = resolve("[annotations]\nopen_world_hint = true\n", "").unwrap();
        assert!(r.annotations.open_world_hint && r.annotations.read_only_hint);
    }
}
