//! Sending: the wrapper over core's send machine that js/natsbridge.js drives.

use crate::options::*;
use crate::*;

/// One smartsend (or reply) as core's send machine: the host adds the payloads, then asks
/// `step()` what to do — `{action: "upload", index, bucket, name}` (store `bytes(index)` as that
/// object and answer `uploaded` or `uploadFailed`), `{action: "wait"}` (hand back the next upload
/// result) or `{action: "publish"}` (publish `json()` to `subject`). An upload step of a durable
/// publish also carries `metadata`, the object metadata to store with it.
#[wasm_bindgen]
pub struct Sending {
    pub(crate) subject: String,
    pub(crate) envelope: Option<Envelope>,
    pub(crate) payloads: Vec<Outgoing>,
    pub(crate) limits: SendLimits,
    pub(crate) bucket: String,
    pub(crate) plan: Option<SendPlan>,
    pub(crate) uploads: HashMap<usize, ObjectLink>,
    pub(crate) sent: Option<Sent>,
    pub(crate) failed: Option<Error>,
    /// The envelope's msg_id (a durable publish's `Nats-Msg-Id`).
    pub(crate) msg_id: String,
    /// The object metadata of a durable publish's link objects (`durable(stream)`).
    pub(crate) tags: Option<Value>,
    /// A step `publishNow` took that was not a publish: `step()` hands it out next.
    pub(crate) taken: Option<JsValue>,
    /// The host's trace context (the `trace_headers` option), published as the message's headers.
    pub(crate) trace: Option<TraceContext>,
}

pub(crate) fn step_object(action: &str) -> js_sys::Object {
    let o = js_sys::Object::new();
    set(&o, "action", &action.into());
    o
}

pub(crate) fn set(o: &js_sys::Object, key: &str, value: &JsValue) {
    js_sys::Reflect::set(o, &key.into(), value).expect("setting a property of a plain object");
}

/// A received envelope as the host holds it, for `ReplyTo::from_json`: its own properties that
/// are strings, numbers, booleans or null; the payloads and other objects stand as empty objects
/// (a reply needs only header fields, and converting payload data would copy it).
pub(crate) fn request_json(request: &JsValue) -> Value {
    if !request.is_object() || js_sys::Array::is_array(request) {
        return json_of(request, "the request").ok().flatten().unwrap_or(Value::Null);
    }
    let mut map = Map::new();
    for entry in js_sys::Object::entries(&js_sys::Object::from(request.clone())).iter() {
        let entry = js_sys::Array::from(&entry);
        let value = entry.get(1);
        let json = if value.is_object() {
            Value::Object(Map::new())
        } else {
            json_of(&value, "").ok().flatten().unwrap_or(Value::Null)
        };
        map.insert(entry.get(0).as_string().unwrap_or_default(), json);
    }
    Value::Object(map)
}

/// Per-message options (a malformed `trace_headers` is INVALID_ARGUMENT, before anything is sent).
fn send_options(options: &JsValue) -> Result<SendOptions, Error> {
    SendOptions::from_json(&self::options(options)?)
}

