//! The rules every request head meets before its route:
//!
//! - its headers (names and values) are at most [`MAX_HEADER_BYTES`] in all (431); hyper's
//!   read buffer bounds what it holds, but not exactly, so the bound is counted here;
//! - `Host` (RFC 9112 §3.2): an HTTP/1.1 request has exactly one, and a present one is a valid,
//!   non-empty authority; a request whose target is in absolute form (`POST http://name/mcp`)
//!   names the same authority in both, since a server must go by the target's, which rmcp's
//!   DNS-rebinding check does not read;
//! - at most one `Origin`: rmcp's check reads only the first, so a second one would pass
//!   unseen by it.
//!
//! Whether the host or origin is one the server answers to is rmcp's check
//! (`http.allowed_hosts`, `http.allowed_origins`); this module only refuses heads that are too
//! large, or whose host is missing, empty, doubled or contradicted, or whose origin is doubled.

use http::request::Parts;
use http::uri::Authority;
use http::{StatusCode, Version, header};

use super::MAX_HEADER_BYTES;

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
    /// More than one `Origin`.
    #[error("more than one Origin header")]
    OriginDoubled,
    /// The headers are over the bound.
    #[error("the request headers are over {MAX_HEADER_BYTES} bytes")]
    TooLarge,
}

impl HostError {
    /// The HTTP status of the refusal.
    pub fn status(self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The bytes of a head's headers as sent (`name: value` and the line end).
fn header_bytes(parts: &Parts) -> usize {
    parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Checks a request's head.
pub fn check(parts: &Parts) -> Result<(), HostError> {
    if header_bytes(parts) > MAX_HEADER_BYTES {
        return Err(HostError::TooLarge);
    }
    if parts
        .headers
        .get_all(header::ORIGIN)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(HostError::OriginDoubled);
    }
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

    #[test]
    fn a_doubled_origin_or_headers_over_the_bound_are_refused() {
        let mut p = parts(Version::HTTP_11, "/mcp", &["localhost"]);
        p.headers
            .append(header::ORIGIN, "http://localhost".parse().unwrap());
        assert_eq!(check(&p), Ok(()));
        p.headers
            .append(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(check(&p), Err(HostError::OriginDoubled));
        assert_eq!(HostError::OriginDoubled.status(), StatusCode::BAD_REQUEST);

        let mut p = parts(Version::HTTP_11, "/mcp", &["localhost"]);
        let value = "v".repeat(1000);
        let mut n = 0;
        while header_bytes(&p) + 1000 + 8 <= MAX_HEADER_BYTES {
            p.headers.append(
                http::HeaderName::from_bytes(format!("x-{n:03}").as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            n += 1;
        }
        assert_eq!(check(&p), Ok(()), "{} bytes", header_bytes(&p));
        p.headers
            .append("x-last", "v".repeat(1000).parse().unwrap());
        assert_eq!(check(&p), Err(HostError::TooLarge));
        assert_eq!(
            HostError::TooLarge.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
}
