//! The bearer token file as Kubernetes mounts a Secret, through the real binary: runbox as an
//! unprivileged uid whose supplementary group is the pod's fsGroup reads a root-owned, 0440,
//! fsGroup-group file behind the volume's `..data` symbolic links; SIGHUP reloads it after the
//! volume's atomic swap (the new tokens apply at once, the old ones stop working), a file that
//! must not be used keeps the old tokens and says why in a `reload` record, and a file whose
//! group is not runbox's is refused at start.

use crate::http_client::*;
use crate::support::*;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;

const ALICE: &str = "alice-secret-token-0123456789";
const BOB: &str = "bob-secret-token-9876543210ab";
/// The pod's fsGroup, a supplementary group of runbox's.
const FS_GROUP: u32 = 10001;
/// runbox's own (primary) gid, not the file's.
const OWN_GID: u32 = 10002;

/// The uid the server runs as: the suite's, else the image's.
fn uid() -> u32 {
    server_uid().unwrap_or(10001)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// Writes a new version of the Secret volume the way the kubelet does: the file in a fresh
/// `..STAMP` directory, then `..data` swapped to it by a rename; `tokens -> ..data/tokens`.
fn publish(volume: &Path, stamp: &str, text: &str, owner: (u32, u32), mode: u32) -> PathBuf {
    let data = volume.join(stamp);
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("tokens");
    std::fs::write(&file, text).unwrap();
    std::os::unix::fs::chown(&file, Some(owner.0), Some(owner.1)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    let tmp = volume.join("..data_tmp");
    std::os::unix::fs::symlink(stamp, &tmp).unwrap();
    std::fs::rename(&tmp, volume.join("..data")).unwrap();
    let link = volume.join("tokens");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("..data/tokens", &link).unwrap();
    }
    link
}

/// An environment the server's uid owns, with its own copy of the newest compiled module of
/// the warm cache (the built-in one, just warmed: a miss would only cost a compile in the
/// background, which these tests never wait for).
fn unprivileged_env() -> (Env, PathBuf) {
    let env = Env::new();
    let cache = env.dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let newest = std::fs::read_dir(cache_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    if let Some(e) = newest {
        std::fs::copy(e.path(), cache.join(e.file_name())).unwrap();
    }
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown_tree(env.dir.path(), uid(), OWN_GID);
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    (env, cache)
}

/// `runbox serve --listen 127.0.0.1:0` as uid [`uid`], gid [`OWN_GID`], groups [`FS_GROUP`]
/// (as a pod with runAsUser, runAsGroup and fsGroup runs it); the bound address, or the exit
/// code and stderr when it does not come up.
fn serve(env: &Env, cache: &Path, tokens: &Path) -> Result<(Child, SocketAddr), String> {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", uid()))
        .arg(format!("--regid={OWN_GID}"))
        .arg(format!("--groups={FS_GROUP}"))
        .arg(runbox_bin())
        .args(["serve", "--allow-root", "--workspace"])
        .arg(&env.ws)
        .arg("--audit-dir")
        .arg(&env.audit)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--listen", "127.0.0.1:0", "--auth-token-file"])
        .arg(tokens)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn setpriv runbox");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line
                .strip_prefix("runbox: serving MCP on http://")
                .and_then(|r| r.strip_suffix("/mcp"))
            {
                let _ = tx.send(Ok(addr.parse::<SocketAddr>().unwrap()));
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(RESPONSE_TIMEOUT) {
        Ok(Ok(addr)) => Ok((child, addr)),
        Ok(Err(stderr)) => {
            let code = child.wait().ok().and_then(|s| s.code());
            Err(format!("exit {code:?}: {stderr}"))
        }
        Err(_) => {
            let _ = child.kill();
            Err("no address within the timeout".into())
        }
    }
}

#[test]
fn a_secret_volume_token_file_is_used_and_reloaded_on_sighup() {
    if !nix_is_root() {
        eprintln!("SKIP: runs the server as another uid and chowns files to root: needs root");
        return;
    }
    let (env, cache) = unprivileged_env();
    let volume = env.dir.path().join("secret");
    std::fs::create_dir(&volume).unwrap();
    let tokens = publish(
        &volume,
        "..2026_01_01_00_00_00.000000001",
        &format!("alice:{ALICE}\n"),
        (0, FS_GROUP),
        0o440,
    );
    let (mut child, addr) = serve(&env, &cache, &tokens).unwrap();
    assert_eq!(initialize_status(addr, ALICE), 200);
    assert_eq!(initialize_status(addr, BOB), 401);

    // The Secret is updated (alice rotated out, bob in), then runbox is told.
    publish(
        &volume,
        "..2026_01_02_00_00_00.000000001",
        &format!("# rotated\nbob:{BOB}\n"),
        (0, FS_GROUP),
        0o440,
    );
    hang_up(child.id());
    let applied = wait_for_reload(&env, 1);
    assert_eq!(applied["reload"]["applied"], true, "{applied}");
    assert_eq!(applied["reload"]["key"], "http.auth_token_file");
    assert_eq!(applied["reload"]["names"], serde_json::json!(["bob"]));
    assert_eq!(
        initialize_status(addr, ALICE),
        401,
        "a removed token stops working"
    );
    assert_eq!(initialize_status(addr, BOB), 200);

    // A version anyone may read is not used: bob's token stays, and the record says why.
    publish(
        &volume,
        "..2026_01_03_00_00_00.000000001",
        &format!("carol:{ALICE}-carol\n"),
        (0, FS_GROUP),
        0o444,
    );
    hang_up(child.id());
    let refused = wait_for_reload(&env, 2);
    assert_eq!(refused["reload"]["applied"], false, "{refused}");
    assert_eq!(refused["reload"]["names"], serde_json::json!(["bob"]));
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.contains("mode 0444") && why.contains("anyone"), "{why}");
    assert_eq!(initialize_status(addr, BOB), 200, "the old tokens stay");
    assert_eq!(initialize_status(addr, &format!("{ALICE}-carol")), 401);

    let _ = child.kill();
    let _ = child.wait();
    let raw: String = env
        .audit_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        !raw.contains(ALICE) && !raw.contains(BOB),
        "a token in the log"
    );
}

#[test]
fn a_token_file_whose_group_is_not_runboxs_is_refused_at_start() {
    if !nix_is_root() {
        eprintln!("SKIP: chowns files to root: needs root");
        return;
    }
    let (env, cache) = unprivileged_env();
    let volume = env.dir.path().join("secret");
    std::fs::create_dir(&volume).unwrap();
    // runbox's own file (it can read it), but group 12345 may read it too.
    let tokens = publish(
        &volume,
        "..1",
        &format!("alice:{ALICE}\n"),
        (uid(), 12345),
        0o440,
    );
    let err = serve(&env, &cache, &tokens).map(|_| ()).unwrap_err();
    assert!(
        err.starts_with("exit Some(2)") && err.contains("group 12345, not one of runbox's"),
        "{err}"
    );
    assert!(!err.contains(ALICE));
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
