//! JSON-RPC 1.0 as OVS speaks it (spec ovsdb-protocol.md §1.2–§1.3): messages are JSON objects
//! written back to back with no delimiter. [`Framer`] cuts a byte stream into complete values
//! incrementally (each byte is scanned once, whatever the read sizes); [`Message`] classifies and
//! validates them exactly as `jsonrpc_msg_from_json` does.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub mod lazy;

/// Maximum nesting depth accepted, as the C parser.
pub const MAX_DEPTH: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonRpcError {
    #[error("error parsing stream: {0}")]
    Parse(String),
    #[error("received bad JSON-RPC message: {0}")]
    BadMessage(String),
}

/// A JSON-RPC 1.0 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        method: String,
        params: Vec<Value>,
        id: Value,
    },
    Notify {
        method: String,
        params: Vec<Value>,
    },
    Reply {
        result: Value,
        id: Value,
    },
    Error {
        error: Value,
        id: Value,
    },
}

impl Message {
    pub fn request(method: &str, params: Vec<Value>, id: Value) -> Message {
        Message::Request {
            method: method.to_string(),
            params,
            id,
        }
    }
    pub fn notify(method: &str, params: Vec<Value>) -> Message {
        Message::Notify {
            method: method.to_string(),
            params,
        }
    }

    /// Classify a decoded JSON value (members whose value is `null` count as absent; any other
    /// member than method/params/result/error/id is an error).
    pub fn from_json(v: Value) -> Result<Message, JsonRpcError> {
        let bad = |s: &str| JsonRpcError::BadMessage(s.to_string());
        let Value::Object(mut obj) = v else {
            return Err(bad("message is not a JSON object"));
        };
        let mut take = |k: &str| match obj.remove(k) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        };
        let method = take("method");
        let params = take("params");
        let result = take("result");
        let error = take("error");
        let id = take("id");
        if let Some(k) = obj.keys().next() {
            return Err(JsonRpcError::BadMessage(format!(
                "message has unexpected member \"{k}\""
            )));
        }
        let params = match params {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => return Err(bad("\"params\" must be JSON array")),
        };
        let method = match method {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(bad("\"method\" must be JSON string")),
        };
        match (method, params, result, error, id) {
            (Some(method), Some(params), None, None, Some(id)) => {
                Ok(Message::Request { method, params, id })
            }
            (Some(method), Some(params), None, None, None) => {
                Ok(Message::Notify { method, params })
            }
            (Some(_), None, None, None, _) => Err(bad("request must have \"params\"")),
            (None, None, Some(result), None, Some(id)) => Ok(Message::Reply { result, id }),
            (None, None, None, Some(error), Some(id)) => Ok(Message::Error { error, id }),
            _ => Err(bad(
                "message is not a JSON-RPC request, notification, or reply",
            )),
        }
    }

    /// The wire form, exactly as the C library writes it: requests `{"method","params","id"}`,
    /// notifications with `"id":null`, replies and errors with the other member `null`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match self {
            Message::Request { method, params, id } => {
                m.insert("method".into(), Value::String(method.clone()));
                m.insert("params".into(), Value::Array(params.clone()));
                m.insert("id".into(), id.clone());
            }
            Message::Notify { method, params } => {
                m.insert("method".into(), Value::String(method.clone()));
                m.insert("params".into(), Value::Array(params.clone()));
                m.insert("id".into(), Value::Null);
            }
            Message::Reply { result, id } => {
                m.insert("result".into(), result.clone());
                m.insert("error".into(), Value::Null);
                m.insert("id".into(), id.clone());
            }
            Message::Error { error, id } => {
                m.insert("result".into(), Value::Null);
                m.insert("error".into(), error.clone());
                m.insert("id".into(), id.clone());
            }
        }
        Value::Object(m)
    }

    /// The wire bytes of a request whose params are JSON text already (a transaction's
    /// operations, see `Txn::take_params`): those of [`Message::to_bytes`] for the same values.
    pub fn request_bytes(method: &str, params: &[Box<RawValue>], id: i64) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Raw<'a> {
            id: i64,
            method: &'a str,
            params: &'a [Box<RawValue>],
        }
        serde_json::to_vec(&Raw { id, method, params }).expect("serialising JSON text cannot fail")
    }

    /// Compact serialisation for the wire: the bytes of [`Message::to_json`] (whose map sorts
    /// its members), written straight from the message — a transaction of thousands of rows is
    /// not copied into a second tree to be sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        use Member::{Array, Str, Value as V};
        const NULL: &Value = &Value::Null;
        // Members in the order `to_json`'s sorted map writes them.
        let wire = Wire(match self {
            Message::Request { method, params, id } => [
                ("id", V(id)),
                ("method", Str(method)),
                ("params", Array(params)),
            ],
            Message::Notify { method, params } => [
                ("id", V(NULL)),
                ("method", Str(method)),
                ("params", Array(params)),
            ],
            Message::Reply { result, id } => {
                [("error", V(NULL)), ("id", V(id)), ("result", V(result))]
            }
            Message::Error { error, id } => {
                [("error", V(error)), ("id", V(id)), ("result", V(NULL))]
            }
        });
        serde_json::to_vec(&wire).expect("serialising JSON values cannot fail")
    }
}

