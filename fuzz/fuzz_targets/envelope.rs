//! Message bytes → a received envelope, by every decoder core has, checked against each other and
//! against a generic JSON parse of the same bytes:
//! - `decode_message` (owned envelope + checked payloads), `decode_direct` (the view hosts build
//!   from), `DirectMessage::decode` (the view kept with its bytes) and `ReceivePlan` (the receive
//!   machine) accept the same messages, fail with the same code, and give the same header,
//!   metadata, error and payload values;
//! - whatever is accepted reads as `serde_json::Value` says the bytes are (the envelope scanner's
//!   fast path must not read a field differently from JSON);
//! - a receive with links refuses what no source serves, and retries and fails the rest with
//!   DOWNLOAD_FAILED when every fetch fails.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use natsbridge::error::{Error, ErrorCode};
use natsbridge::protocol::{
    self, DecodedPayload, DirectMessage, Envelope, ErrorBody, FetchFailure, HEADER_FIELDS, Incoming, PayloadSource,
    ReceiveLimits, ReceivePlan, ReceiveRules, ReceiveStep, RetryPolicy, Transport, UrlScope,
};
use serde_json::{Map, Value};
use std::time::Duration;

fuzz_target!(|message: &[u8]| {
    natsbridge_fuzz::init();
    let owned = protocol::decode_message(message, &ReceiveLimits::default());
    if let Ok((envelope, decoded)) = &owned {
        reads_as_json_says(message, envelope, decoded);
    }
    let direct = expected_direct(&owned);
    views_agree(message, &owned, &direct);
    receive_plan_agrees(message, &owned, &direct);
});

/// What `decode_direct` must give, from `decode_message`'s result: its error; None when a payload
/// is a link; else each inline payload deserialized (the first failure is the error).
fn expected_direct(owned: &Result<(Envelope, Vec<DecodedPayload>), Error>) -> Result<Option<Vec<Incoming>>, ErrorCode> {
    let (_, decoded) = owned.as_ref().map_err(|e| e.code)?;
    if decoded.iter().any(|p| matches!(p.source, PayloadSource::Link(_))) {
        return Ok(None);
    }
    decoded
        .iter()
        .map(|p| {
            let PayloadSource::Inline(bytes) = &p.source else { unreachable!("links were handled above") };
            let data =
                protocol::deserialize(p.payload_type, bytes.clone(), &ReceiveLimits::default()).map_err(|e| e.code)?;
            Ok(Incoming {
                dataname: p.dataname.clone(),
                payload_type: p.payload_type,
                data,
                transport: Transport::Direct,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn header_strings<'a>(header: [(&'static str, &'a str); 12]) -> Vec<&'a str> {
    header.iter().map(|(_, v)| *v).collect()
}

/// A string field as the protocol reads it: missing or null is "".
fn string_field<'a>(object: &'a Map<String, Value>, name: &str) -> &'a str {
    match object.get(name) {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s,
        Some(other) => panic!("accepted a message whose {name} is {other}"),
    }
}

/// The accepted message, read by a generic JSON parser: the same fields and payloads.
fn reads_as_json_says(message: &[u8], envelope: &Envelope, decoded: &[DecodedPayload]) {
    let json: Value = serde_json::from_slice(message).expect("an accepted message is JSON");
    let object = json.as_object().expect("an accepted message is a JSON object");
    for (i, field) in HEADER_FIELDS.iter().enumerate() {
        assert_eq!(envelope.header()[i].1, string_field(object, field), "{field}");
    }
    let metadata = match object.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => panic!("accepted metadata {other}"),
    };
    assert_eq!(envelope.metadata, metadata);
    let error = match object.get("error") {
        None | Some(Value::Null) => None,
        Some(e) => Some(serde_json::from_value::<ErrorBody>(e.clone()).expect("an accepted error body")),
    };
    assert_eq!(envelope.error, error);
    let wire = match object.get("payloads") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => panic!("accepted payloads {other}"),
    };
    assert_eq!(wire.len(), decoded.len());
    assert_eq!(envelope.payloads.len(), decoded.len());
    for ((w, p), kept) in wire.iter().zip(decoded).zip(&envelope.payloads) {
        let w = w.as_object().expect("an accepted payload is an object");
        let text = |name: &str| w.get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("payload {name}"));
        assert_eq!(p.dataname, text("dataname"));
        assert_eq!(p.payload_type.as_str(), text("payload_type"));
        assert_eq!(kept.transport, text("transport"));
        assert_eq!(kept.encoding, string_field(w, "encoding"));
        // Inline JSON's size is that of its re-serialization (envelope.rs says why); the rest keep theirs.
        if kept.encoding != "json" {
            assert_eq!(Some(p.size), w.get("size").and_then(Value::as_u64));
        }
        match &p.source {
            PayloadSource::Link(url) => {
                assert_eq!(kept.transport, "link");
                assert_eq!(url, text("data"));
                assert_eq!(&kept.data, &w["data"]);
            }
            PayloadSource::Inline(bytes) => {
                assert_eq!(kept.transport, "direct");
                assert_eq!(bytes.len() as u64, p.size);
                assert_eq!(kept.data, Value::Null, "a direct payload's data is dropped from the owned envelope");
            }
        }
    }
}

