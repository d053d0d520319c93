//! What-if prototypes for the profile-based proposals in bench/RESULTS.md. Nothing here is used
//! by core: these functions exist to measure, side by side with the real pipeline in `lib.rs`,
//! how much each proposed change to core would save. `tests` check that they produce the same
//! bytes / values as core, so the comparison is like for like.
//!
//! * [`to_json_fast`]: a drop-in for `Envelope::to_json` that writes the JSON by hand and skips
//!   serde_json's byte-at-a-time escape scan for strings that need no escaping (UUIDs,
//!   timestamps, base64, the payload-type/transport/encoding constants). Same bytes out.
//! * [`encode_fused`]: smartsend's encode without the intermediate `WirePayload` strings: ids and
//!   the base64 text are appended straight into the output buffer (base64 crate or SIMD engine).
//! * [`decode_borrowed`]: smartreceive's decode with a borrowing parse (`Cow<str>` fields,
//!   `data` read in place) and base64 decoded straight from the message bytes.

use crate::SenderInfo;
use base64::Engine as _;
use bytes::Bytes;
use natsbridge::error::{Error, ErrorCode, Result};
use natsbridge::protocol::{self, Data, Envelope, PayloadType, Transport, WirePayload};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Which base64 implementation a what-if uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum B64 {
    /// `base64` 0.22 `general_purpose::STANDARD` (what core uses today).
    Crate,
    /// `base64-simd` 0.8 `STANDARD` (runtime-detected AVX2 / SSE4.1 / NEON / wasm simd128).
    Simd,
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// True when serde_json would write `s` between quotes unchanged. Branch-free per 32-byte
/// chunk, so the compiler vectorizes it.
#[inline]
fn is_json_safe(s: &str) -> bool {
    s.as_bytes().chunks(32).all(|c| !c.iter().fold(false, |acc, &b| acc | needs_escape(b)))
}

/// Appends `s` as a JSON string, exactly as serde_json writes it.
fn push_str(out: &mut String, s: &str) {
    if is_json_safe(s) {
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
        other => out.push_str(&serde_json::to_string(other).expect("a Value serializes")),
    }
}

fn push_map(out: &mut String, m: &serde_json::Map<String, Value>) {
    if m.is_empty() {
        out.push_str("{}");
        return;
    }
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

fn push_u64(out: &mut String, n: u64) {
    use std::fmt::Write as _;
    let _ = write!(out, "{n}");
}

fn push_payload(out: &mut String, p: &WirePayload) {
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
    push_u64(out, p.size);
    out.push_str(",\"data\":");
    push_value(out, &p.data);
    out.push_str(",\"metadata\":");
    push_map(out, &p.metadata);
    out.push('}');
}

/// `Envelope::to_json`, written by hand: the same bytes, without serde_json's escape scan on
/// strings that need none.
pub fn to_json_fast(env: &Envelope) -> String {
    let data_len: usize = env.payloads.iter().map(|p| if let Value::String(s) = &p.data { s.len() } else { 64 }).sum();
    let mut out = String::with_capacity(640 + data_len + 256 * env.payloads.len());
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
    for (i, p) in env.payloads.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_payload(&mut out, p);
    }
    out.push(']');
    if let Some(e) = &env.error {
        out.push_str(",\"error\":");
        out.push_str(&serde_json::to_string(e).expect("an error body serializes"));
    }
    out.push('}');
    out
}

/// The real pipeline (`crate::encode`) with `to_json_fast` in place of `Envelope::to_json`.
pub fn encode_fast_json(
    sender: &SenderInfo,
    subject: &str,
    dataname: &str,
    payload_type: PayloadType,
    data: &Data,
) -> Result<String> {
    let bytes = protocol::serialize(dataname, payload_type, data)?;
    let mut env = Envelope::new(subject);
    env.sender_id.clone_from(&sender.sender_id);
    env.sender_name.clone_from(&sender.sender_name);
    env.broker_url.clone_from(&sender.broker_url);
    env.payloads.push(protocol::direct_payload(dataname, payload_type, &bytes, false));
    Ok(to_json_fast(&env))
}

fn push_uuid(out: &mut String) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push('"');
    out.push_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf));
    out.push('"');
}

