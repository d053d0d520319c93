//! Payload serialization by `payload_type` (spec/PROTOCOL.md §4): text → UTF-8, dictionary and jsontable →
//! JSON, arrowtable → Arrow IPC stream, image/audio/video/binary → the bytes themselves.

use super::{PayloadType, arrow};
use crate::error::{Error, ErrorCode, Result, err};
use bytes::Bytes;
use serde_json::Value;

/// A payload value in language-neutral form. Bindings convert host values to and from it.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Text(String),
    /// dictionary (any JSON value) and jsontable (an array of row objects).
    Json(Value),
    /// JSON already serialized by the host (its bytes are checked, then sent as they are).
    JsonBytes(Bytes),
    /// arrowtable as Arrow IPC stream bytes.
    Arrow(Bytes),
    /// image, audio, video, binary.
    Bytes(Bytes),
}

/// A payload value as a host language hands it over, before its payload_type says what it is
/// ([`super::Outgoing::from_host`] holds the rules).
#[derive(Clone, Debug, PartialEq)]
pub enum HostValue {
    Bytes(Bytes),
    Text(String),
    /// A JSON value the binding converted from host objects.
    Json(Value),
    /// JSON text the host serialized itself (`JSON.stringify`).
    JsonText(String),
}

impl Data {
    fn kind(&self) -> &'static str {
        match self {
            Data::Text(_) => "text",
            Data::Json(_) | Data::JsonBytes(_) => "JSON",
            Data::Arrow(_) => "Arrow IPC",
            Data::Bytes(_) => "bytes",
        }
    }
}

fn mismatch<T>(dataname: &str, payload_type: PayloadType, data: &Data, want: &str) -> Result<T> {
    err(
        ErrorCode::InvalidPayloadType,
        format!(
            "payload {dataname:?} has payload_type {:?}, which needs {want}, but the data is {}",
            payload_type.as_str(),
            data.kind()
        ),
    )
}

/// Serializes a payload to the bytes that go on the wire (before base64) or to the link store.
pub fn serialize(dataname: &str, payload_type: PayloadType, data: &Data) -> Result<Bytes> {
    match (payload_type, data) {
        (PayloadType::Text, Data::Text(s)) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        (PayloadType::Text, _) => mismatch(dataname, payload_type, data, "a string"),
        (PayloadType::Dictionary, Data::Json(v)) => Ok(Bytes::from(to_json(v)?)),
        (PayloadType::JsonTable, Data::Json(v)) => {
            check_rows(v)
                .map_err(|m| Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?}: {m}")))?;
            Ok(Bytes::from(to_json(v)?))
        }
        (PayloadType::Dictionary | PayloadType::JsonTable, Data::JsonBytes(b)) => {
            let v: Value = serde_json::from_slice(b).map_err(|e| {
                Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?}: not valid JSON: {e}"))
            })?;
            if payload_type == PayloadType::JsonTable {
                check_rows(&v)
                    .map_err(|m| Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?}: {m}")))?;
            }
            Ok(b.clone())
        }
        (PayloadType::Dictionary, _) => mismatch(dataname, payload_type, data, "a JSON value"),
        (PayloadType::JsonTable, _) => mismatch(dataname, payload_type, data, "an array of row objects"),
        (PayloadType::ArrowTable, Data::Arrow(b)) => {
            arrow::validate_stream(b).map_err(|e| {
                Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?}: {}", e.message))
            })?;
            Ok(b.clone())
        }
        (PayloadType::ArrowTable, _) => mismatch(dataname, payload_type, data, "an Arrow table"),
        (t, Data::Bytes(b)) if t.is_bytes() => Ok(b.clone()),
        (t, _) => mismatch(dataname, t, data, "bytes"),
    }
}

/// Turns received serialized bytes back into a value of the payload's type.
pub fn deserialize(payload_type: PayloadType, bytes: Bytes) -> Result<Data> {
    match payload_type {
        PayloadType::Text => match String::from_utf8(bytes.into()) {
            Ok(s) => Ok(Data::Text(s)),
            Err(e) => {
                err(ErrorCode::DeserializationError, format!("text payload is not valid UTF-8: {}", e.utf8_error()))
            }
        },
        PayloadType::Dictionary | PayloadType::JsonTable => {
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorCode::DeserializationError,
                    format!("{} payload is not valid JSON: {e}", payload_type.as_str()),
                )
            })?;
            if payload_type == PayloadType::JsonTable {
                check_rows(&v).map_err(|m| Error::new(ErrorCode::DeserializationError, m))?;
            }
            Ok(Data::Json(v))
        }
        PayloadType::ArrowTable => {
            arrow::validate_stream(&bytes)?;
            Ok(Data::Arrow(bytes))
        }
        _ => Ok(Data::Bytes(bytes)),
    }
}

fn to_json(v: &Value) -> Result<Vec<u8>> {
    // serde_json::Value always serializes; non-finite floats cannot be represented in a Value.
    serde_json::to_vec(v).map_err(|e| Error::new(ErrorCode::InvalidPayloadType, format!("cannot serialize JSON: {e}")))
}

/// A jsontable is an array whose items are all objects (rows).
fn check_rows(v: &Value) -> std::result::Result<(), String> {
    let Value::Array(rows) = v else {
        return Err("a jsontable must be a JSON array of row objects".into());
    };
    match rows.iter().position(|r| !r.is_object()) {
        None => Ok(()),
        Some(i) => Err(format!("a jsontable must be an array of row objects; row {i} is not an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_each_kind() {
        let cases = [
            (PayloadType::Text, Data::Text("héllo ✓".into())),
            (PayloadType::Dictionary, Data::Json(json!({"a": {"b": [1, 2.5, null]}}))),
            (PayloadType::JsonTable, Data::Json(json!([{"x": 1}, {"x": 2}]))),
            (PayloadType::Binary, Data::Bytes(Bytes::from_static(&[0, 255, 1]))),
        ];
        for (t, d) in cases {
            let bytes = serialize("p", t, &d).unwrap();
            assert_eq!(deserialize(t, bytes).unwrap(), d, "{t:?}");
        }
    }

    #[test]
    fn mismatched_data_is_invalid_payload_type() {
        let e = serialize("p", PayloadType::Text, &Data::Bytes(Bytes::new())).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPayloadType);
        let e = serialize("t", PayloadType::JsonTable, &Data::Json(serde_json::json!({"a": 1}))).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPayloadType);
        let e = serialize("t", PayloadType::JsonTable, &Data::Json(serde_json::json!([1]))).unwrap_err();
        assert!(e.message.contains("row 0"), "{}", e.message);
    }

    #[test]
    fn bad_bytes_are_deserialization_errors() {
        let e = deserialize(PayloadType::Text, Bytes::from_static(&[0xff])).unwrap_err();
        assert_eq!(e.code, ErrorCode::DeserializationError);
        let e = deserialize(PayloadType::Dictionary, Bytes::from_static(b"{")).unwrap_err();
        assert_eq!(e.code, ErrorCode::DeserializationError);
        let e = deserialize(PayloadType::ArrowTable, Bytes::from_static(b"not arrow")).unwrap_err();
        assert_eq!(e.code, ErrorCode::DeserializationError);
    }
}
