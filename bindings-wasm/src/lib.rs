//! The browser build of the NATSBridge core: `natsbridge::protocol` (codec, envelope, checks) for
//! wasm32 through wasm-bindgen. No I/O here: js/natsbridge.js does the NATS WebSocket, the object
//! store and fetch, and calls in here for everything the wire format decides.
//!
//! This module is private to the package; js/natsbridge.js is the public API.

use bytes::Bytes;
use natsbridge::error::{Error, ErrorCode};
use natsbridge::protocol::{
    self, Data, DecodedPayload, Envelope, ErrorBody, PayloadSource, PayloadType, Transport, WirePayload, arrow,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The host's error class (js/errors.js `NATSBridgeError`), so errors made here and in JS
    /// are instances of one class.
    static ERROR_CLASS: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Called once by js/natsbridge.js with `NATSBridgeError` (constructor `(code, message, correlationId)`).
#[wasm_bindgen(js_name = setErrorClass)]
pub fn set_error_class(class: js_sys::Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

fn to_js(e: Error) -> JsValue {
    let message = JsValue::from_str(&e.message);
    let code = JsValue::from_str(e.code.as_str());
    let cid = e.correlation_id.as_deref().map_or(JsValue::NULL, JsValue::from_str);
    let constructed = ERROR_CLASS.with(|c| {
        let class = c.borrow();
        let class = class.as_ref()?;
        js_sys::Reflect::construct(class, &js_sys::Array::of3(&code, &message, &cid)).ok()
    });
    constructed.unwrap_or_else(|| {
        // Not initialised through js/natsbridge.js: still an Error that carries the code.
        let plain = js_sys::Error::new(&format!("{}: {}", e.code, e.message));
        let _ = js_sys::Reflect::set(&plain, &"code".into(), &code);
        let _ = js_sys::Reflect::set(&plain, &"correlation_id".into(), &cid);
        plain.into()
    })
}

type JsResult<T> = Result<T, JsValue>;

/// The 11 stable error codes, in core's order.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}

/// The `msg_purpose` values the seeds name.
#[wasm_bindgen(js_name = msgPurposes)]
pub fn msg_purposes() -> Vec<String> {
    protocol::msg_purpose::ALL.iter().map(|p| (*p).to_owned()).collect()
}

#[wasm_bindgen(js_name = defaultSizeThreshold)]
pub fn default_size_threshold() -> usize {
    protocol::DEFAULT_SIZE_THRESHOLD
}

/// Lowercase hex SHA-256.
#[wasm_bindgen(js_name = sha256Hex)]
pub fn sha256_hex(bytes: &[u8]) -> String {
    protocol::sha256_hex(bytes)
}

/// The JSON-rows view of an Arrow IPC stream (spec/PROTOCOL.md §10.2), as JSON text.
#[wasm_bindgen(js_name = arrowRowsJson)]
pub fn arrow_rows_json(ipc: &[u8]) -> JsResult<String> {
    arrow::to_json_rows_text(&Bytes::copy_from_slice(ipc)).map_err(to_js)
}

/// A message re-serialized as `Envelope::to_json` writes it (nulls and missing fields filled in).
#[wasm_bindgen(js_name = canonicalEnvelopeJson)]
pub fn canonical_envelope_json(message: &[u8]) -> JsResult<String> {
    Ok(Envelope::parse(message).map_err(to_js)?.to_json())
}

/// The error an error reply (NACK) carries, with its code (an unknown code reads as
/// INVALID_ENVELOPE) and correlation id; null for any other message.
#[wasm_bindgen(js_name = errorReply)]
pub fn error_reply(message: &[u8]) -> JsResult<JsValue> {
    Ok(Envelope::parse(message).map_err(to_js)?.error_reply().map_or(JsValue::NULL, to_js))
}

/// The envelope header fields a sender may set (`smartsend` options), as JSON from the host.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Header {
    correlation_id: Option<String>,
    msg_purpose: Option<String>,
    sender_name: Option<String>,
    sender_id: Option<String>,
    receiver_name: Option<String>,
    receiver_id: Option<String>,
    reply_to: Option<String>,
    reply_to_msg_id: Option<String>,
    broker_url: Option<String>,
    metadata: Option<Map<String, Value>>,
    /// An error reply (NACK) body.
    error: Option<ErrorBody>,
}

struct Serialized {
    dataname: String,
    payload_type: PayloadType,
    bytes: Bytes,
}

/// One smartsend without the I/O: the payloads are serialized here, the host uploads the ones
/// this plan names (object store) and publishes `json()`. The transport rules are core's
/// (spec/PROTOCOL.md §7): threshold first, upload failures fall back to direct, and while the
/// envelope is over max_payload the largest direct payload moves to link.
#[wasm_bindgen]
pub struct SendPlan {
    envelope: Envelope,
    payloads: Vec<Serialized>,
    plan: Vec<Transport>,
    wire: Vec<Option<WirePayload>>,
    threshold: usize,
    max_payload: usize,
    has_store: bool,
    upload_error: Option<Error>,
    json: String,
}

#[wasm_bindgen]
impl SendPlan {
    /// `header_json`: the header options as a JSON object (unset fields omitted).
    #[wasm_bindgen(constructor)]
    pub fn new(
        subject: &str,
        header_json: &str,
        threshold: usize,
        max_payload: usize,
        has_store: bool,
    ) -> JsResult<SendPlan> {
        let header: Header = serde_json::from_str(header_json)
            .map_err(|e| to_js(Error::new(ErrorCode::InvalidEnvelope, format!("bad smartsend options: {e}"))))?;
        let mut envelope = Envelope::new(subject);
        envelope.timestamp = protocol::timestamp_from_unix_ms(js_sys::Date::now() as u64);
        let set = |field: &mut String, value: Option<String>| {
            if let Some(v) = value {
                *field = v;
            }
        };
        set(&mut envelope.correlation_id, header.correlation_id);
        set(&mut envelope.msg_purpose, header.msg_purpose);
        set(&mut envelope.sender_name, header.sender_name);
        set(&mut envelope.sender_id, header.sender_id);
        set(&mut envelope.receiver_name, header.receiver_name);
        set(&mut envelope.receiver_id, header.receiver_id);
        set(&mut envelope.reply_to, header.reply_to);
        set(&mut envelope.reply_to_msg_id, header.reply_to_msg_id);
        set(&mut envelope.broker_url, header.broker_url);
        envelope.metadata = header.metadata.unwrap_or_default();
        if let Some(body) = &header.error
            && ErrorCode::parse(&body.code).is_none()
        {
            return Err(to_js(Error::new(
                ErrorCode::InvalidEnvelope,
                format!("an error reply needs one of the error codes, not {:?}", body.code),
            )));
        }
        envelope.error = header.error;
        Ok(SendPlan {
            envelope,
            payloads: Vec::new(),
            plan: Vec::new(),
            wire: Vec::new(),
            threshold,
            max_payload,
            has_store,
            upload_error: None,
            json: String::new(),
        })
    }

    #[wasm_bindgen(getter, js_name = correlationId)]
    pub fn correlation_id(&self) -> String {
        self.envelope.correlation_id.clone()
    }

    fn add(&mut self, dataname: &str, payload_type: &str, data: impl FnOnce(PayloadType) -> Data) -> JsResult<()> {
        let cid = self.envelope.correlation_id.clone();
        let fail = |e: Error| to_js(e.with_correlation_id(&cid));
        let payload_type = PayloadType::parse(payload_type).map_err(fail)?;
        let bytes = protocol::serialize(dataname, payload_type, &data(payload_type)).map_err(fail)?;
        self.payloads.push(Serialized { dataname: dataname.to_owned(), payload_type, bytes });
        Ok(())
    }

    #[wasm_bindgen(js_name = addText)]
    pub fn add_text(&mut self, dataname: &str, payload_type: &str, text: String) -> JsResult<()> {
        self.add(dataname, payload_type, |_| Data::Text(text))
    }

    /// JSON text from the host's `JSON.stringify` (core checks it, and the rows of a jsontable).
    #[wasm_bindgen(js_name = addJson)]
    pub fn add_json(&mut self, dataname: &str, payload_type: &str, json: String) -> JsResult<()> {
        self.add(dataname, payload_type, |_| Data::JsonBytes(Bytes::from(json)))
    }

    /// Bytes: Arrow IPC stream bytes for an arrowtable, the raw bytes for the byte types.
    #[wasm_bindgen(js_name = addBytes)]
    pub fn add_bytes(&mut self, dataname: &str, payload_type: &str, bytes: Vec<u8>) -> JsResult<()> {
        self.add(dataname, payload_type, |t| match t {
            PayloadType::ArrowTable => Data::Arrow(Bytes::from(bytes)),
            _ => Data::Bytes(Bytes::from(bytes)),
        })
    }

    /// An arrowtable given as JSON rows (`Array<Object>`): core builds the IPC stream.
    #[wasm_bindgen(js_name = addRows)]
    pub fn add_rows(&mut self, dataname: &str, payload_type: &str, rows_json: &str) -> JsResult<()> {
        let cid = self.envelope.correlation_id.clone();
        let fail = |e: Error| to_js(e.with_correlation_id(&cid));
        if PayloadType::parse(payload_type).map_err(fail)? != PayloadType::ArrowTable {
            return self.add_json(dataname, payload_type, rows_json.to_owned());
        }
        let rows: Value = serde_json::from_str(rows_json).map_err(|e| {
            fail(Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?}: rows are not JSON: {e}")))
        })?;
        let ipc = arrow::from_json_rows(&rows).map_err(fail)?;
        self.add(dataname, payload_type, |_| Data::Arrow(ipc))
    }

    /// Plans transports by the threshold; returns the indices to upload first.
    pub fn start(&mut self) -> Vec<u32> {
        self.plan = self.payloads.iter().map(|p| protocol::transport_for_size(p.bytes.len(), self.threshold)).collect();
        self.wire = vec![None; self.payloads.len()];
        (0..self.plan.len() as u32).filter(|&i| self.plan[i as usize] == Transport::Link).collect()
    }

    pub fn dataname(&self, index: usize) -> String {
        self.payloads[index].dataname.clone()
    }

    /// The serialized bytes of payload `index` (what an upload stores).
    pub fn bytes(&self, index: usize) -> js_sys::Uint8Array {
        js_sys::Uint8Array::from(&self.payloads[index].bytes[..])
    }

    /// Payload `index` was stored at `url`. `sha256`: the hex digest when the store computed it
    /// while storing (the object store does), else it is computed here.
    #[wasm_bindgen(js_name = setLink)]
    pub fn set_link(&mut self, index: usize, url: String, sha256: Option<String>) {
        let p = &self.payloads[index];
        let sha256 = sha256.unwrap_or_else(|| protocol::sha256_hex(&p.bytes));
        self.wire[index] = Some(protocol::link_payload(&p.dataname, p.payload_type, p.bytes.len(), url, sha256));
        self.plan[index] = Transport::Link;
    }

    /// The upload of payload `index` failed: it goes direct if the envelope still fits.
    #[wasm_bindgen(js_name = uploadFailed)]
    pub fn upload_failed(&mut self, index: usize, message: &str) {
        self.plan[index] = Transport::Direct;
        self.upload_error = Some(Error::new(ErrorCode::UploadFailed, message));
    }

    /// Builds the envelope. Returns -1 when it fits max_payload (then `json()` is what to
    /// publish), else the index of the payload to upload next; fails with PAYLOAD_TOO_LARGE or
    /// UPLOAD_FAILED when nothing more can move to link.
    pub fn fit(&mut self) -> JsResult<i32> {
        let cid = self.envelope.correlation_id.clone();
        self.envelope.payloads = self
            .plan
            .iter()
            .zip(&self.wire)
            .zip(&self.payloads)
            .map(|((t, wire), p)| match (t, wire) {
                (Transport::Link, Some(w)) => w.clone(),
                _ => protocol::direct_payload(&p.dataname, p.payload_type, &p.bytes, false),
            })
            .collect();
        let json = self.envelope.to_json();
        if json.len() <= self.max_payload {
            self.json = json;
            return Ok(-1);
        }
        let fail = |e: Error| Err(to_js(e.with_correlation_id(&cid)));
        let too_large = |why: &str| {
            Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the envelope is {} bytes, over the server's max_payload of {}; {why}",
                    json.len(),
                    self.max_payload
                ),
            )
        };
        let sizes: Vec<usize> = self.payloads.iter().map(|p| p.bytes.len()).collect();
        let Some(index) = protocol::largest_direct(&self.plan, &sizes) else {
            return fail(too_large("every payload is already a link"));
        };
        if let Some(e) = self.upload_error.take() {
            return fail(Error::new(
                ErrorCode::UploadFailed,
                format!("{}; direct transport does not fit either", e.message),
            ));
        }
        if !self.has_store {
            return fail(too_large("no link store is configured (the object store needs JetStream)"));
        }
        Ok(index as i32)
    }

    /// The envelope JSON to publish (after `fit()` returned -1).
    pub fn json(&self) -> String {
        self.json.clone()
    }
}

