//! A randomized test of the preview-1 path calls, the part of runbox's own WASI layer that
//! takes paths from the guest: thousands of `path_open`, `path_create_directory`,
//! `path_unlink_file`, `path_remove_directory`, `path_rename`, `path_symlink`, `path_link`,
//! `path_readlink`, `path_filestat_get`/`set_times` and `fd_filestat_set_size` calls with
//! paths made of `..`, `.`, absolute prefixes, empty components and names of symlinks planted
//! to lead out (absolute, relative, through `/proc/self/root`), from the preopen and from
//! descriptors the calls opened. After every call, what it opened must lie inside the
//! workspace; at the end, the tree beside the workspace must be exactly as it was.
//!
//! The operations come from a fixed-seed generator, so a failure names its seed and step and
//! replays. This stands in for a fuzz target: the fuzz crate builds without the runtime
//! (no wasmtime), and this layer needs it. Test-only.

use super::paths::OpenRequest;
use super::table::Descriptor;
use super::{GuestWasi, Preopen, WriteBudget};
use crate::outcome::Capture;
use crate::runner::{Input, Output};
use cap_std::fs::MetadataExt as _;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use wasmtime_wasi::p1::types;

/// xorshift64*: enough to pick operations reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Path components: few, so that paths collide with what earlier calls made.
const PARTS: &[&str] = &[
    "a", "b", "f", "..", ".", "", "up", "abs", "proc", "root", "a/..", "../..", "outside",
    "MARKER", "ws",
];

/// Targets for symlinks the guest makes (absolute ones are refused by the layer).
const TARGETS: &[&str] = &[
    "a",
    "f",
    "..",
    "../..",
    "../outside",
    "../outside/MARKER",
    "a/../..",
    "up",
    "abs",
    ".",
    "/etc/passwd",
    "b/f",
];

fn random_path(rng: &mut Rng) -> PathBuf {
    let n = 1 + rng.below(4);
    let mut s = String::new();
    if rng.below(8) == 0 {
        s.push('/');
    }
    for i in 0..n {
        if i > 0 {
            s.push('/');
        }
        s.push_str(rng.pick(PARTS));
    }
    if rng.below(10) == 0 {
        s.push('/');
    }
    PathBuf::from(s)
}

/// Every entry below `root` (not following symlinks), by relative name: its type, size,
/// mode, mtime and, for files, contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let contents = if m.is_file() {
                std::fs::read(&p).unwrap_or_default()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .map(|t| t.into_os_string().into_encoded_bytes())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            out.insert(rel, (m.mode(), m.size(), m.mtime(), contents));
        }
    }
    out
}

