//! The bearer token file of `serve --listen` (`name:token` per line, parsed by
//! [`auth`](super::auth)): who may own and read it ([`check_file`]), reading it, and the tokens
//! in force, replaced whole by a reload ([`TokenFile::reload`], on SIGHUP).
//!
//! The file is opened with `O_NONBLOCK` and `O_NOCTTY`, so a FIFO, a device or a terminal put
//! at its path opens at once and is then refused as not a regular file: nothing waits for a
//! writer. It is checked as opened (`fstat`: a regular file with one name, its owner, mode and
//! ACL), so what is checked is what is read. On reload it is also refused when it leads into
//! the workspace (the path's links and the opened file's own path, judged by device and inode):
//! start-up refuses that as one of runbox's own paths, and the file may have been replaced
//! since. A token never reaches an error message; only line numbers do.

use super::auth::Tokens;
use crate::workspace::Workspace;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// Largest token file read.
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Why the token file cannot be used (start is refused).
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// It could not be opened or read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Others could read or change it, or it is not a plain file of runbox's user or root.
    #[error(
        "the token file {path} {problem}; it must be a regular file owned by runbox's user (uid {uid}) or root, writable by its owner only, with no access for others, and readable by its group only when that is a group of runbox's ({groups}): chmod 600 FILE and chown {uid} FILE, or in Kubernetes a Secret volume with defaultMode 0400 and the pod's fsGroup"
    )]
    Unsafe {
        /// The file (as named; symbolic links are followed to the file checked).
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// runbox's effective uid.
        uid: u32,
        /// runbox's effective gid and supplementary groups, as text.
        groups: String,
    },
    /// The file opened leads into the workspace (checked on reload; start-up refuses it as one
    /// of runbox's own paths).
    #[error(
        "the token file {path} now leads into the workspace ({real}), where commands could read the tokens or write one of their own; keep the token file outside the workspace"
    )]
    InsideWorkspace {
        /// The file, as configured.
        path: PathBuf,
        /// Where it led when opened.
        real: PathBuf,
    },
    /// A line is not `name:token` as required.
    #[error("the token file {path}, line {line}: {problem}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The 1-based line number (the line itself is never shown: it may hold a token).
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// Who runbox is, for [`check_file`]: its effective uid, and its effective gid with its
/// supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid first, then the supplementary groups.
    pub groups: Vec<u32>,
}

impl Identity {
    /// This process's.
    pub fn current() -> Self {
        let egid = nix::unistd::getegid().as_raw();
        let mut groups = vec![egid];
        if let Ok(more) = nix::unistd::getgroups() {
            groups.extend(more.into_iter().map(|g| g.as_raw()).filter(|g| *g != egid));
        }
        Self {
            uid: nix::unistd::geteuid().as_raw(),
            groups,
        }
    }

    fn groups_text(&self) -> String {
        let all: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        format!("gid {}", all.join(", "))
    }
}

/// What [`check_file`] judges a token file by: its `fstat` and whether it has an ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    /// A regular file.
    pub is_file: bool,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits (`st_mode & 07777`).
    pub mode: u32,
    /// Size in bytes.
    pub len: u64,
    /// Hard links to it (names it has).
    pub links: u64,
    /// It carries a POSIX access ACL.
    pub acl: bool,
}