/// Header pairs as JS takes them: `[[name, value], ...]`.
fn header_pairs(headers: Vec<(&'static str, String)>) -> js_sys::Array {
    headers.into_iter().map(|(name, value)| JsValue::from(js_sys::Array::of2(&name.into(), &value.into()))).collect()
}

#[wasm_bindgen]
impl Sending {
    /// A message to `subject` with per-message `options`. `max_payload`: the server's, from its INFO.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &Config, subject: &JsValue, options: &JsValue, max_payload: f64) -> JsResult<Sending> {
        let opts = send_options(options).map_err(to_js)?;
        Sending::start(config, &subject.as_string().unwrap_or_default(), &opts, max_payload).map_err(to_js)
    }

    /// A reply to `request` (an envelope from smartreceive or a subscription): to its reply_to,
    /// else its NATS reply subject, with the header a reply takes unless `options` sets it.
    pub fn reply(config: &Config, request: &JsValue, options: &JsValue, max_payload: f64) -> JsResult<Sending> {
        let reply = || -> Result<Sending, Error> {
            let to = ReplyTo::from_json(&request_json(request))?;
            let opts = to.options(&send_options(options)?);
            Sending::start(config, to.subject()?, &opts, max_payload)
        };
        reply().map_err(to_js)
    }

    /// A NACK to `request` reporting `code` (one of the error codes) and `message`.
    #[wasm_bindgen(js_name = replyError)]
    pub fn reply_error(
        config: &Config,
        request: &JsValue,
        code: &JsValue,
        message: &JsValue,
        max_payload: f64,
    ) -> JsResult<Sending> {
        let nack = || -> Result<Sending, Error> {
            let to = ReplyTo::from_json(&request_json(request))?;
            let code = code.as_string().and_then(|c| ErrorCode::parse(&c)).ok_or_else(|| {
                Error::invalid_argument(format!(
                    "an error reply's code is one of {}, not {code:?}",
                    error_codes().join(", ")
                ))
            })?;
            let message =
                message.as_string().ok_or_else(|| Error::invalid_argument("an error reply's message is a string"))?;
            let (opts, body) = to.error_reply(&Error::new(code, message));
            let mut send = Sending::start(config, to.subject()?, &opts, max_payload)?;
            if let Some(envelope) = &mut send.envelope {
                envelope.error = Some(body);
            }
            Ok(send)
        };
        nack().map_err(to_js)
    }

    pub(crate) fn start(
        config: &Config,
        subject: &str,
        opts: &SendOptions,
        max_payload: f64,
    ) -> Result<Sending, Error> {
        protocol::check_subject(subject)?;
        let mut envelope = config.sender.envelope(subject, opts);
        envelope.timestamp = protocol::timestamp_from_unix_ms(js_sys::Date::now() as u64);
        let msg_id = envelope.msg_id.clone();
        let limits = SendLimits {
            threshold: opts.size_threshold.unwrap_or(config.threshold),
            max_payload: max_payload as usize,
            can_upload: config.object_store,
        };
        Ok(Sending {
            subject: subject.to_owned(),
            envelope: Some(envelope),
            payloads: Vec::new(),
            limits,
            bucket: config.settings.object_store_bucket.clone(),
            plan: None,
            uploads: HashMap::new(),
            sent: None,
            failed: None,
            msg_id,
            tags: None,
            taken: None,
            trace: opts.trace.clone(),
        })
    }

    /// Where the message goes.
    #[wasm_bindgen(getter)]
    pub fn subject(&self) -> String {
        self.subject.clone()
    }

    fn cid(&self) -> &str {
        match (&self.envelope, &self.plan, &self.sent) {
            (Some(e), _, _) => &e.correlation_id,
            (_, Some(p), _) => p.correlation_id(),
            (_, _, Some(s)) => &s.envelope.correlation_id,
            _ => "",
        }
    }

    #[wasm_bindgen(getter, js_name = correlationId)]
    pub fn correlation_id(&self) -> String {
        self.cid().to_owned()
    }

    fn push(&mut self, dataname: String, payload_type: &str, value: HostValue) -> JsResult<()> {
        let payload = Outgoing::from_host(dataname, payload_type, value);
        let payload = payload.map_err(|e| to_js(e.with_correlation_id(self.cid())))?;
        self.payloads.push(payload);
        Ok(())
    }

    /// A payload given as a string or bytes (Uint8Array: an arrowtable's IPC stream, or raw bytes).
    pub fn add(&mut self, dataname: String, payload_type: &str, value: &JsValue) -> JsResult<()> {
        let value = if let Some(s) = value.as_string() {
            HostValue::Text(s)
        } else if let Some(bytes) = value.dyn_ref::<js_sys::Uint8Array>() {
            HostValue::Bytes(Bytes::from(bytes.to_vec()))
        } else {
            let e = Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?} is not a string or bytes"));
            return Err(to_js(e.with_correlation_id(self.cid())));
        };
        self.push(dataname, payload_type, value)
    }

    /// A payload given as JSON text (`JSON.stringify` of a dictionary, a jsontable's rows, or an
    /// arrowtable's rows, which core builds into an IPC stream).
    #[wasm_bindgen(js_name = addJson)]
    pub fn add_json(&mut self, dataname: String, payload_type: &str, json: String) -> JsResult<()> {
        self.push(dataname, payload_type, HostValue::JsonText(json))
    }

    /// The envelope JSON when the message is ready to publish as it is (no upload to make), in
    /// the one call a message without links needs: a string, or `[json, headers]` when the
    /// message carries trace headers (see `traceHeaders`); else undefined, and `step()` goes on
    /// from the step this call took. An error ends the send, as `step()`'s does.
    #[wasm_bindgen(js_name = publishNow, unchecked_return_type = "string | [string, [string, string][]] | undefined")]
    pub fn publish_now(&mut self) -> JsResult<JsValue> {
        let step = self.step()?;
        if self.sent.is_some() {
            let json = JsValue::from(self.json());
            return Ok(match self.trace_headers() {
                None => json,
                Some(headers) => js_sys::Array::of2(&json, &headers).into(),
            });
        }
        self.taken = Some(step);
        Ok(JsValue::UNDEFINED)
    }

    /// The NATS headers to publish with the message (spec/PROTOCOL.md §13.1), as core writes them
    /// from the `trace_headers` option: `[[name, value], ...]`, lower-case names; undefined when
    /// the message carries no trace context.
    #[wasm_bindgen(getter, js_name = traceHeaders, unchecked_return_type = "[string, string][] | undefined")]
    pub fn trace_headers(&self) -> Option<js_sys::Array> {
        self.trace.as_ref().map(|trace| header_pairs(trace.headers()))
    }

    /// What to do next (see the type's description). An error ends the send: publish nothing.
    pub fn step(&mut self) -> JsResult<JsValue> {
        if let Some(step) = self.taken.take() {
            return Ok(step);
        }
        if let Some(e) = &self.failed {
            return Err(to_js(e.clone()));
        }
        if self.sent.is_some() {
            return Ok(step_object("publish").into());
        }
        if self.plan.is_none() {
            let envelope = self.envelope.take().expect("a send has its envelope until it is planned");
            match SendPlan::new(envelope, std::mem::take(&mut self.payloads), self.limits) {
                Ok(plan) => self.plan = Some(plan),
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(to_js(e));
                }
            }
        }
        let plan = self.plan.as_mut().expect("planned above");
        let step = plan.step().map_err(to_js)?;
        Ok(match step {
            SendStep::Upload(index) => {
                let link = ObjectLink::new(&self.bucket);
                let o = step_object("upload");
                set(&o, "index", &(index as f64).into());
                set(&o, "bucket", &link.bucket.as_str().into());
                set(&o, "name", &link.name.as_str().into());
                if let Some(tags) = &self.tags {
                    set(&o, "metadata", &json_to_js(tags));
                }
                self.uploads.insert(index, link);
                o.into()
            }
            SendStep::Wait => step_object("wait").into(),
            SendStep::Publish => {
                self.sent = self.plan.take().map(SendPlan::finish);
                step_object("publish").into()
            }
        })
    }

    fn plan(&mut self) -> &mut SendPlan {
        self.plan.as_mut().expect("uploads are answered while the send is planned")
    }

    pub fn dataname(&mut self, index: usize) -> String {
        self.plan().dataname(index).to_owned()
    }

    /// Payload `index`'s serialized bytes: what the upload stores.
    pub fn bytes(&mut self, index: usize) -> js_sys::Uint8Array {
        js_sys::Uint8Array::from(&self.plan().bytes(index)[..])
    }

    /// The upload of payload `index` is stored. `digest`: the object store's digest of the bytes
    /// (`SHA-256=<base64url>`), when it has one; else core hashes them.
    pub fn uploaded(&mut self, index: usize, digest: Option<String>) {
        let link = self.uploads.remove(&index).expect("uploaded() answers an upload step");
        let sha256 = digest.as_deref().and_then(protocol::object_digest_hex);
        self.plan().uploaded(index, link.url(), sha256);
    }

    #[wasm_bindgen(js_name = uploadFailed)]
    pub fn upload_failed(&mut self, index: usize, message: String) {
        self.uploads.remove(&index);
        self.plan().upload_failed(index, Error::new(ErrorCode::UploadFailed, message));
    }

    /// The envelope JSON to publish, once `step()` said publish.
    pub fn json(&self) -> String {
        self.sent.as_ref().expect("json() after step() said publish").json_str().to_owned()
    }
}

// --- receiving --------------------------------------------------------------------------------
