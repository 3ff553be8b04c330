//! Whether the sandbox uid can use the workspace, checked at start from permission bits (the
//! refusal names the directory and the fix). Reads metadata only; it never changes permissions.

use crate::native::spawn::Identity;
use std::path::{Path, PathBuf};

/// Why the sandbox uid cannot use the workspace.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkspaceAccessError {
    /// The workspace or one of its parents could not be examined.
    #[error("{}: {message}", path.display())]
    Stat {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// The root lacks read + search (and write, for writing commands) for the uid.
    #[error(
        "uid {uid} cannot {} the workspace {} (owner {owner}:{group}, mode {mode:o})",
        if *write { "write" } else { "read" },
        path.display()
    )]
    Root {
        /// The sandbox uid.
        uid: u32,
        /// Whether write access was asked for.
        write: bool,
        /// The workspace.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its group.
        group: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// A parent is not searchable for the uid.
    #[error(
        "uid {uid} cannot reach the workspace: {} (owner {owner}:{group}, mode {mode:o}) is not searchable",
        path.display()
    )]
    Parent {
        /// The sandbox uid.
        uid: u32,
        /// The parent directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its group.
        group: u32,
        /// Its permission bits.
        mode: u32,
    },
}

/// Whether `who` may use the workspace: search on every ancestor (commands such as git resolve
/// absolute paths), and read + search (plus write, for writing commands) on the root itself.
/// Only the root directory is checked, not every file beneath it. `Keep` identities are
/// runbox's own and always pass.
pub fn workspace_access(
    root: &Path,
    identity: Identity,
    write: bool,
) -> Result<(), WorkspaceAccessError> {
    use std::os::unix::fs::MetadataExt;
    let Identity::Drop { uid, gid } = identity else {
        return Ok(());
    };
    let stat = |path: &Path| {
        std::fs::metadata(path).map_err(|e| WorkspaceAccessError::Stat {
            path: path.to_owned(),
            message: e.to_string(),
        })
    };
    let want = if write { 0o7 } else { 0o5 };
    let meta = stat(root)?;
    if !permits(meta.mode(), meta.uid(), meta.gid(), uid, gid, want) {
        return Err(WorkspaceAccessError::Root {
            uid,
            write,
            path: root.to_owned(),
            owner: meta.uid(),
            group: meta.gid(),
            mode: meta.mode() & 0o7777,
        });
    }
    for dir in root.ancestors().skip(1) {
        let meta = stat(dir)?;
        if !permits(meta.mode(), meta.uid(), meta.gid(), uid, gid, 0o1) {
            return Err(WorkspaceAccessError::Parent {
                uid,
                path: dir.to_owned(),
                owner: meta.uid(),
                group: meta.gid(),
                mode: meta.mode() & 0o7777,
            });
        }
    }
    Ok(())
}

/// Classic owner/group/other permission check for a user without supplementary groups or
/// capabilities; `want` is an `rwx` triple (e.g. `0o5` for read + search).
pub fn permits(mode: u32, owner: u32, group: u32, uid: u32, gid: u32, want: u32) -> bool {
    let bits = if uid == owner {
        mode >> 6
    } else if gid == group {
        mode >> 3
    } else {
        mode
    } & 0o7;
    bits & want == want
}
