//! The gate between stdin and rmcp: every client line is read under its bounds, judged, and
//! then refused (with a JSON-RPC error and an audit record), held for a window slot, or parsed
//! once into rmcp's types and passed on.
//!
//! - A refused line gets its error reply at once (with the request's id when it has a usable
//!   one that is not in flight, else `null`) and a rate-limited audit record; it never takes a
//!   slot and never reaches rmcp.
//! - A request takes its id in the [`ReplyWindow`] (a duplicate is refused) and waits for a
//!   slot of its lane; waiting requests are kept as raw lines, at most [`MAX_HELD`] of them and
//!   [`MAX_HELD_BYTES`] in all, after which stdin is not read until a slot frees.
//! - `notifications/cancelled` is handled here and not passed on (see `window`); other
//!   notifications and responses pass at once.
//!
//! A line is parsed into rmcp's types only when it leaves the gate, so what waits costs its
//! bytes, not a parsed tree.

use super::framing::{Line, LineDigest, LineReader, Outbound, error_reply};
use super::head::{Lane, Message, Reason, Refusal, RequestKey, Verdict};
use super::protocol_audit::ProtocolAudit;
use super::scan::Bounds;
use super::window::{Cancelled, ReplyWindow};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::io::AsyncRead;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// Requests waiting for a slot at most before stdin is no longer read.
pub const MAX_HELD: usize = 1024;
/// Bytes of waiting requests at most before stdin is no longer read (one more line may come).
pub const MAX_HELD_BYTES: usize = 32 * 1024 * 1024;

/// A request waiting for a slot.
struct Held {
    id: RequestKey,
    line: Vec<u8>,
}

/// The gate of one session.
pub struct Gate {
    window: Arc<ReplyWindow>,
    to_rmcp: mpsc::Sender<ClientJsonRpcMessage>,
    out: mpsc::Sender<Outbound>,
    audit: ProtocolAudit,
    calls: VecDeque<Held>,
    others: VecDeque<Held>,
    held_bytes: usize,
}

/// Whether the session goes on after a step (`false`: rmcp or stdout is gone).
type Going = bool;

impl Gate {
    /// A gate feeding `to_rmcp`, answering refusals on `out`.
    pub fn new(
        window: Arc<ReplyWindow>,
        to_rmcp: mpsc::Sender<ClientJsonRpcMessage>,
        out: mpsc::Sender<Outbound>,
        audit: ProtocolAudit,
    ) -> Self {
        Self {
            window,
            to_rmcp,
            out,
            audit,
            calls: VecDeque::new(),
            others: VecDeque::new(),
            held_bytes: 0,
        }
    }

    /// Reads `input` to its end (or until rmcp or stdout is gone). Requests still waiting then
    /// are dropped: the client has gone.
    pub async fn run<R: AsyncRead + Unpin>(
        mut self,
        input: R,
        bounds: Bounds,
    ) -> std::io::Result<()> {
        let mut lines = LineReader::new(input, bounds);
        let result = loop {
            let room =
                self.calls.len() + self.others.len() < MAX_HELD && self.held_bytes < MAX_HELD_BYTES;
            let call_slots = Arc::clone(self.window.slots(Lane::Call));
            let other_slots = Arc::clone(self.window.slots(Lane::Other));
            let going = tokio::select! {
                line = lines.next(), if room => match line {
                    Err(e) => break Err(e),
                    Ok(None) => break Ok(()),
                    Ok(Some(line)) => self.on_line(line, &bounds).await,
                },
                permit = call_slots.acquire_owned(), if !self.calls.is_empty() => match permit {
                    Ok(p) => self.release(Lane::Call, p).await,
                    Err(_) => false,
                },
                permit = other_slots.acquire_owned(), if !self.others.is_empty() => match permit {
                    Ok(p) => self.release(Lane::Other, p).await,
                    Err(_) => false,
                },
                // Not reached: no room means a request is waiting. Ends the session rather
                // than panicking if that ever changes.
                else => false,
            };
            if !going {
                break Ok(());
            }
        };
        self.audit.finish().await;
        result
    }

    fn queue(&mut self, lane: Lane) -> &mut VecDeque<Held> {
        match lane {
            Lane::Call => &mut self.calls,
            Lane::Other => &mut self.others,
        }
    }

