//! Receiving: the wrapper over core's receive machine that js/natsbridge.js drives.

use crate::options::*;
use crate::send::*;
use crate::*;

/// One received message as core's receive machine: `step(config)` says what to do —
/// `{action: "fetch", id, store: "object" | "http", url, bucket, name, size, attempt, delayMs}`
/// (sleep delayMs, fetch, answer with `head`/`objectHead` and `fetched` or `fetchFailed`),
/// `{action: "wait"}` (hand back the next result) or `{action: "done"}` (the payloads are read
/// by `envelopeJson`, `dataname`, `payloadType`, `transport` and `value`).
#[wasm_bindgen]
pub struct Receiving {
    pub(crate) plan: Option<ReceivePlan>,
    pub(crate) correlation_id: String,
    pub(crate) fetches: HashMap<u32, LinkFetch>,
    pub(crate) next_id: u32,
    pub(crate) received: Option<Received>,
}

#[wasm_bindgen]
impl Receiving {
    /// Parses the message and checks every payload, within the config's receive limits.
    #[wasm_bindgen(constructor)]
    pub fn new(message: &[u8], config: &Config) -> JsResult<Receiving> {
        let plan = ReceivePlan::new(message, &config.rules.limits).map_err(to_js)?;
        Ok(Receiving {
            correlation_id: plan.correlation_id().to_owned(),
            plan: Some(plan),
            fetches: HashMap::new(),
            next_id: 0,
            received: None,
        })
    }

    #[wasm_bindgen(getter, js_name = correlationId)]
    pub fn correlation_id(&self) -> String {
        self.correlation_id.clone()
    }

    fn plan(&mut self) -> &mut ReceivePlan {
        self.plan.as_mut().expect("the receive is running")
    }

    /// What to do next (see the type's description), by the config's sources and limits.
    pub fn step(&mut self, config: &Config) -> JsResult<JsValue> {
        loop {
            let Some(plan) = self.plan.as_mut() else { return Ok(step_object("done").into()) };
            match plan.step(&config.rules).map_err(to_js)? {
                ReceiveStep::Fetch(fetch) => {
                    let store = config.stores[fetch.source];
                    let o = step_object("fetch");
                    if store == Store::Object {
                        match ObjectLink::parse(&fetch.url) {
                            Ok(link) => {
                                set(&o, "bucket", &link.bucket.into());
                                set(&o, "name", &link.name.into());
                            }
                            Err(failure) => {
                                plan.fetch_failed(&fetch, failure, &config.rules);
                                continue;
                            }
                        }
                    }
                    let id = self.next_id;
                    self.next_id += 1;
                    set(&o, "id", &id.into());
                    set(&o, "store", &(if store == Store::Object { "object" } else { "http" }).into());
                    set(&o, "url", &fetch.url.as_str().into());
                    set(&o, "size", &(fetch.size as f64).into());
                    set(&o, "attempt", &fetch.attempt.into());
                    set(&o, "delayMs", &(fetch.delay.as_secs_f64() * 1000.0).into());
                    self.fetches.insert(id, fetch);
                    return Ok(o.into());
                }
                ReceiveStep::Wait => return Ok(step_object("wait").into()),
                ReceiveStep::Done => {
                    let plan = self.plan.take().expect("running");
                    self.received = Some(plan.finish().map_err(to_js)?);
                    return Ok(step_object("done").into());
                }
            }
        }
    }

    fn take(&mut self, id: u32) -> LinkFetch {
        self.fetches.remove(&id).expect("an answer to a fetch step")
    }

