//! What a client line is, read without building it: the JSON-RPC head (`jsonrpc`, `id`,
//! `method`, whether `result`/`error` are there, and for `notifications/cancelled` the id it
//! cancels), taken by one streaming serde pass that validates the JSON and allocates nothing
//! but the few short strings it keeps.
//!
//! [`classify`] turns the head into a [`Verdict`]: a request with a usable id, a cancellation,
//! another notification, a response, or a refusal with its JSON-RPC code. Ids are what MCP
//! allows and rmcp can answer: a string of at most [`MAX_ID_BYTES`] or an integer written as
//! one that fits in an `i64`. Anything else (`1.5`, `1e3`, `true`, `null`, `{}`, `[]`, a number
//! past `i64::MAX`, a longer string) is refused here, because rmcp would either drop the line or
//! answer it without its id, and the client would wait forever.
//!
//! This module must not build a `serde_json::Value` of the line, and must not keep any client
//! string longer than [`MAX_ID_BYTES`].

use super::scan::{Bounds, Overrun, check_line};
use serde::Deserializer;
use std::fmt;
use std::sync::Arc;
use visit::{Top, TopVisitor};

mod visit;

/// Longest string id accepted, in bytes. Longer ids are refused rather than cut: a reply must
/// echo its id whole, and the audit log keeps values up to this size whole.
pub const MAX_ID_BYTES: usize = crate::audit::record::MAX_VALUE_BYTES;

/// A usable request id, as rmcp represents it (so `"1"` and `1` are different ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestKey {
    /// An integer id.
    Int(i64),
    /// A string id (at most [`MAX_ID_BYTES`]).
    Str(Arc<str>),
}

impl RequestKey {
    /// The id as JSON, for a reply.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Int(n) => serde_json::Value::from(*n),
            Self::Str(s) => serde_json::Value::String(s.to_string()),
        }
    }

    /// The id as the audit log records it: a string as itself, a number as its decimal text.
    pub fn audit_text(&self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Str(s) => s.to_string(),
        }
    }
}

impl fmt::Display for RequestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// Which window a request waits in: tool calls (large, slow replies) or everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// `tools/call`.
    Call,
    /// Any other request (`initialize`, `ping`, `tools/list`, unknown methods, …).
    Other,
}

/// A line that passed the front, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request: it will get exactly one reply.
    Request {
        /// Its id.
        id: RequestKey,
        /// Its window.
        lane: Lane,
    },
    /// `notifications/cancelled`, with the id it names when that id is usable.
    Cancel(Option<RequestKey>),
    /// Any other notification.
    Notification,
    /// A response or error response to a request of the server's.
    Response,
}

/// Why a line is refused; the message a client gets says it in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Not JSON (serde's description).
    NotJson(String),
    /// A JSON array: a batch.
    Batch,
    /// JSON, but not an object.
    NotObject,
    /// Over a structural bound (the bound's value).
    Overrun(Overrun, u64),
    /// `jsonrpc` is missing or not `"2.0"`.
    Version,
    /// Neither a request, a notification nor a response.
    Shape,
    /// A member named twice.
    DuplicateMember(&'static str),
    /// An id that is not a string or an integer (what it is).
    IdType(&'static str),
    /// A string id over [`MAX_ID_BYTES`] (its length).
    IdTooLong(usize),
    /// `method` is not a string.
    MethodType,
    /// The id of a request still in flight.
    DuplicateId(RequestKey),
    /// rmcp's message types refused it (serde's description).
    Unparsed(String),
}

/// A refused line: the JSON-RPC error it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `-32700` (not JSON) or `-32600` (Invalid Request).
    pub code: i64,
    /// Why.
    pub reason: Reason,
    /// The request's id when it is usable, so the reply can carry it.
    pub id: Option<RequestKey>,
}

impl Refusal {
    /// An Invalid Request refusal.
    pub fn invalid(reason: Reason, id: Option<RequestKey>) -> Self {
        Self {
            code: -32600,
            reason,
            id,
        }
    }

