//! MCP over streamable HTTP (`runbox serve --listen IP:PORT`): rmcp's streamable HTTP service at
//! `/mcp`, behind runbox's own front ([`front`]: routes, bounds on sessions and bodies) and
//! served by hyper ([`server`]: bounded connections, graceful drain).
//!
//! The same [`Service`] answers as on stdio — same tools, results, errors, limits and audit —
//! shared by every session. Bounds, each a constant here: [`MAX_CONNECTIONS`] open connections;
//! requests to `/mcp` open at once (a `GET` event stream, or any request until its response is
//! sent) under [`STREAMS`], and open MCP sessions under [`SESSIONS`] (each closed after
//! [`SESSION_IDLE`] without a request), both shared between principals ([`shares`]: each token,
//! or all clients of a server without tokens as one) so that one cannot starve the others;
//! event streams end after [`STREAM_IDLE`] without an event; request headers within
//! [`HEADER_READ_TIMEOUT`] and [`MAX_HEADER_BYTES`], bodies as long as a stdio line may be
//! (`body`; an `initialize` at most [`MAX_INITIALIZE_BYTES`]), and the bytes of bodies held at
//! once shared like the rest ([`BODY_BYTES_EACH`]). The connections left over by the stream bound answer `/healthz`, refusals and
//! requests being read; past half of them in use, every response closes its connection, so
//! an idle keep-alive connection holds nothing for long.
//!
//! With a token file ([`auth`]) every request to `/mcp` needs `Authorization: Bearer` with one
//! of its tokens (401 otherwise, audited by `refusals`), and a session belongs to the token that
//! opened it. `/healthz` and the protected-resource metadata need none.
//!
//! Shutdown ([`serve`] after `shutdown` fires): stop accepting, let each connection finish its
//! request in progress, wait up to [`SHUTDOWN_GRACE`] for running calls to end, then cancel the
//! rest (they answer `CANCELLED` and are audited), give the replies a moment to reach their
//! streams, end every session, and return; the caller writes the audit `stop` record. At most
//! [`SHUTDOWN_GRACE`] plus three times `CLOSE_GRACE` (2 s) in all.

pub mod auth;
pub mod body;
pub mod front;
mod held;
mod host;
mod refusals;
pub mod server;
pub mod sessions;
pub mod shares;
pub mod token_file;
pub mod token_reload;

use crate::policy::http::HttpPolicy;
use crate::service::Service;
use shares::Quota;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Open connections at most; the next waits in the kernel's backlog. Twice the bound of
/// [`STREAMS`], so that requests which hold nothing (`/healthz`, refusals, headers being read)
/// always find a connection.
pub const MAX_CONNECTIONS: usize = 256;
/// Requests to `/mcp` open at once (an event stream until it ends, any other until its
/// response is sent): 64 per principal (the 65th gets HTTP 429), 128 in all, then 16 more for
/// principals holding fewer than 4 (so a new client is answered), then HTTP 503.
pub const STREAMS: Quota = Quota {
    bound: 128,
    per_principal: 64,
    reserve: 16,
    light: 4,
};
/// Open MCP sessions: 32 per principal (the 33rd `initialize` gets HTTP 429), 64 in all, then
/// 8 more for principals holding fewer than 2, then HTTP 503.
pub const SESSIONS: Quota = Quota {
    bound: 64,
    per_principal: 32,
    reserve: 8,
    light: 2,
};
// The connections left over by the streams answer everything else.
const _: () = assert!(MAX_CONNECTIONS >= 2 * STREAMS.bound && STREAMS.ceiling() < MAX_CONNECTIONS);

/// An event stream (`GET /mcp`) that carried no event for this long is ended (keep-alive
/// comments do not count); the client may open it again.
pub const STREAM_IDLE: Duration = Duration::from_secs(60);
/// A session with no request for this long is closed.
pub const SESSION_IDLE: Duration = Duration::from_secs(300);
/// How long a client may take to send a request's headers (and, on an idle keep-alive
/// connection, to begin the next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (start line and headers).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest `initialize` body: a session keeps its `initialize` for its life.
pub const MAX_INITIALIZE_BYTES: usize = 64 * 1024;
/// Bytes of request bodies one principal may hold at once (read, or waiting in rmcp for a
/// call slot), or one line bound if that is more; all principals together twice that (429,
/// then 503, as for the other shares).
pub const BODY_BYTES_EACH: usize = 128 * 1024 * 1024;
/// How long running calls may go on after SIGTERM before they are cancelled.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// After the cancellation: how long cancelled calls have to answer and connections to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the front enforces, resolved for the address actually bound.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `Host` values accepted; empty means any.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted (a request without `Origin` passes).
    pub allowed_origins: Vec<String>,
    /// The base URL clients use (for `WWW-Authenticate` and the metadata document).
    pub public_base: String,
    /// Authorization servers named in the metadata document.
    pub authorization_servers: Vec<String>,
}

impl HttpSettings {
    /// The settings of `policy` for a server bound to `bound`.
    pub fn resolve(policy: &HttpPolicy, bound: SocketAddr) -> Self {
        Self {
            allowed_hosts: policy.hosts_for(bound),
            allowed_origins: policy.allowed_origins.clone(),
            public_base: policy.public_base(bound),
            authorization_servers: policy.authorization_servers.clone(),
        }
    }
}

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Binds `addr`; the listener's own address says which port a `:0` got.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Serves MCP on `listener` until `shutdown` fires, then drains (see the module docs).
pub async fn serve(
    service: Arc<Service>,
    listener: TcpListener,
    settings: &HttpSettings,
    tokens: Option<Arc<token_file::TokenFile>>,
    shutdown: CancellationToken,
) {
    let calls = CancellationToken::new();
    let sessions_end = CancellationToken::new();
    let front = Arc::new(front::Front::new(
        Arc::clone(&service),
        settings,
        tokens,
        calls.clone(),
        sessions_end.clone(),
    ));
    let warm = Arc::clone(&service);
    tokio::spawn(async move { warm.warm_up().await });

    let mut connections = server::Connections::new();
    connections.accept(&listener, &front, &shutdown).await;
    drop(listener);

    connections.drain();
    let idle = service
        .wait_idle(tokio::time::Instant::now() + SHUTDOWN_GRACE)
        .await;
    if !idle {
        tracing::info!("cancelling the calls still running after {SHUTDOWN_GRACE:?}");
        calls.cancel();
        service
            .wait_idle(tokio::time::Instant::now() + CLOSE_GRACE)
            .await;
    }
    // A call that ended has its reply still on the way to its stream: let the connections
    // send what they have (those holding a standalone GET stream never close by themselves).
    connections.settle(CLOSE_GRACE).await;
    sessions_end.cancel();
    connections.close(CLOSE_GRACE).await;
    calls.cancel();
    front.finish().await;
}
