//! The rmcp transport of a session: messages the gate (`inbound`) has already read, judged and
//! parsed come in over a channel, and rmcp's replies go out to the stdout writer's queue.
//!
//! rmcp never reads bytes, so each client line is parsed exactly once into rmcp's types, after
//! the framing bounded it. On the way out this is where a reply meets the [`ReplyWindow`]: the
//! reply to a cancelled request is dropped here (freeing its slot), every other reply is
//! serialised and queued with the id whose slot its writing frees.
//!
//! It must not reorder or alter rmcp's messages, and must not buffer beyond its bounded
//! channels: a `send` waits while the stdout queue is full.

use super::framing::{Outbound, error_reply};
use super::head::RequestKey;
use super::window::ReplyWindow;
use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, NumberOrString, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Parsed client messages queued for rmcp before the gate waits. Small: each may be a whole
/// parsed line (up to the line bound), and rmcp takes them as fast as they come unless it is
/// itself waiting for stdout.
pub const INBOUND_QUEUE: usize = 2;

/// Why a message could not be passed on.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The stdout writer is gone (the client closed its end, or the session is ending).
    #[error("the client's output channel is closed")]
    Closed,
}

/// The session's transport, handed to rmcp.
pub struct ChannelTransport {
    inbound: mpsc::Receiver<ClientJsonRpcMessage>,
    outbound: mpsc::Sender<Outbound>,
    window: Arc<ReplyWindow>,
}

impl ChannelTransport {
    /// A transport that reads `inbound` and writes to `outbound`, settling replies with
    /// `window`.
    pub fn new(
        inbound: mpsc::Receiver<ClientJsonRpcMessage>,
        outbound: mpsc::Sender<Outbound>,
        window: Arc<ReplyWindow>,
    ) -> Self {
        Self {
            inbound,
            outbound,
            window,
        }
    }
}

/// The window's key for an rmcp request id.
pub fn key_of(id: &NumberOrString) -> RequestKey {
    match id {
        NumberOrString::Number(n) => RequestKey::Int(*n),
        NumberOrString::String(s) => RequestKey::Str(Arc::clone(s)),
    }
}

/// The request a server message answers, if it is a reply.
fn answers(message: &ServerJsonRpcMessage) -> Option<RequestKey> {
    match message {
        JsonRpcMessage::Response(r) => Some(key_of(&r.id)),
        JsonRpcMessage::Error(e) => e.id.as_ref().map(key_of),
        _ => None,
    }
}

/// The line to write for `message` and the request whose slot it frees.
fn outbound(message: &ServerJsonRpcMessage, settles: Option<RequestKey>) -> Outbound {
    let line = serde_json::to_string(message).unwrap_or_else(|e| {
        tracing::error!("cannot encode a reply: {e}");
        error_reply(
            settles.as_ref(),
            -32603,
            "Internal error: the reply could not be encoded",
        )
    });
    Outbound { line, settles }
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = TransportError;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), TransportError>> + Send + 'static {
        let outbound_queue = self.outbound.clone();
        let window = Arc::clone(&self.window);
        async move {
            let settles = answers(&item);
            if let Some(id) = &settles
                && !window.on_reply(id)
            {
                tracing::debug!(%id, "dropping the reply to a cancelled request");
                return Ok(());
            }
            let line = outbound(&item, settles);
            drop(item);
            outbound_queue
                .send(line)
                .await
                .map_err(|_| TransportError::Closed)
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.inbound.recv()
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.inbound.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::head::Lane;
    use rmcp::model::{EmptyResult, ServerResult};

    #[tokio::test]
    async fn replies_settle_and_cancelled_ones_are_dropped() {
        let window = ReplyWindow::new(1);
        let (_in_tx, in_rx) = mpsc::channel(1);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let mut t = ChannelTransport::new(in_rx, out_tx, Arc::clone(&window));
        for n in [1, 2] {
            assert!(window.admit(&RequestKey::Int(n)));
            let p = Arc::clone(window.slots(Lane::Other))
                .try_acquire_owned()
                .unwrap();
            assert!(window.forward(&RequestKey::Int(n), p));
        }
        window.cancel(&RequestKey::Int(2));
        for n in [1, 2] {
            let reply = ServerJsonRpcMessage::response(
                ServerResult::EmptyResult(EmptyResult {}),
                NumberOrString::Number(n),
            );
            t.send(reply).await.unwrap();
        }
        let got = out_rx.try_recv().unwrap();
        assert_eq!(got.settles, Some(RequestKey::Int(1)));
        let v: serde_json::Value = serde_json::from_str(&got.line).unwrap();
        assert_eq!(v["id"], 1);
        assert!(
            out_rx.try_recv().is_err(),
            "the cancelled reply was dropped"
        );
        assert_eq!(window.in_flight(), 1);
        drop(window.settle(&RequestKey::Int(1)));
        assert_eq!(window.in_flight(), 0);
    }
}
