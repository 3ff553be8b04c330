//! Bearer tokens for `serve --listen`: the `name:token` lines of the token file (read by
//! [`token_file`](super::token_file)), the constant-time check of `Authorization: Bearer`, the
//! 401 answer with `WWW-Authenticate` (RFC 6750, RFC 9728's `resource_metadata`) and the
//! protected-resource metadata document.
//!
//! Only sha256 digests of the tokens are kept after parsing, and a presented token is compared
//! with every one of them (subtle's constant-time equality, no early exit), so neither timing
//! nor memory tells which part of a token was right. A token never reaches a log, an audit
//! record or an error message; only its name does. This module reads no file.

use std::sync::Arc;
use subtle::{Choice, ConstantTimeEq};

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

/// The sha256 digest of a token's value.
pub type TokenDigest = [u8; 32];

/// A token that matched: its name, and the digest of its value. A session is bound to both, so
/// a new value under an old name is another holder, and a removed value holds nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The token's name (what logs and audit records show).
    pub name: TokenName,
    /// The digest of the value presented.
    pub digest: TokenDigest,
}

/// The tokens, by name, as digests.
#[derive(Debug)]
pub struct Tokens {
    entries: Vec<(Arc<str>, TokenDigest)>,
}

impl Tokens {
    /// Parses `name:token` lines; blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut entries: Vec<(Arc<str>, TokenDigest)> = Vec::new();
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

    /// Whether a token with this digest is among these (a session's holder is still valid).
    pub fn holds(&self, digest: &TokenDigest) -> bool {
        let mut any = Choice::from(0);
        for (_, d) in &self.entries {
            any |= d.ct_eq(digest);
        }
        bool::from(any)
    }

    /// The token `presented` is, compared with every token in constant time.
    pub fn check(&self, presented: &[u8]) -> Option<Holder> {
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
            found.map(|n| Holder {
                name: TokenName(Arc::clone(n)),
                digest,
            })
        } else {
            None
        }
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
        let bob = t.check(b"bbbbbbbbbbbbbbbb2").unwrap();
        assert_eq!(bob.name, TokenName(Arc::from("bob")));
        assert!(t.holds(&bob.digest));
        let other = Tokens::parse("bob:bbbbbbbbbbbbbbbb3").unwrap();
        assert!(!other.holds(&bob.digest), "same name, other value");
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
}