    async fn on_line(&mut self, line: Line, bounds: &Bounds) -> Going {
        let verdict = line.verdict(bounds);
        let bytes = match line {
            Line::Whole(bytes) => bytes,
            Line::Overrun { digest, .. } => {
                return match verdict {
                    Verdict::Refused(r) => self.refuse(r, &digest).await,
                    _ => true,
                };
            }
        };
        match verdict {
            Verdict::Blank => true,
            Verdict::Refused(r) => self.refuse(r, &LineDigest::of(&bytes)).await,
            Verdict::Message(Message::Request { id, lane }) => {
                if !self.window.admit(&id) {
                    let r = Refusal::invalid(Reason::DuplicateId(id), None);
                    return self.refuse(r, &LineDigest::of(&bytes)).await;
                }
                if self.queue(lane).is_empty()
                    && let Ok(p) = Arc::clone(self.window.slots(lane)).try_acquire_owned()
                {
                    return self.dispatch(id, bytes, p).await;
                }
                self.held_bytes += bytes.len();
                self.queue(lane).push_back(Held { id, line: bytes });
                true
            }
            Verdict::Message(Message::Cancel(id)) => {
                if let Some(id) = id
                    && self.window.cancel(&id) == Cancelled::Held
                {
                    self.drop_held(&id);
                }
                true
            }
            Verdict::Message(Message::Notification | Message::Response) => match parse(&bytes) {
                Ok(message) => {
                    drop(bytes);
                    self.to_rmcp.send(message).await.is_ok()
                }
                Err(r) => self.refuse(r, &LineDigest::of(&bytes)).await,
            },
        }
    }

    /// A cancelled request leaves the queue without ever reaching rmcp.
    fn drop_held(&mut self, id: &RequestKey) {
        for lane in [Lane::Call, Lane::Other] {
            let queue = self.queue(lane);
            if let Some(pos) = queue.iter().position(|h| h.id == *id)
                && let Some(held) = queue.remove(pos)
            {
                self.held_bytes -= held.line.len();
                return;
            }
        }
    }

    /// A slot of `lane` is free: the first request waiting there goes.
    async fn release(&mut self, lane: Lane, permit: OwnedSemaphorePermit) -> Going {
        let Some(held) = self.queue(lane).pop_front() else {
            return true;
        };
        self.held_bytes -= held.line.len();
        self.dispatch(held.id, held.line, permit).await
    }

    /// Parses a request and hands it to rmcp under `permit`; one rmcp cannot parse is refused
    /// (with its id, which is no longer in flight) and frees its slot.
    async fn dispatch(
        &mut self,
        id: RequestKey,
        bytes: Vec<u8>,
        permit: OwnedSemaphorePermit,
    ) -> Going {
        let request = match parse(&bytes) {
            Ok(JsonRpcMessage::Request(r)) => r,
            other => {
                let mut r = match other {
                    Err(r) => r,
                    Ok(_) => Refusal::invalid(Reason::Shape, None),
                };
                self.window.abandon(&id);
                drop(permit);
                r.id = Some(id);
                return self.refuse(r, &LineDigest::of(&bytes)).await;
            }
        };
        drop(bytes);
        if let ClientRequest::InitializeRequest(init) = &request.request {
            let info = &init.params.client_info;
            self.audit.set_client(&info.name, &info.version);
        }
        if !self.window.forward(&id, permit) {
            return true; // cancelled while it waited; the queue no longer had it
        }
        self.to_rmcp
            .send(JsonRpcMessage::Request(request))
            .await
            .is_ok()
    }

    /// Answers and records a refused line.
    async fn refuse(&mut self, refusal: Refusal, line: &LineDigest) -> Going {
        let message = refusal.message();
        if self.audit.refused(&refusal, line).await {
            tracing::warn!(
                code = refusal.code,
                bytes = line.bytes,
                "refused a message: {message}"
            );
        }
        // An id in flight belongs to another request: echoing it would answer that one.
        let id = refusal
            .id
            .as_ref()
            .filter(|id| !self.window.is_in_flight(id));
        let reply = error_reply(id, refusal.code, &message);
        self.out.send(Outbound::plain(reply)).await.is_ok()
    }
}

/// Parses a judged line into rmcp's message type.
fn parse(bytes: &[u8]) -> Result<ClientJsonRpcMessage, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => -32700,
            _ => -32600,
        };
        Refusal {
            code,
            reason: Reason::Unparsed(e.to_string()),
            id: None,
        }
    })
}