/// What is wrong with a token file's owner and mode for `me`, if anything. The rule: a regular
/// file; owned by runbox's user or by root (runbox's user then writes it only through group or
/// other bits, which are refused); no write for group or others; nothing for others; group
/// read only (never write or execute), and only when the file's group is runbox's effective gid
/// or one of its supplementary groups. That is a `chmod 600` file of runbox's, and the file a
/// Kubernetes Secret volume makes (root-owned, group fsGroup, mode 0440 from defaultMode 0400).
/// A file with a POSIX access ACL is refused: its group bits are then the ACL's mask, not the
/// group's access. A file with more than one name (hard links) is refused: another name of it
/// may be somewhere a command can reach, such as the workspace.
pub fn check_file(f: &FileFacts, me: &Identity) -> Option<String> {
    let mode = f.mode & 0o7777;
    if !f.is_file {
        Some("is not a regular file".to_owned())
    } else if f.links > 1 {
        Some(format!(
            "has {} names (hard links); a token file has one, so that no other name of it can be read or changed",
            f.links
        ))
    } else if f.uid != me.uid && f.uid != 0 {
        Some(format!("is owned by uid {}", f.uid))
    } else if mode & 0o7000 != 0 {
        Some(format!("has mode {mode:04o} (setuid, setgid or sticky)"))
    } else if mode & 0o022 != 0 {
        Some(format!(
            "has mode {mode:04o}: others than its owner can change it"
        ))
    } else if mode & 0o007 != 0 {
        Some(format!("has mode {mode:04o}: anyone can use it"))
    } else if mode & 0o010 != 0 {
        Some(format!("has mode {mode:04o}: its group can execute it"))
    } else if mode & 0o040 != 0 && !me.groups.contains(&f.gid) {
        Some(format!(
            "has mode {mode:04o} and group {}, not one of runbox's: that group's members can read it",
            f.gid
        ))
    } else if f.acl {
        Some("has a POSIX ACL (getfacl shows it): remove it (setfacl -b FILE)".to_owned())
    } else if f.len > MAX_FILE_BYTES {
        Some(format!("is over {MAX_FILE_BYTES} bytes"))
    } else {
        None
    }
}

