//! What each HTTP request meets before rmcp: the `Host` rule ([`host`](super::host)), the
//! routes (`/mcp`, `/healthz`, the protected-resource metadata), the bearer token (when the
//! server has tokens), the principal's share of open requests and of sessions
//! ([`shares`](super::shares); a session belongs to the principal that opened it), the bounded
//! body read, and then rmcp's streamable HTTP service, which checks `Host` and `Origin` (MCP's
//! DNS-rebinding rule), owns the sessions and talks to one [`RunboxHandler`] per session. A
//! response's body holds its request's slot until it is sent; an event stream (`GET /mcp`)
//! ends after [`STREAM_IDLE`] without an event.
//!
//! Every session's handler shares the one [`Service`], so calls from all sessions share its
//! concurrency slots (a FIFO semaphore: first come, first served) and its audit log. This
//! module must not answer MCP itself, and `/healthz` must say nothing about the server.

use super::auth::{self, Holder, Presented};
use super::body::{BodyError, read_bounded};
use super::held::HeldBody;
use super::refusals::{AUTH_RULE, BODIES_RULE, Refusals, Refused, SESSIONS_RULE, STREAMS_RULE};
use super::sessions::{CallStop, HolderStops, Owner, Owners};
use super::shares::{BodyBytes, Principal, Quota, Refusal, Streams};
use super::token_file::TokenFile;
use super::{
    BODY_BYTES_EACH, HttpSettings, MAX_INITIALIZE_BYTES, SESSION_IDLE, SESSIONS, STREAM_IDLE,
    STREAMS,
};
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
    owners: Arc<Owners>,
    holder_stops: Arc<HolderStops>,
    streams: Arc<Streams>,
    bodies: Arc<BodyBytes>,
    bounds: Bounds,
    tokens: Option<Arc<TokenFile>>,
    refusals: Refusals,
    public_base: String,
    metadata: String,
}

