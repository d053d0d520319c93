//! The browser build of the NATSBridge core: thin wasm-bindgen wrappers over `natsbridge::protocol`
//! (the options, the send and receive machines, replies, payload conversion). js/natsbridge.js
//! drives the machines with what a browser has (the NATS WebSocket, the object store, fetch): it
//! reports what happened and does what the machine says next; every rule is core's.
//!
//! This module is private to the package; js/natsbridge.js is the public API.

use bytes::Bytes;
use natsbridge::error::{Error, ErrorCode};
use natsbridge::protocol::{
    self, Data, Envelope, FetchFailure, HostValue, HttpHead, LinkFetch, ObjectLink, OptionName, Outgoing, ReceivePlan,
    ReceiveRules, ReceiveStep, Received, ReplyTo, SendLimits, SendOptionName, SendOptions, SendPlan, SendStep, Sender,
    Sent, Settings, TimeUnit, UrlScope, arrow,
};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
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

/// Core's error codes, in core's order.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}

/// The `msg_purpose` values the seeds name.
#[wasm_bindgen(js_name = msgPurposes)]
pub fn msg_purposes() -> Vec<String> {
    protocol::msg_purpose::ALL.iter().map(|p| (*p).to_owned()).collect()
}

/// Every connection option by its canonical name (README "One vocabulary").
#[wasm_bindgen(js_name = optionNames)]
pub fn option_names() -> Vec<String> {
    OptionName::ALL.iter().map(|o| o.as_str().to_owned()).collect()
}

/// Every per-message option by its canonical name.
#[wasm_bindgen(js_name = sendOptionNames)]
pub fn send_option_names() -> Vec<String> {
    SendOptionName::ALL.iter().map(|o| o.as_str().to_owned()).collect()
}

/// The connection options a page cannot use (INVALID_ARGUMENT when given).
#[wasm_bindgen(js_name = unavailableOptions)]
pub fn unavailable_options() -> Vec<String> {
    OptionName::ALL.iter().filter(|o| not_in_browsers(**o).is_some()).map(|o| o.as_str().to_owned()).collect()
}

fn not_in_browsers(option: OptionName) -> Option<&'static str> {
    use OptionName::*;
    match option {
        Nkey | CredentialsFile => Some("a page signs in with user and password or a token"),
        TlsCaFile | TlsCertFile | TlsKeyFile | TlsRequired => Some("TLS is the browser's: name a wss:// server"),
        PendingMsgsLimit => Some("the browser's NATS client has no such limit"),
        FileserverUrl | FileserverKind | PlikOneshot | PlikTtl | PlikToken => {
            Some("a page uploads links to the object store only (Plik sends no CORS headers)")
        }
        _ => None,
    }
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

/// A message re-serialized as `Envelope::to_json` writes it (nulls and missing fields filled in).
#[wasm_bindgen(js_name = canonicalEnvelopeJson)]
pub fn canonical_envelope_json(message: &[u8]) -> JsResult<String> {
    Ok(Envelope::parse(message).map_err(to_js)?.to_json())
}

// --- options: JS objects, camelCase or snake_case, milliseconds ---------------------------------

/// An option name in core's spelling: camelCase becomes snake_case, snake_case stays.
fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn not_json(what: &str) -> Error {
    Error::invalid_argument(format!("{what} is not a JSON value (a string, number, boolean, null, array or object)"))
}

/// A JS value as JSON; None for undefined. Whole numbers stay integers.
fn json_of(v: &JsValue, what: &str) -> Result<Option<Value>, Error> {
    if v.is_undefined() {
        return Ok(None);
    }
    if v.is_null() {
        return Ok(Some(Value::Null));
    }
    if let Some(b) = v.as_bool() {
        return Ok(Some(Value::Bool(b)));
    }
    if let Some(s) = v.as_string() {
        return Ok(Some(Value::String(s)));
    }
    if let Some(n) = v.as_f64() {
        if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 {
            return Ok(Some(Value::from(n as i64)));
        }
        return serde_json::Number::from_f64(n).map(|n| Some(Value::Number(n))).ok_or_else(|| not_json(what));
    }
    if js_sys::Array::is_array(v) {
        let array = js_sys::Array::from(v);
        let items = array.iter().map(|item| json_of(&item, what).map(|j| j.unwrap_or(Value::Null)));
        return items.collect::<Result<Vec<_>, _>>().map(|a| Some(Value::Array(a)));
    }
    if v.is_object() && !js_sys::ArrayBuffer::is_view(v) && !v.is_instance_of::<js_sys::ArrayBuffer>() {
        let object = js_sys::Object::from(v.clone());
        let mut map = Map::new();
        for entry in js_sys::Object::entries(&object).iter() {
            let entry = js_sys::Array::from(&entry);
            let key = entry.get(0).as_string().unwrap_or_default();
            if let Some(value) = json_of(&entry.get(1), what)? {
                map.insert(key, value);
            }
        }
        return Ok(Some(Value::Object(map)));
    }
    Err(not_json(what))
}

