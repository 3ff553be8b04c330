//! The stdio line framing (`mcp::framing`): arbitrary bytes from a client, pumped through the
//! real async reader with a small line bound so the over-long path is reached.
//!
//! Asserts: no panic; every forwarded message is one trimmed JSON object within the bound;
//! every reply is a JSON-RPC error (`-32700` or `-32600`, id null) of bounded size; and the
//! pump does exactly what a plain model (split on `\n`, bound each line, classify it) says,
//! message for message and reply for reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbox::mcp::framing::{Inbound, classify_line, error_reply, pump_input_bounded};
use serde_json::Value;

/// Replies carry no client bytes, so they stay small whatever the input.
const MAX_REPLY_BYTES: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&bound, stream)) = data.split_first() else {
        return;
    };
    // 0..=63: small enough that short inputs cross the bound, including 0.
    let max_line = usize::from(bound % 64);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    // Room for every reply, so the pump never waits on a reader that is not running.
    let (tx, mut rx) = tokio::sync::mpsc::channel(stream.len() + 1);
    let mut forwarded = Vec::new();
    runtime
        .block_on(pump_input_bounded(stream, &mut forwarded, tx, max_line))
        .expect("reading from memory cannot fail");
    let mut replies = Vec::new();
    while let Ok(r) = rx.try_recv() {
        replies.push(r);
    }

    let (want_forwarded, want_replies) = model(stream, max_line);
    assert_eq!(
        forwarded, want_forwarded,
        "forwarded bytes differ from the model"
    );
    assert_eq!(replies, want_replies, "replies differ from the model");

    for msg in forwarded.split(|&b| b == b'\n').filter(|m| !m.is_empty()) {
        assert!(
            msg.len() <= max_line,
            "a forwarded message is over the bound"
        );
        assert_eq!(msg, msg.trim_ascii(), "a forwarded message is not trimmed");
        let v: Value = serde_json::from_slice(msg).expect("forwarded messages are JSON");
        assert!(v.is_object(), "forwarded messages are objects");
    }
    for r in &replies {
        assert!(
            r.len() <= MAX_REPLY_BYTES,
            "reply of {} bytes: {r}",
            r.len()
        );
        assert!(!r.contains('\n'), "a reply spans lines");
        let v: Value = serde_json::from_str(r).expect("replies are JSON");
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], Value::Null);
        let code = v["error"]["code"].as_i64();
        assert!(matches!(code, Some(-32700 | -32600)), "{r}");
    }
});

/// What the framing must do, written without any reader: each `\n`-separated line (the last
/// one even without a newline) is either over the bound, or classified on its own.
fn model(stream: &[u8], max_line: usize) -> (Vec<u8>, Vec<String>) {
    let mut forwarded = Vec::new();
    let mut replies = Vec::new();
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop(); // the stream ended with a newline (or was empty)
    }
    for line in lines {
        if line.len() > max_line {
            replies.push(error_reply(
                Value::Null,
                -32600,
                &format!("Invalid Request: message longer than {max_line} bytes"),
            ));
            continue;
        }
        match classify_line(line) {
            Inbound::Blank => {}
            Inbound::Reject(r) => replies.push(r),
            Inbound::Message(m) => {
                forwarded.extend_from_slice(&m);
                forwarded.push(b'\n');
            }
        }
    }
    (forwarded, replies)
}