/// smartsend's encode of one direct payload with no intermediate envelope: the JSON is written
/// in one pre-sized buffer, ids formatted in place, base64 appended straight into it.
pub fn encode_fused(
    sender: &SenderInfo,
    subject: &str,
    dataname: &str,
    payload_type: PayloadType,
    data: &Data,
    b64: B64,
) -> Result<String> {
    let bytes = protocol::serialize(dataname, payload_type, data)?;
    let mut out = String::with_capacity(640 + bytes.len().div_ceil(3) * 4 + dataname.len() + subject.len());
    out.push_str("{\"correlation_id\":");
    push_uuid(&mut out);
    out.push_str(",\"msg_id\":");
    push_uuid(&mut out);
    out.push_str(",\"timestamp\":");
    push_str(&mut out, &protocol::timestamp_now());
    out.push_str(",\"send_to\":");
    push_str(&mut out, subject);
    out.push_str(",\"msg_purpose\":\"chat\",\"sender_name\":");
    push_str(&mut out, &sender.sender_name);
    out.push_str(",\"sender_id\":");
    push_str(&mut out, &sender.sender_id);
    out.push_str(
        ",\"receiver_name\":\"\",\"receiver_id\":\"\",\"reply_to\":\"\",\"reply_to_msg_id\":\"\",\"broker_url\":",
    );
    push_str(&mut out, &sender.broker_url);
    out.push_str(",\"metadata\":{},\"payloads\":[{\"id\":");
    push_uuid(&mut out);
    out.push_str(",\"dataname\":");
    push_str(&mut out, dataname);
    out.push_str(",\"payload_type\":\"");
    out.push_str(payload_type.as_str());
    out.push_str("\",\"transport\":\"direct\",\"encoding\":\"base64\",\"size\":");
    push_u64(&mut out, bytes.len() as u64);
    out.push_str(",\"data\":\"");
    match b64 {
        B64::Crate => base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut out),
        B64::Simd => base64_simd::STANDARD.encode_append(&bytes, &mut out),
    }
    out.push_str("\",\"metadata\":{\"payload_bytes\":");
    push_u64(&mut out, bytes.len() as u64);
    out.push_str("}}]}");
    Ok(out)
}

fn cow_or_null<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Cow<'a, str>, D::Error> {
    Ok(Option::<Cow<'a, str>>::deserialize(d)?.unwrap_or_default())
}

/// The envelope, borrowed from the message bytes.
#[derive(Deserialize)]
pub struct EnvelopeRef<'a> {
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub correlation_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub msg_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub timestamp: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub send_to: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub msg_purpose: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub sender_name: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub sender_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub receiver_name: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub receiver_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub reply_to: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub reply_to_msg_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub broker_url: Cow<'a, str>,
    /// Parsed lazily, when the host asks for it.
    #[serde(borrow, default)]
    pub metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub payloads: Option<Vec<PayloadRef<'a>>>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct PayloadRef<'a> {
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub dataname: Cow<'a, str>,
    #[serde(borrow)]
    pub payload_type: Cow<'a, str>,
    #[serde(borrow)]
    pub transport: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    pub encoding: Cow<'a, str>,
    pub size: u64,
    /// A string for base64 / URL data (serde_json's `RawValue` would scan a long string byte by
    /// byte; a borrowed `Cow<str>` uses its fast escape scan and no copy when nothing is escaped).
    /// A real implementation would fall back to `Value` for `encoding: "json"`.
    #[serde(borrow)]
    pub data: Cow<'a, str>,
    #[serde(borrow, default)]
    pub metadata: Option<PayloadMetaRef<'a>>,
}

#[derive(Deserialize, Default)]
pub struct PayloadMetaRef<'a> {
    #[serde(borrow, default)]
    pub sha256: Option<Cow<'a, str>>,
}

fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidEnvelope, m)
}

