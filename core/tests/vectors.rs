//! The golden vectors of spec/vectors/ (format: spec/PROTOCOL.md §11) against the core's receive
//! pipeline, and the envelopes the core sends against spec/envelope.schema.json.
//!
//! The vectors are fixed files (written once by spec/tools/gen_vectors.py); nothing here
//! regenerates them.

use natsbridge::error::{Error, ErrorCode};
use natsbridge::protocol::{
    self, DEFAULT_SIZE_THRESHOLD, Data, Envelope, ErrorBody, PayloadSource, PayloadType, Transport, arrow,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The vectors present when this test was written; a lost file makes `vector_count` fail.
const MIN_VECTORS: usize = 71;

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec")
}

struct Vector {
    name: String,
    doc: Value,
}

impl Vector {
    fn expect(&self) -> &Value {
        &self.doc["expect"]
    }

    fn is_error(&self) -> bool {
        self.expect().get("error").is_some()
    }

    /// The message bytes as they arrive from NATS.
    fn wire(&self) -> Vec<u8> {
        if let Some(env) = self.doc.get("envelope") {
            serde_json::to_vec(env).unwrap()
        } else if let Some(Value::String(raw)) = self.doc.get("raw") {
            raw.as_bytes().to_vec()
        } else if let Some(Value::String(b64)) = self.doc.get("raw_base64") {
            protocol::base64_decode(b64).unwrap()
        } else {
            panic!("{}: no envelope, raw or raw_base64", self.name)
        }
    }
}

fn load_vectors() -> Vec<Vector> {
    let dir = spec_dir().join("vectors");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Vector { name: p.file_stem().unwrap().to_string_lossy().into_owned(), doc }
        })
        .collect()
}

fn load_schema() -> Value {
    let path = spec_dir().join("envelope.schema.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn strict_validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&load_schema()).expect("envelope.schema.json compiles")
}

/// The lenient receive side: `$defs/received_envelope` as the root.
fn received_validator() -> jsonschema::Validator {
    let schema = load_schema();
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/$defs/received_envelope",
        "$defs": schema["$defs"],
    });
    jsonschema::draft202012::new(&root).expect("received_envelope compiles")
}

fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path)).collect()
}

// ---------------------------------------------------------------------------------------------
// The receive pipeline, as io::client::smartreceive runs it minus the downloads.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    /// Envelope::parse
    Parse,
    /// protocol::decode_inline, for every payload before any is deserialized
    Payload,
    /// protocol::deserialize
    Deserialize,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Payload => "payload",
            Stage::Deserialize => "deserialize",
        }
    }
}

enum Content {
    Inline(Data),
    Link { url: String, size: u64, sha256: Option<String> },
}

struct Received {
    dataname: String,
    payload_type: PayloadType,
    transport: Transport,
    content: Content,
}

/// Parses the message, checks every payload, and deserializes the inline ones; link payloads come
/// back as their URL, size and sha256 (a receiver fetches them). The first failure wins.
/// `decode_direct` (the view hosts build their objects from) must agree with it.
fn decode_all(message: &[u8]) -> Result<(Envelope, Vec<Received>), (Stage, Error)> {
    let decoded = decode_owned(message);
    let has_link = |r: &[Received]| r.iter().any(|p| p.transport == Transport::Link);
    match (protocol::decode_direct(message, &protocol::ReceiveLimits::default()), &decoded) {
        (Ok(Some(view)), Ok((envelope, received))) => {
            assert!(!has_link(received), "decode_direct took a message with links");
            assert_eq!(view.envelope.header(), envelope.header());
            assert_eq!(view.envelope.metadata(), &envelope.metadata);
            assert_eq!(view.envelope.error(), envelope.error.as_ref());
            let data: Vec<_> = received
                .iter()
                .map(|p| match &p.content {
                    Content::Inline(d) => (p.dataname.as_str(), p.payload_type, d),
                    Content::Link { .. } => unreachable!(),
                })
                .collect();
            let view_data: Vec<_> =
                view.payloads.iter().map(|p| (p.dataname.as_str(), p.payload_type, &p.data)).collect();
            assert_eq!(view_data, data);
            assert!(view.payloads.iter().all(|p| p.transport == Transport::Direct));
        }
        (Ok(None), Ok((_, received))) => assert!(has_link(received), "decode_direct refused a direct message"),
        // A message with links is left to the receive machine before its inline payloads are read.
        (Ok(None), Err((Stage::Deserialize, _))) => {}
        (Err(direct), Err((_, e))) => assert_eq!(direct.code, e.code, "decode_direct fails with another code"),
        (direct, owned) => panic!(
            "decode_direct ({:?}) disagrees with the owned decode ({:?})",
            direct.map(|v| v.is_some()),
            owned.as_ref().map(|_| ()).map_err(|(s, e)| (s.as_str(), e.code))
        ),
    }
    decoded
}

