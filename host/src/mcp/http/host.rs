//! The `Host` rule every request meets before its route (RFC 9112 §3.2): an HTTP/1.1 request
//! has exactly one `Host`, and a present one is a valid, non-empty authority; a request whose
//! target is in absolute form (`POST http://name/mcp`) names the same authority in both, since
//! a server must go by the target's, which rmcp's DNS-rebinding check does not read.
//!
//! Whether the name is one the server answers to is rmcp's check (`http.allowed_hosts`); this
//! module only refuses requests whose host is missing, empty, doubled or contradicted, with 400.

use http::request::Parts;
use http::uri::Authority;
use http::{Version, header};

/// Why a request's host is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// An HTTP/1.1 request without `Host`.
    #[error("an HTTP/1.1 request needs a Host header")]
    Missing,
    /// More than one `Host`.
    #[error("more than one Host header")]
    Doubled,
    /// `Host:` with nothing in it.
    #[error("the Host header is empty")]
    Empty,
    /// Not an authority (`name` or `name:port`).
    #[error("the Host header is not a host name or host:port")]
    Malformed,
    /// An absolute-form target naming another authority than `Host`.
    #[error("the request target names another host than the Host header")]
    Contradicted,
}

/// Checks the host of a request's head.
pub fn check(parts: &Parts) -> Result<(), HostError> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let Some(host) = hosts.next() else {
        return if parts.version == Version::HTTP_11 {
            Err(HostError::Missing)
        } else {
            Ok(())
        };
    };
    if hosts.next().is_some() {
        return Err(HostError::Doubled);
    }
    let text = host.to_str().map_err(|_| HostError::Malformed)?.trim();
    if text.is_empty() {
        return Err(HostError::Empty);
    }
    let authority = Authority::try_from(text).map_err(|_| HostError::Malformed)?;
    if authority.as_str().contains('@') {
        return Err(HostError::Malformed);
    }
    match parts.uri.authority() {
        Some(target) if !target.as_str().eq_ignore_ascii_case(authority.as_str()) => {
            Err(HostError::Contradicted)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: Version, target: &str, hosts: &[&str]) -> Parts {
        let mut b = http::Request::builder().version(version).uri(target);
        for h in hosts {
            b = b.header(header::HOST, *h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn one_valid_host_passes() {
        for h in ["localhost", "127.0.0.1:8080", "[::1]:1", "runbox.example"] {
            assert_eq!(check(&parts(Version::HTTP_11, "/mcp", &[h])), Ok(()), "{h}");
        }
        // HTTP/1.0 need not send one.
        assert_eq!(check(&parts(Version::HTTP_10, "/healthz", &[])), Ok(()));
        assert_eq!(
            check(&parts(
                Version::HTTP_11,
                "http://LOCALHOST:1/mcp",
                &["localhost:1"]
            )),
            Ok(())
        );
    }

    #[test]
    fn missing_empty_doubled_malformed_or_contradicted_hosts_are_refused() {
        let v = Version::HTTP_11;
        assert_eq!(check(&parts(v, "/mcp", &[])), Err(HostError::Missing));
        assert_eq!(check(&parts(v, "/healthz", &[""])), Err(HostError::Empty));
        assert_eq!(check(&parts(v, "/mcp", &[" "])), Err(HostError::Empty));
        assert_eq!(
            check(&parts(v, "/mcp", &["localhost", "evil.example"])),
            Err(HostError::Doubled)
        );
        for bad in ["a b", "localhost@evil.example", "host:port:1", "x/y"] {
            assert_eq!(
                check(&parts(v, "/mcp", &[bad])),
                Err(HostError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            check(&parts(v, "http://evil.example/mcp", &["localhost"])),
            Err(HostError::Contradicted)
        );
    }
}