    /// The head of fetch `id`'s HTTP answer: `status` (undefined for an opaque redirect), its
    /// Location and announced length. Returns `{read, payload}`: read at most `read` bytes of the
    /// body and answer `fetched(id, ...)` (payload true) or `fetchFailed(id, {status, detail})`;
    /// or null: the answer is judged, read no more.
    pub fn head(
        &mut self,
        config: &Config,
        id: u32,
        status: Option<u16>,
        location: Option<String>,
        content_length: Option<f64>,
    ) -> JsValue {
        let fetch = &self.fetches[&id];
        let announced = content_length.filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u64);
        let (read, payload) = match HttpHead::of(&fetch.url, status, location.as_deref(), announced, fetch.size) {
            HttpHead::Payload => (fetch.size as f64 + 1.0, true),
            HttpHead::Detail => (protocol::HTTP_ERROR_DETAIL_BYTES as f64, false),
            HttpHead::Fail(failure) => {
                let fetch = self.take(id);
                self.plan().fetch_failed(&fetch, failure, &config.rules);
                return JsValue::NULL;
            }
        };
        let o = js_sys::Object::new();
        set(&o, "read", &read.into());
        set(&o, "payload", &payload.into());
        o.into()
    }

    /// The size an object's info announces. Returns how many bytes of its data to read at most
    /// (then answer `fetched`), or undefined: the fetch failed by it, read nothing.
    #[wasm_bindgen(js_name = objectHead)]
    pub fn object_head(&mut self, config: &Config, id: u32, size: f64) -> Option<f64> {
        let expected = self.fetches[&id].size;
        let Some(failure) = FetchFailure::announced(Some(size as u64), expected) else {
            return Some(expected as f64 + 1.0);
        };
        let fetch = self.take(id);
        self.plan().fetch_failed(&fetch, failure, &config.rules);
        None
    }

    /// The bytes of fetch `id` (at most size + 1 read). `digest`: their sha256 when the host has
    /// it, as lowercase hex (Web Crypto) or the object store's `SHA-256=<base64url>`; else core
    /// hashes them.
    pub fn fetched(&mut self, id: u32, bytes: Vec<u8>, digest: Option<String>) {
        let fetch = self.take(id);
        let sha256 = digest.map(|d| protocol::object_digest_hex(&d).unwrap_or(d));
        self.plan().fetched(&fetch, Bytes::from(bytes), sha256.as_deref());
    }

    /// Fetch `id` failed: `fact` is what the host saw — `{network: message}`, `{notFound:
    /// message}`, `{digestMismatch: message}`, or `{status, detail: Uint8Array}` (the start of an
    /// error answer's body). Core decides whether it is tried again.
    #[wasm_bindgen(js_name = fetchFailed)]
    pub fn fetch_failed(&mut self, config: &Config, id: u32, fact: &JsValue) {
        let failure = failure_of(fact);
        let fetch = self.take(id);
        self.plan().fetch_failed(&fetch, failure, &config.rules);
    }

    fn received(&self) -> &Received {
        self.received.as_ref().expect("read after step() said done")
    }

    /// The envelope as JSON (direct payloads' inline data is null; link payloads keep their URL).
    #[wasm_bindgen(js_name = envelopeJson)]
    pub fn envelope_json(&self) -> String {
        self.received().envelope.to_json()
    }

    /// The error an error reply (NACK) carries, with its code and correlation id; null for any
    /// other message.
    #[wasm_bindgen(js_name = errorReply)]
    pub fn error_reply(&self) -> JsValue {
        self.received().envelope.error_reply().map_or(JsValue::NULL, to_js)
    }

    /// The payloads as `[dataname, value, payload_type]`: text → string, dictionary and
    /// jsontable → their JSON value, arrowtable → its rows (with `rows`, spec/PROTOCOL.md §10.2)
    /// or its IPC stream bytes, the byte types → Uint8Array.
    pub fn payloads(&self, rows: bool) -> JsResult<js_sys::Array> {
        let out = js_sys::Array::new();
        for p in &self.received().payloads {
            let value = incoming_value(p, rows, &self.correlation_id)?;
            out.push(&js_sys::Array::of3(&p.dataname.as_str().into(), &value, &p.payload_type.as_str().into()));
        }
        Ok(out)
    }

    /// For a receive whose links are read as streams (`sub.nextStreamed()`, spec/PROTOCOL.md
    /// §8.3.2), instead of `step`: every link is checked against the config's sources and the
    /// download cap (URL_NOT_ALLOWED, PAYLOAD_TOO_LARGE), and the direct payloads are decoded;
    /// nothing is fetched. Returns `[envelopeJson, payloads,
    /// transports]`: `payloads` as `payloads(rows)` gives them, except that a link payload's value
    /// is the `LinkReading` its bytes go through. Ends this receive.
    #[wasm_bindgen(unchecked_return_type = "[string, Array<[string, any, string]>, string[]]")]
    pub fn streams(&mut self, config: &Config, rows: bool) -> JsResult<js_sys::Array> {
        let Some(plan) = self.plan.take() else {
            return Err(to_js(
                Error::invalid_argument("this receive already ran").with_correlation_id(&self.correlation_id),
            ));
        };
        let (envelope, parts) = plan.into_streams(&config.rules).map_err(to_js)?;
        let (payloads, transports) = (js_sys::Array::new(), js_sys::Array::new());
        for part in parts {
            let (dataname, value, payload_type, transport) = match part {
                StreamPart::Value(p) => {
                    let value = incoming_value(&p, rows, &self.correlation_id)?;
                    (p.dataname, value, p.payload_type, p.transport)
                }
                StreamPart::Link { dataname, payload_type, fetch, check } => {
                    let reading =
                        LinkReading::new(dataname.clone(), payload_type, fetch, check, config, &self.correlation_id);
                    (dataname, reading.into(), payload_type, Transport::Link)
                }
            };
            payloads.push(&js_sys::Array::of3(&dataname.into(), &value, &payload_type.as_str().into()));
            transports.push(&transport.as_str().into());
        }
        Ok(js_sys::Array::of3(&envelope.to_json().into(), &payloads, &transports))
    }

    /// The object-store objects the link payloads were read from, as `[{bucket, name}]` (the
    /// objects a work-queue consumer deletes after the final ack).
    #[wasm_bindgen(js_name = objectLinks)]
    pub fn object_links(&self) -> js_sys::Array {
        let out = js_sys::Array::new();
        let links = self.received().envelope.payloads.iter().filter(|p| p.transport == "link");
        for link in links.filter_map(|p| p.data.as_str().and_then(|url| ObjectLink::parse(url).ok())) {
            let o = js_sys::Object::new();
            set(&o, "bucket", &link.bucket.into());
            set(&o, "name", &link.name.into());
            out.push(&o);
        }
        out
    }

    /// How each payload travelled: "direct" or "link".
    pub fn transports(&self) -> Vec<String> {
        self.received().payloads.iter().map(|p| p.transport.as_str().to_owned()).collect()
    }
}