fn decode_owned(message: &[u8]) -> Result<(Envelope, Vec<Received>), (Stage, Error)> {
    let envelope = Envelope::parse(message).map_err(|e| (Stage::Parse, e))?;
    let checked =
        envelope.payloads.iter().map(protocol::decode_inline).collect::<Result<Vec<_>, _>>().map_err(|e| {
            let fast = protocol::decode_message(message, &protocol::ReceiveLimits::default()).map(|_| ()).unwrap_err();
            assert_eq!(fast.code, e.code, "decode_message fails with another code");
            (Stage::Payload, e)
        })?;
    // The borrowing path smartreceive uses must agree with the owned one, and fail at the same stage.
    match protocol::decode_message(message, &protocol::ReceiveLimits::default()) {
        Ok((_, fast)) => assert_eq!(fast, checked, "decode_message disagrees with decode_inline"),
        Err(e) => panic!("decode_message failed ({e}) where decode_inline succeeded"),
    }
    // The hand-written JSON writer is byte-identical to serde_json's.
    assert_eq!(envelope.to_json(), serde_json::to_string(&envelope).unwrap());
    let mut out = Vec::with_capacity(checked.len());
    for p in checked {
        let (transport, content) = match p.source {
            PayloadSource::Inline(bytes) => (
                Transport::Direct,
                Content::Inline(
                    protocol::deserialize(p.payload_type, bytes, &protocol::ReceiveLimits::default())
                        .map_err(|e| (Stage::Deserialize, e))?,
                ),
            ),
            PayloadSource::Link(url) => (Transport::Link, Content::Link { url, size: p.size, sha256: p.sha256 }),
        };
        out.push(Received { dataname: p.dataname, payload_type: p.payload_type, transport, content });
    }
    Ok((envelope, out))
}

/// pyarrow's spelling of an Arrow type (`str(pa.DataType)`), which the vectors' schemas use.
fn pyarrow_type_name(t: &arrow_schema::DataType) -> String {
    use arrow_schema::{DataType as T, TimeUnit};
    let unit = |u: &TimeUnit| match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    };
    match t {
        T::Null => "null".into(),
        T::Boolean => "bool".into(),
        T::Int8 => "int8".into(),
        T::Int16 => "int16".into(),
        T::Int32 => "int32".into(),
        T::Int64 => "int64".into(),
        T::UInt8 => "uint8".into(),
        T::UInt16 => "uint16".into(),
        T::UInt32 => "uint32".into(),
        T::UInt64 => "uint64".into(),
        T::Float32 => "float".into(),
        T::Float64 => "double".into(),
        T::Utf8 => "string".into(),
        T::LargeUtf8 => "large_string".into(),
        T::Binary => "binary".into(),
        T::Date32 => "date32[day]".into(),
        T::Date64 => "date64[ms]".into(),
        T::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        T::Timestamp(u, Some(tz)) => format!("timestamp[{}, tz={tz}]", unit(u)),
        T::List(f) => format!("list<{}: {}>", f.name(), pyarrow_type_name(f.data_type())),
        T::LargeList(f) => format!("large_list<{}: {}>", f.name(), pyarrow_type_name(f.data_type())),
        T::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name(), pyarrow_type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        T::Dictionary(k, v) => {
            format!("dictionary<values={}, indices={}, ordered=0>", pyarrow_type_name(v), pyarrow_type_name(k))
        }
        other => panic!("no pyarrow name for {other} yet; extend pyarrow_type_name"),
    }
}

