//! `runbox precompile` and `precompiled_dir`: a module compiled ahead of time is what a fresh
//! server loads (no compile, nothing written to its cache); an untrusted directory is ignored
//! with a warning, never loaded; without `--out` the command fills the module cache.

use crate::support::*;
use std::path::{Path, PathBuf};

/// `runbox precompile ARGS`, as the server's user; panics unless it succeeds.
fn precompile(args: &[&std::ffi::OsStr]) -> String {
    let out = as_server_user(runbox_bin())
        .arg("precompile")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "precompile failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The env's policy arguments with `--cache-dir` pointed at `cache`, plus `extra`.
fn args_with_cache(env: &Env, cache: &Path, extra: &[String]) -> Vec<String> {
    let mut args = env.policy_args();
    let i = args.iter().position(|a| a == "--cache-dir").unwrap();
    args[i + 1] = cache.display().to_string();
    args.extend(extra.iter().cloned());
    args
}

/// Serves, runs `echo hi`, and returns the server's log.
fn echo_log(args: &[String]) -> String {
    let mut s = Server::spawn(args);
    s.initialize();
    let r = s.run("echo", &["hi"]);
    assert_eq!(structured(&r)["stdout"], "hi\n", "{r}");
    // The line is written before the call returns; its reader thread may still be behind.
    for _ in 0..200 {
        if s.stderr().contains("module ready") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = s.stderr();
    s.close();
    log
}

fn empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn a_precompiled_module_answers_the_first_call_without_compiling() {
    let env = Env::new();
    hand_over(env.dir.path());
    let modules: PathBuf = env.dir.path().join("modules");
    let said = precompile(&["--out".as_ref(), modules.as_os_str()]);
    assert!(said.contains("compiled the built-in module into"), "{said}");
    // A fresh, empty cache: if the server compiled, it would store the result here.
    let fresh_cache = env.dir.path().join("fresh-cache");
    let log = echo_log(&args_with_cache(
        &env,
        &fresh_cache,
        &["--precompiled-dir".into(), modules.display().to_string()],
    ));
    assert!(log.contains("cache=Precompiled"), "{log}");
    assert!(!log.contains("cache=Stored"), "{log}");
    assert!(
        empty_dir(&fresh_cache),
        "nothing was compiled into the cache"
    );

    // `doctor` says the directory is in force.
    let out = as_server_user(runbox_bin())
        .arg("doctor")
        .args(env.policy_args())
        .args(["--precompiled-dir".as_ref(), modules.as_os_str()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("holds the built-in module compiled for this engine"),
        "{report}"
    );
}

#[test]
fn an_untrusted_precompiled_directory_is_not_loaded() {
    let env = Env::new();
    hand_over(env.dir.path());
    let modules = env.dir.path().join("modules");
    precompile(&["--out".as_ref(), modules.as_os_str()]);
    // Writable by others: anyone could have replaced the native code in it.
    let args = args_with_cache(
        &env,
        &cache_dir(),
        &["--precompiled-dir".into(), modules.display().to_string()],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&modules, std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = echo_log(&args);
    assert!(log.contains("precompiled modules not used"), "{log}");
    assert!(log.contains("writable by group or others"), "{log}");
    assert!(!log.contains("cache=Precompiled"), "{log}");
    assert!(
        log.contains("cache=Hit"),
        "the shared warm cache served it: {log}"
    );
}

#[test]
fn without_out_the_module_cache_is_filled_once() {
    let env = Env::new();
    let cache = env.dir.path().join("cache");
    hand_over(env.dir.path());
    let first = precompile(&["--cache-dir".as_ref(), cache.as_os_str()]);
    assert!(
        first.contains("compiled the built-in module into"),
        "{first}"
    );
    let again = precompile(&["--cache-dir".as_ref(), cache.as_os_str()]);
    assert!(again.contains("already compiled"), "{again}");
    let log = echo_log(&args_with_cache(&env, &cache, &[]));
    assert!(log.contains("cache=Hit"), "{log}");
}

#[test]
fn precompiled_dir_inside_the_workspace_is_refused_at_start() {
    let env = Env::new();
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .arg("--precompiled-dir")
        .arg(env.ws.join("modules"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("precompiled_dir") && err.contains("native code"),
        "{err}"
    );
}
