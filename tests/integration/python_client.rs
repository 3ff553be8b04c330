//! What the tests that drive runbox with the official Python MCP SDK share: the interpreter
//! that has the SDK (or a printed skip; a failure when `RUNBOX_REQUIRE_PYTHON_SDK` is set, as
//! `.ci/run` does), and a client script's report (its last line of stdout, as JSON), after
//! checking that the script succeeded.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A Python that can `import mcp`: `RUNBOX_PYTHON`, else the repository's `.venv`.
fn find() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("RUNBOX_PYTHON").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import mcp"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

/// The Python with the SDK, or `None` after printing why `what` is skipped; panics instead
/// when `RUNBOX_REQUIRE_PYTHON_SDK` is set.
pub fn python_sdk(what: &str) -> Option<PathBuf> {
    let found = find();
    if found.is_none() {
        assert!(
            std::env::var_os("RUNBOX_REQUIRE_PYTHON_SDK").is_none(),
            "RUNBOX_REQUIRE_PYTHON_SDK is set but no python with the `mcp` package was found"
        );
        eprintln!("SKIPPED {what}: no python with the `mcp` package (run .ci/run or create .venv)");
    }
    found
}

/// The path of a client script in tests/python.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/python")
        .join(name)
}

/// The report of a client script that ran to `out`: fails the test when the script failed or
/// its last line of stdout is not JSON.
pub fn report(out: &Output, what: &str) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client ({what}) failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad report {line:?} ({what}): {e}"))
}
