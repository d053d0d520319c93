//! The envelope as it is on the wire, with the seeds' exact field names, and the checks a
//! receiver applies to each payload before it trusts the bytes.

use super::{PayloadType, Transport, base64_decode, base64_encode, new_id, sha256_hex};
use crate::error::{Error, ErrorCode, Result, err};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Seeds' senders (Python `None`, JS `null`) may put null in a string field; read it as "".
fn string_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn vec_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> std::result::Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn map_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

/// A message envelope (wire protocol v1). Field order is the seeds' order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, deserialize_with = "string_or_null")]
    pub correlation_id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub msg_id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub timestamp: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub send_to: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub msg_purpose: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub sender_name: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub sender_id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub receiver_name: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub receiver_id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub reply_to: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub reply_to_msg_id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub broker_url: String,
    #[serde(default, deserialize_with = "map_or_null")]
    pub metadata: Map<String, Value>,
    /// Missing or null reads as [] (the walkthrough's error response has no payloads).
    #[serde(default, deserialize_with = "vec_or_null")]
    pub payloads: Vec<WirePayload>,
    /// Present on error replies (NACK), as in the walkthrough's error response format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// One payload object inside an envelope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WirePayload {
    #[serde(default, deserialize_with = "string_or_null")]
    pub id: String,
    pub dataname: String,
    pub payload_type: String,
    pub transport: String,
    /// Missing means the transport's default: base64 for direct, none for link.
    #[serde(default, deserialize_with = "string_or_null")]
    pub encoding: String,
    pub size: u64,
    pub data: Value,
    #[serde(default, deserialize_with = "map_or_null")]
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
        // serde also reads a struct from a JSON array of its fields; an envelope is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return err(ErrorCode::InvalidEnvelope, "message is not a JSON object");
        }
        serde_json::from_slice(bytes).map_err(|e| {
            let what = if e.is_syntax() || e.is_eof() { "not valid JSON" } else { "not a valid envelope" };
            Error::new(ErrorCode::InvalidEnvelope, format!("message is {what}: {e}"))
        })
    }

    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and serde_json values cannot fail.
        serde_json::to_string(self).expect("envelope serializes")
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
    let mut metadata = Map::new();
    metadata.insert("payload_bytes".into(), bytes.len().into());
    if with_sha256 {
        metadata.insert("sha256".into(), sha256_hex(bytes).into());
    }
    WirePayload {
        id: new_id(),
        dataname: dataname.to_owned(),
        payload_type: payload_type.as_str().to_owned(),
        transport: Transport::Direct.as_str().to_owned(),
        encoding: "base64".to_owned(),
        size: bytes.len() as u64,
        data: Value::String(base64_encode(bytes)),
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
        if bytes.len() as u64 != self.size {
            return err(
                ErrorCode::ChecksumMismatch,
                format!("payload {:?} declares size {} but has {} bytes", self.dataname, self.size, bytes.len()),
            );
        }
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
}

/// Checks a payload's transport, type and encoding, and for direct payloads decodes and verifies
/// the inline bytes. Link payloads are returned with their URL for the caller to fetch.
pub fn decode_inline(p: &WirePayload) -> Result<DecodedPayload> {
    let transport = Transport::parse(&p.transport)?;
    let payload_type = PayloadType::parse(&p.payload_type)?;
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
        dataname: p.dataname.clone(),
        payload_type,
        size: p.size,
        sha256,
        source: PayloadSource::Link(String::new()),
    };
    let as_str = |what: &str| match &p.data {
        Value::String(s) => Ok(s.as_str()),
        _ => err(ErrorCode::InvalidEnvelope, format!("payload {:?}: data must be a {what} string", p.dataname)),
    };
    match transport {
        Transport::Link => {
            if !matches!(p.encoding.as_str(), "" | "none") {
                return err(
                    ErrorCode::InvalidEnvelope,
                    format!("payload {:?}: a link payload has encoding \"none\", not {:?}", p.dataname, p.encoding),
                );
            }
            decoded.source = PayloadSource::Link(as_str("URL")?.to_owned());
        }
        Transport::Direct => {
            let bytes = match p.encoding.as_str() {
                "" | "base64" | "arrow-ipc" => Bytes::from(base64_decode(as_str("base64")?)?),
                // Inline JSON (dictionary/jsontable): its size is that of the sender's JSON text,
                // which a re-serialization need not reproduce, so only the value is checked.
                "json" if matches!(payload_type, PayloadType::Dictionary | PayloadType::JsonTable) => {
                    let bytes = Bytes::from(serde_json::to_vec(&p.data).expect("JSON value serializes"));
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