/// The identities of the workspace and of everything below it (not following symlinks).
fn inside(ws: &Path) -> HashSet<(u64, u64)> {
    let mut ids = HashSet::new();
    let m = std::fs::metadata(ws).unwrap();
    ids.insert((m.dev(), m.ino()));
    let mut stack = vec![ws.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Ok(m) = std::fs::symlink_metadata(e.path()) {
                ids.insert((m.dev(), m.ino()));
                if m.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    ids
}

/// The identity of what descriptor `fd` holds.
fn identity(g: &GuestWasi, fd: u32) -> (u64, u64) {
    match g.fds.get(fd).unwrap() {
        Descriptor::File(f) => {
            let m = f.file.metadata().unwrap();
            (m.dev(), m.ino())
        }
        Descriptor::Dir(d) => {
            let m = d.dir.dir_metadata().unwrap();
            (m.dev(), m.ino())
        }
        other => panic!("fd {fd} is {other:?}"),
    }
}

fn guest(ws: &Path) -> GuestWasi {
    let dir = cap_std::fs::Dir::open_ambient_dir(ws, cap_std::ambient_authority()).unwrap();
    GuestWasi::new(
        vec!["random".into()],
        Vec::new(),
        Input::Bytes(bytes::Bytes::new()),
        Output::Capture(Capture::new(1 << 16)),
        Capture::new(1 << 16),
        vec![Preopen {
            dir,
            guest_path: "/".into(),
            writable: true,
        }],
        WriteBudget::new(64 << 20),
    )
    .unwrap()
}

/// Builds `base/ws` (with files, a directory and symlinks that lead out) beside
/// `base/outside` (a marker file, a directory, a file of its own).
fn layout(base: &Path) -> PathBuf {
    let ws = base.join("ws");
    let outside = base.join("outside");
    std::fs::create_dir_all(ws.join("a/b")).unwrap();
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("MARKER"), b"outside, never to change").unwrap();
    std::fs::write(outside.join("dir/f"), b"outside too").unwrap();
    std::fs::write(ws.join("f"), b"inside").unwrap();
    std::fs::write(ws.join("a/f"), b"inside a").unwrap();
    std::os::unix::fs::symlink("../outside", ws.join("up")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("abs")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root", ws.join("proc")).unwrap();
    std::os::unix::fs::symlink("/", ws.join("root")).unwrap();
    std::os::unix::fs::symlink("../../outside/MARKER", ws.join("a/m")).unwrap();
    ws
}

const PREOPEN: u32 = 3;

/// One random call; returns the descriptor it opened, if any.
fn step(rng: &mut Rng, g: &mut GuestWasi, open_fds: &[u32]) -> Option<u32> {
    use types::{Fdflags, Lookupflags, Oflags, Rights};
    // Calls are made from the preopen or from a directory an earlier call opened.
    let dirs: Vec<u32> = std::iter::once(PREOPEN)
        .chain(
            open_fds
                .iter()
                .copied()
                .filter(|fd| matches!(g.fds.get(*fd), Ok(Descriptor::Dir(_)))),
        )
        .collect();
    let dirfd = dirs[rng.below(dirs.len())];
    let path = random_path(rng);
    let follow = rng.below(2) == 0;
    let lookup = if follow {
        Lookupflags::SYMLINK_FOLLOW
    } else {
        Lookupflags::empty()
    };
    match rng.below(12) {
        0..=3 => {
            let mut oflags = Oflags::empty();
            for (bit, flag) in [
                (0, Oflags::CREAT),
                (1, Oflags::DIRECTORY),
                (2, Oflags::EXCL),
                (3, Oflags::TRUNC),
            ] {
                if rng.below(4) == bit {
                    oflags |= flag;
                }
            }
            let rights = match rng.below(3) {
                0 => Rights::FD_READ,
                1 => Rights::FD_WRITE,
                _ => Rights::FD_READ | Rights::FD_WRITE,
            };
            let req = OpenRequest {
                follow,
                oflags,
                rights,
                fdflags: if rng.below(4) == 0 {
                    Fdflags::APPEND
                } else {
                    Fdflags::empty()
                },
            };
            return g.open(dirfd, &path, req).ok();
        }
        4 => drop(g.create_directory(dirfd, &path)),
        5 => drop(g.unlink(dirfd, &path)),
        6 => drop(g.remove_directory(dirfd, &path)),
        7 => {
            let to = dirs[rng.below(dirs.len())];
            drop(g.rename(dirfd, &path, to, &random_path(rng)));
        }
        8 => drop(g.symlink(Path::new(rng.pick(TARGETS)), dirfd, &path)),
        9 => {
            let to = dirs[rng.below(dirs.len())];
            drop(g.link(dirfd, lookup, &path, to, &random_path(rng)));
        }
        10 => {
            drop(g.readlink(dirfd, &path));
            if let Ok(s) = g.path_filestat(dirfd, lookup, &path) {
                // What a stat answers about must be inside too (the workspace's own device
                // and an inode of it, checked by the caller through `stat_seen`).
                STAT_SEEN.with(|c| c.borrow_mut().push((s.dev, s.ino)));
            }
        }
        _ => {
            drop(g.set_path_times(dirfd, lookup, &path, 0, 0, types::Fstflags::MTIM));
            if let Some(&fd) = open_fds.last() {
                drop(g.set_size(fd, rng.next() % 4096));
            }
        }
    }
    None
}

thread_local! {
    static STAT_SEEN: std::cell::RefCell<Vec<(u64, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[test]
fn random_path_calls_never_reach_outside_the_workspace() {
    for seed in 1..=8u64 {
        let base = tempfile::tempdir().unwrap();
        let ws = layout(base.path());
        let outside = base.path().join("outside");
        let before = snapshot(&outside);
        let mut g = guest(&ws);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut open_fds: Vec<u32> = Vec::new();
        for n in 0..1500 {
            STAT_SEEN.with(|c| c.borrow_mut().clear());
            if let Some(fd) = step(&mut rng, &mut g, &open_fds) {
                let id = identity(&g, fd);
                assert!(
                    inside(&ws).contains(&id),
                    "seed {seed}, step {n}: fd {fd} opened something outside the workspace"
                );
                open_fds.push(fd);
            }
            let seen = STAT_SEEN.with(|c| c.borrow().clone());
            if !seen.is_empty() {
                let ids = inside(&ws);
                for id in seen {
                    assert!(
                        ids.contains(&id),
                        "seed {seed}, step {n}: a stat answered about something outside"
                    );
                }
            }
            // Keep the table small: close the oldest now and then.
            if open_fds.len() > 16 || (rng.below(8) == 0 && !open_fds.is_empty()) {
                let fd = open_fds.remove(0);
                g.fds.remove(fd).unwrap();
            }
        }
        assert_eq!(
            snapshot(&outside),
            before,
            "seed {seed}: the tree beside the workspace changed"
        );
    }
}
