//! What each HTTP request meets before rmcp: the routes (`/mcp`, `/healthz`), the bound on open
//! sessions, the bounded body read, and then rmcp's streamable HTTP service, which checks
//! `Host` and `Origin` (MCP's DNS-rebinding rule), owns the sessions and talks to one
//! [`RunboxHandler`] per session.
//!
//! Every session's handler shares the one [`Service`], so calls from all sessions share its
//! concurrency slots (a FIFO semaphore: first come, first served) and its audit log. This
//! module must not answer MCP itself, and `/healthz` must say nothing about the server.

use super::body::{BodyError, read_bounded};
use super::{HttpSettings, MAX_SESSIONS, SESSION_IDLE};
use crate::mcp::handler::RunboxHandler;
use crate::mcp::scan::Bounds;
use crate::service::Service;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::convert::Infallible;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A response as hyper sends it.
pub type HttpResponse = Response<BoxBody<Bytes, Infallible>>;

/// The path MCP is served at.
pub const MCP_PATH: &str = "/mcp";
/// The health endpoint (no token, no information).
pub const HEALTH_PATH: &str = "/healthz";

/// The request router in front of rmcp.
pub struct Front {
    mcp: StreamableHttpService<RunboxHandler, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
    bounds: Bounds,
}

impl Front {
    /// A front for `service`: `calls` stops every running call, `sessions_end` ends every
    /// session and stream (both fired at shutdown).
    pub fn new(
        service: Arc<Service>,
        settings: &HttpSettings,
        calls: CancellationToken,
        sessions_end: CancellationToken,
    ) -> Self {
        let bounds = crate::mcp::session::bounds_for(&service);
        let mut session_config = SessionConfig::default();
        session_config.keep_alive = Some(SESSION_IDLE);
        let mut manager = LocalSessionManager::default();
        manager.session_config = session_config;
        let sessions = Arc::new(manager);
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(settings.allowed_hosts.clone())
            .with_allowed_origins(settings.allowed_origins.clone())
            .enforce_origin_validation()
            .with_cancellation_token(sessions_end)
            // The body was read (and bounded) here; this is a second, looser guard.
            .with_max_request_body_bytes(bounds.max_line_bytes.saturating_add(1));
        // One handler built up front (its tool schemas derive once), cloned per session.
        let prototype = RunboxHandler::new(service, calls);
        let mcp = StreamableHttpService::new(
            move || Ok(prototype.clone()),
            Arc::clone(&sessions),
            config,
        );
        Self {
            mcp,
            sessions,
            bounds,
        }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<Incoming>) -> HttpResponse {
        match (request.method(), request.uri().path()) {
            (&Method::GET, HEALTH_PATH) => plain(StatusCode::OK, "ok\n"),
            (_, MCP_PATH) => self.mcp(request).await,
            (_, HEALTH_PATH) => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    async fn mcp(&self, request: Request<Incoming>) -> HttpResponse {
        let (parts, body) = request.into_parts();
        let opens_session =
            parts.method == Method::POST && !parts.headers.contains_key("mcp-session-id");
        if opens_session && self.open_sessions().await >= MAX_SESSIONS {
            tracing::warn!("refusing a new MCP session: {MAX_SESSIONS} are open");
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many open MCP sessions; close one (DELETE /mcp) or retry later\n",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            return r;
        }
        let bytes = if parts.method == Method::POST {
            match read_bounded(body, &self.bounds).await {
                Ok(b) => b,
                Err(e) => return body_refused(&e),
            }
        } else {
            Bytes::new()
        };
        self.mcp
            .handle(Request::from_parts(parts, Full::new(bytes)))
            .await
    }

    /// Sessions open now (created and not yet closed or expired).
    pub async fn open_sessions(&self) -> usize {
        self.sessions.sessions.read().await.len()
    }
}

fn body_refused(e: &BodyError) -> HttpResponse {
    let status = match e {
        BodyError::TooLarge(_) | BodyError::Shape(_) => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Slow => StatusCode::REQUEST_TIMEOUT,
        BodyError::Broken(_) => StatusCode::BAD_REQUEST,
    };
    tracing::info!(status = status.as_u16(), "refused a request body: {e}");
    plain(status, &format!("{e}\n"))
}

/// A short text response.
pub fn plain(status: StatusCode, text: &str) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
