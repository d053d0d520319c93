//! Payload serialization by `payload_type` (spec/PROTOCOL.md §4): text → UTF-8, dictionary and jsontable →
//! JSON, arrowtable → Arrow IPC stream, image/audio/video/binary → the bytes themselves.

use super::{PayloadType, ReceiveLimits, arrow};
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

/// Turns received serialized bytes back into a value of the payload's type, within `limits`
/// (JSON nesting, Arrow columns and batches: PAYLOAD_TOO_LARGE beyond them).
pub fn deserialize(payload_type: PayloadType, bytes: Bytes, limits: &ReceiveLimits) -> Result<Data> {
    match payload_type {
        PayloadType::Text => match String::from_utf8(bytes.into()) {
            Ok(s) => Ok(Data::Text(s)),
            Err(e) => {
                err(ErrorCode::DeserializationError, format!("text payload is not valid UTF-8: {}", e.utf8_error()))
            }
        },
        PayloadType::Dictionary | PayloadType::JsonTable => {
            // At the default limit serde's own recursion limit is the check: no extra pass.
            if limits.max_json_depth < super::MAX_JSON_DEPTH {
                check_json_depth(&bytes, limits.max_json_depth, payload_type)?;
            }
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                let (code, what) = if e.to_string().starts_with("recursion limit exceeded") {
                    (
                        ErrorCode::PayloadTooLarge,
                        format!("nests deeper than {} arrays and objects", super::MAX_JSON_DEPTH),
                    )
                } else {
                    (ErrorCode::DeserializationError, format!("is not valid JSON: {e}"))
                };
                Error::new(code, format!("{} payload {what}", payload_type.as_str()))
            })?;
            if payload_type == PayloadType::JsonTable {
                check_rows(&v).map_err(|m| Error::new(ErrorCode::DeserializationError, m))?;
            }
            Ok(Data::Json(v))
        }
        PayloadType::ArrowTable => {
            arrow::validate_stream_within(&bytes, limits)?;
            Ok(Data::Arrow(bytes))
        }
        _ => Ok(Data::Bytes(bytes)),
    }
}

/// PAYLOAD_TOO_LARGE when arrays and objects nest deeper than `max` (brackets inside strings do
/// not count). One pass over the bytes before serde builds anything.
fn check_json_depth(bytes: &[u8], max: usize, payload_type: PayloadType) -> Result<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return err(
                        ErrorCode::PayloadTooLarge,
                        format!("{} payload nests deeper than {max} arrays and objects", payload_type.as_str()),
                    );
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
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
            assert_eq!(deserialize(t, bytes, &ReceiveLimits::default()).unwrap(), d, "{t:?}");
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

    /// Nesting, columns and batches beyond the receiver's limits are PAYLOAD_TOO_LARGE; up to
    /// them they decode. Brackets inside strings do not count.
    #[test]
    fn payloads_beyond_the_limits_are_too_large() {
        let limits =
            ReceiveLimits { max_json_depth: 3, max_arrow_columns: 2, max_arrow_batches: 1, ..Default::default() };
        let json = |s: &'static str| Bytes::from_static(s.as_bytes());
        for ok in [r#"[[{"a": "[[[[{{{{"}]]"#, r#"{"a": [1, {"b": "\"]]]]"}]}"#, "7"] {
            deserialize(PayloadType::Dictionary, json(ok), &limits).unwrap();
        }
        for (t, deep) in [(PayloadType::Dictionary, r#"{"a": [[[1]]]}"#), (PayloadType::JsonTable, r#"[{"a": [[]]}]"#)]
        {
            let e = deserialize(t, json(deep), &limits).unwrap_err();
            assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{e}");
            assert!(e.message.contains("deeper than 3"), "{e}");
        }
        // Above serde's own recursion limit the cap is that limit, still PAYLOAD_TOO_LARGE.
        let deep = Bytes::from("[".repeat(200) + &"]".repeat(200));
        let unlimited = ReceiveLimits { max_json_depth: usize::MAX, ..Default::default() };
        let e = deserialize(PayloadType::Dictionary, deep, &unlimited).unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{e}");

        let rows = |n: usize, cols: &[&str]| {
            let row: serde_json::Map<_, _> = cols.iter().map(|c| (c.to_string(), json!(1))).collect();
            arrow::from_json_rows(&Value::Array(vec![Value::Object(row); n])).unwrap()
        };
        deserialize(PayloadType::ArrowTable, rows(3, &["a", "b"]), &limits).unwrap();
        let e = deserialize(PayloadType::ArrowTable, rows(1, &["a", "b", "c"]), &limits).unwrap_err();
        assert_eq!((e.code, e.message.contains("3 columns")), (ErrorCode::PayloadTooLarge, true), "{e}");
        let (schema, batches) = arrow::read_stream(&rows(1, &["a"])).unwrap();
        let mut two_batches = Vec::new();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut two_batches, &schema).unwrap();
        (0..2).for_each(|_| writer.write(&batches[0]).unwrap());
        writer.finish().unwrap();
        drop(writer);
        let e = deserialize(PayloadType::ArrowTable, Bytes::from(two_batches), &limits).unwrap_err();
        assert_eq!((e.code, e.message.contains("record batches")), (ErrorCode::PayloadTooLarge, true), "{e}");
    }

    #[test]
    fn bad_bytes_are_deserialization_errors() {
        let e = deserialize(PayloadType::Text, Bytes::from_static(&[0xff]), &ReceiveLimits::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::DeserializationError);
        let e = deserialize(PayloadType::Dictionary, Bytes::from_static(b"{"), &ReceiveLimits::default()).unwrap_err();
        assert_eq!(e.code, ErrorCode::DeserializationError);
        let e = deserialize(PayloadType::ArrowTable, Bytes::from_static(b"not arrow"), &ReceiveLimits::default())
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::DeserializationError);
    }
}
