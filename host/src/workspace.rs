//! The workspace: the one directory commands may touch, held as a capability.
//!
//! [`Workspace::open`] is the only place runbox opens the workspace with ambient authority. After
//! that every path the host resolves goes through the held [`cap_std::fs::Dir`], which uses
//! `openat2(RESOLVE_BENEATH)` (or an equivalent step-by-step walk) so that `..`, absolute paths
//! and symlinks leading outside fail by construction — there is no string-prefix check anywhere.
//! WASI guests get the same directory as their only preopen, via the held handle.

use crate::error::{ErrorCode, RunError};
use cap_std::fs::Dir;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Longest `cwd` (in bytes) a request may name; longer ones are refused before any lookup.
pub const MAX_RELATIVE_PATH_BYTES: usize = 4096;

/// The workspace root, opened once. Runners take `&Workspace`, never a `PathBuf`.
#[derive(Debug)]
pub struct Workspace {
    root: Dir,
    host_path: PathBuf,
    dev: u64,
    ino: u64,
}

/// A directory inside the workspace, resolved and opened.
#[derive(Debug)]
pub struct WorkspaceDir {
    /// The open directory.
    pub dir: Dir,
    /// Its path relative to the workspace root, `/`-separated, empty for the root itself.
    pub relative: String,
}

impl WorkspaceDir {
    /// The directory as a WASI guest sees it (the workspace is the guest's `/`).
    pub fn guest_path(&self) -> String {
        format!("/{}", self.relative)
    }
}

/// Why the workspace could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The path could not be opened as a directory.
    #[error("cannot open workspace {path}: {source}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl Workspace {
    /// Opens `path` as the workspace. This is the single ambient-authority open of the workspace.
    pub fn open(path: &Path) -> Result<Self, WorkspaceError> {
        let err = |source| WorkspaceError::Open {
            path: path.to_owned(),
            source,
        };
        let host_path = std::fs::canonicalize(path).map_err(err)?;
        let root = Dir::open_ambient_dir(&host_path, cap_std::ambient_authority()).map_err(err)?;
        let meta = std::fs::metadata(format!("/proc/self/fd/{}", root.as_raw_fd())).map_err(err)?;
        Ok(Self {
            root,
            host_path,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The canonical host path of the workspace, for logs and configuration checks only — never
    /// used to open anything a request names.
    pub fn host_path(&self) -> &Path {
        &self.host_path
    }

    /// The root directory handle.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// A path that opens exactly the held root directory (`/proc/self/fd/N`), so a preopen or
    /// a child's cwd names the same inode even if the original path was renamed since start.
    pub fn handle_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.root.as_raw_fd()))
    }

    /// Resolves a request's relative directory (`""` or `"."` is the root) beneath the workspace.
    ///
    /// # Errors
    /// `INVALID_ARGUMENT` for NUL bytes or an over-long path; `PATH_OUTSIDE_WORKSPACE` for an
    /// absolute path or one that leaves the workspace through `..` or a symlink;
    /// `PATH_NOT_FOUND` when it does not exist or is not a directory.
    pub fn resolve_dir(&self, relative: &str) -> Result<WorkspaceDir, RunError> {
        check_relative(relative)?;
        if relative.is_empty() || relative == "." {
            // The root itself (most calls): a duplicate of the held handle, no lookup.
            let dir = self
                .root
                .try_clone()
                .map_err(|e| classify_open_error(relative, &e))?;
            return Ok(WorkspaceDir {
                dir,
                relative: String::new(),
            });
        }
        let dir = self
            .root
            .open_dir(relative)
            .map_err(|e| classify_open_error(relative, &e))?;
        let relative = self.relative_of(&dir).unwrap_or_else(|| lexical(relative));
        Ok(WorkspaceDir { dir, relative })
    }

    /// Whether `path` (which need not exist yet) is the workspace or lies inside it, judged by
    /// device and inode of each existing ancestor — immune to symlinks and differently spelled
    /// paths. Used to refuse an audit directory or policy file placed where commands can edit it.
    ///
    /// Both the path as spelled and where it really leads are checked: the path with every
    /// symlink along it resolved, dangling ones included (a link elsewhere to a directory below
    /// the root leads inside even though no ancestor of the link itself is the root, and a link
    /// to a directory a command has yet to create leads inside once it does).
    pub fn contains_host_path(&self, path: &Path) -> bool {
        let resolved = path.ancestors().find_map(|a| std::fs::canonicalize(a).ok());
        self.is_ancestor_of(path)
            || resolved.is_some_and(|r| self.is_ancestor_of(&r))
            || follow_links(path).is_some_and(|(end, links)| {
                self.is_ancestor_of(&end) || links.iter().any(|l| self.is_ancestor_of(l))
            })
    }

    /// Whether the workspace is the directory `dir` or lies inside it, judged by device and
    /// inode of `dir` (following symlinks) against the workspace's real ancestors. A `dir`
    /// that does not exist holds nothing.
    pub fn lies_inside(&self, dir: &Path) -> bool {
        let Ok(target) = std::fs::metadata(dir) else {
            return false;
        };
        self.host_path.ancestors().any(|a| {
            std::fs::metadata(a).is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
    }

    /// Whether the root is `path` or one of its ancestors, each compared by device and inode.
    fn is_ancestor_of(&self, path: &Path) -> bool {
        let mut current = Some(path);
        while let Some(p) = current {
            if let Ok(meta) = std::fs::metadata(p)
                && meta.dev() == self.dev
                && meta.ino() == self.ino
            {
                return true;
            }
            current = p.parent();
        }
        false
    }

    /// The path of an opened directory relative to the root, as the kernel reports it.
    fn relative_of(&self, dir: &Dir) -> Option<String> {
        let full = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
        let rel = full.strip_prefix(&self.host_path).ok()?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_str().map(str::to_owned))
            .collect::<Option<_>>()?;
        Some(parts.join("/"))
    }
}