/// `decode_direct` and `DirectMessage::decode` give what `decode_message` says they must.
fn views_agree(
    message: &[u8],
    owned: &Result<(Envelope, Vec<DecodedPayload>), Error>,
    expected: &Result<Option<Vec<Incoming>>, ErrorCode>,
) {
    let view = protocol::decode_direct(message, &ReceiveLimits::default());
    match (&view, expected) {
        (Err(e), Err(code)) => assert_eq!(e.code, *code),
        (Ok(None), Ok(None)) => {}
        (Ok(Some(view)), Ok(Some(payloads))) => {
            let (envelope, _) = owned.as_ref().expect("decoded");
            assert_eq!(view.envelope.header(), envelope.header());
            assert_eq!(view.envelope.metadata(), &envelope.metadata);
            assert_eq!(view.envelope.error(), envelope.error.as_ref());
            assert_eq!(&view.payloads, payloads);
        }
        (got, want) => {
            panic!("decode_direct gave {:?}, decode_message says {want:?}", got.as_ref().map(Option::is_some))
        }
    }
    match (DirectMessage::decode(Bytes::copy_from_slice(message), &ReceiveLimits::default()), view) {
        (Err(a), Err(b)) => assert_eq!(a.code, b.code),
        (Ok(None), Ok(None)) => {}
        (Ok(Some(kept)), Ok(Some(view))) => {
            assert_eq!(header_strings(kept.envelope().header()), header_strings(view.envelope.header()));
            assert_eq!(kept.envelope().metadata(), view.envelope.metadata());
            assert_eq!(kept.payloads, view.payloads);
        }
        (kept, view) => panic!(
            "DirectMessage::decode gave {:?}, decode_direct {:?}",
            kept.map(|k| k.is_some()),
            view.map(|v| v.is_some())
        ),
    }
}

/// The receive machine parses as `decode_message` does; a direct message finishes with
/// `decode_direct`'s payloads; links go only where a source serves them, and when every fetch
/// fails the receive ends with DOWNLOAD_FAILED after the policy's attempts.
fn receive_plan_agrees(
    message: &[u8],
    owned: &Result<(Envelope, Vec<DecodedPayload>), Error>,
    expected: &Result<Option<Vec<Incoming>>, ErrorCode>,
) {
    let mut plan = match (ReceivePlan::new(message, &ReceiveLimits::default()), owned) {
        (Err(a), Err(b)) => return assert_eq!(a.code, b.code),
        (Ok(plan), Ok((envelope, _))) => {
            assert_eq!(plan.envelope(), envelope);
            plan
        }
        (plan, owned) => panic!("ReceivePlan::new: {:?}, decode_message: {:?}", plan.is_ok(), owned.is_ok()),
    };
    let rules = ReceiveRules {
        sources: vec![
            vec![UrlScope::scheme("nats-obj")],
            vec![UrlScope::parse("http://files.local/store").expect("a valid scope")],
        ],
        retry: RetryPolicy { retries: 2, base_delay: Duration::ZERO, max_delay: Duration::ZERO },
        ..ReceiveRules::default()
    };
    let Ok(Some(payloads)) = expected else {
        return links_fail(plan, &rules, expected);
    };
    assert!(!plan.has_links());
    assert_eq!(plan.step(&rules).expect("nothing to fetch"), ReceiveStep::Done);
    let received = plan.finish().expect("decode_direct decoded it");
    assert_eq!(&received.payloads, payloads);
}

fn links_fail(mut plan: ReceivePlan, rules: &ReceiveRules, expected: &Result<Option<Vec<Incoming>>, ErrorCode>) {
    let links = plan.has_links();
    let mut fetches = 0;
    let outcome = loop {
        match plan.step(rules) {
            Ok(ReceiveStep::Fetch(fetch)) => {
                fetches += 1;
                assert!(fetch.source < rules.sources.len());
                assert!(rules.sources[fetch.source].iter().any(|s| s.matches(&fetch.url)));
                plan.fetch_failed(&fetch, FetchFailure::Network("refused".into()), rules);
            }
            Ok(ReceiveStep::Wait) => panic!("a failed fetch left the plan waiting"),
            Ok(ReceiveStep::Done) => break Ok(()),
            Err(e) => break Err(e),
        }
        assert!(fetches <= 2 * 1024 * 1024, "fetches do not end");
    };
    match outcome {
        // Direct payloads whose bytes do not deserialize (decode_direct's error) fail at finish.
        Ok(()) => {
            assert!(!links, "a link was not fetched");
            let e = plan.finish().expect_err("decode_direct failed");
            assert_eq!(Err(e.code), *expected);
        }
        Err(e) => {
            assert!(links);
            assert!(
                matches!(e.code, ErrorCode::UrlNotAllowed | ErrorCode::PayloadTooLarge | ErrorCode::DownloadFailed),
                "{e}"
            );
            assert_eq!(fetches > 0, e.code == ErrorCode::DownloadFailed, "{e}");
        }
    }
}
