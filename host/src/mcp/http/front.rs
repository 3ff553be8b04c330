//! What each HTTP request meets before rmcp: the routes (`/mcp`, `/healthz`, the
//! protected-resource metadata), the bearer token (when the server has tokens; a session belongs
//! to the token that opened it), the bound on open sessions, the bounded body read, and then rmcp's streamable HTTP service, which checks
//! `Host` and `Origin` (MCP's DNS-rebinding rule), owns the sessions and talks to one
//! [`RunboxHandler`] per session.
//!
//! Every session's handler shares the one [`Service`], so calls from all sessions share its
//! concurrency slots (a FIFO semaphore: first come, first served) and its audit log. This
//! module must not answer MCP itself, and `/healthz` must say nothing about the server.

use super::auth::{self, Presented, TokenFile, TokenName};
use super::body::{BodyError, read_bounded};
use super::refusals::Refusals;
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
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
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
    tokens: Option<Arc<TokenFile>>,
    /// Which token opened each session (bounded: pruned of closed sessions as it grows).
    owners: Mutex<HashMap<String, Arc<str>>>,
    refusals: Refusals,
    public_base: String,
    metadata: String,
}

impl Front {
    /// A front for `service`: `calls` stops every running call, `sessions_end` ends every
    /// session and stream (both fired at shutdown).
    pub fn new(
        service: Arc<Service>,
        settings: &HttpSettings,
        tokens: Option<Arc<TokenFile>>,
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
        let refusals = Refusals::new(Arc::clone(&service));
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
            tokens,
            owners: Mutex::new(HashMap::new()),
            refusals,
            public_base: settings.public_base.clone(),
            metadata: auth::metadata(&settings.public_base, &settings.authorization_servers)
                .to_string(),
        }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<Incoming>) -> HttpResponse {
        match (request.method(), request.uri().path()) {
            (&Method::GET, HEALTH_PATH) => plain(StatusCode::OK, "ok\n"),
            (&Method::GET, path) if auth::METADATA_PATHS.contains(&path) => {
                let mut r = plain(StatusCode::OK, &self.metadata);
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                r
            }
            (_, MCP_PATH) => self.mcp(request).await,
            (_, HEALTH_PATH) => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    async fn mcp(&self, request: Request<Incoming>) -> HttpResponse {
        let (mut parts, body) = request.into_parts();
        let owner = match self.authenticate(&parts.headers).await {
            Ok(owner) => owner,
            Err(refused) => return refused,
        };
        let session = parts
            .headers
            .get("mcp-session-id")
            .map(|v| v.as_bytes().to_vec());
        if let (Some(name), Some(id)) = (&owner, &session)
            && !self.owned_by(id, &name.0)
        {
            // Another token's session looks like no session at all.
            return plain(StatusCode::NOT_FOUND, "Not Found: Session not found\n");
        }
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
        if let Some(name) = &owner {
            parts.extensions.insert(name.clone());
        }
        let response = self
            .mcp
            .handle(Request::from_parts(parts, Full::new(bytes)))
            .await;
        if let Some(name) = owner
            && opens_session
            && let Some(id) = response.headers().get("mcp-session-id")
        {
            self.own(String::from_utf8_lossy(id.as_bytes()).into_owned(), name.0)
                .await;
        }
        response
    }

    /// `Ok(None)`: the server has no tokens. `Ok(Some(name))`: a known token. `Err`: the 401.
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<TokenName>, HttpResponse> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        let (reason, invalid) = match auth::bearer(headers) {
            Presented::Token(t) => match tokens.current().check(t) {
                Some(name) => return Ok(Some(name)),
                None => ("the bearer token matches none of the server's tokens", true),
            },
            Presented::Missing => ("no Authorization: Bearer token", false),
        };
        let session = headers.get("mcp-session-id").map(|v| v.as_bytes());
        self.refusals.unauthenticated(reason, session).await;
        let mut r = plain(
            StatusCode::UNAUTHORIZED,
            &format!("Unauthorized: {reason}\n"),
        );
        if let Ok(v) = header::HeaderValue::from_str(&auth::challenge(&self.public_base, invalid)) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        Err(r)
    }

    /// Whether session `id` may be used with token `name` (a session rmcp does not know is left
    /// to rmcp, which answers 404).
    fn owned_by(&self, id: &[u8], name: &str) -> bool {
        let owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        match owners.get(String::from_utf8_lossy(id).as_ref()) {
            Some(owner) => owner.as_ref() == name,
            None => true,
        }
    }

    /// Records that token `name` opened session `id`, forgetting sessions that are gone.
    async fn own(&self, id: String, name: Arc<str>) {
        let open: Option<Vec<String>> = {
            let len = self
                .owners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            if len >= 2 * MAX_SESSIONS {
                let sessions = self.sessions.sessions.read().await;
                Some(sessions.keys().map(|k| k.to_string()).collect())
            } else {
                None
            }
        };
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = open {
            owners.retain(|k, _| open.contains(k));
        }
        owners.insert(id, name);
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
