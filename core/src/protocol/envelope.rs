//! The envelope as it is on the wire, with the seeds' exact field names, and the checks a
//! receiver applies to each payload before it trusts the bytes.

use super::{PayloadType, ReceiveLimits, Transport, base64_decode, base64_encode, new_id, sha256_hex};
use crate::error::{Error, ErrorCode, Result, err};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

mod scan;

fn map_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

/// Seeds' senders (Python `None`, JS `null`) may put null in a string field; it reads as "".
/// A string field is borrowed from the message when it has no escapes.
/// (serde's own `Cow` impl always copies; only this visitor borrows.)
fn cow_or_null<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> std::result::Result<Cow<'a, str>, D::Error> {
    struct CowOrNull;
    impl<'de> serde::de::Visitor<'de> for CowOrNull {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
        fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
            Ok(Cow::Borrowed(""))
        }
        fn visit_none<E>(self) -> std::result::Result<Self::Value, E> {
            Ok(Cow::Borrowed(""))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    d.deserialize_option(CowOrNull)
}

/// A payload's `data` as parsed from a message: a string (borrowed when it has no escapes, as
/// base64 never has) in one scan, or any other JSON value (inline `encoding: "json"`).
#[derive(Debug, PartialEq)]
enum DataRef<'a> {
    Str(Cow<'a, str>),
    Json(Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for DataRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct DataVisitor;
        impl<'de> serde::de::Visitor<'de> for DataVisitor {
            type Value = DataRef<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("payload data")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Json(Value::Null))
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Json(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Json(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Json(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
                Ok(DataRef::Json(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<Self::Value, A::Error> {
                Value::deserialize(SeqAccessDeserializer::new(seq)).map(DataRef::Json)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map)).map(DataRef::Json)
            }
        }
        d.deserialize_any(DataVisitor)
    }
}

/// The envelope as parsed, borrowing from the message: inline base64 is decoded straight from
/// the message bytes rather than copied into a `String` first.
#[derive(Debug, Default, Deserialize, PartialEq)]
struct EnvelopeRef<'a> {
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    correlation_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    msg_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    timestamp: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    send_to: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    msg_purpose: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    sender_name: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    sender_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    receiver_name: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    receiver_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    reply_to: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    reply_to_msg_id: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    broker_url: Cow<'a, str>,
    #[serde(default, deserialize_with = "map_or_null")]
    metadata: Map<String, Value>,
    #[serde(borrow, default)]
    payloads: Option<Vec<PayloadRef<'a>>>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct PayloadRef<'a> {
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    id: Cow<'a, str>,
    #[serde(borrow)]
    dataname: Cow<'a, str>,
    #[serde(borrow)]
    payload_type: Cow<'a, str>,
    #[serde(borrow)]
    transport: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "cow_or_null")]
    encoding: Cow<'a, str>,
    size: u64,
    #[serde(borrow)]
    data: DataRef<'a>,
    #[serde(default, deserialize_with = "map_or_null")]
    metadata: Map<String, Value>,
}

impl<'a> EnvelopeRef<'a> {
    fn parse(bytes: &'a [u8]) -> Result<EnvelopeRef<'a>> {
        // serde also reads a struct from a JSON array of its fields; an envelope is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return err(ErrorCode::InvalidEnvelope, "message is not a JSON object");
        }
        // One UTF-8 check of the whole message, then `from_str`, which does not check each string again.
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::new(ErrorCode::InvalidEnvelope, format!("message is not valid UTF-8: {e}")))?;
        let envelope: EnvelopeRef = match scan::scan(text) {
            Some(envelope) => envelope,
            None => serde_json::from_str(text).map_err(|e| {
                let what = if e.is_syntax() || e.is_eof() { "not valid JSON" } else { "not a valid envelope" };
                Error::new(ErrorCode::InvalidEnvelope, format!("message is {what}: {e}"))
            })?,
        };
        // Any JSON object would otherwise pass as an envelope with nothing in it: another
        // application's message on the same subject must not be taken silently. Only an error
        // reply may leave `payloads` out (the walkthrough's error response does).
        if envelope.payloads.is_none() && envelope.error.is_none() {
            return Err(Error::new(
                ErrorCode::InvalidEnvelope,
                "message is not an envelope: it has no \"payloads\" array (only an error reply may leave it out)",
            )
            .with_correlation_id(&envelope.correlation_id));
        }
        Ok(envelope)
    }

    /// The owned envelope; `keep_data(i)` says whether payload i's `data` is kept (else null).
    fn into_owned(self, keep_data: impl Fn(usize) -> bool) -> Envelope {
        let payloads = self.payloads.unwrap_or_default();
        Envelope {
            correlation_id: self.correlation_id.into_owned(),
            msg_id: self.msg_id.into_owned(),
            timestamp: self.timestamp.into_owned(),
            send_to: self.send_to.into_owned(),
            msg_purpose: self.msg_purpose.into_owned(),
            sender_name: self.sender_name.into_owned(),
            sender_id: self.sender_id.into_owned(),
            receiver_name: self.receiver_name.into_owned(),
            receiver_id: self.receiver_id.into_owned(),
            reply_to: self.reply_to.into_owned(),
            reply_to_msg_id: self.reply_to_msg_id.into_owned(),
            broker_url: self.broker_url.into_owned(),
            metadata: self.metadata,
            payloads: payloads
                .into_iter()
                .enumerate()
                .map(|(i, p)| WirePayload {
                    data: match p.data {
                        _ if !keep_data(i) => Value::Null,
                        DataRef::Str(s) => Value::String(s.into_owned()),
                        DataRef::Json(v) => v,
                    },
                    id: p.id.into_owned(),
                    dataname: p.dataname.into_owned(),
                    payload_type: p.payload_type.into_owned(),
                    transport: p.transport.into_owned(),
                    encoding: p.encoding.into_owned(),
                    size: p.size,
                    metadata: p.metadata,
                })
                .collect(),
            error: self.error,
        }
    }
}

