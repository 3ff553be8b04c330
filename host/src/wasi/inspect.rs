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

/// Checks `wasm` against the imports the host provides (`provided(module, name)`).
pub fn check_module(
    wasm: &[u8],
    provided: impl Fn(&str, &str) -> bool,
) -> Result<ModuleSummary, String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("not a WebAssembly binary (no \\0asm header)".into());
    }
    let mut imports = BTreeSet::new();
    let mut has_start = false;
    let mut has_memory = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("malformed module: {e}"))? {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(
                    "is a WebAssembly component (WASI 0.2); runbox runs wasm32-wasip1 core modules"
                        .into(),
                );
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import.map_err(|e| format!("malformed import section: {e}"))?;
                    let what = format!("{}::{}", import.module, import.name);
                    match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_)
                            if provided(import.module, import.name) =>
                        {
                            imports.insert(what);
                        }
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => {
                            return Err(format!(
                                "imports {what}, which runbox does not provide (only wasi_snapshot_preview1 functions are available)"
                            ));
                        }
                        _ => {
                            return Err(format!(
                                "imports {what}, which is not a function; runbox provides only WASI functions"
                            ));
                        }
                    }
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export.map_err(|e| format!("malformed export section: {e}"))?;
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
        return Err(
            "exports no `_start` function: it is a library (reactor), not a WASI command".into(),
        );
    }
    if !has_memory {
        return Err("exports no `memory`, which WASI needs".into());
    }
    Validator::new()
        .validate_all(wasm)
        .map_err(|e| format!("invalid module: {e}"))?;
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
        assert!(e.contains("env::system"), "{e}");
    }

    #[test]
    fn refuses_libraries_and_garbage() {
        assert!(
            check_module(&module(None, false, true), wasi_only)
                .unwrap_err()
                .contains("_start")
        );
        assert!(
            check_module(&module(None, true, false), wasi_only)
                .unwrap_err()
                .contains("memory")
        );
        assert!(
            check_module(b"#!/bin/sh\necho hi\n", wasi_only)
                .unwrap_err()
                .contains("not a WebAssembly")
        );
        let mut truncated = module(None, true, true);
        truncated.truncate(20);
        assert!(check_module(&truncated, wasi_only).is_err());
    }

    #[test]
    fn refuses_components() {
        let component = b"\0asm\x0d\0\x01\0".to_vec();
        assert!(
            check_module(&component, wasi_only)
                .unwrap_err()
                .contains("component")
        );
    }
}
