//! A bound on tool calls whose replies are not yet on stdout.
//!
//! Bounded queues alone do not stop a client that sends calls and stops reading stdout: each
//! call runs, and its finished reply (up to a few MiB) waits in memory for a writer that cannot
//! write. So `tools/call` requests pass a window on their way to rmcp: at most `size` of them
//! may be forwarded and unanswered. The slot of a call is given back when its reply has been
//! written to stdout, or when the client cancels it. Calls beyond the window wait here as
//! request lines (bounded in bytes, after which stdin is no longer read); every other message —
//! in particular `notifications/cancelled` — passes at once, so a client can always cancel.
//! A cancelled call still waiting here is dropped without reaching rmcp (MCP lets a cancelled
//! request go unanswered).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Request bytes held back at most before stdin is no longer read.
const MAX_HELD_BYTES: usize = 32 * 1024 * 1024;

/// The calls in flight between stdin and stdout.
#[derive(Debug)]
pub struct ReplyWindow {
    slots: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Calls held back here, by id: how many.
    held: HashMap<String, usize>,
    /// Held-back calls the client cancelled, by id: how many to drop.
    dropped: HashMap<String, usize>,
    /// Forwarded calls still owed a reply, by id, with their slots.
    owed: HashMap<String, Vec<OwnedSemaphorePermit>>,
}

/// The parts of a JSON-RPC message the window looks at.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<CancelParams>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct CancelParams {
    #[serde(default, rename = "requestId")]
    request_id: Option<Value>,
}

/// What a client line is, for the window.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// A `tools/call` request with this id.
    Call(String),
    /// `notifications/cancelled` for this request id.
    Cancel(String),
    /// Anything else: passed on at once.
    Other,
}

fn key(id: &Value) -> String {
    id.to_string()
}

fn classify(line: &[u8]) -> Kind {
    let Ok(head) = serde_json::from_slice::<Head>(line) else {
        return Kind::Other;
    };
    match (head.method.as_deref(), head.id) {
        (Some("tools/call"), Some(id)) => Kind::Call(key(&id)),
        (Some("notifications/cancelled"), None) => head
            .params
            .and_then(|p| p.request_id)
            .map_or(Kind::Other, |id| Kind::Cancel(key(&id))),
        _ => Kind::Other,
    }
}

/// The id of a line on its way to stdout, when it is a reply (`result` or `error`).
fn reply_id(line: &str) -> Option<String> {
    let head = serde_json::from_str::<Head>(line).ok()?;
    if head.method.is_some() || (head.result.is_none() && head.error.is_none()) {
        return None;
    }
    head.id.as_ref().map(key)
}

impl ReplyWindow {
    /// A window of `size` calls (at least 1).
    pub fn new(size: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(size.max(1))),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls forwarded and not yet answered.
    pub fn owed(&self) -> usize {
        self.state().owed.values().map(Vec::len).sum()
    }

    /// A line was written to stdout: if it is the reply to an owed call, its slot is free.
    pub fn written(&self, line: &str) {
        if self.state().owed.is_empty() {
            return;
        }
        if let Some(id) = reply_id(line) {
            self.settle(&id);
        }
    }

    fn settle(&self, id: &str) -> bool {
        let mut state = self.state();
        let Some(permits) = state.owed.get_mut(id) else {
            return false;
        };
        let released = permits.pop().is_some();
        if permits.is_empty() {
            state.owed.remove(id);
        }
        released
    }

    /// The client cancelled `id`: a held-back call is dropped, a forwarded one frees its slot
    /// (rmcp sends no reply for it).
    fn cancel(&self, id: &str) {
        let mut state = self.state();
        if let Some(n) = state.held.get_mut(id)
            && *n > 0
        {
            *n -= 1;
            if *n == 0 {
                state.held.remove(id);
            }
            *state.dropped.entry(id.to_owned()).or_default() += 1;
            return;
        }
        drop(state);
        self.settle(id);
    }

    fn hold(&self, id: &str) {
        *self.state().held.entry(id.to_owned()).or_default() += 1;
    }

    /// A held-back call leaves the queue: `Some(permit)` was cancelled meanwhile and goes no
    /// further; otherwise it is now owed a reply under `permit`.
    fn release(&self, id: &str, permit: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
        let mut state = self.state();
        if let Some(n) = state.dropped.get_mut(id)
            && *n > 0
        {
            *n -= 1;
            if *n == 0 {
                state.dropped.remove(id);
            }
            return Some(permit);
        }
        if let Some(n) = state.held.get_mut(id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.held.remove(id);
            }
        }
        state.owed.entry(id.to_owned()).or_default().push(permit);
        None
    }
}