/// Parses a message and checks every payload (decoding and verifying direct ones). The returned
/// envelope keeps every field except direct payloads' inline `data` (null there: the decoded
/// bytes are in the returned payloads); link payloads keep their URL.
pub fn decode_message(bytes: &[u8], limits: &ReceiveLimits) -> Result<(Envelope, Vec<DecodedPayload>)> {
    let (parsed, decoded) = parse_and_check(bytes, limits)?;
    let envelope = parsed.into_owned(|i| matches!(decoded[i].source, PayloadSource::Link(_)));
    Ok((envelope, decoded))
}

/// A message whose payloads are all direct, decoded with no owned [`Envelope`]: its header is a
/// view of the message's bytes, from which a host builds its own objects. None when a payload
/// is a link (it needs the receive machine, [`super::ReceivePlan`]).
pub fn decode_direct<'a>(bytes: &'a [u8], limits: &ReceiveLimits) -> Result<Option<ReceivedView<'a>>> {
    let (parsed, decoded) = parse_and_check(bytes, limits)?;
    if decoded.iter().any(|p| matches!(p.source, PayloadSource::Link(_))) {
        return Ok(None);
    }
    let payloads = decoded
        .into_iter()
        .map(|p| p.into_incoming(None, limits))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| e.with_correlation_id(&parsed.correlation_id))?;
    Ok(Some(ReceivedView { envelope: EnvelopeView(parsed), payloads }))
}

/// A message of direct payloads decoded once and kept with its bytes: [`decode_direct`]'s view
/// that can be held, moved between threads and read later (a subscription decodes on its
/// runtime's thread, a host builds its objects on its own).
pub struct DirectMessage {
    header: HeaderCell,
    pub payloads: Vec<super::Incoming>,
}

self_cell::self_cell!(
    struct HeaderCell {
        owner: bytes::Bytes,
        #[covariant]
        dependent: EnvelopeView,
    }
);

impl DirectMessage {
    /// [`decode_direct`] of `bytes`, kept; None when a payload is a link.
    pub fn decode(bytes: bytes::Bytes, limits: &ReceiveLimits) -> Result<Option<DirectMessage>> {
        let mut payloads = None;
        let header = HeaderCell::try_new(bytes, |b| match decode_direct(b, limits) {
            Ok(Some(view)) => {
                payloads = Some(view.payloads);
                Ok(view.envelope)
            }
            Ok(None) => Err(None),
            Err(e) => Err(Some(e)),
        });
        match (header, payloads) {
            (Ok(header), Some(payloads)) => Ok(Some(DirectMessage { header, payloads })),
            (Err(Some(e)), _) => Err(e),
            _ => Ok(None),
        }
    }

    pub fn envelope(&self) -> &EnvelopeView<'_> {
        self.header.borrow_dependent()
    }
}

/// A received message of direct payloads ([`decode_direct`]).
pub struct ReceivedView<'a> {
    pub envelope: EnvelopeView<'a>,
    pub payloads: Vec<super::Incoming>,
}