impl Front {
    /// A front for `service`: `calls` stops every running call, `sessions_end` ends every
    /// session and stream (both fired at shutdown). With `tokens`, the sessions of a token
    /// value removed by a reload are closed as soon as the reload applies.
    pub fn new(
        service: Arc<Service>,
        settings: &HttpSettings,
        tokens: Option<Arc<TokenFile>>,
        calls: CancellationToken,
        sessions_end: CancellationToken,
    ) -> Self {
        let bounds = crate::mcp::session::bounds_for(&service);
        let sessions_end_watch = sessions_end.clone();
        let mut session_config = SessionConfig::default();
        session_config.keep_alive = Some(SESSION_IDLE);
        let mut manager = LocalSessionManager::default();
        manager.session_config = session_config;
        let sessions = Arc::new(manager);
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(settings.allowed_hosts.clone())
            .with_allowed_origins(settings.allowed_origins.clone())
            .enforce_origin_validation()
            .with_cancellation_token(sessions_end.clone())
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
        let owners = Arc::new(Owners::new(sessions, SESSIONS));
        let holder_stops = Arc::new(HolderStops::default());
        if let Some(file) = &tokens {
            tokio::spawn(revoke_on_change(
                file.watch(),
                Arc::clone(&owners),
                Arc::clone(&holder_stops),
                sessions_end_watch,
            ));
        }
        Self {
            mcp,
            owners,
            holder_stops,
            streams: Streams::new(STREAMS),
            // A policy with long lines gets room for at least one body per principal.
            bodies: {
                let each = BODY_BYTES_EACH.max(bounds.max_line_bytes);
                BodyBytes::new(each, each.saturating_mul(2))
            },
            bounds,
            tokens,
            refusals,
            public_base: settings.public_base.clone(),
            metadata: auth::metadata(&settings.public_base, &settings.authorization_servers)
                .to_string(),
        }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<Incoming>) -> HttpResponse {
        let (parts, body) = request.into_parts();
        if let Err(e) = super::host::check(&parts) {
            tracing::debug!("refused a request: {e}");
            let status = e.status();
            return refused_response(
                status,
                &format!(
                    "{}: {e}\n",
                    status.canonical_reason().unwrap_or("Bad Request")
                ),
                false,
            );
        }
        match (&parts.method, parts.uri.path()) {
            (&Method::GET, HEALTH_PATH) => plain(StatusCode::OK, "ok\n"),
            (&Method::GET, path) if auth::METADATA_PATHS.contains(&path) => {
                let mut r = plain(StatusCode::OK, &self.metadata);
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                r
            }
            (_, MCP_PATH) => self.mcp(parts, body).await,
            (_, HEALTH_PATH) => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    async fn mcp(&self, mut parts: http::request::Parts, body: Incoming) -> HttpResponse {
        let (holder, holder_stop) = match self.authenticate(&parts.headers).await {
            Ok(Some((holder, stop))) => (Some(holder), Some(stop)),
            Ok(None) => (None, None),
            Err(refused) => return refused,
        };
        let owner = Owner {
            principal: Principal(holder.as_ref().map(|h| Arc::clone(&h.name.0))),
            digest: holder.as_ref().map(|h| h.digest),
        };
        let principal = &owner.principal;
        let session = parts
            .headers
            .get("mcp-session-id")
            .map(|v| v.as_bytes().to_vec());
        // The calls of this request stop with its session, or (without one) with its token.
        let call_stop = match &session {
            Some(id) => match self.owners.owned_by(id, &owner) {
                Some(stop) => Some(stop),
                // Another principal's session looks like no session at all.
                None => return plain(StatusCode::NOT_FOUND, "Not Found: Session not found\n"),
            },
            None => holder_stop.as_ref().map(|s| CallStop(s.child_token())),
        };
        let mut slot = match self.streams.take(principal) {
            Ok(slot) => slot,
            Err(refusal) => {
                return self
                    .over_share(&STREAM_SHARE, refusal, principal, session.as_deref())
                    .await;
            }
        };
        let bytes = if parts.method == Method::POST {
            let mut lease = self.bodies.lease(principal);
            match read_bounded(body, &self.bounds, &mut lease).await {
                Ok(b) => {
                    slot.hold_body(lease);
                    b
                }
                Err(BodyError::OverShare(refusal)) => {
                    return self
                        .over_body_share(refusal, principal, session.as_deref())
                        .await;
                }
                Err(e) => return body_refused(&e),
            }
        } else {
            Bytes::new()
        };
        let initialize = parts.method == Method::POST && session.is_none() && is_initialize(&bytes);
        if initialize && bytes.len() > MAX_INITIALIZE_BYTES {
            // A session keeps its `initialize` for its life: 64 sessions of a 30 MB one each
            // would hold gigabytes.
            return body_refused(&BodyError::TooLarge(MAX_INITIALIZE_BYTES));
        }
        let opening = if initialize {
            match self.owners.admit(&owner, holder_stop.as_ref()).await {
                Ok(opening) => Some(opening),
                Err(refusal) => {
                    return self
                        .over_share(&SESSION_SHARE, refusal, principal, None)
                        .await;
                }
            }
        } else {
            None
        };
        if let Some(holder) = holder {
            parts.extensions.insert(holder.name);
        }
        if let Some(stop) = call_stop {
            parts.extensions.insert(stop);
        }
        let event_stream = parts.method == Method::GET;
        let closes_session = parts.method == Method::DELETE;
        let mut response = self
            .mcp
            .handle(Request::from_parts(parts, Full::new(bytes)))
            .await;
        if closes_session && response.status() == StatusCode::ACCEPTED {
            // rmcp closed the session before answering 202; the official Python SDK takes
            // anything but 200 and 204 as a failed close (and says so on every exit).
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        if closes_session
            && response.status().is_success()
            && let Some(id) = &session
        {
            self.owners.closed(id);
        }
        if let Some(opening) = opening
            && let Some(id) = response.headers().get("mcp-session-id")
        {
            opening.opened(String::from_utf8_lossy(id.as_bytes()).into_owned());
        }
        let idle = (event_stream && is_event_stream(&response)).then_some(STREAM_IDLE);
        response.map(|b| HeldBody::new(b, slot, idle).boxed())
    }

    /// The 429 (the principal's share is taken) or 503 (everyone's is) of a request over
    /// `share`, recorded (`session`: one the front checked is the principal's).
    async fn over_share(
        &self,
        share: &Share,
        refusal: Refusal,
        principal: &Principal,
        session: Option<&[u8]>,
    ) -> HttpResponse {
        let (per, all, what) = (share.quota.per_principal, share.quota.ceiling(), share.what);
        let held = match principal.token() {
            Some(name) => format!("the token {name} holds {per} {what}, its most"),
            None => format!("the clients of this server hold {per} {what}, their most"),
        };
        let full = format!("the server holds {all} {what}, its most");
        self.refuse_over(
            share.rule,
            refusal,
            (held, full),
            share.hint,
            principal,
            session,
        )
        .await
    }

    /// [`Self::over_share`] for the bytes of request bodies.
    async fn over_body_share(
        &self,
        refusal: Refusal,
        principal: &Principal,
        session: Option<&[u8]>,
    ) -> HttpResponse {
        const MIB: usize = 1024 * 1024;
        let (each, total) = (self.bodies.each / MIB, self.bodies.total / MIB);
        let what = "MiB of request bodies (read, or waiting for a call slot)";
        let held = match principal.token() {
            Some(name) => format!("the token {name} holds {each} {what}, its most"),
            None => format!("the clients of this server hold {each} {what}, their most"),
        };
        let full = format!("the server holds {total} {what}, its most");
        let hint = "retry when a call has ended";
        self.refuse_over(BODIES_RULE, refusal, (held, full), hint, principal, session)
            .await
    }

    /// Answers and records a request over a share: `reasons` are the principal's and the
    /// server's wording.
    async fn refuse_over(
        &self,
        rule: &'static str,
        refusal: Refusal,
        reasons: (String, String),
        hint: &str,
        principal: &Principal,
        session: Option<&[u8]>,
    ) -> HttpResponse {
        let (status, reason) = match refusal {
            Refusal::PrincipalFull => (StatusCode::TOO_MANY_REQUESTS, reasons.0),
            Refusal::ServerFull => (StatusCode::SERVICE_UNAVAILABLE, reasons.1),
        };
        // Not logged one by one (a client may ask thousands of times): the audit keeps them,
        // within its budget.
        tracing::debug!(rule, "refusing a request: {reason}");
        self.refusals
            .record(Refused {
                rule,
                status: status.as_u16(),
                reason: &reason,
                token: principal.token(),
                session,
                claimed_session: None,
            })
            .await;
        refused_response(status, &format!("{reason}; {hint}\n"), true)
    }

    /// `Ok(None)`: the server has no tokens. `Ok(Some(..))`: a known token, and the stop that
    /// fires when a reload removes it. `Err`: the 401.
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<(Holder, CancellationToken)>, HttpResponse> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        let (reason, invalid) = match auth::bearer(headers) {
            Presented::Token(t) => match tokens.current().check(t) {
                Some(holder) => match self.holder_stops.of(&holder.digest, || tokens.current()) {
                    Some(stop) => return Ok(Some((holder, stop))),
                    // Removed by a reload since the check above.
                    None => ("the bearer token matches none of the server's tokens", true),
                },
                None => ("the bearer token matches none of the server's tokens", true),
            },
            Presented::Missing => ("no Authorization: Bearer token", false),
        };
        self.refusals
            .record(Refused {
                rule: AUTH_RULE,
                status: 401,
                reason,
                token: None,
                session: None,
                claimed_session: headers.get("mcp-session-id").map(|v| v.as_bytes()),
            })
            .await;
        let mut r = refused_response(
            StatusCode::UNAUTHORIZED,
            &format!("Unauthorized: {reason}\n"),
            false,
        );
        if let Ok(v) = header::HeaderValue::from_str(&auth::challenge(&self.public_base, invalid)) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        Err(r)
    }

    /// At shutdown: records what the refusals' budget left uncounted.
    pub async fn finish(&self) {
        self.refusals.finish().await;
    }

    /// Sessions open now (created and not yet closed or expired).
    pub async fn open_sessions(&self) -> usize {
        self.owners.open().await
    }

    /// Requests to `/mcp` open now, event streams included.
    pub fn open_streams(&self) -> usize {
        self.streams.open()
    }
}

/// Closes the sessions of token values a reload removed, each time the tokens change, until
/// `end` fires.
async fn revoke_on_change(
    mut tokens: tokio::sync::watch::Receiver<Arc<auth::Tokens>>,
    owners: Arc<Owners>,
    holder_stops: Arc<HolderStops>,
    end: CancellationToken,
) {
    loop {
        tokio::select! {
            () = end.cancelled() => return,
            changed = tokens.changed() => if changed.is_err() { return },
        }
        let current = Arc::clone(&tokens.borrow_and_update());
        holder_stops.revoke(&current);
        let closed = owners.revoke(&current).await;
        if closed > 0 {
            tracing::info!(closed, "closed the sessions of tokens the reload removed");
        }
    }
}

/// A bound shared between principals, as its refusals name it.
struct Share {
    rule: &'static str,
    quota: Quota,
    what: &'static str,
    hint: &'static str,
}

const STREAM_SHARE: Share = Share {
    rule: STREAMS_RULE,
    quota: STREAMS,
    what: "open requests and event streams on /mcp",
    hint: "retry when one has ended",
};

const SESSION_SHARE: Share = Share {
    rule: SESSIONS_RULE,
    quota: SESSIONS,
    what: "open MCP sessions",
    hint: "close one (DELETE /mcp) or retry later",
};

/// Whether a body is an `initialize` request, the one POST that opens a session (a request
/// of the stateless era carries no session id either, and opens none).
fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Head<'_>>(body)
        .is_ok_and(|h| h.method.as_deref() == Some("initialize"))
}

fn is_event_stream(response: &HttpResponse) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

fn body_refused(e: &BodyError) -> HttpResponse {
    let status = match e {
        BodyError::TooLarge(_) | BodyError::Shape(_) => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::OverShare(Refusal::PrincipalFull) => StatusCode::TOO_MANY_REQUESTS,
        BodyError::OverShare(Refusal::ServerFull) => StatusCode::SERVICE_UNAVAILABLE,
        BodyError::Slow => StatusCode::REQUEST_TIMEOUT,
        BodyError::Broken(_) => StatusCode::BAD_REQUEST,
    };
    tracing::info!(status = status.as_u16(), "refused a request body: {e}");
    refused_response(status, &format!("{e}\n"), false)
}

/// A refusal: a short text that closes the connection, so a refused client holds no
/// connection afterwards; with `retry`, a `Retry-After`.
fn refused_response(status: StatusCode, text: &str, retry: bool) -> HttpResponse {
    let mut r = plain(status, text);
    let h = r.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    if retry {
        h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    r
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