    /// The error message of the reply (and of the audit record). Bounded: it quotes no client
    /// bytes but an id of at most [`MAX_ID_BYTES`] and serde's own short descriptions, cut.
    pub fn message(&self) -> String {
        let what = match &self.reason {
            Reason::NotJson(e) => return format!("Parse error: {}", cut(e)),
            Reason::Unparsed(e) if self.code == -32700 => {
                return format!("Parse error: {}", cut(e));
            }
            Reason::Batch => "batches are not supported (removed in MCP 2025-06-18)".to_owned(),
            Reason::NotObject => "not a JSON-RPC object".to_owned(),
            Reason::Overrun(Overrun::Length, n) => format!("message longer than {n} bytes"),
            Reason::Overrun(Overrun::Depth, n) => format!("nested deeper than {n} levels"),
            Reason::Overrun(Overrun::Elements, n) => {
                format!("more than {n} array elements and object members")
            }
            Reason::Version => "\"jsonrpc\" must be \"2.0\"".to_owned(),
            Reason::Shape => {
                "not a request, notification or response (see method, id, result, error)".to_owned()
            }
            Reason::DuplicateMember(m) => format!("member {m:?} appears more than once"),
            Reason::IdType(what) => {
                format!("the id must be a string or an integer, not {what}")
            }
            Reason::IdTooLong(n) => {
                format!("the id is a string of {n} bytes; at most {MAX_ID_BYTES} are accepted")
            }
            Reason::MethodType => "\"method\" must be a string".to_owned(),
            Reason::DuplicateId(id) => format!(
                "id {id} is already in use by a request in flight; every request needs an id \
                 of its own"
            ),
            Reason::Unparsed(e) => format!("not a valid MCP message: {}", cut(e)),
        };
        format!("Invalid Request: {what}")
    }
}

/// serde's messages are short, but may quote input; keep them so.
fn cut(s: &str) -> String {
    s.chars().take(200).collect()
}

/// What to do with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Whitespace only: ignored.
    Blank,
    /// Passed the front.
    Message(Message),
    /// Refused here.
    Refused(Refusal),
}

/// Judges one whole line (without its newline): its bounds, then its head. The streaming reader
/// reaches the same verdict while reading ([`super::framing::LineReader`]).
pub fn judge_line(line: &[u8], bounds: &Bounds) -> Verdict {
    if let Some(o) = check_line(line, bounds) {
        return Verdict::Refused(overrun_refusal(o, bounds));
    }
    classify(line)
}

/// The refusal of a line over a structural bound.
pub fn overrun_refusal(o: Overrun, bounds: &Bounds) -> Refusal {
    let limit = match o {
        Overrun::Length => u64::try_from(bounds.max_line_bytes).unwrap_or(u64::MAX),
        Overrun::Depth => u64::from(bounds.max_depth),
        Overrun::Elements => bounds.max_elements,
    };
    Refusal::invalid(Reason::Overrun(o, limit), None)
}