/// A received envelope's fields as the message has them: strings borrowed from its bytes
/// (copied only when they had escapes).
pub struct EnvelopeView<'a>(EnvelopeRef<'a>);

impl EnvelopeView<'_> {
    /// The twelve string fields, named as on the wire, in the seeds' order.
    pub fn header(&self) -> [(&'static str, &str); 12] {
        let e = &self.0;
        header_fields([
            &e.correlation_id,
            &e.msg_id,
            &e.timestamp,
            &e.send_to,
            &e.msg_purpose,
            &e.sender_name,
            &e.sender_id,
            &e.receiver_name,
            &e.receiver_id,
            &e.reply_to,
            &e.reply_to_msg_id,
            &e.broker_url,
        ])
    }

    pub fn metadata(&self) -> &Map<String, Value> {
        &self.0.metadata
    }

    pub fn error(&self) -> Option<&ErrorBody> {
        self.0.error.as_ref()
    }
}

/// The envelope's string fields in the seeds' order.
pub const HEADER_FIELDS: [&str; 12] = [
    "correlation_id",
    "msg_id",
    "timestamp",
    "send_to",
    "msg_purpose",
    "sender_name",
    "sender_id",
    "receiver_name",
    "receiver_id",
    "reply_to",
    "reply_to_msg_id",
    "broker_url",
];

fn header_fields(values: [&str; 12]) -> [(&'static str, &str); 12] {
    std::array::from_fn(|i| (HEADER_FIELDS[i], values[i]))
}

/// Parses a message and checks every payload (decoding and verifying direct ones).
fn parse_and_check<'a>(bytes: &'a [u8], limits: &ReceiveLimits) -> Result<(EnvelopeRef<'a>, Vec<DecodedPayload>)> {
    let parsed = EnvelopeRef::parse(bytes)?;
    let payloads = parsed.payloads.as_deref().unwrap_or_default();
    if let Err(e) = check_limits(payloads, limits) {
        return Err(e.with_correlation_id(&parsed.correlation_id));
    }
    let decoded = payloads
        .iter()
        .map(|p| {
            decode_parts(Parts {
                dataname: &p.dataname,
                payload_type: &p.payload_type,
                transport: &p.transport,
                encoding: &p.encoding,
                size: p.size,
                data: DataView::Ref(&p.data),
                metadata: &p.metadata,
            })
        })
        .collect::<Result<Vec<_>>>();
    match decoded {
        Ok(decoded) => Ok((parsed, decoded)),
        Err(e) => Err(e.with_correlation_id(&parsed.correlation_id)),
    }
}

/// The payload count and the declared sizes against the receiver's limits, before any payload
/// is decoded or fetched.
fn check_limits(payloads: &[PayloadRef<'_>], limits: &ReceiveLimits) -> Result<()> {
    if payloads.len() > limits.max_payloads {
        return err(
            ErrorCode::InvalidEnvelope,
            format!("message has {} payloads, over the limit of {}", payloads.len(), limits.max_payloads),
        );
    }
    let total = payloads.iter().fold(0u64, |sum, p| sum.saturating_add(p.size));
    if total > limits.max_message_bytes {
        return err(
            ErrorCode::PayloadTooLarge,
            format!("message's payloads declare {total} bytes, over the limit of {}", limits.max_message_bytes),
        );
    }
    Ok(())
}

/// A message envelope (wire protocol v1). Field order is the seeds' order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Envelope {
    pub correlation_id: String,
    pub msg_id: String,
    pub timestamp: String,
    pub send_to: String,
    pub msg_purpose: String,
    pub sender_name: String,
    pub sender_id: String,
    pub receiver_name: String,
    pub receiver_id: String,
    pub reply_to: String,
    pub reply_to_msg_id: String,
    pub broker_url: String,
    pub metadata: Map<String, Value>,
    /// Required on receipt, except in an error reply, where missing or null reads as [] (the
    /// walkthrough's error response has none).
    pub payloads: Vec<WirePayload>,
    /// Present on error replies (NACK), as in the walkthrough's error response format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// One payload object inside an envelope.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WirePayload {
    pub id: String,
    pub dataname: String,
    pub payload_type: String,
    pub transport: String,
    /// Missing means the transport's default: base64 for direct, none for link.
    pub encoding: String,
    pub size: u64,
    pub data: Value,
    pub metadata: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Value,
}