/// Refuses what must never reach a lookup: NUL bytes, over-long paths, absolute paths.
fn check_relative(relative: &str) -> Result<(), RunError> {
    if relative.contains('\0') {
        return Err(RunError::invalid("cwd contains a NUL byte"));
    }
    if relative.len() > MAX_RELATIVE_PATH_BYTES {
        return Err(RunError::invalid(format!(
            "cwd is {} bytes long; the limit is {MAX_RELATIVE_PATH_BYTES}",
            relative.len()
        )));
    }
    if Path::new(relative).has_root() {
        return Err(RunError::new(
            ErrorCode::PathOutsideWorkspace,
            format!("cwd {relative:?} is absolute"),
        )
        .with_hint("give cwd relative to the workspace root, e.g. \"src\""));
    }
    // Only for a clearer answer: a path whose `..`s climb above the root is reported as outside
    // even when an intermediate directory is missing. Confinement itself is the kernel's job.
    let mut depth: i64 = 0;
    for c in Path::new(relative).components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(RunError::new(
                ErrorCode::PathOutsideWorkspace,
                format!("cwd {relative:?} climbs above the workspace root"),
            )
            .with_hint("use a directory inside the workspace"));
        }
    }
    Ok(())
}

/// Maps an `open_dir` failure to a code. cap-std reports an escape as `PermissionDenied`
/// without an OS errno; a real `EACCES` carries one.
fn classify_open_error(relative: &str, e: &io::Error) -> RunError {
    match e.kind() {
        io::ErrorKind::PermissionDenied if e.raw_os_error().is_none() => RunError::new(
            ErrorCode::PathOutsideWorkspace,
            format!("cwd {relative:?} leads outside the workspace"),
        )
        .with_hint("use a directory inside the workspace; symlinks may not lead out of it"),
        io::ErrorKind::NotFound => RunError::new(
            ErrorCode::PathNotFound,
            format!("cwd {relative:?} does not exist in the workspace"),
        ),
        _ if e.raw_os_error() == Some(libc::ENOTDIR) => RunError::new(
            ErrorCode::PathNotFound,
            format!("cwd {relative:?} is not a directory"),
        ),
        _ if e.raw_os_error() == Some(libc::ELOOP) => RunError::new(
            ErrorCode::PathOutsideWorkspace,
            format!("cwd {relative:?} has too many levels of symlinks"),
        ),
        _ => RunError::new(
            ErrorCode::PathNotFound,
            format!("cwd {relative:?} cannot be opened: {e}"),
        ),
    }
}

