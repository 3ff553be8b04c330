//! What a running script remembers: its variables (with `local` scopes), positional
//! parameters, functions, options, working directory, last status and standard streams.
//!
//! A subshell (`( … )`, a pipeline stage, a command substitution) is a clone: what it changes
//! does not leak back. Every value stored is bounded ([`Bounds::max_value_bytes`], and the
//! count of variables); this module must not run or expand anything.

use super::{Bounds, ShellError};
use crate::pipe::{PipeReader, PipeWriter};
use brush_parser::ast::FunctionBody;
use std::collections::HashMap;
use std::sync::Arc;

/// Most variables (all scopes together) a script may hold.
pub const MAX_VARIABLES: usize = 10_000;

/// The three standard streams of whatever runs next. Each is a handle on a shared pipe end
/// ([`PipeReader::share`]), as a shell's children share its descriptors.
#[derive(Debug)]
pub struct Io {
    pub stdin: PipeReader,
    pub stdout: PipeWriter,
    pub stderr: PipeWriter,
}

impl Io {
    /// New handles on the same streams.
    pub fn share(&self) -> Self {
        Self {
            stdin: self.stdin.share(),
            stdout: self.stdout.share(),
            stderr: self.stderr.share(),
        }
    }
}

/// A shell variable.
#[derive(Debug, Clone)]
pub struct Var {
    pub value: String,
    pub exported: bool,
}

/// Options `set` changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `set -e`.
    pub errexit: bool,
    /// `set -o pipefail`.
    pub pipefail: bool,
    /// `set -u`.
    pub nounset: bool,
    /// `set -f`: no pathname expansion.
    pub noglob: bool,
}

/// The state of one shell (the script, or a subshell of it).
#[derive(Debug)]
pub struct State {
    /// Global variables.
    globals: HashMap<String, Var>,
    /// `local` scopes of the functions running, innermost last.
    frames: Vec<HashMap<String, Var>>,
    pub positional: Vec<String>,
    pub functions: HashMap<String, Arc<FunctionBody>>,
    pub options: Options,
    /// The working directory, relative to the workspace root (`""` is the root).
    pub cwd: String,
    /// `$?`.
    pub status: i32,
    pub io: Io,
    /// How deeply functions, subshells and command substitutions nest here.
    pub depth: usize,
    /// Inside a condition (`if`, `while`, `!`, all but the last of `&&`/`||`): `set -e` does
    /// not end the script there.
    pub errexit_off: u32,
    /// Command substitutions run so far (an assignment alone takes the last one's status).
    pub substitutions: u64,
    /// `BASH_REMATCH`: the whole match and groups of the last `[[ =~ ]]` (the one array).
    pub rematch: Vec<String>,
}

impl State {
    /// The script's state: `cwd` as given, no variables but the ones runbox sets.
    pub fn new(cwd: String, io: Io) -> Self {
        let mut globals = HashMap::new();
        for (k, v) in [("IFS", " \t\n"), ("HOME", "/"), ("PWD", "")] {
            globals.insert(
                k.to_owned(),
                Var {
                    value: v.to_owned(),
                    exported: k != "IFS",
                },
            );
        }
        let mut s = Self {
            globals,
            frames: Vec::new(),
            positional: Vec::new(),
            functions: HashMap::new(),
            options: Options::default(),
            cwd,
            status: 0,
            io,
            depth: 0,
            errexit_off: 0,
            substitutions: 0,
            rematch: Vec::new(),
        };
        s.sync_pwd();
        s
    }

    /// A subshell: everything copied, streams as given.
    pub fn subshell(&self, io: Io) -> Self {
        Self {
            globals: self.globals.clone(),
            frames: self.frames.clone(),
            positional: self.positional.clone(),
            functions: self.functions.clone(),
            options: self.options,
            cwd: self.cwd.clone(),
            status: self.status,
            io,
            depth: self.depth + 1,
            errexit_off: self.errexit_off,
            substitutions: 0,
            rematch: self.rematch.clone(),
        }
    }

    /// Writes `runbox: MESSAGE` on the shell's stderr, as bash prints its own errors (a stderr
    /// nobody reads any more is ignored).
    pub async fn complain(&self, message: &str) {
        let line = format!("runbox: {message}\n");
        let _ = self.io.stderr.write_all(line.as_bytes()).await;
    }

    /// The guest's view of the working directory (`/` is the workspace root).
    pub fn guest_cwd(&self) -> String {
        format!("/{}", self.cwd)
    }

    /// Sets `PWD` from `cwd`.
    pub fn sync_pwd(&mut self) {
        let pwd = self.guest_cwd();
        self.globals.insert(
            "PWD".into(),
            Var {
                value: pwd,
                exported: true,
            },
        );
    }