/// A decoded payload as the host takes it: text → string, dictionary and jsontable → their JSON
/// value, arrowtable → its rows (with `rows`) or its IPC stream bytes, the byte types → Uint8Array.
fn incoming_value(p: &Incoming, rows: bool, correlation_id: &str) -> JsResult<JsValue> {
    let parse = |text: &str| js_sys::JSON::parse(text);
    Ok(match &p.data {
        Data::Text(s) => JsValue::from_str(s),
        Data::Json(v) => parse(&v.to_string())?,
        Data::JsonBytes(b) => parse(&String::from_utf8_lossy(b))?,
        Data::Arrow(b) if rows => {
            parse(&arrow::to_json_rows_text(b).map_err(|e| to_js(e.with_correlation_id(correlation_id)))?)?
        }
        Data::Arrow(b) | Data::Bytes(b) => js_sys::Uint8Array::from(&b[..]).into(),
    })
}

/// What the host saw go wrong with a fetch: `{network: message}`, `{notFound: message}`,
/// `{digestMismatch: message}`, or `{status, detail: Uint8Array}` (the start of an error answer's
/// body).
pub(crate) fn failure_of(fact: &JsValue) -> FetchFailure {
    let get = |key: &str| js_sys::Reflect::get(fact, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let text = |key: &str| get(key).as_string();
    if let Some(m) = text("network") {
        FetchFailure::Network(m)
    } else if let Some(m) = text("notFound") {
        FetchFailure::NotFound(m)
    } else if let Some(m) = text("digestMismatch") {
        FetchFailure::DigestMismatch(m)
    } else if let Some(status) = get("status").as_f64() {
        let detail = get("detail").dyn_into::<js_sys::Uint8Array>().map(|d| d.to_vec()).unwrap_or_default();
        FetchFailure::http_status(status as u16, &detail)
    } else {
        FetchFailure::Network(format!("the driver reported {fact:?}"))
    }
}

/// Received text longer than this crosses as a string value of its own, not inside the batch's
/// JSON text (where it would be escaped, decoded and parsed once more).
const TEXT_INLINE_MAX: usize = 2048;

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serializes"));
}

/// Decodes the messages laid end to end in `data` (message `i` ends at `ends[i]`) in one call,
/// for a subscription's messages that are already waiting, within the config's receive limits. Returns `[json, values]`: `json` is a
/// JSON array with one item per message, in order —
/// `[0, header, payloads, transports, sides]`: decoded. `header` is the envelope as
/// `Receiving::envelopeJson` gives it, with `payloads: []`; `payloads` the
/// `[dataname, value, payload_type]` items `Receiving::payloads` gives, except that for each
/// payload position listed in `sides` the value is an index into `values` (a Uint8Array, or a
/// long string);
/// `[1, code, message, correlation_id]`: the message failed to decode (correlation_id null
/// when the envelope could not be read);
/// `[2]`: it has link payloads, which only the receive machine (`Receiving`) can fetch.
#[wasm_bindgen(js_name = receiveBatch)]
pub fn receive_batch(config: &Config, data: &[u8], ends: &[u32], rows: bool) -> js_sys::Array {
    let values = js_sys::Array::new();
    let mut out = String::with_capacity(data.len() + 64 * ends.len() + 2);
    out.push('[');
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        let end = (end as usize).clamp(start, data.len());
        if i > 0 {
            out.push(',');
        }
        if let Err(e) = decode_one(&data[start..end], &config.rules.limits, rows, &mut out, &values) {
            out.push_str("[1,");
            push_json_str(&mut out, e.code.as_str());
            out.push(',');
            push_json_str(&mut out, &e.message);
            out.push(',');
            match &e.correlation_id {
                Some(cid) => push_json_str(&mut out, cid),
                None => out.push_str("null"),
            }
            out.push(']');
        }
        start = end;
    }
    out.push(']');
    js_sys::Array::of2(&out.into(), &values)
}

