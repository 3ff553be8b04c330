//! The stdio front of the MCP channel: bounded line framing in front of rmcp.
//!
//! rmcp silently drops a line that is not JSON and a line over its length bound, so a client
//! waits forever. This layer reads stdin itself, line by line with a hard bound, answers what
//! rmcp would drop (`-32700` parse error, `-32600` for an over-long line or a batch) and passes
//! every well-formed JSON object on. All output — rmcp's and these replies — goes through one
//! writer task that writes whole lines, so stdout never carries a torn or interleaved message.
//! Queues are bounded: a client that stops reading stdout stalls the server, it does not make it
//! grow.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Longest JSON-RPC line accepted from the client (16 MiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Lines buffered towards stdout before writers wait.
const OUTPUT_QUEUE: usize = 64;

/// One line read from the client, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A JSON object, to be passed to rmcp as is.
    Message(Vec<u8>),
    /// A line that gets an error reply right here.
    Reject(String),
    /// A blank line, ignored.
    Blank,
}

/// Decides what to do with one complete line (without its newline).
pub fn classify_line(line: &[u8]) -> Inbound {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Inbound::Blank;
    }
    match serde_json::from_slice::<Value>(trimmed) {
        Err(e) => Inbound::Reject(error_reply(
            Value::Null,
            -32700,
            &format!("Parse error: {e}"),
        )),
        Ok(Value::Object(_)) => Inbound::Message(trimmed.to_vec()),
        Ok(Value::Array(_)) => Inbound::Reject(error_reply(
            Value::Null,
            -32600,
            "Invalid Request: batches are not supported (removed in MCP 2025-06-18)",
        )),
        Ok(_) => Inbound::Reject(error_reply(
            Value::Null,
            -32600,
            "Invalid Request: not a JSON-RPC object",
        )),
    }
}

/// A JSON-RPC error response line.
pub fn error_reply(id: Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// Reads `input` line by line into `to_rmcp`, answering rejected lines on `replies`. Returns at
/// EOF or when rmcp stops reading; dropping `to_rmcp` then tells rmcp the client is gone.
pub async fn pump_input<R, W>(
    input: R,
    to_rmcp: W,
    replies: mpsc::Sender<String>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    pump_input_bounded(input, to_rmcp, replies, MAX_LINE_BYTES).await
}

/// [`pump_input`] with lines bounded by `max_line_bytes` (newline excluded) instead of
/// [`MAX_LINE_BYTES`], so tests and the fuzz target can reach the bound with small inputs.
pub async fn pump_input_bounded<R, W>(
    input: R,
    mut to_rmcp: W,
    replies: mpsc::Sender<String>,
    max_line_bytes: usize,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        // Read at most one byte past the bound so an over-long line is noticed without
        // buffering it.
        let limit = u64::try_from(max_line_bytes.saturating_add(1)).unwrap_or(u64::MAX);
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let complete = line.last() == Some(&b'\n');
        if !complete && line.len() > max_line_bytes {
            skip_rest_of_line(&mut reader).await?;
            let reply = error_reply(
                Value::Null,
                -32600,
                &format!("Invalid Request: message longer than {max_line_bytes} bytes"),
            );
            tracing::warn!(bytes_over = max_line_bytes, "rejected an over-long message");
            if replies.send(reply).await.is_err() {
                return Ok(());
            }
            continue;
        }
        let body = if complete {
            &line[..line.len() - 1]
        } else {
            &line[..]
        };
        match classify_line(body) {
            Inbound::Blank => {}
            Inbound::Reject(reply) => {
                tracing::warn!("rejected a malformed message");
                if replies.send(reply).await.is_err() {
                    return Ok(());
                }
            }
            Inbound::Message(mut msg) => {
                msg.push(b'\n');
                if to_rmcp.write_all(&msg).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !complete {
            return Ok(()); // EOF without a final newline: the last message was still delivered
        }
    }
}

/// Discards bytes up to and including the next newline, without keeping them.
async fn skip_rest_of_line<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(pos + 1);
            return Ok(());
        }
        let len = buf.len();
        reader.consume(len);
    }
}

/// Splits rmcp's output into lines and queues them for the writer.
pub async fn pump_rmcp_output<R: AsyncRead + Unpin>(
    from_rmcp: R,
    lines: mpsc::Sender<String>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(from_rmcp).lines();
    while let Some(line) = reader.next_line().await? {
        if lines.send(line).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Writes queued lines to `out`, each followed by a newline and a flush, and tells `written`
/// about each line once it is out (the reply window frees a call's slot then). Returns when
/// every sender is gone or the client closed its end.
pub async fn write_lines<W: AsyncWrite + Unpin>(
    mut out: W,
    mut lines: mpsc::Receiver<String>,
    mut written: impl FnMut(&str),
) -> std::io::Result<()> {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        out.write_all(line.as_bytes()).await?;
        out.flush().await?;
        written(&line);
    }
    Ok(())
}

/// The bounded queue every writer of stdout shares.
pub fn output_queue() -> (mpsc::Sender<String>, mpsc::Receiver<String>) {
    mpsc::channel(OUTPUT_QUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        assert_eq!(classify_line(b"  "), Inbound::Blank);
        assert!(matches!(
            classify_line(br#"{"jsonrpc":"2.0"}"#),
            Inbound::Message(_)
        ));
        let Inbound::Reject(r) = classify_line(b"{not json") else {
            panic!()
        };
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["error"]["code"], -32700);
        assert_eq!(v["id"], Value::Null);
        let Inbound::Reject(r) = classify_line(b"[1,2]") else {
            panic!()
        };
        assert!(r.contains("-32600"));
        let Inbound::Reject(r) = classify_line(b"42") else {
            panic!()
        };
        assert!(r.contains("-32600"));
    }

    #[tokio::test]
    async fn pumps_messages_and_rejects_garbage() {
        let input = b"{\"a\":1}\n{bad\n\n{\"b\":2}".to_vec();
        let (tx, mut rx) = mpsc::channel(8);
        let mut forwarded = Vec::new();
        pump_input(&input[..], &mut forwarded, tx).await.unwrap();
        assert_eq!(forwarded, b"{\"a\":1}\n{\"b\":2}\n");
        let reply = rx.recv().await.unwrap();
        assert!(reply.contains("-32700"));
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn overlong_line_is_rejected_and_the_next_one_still_works() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\n{\"ok\":true}\n");
        let (tx, mut rx) = mpsc::channel(8);
        let mut forwarded = Vec::new();
        pump_input(&input[..], &mut forwarded, tx).await.unwrap();
        assert_eq!(forwarded, b"{\"ok\":true}\n");
        assert!(rx.recv().await.unwrap().contains("longer than"));
    }

    #[tokio::test]
    async fn writer_emits_whole_lines() {
        let (tx, rx) = output_queue();
        tx.send("{\"x\":1}".into()).await.unwrap();
        tx.send("{\"y\":2}".into()).await.unwrap();
        drop(tx);
        let mut out = Vec::new();
        let mut seen = 0;
        write_lines(&mut out, rx, |_| seen += 1).await.unwrap();
        assert_eq!(seen, 2);
        assert_eq!(out, b"{\"x\":1}\n{\"y\":2}\n");
    }
}