impl Envelope {
    /// A new envelope for `send_to` with fresh ids and the current time (not on wasm32, where
    /// the host sets `timestamp`).
    pub fn new(send_to: &str) -> Envelope {
        let correlation_id = new_id();
        Envelope {
            correlation_id,
            msg_id: new_id(),
            #[cfg(not(target_arch = "wasm32"))]
            timestamp: super::timestamp_now(),
            send_to: send_to.to_owned(),
            msg_purpose: super::msg_purpose::CHAT.to_owned(),
            ..Envelope::default()
        }
    }

    /// Parses and checks the envelope's shape; payload contents are checked by [`decode_inline`].
    pub fn parse(bytes: &[u8]) -> Result<Envelope> {
        Ok(EnvelopeRef::parse(bytes)?.into_owned(|_| true))
    }

    pub fn to_json(&self) -> String {
        super::json::envelope_to_json(self)
    }

    /// The twelve string fields, named as on the wire, in the seeds' order.
    pub fn header(&self) -> [(&'static str, &str); 12] {
        header_fields([
            &self.correlation_id,
            &self.msg_id,
            &self.timestamp,
            &self.send_to,
            &self.msg_purpose,
            &self.sender_name,
            &self.sender_id,
            &self.receiver_name,
            &self.receiver_id,
            &self.reply_to,
            &self.reply_to_msg_id,
            &self.broker_url,
        ])
    }

    /// The error a NACK reply carries, as an [`Error`] with its code and correlation id.
    pub fn error_reply(&self) -> Option<Error> {
        let body = self.error.as_ref()?;
        let code = ErrorCode::parse(&body.code).unwrap_or(ErrorCode::InvalidEnvelope);
        Some(Error::new(code, body.message.clone()).with_correlation_id(&self.correlation_id))
    }
}

/// A direct payload: the serialized bytes inline as standard padded base64.
pub fn direct_payload(dataname: &str, payload_type: PayloadType, bytes: &[u8], with_sha256: bool) -> WirePayload {
    let sha256 = with_sha256.then(|| sha256_hex(bytes));
    WirePayload {
        data: Value::String(base64_encode(bytes)),
        ..direct_payload_header(dataname, payload_type, bytes.len(), sha256)
    }
}

/// A direct payload's fields without its `data` (null): for a writer that encodes the bytes
/// straight into the JSON.
pub fn direct_payload_header(
    dataname: &str,
    payload_type: PayloadType,
    size: usize,
    sha256: Option<String>,
) -> WirePayload {
    let mut metadata = Map::new();
    metadata.insert("payload_bytes".into(), size.into());
    if let Some(sha256) = sha256 {
        metadata.insert("sha256".into(), sha256.into());
    }
    WirePayload {
        id: new_id(),
        dataname: dataname.to_owned(),
        payload_type: payload_type.as_str().to_owned(),
        transport: Transport::Direct.as_str().to_owned(),
        encoding: "base64".to_owned(),
        size: size as u64,
        data: Value::Null,
        metadata,
    }
}

/// A link payload: the bytes were stored at `url`; `sha256` is their hex digest.
pub fn link_payload(
    dataname: &str,
    payload_type: PayloadType,
    size: usize,
    url: String,
    sha256: String,
) -> WirePayload {
    let mut metadata = Map::new();
    metadata.insert("payload_bytes".into(), size.into());
    metadata.insert("sha256".into(), sha256.into());
    WirePayload {
        id: new_id(),
        dataname: dataname.to_owned(),
        payload_type: payload_type.as_str().to_owned(),
        transport: Transport::Link.as_str().to_owned(),
        encoding: "none".to_owned(),
        size: size as u64,
        data: Value::String(url),
        metadata,
    }
}

/// Where a received payload's bytes are.
#[derive(Clone, Debug, PartialEq)]
pub enum PayloadSource {
    Inline(Bytes),
    Link(String),
}

/// A payload whose envelope fields have been checked; inline bytes are already verified.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedPayload {
    pub dataname: String,
    pub payload_type: PayloadType,
    pub size: u64,
    pub sha256: Option<String>,
    pub source: PayloadSource,
}

