//! A dictionary payload's bytes (JSON text): the receiver's decoder (`deserialize`) accepts
//! exactly what the sender's check (`serialize` of the host's JSON bytes) accepts, with the codes
//! each side documents; an accepted value re-serializes to text that reads back as the same value.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use natsbridge::error::ErrorCode;
use natsbridge::protocol::{Data, PayloadType, ReceiveLimits, deserialize, serialize};
use natsbridge_fuzz::same_json;

fuzz_target!(|bytes: &[u8]| {
    natsbridge_fuzz::init();
    let bytes = Bytes::copy_from_slice(bytes);
    let received = deserialize(PayloadType::Dictionary, bytes.clone(), &ReceiveLimits::default());
    let sent = serialize("d", PayloadType::Dictionary, &Data::JsonBytes(bytes.clone()));
    let value = match (received, sent) {
        (Ok(Data::Json(value)), Ok(sent)) => {
            assert_eq!(sent, bytes, "a host's JSON text is sent as it is");
            value
        }
        // A receiver's limits (ReceiveLimits) are its own: it may refuse what a sender sends.
        (Err(r), _) if r.code == ErrorCode::PayloadTooLarge => return,
        (Err(r), Err(s)) => {
            assert_eq!((r.code, s.code), (ErrorCode::DeserializationError, ErrorCode::InvalidPayloadType));
            return;
        }
        (r, s) => panic!("receiver {r:?}, sender {s:?}"),
    };
    let text = serialize("d", PayloadType::Dictionary, &Data::Json(value.clone())).expect("a parsed value serializes");
    match deserialize(PayloadType::Dictionary, text, &ReceiveLimits::default()) {
        Ok(Data::Json(again)) => assert!(same_json(&value, &again), "{value} read back as {again}"),
        other => panic!("re-serialized {value} read back as {other:?}"),
    }
});
