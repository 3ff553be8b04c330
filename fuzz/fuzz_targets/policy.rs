//! The two TOML parsers an operator feeds: the policy file (`policy::parse_policy` →
//! `Policy::build`) and a `tools_dir` module's `NAME.toml` manifest (`tools_dir::scan`), plus the
//! built-in command list parser on the same text.
//!
//! The first input byte picks the command-line overrides (bit 0: `--workspace /ws --audit-dir
//! /audit`, bit 1: `--allow-root`); the rest is the TOML text.
//!
//! Asserts: no panic; a policy that builds round-trips — its `to_toml()` parses and builds again
//! (with no flags) to the same policy (same hash, same rendering); `scan` accepts a module
//! exactly when its manifest deserializes and resolves against the policy (limits only lowered,
//! `env` names the policy sets, honest annotations), and the spec it returns carries the
//! manifest's description and access.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbox::policy::manifest::{FsAccess, Manifest};
use runbox::policy::{Access, Overrides, Policy, parse_builtin_manifest, parse_policy};
use runbox::tools_dir::scan;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    policy_round_trips(mode, text);
    manifest_matches_scan(text);
    let _ = parse_builtin_manifest(text);
});

fn policy_round_trips(mode: u8, text: &str) {
    let mut flags = Overrides::default();
    if mode & 1 == 1 {
        flags.workspace = Some("/ws".into());
        flags.audit_dir = Some("/audit".into());
    }
    flags.allow_root = mode & 2 == 2;
    let Ok(file) = parse_policy(text) else {
        return;
    };
    let a = match Policy::build(file, &flags) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let rendered = a.to_toml();
    let file = parse_policy(&rendered)
        .unwrap_or_else(|e| panic!("rendered policy does not parse: {e}\n{rendered}"));
    let b = Policy::build(file, &Overrides::default())
        .unwrap_or_else(|e| panic!("rendered policy does not build: {e}\n{rendered}"));
    assert_eq!(
        a.hash(),
        b.hash(),
        "round trip changed the policy:\n{rendered}"
    );
    assert_eq!(rendered, b.to_toml(), "round trip changed the rendering");
}

/// The policy manifests are judged against: the defaults, with one guest variable set.
fn manifest_policy() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        let file = parse_policy("[wasi.env]\nLANG = \"C.UTF-8\"\nTZ = \"UTC\"\n")
            .expect("the fixed policy parses");
        let flags = Overrides {
            workspace: Some("/ws".into()),
            audit_dir: Some("/audit".into()),
            ..Overrides::default()
        };
        Policy::build(file, &flags).expect("the fixed policy builds")
    })
}

fn manifest_matches_scan(text: &str) {
    // A fresh `tools_dir` per input (a static one would outlive the process: statics are never
    // dropped), on a tmpfs when there is one.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temp dir");
    std::fs::write(dir.path().join("t.wasm"), b"module").expect("write t.wasm");
    std::fs::write(dir.path().join("t.toml"), text).expect("write t.toml");
    let policy = manifest_policy();
    let found = scan(dir.path(), policy, |_| Ok::<(), String>(())).expect("the directory exists");
    let (specs, rejected) = (found.found, found.rejected);
    // Parsed twice: `resolve` consumes the manifest.
    let expected = toml::from_str::<Manifest>(text)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            let again: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
            again
                .resolve(policy)
                .map(|r| (m, r))
                .map_err(|e| e.to_string())
        });
    match expected {
        Ok((m, resolved)) => {
            assert!(
                rejected.is_empty(),
                "a valid manifest was rejected: {rejected:?}"
            );
            let [spec] = specs.as_slice() else {
                panic!("expected one command, got {specs:?}");
            };
            assert_eq!(spec.name, "t");
            if let Some(d) = &m.description {
                assert_eq!(&spec.description, d);
            }
            let write = m.filesystem == Some(FsAccess::ReadWrite);
            assert_eq!(spec.access == Access::Write, write);
            assert_eq!(spec.access, resolved.access);
        }
        Err(why) => {
            assert!(
                specs.is_empty(),
                "a manifest that does not resolve was accepted: {why}"
            );
            assert_eq!(rejected.len(), 1);
        }
    }
}
