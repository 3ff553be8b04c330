//! Reads a request body under the same bounds as a stdio line: at most the line bound in bytes,
//! structurally scanned as it arrives (nesting depth, element count), within a deadline.
//!
//! rmcp's streamable HTTP service would read the body itself, bounded in size only; reading it
//! here first means an HTTP client meets exactly the limits a stdio client meets, and a client
//! that trickles a body cannot hold a connection forever. Each chunk is charged to the
//! principal's [`BodyLease`] before it is kept, so many bodies at once are bounded in bytes too.
//! Nothing here parses JSON or keeps more than the bound.

use super::shares::{BodyLease, Refusal};
use crate::mcp::scan::{Bounds, Overrun, Scanner};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use std::time::Duration;

/// How long a client may take to send one request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Longer than the line bound (HTTP 413).
    #[error("the request body is over {0} bytes")]
    TooLarge(usize),
    /// Nested deeper or with more elements than a request may have (HTTP 413).
    #[error("the request body is {0}")]
    Shape(&'static str),
    /// Not all of it arrived within [`BODY_READ_TIMEOUT`] (HTTP 408).
    #[error("the request body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs())]
    Slow,
    /// The connection failed while reading (HTTP 400).
    #[error("the request body could not be read: {0}")]
    Broken(String),
    /// The principal, or the server, holds as many bytes of bodies as it may (429 or 503).
    #[error("too many bytes of request bodies are held")]
    OverShare(Refusal),
}

/// Reads all of `body` under `bounds`, charging its bytes to `lease`.
pub async fn read_bounded(
    body: Incoming,
    bounds: &Bounds,
    lease: &mut BodyLease,
) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(BODY_READ_TIMEOUT, collect(body, bounds, lease)).await {
        Ok(result) => result,
        Err(_) => Err(BodyError::Slow),
    }
}

async fn collect<B>(mut body: B, bounds: &Bounds, lease: &mut BodyLease) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let max = bounds.max_line_bytes;
    if body.size_hint().lower() > max as u64 {
        return Err(BodyError::TooLarge(max));
    }
    let mut scanner = Scanner::new(bounds);
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing MCP uses
        };
        if buf.len().saturating_add(data.len()) > max {
            return Err(BodyError::TooLarge(max));
        }
        if let Some(overrun) = scanner.feed(&data) {
            return Err(shape_error(overrun, max));
        }
        lease.grow(data.len()).map_err(BodyError::OverShare)?;
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

fn shape_error(overrun: Overrun, max: usize) -> BodyError {
    match overrun {
        Overrun::Length => BodyError::TooLarge(max),
        Overrun::Depth => BodyError::Shape("nested too deeply"),
        Overrun::Elements => BodyError::Shape("made of too many elements"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::http::shares::{BodyBytes, Principal};
    use http_body_util::{Full, StreamBody};

    fn lease() -> BodyLease {
        BodyBytes::new(1 << 20, 1 << 20).lease(&Principal(None))
    }

    fn bounds(max: usize) -> Bounds {
        Bounds {
            max_line_bytes: max,
            max_depth: 4,
            max_elements: 100,
        }
    }

    #[tokio::test]
    async fn a_body_within_bounds_is_read_whole() {
        let got = collect(
            Full::new(Bytes::from_static(b"{\"a\":[1]}")),
            &bounds(64),
            &mut lease(),
        )
        .await
        .unwrap();
        assert_eq!(&got[..], b"{\"a\":[1]}");
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_whatever_its_framing() {
        let e = collect(
            Full::new(Bytes::from(vec![b' '; 65])),
            &bounds(64),
            &mut lease(),
        )
        .await;
        assert!(matches!(e, Err(BodyError::TooLarge(64))), "{e:?}");
        // Chunked, no length announced: refused when the bound is crossed.
        let chunks = futures_util::stream::iter((0..10).map(|_| {
            Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(vec![b' '; 10])))
        }));
        let e = collect(StreamBody::new(chunks), &bounds(64), &mut lease()).await;
        assert!(matches!(e, Err(BodyError::TooLarge(64))), "{e:?}");
    }

    #[tokio::test]
    async fn a_deep_body_is_refused() {
        let e = collect(
            Full::new(Bytes::from_static(b"[[[[[[1]]]]]]")),
            &bounds(64),
            &mut lease(),
        )
        .await;
        assert!(matches!(e, Err(BodyError::Shape(_))), "{e:?}");
    }

    #[tokio::test]
    async fn bodies_past_the_principals_bytes_are_refused_and_the_bytes_held_until_dropped() {
        let budget = BodyBytes::new(100, 1000);
        let me = Principal(None);
        let mut first = budget.lease(&me);
        let body = || Full::new(Bytes::from(vec![b' '; 60]));
        collect(body(), &bounds(64), &mut first).await.unwrap();
        let mut second = budget.lease(&me);
        let e = collect(body(), &bounds(64), &mut second).await;
        assert!(
            matches!(e, Err(BodyError::OverShare(Refusal::PrincipalFull))),
            "{e:?}"
        );
        assert_eq!(budget.held(), 60, "the refused body holds nothing");
        drop(first);
        collect(body(), &bounds(64), &mut second).await.unwrap();
        assert_eq!(budget.held(), 60);
    }
}
