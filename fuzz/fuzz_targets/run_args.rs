//! Decoding the `run` tool's arguments (`api::RunArgs`, serde with `deny_unknown_fields`) the way
//! the MCP handler does, then the pure checks a request meets before anything runs: the exact-name
//! allowlist lookup (`policy::Catalog::lookup`) and the timeout bound (`Limits::with_timeout`).
//!
//! Asserts: no panic; decoded arguments survive a serialize/deserialize round trip unchanged; a
//! lookup succeeds only for a byte-exact built-in name and otherwise fails with
//! INVALID_ARGUMENT or COMMAND_NOT_ALLOWED and a message of bounded size (a huge name is not
//! echoed whole); an accepted timeout lies within 1..=max; every error becomes a JSON error
//! envelope that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbox::api::{ErrorEnvelope, RunArgs};
use runbox::error::{ErrorCode, RunError};
use runbox::limits::Limits;
use runbox::policy::{Catalog, parse_builtin_manifest};
use serde_json::Value;
use std::sync::OnceLock;

/// The policy default (`limits.max_timeout_ms`).
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Lookup errors quote at most 64 characters of the name, `{:?}`-escaped (at most 10 bytes
/// each, `\u{10ffff}`), plus their own words.
const MAX_LOOKUP_MESSAGE_BYTES: usize = 64 * 10 + 128;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let builtins = parse_builtin_manifest(runbox::BUILTIN_MANIFEST).expect("built-in manifest");
        Catalog::from_builtins(&builtins, None).expect("built-in catalog")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // Either a whole `tools/call` request or just its `arguments` object.
    let arguments = match value.pointer("/params/arguments") {
        Some(Value::Object(a)) => a.clone(),
        _ => match value {
            Value::Object(a) => a,
            _ => return,
        },
    };
    // Exactly the handler's decoding.
    let args: RunArgs = match serde_json::from_value(Value::Object(arguments)) {
        Ok(a) => a,
        Err(e) => {
            let err = RunError::invalid(format!("bad arguments for run: {e}"));
            envelope_round_trips(&err);
            return;
        }
    };

    let encoded = serde_json::to_value(&args).expect("RunArgs serializes");
    let again: RunArgs = serde_json::from_value(encoded.clone()).expect("its own output decodes");
    assert_eq!(serde_json::to_value(&again).expect("serializes"), encoded);

    let names = args
        .command
        .iter()
        .cloned()
        .chain(args.pipeline.iter().flatten().map(|s| s.command.clone()));
    for name in names {
        match catalog().lookup(&name) {
            Ok(spec) => assert_eq!(spec.name, name, "lookup is exact"),
            Err(e) => {
                assert!(
                    matches!(
                        e.code,
                        ErrorCode::InvalidArgument | ErrorCode::CommandNotAllowed
                    ),
                    "{e:?}"
                );
                assert!(
                    e.message.len() <= MAX_LOOKUP_MESSAGE_BYTES,
                    "lookup message of {} bytes",
                    e.message.len()
                );
                if catalog().iter().any(|s| s.name == name) {
                    panic!("a built-in name was refused: {e:?}");
                }
                envelope_round_trips(&e);
            }
        }
    }

    match Limits::default().with_timeout(args.timeout_ms, MAX_TIMEOUT_MS) {
        Ok(l) => {
            assert!((1..=MAX_TIMEOUT_MS).contains(&l.timeout_ms));
            if let Some(t) = args.timeout_ms {
                assert_eq!(l.timeout_ms, t);
            }
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidArgument);
            envelope_round_trips(&e);
        }
    }
});

fn envelope_round_trips(e: &RunError) {
    let env = ErrorEnvelope::new("request-id", e, None);
    let text = serde_json::to_string(&env).expect("an envelope serializes");
    let back: ErrorEnvelope = serde_json::from_str(&text).expect("an envelope parses back");
    assert_eq!(back, env);
}