/// Classifies a line already within its bounds.
pub fn classify(line: &[u8]) -> Verdict {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Verdict::Blank;
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    let top = match de
        .deserialize_any(TopVisitor)
        .and_then(|t| de.end().map(|()| t))
    {
        Ok(t) => t,
        Err(e) => {
            return Verdict::Refused(Refusal {
                code: -32700,
                reason: Reason::NotJson(e.to_string()),
                id: None,
            });
        }
    };
    match top {
        Top::Array => Verdict::Refused(Refusal::invalid(Reason::Batch, None)),
        Top::Other => Verdict::Refused(Refusal::invalid(Reason::NotObject, None)),
        Top::Object(head) => head.verdict(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(line: &str) -> Verdict {
        classify(line.as_bytes())
    }

    fn refused(line: &str) -> Refusal {
        match verdict(line) {
            Verdict::Refused(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn requests_notifications_and_responses() {
        assert_eq!(
            verdict(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#),
            Verdict::Message(Message::Request {
                id: RequestKey::Int(7),
                lane: Lane::Call
            })
        );
        assert_eq!(
            verdict(r#"{"method":"ping","id":"a","jsonrpc":"2.0"}"#),
            Verdict::Message(Message::Request {
                id: RequestKey::Str("a".into()),
                lane: Lane::Other
            })
        );
        assert_eq!(
            verdict(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Verdict::Message(Message::Notification)
        );
        assert_eq!(
            verdict(
                r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"reason":"x","requestId":3}}"#
            ),
            Verdict::Message(Message::Cancel(Some(RequestKey::Int(3))))
        );
        assert_eq!(
            verdict(
                r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1.5}}"#
            ),
            Verdict::Message(Message::Cancel(None))
        );
        assert_eq!(
            verdict(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#),
            Verdict::Message(Message::Response)
        );
        assert_eq!(verdict(" \t"), Verdict::Blank);
    }

    #[test]
    fn ids_must_be_strings_or_integers() {
        for (id, what) in [
            ("1.5", "fraction"),
            ("1e3", "fraction"),
            ("1.0", "fraction"),
            ("true", "true"),
            ("null", "null"),
            ("{}", "object"),
            ("[]", "array"),
            ("9223372036854775808", "64-bit"),
        ] {
            let r = refused(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call"}}"#
            ));
            assert_eq!(r.code, -32600, "{id}");
            assert_eq!(r.id, None, "{id}");
            assert!(r.message().contains(what), "{id}: {}", r.message());
        }
        for (id, key) in [
            ("-9223372036854775808", RequestKey::Int(i64::MIN)),
            ("9223372036854775807", RequestKey::Int(i64::MAX)),
            ("0", RequestKey::Int(0)),
            (r#""é\n""#, RequestKey::Str("é\n".into())),
        ] {
            assert_eq!(
                verdict(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#)),
                Verdict::Message(Message::Request {
                    id: key,
                    lane: Lane::Other
                }),
                "{id}"
            );
        }
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let r = refused(&format!(
            r#"{{"jsonrpc":"2.0","id":"{long}","method":"ping"}}"#
        ));
        assert_eq!(r.reason, Reason::IdTooLong(MAX_ID_BYTES + 1));
        assert!(r.message().len() < 200);
    }

    #[test]
    fn malformed_messages_are_refused_with_the_id_when_it_is_usable() {
        let r = refused(r#"{"id":4,"method":"ping"}"#);
        assert_eq!(
            (r.reason.clone(), r.id),
            (Reason::Version, Some(RequestKey::Int(4)))
        );
        let r = refused(r#"{"jsonrpc":"2.0","id":4,"method":5}"#);
        assert_eq!(r.reason, Reason::MethodType);
        let r = refused(r#"{"jsonrpc":"2.0","id":4,"id":5,"method":"ping"}"#);
        assert_eq!(r.reason, Reason::DuplicateMember("id"));
        let r = refused(r#"{"jsonrpc":"2.0","id":4,"method":"ping","result":1}"#);
        assert_eq!(r.reason, Reason::Shape);
        let r = refused(r#"{"jsonrpc":"2.0"}"#);
        assert_eq!(r.reason, Reason::Shape);
        assert_eq!(refused("[1,2]").reason, Reason::Batch);
        assert_eq!(refused("42").reason, Reason::NotObject);
        let r = refused("{not json");
        assert_eq!(r.code, -32700);
        assert!(r.message().starts_with("Parse error"));
        assert_eq!(refused(r#"{"a":1} x"#).code, -32700);
    }

    #[test]
    fn judged_lines_respect_the_bounds() {
        let b = Bounds {
            max_line_bytes: 64,
            max_depth: 2,
            max_elements: 4,
        };
        assert_eq!(
            judge_line(b"[[[1]]]", &b),
            Verdict::Refused(Refusal::invalid(Reason::Overrun(Overrun::Depth, 2), None))
        );
        assert_eq!(
            judge_line(&[b' '; 65], &b),
            Verdict::Refused(Refusal::invalid(Reason::Overrun(Overrun::Length, 64), None))
        );
    }
}