/// One member of a message on the wire (see [`Message::to_bytes`]).
enum Member<'a> {
    Value(&'a Value),
    Str(&'a str),
    Array(&'a [Value]),
}

impl serde::Serialize for Member<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Member::Value(v) => v.serialize(s),
            Member::Str(v) => v.serialize(s),
            Member::Array(v) => v.serialize(s),
        }
    }
}

/// A message's members, in the order written.
struct Wire<'a>([(&'static str, Member<'a>); 3]);

impl serde::Serialize for Wire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Incremental splitter of a byte stream into top-level JSON texts.
///
/// Bytes are appended with [`Framer::push`]; [`Framer::next_value`] returns the next complete
/// value. The scanner remembers its position and state (depth, inside-string, escape) so a large
/// message delivered in many reads is scanned once, not once per read.
#[derive(Default, Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the value being scanned (bytes before it are consumed).
    start: usize,
    /// Next byte to scan.
    pos: usize,
    depth: usize,
    in_string: bool,
    escape: bool,
    /// A top-level scalar (number, literal) is being scanned.
    in_scalar: bool,
    started: bool,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        // Drop consumed bytes before growing, so the buffer stays proportional to one message.
        if self.start > 0 && (self.start == self.buf.len() || self.start > 64 * 1024) {
            self.buf.drain(..self.start);
            self.pos -= self.start;
            self.start = 0;
            // One large message (a database's initial contents) must not pin its size for the
            // life of the connection.
            if self.buf.capacity() > 1024 * 1024 && self.buf.len() + data.len() < 64 * 1024 {
                self.buf.shrink_to(64 * 1024);
            }
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as a value.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete top-level JSON value, `Ok(None)` if more bytes are needed.
    pub fn next_value(&mut self) -> Result<Option<Value>, JsonRpcError> {
        match self.next_span()? {
            None => Ok(None),
            Some((a, b)) => parse_value(&self.buf[a..b]).map(Some),
        }
    }

    /// The next complete top-level JSON text, undecoded and borrowed from the buffer (checked
    /// to be UTF-8; the caller decodes it, see [`lazy`]), `Ok(None)` if more bytes are needed.
    pub fn next_text(&mut self) -> Result<Option<&str>, JsonRpcError> {
        match self.next_span()? {
            None => Ok(None),
            Some((a, b)) => std::str::from_utf8(&self.buf[a..b])
                .map(Some)
                .map_err(|e| JsonRpcError::Parse(format!("invalid UTF-8: {e}"))),
        }
    }

    /// The byte range of the next complete top-level value (consumed from the scanner).
    fn next_span(&mut self) -> Result<Option<(usize, usize)>, JsonRpcError> {
        while self.pos < self.buf.len() {
            let c = self.buf[self.pos];
            self.pos += 1;
            if !self.started {
                if c.is_ascii_whitespace() {
                    self.start = self.pos;
                    continue;
                }
                self.started = true;
                match c {
                    b'{' | b'[' => self.depth = 1,
                    b'"' => self.in_string = true,
                    _ => self.in_scalar = true,
                }
                continue;
            }
            if self.in_scalar {
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.') {
                    continue;
                }
                // The scalar ended just before this byte.
                self.pos -= 1;
                return Ok(Some(self.finish()));
            }
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if c == b'\\' {
                    self.escape = true;
                } else if c == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Ok(Some(self.finish()));
                    }
                }
                continue;
            }
            match c {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(JsonRpcError::Parse(
                            "input exceeds maximum nesting depth 1000".into(),
                        ));
                    }
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Ok(Some(self.finish()));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// A top-level scalar at end of stream (only meaningful at EOF).
    pub fn finish_eof(&mut self) -> Result<Option<Value>, JsonRpcError> {
        if self.in_scalar {
            let (a, b) = self.finish();
            return parse_value(&self.buf[a..b]).map(Some);
        }
        if self.started {
            return Err(JsonRpcError::Parse("unexpected end of input".into()));
        }
        Ok(None)
    }

    /// Ends the value being scanned: its byte range, and the scanner reset for the next one.
    fn finish(&mut self) -> (usize, usize) {
        let span = (self.start, self.pos);
        self.start = self.pos;
        self.started = false;
        self.in_scalar = false;
        self.in_string = false;
        self.escape = false;
        self.depth = 0;
        span
    }

    /// Next complete message; a value that is not a valid JSON-RPC message is an error (the
    /// caller drops the connection, as the C library does).
    pub fn next_message(&mut self) -> Result<Option<Message>, JsonRpcError> {
        match self.next_value()? {
            None => Ok(None),
            Some(v) => Message::from_json(v).map(Some),
        }
    }
}