    /// A variable's value, innermost scope first.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.frames
            .iter()
            .rev()
            .find_map(|f| f.get(name))
            .or_else(|| self.globals.get(name))
            .map(|v| v.value.as_str())
    }

    fn slot(&mut self, name: &str) -> Option<&mut Var> {
        for f in self.frames.iter_mut().rev() {
            if let Some(v) = f.get_mut(name) {
                return Some(v);
            }
        }
        self.globals.get_mut(name)
    }

    fn count(&self) -> usize {
        self.globals.len() + self.frames.iter().map(HashMap::len).sum::<usize>()
    }

    /// Sets `name` in the scope it lives in (a new one is global).
    ///
    /// # Errors
    /// [`ShellError::Bounds`] past the value size or the number of variables.
    pub fn set(&mut self, name: &str, value: String, bounds: &Bounds) -> Result<(), ShellError> {
        check_value(name, &value, bounds)?;
        if let Some(v) = self.slot(name) {
            v.value = value;
            return Ok(());
        }
        if self.count() >= MAX_VARIABLES {
            return Err(ShellError::Bounds(format!(
                "more than {MAX_VARIABLES} variables"
            )));
        }
        self.globals.insert(
            name.to_owned(),
            Var {
                value,
                exported: false,
            },
        );
        Ok(())
    }

    /// `local name[=value]` in the innermost function scope (global outside any function).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn set_local(
        &mut self,
        name: &str,
        value: Option<String>,
        bounds: &Bounds,
    ) -> Result<(), ShellError> {
        let value = value.unwrap_or_default();
        check_value(name, &value, bounds)?;
        if self.count() >= MAX_VARIABLES {
            return Err(ShellError::Bounds(format!(
                "more than {MAX_VARIABLES} variables"
            )));
        }
        match self.frames.last_mut() {
            Some(frame) => {
                frame.insert(
                    name.to_owned(),
                    Var {
                        value,
                        exported: false,
                    },
                );
                Ok(())
            }
            None => self.set(name, value, bounds),
        }
    }

    /// Marks `name` exported (creating it empty if unset).
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn export(&mut self, name: &str, bounds: &Bounds) -> Result<(), ShellError> {
        if self.slot(name).is_none() {
            self.set(name, String::new(), bounds)?;
        }
        if let Some(v) = self.slot(name) {
            v.exported = true;
        }
        Ok(())
    }

    /// Removes `name` from the scope it lives in.
    pub fn unset(&mut self, name: &str) {
        for f in self.frames.iter_mut().rev() {
            if f.remove(name).is_some() {
                return;
            }
        }
        self.globals.remove(name);
    }

    /// Enters a function: a new `local` scope and its arguments as positional parameters;
    /// returns the caller's parameters for [`leave_function`](Self::leave_function).
    pub fn enter_function(&mut self, args: Vec<String>) -> Vec<String> {
        self.frames.push(HashMap::new());
        self.depth += 1;
        std::mem::replace(&mut self.positional, args)
    }

    /// Leaves a function entered with [`enter_function`](Self::enter_function).
    pub fn leave_function(&mut self, caller_args: Vec<String>) {
        self.frames.pop();
        self.depth = self.depth.saturating_sub(1);
        self.positional = caller_args;
    }

    /// Exported variables, for the commands' environment.
    pub fn exported(&self) -> Vec<(String, String)> {
        let mut all: HashMap<&str, &Var> =
            self.globals.iter().map(|(k, v)| (k.as_str(), v)).collect();
        for f in &self.frames {
            for (k, v) in f {
                all.insert(k, v);
            }
        }
        let mut out: Vec<(String, String)> = all
            .into_iter()
            .filter(|(_, v)| v.exported)
            .map(|(k, v)| (k.to_owned(), v.value.clone()))
            .collect();
        out.sort();
        out
    }
}

fn check_value(name: &str, value: &str, bounds: &Bounds) -> Result<(), ShellError> {
    if value.len() > bounds.max_value_bytes {
        return Err(ShellError::Bounds(format!(
            "variable {name} would hold {} bytes; the limit is {}",
            value.len(),
            bounds.max_value_bytes
        )));
    }
    Ok(())
}

/// Whether `name` is a valid variable name.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A failure the script itself sees, as bash reports it: the message goes to the script's
/// stderr (see [`State::complain`]), the command fails with status 1 or 2 and the script goes
/// on. Not an error of runbox: those are [`super::ShellError`]s, which stop the script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Complaint(pub String);

impl From<String> for Complaint {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl std::ops::Deref for Complaint {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}
