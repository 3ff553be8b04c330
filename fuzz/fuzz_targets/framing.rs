//! The stdio line framing (`mcp::framing`): arbitrary bytes from a client, read by the real
//! async [`LineReader`] under small bounds so every bound (length, depth, elements) is reached.
//!
//! Asserts: no panic; the reader yields exactly the `\n`-separated lines of the stream (the
//! last one even without a newline); a line within its bounds comes back whole, a line over one
//! comes back only as its digest (length, sha256 and a head of at most `DIGEST_HEAD_BYTES`);
//! the verdict of each line is what `judge_line` says of the whole line; and every refusal's
//! JSON-RPC error reply is one line of bounded size with code `-32700` or `-32600`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbox::mcp::framing::{DIGEST_HEAD_BYTES, Line, LineDigest, LineReader, error_reply};
use runbox::mcp::head::{Verdict, judge_line};
use runbox::mcp::scan::Bounds;
use serde_json::Value;

/// A refusal quotes no client bytes but an id of at most 256 bytes (JSON-escaped, up to six
/// bytes each) and a cut serde message.
const MAX_REPLY_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&[length, shape], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Small enough that short inputs cross every bound, including 0.
    let bounds = Bounds {
        max_line_bytes: usize::from(length % 64),
        max_depth: u32::from(shape % 8),
        max_elements: u64::from(shape / 8 % 32),
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let got: Vec<Line> = runtime.block_on(async {
        let mut reader = LineReader::new(stream, bounds);
        let mut lines = Vec::new();
        while let Some(line) = reader
            .next()
            .await
            .expect("reading from memory cannot fail")
        {
            lines.push(line);
        }
        lines
    });

    let mut want: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    if want.last().is_some_and(|l| l.is_empty()) {
        want.pop(); // the stream ended with a newline (or was empty)
    }
    assert_eq!(got.len(), want.len(), "line count differs from the model");

    for (line, whole) in got.iter().zip(want) {
        let verdict = line.verdict(&bounds);
        assert_eq!(
            verdict,
            judge_line(whole, &bounds),
            "verdict differs from the model"
        );
        match line {
            Line::Whole(bytes) => {
                assert_eq!(bytes.as_slice(), whole, "a line came back altered");
                assert!(
                    bytes.len() <= bounds.max_line_bytes,
                    "a whole line over the bound"
                );
            }
            Line::Overrun { digest, .. } => {
                assert_eq!(*digest, LineDigest::of(whole), "digest differs");
                assert!(digest.head.len() <= DIGEST_HEAD_BYTES);
                assert!(
                    matches!(verdict, Verdict::Refused(_)),
                    "a line over a bound was not refused"
                );
            }
        }
        if let Verdict::Refused(r) = verdict {
            let reply = error_reply(r.id.as_ref(), r.code, &r.message());
            assert!(
                reply.len() <= MAX_REPLY_BYTES,
                "reply of {} bytes",
                reply.len()
            );
            assert!(!reply.contains('\n'), "a reply spans lines");
            let v: Value = serde_json::from_str(&reply).expect("replies are JSON");
            assert_eq!(v["jsonrpc"], "2.0");
            assert!(
                matches!(v["error"]["code"].as_i64(), Some(-32700 | -32600)),
                "{reply}"
            );
        }
    }
});
