//! The JSON-RPC stream framer and message classifier (`ovn_ic::ovsdb::jsonrpc`), fed the way a
//! socket feeds it: the input is cut into reads at fuzzer-chosen points.
//!
//! Properties checked besides "no panic, no hang":
//! * the values produced do not depend on how the stream was cut into reads (one push of
//!   everything gives the same sequence as many small pushes, up to the first error);
//! * every message that classifies round-trips: `Message::from_json(m.to_json()) == m`, and its
//!   wire bytes frame back to the same message;
//! * the lazy decoding the session uses (`Framer::next_text` + `RawMessage::decode`) accepts
//!   and rejects exactly the messages the eager one does, with the same contents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovn_ic::ovsdb::jsonrpc::lazy::RawMessage;
use ovn_ic::ovsdb::jsonrpc::{Framer, JsonRpcError, Message};
use serde_json::Value;

/// Everything the framer yields for `chunks`, ending with the first error (as a connection
/// would be dropped there) or the end-of-stream result.
fn frame(chunks: &[&[u8]]) -> Vec<Result<Value, JsonRpcError>> {
    let mut f = Framer::new();
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        loop {
            match f.next_value() {
                Ok(Some(v)) => out.push(Ok(v)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    match f.finish_eof() {
        Ok(Some(v)) => out.push(Ok(v)),
        Ok(None) => {}
        Err(e) => out.push(Err(e)),
    }
    out
}


fuzz_target!(|data: &[u8]| {
    // First byte: the read size (1..=256) for the chunked run.
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step) + 1;
    let whole = frame(&[stream]);
    let chunks: Vec<&[u8]> = stream.chunks(step).collect();
    let pieces = frame(&chunks);
    // Error texts may mention positions, so compare the kind of outcome, and values exactly.
    assert_eq!(whole.len(), pieces.len(), "framing depends on read sizes");
    for (a, b) in whole.iter().zip(&pieces) {
        match (a, b) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "framing depends on read sizes"),
            (Err(_), Err(_)) => {}
            _ => panic!("framing depends on read sizes: {a:?} vs {b:?}"),
        }
    }
    let mut f = Framer::new();
    f.push(stream);
    while let Ok(Some(text)) = f.next_text() {
        let eager = serde_json::from_str::<Value>(text)
            .ok()
            .filter(|_| !text.contains("\\u0000"))
            .map(Message::from_json);
        match (eager, RawMessage::decode(text)) {
            (Some(Ok(m)), Ok(r)) => assert_eq!(r.into_message(), m, "lazy decoding differs"),
            (Some(Ok(m)), Err(e)) => panic!("lazy rejects {m:?}: {e}"),
            (_, Ok(r)) if !text.contains('\\') => panic!("lazy accepts {r:?}"),
            _ => {}
        }
    }
    for v in whole.into_iter().flatten() {
        if let Ok(m) = Message::from_json(v) {
            let back = Message::from_json(m.to_json()).expect("our own message classifies");
            assert_eq!(back, m);
            let mut f = Framer::new();
            f.push(&m.to_bytes());
            let again = f.next_message().expect("our own bytes frame");
            assert_eq!(again.as_ref(), Some(&m));
        }
    }
});
