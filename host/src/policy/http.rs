//! The `[http]` table: how `runbox serve --listen` faces the network — the address, the browser
//! origins and `Host` names it accepts. Pure: validates values and derives defaults, never binds,
//! reads or decides a request (that is `mcp::http`).
//!
//! Defaults, each documented where it is defined:
//! - `listen`: none (serve MCP on stdio); `--listen HOST:PORT` overrides it.
//! - `allowed_origins`: the loopback origins ([`LOOPBACK_ORIGINS`]). A request without `Origin`
//!   (a non-browser client) passes; a present `Origin` must match one entry (MCP's DNS-rebinding
//!   rule). An empty list refuses every present `Origin`.
//! - `allowed_hosts`: absent means derived from the listen address ([`HttpPolicy::hosts_for`]).
//! - `auth_token_file`: none (no bearer tokens; then only a loopback `listen` is allowed);
//!   `--auth-token-file FILE` overrides it.
//! - `authorization_servers`: none (the protected-resource metadata names no authorization
//!   server).
//! - `public_url`: absent means `http://` and the address bound; the base of the URLs in the
//!   `WWW-Authenticate` header and the protected-resource metadata.

use super::{ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Browser origins accepted by default: pages served from this machine's loopback names, on any
/// port, over http or https.
pub const LOOPBACK_ORIGINS: &[&str] = &[
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// `Host` names accepted on a loopback listen address.
pub const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Most entries in one list of the table (a typo'd generator must not make a huge list).
const MAX_LIST: usize = 64;
/// Longest entry.
const MAX_ENTRY_BYTES: usize = 256;

/// The `[http]` table as written.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// `IP:PORT` to serve streamable HTTP on instead of stdio.
    pub listen: Option<String>,
    /// Browser origins (`scheme://host[:port|:*]`, or `null`) whose requests are served.
    pub allowed_origins: Option<Vec<String>>,
    /// `Host` header values (`name` or `name:port`) accepted; empty means any.
    pub allowed_hosts: Option<Vec<String>>,
    /// File of `name:token` lines that only runbox's user and root can read or change (see
    /// `mcp::http::auth::check_file`).
    pub auth_token_file: Option<PathBuf>,
    /// OAuth authorization servers (issuer URLs) named in the protected-resource metadata.
    pub authorization_servers: Option<Vec<String>>,
    /// The URL clients reach the server at (`https://runbox.example`), without `/mcp`.
    pub public_url: Option<String>,
}

/// The validated `[http]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpPolicy {
    /// Where to serve streamable HTTP; `None` serves stdio.
    pub listen: Option<SocketAddr>,
    /// Browser origins accepted (default [`LOOPBACK_ORIGINS`]).
    pub allowed_origins: Vec<String>,
    /// `Host` values accepted; `None` derives them from `listen` ([`Self::hosts_for`]).
    pub allowed_hosts: Option<Vec<String>>,
    /// Bearer tokens, `name:token` per line; `None`: no authentication (loopback only).
    pub auth_token_file: Option<PathBuf>,
    /// Authorization servers named in the protected-resource metadata.
    pub authorization_servers: Vec<String>,
    /// The base URL clients use; `None`: `http://` and the address bound.
    pub public_url: Option<String>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            listen: None,
            allowed_origins: LOOPBACK_ORIGINS.iter().map(|s| (*s).to_owned()).collect(),
            allowed_hosts: None,
            auth_token_file: None,
            authorization_servers: Vec::new(),
            public_url: None,
        }
    }
}

impl HttpPolicy {
    /// Validates the table (absent: every default).
    pub fn build(file: Option<HttpFile>) -> Result<Self, ConfigError> {
        let file = file.unwrap_or_default();
        let defaults = Self::default();
        let listen = file
            .listen
            .as_deref()
            .map(|s| parse_listen("http.listen", s))
            .transpose()?;
        let allowed_origins = match file.allowed_origins {
            Some(list) => checked_list("http.allowed_origins", list, check_origin)?,
            None => defaults.allowed_origins,
        };
        let allowed_hosts = file
            .allowed_hosts
            .map(|list| checked_list("http.allowed_hosts", list, check_host))
            .transpose()?;
        let authorization_servers = file
            .authorization_servers
            .map(|list| checked_list("http.authorization_servers", list, check_url))
            .transpose()?
            .unwrap_or_default();
        if let Some(url) = &file.public_url {
            check_url(url).map_err(|m| invalid("http.public_url", format!("{url:?}: {m}")))?;
        }
        Ok(Self {
            listen,
            allowed_origins,
            allowed_hosts,
            auth_token_file: file.auth_token_file,
            authorization_servers,
            public_url: file.public_url.map(|u| u.trim_end_matches('/').to_owned()),
        })
    }

    /// The table with every key filled in (for `check-config`).
    pub fn to_file(&self) -> HttpFile {
        HttpFile {
            listen: self.listen.map(|a| a.to_string()),
            allowed_origins: Some(self.allowed_origins.clone()),
            allowed_hosts: self.allowed_hosts.clone(),
            auth_token_file: self.auth_token_file.clone(),
            authorization_servers: Some(self.authorization_servers.clone()),
            public_url: self.public_url.clone(),
        }
    }

