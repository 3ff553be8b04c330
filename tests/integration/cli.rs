//! The command line: start-up refusals, check-config and exec.

use crate::support::*;

#[test]
fn root_without_allow_root_is_refused() {
    if !nix::unistd::geteuid().is_root() || server_uid().is_some() {
        eprintln!("SKIPPED root_without_allow_root_is_refused: servers do not run as root here");
        return;
    }
    let env = Env::new();
    let args: Vec<String> = env
        .policy_args()
        .into_iter()
        .filter(|a| a != "--allow-root")
        .collect();
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to run as root") && err.contains("--allow-root"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_policy_keys_are_named() {
    let env = Env::new().with_config("[limits]\ntimeout_msec = 5\n");
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timeout_msec"));
    let env = Env::new().with_config("[limits]\nmemory_bytes = 1\n");
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("limits.memory_bytes"));
}

#[test]
fn policy_file_inside_the_workspace_is_refused() {
    let env = Env::new();
    env.file("policy.toml", "");
    let out = as_server_user(runbox_bin())
        .arg("serve")
        .args(env.policy_args())
        .arg("--config")
        .arg(env.ws.join("policy.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the workspace"));
}

/// A relative `--config` names the file in the directory runbox starts in, as the README's
/// `runbox serve --config examples/policies/NAME.toml` does; a relative one leading into the
/// workspace is refused all the same.
#[test]
fn a_relative_config_is_the_file_in_the_start_directory() {
    let env = Env::new();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !std::path::Path::new("/usr/bin/make").exists() {
        eprintln!(
            "SKIPPED a_relative_config_is_the_file_in_the_start_directory: /usr/bin/make (named by the example) is missing"
        );
        return;
    }
    let out = as_server_user(runbox_bin())
        .current_dir(&repo)
        .arg("exec")
        .args(env.policy_args())
        .args(["--config", "examples/policies/make.toml", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.file("policy.toml", "");
    hand_over(&env.ws);
    let out = as_server_user(runbox_bin())
        .current_dir(&env.ws)
        .arg("exec")
        .args(env.policy_args())
        .args(["--config", "policy.toml", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the workspace"));
}

#[test]
fn check_config_prints_a_reusable_policy() {
    let env = Env::new().with_config("[limits]\ntimeout_ms = 1234\n");
    let out = as_server_user(runbox_bin())
        .arg("check-config")
        .args(env.policy_args())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("timeout_ms = 1234"), "{text}");
    assert!(text.contains("max_concurrent = 8"), "{text}");
    let file = env.dir.path().join("effective.toml");
    std::fs::write(&file, &text).unwrap();
    let out = as_server_user(runbox_bin())
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[test]
fn exec_runs_one_command_like_run() {
    let env = Env::new();
    env.file("a.txt", "x\ny\n");
    let out = as_server_user(runbox_bin())
        .arg("exec")
        .args(env.policy_args())
        .args(["wc", "-l", "a.txt"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2 a.txt");
    let out = as_server_user(runbox_bin())
        .arg("exec")
        .args(env.policy_args())
        .args(["sudo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("COMMAND_NOT_ALLOWED"));
    assert_eq!(env.call_ends().len(), 2);
}

/// `--cache-dir` inside the workspace, and a workspace inside the cache directory, are refused
/// by `serve` and `exec` alike, naming the key and the fix.
#[test]
fn own_paths_and_the_workspace_may_not_nest() {
    let env = Env::new();
    let with_cache = |cache: &std::path::Path| {
        let mut args = env.policy_args();
        let i = args.iter().position(|a| a == "--cache-dir").unwrap();
        args[i + 1] = cache.display().to_string();
        args
    };
    let cases = [
        (
            with_cache(&env.ws.join(".cache")),
            "is inside the workspace",
        ),
        (with_cache(env.dir.path()), "is inside cache_dir"),
    ];
    for (args, words) in &cases {
        for sub in ["serve", "exec"] {
            let mut cmd = as_server_user(runbox_bin());
            cmd.arg(sub).args(args);
            if sub == "exec" {
                cmd.args(["echo", "hi"]);
            }
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{sub}: {out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(words) && err.contains("fix: set cache_dir"),
                "{sub}: {err}"
            );
        }
    }
    assert!(!env.ws.join(".cache").exists());
}
