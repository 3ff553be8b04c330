//! The requests in flight between stdin and stdout, by id: a bound on replies not yet written,
//! one id per request, and cancellation.
//!
//! Bounded queues alone do not stop a client that sends requests and stops reading stdout:
//! each request is answered, and its reply (a few KiB for `tools/list`, a few MiB for a call)
//! waits in memory for a writer that cannot write. So every request — anything with a `method`
//! and an `id` — needs a slot of its lane ([`Lane::Call`] for `tools/call`, [`Lane::Other`] for
//! the rest, so a `ping` never waits behind long calls) before it reaches rmcp, and keeps it
//! until its reply has been written to stdout. Requests without a slot wait in the gate
//! (`inbound`), bounded there. Notifications and responses need no slot.
//!
//! The table also makes ids unique: an id is in flight from the moment its request is read
//! until its reply starts out to stdout (or is dropped after a cancellation), and a second
//! request with the same id meanwhile is refused, instead of running twice with one of the
//! replies lost. The id is freed *before* the reply is written, the slot only after: a client
//! that reuses an id as soon as it has read the reply must never find it still taken.
//!
//! Cancellation is handled here, never by rmcp: `notifications/cancelled` fires the request's
//! [`CancellationToken`] (the handler stops the call), and when rmcp's reply for it arrives it
//! is dropped (MCP: a cancelled request gets no reply) and the slot freed. rmcp always answers
//! a request it never saw cancelled, so every slot comes back exactly once.

use super::head::{Lane, RequestKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Requests of [`Lane::Other`] forwarded and unanswered at most. Their replies are small
/// (`tools/list`, the largest, is a few KiB).
pub const OTHER_SLOTS: usize = 16;

/// The requests in flight.
#[derive(Debug)]
pub struct ReplyWindow {
    calls: Arc<Semaphore>,
    others: Arc<Semaphore>,
    table: Mutex<HashMap<RequestKey, Flight>>,
}

#[derive(Debug)]
struct Flight {
    state: State,
    cancel: CancellationToken,
}

#[derive(Debug)]
enum State {
    /// Read, waiting in the gate for a slot.
    Held,
    /// Forwarded to rmcp under this slot; its reply is owed.
    Owed(OwnedSemaphorePermit),
    /// Forwarded, then cancelled: its reply will be dropped.
    Cancelled(OwnedSemaphorePermit),
}

/// What a cancellation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The request was still waiting in the gate; the gate must drop it.
    Held,
    /// The request had been forwarded; its call is told to stop and its reply will be dropped.
    Forwarded,
    /// No request with that id is in flight.
    Unknown,
}