/// Passes client lines from `input` to `to_rmcp`, holding `tools/call` requests back while the
/// window is full. Returns at the end of `input` (anything still held back is dropped: the
/// client has gone).
pub async fn gate<R, W>(input: R, mut to_rmcp: W, window: Arc<ReplyWindow>) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = BufReader::new(input).lines();
    let mut queue: VecDeque<(String, String)> = VecDeque::new();
    let mut held_bytes = 0usize;
    loop {
        tokio::select! {
            line = lines.next_line(), if held_bytes < MAX_HELD_BYTES => {
                let Some(line) = line? else { return Ok(()) };
                match classify(line.as_bytes()) {
                    Kind::Call(id) => {
                        window.hold(&id);
                        held_bytes += line.len();
                        queue.push_back((id, line));
                    }
                    Kind::Cancel(id) => {
                        window.cancel(&id);
                        forward(&mut to_rmcp, &line).await?;
                    }
                    Kind::Other => forward(&mut to_rmcp, &line).await?,
                }
            }
            permit = Arc::clone(&window.slots).acquire_owned(), if !queue.is_empty() => {
                let Ok(permit) = permit else { return Ok(()) };
                let Some((id, line)) = queue.pop_front() else { continue };
                held_bytes -= line.len();
                if window.release(&id, permit).is_none() {
                    forward(&mut to_rmcp, &line).await?;
                }
            }
        }
    }
}

async fn forward<W: AsyncWrite + Unpin>(to_rmcp: &mut W, line: &str) -> std::io::Result<()> {
    to_rmcp.write_all(line.as_bytes()).await?;
    to_rmcp.write_all(b"\n").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    fn call(id: u32) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"run"}}}}"#)
    }

    fn reply(id: u32) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#)
    }

    fn cancel(id: u32) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{id}}}}}"#
        )
    }

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify(call(7).as_bytes()), Kind::Call("7".into()));
        assert_eq!(classify(cancel(7).as_bytes()), Kind::Cancel("7".into()));
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":"a","method":"tools/call"}"#),
            Kind::Call("\"a\"".into())
        );
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Kind::Other
        );
        assert_eq!(classify(b"not json"), Kind::Other);
        assert_eq!(reply_id(&reply(7)).as_deref(), Some("7"));
        assert_eq!(
            reply_id(r#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"m"}}"#).as_deref(),
            Some("3")
        );
        assert_eq!(reply_id(&call(7)), None);
        assert_eq!(
            reply_id(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#),
            None
        );
    }

    /// Reads what the gate forwarded so far.
    async fn forwarded(rx: &mut tokio::io::DuplexStream) -> String {
        let mut buf = vec![0; 64 * 1024];
        let mut out = String::new();
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), rx.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        out
    }

    #[tokio::test]
    async fn calls_past_the_window_wait_for_replies_and_others_pass() {
        let window = ReplyWindow::new(2);
        let (mut client, gate_in) = tokio::io::duplex(1 << 20);
        let (to_rmcp, mut rmcp) = tokio::io::duplex(1 << 20);
        let task = tokio::spawn(gate(gate_in, to_rmcp, Arc::clone(&window)));
        let input = [
            call(1),
            call(2),
            call(3),
            call(4),
            cancel(4),
            r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#.into(),
        ];
        client
            .write_all(format!("{}\n", input.join("\n")).as_bytes())
            .await
            .unwrap();
        let got = forwarded(&mut rmcp).await;
        assert!(
            got.contains("\"id\":1,") && got.contains("\"id\":2,"),
            "{got}"
        );
        assert!(
            !got.contains("\"id\":3,"),
            "call 3 passed a full window: {got}"
        );
        assert!(got.contains("\"method\":\"ping\""), "{got}");
        assert!(got.contains("notifications/cancelled"), "{got}");
        assert_eq!(window.owed(), 2);

        // The reply to 1 is written: 3 goes through; 4 was cancelled while waiting and never does.
        window.written(&reply(1));
        let got = forwarded(&mut rmcp).await;
        assert!(got.contains("\"id\":3,"), "{got}");
        window.written(&reply(2));
        let got = forwarded(&mut rmcp).await;
        assert!(
            !got.contains("\"id\":4,"),
            "a cancelled call was forwarded: {got}"
        );
        assert_eq!(window.owed(), 1);

        // Cancelling a forwarded call frees its slot too.
        client
            .write_all(format!("{}\n{}\n", cancel(3), call(5)).as_bytes())
            .await
            .unwrap();
        let got = forwarded(&mut rmcp).await;
        assert!(got.contains("\"id\":5,"), "{got}");
        drop(client);
        task.await.unwrap().unwrap();
    }

    #[test]
    fn unknown_replies_and_cancels_change_nothing() {
        let window = ReplyWindow::new(1);
        window.written(&reply(42));
        window.cancel("42");
        assert_eq!(window.owed(), 0);
        assert_eq!(window.slots.available_permits(), 1);
    }
}
