//! Bearer tokens for `serve --listen`: the token file (`name:token` per line; who may own and
//! read it: [`check_file`]), its reload on SIGHUP ([`TokenFile::reload`]), the constant-time
//! check of `Authorization: Bearer`, the 401 answer with `WWW-Authenticate` (RFC 6750, RFC
//! 9728's `resource_metadata`) and the protected-resource metadata document.
//!
//! Only sha256 digests of the tokens are kept after loading, and a presented token is compared
//! with every one of them (subtle's constant-time equality, no early exit), so neither timing
//! nor memory tells which part of a token was right. A token never reaches a log, an audit
//! record or an error message; only its name does.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use subtle::{Choice, ConstantTimeEq};

/// Largest token file read.
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Most tokens in a file.
const MAX_TOKENS: usize = 1024;
/// Shortest token accepted (bytes): guessing must stay hopeless.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest token and name accepted.
const MAX_TOKEN_BYTES: usize = 512;
const MAX_NAME_BYTES: usize = 64;

/// The name of the token a request presented; put in the request's extensions for the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(pub Arc<str>);

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

/// The tokens, by name, as digests.
#[derive(Debug)]
pub struct Tokens {
    entries: Vec<(Arc<str>, [u8; 32])>,
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
/// group's access.
pub fn check_file(f: &FileFacts, me: &Identity) -> Option<String> {
    let mode = f.mode & 0o7777;
    if !f.is_file {
        Some("is not a regular file".to_owned())
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

impl Tokens {
    /// Reads `path`, following symbolic links (a Secret volume's `..data/` ones) to the file,
    /// which is checked as opened ([`check_file`]), so what is checked is what is read.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let read_err = |source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        let facts = FileFacts {
            is_file: meta.is_file(),
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode(),
            len: meta.len(),
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
        let mut text = String::new();
        file.take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        Self::parse(&text).map_err(|(line, problem)| TokenFileError::Format {
            path: path.to_owned(),
            line,
            problem,
        })
    }

    /// Parses `name:token` lines; blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut entries: Vec<(Arc<str>, [u8; 32])> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |m: &str| Err((n + 1, m.to_owned()));
            let Some((name, token)) = line.split_once(':') else {
                return fail("expected name:token");
            };
            if name.is_empty()
                || name.len() > MAX_NAME_BYTES
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
            {
                return fail("a name is 1-64 of A-Z a-z 0-9 . _ - @");
            }
            if token.len() < MIN_TOKEN_BYTES || token.len() > MAX_TOKEN_BYTES {
                return fail("a token is 16 to 512 bytes");
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return fail("a token is visible ASCII without spaces");
            }
            let digest = crate::wasi::cache::sha256(token.as_bytes());
            if entries.iter().any(|(other, _)| other.as_ref() == name) {
                return fail("this name is used twice");
            }
            if entries.iter().any(|(_, d)| *d == digest) {
                return fail("this token is used twice");
            }
            if entries.len() == MAX_TOKENS {
                return fail("more than 1024 tokens");
            }
            entries.push((Arc::from(name), digest));
        }
        if entries.is_empty() {
            return Err((0, "no name:token line".to_owned()));
        }
        Ok(Self { entries })
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The tokens' names, in file order (never the tokens).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_ref())
    }

    /// Whether there are none (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of the token `presented` is, compared with every token in constant time.
    pub fn check(&self, presented: &[u8]) -> Option<TokenName> {
        let digest = crate::wasi::cache::sha256(presented);
        let mut found: Option<&Arc<str>> = None;
        let mut any = Choice::from(0);
        for (name, d) in &self.entries {
            let hit = d.ct_eq(&digest);
            // Every entry is compared; the branch below is taken at most once, on a full match.
            if bool::from(hit) {
                found = Some(name);
            }
            any |= hit;
        }
        if bool::from(any) {
            found.map(|n| TokenName(Arc::clone(n)))
        } else {
            None
        }
    }
}

/// The token file as loaded, reloadable: readers take the tokens in force ([`TokenFile::current`])
/// while [`TokenFile::reload`] swaps in a new set whole, or keeps the old one.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    current: RwLock<Arc<Tokens>>,
}

impl TokenFile {
    /// Loads `path` ([`Tokens::load`]).
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        Ok(Self {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(Tokens::load(path)?)),
        })
    }

    /// The file's path, as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tokens in force.
    pub fn current(&self) -> Arc<Tokens> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads and checks the file again; on success the new tokens replace the old ones at once
    /// (a request checks against one set or the other, never a mix) and are returned. On
    /// failure the tokens in force stay.
    pub fn reload(&self) -> Result<Arc<Tokens>, TokenFileError> {
        let fresh = Arc::new(Tokens::load(&self.path)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

/// What `Authorization` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token (not yet checked).
    Token(&'a [u8]),
}

/// The bearer token of a request's headers (RFC 6750 §2.1; the scheme is case-insensitive).
pub fn bearer(headers: &http::HeaderMap) -> Presented<'_> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Presented::Missing;
    };
    let bytes = value.as_bytes();
    match bytes.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => {
            Presented::Token(trim_ascii(&bytes[7..]))
        }
        _ => Presented::Missing,
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != b' ').map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// The path of the protected-resource metadata (RFC 9728), and its form for the `/mcp`
/// resource, which clients try first.
pub const METADATA_PATHS: &[&str] = &[
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
];

