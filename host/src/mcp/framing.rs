//! The stdio framing of the MCP channel: client lines in, whole reply lines out.
//!
//! [`LineReader`] reads stdin line by line under [`Bounds`]: the length, and (through the
//! [`Scanner`]) the nesting depth and element count, all judged while the bytes arrive. A line
//! over any bound is not kept: the rest of it is read and thrown away, counting its length and
//! hashing it for the audit record, so a 16 MiB `[0,0,…]` costs the server a few kilobytes.
//! Every line within its bounds is handed on whole, and [`Line::verdict`] says what it is
//! ([`super::head`]).
//!
//! On the way out, every line — rmcp's replies and the refusals of this layer — goes through
//! one bounded queue and one writer task that writes whole lines, so stdout never carries a
//! torn or interleaved message, and a client that stops reading stalls the server instead of
//! growing it. The writer says when a reply is out, which frees its request's window slot.
//!
//! Nothing here builds a `serde_json::Value` of a client line.

use super::head::{RequestKey, Verdict, classify, overrun_refusal};
use super::scan::{Bounds, Overrun, Scanner};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Lines buffered towards stdout before writers wait.
const OUTPUT_QUEUE: usize = 64;

/// How much of a refused line its digest keeps.
pub const DIGEST_HEAD_BYTES: usize = crate::audit::record::MAX_VALUE_BYTES;

/// One line read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line within every bound, without its newline.
    Whole(Vec<u8>),
    /// A line over a bound: only its digest was kept.
    Overrun {
        /// The bound it crossed (the length bound wins over the others).
        overrun: Overrun,
        /// Its length, first bytes and sha256.
        digest: LineDigest,
    },
}

impl Line {
    /// What the line is (see [`super::head::judge_line`], which gives the same verdict for the
    /// same line read whole).
    pub fn verdict(&self, bounds: &Bounds) -> Verdict {
        match self {
            Self::Whole(line) => classify(line),
            Self::Overrun { overrun, .. } => Verdict::Refused(overrun_refusal(*overrun, bounds)),
        }
    }
}

/// A line described without keeping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDigest {
    /// Its length in bytes.
    pub bytes: u64,
    /// Its first bytes (at most [`DIGEST_HEAD_BYTES`]).
    pub head: Vec<u8>,
    /// sha256 of all of it.
    pub sha256: [u8; 32],
}

impl LineDigest {
    /// The digest of a line held whole.
    pub fn of(line: &[u8]) -> Self {
        let mut d = DigestBuilder::default();
        d.update(line);
        d.finish()
    }
}

#[derive(Default)]
struct DigestBuilder {
    hasher: Sha256,
    bytes: u64,
    head: Vec<u8>,
}

impl DigestBuilder {
    fn update(&mut self, bytes: &[u8]) {
        let room = DIGEST_HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.hasher.update(bytes);
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
    }

    fn finish(self) -> LineDigest {
        LineDigest {
            bytes: self.bytes,
            head: self.head,
            sha256: self.hasher.finalize().into(),
        }
    }
}

/// Reads client lines under [`Bounds`].
pub struct LineReader<R> {
    reader: BufReader<R>,
    state: LineState,
}

/// The line being read; kept in the reader so [`LineReader::next`] is cancel-safe.
struct LineState {
    bounds: Bounds,
    line: Vec<u8>,
    scanner: Scanner,
    /// Set once the line crossed a bound: the rest is only counted and hashed.
    skipping: Option<DigestBuilder>,
}