/// One received message, checked by core: direct payloads are decoded and verified, link
/// payloads wait for the host to fetch their bytes (`setLinkBytes` verifies them).
#[wasm_bindgen]
pub struct Incoming {
    envelope: Envelope,
    decoded: Vec<DecodedPayload>,
    fetched: Vec<Option<Bytes>>,
}

#[wasm_bindgen]
impl Incoming {
    #[wasm_bindgen(constructor)]
    pub fn new(message: &[u8]) -> JsResult<Incoming> {
        let (envelope, decoded) = protocol::decode_message(message).map_err(to_js)?;
        let fetched = vec![None; decoded.len()];
        Ok(Incoming { envelope, decoded, fetched })
    }

    /// The envelope as JSON (direct payloads' inline data is null; link payloads keep their URL).
    #[wasm_bindgen(js_name = envelopeJson)]
    pub fn envelope_json(&self) -> String {
        self.envelope.to_json()
    }

    #[wasm_bindgen(getter, js_name = correlationId)]
    pub fn correlation_id(&self) -> String {
        self.envelope.correlation_id.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn length(&self) -> usize {
        self.decoded.len()
    }

    pub fn dataname(&self, index: usize) -> String {
        self.decoded[index].dataname.clone()
    }

    #[wasm_bindgen(js_name = payloadType)]
    pub fn payload_type(&self, index: usize) -> String {
        self.decoded[index].payload_type.as_str().to_owned()
    }

    /// The URL of a link payload, or undefined for a direct one.
    #[wasm_bindgen(js_name = linkUrl)]
    pub fn link_url(&self, index: usize) -> Option<String> {
        match &self.decoded[index].source {
            PayloadSource::Link(url) => Some(url.clone()),
            PayloadSource::Inline(_) => None,
        }
    }

    /// The declared size in bytes (a JS number: exact up to 2^53).
    pub fn size(&self, index: usize) -> f64 {
        self.decoded[index].size as f64
    }

    /// Checks fetched link bytes against the declared size and sha256, and keeps them. `sha256`:
    /// the bytes' hex digest when the host has it (Web Crypto, or an object store that checked
    /// the bytes against its stored digest), else the bytes are hashed here.
    #[wasm_bindgen(js_name = setLinkBytes)]
    pub fn set_link_bytes(&mut self, index: usize, bytes: Vec<u8>, sha256: Option<String>) -> JsResult<()> {
        let p = &self.decoded[index];
        let checked = match (&sha256, &p.sha256) {
            (Some(actual), Some(expected)) if !actual.eq_ignore_ascii_case(expected) => Err(Error::new(
                ErrorCode::ChecksumMismatch,
                format!("payload {:?} sha256 is {actual}, metadata says {expected}", p.dataname),
            )),
            (Some(_), _) => p.verify_size(&bytes),
            (None, _) => p.verify(&bytes),
        };
        checked.map_err(|e| to_js(e.with_correlation_id(&self.envelope.correlation_id)))?;
        self.fetched[index] = Some(Bytes::from(bytes));
        Ok(())
    }

    /// The payload's value: text → string, dictionary/jsontable → JSON text (the host parses it),
    /// arrowtable (checked) and the byte types → Uint8Array.
    pub fn value(&self, index: usize) -> JsResult<JsValue> {
        let p = &self.decoded[index];
        let cid = &self.envelope.correlation_id;
        let bytes = match (&p.source, &self.fetched[index]) {
            (PayloadSource::Inline(b), _) | (PayloadSource::Link(_), Some(b)) => b.clone(),
            (PayloadSource::Link(url), None) => {
                return Err(to_js(
                    Error::new(ErrorCode::DownloadFailed, format!("payload {:?}: {url} was not fetched", p.dataname))
                        .with_correlation_id(cid),
                ));
            }
        };
        match protocol::deserialize(p.payload_type, bytes).map_err(|e| to_js(e.with_correlation_id(cid)))? {
            Data::Text(s) => Ok(JsValue::from_str(&s)),
            Data::Json(v) => Ok(JsValue::from_str(&v.to_string())),
            Data::JsonBytes(b) | Data::Arrow(b) | Data::Bytes(b) => Ok(js_sys::Uint8Array::from(&b[..]).into()),
        }
    }
}
