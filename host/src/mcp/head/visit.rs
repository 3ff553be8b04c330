//! The serde visitors behind [`super::classify`]: one streaming pass over a client line that
//! keeps only the JSON-RPC head ([`Head`]) and walks everything else as `IgnoredAny`.
//!
//! Nothing here may keep a client string longer than [`MAX_ID_BYTES`] or build a
//! `serde_json::Value`.

use super::{Lane, MAX_ID_BYTES, Message, Reason, Refusal, RequestKey, Verdict};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::sync::Arc;

/// One JSON value as far as the head cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scalar {
    Str(String),
    LongStr(usize),
    Int(i64),
    BigInt,
    Float,
    Bool,
    Null,
    Array,
    Object,
}

impl Scalar {
    /// A usable id, or why not.
    fn id(&self) -> Result<RequestKey, Reason> {
        match self {
            Self::Str(s) => Ok(RequestKey::Str(Arc::from(s.as_str()))),
            Self::Int(n) => Ok(RequestKey::Int(*n)),
            Self::LongStr(n) => Err(Reason::IdTooLong(*n)),
            Self::BigInt => Err(Reason::IdType("an integer outside the 64-bit signed range")),
            Self::Float => Err(Reason::IdType("a number with a fraction or an exponent")),
            Self::Bool => Err(Reason::IdType("true or false")),
            Self::Null => Err(Reason::IdType("null")),
            Self::Array => Err(Reason::IdType("an array")),
            Self::Object => Err(Reason::IdType("an object")),
        }
    }
}

/// The members of a message object that matter here.
#[derive(Debug, Default)]
pub(super) struct Head {
    jsonrpc: Option<Scalar>,
    id: Option<Scalar>,
    method: Option<Scalar>,
    /// `params.requestId`, if `params` is an object that has exactly one.
    cancels: Option<Scalar>,
    result: bool,
    error: bool,
    duplicate: Option<&'static str>,
}

impl Head {
    pub(super) fn verdict(self) -> Verdict {
        if let Some(name) = self.duplicate {
            return Verdict::Refused(Refusal::invalid(Reason::DuplicateMember(name), None));
        }
        let is_request = self.method.is_some() && self.id.is_some();
        let id = match (&self.id, is_request) {
            (Some(s), true) => match s.id() {
                Ok(k) => Some(k),
                Err(r) => return Verdict::Refused(Refusal::invalid(r, None)),
            },
            _ => None,
        };
        if self.jsonrpc != Some(Scalar::Str("2.0".to_owned())) {
            return Verdict::Refused(Refusal::invalid(Reason::Version, id));
        }
        let method = match &self.method {
            None => None,
            Some(Scalar::Str(m)) => Some(m.as_str()),
            Some(Scalar::LongStr(_)) => Some(""),
            Some(_) => return Verdict::Refused(Refusal::invalid(Reason::MethodType, id)),
        };
        let message = match (method, id.clone(), self.result, self.error) {
            (Some(m), Some(id), false, false) => Message::Request {
                id,
                lane: if m == "tools/call" {
                    Lane::Call
                } else {
                    Lane::Other
                },
            },
            (Some("notifications/cancelled"), None, false, false) => {
                Message::Cancel(self.cancels.and_then(|s| s.id().ok()))
            }
            (Some(_), None, false, false) => Message::Notification,
            (None, _, true, false) | (None, _, false, true) => Message::Response,
            _ => return Verdict::Refused(Refusal::invalid(Reason::Shape, id)),
        };
        Verdict::Message(message)
    }
}

pub(super) enum Top {
    Object(Head),
    Array,
    Other,
}

pub(super) struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut head = Head::default();
        while let Some(member) = map.next_key_seed(MemberSeed)? {
            let slot = match member {
                Member::Jsonrpc => &mut head.jsonrpc,
                Member::Id => &mut head.id,
                Member::Method => &mut head.method,
                Member::Params => {
                    let cancels = map.next_value_seed(ParamsSeed)?;
                    if head.cancels.is_some() && cancels.is_some() {
                        head.duplicate.get_or_insert("params");
                    }
                    head.cancels = head.cancels.take().or(cancels);
                    continue;
                }
                Member::Result | Member::Error => {
                    map.next_value::<IgnoredAny>()?;
                    let (seen, name) = if member == Member::Result {
                        (&mut head.result, "result")
                    } else {
                        (&mut head.error, "error")
                    };
                    if *seen {
                        head.duplicate.get_or_insert(name);
                    }
                    *seen = true;
                    continue;
                }
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value = map.next_value_seed(ScalarSeed)?;
            if slot.is_some() {
                head.duplicate.get_or_insert(member.name());
            }
            *slot = Some(value);
        }
        Ok(Top::Object(head))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Array)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other)
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Other)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl Member {
    fn name(self) -> &'static str {
        match self {
            Self::Jsonrpc => "jsonrpc",
            Self::Id => "id",
            Self::Method => "method",
            Self::Params => "params",
            Self::Result => "result",
            Self::Error => "error",
            Self::Other => "",
        }
    }
}

struct MemberSeed;

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for MemberSeed {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, v: &str) -> Result<Member, E> {
        Ok(match v {
            "jsonrpc" => Member::Jsonrpc,
            "id" => Member::Id,
            "method" => Member::Method,
            "params" => Member::Params,
            "result" => Member::Result,
            "error" => Member::Error,
            _ => Member::Other,
        })
    }
}

/// `params`: for an object, its `requestId` (the only member a cancellation needs).
struct ParamsSeed;

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Option<Scalar>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Scalar>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = Option<Scalar>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Scalar>, A::Error> {
        let mut found: Option<Scalar> = None;
        let mut twice = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key {
                twice |= found.is_some();
                found = Some(map.next_value_seed(ScalarSeed)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        // A requestId given twice names no request for sure.
        Ok(if twice { Some(Scalar::Null) } else { found })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Scalar>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<Scalar>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Scalar>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Scalar>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Scalar>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<Scalar>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Scalar>, E> {
        Ok(None)
    }
}

/// A member name inside `params`: whether it is `requestId`.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == "requestId")
    }
}

/// Any value, kept only as a [`Scalar`]; containers are walked and dropped.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(if v.len() <= MAX_ID_BYTES {
            Scalar::Str(v.to_owned())
        } else {
            Scalar::LongStr(v.len())
        })
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(i64::try_from(v).map_or(Scalar::BigInt, Scalar::Int))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool)
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}
