//! Fixture trees on disk: build one from its declaration, read one back as a comparable value,
//! and describe how two differ.
//!
//! Only ever writes below the directory it is given (a fresh temporary directory per side).

use super::spec::{FIXED_MTIME, Fixture};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// One entry of a tree as the comparison sees it (no modes, owners or inode numbers: runbox's
/// guest cannot see or set them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File {
        bytes: Vec<u8>,
        /// Seconds and nanoseconds since the epoch (read only when mtimes are compared).
        mtime: Option<(i64, u32)>,
    },
    Symlink(String),
    Other,
}

/// A tree: relative path → entry, in path order.
pub type Snapshot = BTreeMap<String, Node>;

/// Materialises `fixture` under `root` (which must exist and be empty).
pub fn build(root: &Path, fixture: &Fixture) {
    for d in &fixture.dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for (path, text) in &fixture.files {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, text).unwrap();
    }
    for (path, text) in &fixture.base64 {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let bytes =
            decode_base64(text).unwrap_or_else(|| panic!("fixture file {path}: not valid base64"));
        fs::write(&p, bytes).unwrap();
    }
    for (path, size) in &fixture.fill {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let line = b"abcdefghijklmnopqrstuvwxy\n";
        let bytes: Vec<u8> = line.iter().copied().cycle().take(*size).collect();
        fs::write(&p, bytes).unwrap();
    }
    for (link, target) in &fixture.symlinks {
        let p = root.join(link);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        std::os::unix::fs::symlink(target, &p).unwrap();
    }
    // Files first, then directories deepest first: setting a time never disturbs another.
    let mut dirs = Vec::new();
    for (path, node) in snapshot(root, false) {
        match node {
            Node::File { .. } => set_mtime(&root.join(&path), mtime_of(fixture, &path)),
            Node::Dir => dirs.push(path),
            _ => {}
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for d in dirs {
        set_mtime(&root.join(&d), mtime_of(fixture, &d));
    }
    set_mtime(
        root,
        fixture.mtimes.get(".").copied().unwrap_or(FIXED_MTIME),
    );
}

/// Standard base64 (`A-Z a-z 0-9 + /`, `=` padding) with whitespace ignored; `None` if malformed.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let body = digits
        .strip_suffix(b"==")
        .or_else(|| digits.strip_suffix(b"="))
        .unwrap_or(&digits);
    if !digits.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in body {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[test]
fn base64_decodes_with_padding_and_whitespace() {
    assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(decode_base64("aGVs\nbG8h").unwrap(), b"hello!");
    assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
    assert_eq!(decode_base64("AAE=").unwrap(), [0, 1]);
    assert!(decode_base64("a").is_none());
    assert!(decode_base64("a*==").is_none());
}

fn mtime_of(fixture: &Fixture, path: &str) -> i64 {
    fixture.mtimes.get(path).copied().unwrap_or(FIXED_MTIME)
}

fn set_mtime(path: &Path, secs: i64) {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap());
    let f = fs::File::open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

/// Reads the tree under `root`; with `mtimes`, file mtimes are part of the value.
pub fn snapshot(root: &Path, mtimes: bool) -> Snapshot {
    let mut out = Snapshot::new();
    walk(root, "", mtimes, &mut out);
    out
}

fn walk(dir: &Path, prefix: &str, mtimes: bool, out: &mut Snapshot) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&path).unwrap_or_default();
            out.insert(rel, Node::Symlink(target.to_string_lossy().into_owned()));
        } else if ft.is_dir() {
            out.insert(rel.clone(), Node::Dir);
            walk(&path, &rel, mtimes, out);
        } else if ft.is_file() {
            let mtime = mtimes.then(|| {
                let m = meta.modified().unwrap_or(UNIX_EPOCH);
                let d = m.duration_since(UNIX_EPOCH).unwrap_or_default();
                (
                    i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                    d.subsec_nanos(),
                )
            });
            let bytes = fs::read(&path).unwrap_or_default();
            out.insert(rel, Node::File { bytes, mtime });
        } else {
            out.insert(rel, Node::Other);
        }
    }
}

/// One line per path that differs between the two trees (empty if equal).
pub fn differences(runbox: &Snapshot, gnu: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    for (path, node) in runbox {
        match gnu.get(path) {
            None => lines.push(format!(
                "only in runbox's tree: {path} ({})",
                describe(node)
            )),
            Some(g) if g != node => lines.push(format!(
                "{path}: runbox has {}, GNU has {}",
                describe(node),
                describe(g)
            )),
            Some(_) => {}
        }
    }
    for (path, node) in gnu {
        if !runbox.contains_key(path) {
            lines.push(format!("only in GNU's tree: {path} ({})", describe(node)));
        }
    }
    lines
}

fn describe(node: &Node) -> String {
    match node {
        Node::Dir => "a directory".into(),
        Node::Symlink(t) => format!("a symlink to {t:?}"),
        Node::Other => "a special file".into(),
        Node::File { bytes, mtime } => {
            let text = String::from_utf8_lossy(bytes);
            let shown: String = text.chars().take(120).collect();
            let more = if text.chars().count() > 120 {
                "..."
            } else {
                ""
            };
            let time = match mtime {
                Some((s, n)) => format!(", mtime {s}.{n:09}"),
                None => String::new(),
            };
            format!("a file of {} bytes {shown:?}{more}{time}", bytes.len())
        }
    }
}
