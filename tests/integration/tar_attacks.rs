//! Hostile archives against the built-in `tar` (issue #17): members named `../x` and `/abs/x`,
//! symbolic links and hard links that lead out of the workspace, members written through a
//! symbolic link planted in the workspace, and a symbolic-link member followed by a file through
//! it. Each archive is extracted over MCP; afterwards nothing outside the workspace may have
//! changed or appeared, and nothing may have been written through a link.
//!
//! The archives are written here byte by byte (GNU headers), so the test does not depend on the
//! code under test to make them.

use crate::support::*;
use std::os::unix::fs::symlink;
use std::path::Path;

const SECRET: &str = "TAR-SECRET-41c9";

/// One member: a GNU header (`kind` '0' file, '1' hard link, '2' symbolic link, '5' directory)
/// and its data padded to 512 bytes.
fn member(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    assert!(name.len() <= 100 && link.len() <= 100);
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"14545226045\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..265].copy_from_slice(b"ustar  \0");
    // The checksum field counts as eight spaces while summing.
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * u32::from(b' ');
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut v = h.to_vec();
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

fn archive(members: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = members.concat();
    v.extend_from_slice(&[0u8; 1024]);
    v
}

/// Every file below `dir` with its contents (symlinks as `-> target`), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if ft.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(format!(
                    "{rel}: {}",
                    std::fs::read_to_string(&p).unwrap_or_default()
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_archives_never_write_outside_or_through_links() {
    let env = Env::new();
    let base = env.dir.path().to_path_buf();
    let outside = base.join("outside-dir");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), SECRET).unwrap();
    // Links planted in the workspace before the call: one absolute, one relative, both out; one
    // to a directory inside.
    symlink(&outside, env.ws.join("out-abs")).unwrap();
    symlink("../outside-dir", env.ws.join("out-rel")).unwrap();
    std::fs::create_dir(env.ws.join("sub")).unwrap();
    symlink("sub", env.ws.join("in-link")).unwrap();
    let outside_abs = outside.display().to_string();
    let keep_abs = outside.join("keep.txt").display().to_string();
    let archives: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot.tar",
            archive(&[
                member("../escaped.txt", b'0', "", b"pwned"),
                member("sub/../../escaped2.txt", b'0', "", b"pwned"),
                member("../outside-dir/keep.txt", b'0', "", b"pwned"),
            ]),
        ),
        (
            "absolute.tar",
            archive(&[member(
                &format!("{outside_abs}/abs.txt"),
                b'0',
                "",
                b"landed inside",
            )]),
        ),
        (
            "symlinks.tar",
            archive(&[
                member("l-abs", b'2', &outside_abs, b""),
                member("l-rel", b'2', "../outside-dir", b""),
                member("l-abs/x.txt", b'0', "", b"pwned"),
                member("l-rel/y.txt", b'0', "", b"pwned"),
            ]),
        ),
        (
            "hardlinks.tar",
            archive(&[
                member("h-abs", b'1', &keep_abs, b""),
                member("h-rel", b'1', "../outside-dir/keep.txt", b""),
                member("h-planted", b'1', "out-abs/keep.txt", b""),
            ]),
        ),
        (
            "planted.tar",
            archive(&[
                member("out-abs/planted.txt", b'0', "", b"pwned"),
                member("out-rel/planted.txt", b'0', "", b"pwned"),
                member("in-link/planted.txt", b'0', "", b"through a link"),
                member("out-abs", b'0', "", b"replaces the link itself"),
            ]),
        ),
        (
            "link-then-file.tar",
            archive(&[
                member("hop", b'2', "sub", b""),
                member("hop/through.txt", b'0', "", b"through a link"),
            ]),
        ),
    ];
    for (name, bytes) in &archives {
        std::fs::write(env.ws.join(name), bytes).unwrap();
    }
    let before_outside = listing(&outside);
    let mut s = env.serve();
    for (name, _) in &archives {
        let r = s.run("tar", &["-xf", name]);
        let out = structured(&r);
        let text = r.to_string();
        assert!(!text.contains(SECRET), "{name}: the secret leaked: {r}");
        if *name == "absolute.tar" {
            assert_eq!(out["exitCode"], 0, "{name}: {r}");
        } else {
            assert_eq!(out["exitCode"], 2, "{name} must fail: {r}");
        }
    }
    // Nothing outside changed or appeared.
    assert_eq!(listing(&outside), before_outside);
    assert_eq!(
        std::fs::read_to_string(outside.join("keep.txt")).unwrap(),
        SECRET
    );
    let mut siblings: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    siblings.sort();
    assert!(
        !siblings.iter().any(|n| n.starts_with("escaped")),
        "{siblings:?}"
    );
    let ws = &env.ws;
    // The absolute member landed beneath the workspace, its leading `/` removed.
    let rel = outside_abs.trim_start_matches('/');
    assert_eq!(
        std::fs::read_to_string(ws.join(rel).join("abs.txt")).unwrap(),
        "landed inside"
    );
    // No link out was created (the refused links' names became plain directories for the files
    // under them), no hard link was made, nothing went through a link.
    for refused in ["l-abs", "l-rel"] {
        let meta = std::fs::symlink_metadata(ws.join(refused)).unwrap();
        assert!(meta.is_dir(), "{refused} is not a plain directory");
    }
    for refused in ["h-abs", "h-rel", "h-planted", "escaped.txt"] {
        assert!(
            std::fs::symlink_metadata(ws.join(refused)).is_err(),
            "{refused} exists"
        );
    }
    assert!(
        !ws.join("sub/planted.txt").exists(),
        "written through in-link"
    );
    assert!(!ws.join("sub/through.txt").exists(), "written through hop");
    assert_eq!(
        std::fs::read_link(ws.join("hop")).unwrap(),
        Path::new("sub"),
        "the inside link itself is extracted"
    );
    // A member named like a planted link replaces the link; it does not write through it.
    assert_eq!(
        std::fs::read_to_string(ws.join("out-abs")).unwrap(),
        "replaces the link itself"
    );
    assert!(
        std::fs::symlink_metadata(ws.join("out-rel"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Review: `-C a/b/up` with `up -> ../..` (an inside link back to the root) made tar judge
    // a link member's depth by the `-C` text, and `tl -> ../outside-dir/keep.txt` was created
    // at the root, leading out.
    std::fs::create_dir_all(ws.join("a/b")).unwrap();
    symlink("../..", ws.join("a/b/up")).unwrap();
    std::fs::write(
        ws.join("climb.tar"),
        archive(&[member("tl", b'2', "../outside-dir/keep.txt", b"")]),
    )
    .unwrap();
    let r = s.run("tar", &["-xf", "climb.tar", "-C", "a/b/up"]);
    assert_eq!(structured(&r)["exitCode"], 2, "{r}");
    assert!(
        std::fs::symlink_metadata(ws.join("tl")).is_err(),
        "a link leading out was made through -C"
    );
}
