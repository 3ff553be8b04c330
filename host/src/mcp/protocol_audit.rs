//! Audit records of the lines the MCP front refuses (not JSON, a batch, over a bound, a bad or
//! duplicate id, not an MCP message), so a client's garbage is on record like its calls.
//!
//! Each refused line gets the two records of a refused call: `received` then `denied`, with
//! `tool` `protocol`, the id when it had a usable one, the client from its handshake, the line
//! itself as a cut text (`line`: at most a 256-byte head, its length and sha256, never the
//! line), `policy.rule` `request` and `error` `INVALID_ARGUMENT` with the JSON-RPC reason.
//!
//! Garbage costs a client almost nothing to send, so these records are rate-limited: at most
//! [`BURST`] pairs at once and [`PER_SECOND`] a second after that. Lines past the budget are
//! still answered, and counted: the next pair written (and one at the end of the session) says
//! how many lines and bytes went unrecorded. A pair is at most ~8 KiB (the worst case, measured:
//! a line of control bytes, whose head is escaped as `\u00XX` in both records), so refused lines
//! add at most ~800 KiB at once and ~40 KiB/s after — the default 1 GiB cap takes more than 7
//! hours of garbage, where a valid call with 64 long arguments writes ~46 KiB on its own.
//!
//! This module must never write more of a line than its [`Text`].

use super::framing::LineDigest;
use super::head::{Reason, Refusal};
use crate::audit::call::{CallTrail, Caller};
use crate::audit::record::{ClientInfo, Text};
use crate::error::RunError;
use crate::service::{Service, new_request_id};
use std::sync::Arc;
use std::time::Instant;

/// Refused lines recorded one by one at once, before the rate applies.
pub const BURST: u32 = 100;
/// Refused lines recorded one by one per second after the burst (5 pairs of at most ~8 KiB:
/// ~40 KiB/s of log).
pub const PER_SECOND: u32 = 5;

/// A token bucket: [`BURST`] tokens, refilled at [`PER_SECOND`].
#[derive(Debug, Clone)]
pub struct Budget {
    tokens: f64,
    last: Instant,
}

impl Budget {
    /// A full bucket at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            tokens: f64::from(BURST),
            last: now,
        }
    }

    /// Takes a token at `now`, if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * f64::from(PER_SECOND)).min(f64::from(BURST));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The protocol records of one session.
pub struct ProtocolAudit {
    service: Arc<Service>,
    policy_hash: String,
    client: Option<ClientInfo>,
    budget: Budget,
    unrecorded_lines: u64,
    unrecorded_bytes: u64,
}

impl ProtocolAudit {
    /// Records for the session served by `service`.
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            policy_hash: service.policy().hash(),
            service,
            client: None,
            budget: Budget::new(Instant::now()),
            unrecorded_lines: 0,
            unrecorded_bytes: 0,
        }
    }

    /// The client's name and version from its `initialize` (cut like any value).
    pub fn set_client(&mut self, name: &str, version: &str) {
        self.client = Some(ClientInfo {
            name: Text::of(name),
            version: Text::of(version),
        });
    }

    /// Records a refused line, within the budget; returns whether it was recorded.
    pub async fn refused(&mut self, refusal: &Refusal, line: &LineDigest) -> bool {
        if !self.budget.take(Instant::now()) {
            self.unrecorded_lines = self.unrecorded_lines.saturating_add(1);
            self.unrecorded_bytes = self.unrecorded_bytes.saturating_add(line.bytes);
            return false;
        }
        let id = match &refusal.reason {
            Reason::DuplicateId(id) => Some(id),
            _ => refusal.id.as_ref(),
        };
        let mut message = format!("JSON-RPC {}: {}", refusal.code, refusal.message());
        if self.unrecorded_lines > 0 {
            message.push_str(&format!("; {}", self.take_unrecorded()));
        }
        let text = Text::of_bytes(&line.head, line.bytes, &line.sha256);
        self.write(id.map(|k| k.audit_text()), Some(text), &message)
            .await;
        true
    }

    /// At the end of the session: one pair for the lines the budget left unrecorded, if any.
    pub async fn finish(&mut self) {
        if self.unrecorded_lines > 0 {
            let message = self.take_unrecorded();
            self.write(None, None, &message).await;
        }
    }

    fn take_unrecorded(&mut self) -> String {
        let s = format!(
            "before this record {} refused lines ({} bytes in all) were answered but not \
             recorded one by one (at most {BURST} at once and {PER_SECOND} a second are)",
            self.unrecorded_lines, self.unrecorded_bytes
        );
        self.unrecorded_lines = 0;
        self.unrecorded_bytes = 0;
        s
    }

    async fn write(&self, mcp_id: Option<String>, line: Option<Text>, message: &str) {
        let caller = Caller {
            request_id: new_request_id(),
            mcp_request_id: mcp_id,
            client: self.client.clone(),
            session: None,
        };
        let mut trail = CallTrail::new(&caller, "protocol", &self.policy_hash);
        if let Some(line) = line {
            trail.refused_line(line);
        }
        let denied = trail.denied(&RunError::invalid(message));
        if let Err(e) = self.service.record(trail.received()).await {
            tracing::debug!("a refused line is not on record: {e}");
            return;
        }
        if let Err(e) = self.service.record(denied).await {
            tracing::debug!("a refused line has no denied record: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_budget_allows_a_burst_then_a_rate() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0);
        let burst = (0..1000).filter(|_| b.take(t0)).count();
        assert_eq!(burst, BURST as usize);
        assert!(!b.take(t0 + Duration::from_millis(50)));
        let t1 = t0 + Duration::from_secs(1);
        let next = (0..1000).filter(|_| b.take(t1)).count();
        assert_eq!(next, PER_SECOND as usize);
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..1000).filter(|_| b.take(t2)).count(), BURST as usize);
        // A clock that goes back gives nothing.
        assert!(!b.take(t0));
    }
}