/// `Envelope::parse` with one UTF-8 check of the whole message and `serde_json::from_str`, which
/// then skips its per-string UTF-8 validation.
pub fn parse_from_str(message: &[u8]) -> Result<Envelope> {
    let text = std::str::from_utf8(message).map_err(|e| invalid(format!("message is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| invalid(format!("message is not a valid envelope: {e}")))
}

/// smartreceive's decode of direct payloads with a borrowing parse and base64 decoded straight
/// from the message bytes. Same checks as `decode_inline` for base64 direct payloads.
pub fn decode_borrowed(message: &[u8], b64: B64) -> Result<Vec<Data>> {
    let text = std::str::from_utf8(message).map_err(|e| invalid(format!("message is not UTF-8: {e}")))?;
    let env: EnvelopeRef<'_> =
        serde_json::from_str(text).map_err(|e| invalid(format!("message is not a valid envelope: {e}")))?;
    let payloads = env.payloads.unwrap_or_default();
    let mut out = Vec::with_capacity(payloads.len());
    for p in &payloads {
        let payload_type = PayloadType::parse(&p.payload_type)?;
        if Transport::parse(&p.transport)? != Transport::Direct {
            return Err(invalid("decode_borrowed handles direct payloads only".into()));
        }
        if !matches!(&*p.encoding, "" | "base64" | "arrow-ipc") {
            return Err(invalid(format!("encoding {:?} not handled here", p.encoding)));
        }
        let text = p.data.as_bytes();
        let bytes: Vec<u8> = match b64 {
            B64::Crate => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| Error::new(ErrorCode::DeserializationError, format!("invalid base64 data: {e}")))?,
            B64::Simd => base64_simd::STANDARD
                .decode_to_vec(text)
                .map_err(|e| Error::new(ErrorCode::DeserializationError, format!("invalid base64 data: {e}")))?,
        };
        if bytes.len() as u64 != p.size {
            return Err(Error::new(ErrorCode::ChecksumMismatch, "size mismatch"));
        }
        if let Some(expected) = p.metadata.as_ref().and_then(|m| m.sha256.as_deref())
            && !protocol::sha256_hex(&bytes).eq_ignore_ascii_case(expected)
        {
            return Err(Error::new(ErrorCode::ChecksumMismatch, "sha256 mismatch"));
        }
        out.push(protocol::deserialize(payload_type, Bytes::from(bytes))?);
    }
    Ok(out)
}

/// base64 alone, for the share of the codec time it takes.
pub fn b64_encode(bytes: &[u8], b64: B64) -> String {
    match b64 {
        B64::Crate => base64::engine::general_purpose::STANDARD.encode(bytes),
        B64::Simd => base64_simd::STANDARD.encode_to_string(bytes),
    }
}

pub fn b64_decode(text: &str, b64: B64) -> Vec<u8> {
    match b64 {
        B64::Crate => base64::engine::general_purpose::STANDARD.decode(text).expect("valid base64"),
        B64::Simd => base64_simd::STANDARD.decode_to_vec(text).expect("valid base64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codec_cases, decode, encode};

    #[test]
    fn fast_json_is_byte_identical() {
        let sender = SenderInfo::default();
        for (name, t, data) in codec_cases() {
            let json = encode(&sender, "a.b", name, t, &data).unwrap();
            let env = Envelope::parse(json.as_bytes()).unwrap();
            assert_eq!(to_json_fast(&env), env.to_json(), "{name}");
        }
        let mut env = Envelope::new("sub\"ject\n");
        env.sender_name = "ünï \\ \u{1}".into();
        env.metadata.insert("k\"".into(), serde_json::json!({"x": [1, "y\n", null]}));
        let mut p = protocol::direct_payload("da\tta", PayloadType::Text, b"hi", true);
        p.data = serde_json::json!({"inline": true});
        env.payloads.push(p);
        env.error = Some(protocol::ErrorBody { code: "TIMEOUT".into(), message: "m\"".into(), details: Value::Null });
        assert_eq!(to_json_fast(&env), env.to_json());
    }

    #[test]
    fn fused_and_borrowed_match_core() {
        let sender = SenderInfo::default();
        for (name, t, data) in codec_cases() {
            for b64 in [B64::Crate, B64::Simd] {
                let fused = encode_fused(&sender, "a.b", name, t, &data, b64).unwrap();
                let env = Envelope::parse(fused.as_bytes()).unwrap();
                // Same shape as core's envelope (ids and timestamp differ).
                let core = Envelope::parse(encode(&sender, "a.b", name, t, &data).unwrap().as_bytes()).unwrap();
                assert_eq!(env.payloads[0].data, core.payloads[0].data, "{name}");
                assert_eq!(env.payloads[0].metadata, core.payloads[0].metadata, "{name}");
                assert_eq!(fused.len(), core.to_json().len(), "{name}");
                assert_eq!(decode(fused.as_bytes()).unwrap().1, vec![data.clone()], "{name}");
                assert_eq!(decode_borrowed(fused.as_bytes(), b64).unwrap(), vec![data.clone()], "{name}");
            }
        }
    }
}
