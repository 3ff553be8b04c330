//! Builds the WASI command suite (`tools-wasm/`) for `wasm32-wasip1` and hands the module to the
//! host crate, so `cargo build`, `cargo test` and `cargo run` need no separate step.
//!
//! The suite is a separate cargo workspace built with its own target directory
//! (`<target>/tools-wasm`), shared by every profile of the host, so it is compiled once and only
//! rebuilt when its sources change. Set `RUNBOX_TOOLS_WASM=/path/to/runbox-tools.wasm` to use a
//! prebuilt module instead. Without the `runtime` feature nothing is built.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const TARGET: &str = "wasm32-wasip1";
const ARTIFACT: &str = "runbox-tools.wasm";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            println!("cargo::error={message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let tools = manifest_dir.join("../tools-wasm");
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    for watched in [
        "src",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "commands.toml",
        "same-file-wasi",
    ] {
        println!("cargo::rerun-if-changed={}", tools.join(watched).display());
    }
    println!("cargo::rerun-if-env-changed=RUNBOX_TOOLS_WASM");
    // Without the `runtime` feature (the fuzz targets' build) nothing embeds the module.
    if env::var_os("CARGO_FEATURE_RUNTIME").is_none() {
        return Ok(());
    }
    let dest = out_dir.join(ARTIFACT);

    if let Some(prebuilt) = env::var_os("RUNBOX_TOOLS_WASM") {
        // A new prebuilt module must be picked up even when no source changed.
        println!("cargo::rerun-if-changed={}", Path::new(&prebuilt).display());
        std::fs::copy(&prebuilt, &dest)
            .map_err(|e| format!("RUNBOX_TOOLS_WASM={}: {e}", Path::new(&prebuilt).display()))?;
        return write_digest(&dest);
    }

    ensure_target_installed()?;
    let target_dir = shared_target_dir(&out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(tools.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if tools.join("Cargo.lock").exists() {
        cmd.arg("--locked");
    }
    // The outer build's flags, target and wrappers (clippy, coverage) must not leak into the
    // guest build.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    // wasm SIMD: memchr and the regex engine use it when it is on at compile time (the regex
    // `grep -c -E` of the benchmark ~2.7x faster, same module size; docs/benchmarks.md).
    // wasmtime runs SIMD modules by default.
    cmd.env(
        "CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS",
        "-C target-feature=+simd128",
    );
    cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build tools-wasm: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building tools-wasm for {TARGET} failed ({status}); see the output above"
        ));
    }
    let built = target_dir.join(TARGET).join("release").join(ARTIFACT);
    std::fs::copy(&built, &dest).map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
    write_digest(&dest)
}

/// Writes the module's sha256 (32 bytes) next to it: the key of its compiled form in runbox's
/// module cache, so the server need not hash 9.7 MB at every start.
fn write_digest(module: &Path) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let bytes =
        std::fs::read(module).map_err(|e| format!("cannot read {}: {e}", module.display()))?;
    let digest = Sha256::digest(&bytes);
    let path = module.with_extension("wasm.sha256");
    std::fs::write(&path, digest).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Makes sure the wasm32-wasip1 standard library is installed: when it is missing and the build
/// runs under rustup, asks rustup to add it to the active toolchain (so a machine with only
/// rustup needs no extra step); otherwise stops with the one-line fix.
fn ensure_target_installed() -> Result<(), String> {
    if target_std_installed()? {
        return Ok(());
    }
    // rustup's proxies set RUSTUP_TOOLCHAIN to the toolchain that runs this build.
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        println!(
            "cargo::warning=the {TARGET} target is missing; running: rustup target add {TARGET}"
        );
        let rustup = env::var_os("RUSTUP").unwrap_or_else(|| "rustup".into());
        let added = Command::new(rustup)
            .args(["target", "add", TARGET, "--toolchain"])
            .arg(&toolchain)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status();
        if matches!(added, Ok(status) if status.success()) && target_std_installed()? {
            return Ok(());
        }
    }
    Err(format!(
        "the {TARGET} target is not installed and could not be added; run: rustup target add {TARGET}"
    ))
}

/// Whether the active rustc has a standard library for wasm32-wasip1.
fn target_std_installed() -> Result<bool, String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let libdir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let has_std = out.status.success()
        && std::fs::read_dir(&libdir)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
            })
            .unwrap_or(false);
    Ok(has_std)
}

/// `<target>/tools-wasm`, found from OUT_DIR (`<target>[/<triple>]/<profile>/build/<pkg>/out`),
/// so every profile of the host shares one guest build.
fn shared_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent())
        .and_then(|profile| profile.parent())
        .map(|target| target.join("tools-wasm"))
        .unwrap_or_else(|| out_dir.join("tools-wasm"))
}