/// A received payload in the vectors' "value" form. Bytes come as {"base64"} or, when the
/// vector gives {"sha256", "size"} (large payloads), as those.
fn value_form(r: &Received, expected: &Value) -> Value {
    match &r.content {
        Content::Link { url, size, sha256 } => json!({"url": url, "size": size, "sha256": sha256}),
        Content::Inline(Data::Text(s)) => Value::String(s.clone()),
        Content::Inline(Data::Json(v)) => v.clone(),
        Content::Inline(Data::JsonBytes(b)) => serde_json::from_slice(b).unwrap(),
        Content::Inline(Data::Bytes(b)) if expected.get("base64").is_some() => {
            json!({"base64": protocol::base64_encode(b)})
        }
        Content::Inline(Data::Bytes(b)) => json!({"sha256": protocol::sha256_hex(b), "size": b.len()}),
        Content::Inline(Data::Arrow(b)) => {
            let (schema, _) = arrow::read_stream(b).unwrap();
            let schema: Vec<Value> =
                schema.fields().iter().map(|f| json!([f.name(), pyarrow_type_name(f.data_type())])).collect();
            let rows = match arrow::to_json_rows(b) {
                Ok(rows) => rows,
                Err(e) => json!({"to_json_rows failed": e.to_string()}),
            };
            json!({"rows": rows, "schema": schema})
        }
    }
}

fn check_ok_vector(v: &Vector) -> Result<(), String> {
    let expect = v.expect();
    let (envelope, received) =
        decode_all(&v.wire()).map_err(|(stage, e)| format!("failed at {}: {e}", stage.as_str()))?;

    let want = expect["payloads"].as_array().ok_or("expect.payloads is not an array")?;
    if want.len() != received.len() {
        return Err(format!("{} payloads decoded, {} expected", received.len(), want.len()));
    }
    for (i, (w, r)) in want.iter().zip(&received).enumerate() {
        let got = json!({
            "dataname": r.dataname,
            "payload_type": r.payload_type.as_str(),
            "transport": r.transport.as_str(),
            "value": value_form(r, &w["value"]),
        });
        if &got != w {
            return Err(format!("payload {i}:\n  got      {got}\n  expected {w}"));
        }
    }

    // Re-serialization: the envelope as on the wire, or the declared canonical form when the
    // vector is written leniently (nulls, missing or unknown fields).
    let reserialized: Value = serde_json::from_str(&envelope.to_json()).unwrap();
    let original = expect.get("canonical").unwrap_or(&v.doc["envelope"]);
    if &reserialized != original {
        return Err(format!("to_json() differs:\n  got      {reserialized}\n  expected {original}"));
    }

    match (expect.get("error_reply"), envelope.error_reply()) {
        (None, None) => {}
        (Some(Value::String(code)), Some(e)) if e.code.as_str() == code => {
            if e.correlation_id.as_deref() != Some(envelope.correlation_id.as_str()) {
                return Err(format!("error_reply lost the correlation id: {e:?}"));
            }
        }
        (want, got) => return Err(format!("error_reply: got {got:?}, expected {want:?}")),
    }

    if let Some(threshold) = expect.get("threshold").and_then(Value::as_u64) {
        for p in &envelope.payloads {
            let rule = protocol::transport_for_size(p.size as usize, threshold as usize);
            if rule.as_str() != p.transport {
                return Err(format!(
                    "payload {:?}: size {} gives {} by the threshold rule, vector says {}",
                    p.dataname,
                    p.size,
                    rule.as_str(),
                    p.transport
                ));
            }
        }
    }
    Ok(())
}

