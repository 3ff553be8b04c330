//! The workspace path resolver (`workspace::Workspace`): a fuzzed layout of directories, files
//! and symlinks (relative and absolute targets) and fuzzed paths.
//!
//! Each input builds a fresh temp dir `base/` holding the workspace `base/ws/` and a sibling
//! `base/outside/` (with `MARKER` and `sub/`); entries are created in either, always through a
//! cap-std handle so nothing is created beyond `base/`. Then:
//! - `resolve_dir(query)` either fails with a resolver code or returns a directory whose
//!   device and inode (read from the returned handle) are one of the workspace's own
//!   directories, and whose `relative` names that same directory;
//! - `contains_host_path(p)` for a host path `p` under `base/` is true whenever `p`, or the
//!   deepest existing ancestor of a path that does not exist yet, really lies inside the
//!   workspace (what an audit directory there would be writable through).
//!
//! Besides the fuzzed queries and host paths, every entry is checked as named (and a path
//! below it that does not exist yet), so each symlink the layout makes is looked through.
#![no_main]

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use cap_std::fs::MetadataExt as _;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use runbox::error::ErrorCode;
use runbox::workspace::Workspace;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Path components the layout and the queries are made of: few, so they collide often.
const NAMES: &[&str] = &["a", "b", "c", "sub", "ws", "outside", "MARKER"];

#[derive(Debug, Arbitrary)]
enum Part {
    Name(u8),
    Dot,
    DotDot,
}

#[derive(Debug, Arbitrary)]
enum Root {
    Workspace,
    Outside,
}

#[derive(Debug, Arbitrary)]
enum Target {
    /// A relative target: `..`, `.` and names.
    Relative(Vec<Part>),
    /// `base/ws/...`: an absolute path into the workspace.
    IntoWorkspace(Vec<Part>),
    /// `base/outside/...`.
    IntoOutside(Vec<Part>),
    /// `base/...`.
    IntoBase(Vec<Part>),
    /// `/`, `/tmp`, `/proc/self/root`, `/proc/self/cwd`.
    System(u8),
}

#[derive(Debug, Arbitrary)]
enum Kind {
    Dir,
    File,
    Symlink(Target),
}

#[derive(Debug, Arbitrary)]
struct Entry {
    root: Root,
    /// Names only (no `.`/`..`), at most 3 deep.
    path: Vec<u8>,
    kind: Kind,
}

#[derive(Debug, Arbitrary)]
enum Query {
    /// Parts joined with `/`, with optional oddities around them.
    Parts {
        parts: Vec<Part>,
        leading_slash: bool,
        trailing_slash: bool,
        double_slashes: bool,
    },
    /// Any string at all.
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    entries: Vec<Entry>,
    queries: Vec<Query>,
    /// Host paths for `contains_host_path`, under `base/` (or `base/ws`, `base/outside`).
    host_paths: Vec<(u8, Vec<Part>)>,
}

fuzz_target!(|input: Input| {
    if input.entries.len() > 16 || input.queries.len() > 8 || input.host_paths.len() > 8 {
        return;
    }
    // A tmpfs when there is one: a layout per input is most of the cost of a run.
    let tmp = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temp dir");
    let base = std::fs::canonicalize(tmp.path()).expect("canonical temp dir");
    let ws_path = base.join("ws");
    let outside_path = base.join("outside");
    std::fs::create_dir(&ws_path).expect("mkdir ws");
    std::fs::create_dir_all(outside_path.join("sub")).expect("mkdir outside/sub");
    std::fs::write(outside_path.join("MARKER"), "outside").expect("write MARKER");

    let ws_dir = Dir::open_ambient_dir(&ws_path, ambient_authority()).expect("open ws");
    let outside_dir =
        Dir::open_ambient_dir(&outside_path, ambient_authority()).expect("open outside");
    for e in &input.entries {
        build(&base, &ws_dir, &outside_dir, e);
    }

    let inside = directories_beneath(&ws_path);
    let workspace = Workspace::open(&ws_path).expect("open the workspace");

    // The fuzzed queries, and every entry of the layout as it was named.
    let mut queries: Vec<String> = input.queries.iter().map(query_text).collect();
    let mut host_paths = Vec::new();
    for e in &input.entries {
        let path = entry_path(e);
        let root = match e.root {
            Root::Workspace => {
                queries.push(path.display().to_string());
                &ws_path
            }
            Root::Outside => &outside_path,
        };
        host_paths.push(root.join(&path));
        host_paths.push(root.join(&path).join("not-yet"));
    }
    for relative in &queries {
        check_resolve(&workspace, &ws_path, &inside, relative);
    }
    for path in &host_paths {
        check_contains(&workspace, &ws_path, path);
    }
    for (root, parts) in &input.host_paths {
        let start = match root % 3 {
            0 => base.clone(),
            1 => ws_path.clone(),
            _ => outside_path.clone(),
        };
        let path = start.join(join_parts(parts));
        check_contains(&workspace, &ws_path, &path);
    }
});

