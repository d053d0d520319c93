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
    /// Parses the message and checks every payload.
    #[wasm_bindgen(constructor)]
    pub fn new(message: &[u8]) -> JsResult<Receiving> {
        let plan = ReceivePlan::new(message).map_err(to_js)?;
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
        let get = |key: &str| js_sys::Reflect::get(fact, &key.into()).unwrap_or(JsValue::UNDEFINED);
        let text = |key: &str| get(key).as_string();
        let failure = if let Some(m) = text("network") {
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
        };
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
        let received = self.received();
        let parse = |text: &str| js_sys::JSON::parse(text);
        let out = js_sys::Array::new();
        for p in &received.payloads {
            let value = match &p.data {
                Data::Text(s) => JsValue::from_str(s),
                Data::Json(v) => parse(&v.to_string())?,
                Data::JsonBytes(b) => parse(&String::from_utf8_lossy(b))?,
                Data::Arrow(b) if rows => {
                    let text =
                        arrow::to_json_rows_text(b).map_err(|e| to_js(e.with_correlation_id(&self.correlation_id)))?;
                    parse(&text)?
                }
                Data::Arrow(b) | Data::Bytes(b) => js_sys::Uint8Array::from(&b[..]).into(),
            };
            out.push(&js_sys::Array::of3(&p.dataname.as_str().into(), &value, &p.payload_type.as_str().into()));
        }
        Ok(out)
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
