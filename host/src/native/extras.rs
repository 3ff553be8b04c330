//! What each native command adds to the sandbox beyond every command's defaults, prepared once
//! at start from its toolchain keys ([`crate::policy::toolchain`]): its extra paths opened
//! (`O_PATH`, so a call adds them without resolving a path again) and the variables `env_pass`
//! copies from runbox's own environment. It opens paths and reads the environment only; it never
//! runs anything and never widens what another command may do.

use super::confine::{self, SystemPaths};
use crate::policy::Policy;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One command's additions.
#[derive(Debug)]
pub struct CommandExtras {
    /// Its `exec_paths`, `read_paths` and `write_paths`, opened.
    pub paths: SystemPaths,
    /// The `env_pass` variables runbox had at start, with their values.
    pub env: Vec<(String, String)>,
    /// Its `env_pass` names runbox did not have at start.
    pub env_missing: Vec<String>,
}

impl CommandExtras {
    /// The paths it names that did not exist at start.
    pub fn skipped(&self) -> &[PathBuf] {
        self.paths.skipped()
    }
}

/// The additions of every native command of the policy, by command name.
pub fn prepare(policy: &Policy) -> BTreeMap<String, CommandExtras> {
    policy
        .native
        .iter()
        .map(|(name, c)| {
            let env = c.toolchain.passed_env();
            let env_missing = c
                .toolchain
                .env_pass
                .iter()
                .filter(|k| !env.iter().any(|(have, _)| have == *k))
                .cloned()
                .collect();
            let extras = CommandExtras {
                paths: SystemPaths::open(&confine::command_rules(&c.toolchain)),
                env,
                env_missing,
            };
            (name.clone(), extras)
        })
        .collect()
}
