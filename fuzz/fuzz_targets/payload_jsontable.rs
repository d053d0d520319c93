//! A jsontable payload's bytes: the receiver's decoder accepts exactly what the sender's check
//! accepts (JSON text of an array of row objects), an accepted table re-serializes to the same
//! rows, and the rows → Arrow conversion hosts use (`arrow::from_json_rows`: the CLI, the C ABI's
//! `natsbridge_arrow_from_json_rows`) either refuses them with INVALID_PAYLOAD_TYPE or makes an
//! IPC stream that reads back with as many rows.

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
    let received = deserialize(PayloadType::JsonTable, bytes.clone(), &ReceiveLimits::default());
    let sent = serialize("t", PayloadType::JsonTable, &Data::JsonBytes(bytes.clone()));
    let rows = match (received, sent) {
        (Ok(Data::Json(rows)), Ok(sent)) => {
            assert_eq!(sent, bytes, "a host's JSON text is sent as it is");
            rows
        }
        // A receiver's limits (ReceiveLimits) are its own: it may refuse what a sender sends.
        (Err(r), _) if r.code == ErrorCode::PayloadTooLarge => return,
        (Err(r), Err(s)) => {
            assert_eq!((r.code, s.code), (ErrorCode::DeserializationError, ErrorCode::InvalidPayloadType));
            return;
        }
        (r, s) => panic!("receiver {r:?}, sender {s:?}"),
    };
    let Value::Array(items) = &rows else { panic!("a jsontable decoded to {rows}") };
    assert!(items.iter().all(Value::is_object), "a jsontable decoded to {rows}");
    let text = serialize("t", PayloadType::JsonTable, &Data::Json(rows.clone())).expect("decoded rows serialize");
    match deserialize(PayloadType::JsonTable, text, &ReceiveLimits::default()) {
        Ok(Data::Json(again)) => assert!(same_json(&rows, &again), "{rows} read back as {again}"),
        other => panic!("re-serialized {rows} read back as {other:?}"),
    }
    match arrow::from_json_rows(&rows) {
        Ok(ipc) => assert_eq!(arrow::num_rows(&ipc).expect("core reads the stream it made"), items.len()),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidPayloadType, "{e}"),
    }
});
