//! Received messages with their members left as raw JSON text.
//!
//! A database update of thousands of rows decoded into one tree of `serde_json::Value`s costs
//! several times its size on the wire, and that tree was the daemon's peak memory. Here only the
//! envelope is decoded; every `params` element and the `result`/`error` stay text until their
//! handler decodes them — the replica row by row (see `replica::TableUpdates`).
//!
//! Acceptance and errors are those of [`Message::from_json`]: anything the quick decode does not
//! take (a wrong member type, a duplicate member, too deep) is decoded eagerly for its exact
//! verdict.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{parse_value, JsonRpcError, Message, NUL_IN_STRING};

/// A JSON-RPC 1.0 message with undecoded members.
#[derive(Debug)]
pub enum RawMessage {
    Request {
        method: String,
        params: Vec<Box<RawValue>>,
        id: Value,
    },
    Notify {
        method: String,
        params: Vec<Box<RawValue>>,
    },
    Reply {
        result: Box<RawValue>,
        id: Value,
    },
    Error {
        error: Box<RawValue>,
        id: Value,
    },
}

/// The members of a message; `null` reads as absent, as in [`Message::from_json`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<Box<RawValue>>,
    #[serde(default)]
    id: Option<Value>,
}

impl RawMessage {
    /// Decodes one complete JSON text (as cut by `Framer::next_text`).
    pub fn decode(text: &str) -> Result<RawMessage, JsonRpcError> {
        if let Ok(e) = serde_json::from_str::<Envelope>(text) {
            let m = match (e.method, e.params, e.result, e.error, e.id) {
                (Some(method), Some(params), None, None, Some(id)) => {
                    Some(RawMessage::Request { method, params, id })
                }
                (Some(method), Some(params), None, None, None) => {
                    Some(RawMessage::Notify { method, params })
                }
                (None, None, Some(result), None, Some(id)) => {
                    Some(RawMessage::Reply { result, id })
                }
                (None, None, None, Some(error), Some(id)) => Some(RawMessage::Error { error, id }),
                _ => None,
            };
            if let Some(m) = m {
                if raw_has_nul(text) {
                    return Err(JsonRpcError::Parse(NUL_IN_STRING.into()));
                }
                return Ok(m);
            }
        }
        RawMessage::from_message(Message::from_json(parse_value(text.as_bytes())?)?)
    }

    /// The same message with its members as text (only for what the quick decode left over).
    fn from_message(m: Message) -> Result<RawMessage, JsonRpcError> {
        let raws = |vs: Vec<Value>| vs.iter().map(raw).collect::<Result<Vec<_>, _>>();
        Ok(match m {
            Message::Request { method, params, id } => RawMessage::Request {
                method,
                params: raws(params)?,
                id,
            },
            Message::Notify { method, params } => RawMessage::Notify {
                method,
                params: raws(params)?,
            },
            Message::Reply { result, id } => RawMessage::Reply {
                result: raw(&result)?,
                id,
            },
            Message::Error { error, id } => RawMessage::Error {
                error: raw(&error)?,
                id,
            },
        })
    }
}

impl RawMessage {
    /// The message with its members decoded (what [`Message::from_json`] gives for the same
    /// text); for tests and tools, the session decodes only what it needs.
    pub fn into_message(self) -> Message {
        let vals = |ps: Vec<Box<RawValue>>| ps.iter().map(|p| to_value(p)).collect();
        match self {
            RawMessage::Request { method, params, id } => Message::Request {
                method,
                params: vals(params),
                id,
            },
            RawMessage::Notify { method, params } => Message::Notify {
                method,
                params: vals(params),
            },
            RawMessage::Reply { result, id } => Message::Reply {
                result: to_value(&result),
                id,
            },
            RawMessage::Error { error, id } => Message::Error {
                error: to_value(&error),
                id,
            },
        }
    }
}

fn raw(v: &Value) -> Result<Box<RawValue>, JsonRpcError> {
    RawValue::from_string(v.to_string()).map_err(|e| JsonRpcError::Parse(e.to_string()))
}

/// Decodes a member that is small or needed whole (a lock name, a transaction reply).
pub fn to_value(raw: &RawValue) -> Value {
    // The text was checked when the message was decoded; `Null` is unreachable.
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// Whether valid JSON text has a `\u0000` escape in a string (a backslash only occurs inside
/// strings, and a raw NUL byte is not valid JSON).
fn raw_has_nul(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'u') && b.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message of the eager tests decodes to the same thing lazily.
    fn same_as_eager(text: &str) {
        let eager = parse_value(text.as_bytes()).and_then(Message::from_json);
        let lazy = RawMessage::decode(text);
        match (eager, lazy) {
            (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
            (Ok(m), Ok(r)) => assert_eq!(m, r.into_message(), "{text}"),
            (a, b) => panic!("{text}: eager {a:?}, lazy {b:?}"),
        }
    }

    #[test]
    fn lazy_decoding_accepts_and_rejects_exactly_as_eager() {
        for text in [
            r#"{"method":"echo","params":[],"id":"echo"}"#,
            r#"{"method":"update3","params":[["monid","OVN"],"a-b",{"T":{"u":{"insert":{"x":1}}}}],"id":null}"#,
            r#"{"method":"locked","params":["ovn_ic"]}"#,
            r#"{"result":[true,"x",{}],"error":null,"id":3}"#,
            r#"{"result":null,"error":{"error":"no"},"id":4}"#,
            r#"{"result":{"a":1},"id":5,"id":6}"#,
            r#"{"method":"m","params":{},"id":1}"#,
            r#"{"method":1,"params":[],"id":1}"#,
            r#"{"params":[],"id":1}"#,
            r#"{"result":1}"#,
            r#"{"result":1,"error":2,"id":1}"#,
            r#"{"result":1,"id":1,"extra":2}"#,
            r#"[1,2]"#,
            r#""s""#,
            r#"{"method":"m\u0000","params":[]}"#,
            r#"{"method":"m","params":["a\\u0000"]}"#,
            r#"{"method":"m","params":["a\u0000"]}"#,
            r#"{"result":{"k":"\"\\"},"id":"é"}"#,
        ] {
            same_as_eager(text);
        }
    }

    #[test]
    fn nul_escapes_are_found_only_in_strings_escapes() {
        assert!(raw_has_nul(r#"["\u0000"]"#));
        assert!(!raw_has_nul(r#"["\\u0000"]"#));
        assert!(raw_has_nul(r#"["\\\u0000"]"#));
        assert!(!raw_has_nul(r#"["u0000"]"#));
    }
}