/// An options object by canonical names (undefined members left out). Undefined or null: none.
fn options(v: &JsValue) -> Result<Map<String, Value>, Error> {
    if v.is_undefined() || v.is_null() {
        return Ok(Map::new());
    }
    if !v.is_object() || js_sys::Array::is_array(v) {
        return Err(Error::invalid_argument("options are an object of names and values"));
    }
    let mut map = Map::new();
    for entry in js_sys::Object::entries(&js_sys::Object::from(v.clone())).iter() {
        let entry = js_sys::Array::from(&entry);
        let given = entry.get(0).as_string().unwrap_or_default();
        let Some(value) = json_of(&entry.get(1), &format!("option {given:?}"))? else { continue };
        let name = canonical_name(&given);
        if map.insert(name.clone(), value).is_some() {
            return Err(Error::invalid_argument(format!("option {name:?} is given twice")));
        }
    }
    Ok(map)
}

fn json_to_js(v: &impl serde::Serialize) -> JsValue {
    let text = serde_json::to_string(v).expect("JSON values serialize");
    js_sys::JSON::parse(&text).expect("serde_json writes JSON")
}

/// Settings from options by canonical name, refusing what a page cannot use.
fn settings_of(options: &Map<String, Value>) -> Result<Settings, Error> {
    for (name, value) in options {
        if let Ok(option) = name.parse::<OptionName>()
            && let Some(why) = not_in_browsers(option)
            && !value.is_null()
        {
            return Err(Error::invalid_argument(format!("option {name:?} is not available in the browser: {why}")));
        }
    }
    let mut settings = Settings::default();
    settings.apply(options, TimeUnit::Millis)?;
    Ok(settings)
}

/// The one-call style's options (`smartsend(subject, data, {brokerUrl, ...})`) for a `purpose`
/// ("send" or "receive"): `broker_url` names the servers, per-message names go to the send, the
/// rest are connection options. Returns `{send, connect, key}`: `key` names the shared connection
/// of those connection options; null for a receive that names no server (it needs none).
#[wasm_bindgen(js_name = callOptions)]
pub fn call_options(options: &JsValue, purpose: &str) -> JsResult<JsValue> {
    let mut connect = Map::new();
    let mut send = Map::new();
    for (name, value) in self::options(options).map_err(to_js)? {
        if name == "broker_url" {
            connect.insert("servers".to_owned(), value);
        } else if name.parse::<SendOptionName>().is_ok() {
            if purpose != "send" {
                return Err(to_js(Error::invalid_argument(format!(
                    "{name:?} is a send option, not a {purpose} option"
                ))));
            }
            send.insert(name, value);
        } else {
            connect.insert(name, value);
        }
    }
    let settings = settings_of(&connect).map_err(to_js)?;
    let key = if purpose == "send" || !settings.servers.is_empty() {
        if settings.servers.is_empty() {
            return Err(to_js(Error::invalid_argument("pass brokerUrl (a ws:// or wss:// URL) or a connection")));
        }
        Value::String(format!("{settings:?}"))
    } else {
        Value::Null
    };
    Ok(json_to_js(&serde_json::json!({ "send": send, "connect": connect, "key": key })))
}

/// Which kind of store a receive source is; js/natsbridge.js fetches by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Store {
    Object,
    Http,
}

/// A connection's settings as core resolves them, and what follows from them: the sender, the
/// threshold, and (after `connected`) the link sources of receives.
#[wasm_bindgen]
pub struct Config {
    settings: Settings,
    sender: Sender,
    threshold: usize,
    /// Whether the object store takes uploads and serves `nats-obj:` links.
    object_store: bool,
    rules: ReceiveRules,
    stores: Vec<Store>,
}