/// One message of [`receive_batch`], written to `out` unless it fails (then nothing is written).
fn decode_one(
    message: &[u8],
    limits: &ReceiveLimits,
    rows: bool,
    out: &mut String,
    values: &js_sys::Array,
) -> Result<(), Error> {
    let plan = ReceivePlan::new(message, limits)?;
    if plan.has_links() {
        out.push_str("[2]");
        return Ok(());
    }
    let cid = plan.correlation_id().to_owned();
    let Received { mut envelope, payloads, .. } = plan.finish()?;
    // Written whole before anything goes to `out`, so a failure leaves `out` as it was.
    let mut items = String::with_capacity(64 * payloads.len());
    let mut sides = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        if i > 0 {
            items.push(',');
        }
        items.push('[');
        push_json_str(&mut items, &p.dataname);
        items.push(',');
        let mut side = |v: JsValue| {
            sides.push(i);
            values.push(&v) - 1
        };
        match &p.data {
            Data::Text(s) if s.len() > TEXT_INLINE_MAX => items.push_str(&side(s.as_str().into()).to_string()),
            Data::Text(s) => push_json_str(&mut items, s),
            Data::Json(v) => items.push_str(&v.to_string()),
            // Checked here too: text that is not JSON would spoil the whole batch's JSON.
            Data::JsonBytes(b) => match serde_json::from_slice::<&serde_json::value::RawValue>(b) {
                Ok(raw) => items.push_str(raw.get()),
                Err(e) => {
                    let e = Error::new(
                        ErrorCode::DeserializationError,
                        format!("payload {:?} is not JSON: {e}", p.dataname),
                    );
                    return Err(e.with_correlation_id(&cid));
                }
            },
            Data::Arrow(b) if rows => {
                items.push_str(&arrow::to_json_rows_text(b).map_err(|e| e.with_correlation_id(&cid))?)
            }
            Data::Arrow(b) | Data::Bytes(b) => {
                items.push_str(&side(js_sys::Uint8Array::from(&b[..]).into()).to_string())
            }
        }
        items.push(',');
        push_json_str(&mut items, p.payload_type.as_str());
        items.push(']');
    }
    envelope.payloads.clear();
    out.push_str("[0,");
    out.push_str(&envelope.to_json());
    out.push_str(",[");
    out.push_str(&items);
    out.push_str("],[");
    for (i, p) in payloads.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, p.transport.as_str());
    }
    out.push_str("],[");
    for (n, i) in sides.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&i.to_string());
    }
    out.push_str("]]");
    Ok(())
}

/// The trace context of a received message (spec/PROTOCOL.md §13.1) from the values of its
/// `traceparent`, `tracestate` and `baggage` headers ("" or undefined: absent), as the carrier
/// object envelopes carry as `trace_headers`; undefined without a well-formed traceparent. The
/// headers are advisory: a malformed one is dropped, never an error.
#[wasm_bindgen(
    js_name = traceCarrier,
    unchecked_return_type = "{ traceparent: string; tracestate?: string; baggage?: string } | undefined"
)]
pub fn trace_carrier(traceparent: Option<String>, tracestate: Option<String>, baggage: Option<String>) -> JsValue {
    use natsbridge::protocol::trace::{BAGGAGE, TRACEPARENT, TRACESTATE};
    let header = |name: &str| match name {
        TRACEPARENT => traceparent.as_deref(),
        TRACESTATE => tracestate.as_deref(),
        BAGGAGE => baggage.as_deref(),
        _ => None,
    };
    // No payload's upload span is read: a page makes no download spans to link them to.
    match TraceContext::from_headers(header, |_| false) {
        Some(trace) => json_to_js(&trace.w3c_carrier()),
        None => JsValue::UNDEFINED,
    }
}
