//! The envelope's JSON, written by hand. Output is byte-identical to serde_json's (a test checks
//! this on every golden vector), but strings that need no escaping (ids, timestamps, base64, the
//! type/transport/encoding names: nearly all the bytes) are copied without serde_json's
//! byte-at-a-time escape scan, which was a quarter of a 100-byte encode and a third of 10 KB.

use super::envelope::{Envelope, WirePayload};
use serde_json::{Map, Value};
use std::ops::Range;

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether serde_json would write `s` between quotes unchanged. Branch-free per 32-byte chunk
/// so the compiler vectorizes it.
fn is_plain(s: &str) -> bool {
    s.as_bytes().chunks(32).all(|c| !c.iter().fold(false, |acc, &b| acc | needs_escape(b)))
}

fn push_str(out: &mut String, s: &str) {
    if is_plain(s) {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("a str serializes"));
    }
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => push_str(out, s),
        Value::Object(m) => push_map(out, m),
        other => out.push_str(&serde_json::to_string(other).expect("a JSON value serializes")),
    }
}

fn push_map(out: &mut String, m: &Map<String, Value>) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        push_value(out, v);
    }
    out.push('}');
}

/// Payload `p`'s object. `inline`: the bytes whose base64 is its `data` (written straight into
/// `out`; `p.data` is then not read). Returns where the text of a string `data` is in `out`.
fn push_payload(out: &mut String, p: &WirePayload, inline: Option<&[u8]>) -> Option<Range<usize>> {
    out.push_str("{\"id\":");
    push_str(out, &p.id);
    out.push_str(",\"dataname\":");
    push_str(out, &p.dataname);
    out.push_str(",\"payload_type\":");
    push_str(out, &p.payload_type);
    out.push_str(",\"transport\":");
    push_str(out, &p.transport);
    out.push_str(",\"encoding\":");
    push_str(out, &p.encoding);
    out.push_str(",\"size\":");
    out.push_str(itoa::Buffer::new().format(p.size));
    out.push_str(",\"data\":");
    let start = out.len() + 1;
    let data = match (inline, &p.data) {
        (Some(bytes), _) => {
            out.push('"');
            super::base64_encode_into(bytes, out);
            out.push('"');
            Some(start..out.len() - 1)
        }
        (None, Value::String(s)) if is_plain(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
            Some(start..out.len() - 1)
        }
        (None, v) => {
            push_value(out, v);
            None
        }
    };
    out.push_str(",\"metadata\":");
    push_map(out, &p.metadata);
    out.push('}');
    data
}

/// An envelope's JSON and where each payload's `data` string is in it.
pub(super) struct EnvelopeJson {
    pub text: String,
    /// Per payload: the byte range of its `data` string's text (between the quotes); None when
    /// `data` is not a string written as it is (an escaped string, JSON, null).
    pub data: Vec<Option<Range<usize>>>,
}

pub(super) fn envelope_to_json(env: &Envelope) -> String {
    envelope_json(env, |_| None).text
}

/// The envelope's JSON; `inline(i)` gives the bytes whose base64 is payload i's `data`.
pub(super) fn envelope_json<'b>(env: &Envelope, inline: impl Fn(usize) -> Option<&'b [u8]>) -> EnvelopeJson {
    let data_len: usize = (0..env.payloads.len())
        .map(|i| match inline(i) {
            Some(bytes) => bytes.len().div_ceil(3) * 4,
            None => env.payloads[i].data.as_str().map_or(64, str::len),
        } + 256)
        .sum();
    let mut out = String::with_capacity(512 + data_len);
    let fields: [(&str, &str); 12] = [
        ("{\"correlation_id\":", &env.correlation_id),
        (",\"msg_id\":", &env.msg_id),
        (",\"timestamp\":", &env.timestamp),
        (",\"send_to\":", &env.send_to),
        (",\"msg_purpose\":", &env.msg_purpose),
        (",\"sender_name\":", &env.sender_name),
        (",\"sender_id\":", &env.sender_id),
        (",\"receiver_name\":", &env.receiver_name),
        (",\"receiver_id\":", &env.receiver_id),
        (",\"reply_to\":", &env.reply_to),
        (",\"reply_to_msg_id\":", &env.reply_to_msg_id),
        (",\"broker_url\":", &env.broker_url),
    ];
    for (key, value) in fields {
        out.push_str(key);
        push_str(&mut out, value);
    }
    out.push_str(",\"metadata\":");
    push_map(&mut out, &env.metadata);
    out.push_str(",\"payloads\":[");
    let mut data = Vec::with_capacity(env.payloads.len());
    for (i, p) in env.payloads.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        data.push(push_payload(&mut out, p, inline(i)));
    }
    out.push(']');
    if let Some(e) = &env.error {
        out.push_str(",\"error\":");
        out.push_str(&serde_json::to_string(e).expect("an error body serializes"));
    }
    out.push('}');
    EnvelopeJson { text: out, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PayloadType, direct_payload, link_payload};

    #[test]
    fn matches_serde_json_byte_for_byte() {
        let mut env = Envelope::new("a.\"quoted\"\\subject\n");
        env.sender_name = "naïve ✓ \u{1}".into();
        env.metadata.insert("k\t".into(), serde_json::json!({"nested": [1, 2.5, null, "x\"y", {"z": true}]}));
        env.payloads.push(direct_payload("msg", PayloadType::Text, b"Hello World", true));
        env.payloads.push(link_payload("big", PayloadType::Binary, 5, "nats-obj://b/o".into(), "ab".into()));
        env.payloads[1].data = serde_json::json!({"inline": "json"});
        env.error =
            Some(crate::protocol::ErrorBody { code: "TIMEOUT".into(), message: "m".into(), details: Value::Null });
        assert_eq!(envelope_to_json(&env), serde_json::to_string(&env).unwrap());
    }

    #[test]
    fn plain_check_finds_escapes_anywhere() {
        let base = "a".repeat(100);
        assert!(is_plain(&base));
        for i in [0, 31, 32, 63, 99] {
            for bad in ['"', '\\', '\n', '\u{0}'] {
                let mut s: Vec<char> = base.chars().collect();
                s[i] = bad;
                assert!(!is_plain(&s.into_iter().collect::<String>()), "{i} {bad:?}");
            }
        }
    }
}