impl LineState {
    fn absorb(&mut self, part: &[u8]) {
        if let Some(d) = &mut self.skipping {
            d.update(part);
            return;
        }
        self.scanner.feed(part);
        let len = self.line.len().saturating_add(part.len());
        if self.scanner.overrun().is_some() || len > self.bounds.max_line_bytes {
            let mut d = DigestBuilder::default();
            d.update(&self.line);
            d.update(part);
            self.line = Vec::new();
            self.skipping = Some(d);
            return;
        }
        if len > self.line.capacity() {
            // Grow by doubling, but never past the bound.
            let target = len
                .max(self.line.capacity().saturating_mul(2))
                .max(4096)
                .min(self.bounds.max_line_bytes);
            self.line.reserve_exact(target - self.line.len());
        }
        self.line.extend_from_slice(part);
    }

    fn is_empty(&self) -> bool {
        self.line.is_empty() && self.skipping.is_none()
    }

    fn finish(&mut self) -> Line {
        let scanner = std::mem::replace(&mut self.scanner, Scanner::new(&self.bounds));
        match self.skipping.take() {
            None => Line::Whole(std::mem::take(&mut self.line)),
            Some(d) => {
                let digest = d.finish();
                let too_long = digest.bytes > self.bounds.max_line_bytes as u64;
                let overrun = match scanner.overrun() {
                    Some(o) if !too_long => o,
                    _ => Overrun::Length,
                };
                Line::Overrun { overrun, digest }
            }
        }
    }
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader of `input` under `bounds`.
    pub fn new(input: R, bounds: Bounds) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, input),
            state: LineState {
                bounds,
                line: Vec::new(),
                scanner: Scanner::new(&bounds),
                skipping: None,
            },
        }
    }

    /// The bounds lines are read under.
    pub fn bounds(&self) -> &Bounds {
        &self.state.bounds
    }

    /// The next line, or `None` at the end of the input. A last line without a newline is
    /// still a line. Cancel-safe: a partly read line stays in the reader.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                if self.state.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.state.finish()));
            }
            let (len, newline) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            self.state.absorb(&chunk[..len]);
            self.reader.consume(len + usize::from(newline));
            if newline {
                return Ok(Some(self.state.finish()));
            }
        }
    }
}

/// A JSON-RPC error response line; `id` is `null` when not given.
pub fn error_reply(id: Option<&RequestKey>, code: i64, message: &str) -> String {
    let id = id.map_or(serde_json::Value::Null, RequestKey::to_json);
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// One line on its way to stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The line, without its newline.
    pub line: String,
    /// The request whose reply this is, when its window slot is freed once it is written.
    pub settles: Option<RequestKey>,
}

impl Outbound {
    /// A line that answers no windowed request (a refusal, a notification).
    pub fn plain(line: String) -> Self {
        Self {
            line,
            settles: None,
        }
    }
}

/// Writes queued lines to `out`, each followed by a newline and a flush. `settle` is told
/// about each line just before it is written; what it returns (a window slot) is held until
/// the line is out. Returns when every sender is gone or the client closed its end.
pub async fn write_lines<W: AsyncWrite + Unpin, G>(
    mut out: W,
    mut lines: mpsc::Receiver<Outbound>,
    mut settle: impl FnMut(&Outbound) -> G,
) -> std::io::Result<()> {
    while let Some(mut item) = lines.recv().await {
        let held = settle(&item);
        item.line.push('\n');
        out.write_all(item.line.as_bytes()).await?;
        out.flush().await?;
        drop(held);
    }
    Ok(())
}

