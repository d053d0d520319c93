//! JetStream mode (spec/PROTOCOL.md §12): wrappers over `natsbridge::protocol::durable` that
//! js/natsbridge.js drives with @nats-io/jetstream. Stream and consumer settings are validated
//! and resolved here into the configs nats.js sends; how a failed publish is retried, how a
//! delivery that fails to decode is settled and what its dead letter says are core's rules.

use crate::options::*;
use crate::send::*;
use crate::*;
use natsbridge::protocol::durable::{
    self, ConsumeOptions, DeadLetter, DeliverFrom, DeliveryInfo, LINK_MSG_ID_META, LINK_STREAM_META, PULL_EXPIRES,
    PULL_HEARTBEAT, PubAck, PublishFailure, RedeliveryWatch, Settlement, StreamSettings,
};
use std::time::Duration;

fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How long link objects live, as core checks streams and consumers against it (a page has no
/// upload handlers: the object store's TTL when it takes links).
fn link_ttl(config: &Config) -> Option<Duration> {
    config.settings.link_ttl(false)
}

/// A stream as @nats-io/jetstream's `StreamConfig` takes it (durations in nanoseconds).
fn stream_config(s: &StreamSettings, max_age: Duration) -> Result<Value, Error> {
    Ok(serde_json::json!({
        "name": s.name,
        "subjects": s.resolved_subjects(),
        "storage": <&str>::from(s.storage),
        "num_replicas": s.replicas,
        "max_age": nanos(max_age),
        "retention": <&str>::from(s.retention),
        "duplicate_window": nanos(s.resolved_duplicate_window(max_age)?),
    }))
}

/// `stream add NAME`: the stream's settings (core's stream option names, camelCase or snake_case,
/// durations in ms) checked and resolved into `[streamConfig, deadLetterConfig | null]` for
/// jsm.streams.add/update. INVALID_ARGUMENT for a bad setting or a max_age that outlives the links.
#[wasm_bindgen(js_name = streamConfigs)]
pub fn stream_configs(config: &Config, name: &JsValue, options: &JsValue) -> JsResult<js_sys::Array> {
    let configs = || -> Result<(Value, Value), Error> {
        let name = name.as_string().ok_or_else(|| Error::invalid_argument("a stream name is a string"))?;
        let settings = StreamSettings::from_json(&name, &self::options(options)?, TimeUnit::Millis)?;
        let main = stream_config(&settings, settings.resolved_max_age(link_ttl(config))?)?;
        let dead = if settings.dead_letter {
            let dead = settings.dead_letter_settings();
            stream_config(&dead, dead.max_age.unwrap_or_default())?
        } else {
            Value::Null
        };
        Ok((main, dead))
    };
    let (main, dead) = configs().map_err(to_js)?;
    Ok(js_sys::Array::of2(&json_to_js(&main), &json_to_js(&dead)))
}

/// What `addStream` returns, from the server's StreamInfo: core's `StreamSummary` (the CLI's
/// `stream add` output).
#[wasm_bindgen(js_name = streamSummary)]
pub fn stream_summary(info: &JsValue, dead_letter_stream: Option<String>) -> JsResult<JsValue> {
    let info = json_of(info, "the stream info").map_err(to_js)?.unwrap_or(Value::Null);
    let c = &info["config"];
    Ok(json_to_js(&serde_json::json!({
        "name": c["name"],
        "subjects": c["subjects"],
        "max_age_secs": c["max_age"].as_f64().unwrap_or(0.0) / 1e9,
        "replicas": c["num_replicas"],
        "messages": info["state"]["messages"],
        "dead_letter_stream": dead_letter_stream,
    })))
}

/// No stream captures `subject`: a durable send never falls back to core NATS.
#[wasm_bindgen(js_name = noStreamError)]
pub fn no_stream_error(subject: &str, detail: &str, correlation_id: &str) -> JsValue {
    to_js(durable::no_stream_error(subject, detail).with_correlation_id(correlation_id))
}

/// A consumer on a stream that does not exist: INVALID_ARGUMENT.
#[wasm_bindgen(js_name = noSuchStream)]
pub fn no_such_stream(stream: &str, detail: &str) -> JsValue {
    to_js(Error::invalid_argument(format!("no stream {stream:?} ({detail}); create it with addStream")))
}

/// Every stream setting by its canonical name (`addStream` options).
#[wasm_bindgen(js_name = streamOptionNames)]
pub fn stream_option_names() -> Vec<String> {
    durable::StreamOptionName::ALL.iter().map(|o| o.as_str().to_owned()).collect()
}

/// Every consumer setting by its canonical name (`consume` options).
#[wasm_bindgen(js_name = consumeOptionNames)]
pub fn consume_option_names() -> Vec<String> {
    durable::ConsumeOptionName::ALL.iter().map(|o| o.as_str().to_owned()).collect()
}

/// What the PubAck of a durable publish says, as every binding hands it over.
#[wasm_bindgen(js_name = pubAck)]
pub fn pub_ack(stream: String, sequence: f64, duplicate: bool) -> JsValue {
    json_to_js(&PubAck { stream, sequence: sequence as u64, duplicate })
}

/// JetStream API error codes a PubAck may carry that async-nats tells apart.
const JS_WRONG_LAST_MSG_ID: f64 = 10070.0;
const JS_WRONG_LAST_SEQUENCE: f64 = 10071.0;
const JS_STREAM_NOT_FOUND: f64 = 10059.0;

/// A failed durable publish attempt: `fact` is what nats.js reported — `{timeout: message}`,
/// `{noResponders: message}`, `{api: err_code, message}`, `{maxPayload: message}`, `{closed:
/// message}` or `{network: message}`; `elapsed_ms` since the first attempt began. Returns the ms to wait before publishing again with the same
/// msg_id, or throws the send's error (the failure cannot pass, the retries are spent, or the
/// connection is closed). As core's `Client::confirm_durable`.
#[wasm_bindgen(js_name = publishRetry)]
pub fn publish_retry(
    config: &Config,
    subject: &str,
    correlation_id: &str,
    attempt: u32,
    elapsed_ms: f64,
    fact: &JsValue,
    open: bool,
) -> JsResult<f64> {
    let get = |key: &str| js_sys::Reflect::get(fact, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let message = |key: &str| get(key).as_string();
    let (kind, detail) = if let Some(m) = message("timeout") {
        (PublishFailure::TimedOut, m)
    } else if let Some(m) = message("noResponders") {
        (PublishFailure::StreamNotFound, m)
    } else if let Some(code) = get("api").as_f64() {
        let kind = match code {
            JS_WRONG_LAST_MSG_ID => PublishFailure::WrongLastMessageId,
            JS_WRONG_LAST_SEQUENCE => PublishFailure::WrongLastSequence,
            JS_STREAM_NOT_FOUND => PublishFailure::StreamNotFound,
            _ => PublishFailure::Other,
        };
        (kind, message("message").unwrap_or_default())
    } else if let Some(m) = message("maxPayload") {
        (PublishFailure::MaxPayloadExceeded, m)
    } else if let Some(m) = message("closed") {
        (PublishFailure::BrokenPipe, m)
    } else {
        (PublishFailure::Other, message("network").unwrap_or_else(|| format!("the driver reported {fact:?}")))
    };
    let elapsed = Duration::try_from_secs_f64(elapsed_ms / 1000.0).unwrap_or_default();
    kind.retry_after(attempt, elapsed, &config.settings.retry, open, subject, &detail)
        .map(millis)
        .map_err(|e| to_js(e.with_correlation_id(correlation_id)))
}

/// A host error (a NATSBridgeError: `code`, `reason`, `correlation_id`) as core's. Anything else
/// is a failure of the driver, which may pass.
fn error_of(e: &JsValue) -> Error {
    let get = |key: &str| js_sys::Reflect::get(e, &key.into()).ok().and_then(|v| v.as_string());
    let code = get("code").and_then(|c| ErrorCode::parse(&c)).unwrap_or(ErrorCode::NatsConnectionFailed);
    let message = get("reason").or_else(|| get("message")).unwrap_or_else(|| format!("{e:?}"));
    let error = Error::new(code, message);
    match get("correlation_id") {
        Some(cid) if !cid.is_empty() => error.with_correlation_id(&cid),
        _ => error,
    }
}

/// A delivery's info as `DeliveryInfo::to_json` writes it (what `deliveryInfo` returned).
fn delivery_info_of(info: &JsValue) -> DeliveryInfo {
    let get = |key: &str| js_sys::Reflect::get(info, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let number = |key: &str| get(key).as_f64().unwrap_or(0.0) as u64;
    DeliveryInfo {
        stream: get("stream").as_string().unwrap_or_default(),
        consumer: get("consumer").as_string().unwrap_or_default(),
        stream_sequence: number("stream_sequence"),
        consumer_sequence: number("consumer_sequence"),
        delivered: number("delivered").max(1),
        pending: number("pending"),
        replayed: get("replayed").as_bool().unwrap_or(false),
    }
}

fn settle_step(settlement: Settlement) -> JsValue {
    match settlement {
        Settlement::Nak(delay) => {
            let o = step_object("nak");
            set(&o, "delayMs", &millis(delay).into());
            o.into()
        }
        Settlement::Term => step_object("deadLetter").into(),
    }
}

/// One durable pull consumer as core's rules see it: its validated options, what to create it
/// with, and how its deliveries that fail to decode are settled.
#[wasm_bindgen]
pub struct Consuming {
    stream: String,
    durable: String,
    opts: ConsumeOptions,
    work_queue: bool,
    watch: RedeliveryWatch,
}

#[wasm_bindgen]
impl Consuming {
    /// `options`: core's consume option names (camelCase or snake_case), durations in ms.
    /// INVALID_ARGUMENT for a bad name or setting, or redeliveries that could outlive the links.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &Config, stream: &JsValue, durable: &JsValue, options: &JsValue) -> JsResult<Consuming> {
        let make = || -> Result<Consuming, Error> {
            let stream = stream.as_string().ok_or_else(|| Error::invalid_argument("a stream name is a string"))?;
            let durable =
                durable.as_string().ok_or_else(|| Error::invalid_argument("a durable consumer name is a string"))?;
            StreamSettings::check_name(&stream)?;
            StreamSettings::check_name(&durable).map_err(|_| {
                Error::invalid_argument(format!("{durable:?} is not a durable name: no whitespace, '.', '*', '>'"))
            })?;
            let opts = ConsumeOptions::from_json(&self::options(options)?, TimeUnit::Millis)?;
            opts.check_link_lifetime(link_ttl(config))?;
            Ok(Consuming { stream, durable, opts, work_queue: false, watch: RedeliveryWatch::default() })
        };
        make().map_err(to_js)
    }

    #[wasm_bindgen(getter)]
    pub fn stream(&self) -> String {
        self.stream.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn durable(&self) -> String {
        self.durable.clone()
    }

    /// The stream's retention policy, as the server reports it: a work-queue stream's link objects
    /// are deleted after the final ack.
    #[wasm_bindgen(js_name = setRetention)]
    pub fn set_retention(&mut self, retention: &str) {
        self.work_queue = retention == <&str>::from(durable::Retention::WorkQueue);
    }

    /// Whether an ack deletes the delivery's link objects (then it waits for the server's
    /// confirmation first).
    #[wasm_bindgen(getter, js_name = deletesLinks)]
    pub fn deletes_links(&self) -> bool {
        self.work_queue
    }

    /// Whether `ack` waits for the server's confirmation, for a delivery with `links` link objects
    /// to delete.
    #[wasm_bindgen(js_name = ackWaits)]
    pub fn ack_waits(&self, links: usize) -> bool {
        self.opts.ack_waits(if self.work_queue { links } else { 0 })
    }

    /// The consumer as @nats-io/jetstream's `ConsumerConfig` takes it (durations in nanoseconds).
    #[wasm_bindgen(js_name = consumerConfig)]
    pub fn consumer_config(&self) -> JsValue {
        let o = &self.opts;
        let mut c = serde_json::json!({
            "durable_name": self.durable,
            "ack_policy": "explicit",
            "ack_wait": nanos(o.ack_wait),
            "max_deliver": o.max_deliver.map_or(-1, |n| n as i64),
            "deliver_policy": match o.deliver_from {
                DeliverFrom::All => "all",
                DeliverFrom::New => "new",
            },
        });
        if !o.backoff.is_empty() {
            c["backoff"] = o.backoff.iter().map(|d| nanos(*d)).collect();
        }
        if let Some(n) = o.max_ack_pending {
            c["max_ack_pending"] = n.into();
        }
        if let Some(s) = &o.filter_subject {
            c["filter_subject"] = s.as_str().into();
        }
        json_to_js(&c)
    }

    /// The options of nats.js `consumer.consume()`: `{max_messages: batch, expires, idle_heartbeat}` (ms).
    #[wasm_bindgen(js_name = pullOptions)]
    pub fn pull_options(&self) -> JsValue {
        json_to_js(&serde_json::json!({
            "max_messages": self.opts.batch,
            "expires": millis(PULL_EXPIRES),
            "idle_heartbeat": millis(PULL_HEARTBEAT),
        }))
    }

    /// The wait before pulling again after `stalls` failed or ended pulls in a row.
    #[wasm_bindgen(js_name = stallDelayMs)]
    pub fn stall_delay_ms(&self, stalls: u32) -> f64 {
        millis(durable::stall_delay(stalls))
    }

    /// How often a delivery being decoded is reported in progress: every `ack_wait / 2`.
    #[wasm_bindgen(getter, js_name = keepaliveMs)]
    pub fn keepalive_ms(&self) -> f64 {
        millis(self.opts.keepalive())
    }

    /// Where this consumer's dead letters go.
    #[wasm_bindgen(getter, js_name = deadLetterSubject)]
    pub fn dead_letter_subject(&self) -> String {
        self.opts.resolved_dead_letter_subject(&self.stream)
    }

    /// A delivery's info from nats.js `JsMsg.info`, as `DeliveryInfo::to_json` writes it.
    #[wasm_bindgen(js_name = deliveryInfo)]
    pub fn delivery_info(&mut self, info: &JsValue) -> JsValue {
        let get = |key: &str| js_sys::Reflect::get(info, &key.into()).unwrap_or(JsValue::UNDEFINED);
        let number = |key: &str| get(key).as_f64().unwrap_or(0.0).max(0.0) as u64;
        let mut info = DeliveryInfo {
            stream: get("stream").as_string().unwrap_or_else(|| self.stream.clone()),
            consumer: get("consumer").as_string().unwrap_or_else(|| self.durable.clone()),
            stream_sequence: number("streamSequence"),
            consumer_sequence: number("deliverySequence"),
            delivered: number("deliveryCount").max(1),
            pending: number("pending"),
            replayed: false,
        };
        self.watch.observe(&mut info);
        json_to_js(&info.to_json())
    }

    /// How a delivery that failed to decode with `error` (a NATSBridgeError) on its `delivered`-th
    /// delivery is settled: `{action: "nak", delayMs}`, or `{action: "deadLetter"}` (publish its
    /// dead letter, then ask `afterDeadLetter`).
    pub fn settlement(&self, error: &JsValue, delivered: f64) -> JsValue {
        settle_step(self.opts.settlement(&error_of(error), delivered.max(1.0) as u64))
    }

    /// After the dead letter was published (`published`) or not: `{action: "term"}`, or `{action:
    /// "nak", delayMs}` (a delivery is never terminated without its dead letter).
    #[wasm_bindgen(js_name = afterDeadLetter)]
    pub fn after_dead_letter(&self, published: bool, delivered: f64) -> JsValue {
        if published {
            return step_object("term").into();
        }
        settle_step(Settlement::Nak(self.opts.nak_delay_after(delivered.max(1.0) as u64)))
    }
}

#[wasm_bindgen]
impl Sending {
    /// The dead letter of a delivery that can never decode: the seeds' error response (msg_purpose
    /// NACK, the original's correlation id when readable, msg_id `dead-letter-<stream>-<sequence>`,
    /// `error` naming where it came from) to the consumer's dead-letter subject, with the
    /// original bytes as its one binary payload.
    #[wasm_bindgen(js_name = deadLetter)]
    pub fn dead_letter(
        config: &Config,
        consuming: &Consuming,
        subject: &str,
        message: &[u8],
        error: &JsValue,
        info: &JsValue,
        max_payload: f64,
    ) -> JsResult<Sending> {
        let info = delivery_info_of(info);
        let to = consuming.dead_letter_subject();
        let letter = DeadLetter::of(message, &error_of(error), subject, &info);
        let mut send = Sending::start(config, &to, &letter.opts, max_payload).map_err(to_js)?;
        let envelope = send.envelope.as_mut().expect("a new send has its envelope");
        envelope.msg_id = letter.msg_id;
        envelope.error = Some(letter.error);
        send.msg_id = envelope.msg_id.clone();
        send.payloads.push(letter.original);
        Ok(send)
    }

    /// Publishes durably to `stream`: the link objects are tagged with the stream and the msg_id
    /// (each upload step carries `metadata`).
    pub fn durable(&mut self, stream: &str) {
        self.tags = Some(serde_json::json!({ LINK_STREAM_META: stream, LINK_MSG_ID_META: self.msg_id }));
    }

    /// The envelope's msg_id: the `Nats-Msg-Id` of a durable publish.
    #[wasm_bindgen(getter, js_name = msgId)]
    pub fn msg_id(&self) -> String {
        self.msg_id.clone()
    }
}