#[wasm_bindgen]
impl Config {
    /// `options`: connection options by core's names (camelCase or snake_case), durations in
    /// milliseconds. `sender_id`: the id to keep (a restarted core rebuilds a connection's config).
    #[wasm_bindgen(constructor)]
    pub fn new(options: &JsValue, sender_id: Option<String>) -> JsResult<Config> {
        let settings = self::options(options).and_then(|o| settings_of(&o)).map_err(to_js)?;
        let threshold = settings.resolved_threshold().map_err(to_js)?;
        let sender = Sender {
            name: settings.sender_name.clone(),
            id: sender_id.or_else(|| settings.sender_id.clone()).unwrap_or_else(protocol::new_id),
            broker_url: settings.servers.join(","),
        };
        let mut config = Config {
            settings,
            sender,
            threshold,
            object_store: false,
            rules: ReceiveRules::default(),
            stores: Vec::new(),
        };
        config.connected(false).map_err(to_js)?;
        Ok(config)
    }

    /// Connected, to a server with JetStream or not: the object store (when enabled) takes
    /// uploads and is source 0 of receives; each allowed origin is a source after it.
    fn connected(&mut self, jetstream: bool) -> Result<(), Error> {
        let s = &self.settings;
        self.object_store = s.object_store && jetstream;
        let mut sources = Vec::new();
        self.stores.clear();
        if self.object_store {
            sources.push(vec![UrlScope::scheme("nats-obj")]);
            self.stores.push(Store::Object);
        }
        for origin in &s.allowed_origins {
            sources.push(vec![UrlScope::parse(origin)?]);
            self.stores.push(Store::Http);
        }
        self.rules = ReceiveRules { sources, retry: s.retry, max_download_bytes: s.max_download_bytes };
        Ok(())
    }

    #[wasm_bindgen(js_name = setJetStream)]
    pub fn set_jetstream(&mut self, jetstream: bool) -> JsResult<()> {
        self.connected(jetstream).map_err(to_js)
    }