    /// The base URL of a server bound to `bound` (no trailing slash).
    pub fn public_base(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// The `Host` values accepted when serving on `bound`; empty means any. Unless set: the
    /// loopback names on a loopback address; those and the address itself on another specific
    /// address; any host on an unspecified address (`0.0.0.0`, `::`), where the name clients
    /// use (a Service's, an ingress's) cannot be known — that address needs bearer tokens.
    pub fn hosts_for(&self, bound: SocketAddr) -> Vec<String> {
        if let Some(hosts) = &self.allowed_hosts {
            return hosts.clone();
        }
        let ip = bound.ip();
        if ip.is_unspecified() {
            return Vec::new();
        }
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|s| (*s).to_owned()).collect();
        if !ip.is_loopback() {
            hosts.push(ip.to_string());
        }
        hosts
    }
}

/// Whether `ip` only reaches this machine.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Parses a listen address (`127.0.0.1:8080`, `[::1]:0`); names are refused, so what is bound
/// is exactly what was written.
pub fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        invalid(
            key,
            format!(
                "{value:?} is not IP:PORT (e.g. 127.0.0.1:8080 or [::1]:8080; use an address, not a name)"
            ),
        )
    })
}

fn checked_list(
    key: &str,
    list: Vec<String>,
    check: fn(&str) -> Result<(), &'static str>,
) -> Result<Vec<String>, ConfigError> {
    if list.len() > MAX_LIST {
        return Err(invalid(key, format!("at most {MAX_LIST} entries")));
    }
    for entry in &list {
        if entry.len() > MAX_ENTRY_BYTES {
            return Err(invalid(
                key,
                format!("an entry is over {MAX_ENTRY_BYTES} bytes"),
            ));
        }
        check(entry).map_err(|m| invalid(key, format!("{entry:?}: {m}")))?;
    }
    Ok(list)
}

/// `null`, or `scheme://host` with an optional `:port` or `:*`, nothing after it.
fn check_origin(entry: &str) -> Result<(), &'static str> {
    if entry == "null" {
        return Ok(());
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        return Err("an origin is scheme://host[:port|:*] (e.g. https://app.example:443)");
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err("bad scheme");
    }
    let authority = rest.strip_suffix(":*").unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ', '*']) {
        return Err("an origin has no path, query, user or spaces");
    }
    Ok(())
}

/// An absolute http(s) URL without spaces, quotes or a fragment.
fn check_url(entry: &str) -> Result<(), &'static str> {
    let rest = entry
        .strip_prefix("https://")
        .or_else(|| entry.strip_prefix("http://"))
        .ok_or("a URL starts with https:// or http://")?;
    if rest.is_empty() || entry.len() > MAX_ENTRY_BYTES || entry.contains([' ', '"', '#', '\\']) {
        return Err("not a plain absolute URL");
    }
    Ok(())
}

/// `name` or `name:port`, no scheme or path.
fn check_host(entry: &str) -> Result<(), &'static str> {
    if entry.is_empty() || entry.contains(['/', '?', '#', '@', ' ', '*']) || entry.contains("://") {
        return Err("a host is name or name:port, without scheme or path");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml_text: &str) -> Result<HttpPolicy, ConfigError> {
        HttpPolicy::build(Some(toml::from_str(toml_text).unwrap()))
    }

    #[test]
    fn defaults_are_loopback_origins_and_no_listen() {
        let p = HttpPolicy::build(None).unwrap();
        assert_eq!(p.listen, None);
        assert!(p.allowed_origins.contains(&"http://localhost:*".to_owned()));
        assert_eq!(p.allowed_hosts, None);
    }

    #[test]
    fn listen_is_an_address_not_a_name() {
        assert_eq!(
            table("listen = \"127.0.0.1:0\"").unwrap().listen,
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert!(table("listen = \"[::1]:8080\"").is_ok());
        let e = table("listen = \"localhost:8080\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http.listen"), "{e}");
    }

    #[test]
    fn origins_and_hosts_are_checked() {
        assert!(table("allowed_origins = [\"https://app.example:443\", \"null\"]").is_ok());
        for bad in ["app.example", "https://a/b", "https://*", "ftp ://x"] {
            let e = table(&format!("allowed_origins = [{bad:?}]")).unwrap_err();
            assert!(e.to_string().contains("http.allowed_origins"), "{bad}: {e}");
        }
        assert!(table("allowed_hosts = [\"runbox.ns.svc\", \"runbox:8080\"]").is_ok());
        assert!(table("allowed_hosts = [\"http://x\"]").is_err());
    }

    #[test]
    fn hosts_follow_the_listen_address_unless_set() {
        let p = HttpPolicy::default();
        let lo = p.hosts_for("127.0.0.1:1".parse().unwrap());
        assert_eq!(lo, LOOPBACK_HOSTS);
        let specific = p.hosts_for("10.1.2.3:1".parse().unwrap());
        assert!(specific.contains(&"10.1.2.3".to_owned()));
        assert!(p.hosts_for("0.0.0.0:1".parse().unwrap()).is_empty());
        let set = table("allowed_hosts = [\"a\"]").unwrap();
        assert_eq!(set.hosts_for("0.0.0.0:1".parse().unwrap()), ["a"]);
    }

    #[test]
    fn auth_keys_are_checked() {
        let p = table(
            "auth_token_file = \"/etc/runbox/tokens\"\nauthorization_servers = [\"https://auth.example\"]\npublic_url = \"https://runbox.example/\"",
        )
        .unwrap();
        assert_eq!(
            p.public_base("127.0.0.1:1".parse().unwrap()),
            "https://runbox.example"
        );
        assert_eq!(p.authorization_servers, ["https://auth.example"]);
        assert!(table("public_url = \"runbox.example\"").is_err());
        assert!(table("authorization_servers = [\"https://a b\"]").is_err());
        assert_eq!(
            HttpPolicy::default().public_base("127.0.0.1:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn loopback_includes_mapped_v4() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }
}
