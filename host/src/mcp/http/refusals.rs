//! Audit records of the HTTP requests the front refuses before MCP sees them (a missing or
//! wrong bearer token): the pair a refused call gets, `received` then `denied`, with `tool`
//! `http`, the session id the request named (if any), `policy.rule` `http.auth` and the reason.
//!
//! Refusals cost a client nothing, so they are rate-limited like refused stdio lines (the same
//! budget: a burst, then a few a second); past it they are counted and the next pair says how
//! many went unrecorded. A record must never hold the token presented, nor any header value
//! but the session id.

use crate::audit::call::{CallTrail, Caller};
use crate::audit::record::{SessionInfo, Text};
use crate::error::RunError;
use crate::mcp::protocol_audit::Budget;
use crate::service::{Service, new_request_id};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The policy rule named in the records.
pub const AUTH_RULE: &str = "http.auth";

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

    /// Records an unauthenticated request (within the budget).
    pub async fn unauthenticated(&self, reason: &str, session_id: Option<&[u8]>) {
        let unrecorded = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !state.0.take(Instant::now()) {
                state.1 = state.1.saturating_add(1);
                return;
            }
            std::mem::take(&mut state.1)
        };
        let mut message = format!("HTTP 401: {reason}");
        if unrecorded > 0 {
            message.push_str(&format!(
                "; {unrecorded} refused requests before this one were not recorded one by one"
            ));
        }
        let caller = Caller {
            request_id: new_request_id(),
            mcp_request_id: None,
            client: None,
            session: session_id.map(|id| SessionInfo {
                id: Some(Text::of(&String::from_utf8_lossy(id))),
                token: None,
            }),
        };
        let trail = CallTrail::new(&caller, "http", &self.policy_hash);
        let mut denied = trail.denied(&RunError::invalid(message));
        if let Some(p) = denied.policy.as_mut() {
            p.rule = AUTH_RULE.to_owned();
        }
        if self.service.record(trail.received()).await.is_ok() {
            let _ = self.service.record(denied).await;
        }
    }
}
