//! Checks an operator-supplied module before it is offered as a command: it must be a valid core
//! wasm module (not a component), import only functions the host provides, and export `_start`
//! and `memory` like any WASI command. Parsing only — nothing is compiled or run here, so a bad
//! file is refused at start in milliseconds with a message that names what is wrong.

use std::collections::BTreeSet;
use wasmparser::{Encoding, ExternalKind, Parser, Payload, TypeRef, Validator};

/// What was learned about a module that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSummary {
    /// Imported functions, as `module::name`.
    pub imports: BTreeSet<String>,
}

/// Why a module is not offered as a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// The file does not start like a wasm binary.
    #[error("not a WebAssembly binary (no \\0asm header)")]
    NotWasm,
    /// The parser or validator refused it (`what` says which part).
    #[error("{what}: {message}")]
    Malformed {
        /// "malformed module", "malformed import section", "invalid module", …
        what: &'static str,
        /// What the parser said.
        message: String,
    },
    /// A WASI 0.2 component, not a preview-1 core module.
    #[error("is a WebAssembly component (WASI 0.2); runbox runs wasm32-wasip1 core modules")]
    Component,
    /// It imports a function the host does not provide.
    #[error(
        "imports {0}, which runbox does not provide (only wasi_snapshot_preview1 functions are available)"
    )]
    UnknownImport(String),
    /// It imports something other than a function.
    #[error("imports {0}, which is not a function; runbox provides only WASI functions")]
    NonFunctionImport(String),
    /// No `_start` export.
    #[error("exports no `_start` function: it is a library (reactor), not a WASI command")]
    NoStart,
    /// No `memory` export.
    #[error("exports no `memory`, which WASI needs")]
    NoMemory,
}

fn malformed(what: &'static str) -> impl Fn(wasmparser::BinaryReaderError) -> ModuleError {
    move |e| ModuleError::Malformed {
        what,
        message: e.to_string(),
    }
}

/// Checks `wasm` against the imports the host provides (`provided(module, name)`).
///
/// # Errors
/// [`ModuleError`] naming the first thing that is wrong.
pub fn check_module(
    wasm: &[u8],
    provided: impl Fn(&str, &str) -> bool,
) -> Result<ModuleSummary, ModuleError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(ModuleError::NotWasm);
    }
    let mut imports = BTreeSet::new();
    let mut has_start = false;
    let mut has_memory = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(malformed("malformed module"))? {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(ModuleError::Component);
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import.map_err(malformed("malformed import section"))?;
                    let what = format!("{}::{}", import.module, import.name);
                    match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_)
                            if provided(import.module, import.name) =>
                        {
                            imports.insert(what);
                        }
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => {
                            return Err(ModuleError::UnknownImport(what));
                        }
                        _ => {
                            return Err(ModuleError::NonFunctionImport(what));
                        }
                    }
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export.map_err(malformed("malformed export section"))?;
                    match (export.name, export.kind) {
                        ("_start", ExternalKind::Func) => has_start = true,
                        ("memory", ExternalKind::Memory) => has_memory = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !has_start {
        return Err(ModuleError::NoStart);
    }
    if !has_memory {
        return Err(ModuleError::NoMemory);
    }
    Validator::new()
        .validate_all(wasm)
        .map_err(malformed("invalid module"))?;
    Ok(ModuleSummary { imports })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a module from sections: types, imports, functions, memory, exports, code.
    fn module(import: Option<(&str, &str)>, export_start: bool, export_memory: bool) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        let section = |m: &mut Vec<u8>, id: u8, body: Vec<u8>| {
            m.push(id);
            m.push(body.len() as u8);
            m.extend(body);
        };
        section(&mut m, 1, vec![1, 0x60, 0, 0]); // one type: () -> ()
        if let Some((module, name)) = import {
            let mut body = vec![1, module.len() as u8];
            body.extend(module.as_bytes());
            body.push(name.len() as u8);
            body.extend(name.as_bytes());
            body.extend([0x00, 0x00]); // func of type 0
            section(&mut m, 2, body);
        }
        section(&mut m, 3, vec![1, 0]); // one function of type 0
        section(&mut m, 5, vec![1, 0x00, 1]); // one memory, min 1 page
        let base = u8::from(import.is_some());
        let mut exports = Vec::new();
        let mut count = 0;
        if export_start {
            exports.extend([6, b'_', b's', b't', b'a', b'r', b't', 0x00, base]);
            count += 1;
        }
        if export_memory {
            exports.extend([6, b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0]);
            count += 1;
        }
        let mut body = vec![count];
        body.extend(exports);
        section(&mut m, 7, body);
        section(&mut m, 10, vec![1, 2, 0, 0x0b]); // code: empty body
        m
    }

    fn wasi_only(module: &str, _name: &str) -> bool {
        module == "wasi_snapshot_preview1"
    }

    #[test]
    fn accepts_a_wasi_command() {
        let m = module(Some(("wasi_snapshot_preview1", "proc_exit")), true, true);
        let s = check_module(&m, wasi_only).unwrap();
        assert!(s.imports.contains("wasi_snapshot_preview1::proc_exit"));
    }

    #[test]
    fn refuses_foreign_imports() {
        let m = module(Some(("env", "system")), true, true);
        let e = check_module(&m, wasi_only).unwrap_err();
        assert_eq!(e, ModuleError::UnknownImport("env::system".into()));
        assert!(e.to_string().contains("env::system"), "{e}");
    }

    #[test]
    fn refuses_libraries_and_garbage() {
        assert_eq!(
            check_module(&module(None, false, true), wasi_only),
            Err(ModuleError::NoStart)
        );
        assert_eq!(
            check_module(&module(None, true, false), wasi_only),
            Err(ModuleError::NoMemory)
        );
        assert_eq!(
            check_module(b"#!/bin/sh\necho hi\n", wasi_only),
            Err(ModuleError::NotWasm)
        );
        let mut truncated = module(None, true, true);
        truncated.truncate(20);
        assert!(check_module(&truncated, wasi_only).is_err());
    }

    #[test]
    fn refuses_components() {
        let component = b"\0asm\x0d\0\x01\0".to_vec();
        assert_eq!(
            check_module(&component, wasi_only),
            Err(ModuleError::Component)
        );
    }
}