impl DecodedPayload {
    /// Checks bytes (inline or downloaded) against the declared size and sha256.
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        self.verify_size(bytes)?;
        if let Some(expected) = &self.sha256 {
            let actual = sha256_hex(bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return err(
                    ErrorCode::ChecksumMismatch,
                    format!("payload {:?} sha256 is {actual}, metadata says {expected}", self.dataname),
                );
            }
        }
        Ok(())
    }

    /// The received payload: its inline bytes, or for a link the `fetched` ones (both already
    /// verified), deserialized by its type (DESERIALIZATION_ERROR when they do not match it).
    pub fn into_incoming(self, fetched: Option<Bytes>, limits: &ReceiveLimits) -> Result<super::Incoming> {
        let (transport, bytes) = match (self.source, fetched) {
            (PayloadSource::Inline(bytes), _) => (Transport::Direct, bytes),
            (PayloadSource::Link(_), Some(bytes)) => (Transport::Link, bytes),
            (PayloadSource::Link(url), None) => {
                return err(
                    ErrorCode::DownloadFailed,
                    format!("payload {:?}: {} was not fetched", self.dataname, super::display_url(&url)),
                );
            }
        };
        let data = super::deserialize(self.payload_type, bytes, limits)?;
        Ok(super::Incoming { dataname: self.dataname, payload_type: self.payload_type, data, transport })
    }

    /// Checks the declared size only (for bytes whose digest a store already checked).
    pub fn verify_size(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() as u64 != self.size {
            return err(
                ErrorCode::ChecksumMismatch,
                format!("payload {:?} declares size {} but has {} bytes", self.dataname, self.size, bytes.len()),
            );
        }
        Ok(())
    }
}

/// Checks a payload's transport, type and encoding, and for direct payloads decodes and verifies
/// the inline bytes. Link payloads are returned with their URL for the caller to fetch.
pub fn decode_inline(p: &WirePayload) -> Result<DecodedPayload> {
    decode_parts(Parts {
        dataname: &p.dataname,
        payload_type: &p.payload_type,
        transport: &p.transport,
        encoding: &p.encoding,
        size: p.size,
        data: DataView::Value(&p.data),
        metadata: &p.metadata,
    })
}

/// A payload's `data`, as an owned value or borrowed raw JSON from the message.
enum DataView<'a> {
    Value(&'a Value),
    Ref(&'a DataRef<'a>),
}

impl DataView<'_> {
    fn as_str(&self) -> Option<Cow<'_, str>> {
        match self {
            DataView::Value(Value::String(s)) => Some(Cow::Borrowed(s)),
            DataView::Value(_) => None,
            DataView::Ref(DataRef::Str(s)) => Some(Cow::Borrowed(s)),
            DataView::Ref(DataRef::Json(_)) => None,
        }
    }

    fn json_bytes(&self) -> Vec<u8> {
        match self {
            DataView::Value(v) => serde_json::to_vec(v).expect("JSON value serializes"),
            DataView::Ref(DataRef::Str(s)) => serde_json::to_vec(s).expect("a str serializes"),
            DataView::Ref(DataRef::Json(v)) => serde_json::to_vec(v).expect("JSON value serializes"),
        }
    }
}

struct Parts<'a> {
    dataname: &'a str,
    payload_type: &'a str,
    transport: &'a str,
    encoding: &'a str,
    size: u64,
    data: DataView<'a>,
    metadata: &'a Map<String, Value>,
}