/// Decodes one complete JSON text (as the C parser: no NUL in strings).
fn parse_value(slice: &[u8]) -> Result<Value, JsonRpcError> {
    match serde_json::from_slice::<Value>(slice) {
        Ok(v) if has_nul(&v) => Err(JsonRpcError::Parse(NUL_IN_STRING.into())),
        Ok(v) => Ok(v),
        Err(e) => Err(JsonRpcError::Parse(e.to_string())),
    }
}

const NUL_IN_STRING: &str = "null bytes not supported in quoted strings";

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `jsonrpc_framer` fuzz target: a non-integer number must survive our
    /// printing and re-parsing exactly (serde_json's `float_roundtrip`), as with C's strtod.
    #[test]
    fn non_integer_ids_round_trip_exactly() {
        for text in ["17796834168e213", "0.1", "1.7976931348623157e308", "5e-324"] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let back: serde_json::Value = serde_json::from_str(&v.to_string()).unwrap();
            assert_eq!(v, back, "{text}");
        }
    }
    use serde_json::json;

    fn all_messages(f: &mut Framer) -> Vec<Message> {
        let mut out = vec![];
        while let Some(m) = f.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn a_request_with_raw_params_has_the_bytes_of_the_same_values() {
        let params = vec![
            json!("OVN_Northbound"),
            json!({"op": "insert", "table": "T", "row": {"b": ["set", []], "a": "x\"y\u{1}"}}),
            json!({"op": "comment", "comment": "ovn-ic"}),
        ];
        let raw: Vec<Box<RawValue>> = params
            .iter()
            .map(|v| serde_json::value::to_raw_value(v).unwrap())
            .collect();
        assert_eq!(
            Message::request_bytes("transact", &raw, 42),
            Message::request("transact", params, json!(42)).to_bytes()
        );
    }

    #[test]
    fn two_messages_in_one_read() {
        let mut f = Framer::new();
        f.push(br#"{"method":"update2","params":[["monid","x"],{}],"id":null}{"result":[{}],"error":null,"id":3}"#);
        let msgs = all_messages(&mut f);
        assert_eq!(msgs.len(), 2);
        assert!(matches!(&msgs[0], Message::Notify { method, .. } if method == "update2"));
        assert!(matches!(&msgs[1], Message::Reply { id, .. } if *id == json!(3)));
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn one_message_split_over_many_reads() {
        let msg = Message::request(
            "echo",
            vec![json!("a\"}{]["), json!({"k": [1, 2, {"x": "\\"}]})],
            json!(7),
        );
        let bytes = msg.to_bytes();
        let mut f = Framer::new();
        for (i, b) in bytes.iter().enumerate() {
            f.push(std::slice::from_ref(b));
            let r = f.next_message().unwrap();
            if i + 1 < bytes.len() {
                assert!(r.is_none());
            } else {
                assert_eq!(r.unwrap(), msg);
            }
        }
    }

    #[test]
    fn whitespace_between_values() {
        let mut f = Framer::new();
        f.push(b" \n{\"result\":{},\"id\":1}\n\t {\"method\":\"locked\",\"params\":[\"ovn_ic\"]}");
        assert_eq!(all_messages(&mut f).len(), 2);
    }

    #[test]
    fn rejects_bad_messages() {
        for v in [
            json!({"jsonrpc": "2.0", "method": "echo", "params": [], "id": 1}),
            json!({"method": "echo", "id": 1}),
            json!({"method": "echo", "params": null, "id": 1}),
            json!({"method": "echo", "params": {}, "id": 1}),
            json!({"result": null, "error": null, "id": 1}),
            json!([1, 2]),
        ] {
            assert!(Message::from_json(v.clone()).is_err(), "{v}");
        }
    }

    #[test]
    fn classification() {
        assert_eq!(
            Message::from_json(json!({"method":"echo","params":[],"id":"echo"})).unwrap(),
            Message::request("echo", vec![], json!("echo"))
        );
        assert_eq!(
            Message::from_json(json!({"method":"stolen","params":["l"],"id":null})).unwrap(),
            Message::notify("stolen", vec![json!("l")])
        );
        assert_eq!(
            Message::from_json(json!({"result":null,"error":"unknown method","id":2})).unwrap(),
            Message::Error {
                error: json!("unknown method"),
                id: json!(2)
            }
        );
    }

    #[test]
    fn wire_form() {
        let v = Message::notify("cancel", vec![json!(1)]).to_json();
        assert_eq!(v, json!({"method":"cancel","params":[1],"id":null}));
        let v = Message::Reply {
            result: json!([]),
            id: json!("echo"),
        }
        .to_json();
        assert_eq!(v, json!({"result":[],"error":null,"id":"echo"}));
    }

    /// `to_bytes` writes without building `to_json`'s tree, byte for byte the same.
    #[test]
    fn bytes_are_the_serialised_json_form() {
        let params = vec![
            json!("OVN_Northbound"),
            json!({"op": "insert", "row": {"é": 1.5}}),
        ];
        for m in [
            Message::request("transact", params.clone(), json!(7)),
            Message::notify("update3", params),
            Message::Reply {
                result: json!([{"uuid": ["uuid", "x"]}]),
                id: json!("echo"),
            },
            Message::Error {
                error: json!({"error": "no"}),
                id: json!(3),
            },
        ] {
            assert_eq!(
                m.to_bytes(),
                serde_json::to_vec(&m.to_json()).unwrap(),
                "{m:?}"
            );
        }
    }

    #[test]
    fn parse_errors_do_not_panic() {
        let mut f = Framer::new();
        f.push(b"{\"a\":tru}");
        assert!(f.next_value().is_err());
        let mut f = Framer::new();
        f.push(b"{\"a\":\"\\u0000\"}");
        assert!(f.next_value().is_err());
        let mut f = Framer::new();
        f.push(&[b'['; 2000]);
        assert!(f.next_value().is_err());
    }

    #[test]
    fn big_message_in_many_chunks_is_linear() {
        // 4 MB message in 4 KB chunks: must complete quickly (no rescans).
        let big: Vec<Value> = (0..100_000)
            .map(|i| json!(format!("row{i:08}xxxxxxxxxxxxxxxxxxxxxxxx")))
            .collect();
        let bytes = Message::request("x", big, json!(1)).to_bytes();
        let mut f = Framer::new();
        let mut got = None;
        for chunk in bytes.chunks(4096) {
            f.push(chunk);
            if let Some(m) = f.next_message().unwrap() {
                got = Some(m);
            }
        }
        assert!(got.is_some());
    }
}
