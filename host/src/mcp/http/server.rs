//! The accept loop and the connections: at most [`MAX_CONNECTIONS`] at once (the next waits in
//! the kernel's backlog), each HTTP/1.1 with a deadline on request headers (also on an idle
//! keep-alive connection), each a task that finishes its request and closes when the server
//! drains. Once more than half of the connections are open, every response closes its
//! connection: a client cannot keep idle connections by sending a cheap request now and then.
//!
//! It must not keep a connection past the drain: the tasks are aborted when [`Connections::
//! close`] is called, whatever they were doing.

use super::front::Front;
use super::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The open connections.
pub struct Connections {
    tasks: JoinSet<()>,
    slots: Arc<Semaphore>,
    draining: CancellationToken,
}

impl Default for Connections {
    fn default() -> Self {
        Self::new()
    }
}

impl Connections {
    /// No connection yet.
    pub fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            draining: CancellationToken::new(),
        }
    }

    /// Accepts connections on `listener` and serves them with `front` until `stop` fires.
    pub async fn accept(
        &mut self,
        listener: &TcpListener,
        front: &Arc<Front>,
        stop: &CancellationToken,
    ) {
        loop {
            while self.tasks.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = Arc::clone(&self.slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = stop.cancelled() => return,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: pause instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
            };
            let _ = stream.set_nodelay(true);
            tracing::debug!(%peer, "connection");
            let front = Arc::clone(front);
            let slots = Arc::clone(&self.slots);
            let draining = self.draining.clone();
            self.tasks.spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |request| {
                    let front = Arc::clone(&front);
                    let slots = Arc::clone(&slots);
                    async move {
                        let mut response = front.handle(request).await;
                        if slots.available_permits() < MAX_CONNECTIONS / 2 {
                            response.headers_mut().insert(
                                http::header::CONNECTION,
                                http::HeaderValue::from_static("close"),
                            );
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .max_buf_size(MAX_HEADER_BYTES);
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = draining.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            });
        }
    }

    /// Asks every connection to finish its request in progress and close.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    /// Waits at most `grace` for the connections to close by themselves (a draining connection
    /// closes once its response in progress is sent); returns whether all did.
    pub async fn settle(&mut self, grace: std::time::Duration) -> bool {
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        tokio::time::timeout(grace, all_done).await.is_ok()
    }

    /// Waits at most `grace` for the connections to close, then aborts the rest.
    pub async fn close(mut self, grace: std::time::Duration) {
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            tracing::info!(open = self.tasks.len(), "closing the connections left");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}