fn check_error_vector(v: &Vector) -> Result<(), String> {
    let want_code = v.expect()["error"].as_str().ok_or("expect.error is not a string")?;
    if ErrorCode::parse(want_code).is_none() {
        return Err(format!("{want_code} is not an error code"));
    }
    match decode_all(&v.wire()) {
        Ok(_) => Err(format!("decoded fine, expected {want_code}")),
        Err((stage, e)) => {
            let want_stage = v.expect().get("stage").and_then(Value::as_str);
            if e.code.as_str() != want_code || want_stage.is_some_and(|s| s != stage.as_str()) {
                Err(format!(
                    "got {} at {} ({}), expected {want_code} at {want_stage:?}",
                    e.code,
                    stage.as_str(),
                    e.message
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} vector(s) failed:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------

#[test]
fn vector_count() {
    let vectors = load_vectors();
    assert!(
        vectors.len() >= MIN_VECTORS,
        "only {} vectors in spec/vectors, expected at least {MIN_VECTORS}",
        vectors.len()
    );
    let ok = vectors.iter().filter(|v| !v.is_error()).count();
    assert!(ok >= 35 && vectors.len() - ok >= 30, "{ok} ok and {} error vectors", vectors.len() - ok);
    for v in &vectors {
        assert!(v.doc["description"].as_str().is_some_and(|d| !d.is_empty()), "{}: no description", v.name);
        assert!(v.expect().get("payloads").is_some() != v.is_error(), "{}: expect needs payloads or error", v.name);
    }
    // Every payload type appears direct, and link payloads use each URL scheme.
    let mut direct_types = std::collections::BTreeSet::new();
    let mut link_urls = Vec::new();
    for v in vectors.iter().filter(|v| !v.is_error()) {
        for p in v.doc["envelope"]["payloads"].as_array().into_iter().flatten() {
            match p["transport"].as_str() {
                Some("direct") => {
                    direct_types.insert(p["payload_type"].as_str().unwrap().to_owned());
                }
                Some("link") => link_urls.push(p["data"].as_str().unwrap().to_owned()),
                _ => {}
            }
        }
    }
    assert_eq!(direct_types.len(), 8, "{direct_types:?}");
    assert!(link_urls.iter().any(|u| u.contains("/file/")), "no Plik URL");
    assert!(link_urls.iter().any(|u| u.starts_with("http") && !u.contains("/file/")), "no plain HTTP URL");
    assert!(link_urls.iter().any(|u| u.starts_with("nats-obj://")), "no object store URL");
}

#[test]
fn ok_vectors_decode_to_their_values_and_reserialize() {
    let failures = load_vectors()
        .iter()
        .filter(|v| !v.is_error())
        .filter_map(|v| check_ok_vector(v).err().map(|e| format!("{}: {e}", v.name)))
        .collect();
    report(failures);
}

#[test]
fn error_vectors_fail_with_their_code() {
    let failures = load_vectors()
        .iter()
        .filter(|v| v.is_error())
        .filter_map(|v| check_error_vector(v).err().map(|e| format!("{}: {e}", v.name)))
        .collect();
    report(failures);
}

#[test]
fn schema_is_valid_draft_2020_12() {
    let schema = load_schema();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("envelope.schema.json is not a valid schema: {e}");
    }
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
}

/// Envelopes in sent form validate strictly; receive-only forms must not (so the schema is
/// really strict), and every ok vector's envelope fits the lenient receive schema.
#[test]
fn vectors_against_the_schema() {
    let strict = strict_validator();
    let lenient = received_validator();
    let mut failures = Vec::new();
    for v in load_vectors().iter().filter(|v| !v.is_error()) {
        let env = &v.doc["envelope"];
        match v.doc.get("as_sent").and_then(Value::as_bool) {
            Some(true) => {
                let errors = schema_errors(&strict, env);
                if !errors.is_empty() {
                    failures.push(format!("{}: sent form does not validate: {}", v.name, errors.join("; ")));
                }
                if v.expect().get("canonical").is_some() {
                    failures.push(format!("{}: a sent-form vector is its own canonical form", v.name));
                }
            }
            Some(false) => {
                if strict.is_valid(env) {
                    failures
                        .push(format!("{}: receive-only vector validates against the strict (send) schema", v.name));
                }
            }
            None => failures.push(format!("{}: ok vector without as_sent", v.name)),
        }
        let errors = schema_errors(&lenient, env);
        if !errors.is_empty() {
            failures.push(format!("{}: does not fit received_envelope: {}", v.name, errors.join("; ")));
        }
    }
    report(failures);
}

/// `$defs/received_envelope` states what Envelope::parse accepts: they agree on every vector
/// that is JSON.
#[test]
fn received_schema_agrees_with_parse() {
    let lenient = received_validator();
    let mut failures = Vec::new();
    for v in load_vectors() {
        let instance: Value = match serde_json::from_slice(&v.wire()) {
            Ok(value) => value,
            Err(_) => continue,
        };
        let parsed = Envelope::parse(&v.wire()).is_ok();
        if parsed != lenient.is_valid(&instance) {
            failures.push(format!("{}: Envelope::parse ok = {parsed}, received_envelope valid = {}", v.name, !parsed));
        }
    }
    report(failures);
}

/// What the core builds for sending validates against the strict schema, for every payload
/// type, both transports and each link URL scheme, and for an error reply.
#[test]
fn fresh_envelopes_validate() {
    let strict = strict_validator();
    let rows = json!([{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": null, "score": 1.5}]);
    let values = [
        (PayloadType::Text, Data::Text("héllo ✓".into())),
        (PayloadType::Text, Data::Text(String::new())),
        (PayloadType::Dictionary, Data::Json(json!({"a": {"b": [1, 2.5, null]}}))),
        (PayloadType::JsonTable, Data::Json(rows.clone())),
        (PayloadType::ArrowTable, Data::Arrow(arrow::from_json_rows(&rows).unwrap())),
        (PayloadType::Image, Data::Bytes(vec![0x89, b'P', b'N', b'G'].into())),
        (PayloadType::Audio, Data::Bytes(vec![1, 2, 3].into())),
        (PayloadType::Video, Data::Bytes(vec![4, 5].into())),
        (PayloadType::Binary, Data::Bytes((0..=255u8).collect::<Vec<_>>().into())),
    ];
    let urls = [
        "http://localhost:8080/file/0KfNj6eMb93ilCrl/FvCIZ62hLKZkAnqv/photo.png".to_owned(),
        format!("https://files.example.com/natsbridge/{}/blob.bin", protocol::new_id()),
        format!("nats-obj://natsbridge/{}", protocol::new_id()),
    ];
    let mut env = Envelope::new("natsbridge.test.fresh");
    for (i, (t, data)) in values.iter().enumerate() {
        let bytes = protocol::serialize("p", *t, data).unwrap();
        env.payloads.push(protocol::direct_payload(&format!("d{i}"), *t, &bytes, i % 2 == 0));
        let url = urls[i % urls.len()].clone();
        env.payloads.push(protocol::link_payload(&format!("l{i}"), *t, bytes.len(), url, protocol::sha256_hex(&bytes)));
    }
    let sent: Value = serde_json::from_str(&env.to_json()).unwrap();
    let errors = schema_errors(&strict, &sent);
    assert!(errors.is_empty(), "{}\n{sent}", errors.join("\n"));

    // And it decodes back to the same values.
    let (_, received) = decode_all(env.to_json().as_bytes()).unwrap_or_else(|(s, e)| panic!("{}: {e}", s.as_str()));
    let direct: Vec<&Received> = received.iter().filter(|r| r.transport == Transport::Direct).collect();
    for ((_, data), r) in values.iter().zip(direct) {
        match (&r.content, data) {
            (Content::Inline(Data::Arrow(got)), Data::Arrow(sent)) => assert_eq!(got, sent),
            (Content::Inline(got), sent) => assert_eq!(got, sent),
            _ => panic!("{} is not inline", r.dataname),
        }
    }

    // An error reply.
    let mut nack = Envelope::new("natsbridge.test.reply");
    nack.msg_purpose = protocol::msg_purpose::NACK.into();
    nack.reply_to_msg_id = protocol::new_id();
    nack.error = Some(ErrorBody {
        code: ErrorCode::DownloadFailed.as_str().into(),
        message: "Failed to fetch data after 5 attempts".into(),
        details: json!({"url": urls[0], "correlation_id": nack.correlation_id}),
    });
    let sent: Value = serde_json::from_str(&nack.to_json()).unwrap();
    let errors = schema_errors(&strict, &sent);
    assert!(errors.is_empty(), "{}\n{sent}", errors.join("\n"));
    for code in ErrorCode::ALL {
        nack.error.as_mut().unwrap().code = code.as_str().into();
        assert!(strict.is_valid(&serde_json::from_str(&nack.to_json()).unwrap()), "{code}");
    }

    // The schema rejects what a sender must not emit.
    let mut bad = sent.clone();
    bad["error"]["code"] = "NOT_A_CODE".into();
    assert!(!strict.is_valid(&bad));
    let mut bad = serde_json::from_str::<Value>(&env.to_json()).unwrap();
    bad["payloads"][0]["payload_type"] = "spreadsheet".into();
    assert!(!strict.is_valid(&bad));
    let mut bad = serde_json::from_str::<Value>(&env.to_json()).unwrap();
    bad["payloads"][1]["metadata"].as_object_mut().unwrap().remove("sha256");
    assert!(!strict.is_valid(&bad), "a link payload without sha256 must not validate");
    let mut bad = serde_json::from_str::<Value>(&env.to_json()).unwrap();
    bad["timestamp"] = "2026-03-13T07:02:50Z".into();
    assert!(!strict.is_valid(&bad), "timestamps carry milliseconds");
}

#[test]
fn threshold_rule() {
    assert_eq!(DEFAULT_SIZE_THRESHOLD, 500_000);
    assert_eq!(protocol::transport_for_size(499_999, DEFAULT_SIZE_THRESHOLD), Transport::Direct);
    assert_eq!(protocol::transport_for_size(500_000, DEFAULT_SIZE_THRESHOLD), Transport::Link);
    assert_eq!(protocol::transport_for_size(0, DEFAULT_SIZE_THRESHOLD), Transport::Direct);
}