/// A lexical `/`-joined form, used only if the kernel cannot name the opened directory.
fn lexical(relative: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(relative).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().unwrap_or("?")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

/// Most symlinks [`follow_links`] resolves before giving up (the kernel's own limit).
const MAX_LINK_HOPS: usize = 40;

/// `path` made absolute with every symlink along it resolved, also where a link's target does
/// not exist yet (components that do not exist are kept as spelled), and where each link it
/// passed through lies (a link inside the workspace can be retargeted by a command, whatever it
/// points at now); `None` for a link loop or a relative path when the current directory is
/// unknown. Reads links only: creates nothing.
fn follow_links(path: &Path) -> Option<(PathBuf, Vec<PathBuf>)> {
    let start = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut out = PathBuf::from("/");
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut todo, &start);
    let mut links = Vec::new();
    while let Some(name) = todo.pop() {
        if name == ".." {
            out.pop();
            continue;
        }
        out.push(&name);
        if let Ok(target) = std::fs::read_link(&out) {
            if links.len() >= MAX_LINK_HOPS {
                return None;
            }
            links.push(out.clone());
            out.pop();
            if target.is_absolute() {
                out = PathBuf::from("/");
            }
            push_components(&mut todo, &target);
        }
    }
    Some((out, links))
}

/// Pushes the names of `path` (`..` kept, `.` and the root dropped) so the first pops first.
fn push_components(todo: &mut Vec<std::ffi::OsString>, path: &Path) {
    let names = path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    });
    let mut names: Vec<_> = names.collect();
    names.reverse();
    todo.extend(names);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Workspace, PathBuf) {
        let base = tempfile::tempdir().unwrap();
        let ws = base.path().join("ws");
        std::fs::create_dir_all(ws.join("sub/deep")).unwrap();
        std::fs::create_dir_all(base.path().join("ws-evil")).unwrap();
        std::fs::write(base.path().join("outside"), "secret").unwrap();
        symlink("/etc", ws.join("abs-link")).unwrap();
        symlink("../ws-evil", ws.join("rel-link")).unwrap();
        symlink("sub/deep", ws.join("inside-link")).unwrap();
        symlink("nowhere", ws.join("dangling")).unwrap();
        std::fs::write(ws.join("file"), "x").unwrap();
        let w = Workspace::open(&ws).unwrap();
        (base, w, ws)
    }

    #[test]
    fn resolves_inside_paths() {
        let (_b, w, _) = setup();
        assert_eq!(w.resolve_dir("").unwrap().relative, "");
        assert_eq!(w.resolve_dir(".").unwrap().relative, "");
        assert_eq!(w.resolve_dir("sub/deep").unwrap().relative, "sub/deep");
        assert_eq!(w.resolve_dir("sub/../sub").unwrap().relative, "sub");
        assert_eq!(w.resolve_dir("inside-link").unwrap().relative, "sub/deep");
        assert_eq!(w.resolve_dir("sub/deep").unwrap().guest_path(), "/sub/deep");
    }

    #[test]
    fn refuses_escapes() {
        let (_b, w, _) = setup();
        for bad in [
            "..",
            "../",
            "sub/../../ws-evil",
            "abs-link",
            "rel-link",
            "/etc",
            "/",
        ] {
            let e = w.resolve_dir(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::PathOutsideWorkspace, "{bad}: {e}");
        }
    }

    #[test]
    fn missing_and_non_directories_are_not_found() {
        let (_b, w, _) = setup();
        assert_eq!(
            w.resolve_dir("nope").unwrap_err().code,
            ErrorCode::PathNotFound
        );
        assert_eq!(
            w.resolve_dir("file").unwrap_err().code,
            ErrorCode::PathNotFound
        );
        assert_eq!(
            w.resolve_dir("dangling").unwrap_err().code,
            ErrorCode::PathNotFound
        );
    }

    #[test]
    fn bad_strings_are_invalid() {
        let (_b, w, _) = setup();
        assert_eq!(
            w.resolve_dir("a\0b").unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let long = "a/".repeat(3000);
        assert_eq!(
            w.resolve_dir(&long).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn containment_uses_inodes_not_strings() {
        let (base, w, ws) = setup();
        assert!(w.contains_host_path(&ws));
        assert!(w.contains_host_path(&ws.join("sub/not-yet/audit")));
        assert!(!w.contains_host_path(&base.path().join("ws-evil")));
        assert!(!w.contains_host_path(&base.path().join("ws-evil/audit")));
        // A symlink elsewhere that points into the workspace is still inside.
        symlink(&ws, base.path().join("alias")).unwrap();
        assert!(w.contains_host_path(&base.path().join("alias/audit")));
    }

    /// Found by the `workspace` fuzz target: a symlink elsewhere pointing at a directory *below*
    /// the root (not the root itself) hid that its target lies inside the workspace, so an audit
    /// directory named through it was accepted although commands can write there.
    #[test]
    fn containment_follows_symlinks_to_directories_below_the_root() {
        let (base, w, ws) = setup();
        symlink(ws.join("sub"), base.path().join("alias-sub")).unwrap();
        symlink("ws/sub/deep", base.path().join("rel-alias")).unwrap();
        assert!(w.contains_host_path(&base.path().join("alias-sub")));
        assert!(w.contains_host_path(&base.path().join("alias-sub/audit")));
        assert!(w.contains_host_path(&base.path().join("alias-sub/not-yet/audit")));
        assert!(w.contains_host_path(&base.path().join("rel-alias")));
        assert!(!w.contains_host_path(&base.path().join("ws-evil/audit")));
    }

    #[test]
    fn a_dangling_link_into_the_workspace_counts_as_inside() {
        let (base, w, _ws) = setup();
        // Links outside to what a command has yet to create in the workspace.
        symlink(base.path().join("ws/later"), base.path().join("abs")).unwrap();
        symlink("ws/later/deeper", base.path().join("rel")).unwrap();
        assert!(w.contains_host_path(&base.path().join("abs")));
        assert!(w.contains_host_path(&base.path().join("abs/runbox/tmp")));
        assert!(w.contains_host_path(&base.path().join("rel/x")));
        // Dangling links elsewhere, `..` back out, and loops stay outside.
        symlink(base.path().join("nowhere"), base.path().join("out")).unwrap();
        assert!(!w.contains_host_path(&base.path().join("out/x")));
        assert!(!w.contains_host_path(&base.path().join("abs/../../elsewhere")));
        symlink(base.path().join("loop"), base.path().join("loop")).unwrap();
        assert!(!w.contains_host_path(&base.path().join("loop/x")));
        // Leading outside now, but through a link in the workspace a command can retarget.
        symlink(base.path().join("ws-evil"), base.path().join("ws/relay")).unwrap();
        symlink(base.path().join("ws/relay"), base.path().join("via")).unwrap();
        assert!(w.contains_host_path(&base.path().join("via/tmp")));
    }

    #[test]
    fn lying_inside_a_directory_uses_inodes() {
        let (base, w, ws) = setup();
        assert!(w.lies_inside(&ws));
        assert!(w.lies_inside(base.path()));
        assert!(!w.lies_inside(&ws.join("sub")));
        assert!(!w.lies_inside(&base.path().join("ws-evil")));
        assert!(!w.lies_inside(&base.path().join("missing")));
        symlink(base.path(), base.path().join("ws-evil/up")).unwrap();
        assert!(w.lies_inside(&base.path().join("ws-evil/up")));
    }

    #[test]
    fn handle_path_names_the_root() {
        let (_b, w, ws) = setup();
        let via_handle = std::fs::canonicalize(w.handle_path()).unwrap();
        assert_eq!(via_handle, std::fs::canonicalize(ws).unwrap());
    }
}
