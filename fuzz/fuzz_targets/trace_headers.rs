//! Received trace headers (spec/PROTOCOL.md §13, rule D): whatever a publisher puts there,
//! `TraceContext::from_headers` keeps a context exactly when the `traceparent` is well formed,
//! never panics, and keeps only what a sender could have published: each header it would send
//! on is one bounded line, every upload span names a link payload once, and those headers read
//! back as the same context.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natsbridge::protocol::trace::{
    BAGGAGE, MAX_BAGGAGE_BYTES, MAX_TRACESTATE_BYTES, TRACEPARENT, TRACESTATE, UPLOAD_SPANS,
};
use natsbridge::protocol::{TraceContext, Traceparent};

/// The input: one byte whose bits say which of payloads 0..8 came by link, then the values of
/// traceparent, tracestate, baggage and natsbridge-upload-spans separated by 0 bytes (a plain
/// layout, so fuzz/seed_corpus.py can write seeds from §13's examples).
fn parse(input: &[u8]) -> (u8, Vec<(&'static str, String)>) {
    let (links, rest) = input.split_first().map_or((0, &[][..]), |(first, rest)| (*first, rest));
    let names = [TRACEPARENT, TRACESTATE, BAGGAGE, UPLOAD_SPANS];
    let values = rest.splitn(names.len(), |&b| b == 0).map(|v| String::from_utf8_lossy(v).into_owned());
    (links, names.into_iter().zip(values).collect())
}

fn received(headers: &[(&'static str, String)], links: u8) -> Option<TraceContext> {
    let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    TraceContext::from_headers(header, |i| i < 8 && links & (1 << i) != 0)
}

fuzz_target!(|input: &[u8]| {
    natsbridge_fuzz::init();
    let (links, headers) = parse(input);
    let Some(context) = received(&headers, links) else {
        let traceparent = headers.iter().find(|(n, _)| *n == TRACEPARENT);
        assert!(traceparent.is_none_or(|(_, v)| Traceparent::parse(v).is_none()), "a well-formed traceparent was dropped");
        return;
    };
    let sent = context.headers();
    for (name, value) in &sent {
        let max = match *name {
            TRACESTATE => MAX_TRACESTATE_BYTES,
            BAGGAGE => MAX_BAGGAGE_BYTES,
            _ => usize::MAX,
        };
        assert!(!value.is_empty() && value.len() <= max, "{name} of {} bytes", value.len());
        assert!(value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)), "{name} is not one line: {value:?}");
    }
    for (k, (index, _)) in context.upload_spans.iter().enumerate() {
        assert!(*index < 8 && links & (1 << index) != 0, "upload span for payload {index}, not a link");
        assert!(context.upload_spans[..k].iter().all(|(i, _)| i != index), "two upload spans for payload {index}");
    }
    assert_eq!(received(&sent, links).as_ref(), Some(&context), "the headers it would send read back otherwise");
});