/// The `WWW-Authenticate` value of a 401; `invalid` when a token was presented and is wrong.
pub fn challenge(base: &str, invalid: bool) -> String {
    let mut v = format!("Bearer resource_metadata=\"{base}{}\"", METADATA_PATHS[0]);
    if invalid {
        v.push_str(", error=\"invalid_token\"");
    }
    v
}

/// The protected-resource metadata document (RFC 9728).
pub fn metadata(base: &str, authorization_servers: &[String]) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "resource": format!("{base}{}", super::front::MCP_PATH),
        "bearer_methods_supported": ["header"],
    });
    if !authorization_servers.is_empty() {
        doc["authorization_servers"] = serde_json::json!(authorization_servers);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# team\nalice:aaaaaaaaaaaaaaaa1\n\nbob:bbbbbbbbbbbbbbbb2\n";

    #[test]
    fn the_right_token_gives_its_name_and_no_other_does() {
        let t = Tokens::parse(FILE).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.check(b"bbbbbbbbbbbbbbbb2"),
            Some(TokenName(Arc::from("bob")))
        );
        assert_eq!(t.check(b"bbbbbbbbbbbbbbbb"), None, "a prefix");
        assert_eq!(t.check(b"bob"), None, "a name is not a token");
        assert_eq!(t.check(b""), None);
    }

    #[test]
    fn bad_lines_are_refused_by_number_without_the_token() {
        for (text, line) in [
            ("alice", 1),
            ("\nalice:short", 2),
            ("a b:aaaaaaaaaaaaaaaaaa", 1),
            ("a:aaaaaaaaaaaaaaaaaa\na:bbbbbbbbbbbbbbbbbbbb", 2),
            ("a:aaaaaaaaaaaaaaaaaa\nb:aaaaaaaaaaaaaaaaaa", 2),
            ("a:aaaaaaaa aaaaaaaaaa", 1),
            ("# nothing", 0),
        ] {
            let (n, message) = Tokens::parse(text).unwrap_err();
            assert_eq!(n, line, "{text:?}");
            assert!(!message.contains("aaaa"), "{message}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_read_case_insensitively() {
        let mut h = http::HeaderMap::new();
        assert_eq!(bearer(&h), Presented::Missing);
        h.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), Presented::Missing);
        h.insert(http::header::AUTHORIZATION, "bearer  tok ".parse().unwrap());
        assert_eq!(bearer(&h), Presented::Token(b"tok"));
    }

    #[test]
    fn the_challenge_and_metadata_name_the_document_and_servers() {
        assert_eq!(
            challenge("http://127.0.0.1:1", true),
            "Bearer resource_metadata=\"http://127.0.0.1:1/.well-known/oauth-protected-resource\", error=\"invalid_token\""
        );
        let doc = metadata("https://r.example", &["https://auth.example".into()]);
        assert_eq!(doc["resource"], "https://r.example/mcp");
        assert_eq!(doc["authorization_servers"][0], "https://auth.example");
        assert!(metadata("x", &[]).get("authorization_servers").is_none());
    }

    fn facts(uid: u32, gid: u32, mode: u32) -> FileFacts {
        FileFacts {
            is_file: true,
            uid,
            gid,
            mode,
            len: 100,
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
        let e = Tokens::load(&path).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        let path = secret_volume(dir.path(), "..2026_01_02", FILE, 0o440);
        assert_eq!(Tokens::load(&path).unwrap().len(), 2, "group of runbox's");
        // The final file's group decides, not the link's.
        let foreign = (1..60_000).find(|g| !me.groups.contains(g)).unwrap();
        let file = dir.path().join("..2026_01_02/tokens");
        if std::os::unix::fs::chown(&file, None, Some(foreign)).is_ok() {
            let e = Tokens::load(&path).unwrap_err().to_string();
            assert!(e.contains(&format!("group {foreign}")), "{e}");
        }
        let path = secret_volume(dir.path(), "..2026_01_03", FILE, 0o400);
        assert!(Tokens::load(&path).is_ok(), "stricter is fine");
    }

    #[test]
    fn a_reload_swaps_the_tokens_whole_or_keeps_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_volume(dir.path(), "..1", FILE, 0o400);
        let file = TokenFile::load(&path).unwrap();
        let before = file.current();
        assert!(before.check(b"aaaaaaaaaaaaaaaa1").is_some());
        secret_volume(dir.path(), "..2", "carol:cccccccccccccccc3\n", 0o400);
        let after = file.reload().unwrap();
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
            assert!(file.reload().is_err(), "{stamp}");
            assert!(
                file.current().check(b"cccccccccccccccc3").is_some(),
                "{stamp}: the old tokens stay"
            );
        }
    }
}