impl ReplyWindow {
    /// A window of `call_slots` tool calls (at least 1) and [`OTHER_SLOTS`] other requests.
    pub fn new(call_slots: usize) -> Arc<Self> {
        Arc::new(Self {
            calls: Arc::new(Semaphore::new(call_slots.max(1))),
            others: Arc::new(Semaphore::new(OTHER_SLOTS)),
            table: Mutex::new(HashMap::new()),
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<RequestKey, Flight>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slots of a lane.
    pub fn slots(&self, lane: Lane) -> &Arc<Semaphore> {
        match lane {
            Lane::Call => &self.calls,
            Lane::Other => &self.others,
        }
    }

    /// Takes `id` for a request just read. `false`: a request with that id is in flight.
    pub fn admit(&self, id: &RequestKey) -> bool {
        let mut table = self.table();
        if table.contains_key(id) {
            return false;
        }
        table.insert(
            id.clone(),
            Flight {
                state: State::Held,
                cancel: CancellationToken::new(),
            },
        );
        true
    }

    /// A held request goes to rmcp under `permit`. `false` (and the permit is returned to its
    /// lane) if it is no longer held.
    pub fn forward(&self, id: &RequestKey, permit: OwnedSemaphorePermit) -> bool {
        match self.table().get_mut(id) {
            Some(f) if matches!(f.state, State::Held) => {
                f.state = State::Owed(permit);
                true
            }
            _ => false,
        }
    }

    /// Forgets a request that will not be forwarded after all (refused while leaving the gate).
    pub fn abandon(&self, id: &RequestKey) {
        self.table().remove(id);
    }

    /// The client cancelled `id`.
    pub fn cancel(&self, id: &RequestKey) -> Cancelled {
        let mut table = self.table();
        let Some(flight) = table.get_mut(id) else {
            return Cancelled::Unknown;
        };
        flight.cancel.cancel();
        match std::mem::replace(&mut flight.state, State::Held) {
            State::Held => {
                table.remove(id);
                Cancelled::Held
            }
            State::Owed(p) | State::Cancelled(p) => {
                flight.state = State::Cancelled(p);
                Cancelled::Forwarded
            }
        }
    }

    /// The token that fires when the client cancels `id` (for the handler running it).
    pub fn cancel_token(&self, id: &RequestKey) -> Option<CancellationToken> {
        self.table().get(id).map(|f| f.cancel.clone())
    }

    /// rmcp produced the reply to `id`: `true` to write it, `false` to drop it (the request was
    /// cancelled; its slot is free now).
    pub fn on_reply(&self, id: &RequestKey) -> bool {
        let mut table = self.table();
        if matches!(table.get(id).map(|f| &f.state), Some(State::Cancelled(_))) {
            table.remove(id);
            return false;
        }
        true
    }

    /// The reply to `id` is about to be written. The id is free from now on, because a client
    /// may send its next request with the same id as soon as it reads this reply; the slot
    /// returned stays taken until the caller drops it, once the reply is out.
    pub fn settle(&self, id: &RequestKey) -> Option<OwnedSemaphorePermit> {
        match self.table().remove(id)?.state {
            State::Held => None,
            State::Owed(p) | State::Cancelled(p) => Some(p),
        }
    }

    /// Whether a request with `id` is in flight (held, forwarded, or answered but not yet
    /// written).
    pub fn is_in_flight(&self, id: &RequestKey) -> bool {
        self.table().contains_key(id)
    }

    /// Requests read and not yet answered (held, forwarded or cancelled).
    pub fn in_flight(&self) -> usize {
        self.table().len()
    }

    /// Requests forwarded to rmcp whose replies are not yet written or dropped.
    pub fn owed(&self) -> usize {
        self.table()
            .values()
            .filter(|f| !matches!(f.state, State::Held))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: i64) -> RequestKey {
        RequestKey::Int(n)
    }

    #[test]
    fn an_id_is_taken_until_its_reply_starts_out_and_the_slot_until_it_is_written() {
        let w = ReplyWindow::new(2);
        assert!(w.admit(&key(1)));
        assert!(!w.admit(&key(1)), "held");
        let p = Arc::clone(w.slots(Lane::Call)).try_acquire_owned().unwrap();
        assert!(w.forward(&key(1), p));
        assert!(!w.admit(&key(1)), "forwarded");
        assert_eq!(w.slots(Lane::Call).available_permits(), 1);
        assert!(w.on_reply(&key(1)));
        assert!(!w.admit(&key(1)), "replied, not yet settled");
        let slot = w.settle(&key(1)).expect("its slot");
        assert!(w.admit(&key(1)), "free again before the reply is written");
        assert_eq!(
            w.slots(Lane::Call).available_permits(),
            1,
            "slot still taken"
        );
        drop(slot);
        assert_eq!(w.slots(Lane::Call).available_permits(), 2);
        assert!(w.admit(&RequestKey::Str("1".into())), "\"1\" is not 1");
    }

    #[test]
    fn a_cancelled_request_loses_its_reply_and_frees_its_slot_once() {
        let w = ReplyWindow::new(1);
        assert!(w.admit(&key(5)));
        let token = w.cancel_token(&key(5)).unwrap();
        let p = Arc::clone(w.slots(Lane::Other))
            .try_acquire_owned()
            .unwrap();
        assert!(w.forward(&key(5), p));
        assert_eq!(w.cancel(&key(5)), Cancelled::Forwarded);
        assert!(token.is_cancelled());
        assert_eq!(
            w.cancel(&key(5)),
            Cancelled::Forwarded,
            "twice changes nothing"
        );
        assert_eq!(w.slots(Lane::Other).available_permits(), OTHER_SLOTS - 1);
        assert!(!w.on_reply(&key(5)), "dropped");
        assert_eq!(w.slots(Lane::Other).available_permits(), OTHER_SLOTS);
        assert_eq!(w.in_flight(), 0);
        assert!(w.settle(&key(5)).is_none());
        assert_eq!(w.slots(Lane::Other).available_permits(), OTHER_SLOTS);
    }

    #[test]
    fn a_held_request_cancelled_is_forgotten() {
        let w = ReplyWindow::new(1);
        assert!(w.admit(&key(9)));
        assert_eq!(w.cancel(&key(9)), Cancelled::Held);
        assert_eq!(w.in_flight(), 0);
        let p = Arc::clone(w.slots(Lane::Call)).try_acquire_owned().unwrap();
        assert!(!w.forward(&key(9), p), "no longer held");
        assert_eq!(w.slots(Lane::Call).available_permits(), 1);
        assert_eq!(w.cancel(&key(42)), Cancelled::Unknown);
        assert!(w.on_reply(&key(42)), "an unknown reply is written");
    }
}
