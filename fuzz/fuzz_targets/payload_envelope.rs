//! The whole direct path: a host value of any payload type goes through the sender
//! (`Outgoing::from_host`, `SendPlan`, the hand-written envelope writer, base64) and the receiver
//! (`decode_direct`, the envelope scanner, base64, the payload decoder). Whatever the sender
//! publishes, the receiver accepts, with the same header and the value the payload codec makes of
//! the sent bytes; what the sender refuses is INVALID_PAYLOAD_TYPE, and what is past the receiver's
//! limits is PAYLOAD_TOO_LARGE for the payload codec and the whole message alike.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use natsbridge::error::ErrorCode;
use natsbridge::protocol::{
    Envelope, HostValue, Outgoing, PayloadType, ReceiveLimits, SendLimits, SendPlan, SendStep, Transport,
    decode_direct, deserialize, serialize,
};

/// The input: the payload type's index, how the host gives the value (bytes, a string, JSON
/// text), then a header string, a 0 byte and the value's bytes. The header string holds any
/// characters, so the writer's escaping meets the scanner. (A plain layout, so
/// fuzz/seed_corpus.py can write seeds from spec/vectors.)
fn parse(input: &[u8]) -> Option<(PayloadType, HostValue, String)> {
    let [payload_type, kind, rest @ ..] = input else { return None };
    let payload_type = PayloadType::ALL[usize::from(*payload_type) % PayloadType::ALL.len()];
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let sender_name = String::from_utf8_lossy(&rest[..split]).into_owned();
    let value = rest.get(split + 1..).unwrap_or_default();
    let host = match kind % 3 {
        0 => HostValue::Bytes(Bytes::copy_from_slice(value)),
        1 => HostValue::Text(String::from_utf8_lossy(value).into_owned()),
        _ => HostValue::JsonText(String::from_utf8_lossy(value).into_owned()),
    };
    Some((payload_type, host, sender_name))
}

fuzz_target!(|input: &[u8]| {
    natsbridge_fuzz::init();
    let Some((payload_type, host, sender_name)) = parse(input) else { return };
    let outgoing = match Outgoing::from_host("p", payload_type.as_str(), host) {
        Ok(o) => o,
        Err(e) => return assert_eq!(e.code, ErrorCode::InvalidPayloadType, "{e}"),
    };
    let envelope = Envelope {
        correlation_id: "c".into(),
        msg_id: "m".into(),
        send_to: "fuzz.subject".into(),
        msg_purpose: "chat".into(),
        reply_to: sender_name.chars().rev().collect(),
        sender_name,
        ..Envelope::default()
    };
    let direct_only = SendLimits { threshold: usize::MAX, max_payload: usize::MAX, can_upload: false };
    let mut plan = match SendPlan::new(envelope.clone(), vec![outgoing.clone()], direct_only) {
        Ok(plan) => plan,
        Err(e) => return assert_eq!(e.code, ErrorCode::InvalidPayloadType, "{e}"),
    };
    assert_eq!(plan.step().expect("nothing to upload"), SendStep::Publish);
    let sent = plan.finish();
    let wire = serialize("p", payload_type, &outgoing.data).expect("the plan serialized it");
    let expected = match deserialize(payload_type, wire, &ReceiveLimits::default()) {
        Ok(value) => value,
        // A sender has no receive limits, so it can make what a receiver's limits refuse (an
        // Arrow table of more values than its bytes pay for): the message is then refused too.
        Err(e) => {
            assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{e}");
            let refused = decode_direct(&sent.json, &ReceiveLimits::default()).map(|v| v.is_some());
            return assert_eq!(refused.map_err(|e| e.code), Err(ErrorCode::PayloadTooLarge));
        }
    };
    let view = match decode_direct(&sent.json, &ReceiveLimits::default()) {
        Ok(Some(view)) => view,
        other => panic!("sent {} received as {:?}", sent.json_str(), other.map(|v| v.is_some())),
    };
    assert_eq!(view.envelope.header(), envelope.header());
    assert_eq!(view.payloads.len(), 1);
    let p = &view.payloads[0];
    assert_eq!((p.dataname.as_str(), p.payload_type, p.transport), ("p", payload_type, Transport::Direct));
    assert_eq!(p.data, expected);
});