/// The bounded queue every writer of stdout shares.
pub fn output_queue() -> (mpsc::Sender<Outbound>, mpsc::Receiver<Outbound>) {
    mpsc::channel(OUTPUT_QUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::head::{Message, Reason, judge_line};

    fn bounds(max_line_bytes: usize) -> Bounds {
        Bounds {
            max_line_bytes,
            max_depth: 4,
            max_elements: 8,
        }
    }

    async fn read_all(input: &[u8], b: Bounds) -> Vec<Line> {
        let mut r = LineReader::new(input, b);
        let mut out = Vec::new();
        while let Some(l) = r.next().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_and_the_last_one_needs_no_newline() {
        let lines = read_all(b"{\"a\":1}\n\n  {bad\r\n{\"b\":2}", bounds(100)).await;
        assert_eq!(
            lines,
            [
                Line::Whole(b"{\"a\":1}".to_vec()),
                Line::Whole(Vec::new()),
                Line::Whole(b"  {bad\r".to_vec()),
                Line::Whole(b"{\"b\":2}".to_vec()),
            ]
        );
        assert_eq!(lines[1].verdict(&bounds(100)), Verdict::Blank);
        assert!(matches!(lines[2].verdict(&bounds(100)), Verdict::Refused(r) if r.code == -32700));
    }

    #[tokio::test]
    async fn a_line_over_a_bound_is_digested_not_kept_and_the_next_one_works() {
        let long = vec![b'x'; 300_000];
        let flat = format!("[{}0]", "0,".repeat(100));
        let mut input = long.clone();
        input.push(b'\n');
        input.extend_from_slice(flat.as_bytes());
        input.extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n");
        let b = bounds(1000);
        let lines = read_all(&input, b).await;
        assert_eq!(lines.len(), 3);
        let Line::Overrun { overrun, digest } = &lines[0] else {
            panic!("{:?}", lines[0])
        };
        assert_eq!(*overrun, Overrun::Length);
        assert_eq!(digest.bytes, 300_000);
        assert_eq!(digest.head, vec![b'x'; DIGEST_HEAD_BYTES]);
        assert_eq!(digest.sha256, <[u8; 32]>::from(Sha256::digest(&long)));
        assert_eq!(*digest, LineDigest::of(&long));
        assert!(matches!(
            &lines[1],
            Line::Overrun { overrun: Overrun::Elements, digest } if digest.bytes == flat.len() as u64
        ));
        assert_eq!(
            lines[2].verdict(&b),
            Verdict::Message(Message::Notification)
        );
    }

    #[tokio::test]
    async fn reading_agrees_with_judging_whole_lines() {
        let b = bounds(40);
        let input = b"[[[[[1]]]]]\n[1,2,3,4,5,6,7,8,9]\n{\"s\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n";
        let got: Vec<Verdict> = read_all(input, b)
            .await
            .iter()
            .map(|l| l.verdict(&b))
            .collect();
        let want: Vec<Verdict> = input
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| judge_line(l, &b))
            .collect();
        assert_eq!(got, want);
        let reasons: Vec<_> = got
            .iter()
            .map(|v| match v {
                Verdict::Refused(r) => Some(r.reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(reasons[0], Some(Reason::Overrun(Overrun::Depth, 4)));
        assert_eq!(reasons[1], Some(Reason::Overrun(Overrun::Elements, 8)));
        assert_eq!(reasons[3], Some(Reason::Overrun(Overrun::Length, 40)));
    }

    #[test]
    fn error_replies_carry_the_id_or_null() {
        let v: serde_json::Value =
            serde_json::from_str(&error_reply(Some(&RequestKey::Int(3)), -32600, "m")).unwrap();
        assert_eq!(v["id"], 3);
        let v: serde_json::Value = serde_json::from_str(&error_reply(None, -32700, "m")).unwrap();
        assert_eq!(v["id"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], -32700);
    }

    #[tokio::test]
    async fn writer_emits_whole_lines() {
        let (tx, rx) = output_queue();
        tx.send(Outbound::plain("{\"x\":1}".into())).await.unwrap();
        tx.send(Outbound {
            line: "{\"y\":2}".into(),
            settles: Some(RequestKey::Int(2)),
        })
        .await
        .unwrap();
        drop(tx);
        let mut out = Vec::new();
        let mut settled = Vec::new();
        write_lines(&mut out, rx, |o| settled.push(o.settles.clone()))
            .await
            .unwrap();
        assert_eq!(settled, [None, Some(RequestKey::Int(2))]);
        assert_eq!(out, b"{\"x\":1}\n{\"y\":2}\n");
    }
}