fn decode_parts(p: Parts<'_>) -> Result<DecodedPayload> {
    let transport = Transport::parse(p.transport)?;
    let payload_type = PayloadType::parse(p.payload_type)?;
    let sha256 = match p.metadata.get("sha256") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return err(
                ErrorCode::InvalidEnvelope,
                format!("payload {:?}: metadata.sha256 must be a hex string", p.dataname),
            );
        }
    };
    let mut decoded = DecodedPayload {
        dataname: p.dataname.to_owned(),
        payload_type,
        size: p.size,
        sha256,
        source: PayloadSource::Link(String::new()),
    };
    let data_str = |what: &str| match p.data.as_str() {
        Some(s) => Ok(s),
        None => err(ErrorCode::InvalidEnvelope, format!("payload {:?}: data must be a {what} string", p.dataname)),
    };
    match transport {
        Transport::Link => {
            if !matches!(p.encoding, "" | "none") {
                return err(
                    ErrorCode::InvalidEnvelope,
                    format!("payload {:?}: a link payload has encoding \"none\", not {:?}", p.dataname, p.encoding),
                );
            }
            decoded.source = PayloadSource::Link(data_str("URL")?.into_owned());
        }
        Transport::Direct => {
            let bytes = match p.encoding {
                "" | "base64" | "arrow-ipc" => Bytes::from(base64_decode(&data_str("base64")?)?),
                // Inline JSON (dictionary/jsontable): its size is that of the sender's JSON text,
                // which a re-serialization need not reproduce, so only the value is checked.
                "json" if matches!(payload_type, PayloadType::Dictionary | PayloadType::JsonTable) => {
                    let bytes = Bytes::from(p.data.json_bytes());
                    decoded.size = bytes.len() as u64;
                    decoded.sha256 = None;
                    bytes
                }
                other => {
                    return err(
                        ErrorCode::InvalidEnvelope,
                        format!(
                            "payload {:?}: encoding {other:?} is not valid for a direct {} payload",
                            p.dataname,
                            payload_type.as_str()
                        ),
                    );
                }
            };
            decoded.verify(&bytes)?;
            decoded.source = PayloadSource::Inline(bytes);
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_json_keeps_seed_field_names_and_order() {
        let mut env = Envelope::new("a.b");
        env.payloads.push(direct_payload("msg", PayloadType::Text, b"Hello World", false));
        let json = env.to_json();
        let keys = [
            "correlation_id",
            "msg_id",
            "timestamp",
            "send_to",
            "msg_purpose",
            "sender_name",
            "sender_id",
            "receiver_name",
            "receiver_id",
            "reply_to",
            "reply_to_msg_id",
            "broker_url",
            "metadata",
            "payloads",
        ];
        let positions: Vec<usize> = keys.iter().map(|k| json.find(&format!("\"{k}\"")).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert!(json.contains(r#""data":"SGVsbG8gV29ybGQ=""#), "{json}");
        assert!(!json.contains("\"error\""));
    }

    /// An envelope's own JSON nested past serde's recursion limit is INVALID_ENVELOPE, not a
    /// stack overflow; the payload count and declared sizes are checked before any decoding.
    #[test]
    fn deep_metadata_and_the_envelope_limits_are_refused() {
        let deep = format!(r#"{{"metadata": {{"a": {}1{}}}, "payloads": []}}"#, "[".repeat(5000), "]".repeat(5000));
        let e = decode_message(deep.as_bytes(), &ReceiveLimits::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidEnvelope, "{e}");

        let mut env = Envelope::new("s");
        for _ in 0..3 {
            env.payloads.push(direct_payload("p", PayloadType::Binary, &[1; 40], false));
        }
        let json = env.to_json();
        let limits =
            |max_payloads, max_message_bytes| ReceiveLimits { max_payloads, max_message_bytes, ..Default::default() };
        assert_eq!(decode_message(json.as_bytes(), &limits(3, 120)).unwrap().1.len(), 3);
        let e = decode_message(json.as_bytes(), &limits(2, 120)).unwrap_err();
        assert_eq!(
            (e.code, e.correlation_id.as_deref()),
            (ErrorCode::InvalidEnvelope, Some(&*env.correlation_id)),
            "{e}"
        );
        let e = decode_direct(json.as_bytes(), &limits(3, 119)).err().unwrap();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{e}");
    }

    #[test]
    fn bad_fields_get_their_codes() {
        let mut p = direct_payload("x", PayloadType::Text, b"hi", true);
        p.transport = "pigeon".into();
        assert_eq!(decode_inline(&p).unwrap_err().code, ErrorCode::InvalidTransport);
        let mut p = direct_payload("x", PayloadType::Text, b"hi", true);
        p.payload_type = "spreadsheet".into();
        assert_eq!(decode_inline(&p).unwrap_err().code, ErrorCode::InvalidPayloadType);
        let mut p = direct_payload("x", PayloadType::Text, b"hi", false);
        p.data = "***".into();
        assert_eq!(decode_inline(&p).unwrap_err().code, ErrorCode::DeserializationError);
        let mut p = direct_payload("x", PayloadType::Text, b"hi", false);
        p.size = 3;
        assert_eq!(decode_inline(&p).unwrap_err().code, ErrorCode::ChecksumMismatch);
        let mut p = direct_payload("x", PayloadType::Text, b"hi", true);
        p.metadata.insert("sha256".into(), sha256_hex(b"ho").into());
        assert_eq!(decode_inline(&p).unwrap_err().code, ErrorCode::ChecksumMismatch);
        assert_eq!(Envelope::parse(b"{").unwrap_err().code, ErrorCode::InvalidEnvelope);
        assert_eq!(Envelope::parse(b"[]").unwrap_err().code, ErrorCode::InvalidEnvelope);
    }

    #[test]
    fn nulls_from_other_senders_read_as_empty() {
        let env = Envelope::parse(br#"{"correlation_id":null,"reply_to":null,"metadata":null,"payloads":[]}"#).unwrap();
        assert_eq!(env.reply_to, "");
        assert!(env.metadata.is_empty());
    }
}
