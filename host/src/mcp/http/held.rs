//! The body of a `/mcp` response, holding its request's [`StreamSlot`] until the body has been
//! sent (or the connection dropped), and ending an event stream that carried no event for its
//! idle limit (keep-alive comments do not count): the client may open it again.
//!
//! It must not change what it passes on, and must end at most once.

use super::shares::StreamSlot;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A response body and the slot of its request.
pub struct HeldBody {
    inner: BoxBody<Bytes, Infallible>,
    idle: Option<IdleLimit>,
    ended: bool,
    _slot: StreamSlot,
}

struct IdleLimit {
    after: Duration,
    timer: Pin<Box<Sleep>>,
}

impl HeldBody {
    /// `inner`, holding `slot`; with `idle`, ended after that long without an event.
    pub fn new(
        inner: BoxBody<Bytes, Infallible>,
        slot: StreamSlot,
        idle: Option<Duration>,
    ) -> Self {
        Self {
            inner,
            idle: idle.map(|after| IdleLimit {
                after,
                timer: Box::pin(tokio::time::sleep(after)),
            }),
            ended: false,
            _slot: slot,
        }
    }
}

/// Whether a frame carries an event (an SSE comment, such as the keep-alive `:\n\n`, does not).
fn is_event(frame: &Frame<Bytes>) -> bool {
    frame
        .data_ref()
        .is_some_and(|d| !d.is_empty() && d.first() != Some(&b':'))
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(idle) = &mut this.idle
                    && is_event(&frame)
                {
                    idle.timer.as_mut().reset(Instant::now() + idle.after);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                this.ended = true;
                Poll::Ready(other)
            }
            Poll::Pending => {
                if let Some(idle) = &mut this.idle
                    && idle.timer.as_mut().poll(cx).is_ready()
                {
                    tracing::debug!(
                        "ending an event stream without an event for {:?}",
                        idle.after
                    );
                    this.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::http::shares::{Principal, Quota, Streams};
    use http_body_util::{BodyExt, StreamBody};
    use std::sync::Arc;

    fn streams() -> Arc<Streams> {
        Streams::new(Quota {
            bound: 4,
            per_principal: 4,
            reserve: 0,
            light: 0,
        })
    }

    /// A body sending `frames`, one every `every`, then staying open without end.
    fn endless(frames: Vec<&'static [u8]>, every: Duration) -> BoxBody<Bytes, Infallible> {
        let s = futures_util::stream::unfold(frames.into_iter(), move |mut it| async move {
            tokio::time::sleep(every).await;
            match it.next() {
                Some(f) => Some((Ok::<_, Infallible>(Frame::data(Bytes::from_static(f))), it)),
                None => std::future::pending().await,
            }
        });
        StreamBody::new(Box::pin(s)).boxed()
    }

    #[tokio::test]
    async fn keep_alives_alone_do_not_keep_a_stream_open() {
        let streams = streams();
        let slot = streams.take(&Principal(None)).unwrap();
        let inner = endless(vec![b":\n\n"; 100], Duration::from_millis(20));
        let mut body = HeldBody::new(inner, slot, Some(Duration::from_millis(150)));
        let mut frames = 0;
        while let Some(f) = body.frame().await {
            f.unwrap();
            frames += 1;
        }
        // Ended by the idle limit, long before the hundred keep-alives were sent.
        assert!(frames < 100, "{frames}");
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none(), "ends once");
        assert_eq!(
            streams.open(),
            1,
            "the slot is held until the body is dropped"
        );
        drop(body);
        assert_eq!(streams.open(), 0);
    }

    #[tokio::test]
    async fn events_keep_a_stream_open_and_pass_unchanged() {
        let streams = streams();
        let slot = streams.take(&Principal(None)).unwrap();
        let events: Vec<&'static [u8]> = vec![b"data: {}\n\n"; 6];
        // Six events 100 ms apart under a 300 ms limit: every one arrives, then the limit ends it.
        let inner = endless(events, Duration::from_millis(100));
        let mut body = HeldBody::new(inner, slot, Some(Duration::from_millis(300)));
        let mut got = Vec::new();
        while let Some(f) = body.frame().await {
            got.push(f.unwrap().into_data().unwrap());
        }
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|d| &d[..] == b"data: {}\n\n"));
    }

    #[tokio::test]
    async fn without_a_limit_the_body_ends_with_its_inner_body() {
        let streams = streams();
        let slot = streams.take(&Principal(None)).unwrap();
        let inner = http_body_util::Full::new(Bytes::from_static(b"ok")).boxed();
        let body = HeldBody::new(inner, slot, None);
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"ok");
        assert_eq!(streams.open(), 0);
    }
}
