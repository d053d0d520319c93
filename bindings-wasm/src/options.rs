//! Options: JS objects (camelCase or snake_case, milliseconds) to core's settings, per-message
//! options and one-call options; what a connection in a browser is configured with.

use crate::*;

/// An option name in core's spelling: camelCase becomes snake_case, snake_case stays.
pub(crate) fn canonical_name(name: &str) -> String {
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

pub(crate) fn not_json(what: &str) -> Error {
    Error::invalid_argument(format!("{what} is not a JSON value (a string, number, boolean, null, array or object)"))
}

/// A JS value as JSON; None for undefined. Whole numbers stay integers.
pub(crate) fn json_of(v: &JsValue, what: &str) -> Result<Option<Value>, Error> {
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
pub(crate) fn options(v: &JsValue) -> Result<Map<String, Value>, Error> {
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

pub(crate) fn json_to_js(v: &impl serde::Serialize) -> JsValue {
    let text = serde_json::to_string(v).expect("JSON values serialize");
    js_sys::JSON::parse(&text).expect("serde_json writes JSON")
}

/// Settings from options by canonical name, refusing what a page cannot use.
pub(crate) fn settings_of(options: &Map<String, Value>) -> Result<Settings, Error> {
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
pub(crate) enum Store {
    Object,
    Http,
}

/// A connection's settings as core resolves them, and what follows from them: the sender, the
/// threshold, and (after `connected`) the link sources of receives.
#[wasm_bindgen]
pub struct Config {
    pub(crate) settings: Settings,
    pub(crate) sender: Sender,
    pub(crate) threshold: usize,
    /// Whether the object store takes uploads and serves `nats-obj:` links.
    pub(crate) object_store: bool,
    pub(crate) rules: ReceiveRules,
    pub(crate) stores: Vec<Store>,
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
        self.rules = s.receive_rules(sources);
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
    /// is created), replicas (when it is created), chunkSize}`.
    #[wasm_bindgen(js_name = objectStore)]
    pub fn object_store(&self) -> JsValue {
        let s = &self.settings;
        json_to_js(&serde_json::json!({
            "bucket": s.object_store_bucket,
            "ttl": s.object_store_ttl.as_nanos() as f64,
            "replicas": s.object_store_replicas,
            "chunkSize": protocol::OBJECT_STORE_CHUNK_SIZE,
        }))
    }

    /// JetStream mode: `smartsend` publishes durably (the `jetstream` option).
    #[wasm_bindgen(getter)]
    pub fn jetstream(&self) -> bool {
        self.settings.jetstream
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