fn check_resolve(
    workspace: &Workspace,
    ws_path: &Path,
    inside: &HashSet<(u64, u64)>,
    relative: &str,
) {
    match workspace.resolve_dir(relative) {
        Ok(resolved) => {
            let meta = resolved.dir.dir_metadata().expect("metadata of the handle");
            let id = (meta.dev(), meta.ino());
            assert!(
                inside.contains(&id),
                "{relative:?} resolved to a directory outside the workspace ({id:?}), \
                 relative {:?}",
                resolved.relative
            );
            // `relative` names the same directory, without following any symlink.
            let named = ws_path.join(&resolved.relative);
            let named_meta = std::fs::symlink_metadata(&named).expect("relative exists");
            assert_eq!(
                (named_meta.dev(), named_meta.ino()),
                id,
                "{relative:?} resolved as {:?}, which is another directory",
                resolved.relative
            );
            assert!(resolved.guest_path().starts_with('/'));
        }
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::PathOutsideWorkspace
                        | ErrorCode::PathNotFound
                        | ErrorCode::InvalidArgument
                ),
                "{relative:?}: unexpected {e:?}"
            );
        }
    }
}

fn check_contains(workspace: &Workspace, ws_path: &Path, path: &Path) {
    let ws_real = std::fs::canonicalize(ws_path).expect("canonical ws");
    // The deepest ancestor (the path itself included) that exists, as the kernel resolves it.
    let real = path.ancestors().find_map(|a| std::fs::canonicalize(a).ok());
    if let Some(real) = real
        && real.starts_with(&ws_real)
    {
        assert!(
            workspace.contains_host_path(path),
            "{} lies inside the workspace (as {}) but contains_host_path says no",
            path.display(),
            real.display()
        );
    }
}

/// Every directory under `root` (itself included), found without following symlinks.
fn directories_beneath(root: &Path) -> HashSet<(u64, u64)> {
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    seen
}

/// Creates one entry through the cap-std handle of its root, so nothing lands outside it.
fn build(base: &Path, ws: &Dir, outside: &Dir, e: &Entry) {
    let dir = match e.root {
        Root::Workspace => ws,
        Root::Outside => outside,
    };
    let path = entry_path(e);
    if path.as_os_str().is_empty() {
        return;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = dir.create_dir_all(parent);
    }
    let _ = match &e.kind {
        Kind::Dir => dir.create_dir(&path),
        Kind::File => dir.write(&path, b"file"),
        Kind::Symlink(target) => dir.symlink_contents(target_path(base, target), &path),
    };
}

/// An entry's path below its root: names only, at most 3 deep.
fn entry_path(e: &Entry) -> PathBuf {
    e.path.iter().take(3).map(|&i| name(i)).collect()
}

fn target_path(base: &Path, t: &Target) -> PathBuf {
    match t {
        Target::Relative(parts) => {
            let p = join_parts(parts);
            if p.is_empty() { ".".into() } else { p.into() }
        }
        Target::IntoWorkspace(parts) => base.join("ws").join(join_parts(parts)),
        Target::IntoOutside(parts) => base.join("outside").join(join_parts(parts)),
        Target::IntoBase(parts) => base.join(join_parts(parts)),
        Target::System(i) => {
            ["/", "/tmp", "/proc/self/root", "/proc/self/cwd"][usize::from(i % 4)].into()
        }
    }
}

fn name(i: u8) -> &'static str {
    NAMES[usize::from(i) % NAMES.len()]
}

fn part(p: &Part) -> &'static str {
    match p {
        Part::Name(i) => name(*i),
        Part::Dot => ".",
        Part::DotDot => "..",
    }
}

fn join_parts(parts: &[Part]) -> String {
    parts.iter().take(8).map(part).collect::<Vec<_>>().join("/")
}

fn query_text(q: &Query) -> String {
    match q {
        Query::Raw(s) => s.clone(),
        Query::Parts {
            parts,
            leading_slash,
            trailing_slash,
            double_slashes,
        } => {
            let sep = if *double_slashes { "//" } else { "/" };
            let body = parts.iter().take(8).map(part).collect::<Vec<_>>().join(sep);
            format!(
                "{}{body}{}",
                if *leading_slash { "/" } else { "" },
                if *trailing_slash { "/" } else { "" }
            )
        }
    }
}