    /// The options of nats.js `wsconnect` (INVALID_ARGUMENT when no server is named: a page has
    /// no default server).
    #[wasm_bindgen(js_name = natsOptions)]
    pub fn nats_options(&self) -> JsResult<JsValue> {
        let s = &self.settings;
        if s.servers.is_empty() {
            return Err(to_js(Error::invalid_argument(
                "no server given: pass servers: \"ws://host:port\" (a websocket listener)",
            )));
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let mut o = serde_json::json!({
            "servers": s.servers,
            "maxReconnectAttempts": s.max_reconnect_attempts.map_or(-1, |n| n as i64),
            "reconnectTimeWait": ms(s.reconnect_time_wait),
            "timeout": ms(s.connect_timeout),
        });
        for (key, value) in [("name", &s.name), ("user", &s.user), ("pass", &s.password), ("token", &s.token)] {
            if let Some(v) = value {
                o[key] = Value::String(v.clone());
            }
        }
        Ok(json_to_js(&o))
    }

    /// The object store as @nats-io/obj takes it: `{bucket, ttl (ns, the bucket's max age when it
    /// is created), chunkSize}`.
    #[wasm_bindgen(js_name = objectStore)]
    pub fn object_store(&self) -> JsValue {
        let s = &self.settings;
        json_to_js(&serde_json::json!({
            "bucket": s.object_store_bucket,
            "ttl": s.object_store_ttl.as_nanos() as f64,
            "chunkSize": protocol::OBJECT_STORE_CHUNK_SIZE,
        }))
    }

    /// The settings as text: equal settings, equal keys (the one-call style's shared connections).
    #[wasm_bindgen(getter, js_name = sharedKey)]
    pub fn shared_key(&self) -> String {
        format!("{:?}", self.settings)
    }

    #[wasm_bindgen(getter, js_name = senderId)]
    pub fn sender_id(&self) -> String {
        self.sender.id.clone()
    }
}

// --- sending --------------------------------------------------------------------------------

/// One smartsend (or reply) as core's send machine: the host adds the payloads, then asks
/// `step()` what to do — `{action: "upload", index, bucket, name}` (store `bytes(index)` as that
/// object and answer `uploaded` or `uploadFailed`), `{action: "wait"}` (hand back the next upload
/// result) or `{action: "publish"}` (publish `json()` to `subject`).
#[wasm_bindgen]
pub struct Sending {
    subject: String,
    envelope: Option<Envelope>,
    payloads: Vec<Outgoing>,
    limits: SendLimits,
    bucket: String,
    plan: Option<SendPlan>,
    uploads: HashMap<usize, ObjectLink>,
    sent: Option<Sent>,
    failed: Option<Error>,
}

fn step_object(action: &str) -> js_sys::Object {
    let o = js_sys::Object::new();
    set(&o, "action", &action.into());
    o
}

fn set(o: &js_sys::Object, key: &str, value: &JsValue) {
    js_sys::Reflect::set(o, &key.into(), value).expect("setting a property of a plain object");
}

/// A received envelope as the host holds it, for `ReplyTo::from_json`: its own properties that
/// are strings, numbers, booleans or null; the payloads and other objects stand as empty objects
/// (a reply needs only header fields, and converting payload data would copy it).
fn request_json(request: &JsValue) -> Value {
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

#[wasm_bindgen]
impl Sending {
    /// A message to `subject` with per-message `options`. `max_payload`: the server's, from its INFO.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &Config, subject: &JsValue, options: &JsValue, max_payload: f64) -> JsResult<Sending> {
        let opts = self::options(options).and_then(|o| SendOptions::from_json(&o)).map_err(to_js)?;
        Sending::start(config, &subject.as_string().unwrap_or_default(), &opts, max_payload).map_err(to_js)
    }

    /// A reply to `request` (an envelope from smartreceive or a subscription): to its reply_to,
    /// else its NATS reply subject, with the header a reply takes unless `options` sets it.
    pub fn reply(config: &Config, request: &JsValue, options: &JsValue, max_payload: f64) -> JsResult<Sending> {
        let reply = || -> Result<Sending, Error> {
            let to = ReplyTo::from_json(&request_json(request))?;
            let opts = to.options(&SendOptions::from_json(&self::options(options)?)?);
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

    fn start(config: &Config, subject: &str, opts: &SendOptions, max_payload: f64) -> Result<Sending, Error> {
        protocol::check_subject(subject)?;
        let mut envelope = config.sender.envelope(subject, opts);
        envelope.timestamp = protocol::timestamp_from_unix_ms(js_sys::Date::now() as u64);
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

    /// What to do next (see the type's description). An error ends the send: publish nothing.
    pub fn step(&mut self) -> JsResult<JsValue> {
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

/// One received message as core's receive machine: `step(config)` says what to do —
/// `{action: "fetch", id, store: "object" | "http", url, bucket, name, size, attempt, delayMs}`
/// (sleep delayMs, fetch, answer with `head`/`objectHead` and `fetched` or `fetchFailed`),
/// `{action: "wait"}` (hand back the next result) or `{action: "done"}` (the payloads are read
/// by `envelopeJson`, `dataname`, `payloadType`, `transport` and `value`).
#[wasm_bindgen]
pub struct Receiving {
    plan: Option<ReceivePlan>,
    correlation_id: String,
    fetches: HashMap<u32, LinkFetch>,
    next_id: u32,
    received: Option<Received>,
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

    /// How each payload travelled: "direct" or "link".
    pub fn transports(&self) -> Vec<String> {
        self.received().payloads.iter().map(|p| p.transport.as_str().to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_name;
    use natsbridge::protocol::{OptionName, SendOptionName};

    #[test]
    fn camel_case_names_are_core_names() {
        assert_eq!(canonical_name("objectStoreTtl"), "object_store_ttl");
        assert_eq!(canonical_name("max_retries"), "max_retries");
        let camel = |snake: &str| {
            let mut out = String::new();
            let mut upper = false;
            for c in snake.chars() {
                if c == '_' {
                    upper = true;
                } else {
                    out.push(if upper { c.to_ascii_uppercase() } else { c });
                    upper = false;
                }
            }
            out
        };
        let names = OptionName::ALL.iter().map(|o| o.as_str()).chain(SendOptionName::ALL.iter().map(|o| o.as_str()));
        for name in names {
            assert_eq!(canonical_name(&camel(name)), name);
            assert_eq!(canonical_name(name), name);
        }
    }
}
