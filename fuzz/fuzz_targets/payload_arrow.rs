//! An arrowtable payload's bytes (Arrow IPC stream): the receiver's decoder accepts exactly what
//! the sender's check accepts, both with their documented codes (a panic inside arrow-ipc is
//! caught by core and is bad input too); an accepted stream renders as JSON rows by both paths
//! (`to_json_rows`, `to_json_rows_text`), which agree, with one row object per Arrow row, or both
//! fail with DESERIALIZATION_ERROR; rows rendered that way convert back to a stream of as many
//! rows or are refused with INVALID_PAYLOAD_TYPE.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use natsbridge::error::ErrorCode;
use natsbridge::protocol::{Data, PayloadType, ReceiveLimits, arrow, deserialize, serialize};
use natsbridge_fuzz::same_json;
use serde_json::Value;

fuzz_target!(|bytes: &[u8]| {
    natsbridge_fuzz::init();
    let bytes = Bytes::copy_from_slice(bytes);
    let received = deserialize(PayloadType::ArrowTable, bytes.clone(), &ReceiveLimits::default());
    let sent = serialize("a", PayloadType::ArrowTable, &Data::Arrow(bytes.clone()));
    match (received, sent) {
        (Ok(Data::Arrow(received)), Ok(sent)) => assert!(received == bytes && sent == bytes),
        // A receiver's limits (ReceiveLimits) are its own: it may refuse what a sender sends.
        (Err(r), _) if r.code == ErrorCode::PayloadTooLarge => return,
        (Err(r), Err(s)) => {
            assert_eq!((r.code, s.code), (ErrorCode::DeserializationError, ErrorCode::InvalidPayloadType));
            assert_eq!(arrow::to_json_rows(&bytes).unwrap_err().code, ErrorCode::DeserializationError);
            return;
        }
        (r, s) => panic!("receiver {r:?}, sender {s:?}"),
    }
    let rows = arrow::to_json_rows(&bytes);
    let text = arrow::to_json_rows_text(&bytes);
    let rows = match (rows, text) {
        (Ok(rows), Ok(text)) => {
            let parsed: Value = serde_json::from_str(&text).expect("rows text is JSON");
            assert!(same_json(&parsed, &rows), "text {text} and value {rows} differ");
            rows
        }
        (Err(a), Err(b)) => {
            assert_eq!((a.code, b.code), (ErrorCode::DeserializationError, ErrorCode::DeserializationError));
            return;
        }
        (a, b) => panic!("to_json_rows {a:?}, to_json_rows_text {b:?}"),
    };
    let Value::Array(items) = &rows else { panic!("rows are {rows}") };
    assert!(items.iter().all(Value::is_object), "rows are {rows}");
    assert_eq!(items.len(), arrow::num_rows(&bytes).expect("validated"));
    match arrow::from_json_rows(&rows) {
        Ok(ipc) => assert_eq!(arrow::num_rows(&ipc).expect("core reads the stream it made"), items.len()),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidPayloadType, "{e}"),
    }
});
