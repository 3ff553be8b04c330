//! Audit records of the HTTP requests the front refuses before MCP sees them — a missing or
//! wrong bearer token (`http.auth`), a principal over its share of streams (`http.streams`),
//! sessions (`http.sessions`) or bytes of request bodies (`http.bodies`): the pair a refused call gets, `received` then `denied`, with
//! `tool` `http`, the rule and the reason.
//!
//! A refused request's `Mcp-Session-Id` is only what the client claims: it never goes into
//! the record's `session` (which names sessions the server knows), only into the message, cut
//! short and marked as claimed. A session id is recorded as the session only when the front
//! checked that the request's principal owns it.
//!
//! Refusals cost a client nothing, so they are rate-limited like refused stdio lines (the same
//! budget: a burst, then a few a second); past it they are counted and the next pair says how
//! many went unrecorded, or, when none follows, one pair at shutdown ([`Refusals::finish`]). A record must never hold the token presented, nor any header value
//! but the (cut) session id.

use crate::audit::call::{CallTrail, Caller};
use crate::audit::record::{SessionInfo, Text};
use crate::error::RunError;
use crate::mcp::protocol_audit::Budget;
use crate::service::{Service, new_request_id};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The rule of a missing or wrong token.
pub const AUTH_RULE: &str = "http.auth";
/// The rule of a principal over its share of open requests and streams.
pub const STREAMS_RULE: &str = "http.streams";
/// The rule of a principal over its share of open sessions.
pub const SESSIONS_RULE: &str = "http.sessions";
/// The rule of a principal over its share of the bytes of request bodies held.
pub const BODIES_RULE: &str = "http.bodies";
/// The rule of the count of refusals not recorded one by one, written at shutdown.
pub const UNRECORDED_RULE: &str = "http.unrecorded";
/// How much of a claimed session id a message keeps (as escaped).
const CLAIMED_ID_CHARS: usize = 64;

/// One refused request, as recorded.
pub struct Refused<'a> {
    /// The policy rule.
    pub rule: &'static str,
    /// The HTTP status answered (0: none, for the count written at shutdown).
    pub status: u16,
    /// Why, in words.
    pub reason: &'a str,
    /// The name of the token the request presented, when it is one of the server's.
    pub token: Option<&'a str>,
    /// The session the request named and the front checked as the principal's own.
    pub session: Option<&'a [u8]>,
    /// The session id the request named, unchecked.
    pub claimed_session: Option<&'a [u8]>,
}

/// The refusals of one server.
pub struct Refusals {
    service: Arc<Service>,
    policy_hash: String,
    state: Mutex<(Budget, u64)>,
}

impl Refusals {
    /// Records for `service`'s log.
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            policy_hash: service.policy().hash(),
            service,
            state: Mutex::new((Budget::new(Instant::now()), 0)),
        }
    }

    /// Records a refused request (within the budget).
    pub async fn record(&self, refused: Refused<'_>) {
        let unrecorded = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !state.0.take(Instant::now()) {
                state.1 = state.1.saturating_add(1);
                return;
            }
            std::mem::take(&mut state.1)
        };
        self.write(refused, unrecorded).await;
    }

    /// At shutdown: the refusals past the budget that no later record counted get one pair
    /// of their own (rule [`UNRECORDED_RULE`]), so stopping the server cannot hide a burst.
    pub async fn finish(&self) {
        let unrecorded = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut state.1)
        };
        if unrecorded == 0 {
            return;
        }
        let reason = format!(
            "{unrecorded} refused requests before the server stopped were not recorded one by one"
        );
        let refused = Refused {
            rule: UNRECORDED_RULE,
            status: 0,
            reason: &reason,
            token: None,
            session: None,
            claimed_session: None,
        };
        self.write(refused, 0).await;
    }

    async fn write(&self, refused: Refused<'_>, unrecorded: u64) {
        let mut message = if refused.status == 0 {
            refused.reason.to_owned()
        } else {
            format!("HTTP {}: {}", refused.status, refused.reason)
        };
        if let Some(claimed) = refused.claimed_session {
            message.push_str(&format!(
                "; the request named Mcp-Session-Id {} (claimed, not checked)",
                claimed_id(claimed)
            ));
        }
        if unrecorded > 0 {
            message.push_str(&format!(
                "; {unrecorded} refused requests before this one were not recorded one by one"
            ));
        }
        let session = (refused.token.is_some() || refused.session.is_some()).then(|| SessionInfo {
            id: refused
                .session
                .map(|id| Text::of(&String::from_utf8_lossy(id))),
            token: refused.token.map(str::to_owned),
        });
        let caller = Caller {
            request_id: new_request_id(),
            mcp_request_id: None,
            client: None,
            session,
        };
        let trail = CallTrail::new(&caller, "http", &self.policy_hash);
        let mut denied = trail.denied(&RunError::invalid(message));
        if let Some(p) = denied.policy.as_mut() {
            p.rule = refused.rule.to_owned();
        }
        if self.service.record(trail.received()).await.is_ok() {
            let _ = self.service.record(denied).await;
        }
    }
}

/// A claimed id as a quoted, escaped text of at most [`CLAIMED_ID_CHARS`] characters, with its
/// length when it was cut.
fn claimed_id(id: &[u8]) -> String {
    let text = String::from_utf8_lossy(id);
    let escaped: String = text.escape_debug().collect();
    let kept: String = escaped.chars().take(CLAIMED_ID_CHARS).collect();
    if kept.len() == escaped.len() {
        format!("\"{kept}\"")
    } else {
        format!("\"{kept}…\" ({} bytes)", id.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_id_is_quoted_escaped_and_cut() {
        assert_eq!(claimed_id(b"abc"), "\"abc\"");
        assert_eq!(claimed_id(b"a\"\n"), "\"a\\\"\\n\"");
        let long = claimed_id(&[b'x'; 10_000]);
        assert!(
            long.starts_with(&format!("\"{}…\"", "x".repeat(64))),
            "{long}"
        );
        assert!(long.ends_with("(10000 bytes)"), "{long}");
        assert!(long.len() < 100);
    }
}