/// Whether the open file carries a POSIX access ACL.
fn has_access_acl(file: &File) -> std::io::Result<bool> {
    let mut none = [0u8; 0];
    match rustix::fs::fgetxattr(file, "system.posix_acl_access", &mut none) {
        Ok(_) => Ok(true),
        Err(e) if e == rustix::io::Errno::RANGE => Ok(true),
        Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::OPNOTSUPP => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Opens `path` for reading without ever waiting (see the module docs), following symbolic
/// links (a Secret volume's `..data/` ones) to the file.
fn open_without_waiting(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Reads the tokens of `path`, checked as opened ([`check_file`]); with `workspace`, a file
/// leading into it is refused too.
pub fn read_tokens(path: &Path, workspace: Option<&Workspace>) -> Result<Tokens, TokenFileError> {
    let read_err = |source| TokenFileError::Read {
        path: path.to_owned(),
        source,
    };
    let inside = |real: PathBuf| TokenFileError::InsideWorkspace {
        path: path.to_owned(),
        real,
    };
    if let Some(ws) = workspace
        && ws.contains_host_path(path)
    {
        return Err(inside(path.to_owned()));
    }
    let file = open_without_waiting(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let facts = FileFacts {
        is_file: meta.is_file(),
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode(),
        len: meta.len(),
        links: meta.nlink(),
        acl: meta.is_file() && has_access_acl(&file).map_err(read_err)?,
    };
    let me = Identity::current();
    if let Some(problem) = check_file(&facts, &me) {
        return Err(TokenFileError::Unsafe {
            path: path.to_owned(),
            problem,
            uid: me.uid,
            groups: me.groups_text(),
        });
    }
    if let Some(ws) = workspace {
        // Where the opened file is, whatever the path did between the check above and the open.
        let real =
            std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(read_err)?;
        if ws.contains_host_path(&real) {
            return Err(inside(real));
        }
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    Tokens::parse(&text).map_err(|(line, problem)| TokenFileError::Format {
        path: path.to_owned(),
        line,
        problem,
    })
}

/// The token file as loaded, reloadable: readers take the tokens in force ([`TokenFile::current`])
/// while [`TokenFile::reload`] swaps in a new set whole, or keeps the old one; whoever must act
/// on a change (closing the sessions of removed tokens) watches it ([`TokenFile::watch`]).
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    current: watch::Sender<Arc<Tokens>>,
}

impl TokenFile {
    /// Loads `path` ([`read_tokens`]; start-up checks the workspace itself).
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        Ok(Self {
            path: path.to_owned(),
            current: watch::Sender::new(Arc::new(read_tokens(path, None)?)),
        })
    }

    /// The file's path, as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tokens in force.
    pub fn current(&self) -> Arc<Tokens> {
        Arc::clone(&self.current.borrow())
    }

    /// A receiver told each time new tokens are in force.
    pub fn watch(&self) -> watch::Receiver<Arc<Tokens>> {
        self.current.subscribe()
    }

    /// Reads and checks the file again (refusing one that leads into `workspace`); on success
    /// the new tokens replace the old ones at once (a request checks against one set or the
    /// other, never a mix) and are returned. On failure the tokens in force stay.
    pub fn reload(&self, workspace: Option<&Workspace>) -> Result<Arc<Tokens>, TokenFileError> {
        let fresh = Arc::new(read_tokens(&self.path, workspace)?);
        self.current.send_replace(Arc::clone(&fresh));
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# team\nalice:aaaaaaaaaaaaaaaa1\n\nbob:bbbbbbbbbbbbbbbb2\n";

    fn facts(uid: u32, gid: u32, mode: u32) -> FileFacts {
        FileFacts {
            is_file: true,
            uid,
            gid,
            mode,
            len: 100,
            links: 1,
            acl: false,
        }
    }

    #[test]
    fn the_owner_and_mode_rule_takes_runboxs_files_and_kubernetes_secrets_only() {
        // runbox as uid 10001, gid 10002, in group 10001 (the pod's fsGroup).
        let me = Identity {
            uid: 10001,
            groups: vec![10002, 10001],
        };
        for (uid, gid, mode) in [
            (10001, 10002, 0o600),
            (10001, 10002, 0o400),
            (10001, 10002, 0o640),
            (10001, 10001, 0o440),
            (0, 10001, 0o440), // a Secret volume: defaultMode 0400 + fsGroup
            (0, 10001, 0o400),
            (0, 0, 0o600), // root's own file: runbox reads it only if it is root
            (0, 10002, 0o640),
        ] {
            assert_eq!(
                check_file(&facts(uid, gid, mode), &me),
                None,
                "{uid}:{gid} {mode:o}"
            );
        }
        for (uid, gid, mode, why) in [
            (10003, 10001, 0o400, "owned by uid 10003"),
            (10001, 10002, 0o644, "anyone can use it"),
            (10001, 10002, 0o604, "anyone can use it"),
            (10001, 10002, 0o601, "anyone can use it"),
            (10001, 10002, 0o620, "can change it"),
            (0, 10001, 0o460, "can change it"),
            (0, 10001, 0o442, "can change it"),
            (0, 10001, 0o450, "execute"),
            (0, 12345, 0o440, "group 12345, not one of runbox's"),
            (10001, 0, 0o640, "group 0, not one of runbox's"),
            (10001, 10002, 0o4600, "setuid"),
        ] {
            let problem = check_file(&facts(uid, gid, mode), &me)
                .unwrap_or_else(|| panic!("{uid}:{gid} {mode:o} accepted"));
            assert!(problem.contains(why), "{uid}:{gid} {mode:o}: {problem}");
        }
        let mut dir = facts(10001, 10002, 0o600);
        dir.is_file = false;
        assert!(
            check_file(&dir, &me)
                .unwrap()
                .contains("not a regular file")
        );
        let mut acl = facts(0, 10001, 0o440);
        acl.acl = true;
        assert!(check_file(&acl, &me).unwrap().contains("ACL"));
        let mut big = facts(10001, 10002, 0o600);
        big.len = MAX_FILE_BYTES + 1;
        assert!(check_file(&big, &me).unwrap().contains("over"));
    }

    /// A Secret volume's layout: `tokens -> ..data/tokens`, `..data -> ..TIMESTAMP`, and the
    /// file itself in `..TIMESTAMP/`.
    fn secret_volume(dir: &Path, stamp: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let data = dir.join(stamp);
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("tokens"), text).unwrap();
        std::fs::set_permissions(data.join("tokens"), std::fs::Permissions::from_mode(mode))
            .unwrap();
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(stamp, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
        let link = dir.join("tokens");
        if !link.exists() {
            std::os::unix::fs::symlink("..data/tokens", &link).unwrap();
        }
        link
    }

    #[test]
    fn a_file_is_checked_through_its_symlinks_and_others_reading_it_is_refused() {
        let me = Identity::current();
        let dir = tempfile::tempdir().unwrap();
        let path = secret_volume(dir.path(), "..2026_01_01", FILE, 0o644);
        let e = read_tokens(&path, None).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        let path = secret_volume(dir.path(), "..2026_01_02", FILE, 0o440);
        assert_eq!(
            read_tokens(&path, None).unwrap().len(),
            2,
            "group of runbox's"
        );
        // The final file's group decides, not the link's.
        let foreign = (1..60_000).find(|g| !me.groups.contains(g)).unwrap();
        let file = dir.path().join("..2026_01_02/tokens");
        if std::os::unix::fs::chown(&file, None, Some(foreign)).is_ok() {
            let e = read_tokens(&path, None).unwrap_err().to_string();
            assert!(e.contains(&format!("group {foreign}")), "{e}");
        }
        let path = secret_volume(dir.path(), "..2026_01_03", FILE, 0o400);
        assert!(read_tokens(&path, None).is_ok(), "stricter is fine");
    }

    #[test]
    fn a_reload_swaps_the_tokens_whole_or_keeps_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_volume(dir.path(), "..1", FILE, 0o400);
        let file = TokenFile::load(&path).unwrap();
        let before = file.current();
        assert!(before.check(b"aaaaaaaaaaaaaaaa1").is_some());
        secret_volume(dir.path(), "..2", "carol:cccccccccccccccc3\n", 0o400);
        let after = file.reload(None).unwrap();
        assert_eq!(after.names().collect::<Vec<_>>(), ["carol"]);
        assert!(file.current().check(b"aaaaaaaaaaaaaaaa1").is_none());
        assert!(file.current().check(b"cccccccccccccccc3").is_some());
        assert!(
            before.check(b"aaaaaaaaaaaaaaaa1").is_some(),
            "a taken set is unchanged"
        );
        for (stamp, text, mode) in [
            ("..3", "carol:cccccccccccccccc3\n", 0o444),
            ("..4", "carol:short\n", 0o400),
        ] {
            secret_volume(dir.path(), stamp, text, mode);
            assert!(file.reload(None).is_err(), "{stamp}");
            assert!(
                file.current().check(b"cccccccccccccccc3").is_some(),
                "{stamp}: the old tokens stay"
            );
        }
    }

    fn private_file(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Review of the reload: a FIFO at the token file's path made the open wait for a writer,
    /// and the server with it.
    #[test]
    fn a_fifo_at_the_path_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reading = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(
                read_tokens(&reading, None)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO waited");
        let e = got.unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    /// Review of the reload: a hard link of the token file in the workspace is the file.
    #[test]
    fn a_file_with_a_second_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        private_file(&path, FILE);
        assert!(read_tokens(&path, None).is_ok());
        std::fs::hard_link(&path, dir.path().join("other")).unwrap();
        let e = read_tokens(&path, None).unwrap_err().to_string();
        assert!(e.contains("2 names (hard links)"), "{e}");
    }

    /// Review of the reload: start-up refused a token file leading into the workspace, a
    /// reload took it, and token holders could then read or add tokens.
    #[test]
    fn a_reload_refuses_a_file_that_now_leads_into_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws_dir = dir.path().join("ws");
        std::fs::create_dir(&ws_dir).unwrap();
        let ws = Workspace::open(&ws_dir).unwrap();
        let outside = dir.path().join("real");
        private_file(&outside, FILE);
        let path = dir.path().join("tokens");
        std::os::unix::fs::symlink(&outside, &path).unwrap();
        let file = TokenFile::load(&path).unwrap();
        assert!(file.reload(Some(&ws)).is_ok(), "outside is fine");
        // The link now leads to a file in the workspace.
        let planted = ws_dir.join("planted");
        private_file(&planted, "mallory:mmmmmmmmmmmmmmmm1\n");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&planted, &path).unwrap();
        let e = file.reload(Some(&ws)).unwrap_err();
        assert!(matches!(e, TokenFileError::InsideWorkspace { .. }), "{e}");
        assert!(e.to_string().contains("outside the workspace"), "{e}");
        // Or through a directory link: tokens -> d/tokens, d -> the workspace.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&ws_dir, dir.path().join("d")).unwrap();
        std::fs::rename(&planted, ws_dir.join("tokens")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("d/tokens"), &path).unwrap();
        assert!(matches!(
            file.reload(Some(&ws)),
            Err(TokenFileError::InsideWorkspace { .. })
        ));
        assert!(
            file.current().check(b"aaaaaaaaaaaaaaaa1").is_some(),
            "old tokens stay"
        );
        assert!(file.current().check(b"mmmmmmmmmmmmmmmm1").is_none());
    }
}
