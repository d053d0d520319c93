//! The private napi addon of the `natsbridge` npm package (`native.js` loads it; `index.js` is
//! the public API). It converts JS values to core's types and back and maps errors; every rule
//! (options and their checks, payloads, replies, link stores, the one-call connections) is
//! core's. Options arrive as JSON text of an object with core's snake_case names (index.js
//! renames camelCase keys and takes out the host-only ones).

mod convert;
mod durable;
mod errors;
mod handlers;
mod link_stream;
mod runtime;
mod subscription;

use bytes::Bytes;
use convert::{ArrowOut, PayloadIn};
pub use durable::{Consumer, DeliveryAck};
use handlers::{DownloadFn, UploadFn};
use napi::bindgen_prelude::{Either, Null, ToNapiValue, Uint8Array, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::one_call::{self, CallOptions};
use natsbridge::io::{Client, ConnectOptions, Kick};
use natsbridge::protocol::durable::{ConsumeOptionName, StreamOptionName};
use natsbridge::protocol::{self, OptionName, ReplyTo, SendOptionName, SendOptions, Settings, TimeUnit};
use serde_json::{Map, Value};
pub use subscription::Subscription;

/// The addon's own allocations (envelopes, JSON, payload bytes) come from mimalloc: glibc's
/// malloc and free were about 15 % of the CPU time of a 100-byte send + receive loop, much of
/// it the addon's (bench/RESULTS-node.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arrow_out(rows: bool) -> ArrowOut {
    if rows { ArrowOut::Rows } else { ArrowOut::Ipc }
}

/// An options object as index.js hands it over (JSON text).
pub(crate) fn json_object(text: Option<String>, what: &str) -> CoreResult<Map<String, Value>> {
    match text.as_deref().map(serde_json::from_str) {
        None => Ok(Map::new()),
        Some(Ok(Value::Object(map))) => Ok(map),
        Some(_) => Err(Error::invalid_argument(format!("{what} are an object"))),
    }
}

fn settings(options: Option<String>, what: &str) -> CoreResult<Settings> {
    let mut settings = Settings::default();
    settings.apply(&json_object(options, what)?, TimeUnit::Millis)?;
    Ok(settings)
}

fn send_options(options: Option<String>) -> CoreResult<SendOptions> {
    SendOptions::from_json(&json_object(options, "send options")?)
}

/// The one-call options: `broker_url` and the connection options a call takes (`fileserver_url`,
/// `allowed_origins`, `max_retries`, `base_delay`, `max_delay`), with the call's handler.
fn call_options(
    options: Option<String>,
    upload: Option<UploadFn>,
    download: Option<DownloadFn>,
) -> CoreResult<CallOptions> {
    let mut map = json_object(options, "call options")?;
    let call = CallOptions::take_from(&mut map, TimeUnit::Millis)?;
    if let Some(key) = map.keys().next() {
        // index.js hands over only what a one-call smartsend takes; the rest is smartreceive's.
        return Err(Error::invalid_argument(format!("unknown smartreceive option {key:?}")));
    }
    Ok(CallOptions {
        upload_handler: upload.map(handlers::upload),
        download_handler: download.map(handlers::download),
        ..call
    })
}

/// Sends payloads as one envelope, on `conn` or else through the one-call connection of `call`;
/// the msg_json published (an Error object on failure).
#[napi(
    ts_return_type = "[string, string, Array<unknown>, object?] | Error | Promise<[string, string, Array<unknown>, object?] | Error>"
)]
pub fn smartsend<'env>(
    env: &'env Env,
    subject: String,
    payloads: Vec<PayloadIn>,
    options: Option<String>,
    conn: Option<&Connection>,
    call: Option<String>,
    upload: Option<UploadFn>,
) -> Result<Unknown<'env>> {
    let prepared =
        convert::outgoing(payloads).and_then(|p| Ok((p, send_options(options)?, call_options(call, upload, None)?)));
    let (payloads, opts, call) = match prepared {
        Ok(v) => v,
        Err(e) => return errors::to_js(env, &e),
    };
    let Some(client) = conn.map(|c| c.client.clone()) else {
        let send = async move { one_call::smartsend(&subject, payloads, opts, &call).await };
        return runtime::eager(env, send, convert::sent_to_js);
    };
    // Deferred (core's `smartsend_deferred`): the first send of a burst goes out at once, the ones
    // after it until JS gets back to its event loop are handed over together, by a kick arranged
    // with `setImmediate`.
    let kicker = client.clone();
    let send = async move { one_call::send_on_deferred(&client, &subject, payloads, opts, &call).await };
    runtime::eager(env, send, move |env, (sent, kick)| {
        if kick == Kick::Arrange {
            runtime::arrange_kick(env, kicker)?;
        }
        convert::sent_to_js(env, sent)
    })
}

/// Decodes a message on `conn`, else as core's one-call `smartreceive` (direct payloads need no
/// connection; a download handler fetches links alone).
#[napi(ts_return_type = "[string, Array<unknown>] | Error | Promise<[string, Array<unknown>] | Error>")]
pub fn smartreceive<'env>(
    env: &'env Env,
    msg: Either<Uint8Array, String>,
    arrow_rows: bool,
    conn: Option<&Connection>,
    call: Option<String>,
    download: Option<DownloadFn>,
) -> Result<Unknown<'env>> {
    let call = match call_options(call, None, download) {
        Ok(c) => c,
        Err(e) => return errors::to_js(env, &e),
    };
    let bytes = match msg {
        Either::A(b) => Bytes::from_owner(b),
        Either::B(s) => Bytes::from(s),
    };
    let out = arrow_out(arrow_rows);
    let conn = conn.map(|c| c.client.clone());
    // A message without links (most messages) is decoded right here, as a view of its bytes.
    let direct = match &conn {
        Some(client) => protocol::decode_direct(&bytes, client.receive_limits()),
        None => one_call::smartreceive_now_view(&bytes, &call),
    };
    match direct {
        Ok(Some(view)) => return convert::view_to_js(env, view, out),
        Err(e) => return errors::to_js(env, &e),
        Ok(None) => {}
    }
    runtime::eager(
        env,
        async move {
            let received = match conn {
                Some(c) => c.smartreceive(&bytes).await?,
                None => one_call::smartreceive(&bytes, &call).await?,
            };
            convert::ready(received, out)
        },
        convert::ready_to_js,
    )
}

/// Drains every one-call connection (index.js calls it from `close()` and at `beforeExit`).
#[napi(ts_return_type = "null | Error | Promise<null | Error>")]
pub fn close_shared(env: &Env) -> Result<Unknown<'_>> {
    let clients = one_call::take_shared_clients();
    runtime::eager(
        env,
        async move {
            for c in clients {
                c.drain().await?;
            }
            Ok(())
        },
        |env, ()| Null.into_unknown(env),
    )
}

/// A connection: one NATS connection and the bridge's link stores.
#[napi]
pub struct Connection {
    client: Client,
}

/// Connects with `options` (core's names, durations in milliseconds) and the connection's
/// handlers.
#[napi(ts_return_type = "Connection | Error | Promise<Connection | Error>")]
pub fn connect<'env>(
    env: &'env Env,
    options: Option<String>,
    upload: Option<UploadFn>,
    download: Option<DownloadFn>,
) -> Result<Unknown<'env>> {
    let settings = match settings(options, "connect options") {
        Ok(s) => s,
        Err(e) => return errors::to_js(env, &e),
    };
    let opts = ConnectOptions {
        settings,
        upload_handler: upload.map(handlers::upload),
        download_handler: download.map(handlers::download),
        ..ConnectOptions::default()
    };
    runtime::spawn(env, Client::connect(opts), move |env, client| Connection { client }.into_unknown(env))
}

/// The request a reply answers: the JSON of a received envelope's header (with `reply`).
fn reply_to(request: &str) -> CoreResult<ReplyTo> {
    let value = serde_json::from_str(request)
        .map_err(|_| Error::invalid_argument("the request is a received envelope (an object)"))?;
    ReplyTo::from_json(&value)
}

#[napi]
impl Connection {
    #[napi(getter)]
    pub fn sender_id(&self) -> String {
        self.client.sender_id().to_owned()
    }

    #[napi(getter)]
    pub fn max_payload(&self) -> u32 {
        u32::try_from(self.client.max_payload()).unwrap_or(u32::MAX)
    }

    /// What this connection sent and received (spec/PROTOCOL.md §13.3), as core's JSON text
    /// (the spec's names; `index.js` gives them JS's).
    #[napi]
    pub fn metrics(&self) -> String {
        self.client.metrics().to_json().to_string()
    }

    /// Resolves once the server has the subscription.
    #[napi(ts_return_type = "Subscription | Error | Promise<Subscription | Error>")]
    pub fn subscribe<'env>(
        &self,
        env: &'env Env,
        subject: String,
        queue: Option<String>,
        arrow_rows: bool,
    ) -> Result<Unknown<'env>> {
        let client = self.client.clone();
        runtime::spawn(env, async move { client.subscribe(&subject, queue.as_deref()).await }, move |env, sub| {
            Subscription::new(sub, arrow_out(arrow_rows)).into_unknown(env)
        })
    }

    /// Sends a request and waits up to `timeout` ms (default 5000) for the reply.
    #[napi(ts_return_type = "[string, Array<unknown>] | Error | Promise<[string, Array<unknown>] | Error>")]
    pub fn request<'env>(
        &self,
        env: &'env Env,
        subject: String,
        payloads: Vec<PayloadIn>,
        options: Option<String>,
        timeout: Option<f64>,
        arrow_rows: bool,
    ) -> Result<Unknown<'env>> {
        let prepared = convert::outgoing(payloads).and_then(|p| {
            Ok((p, send_options(options)?, TimeUnit::Millis.duration("timeout", timeout.unwrap_or(5000.0))?))
        });
        let (payloads, opts, timeout) = match prepared {
            Ok(v) => v,
            Err(e) => return errors::to_js(env, &e),
        };
        let client = self.client.clone();
        let out = arrow_out(arrow_rows);
        runtime::spawn(
            env,
            async move { convert::ready(client.request(&subject, payloads, &opts, timeout).await?, out) },
            convert::ready_to_js,
        )
    }

    /// Replies to a received request (core's `Client::reply`); the msg_json published.
    #[napi(
        ts_return_type = "[string, string, Array<unknown>, object?] | Error | Promise<[string, string, Array<unknown>, object?] | Error>"
    )]
    pub fn reply<'env>(
        &self,
        env: &'env Env,
        request: String,
        payloads: Vec<PayloadIn>,
        options: Option<String>,
    ) -> Result<Unknown<'env>> {
        let prepared = reply_to(&request).and_then(|to| Ok((to, convert::outgoing(payloads)?, send_options(options)?)));
        let (to, payloads, opts) = match prepared {
            Ok(v) => v,
            Err(e) => return errors::to_js(env, &e),
        };
        let client = self.client.clone();
        runtime::eager(env, async move { client.reply(&to, payloads, &opts).await }, convert::sent_to_js)
    }

    /// Replies with a NACK carrying `{code, message}`.
    #[napi(
        ts_return_type = "[string, string, Array<unknown>, object?] | Error | Promise<[string, string, Array<unknown>, object?] | Error>"
    )]
    pub fn reply_error<'env>(
        &self,
        env: &'env Env,
        request: String,
        code: String,
        message: String,
    ) -> Result<Unknown<'env>> {
        let prepared = reply_to(&request).and_then(|to| {
            let code = ErrorCode::parse(&code).ok_or_else(|| {
                let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| errors::code_name(*c)).collect();
                Error::invalid_argument(format!("unknown error code {code:?}; the codes are {}", known.join(", ")))
            })?;
            Ok((to, Error::new(code, message)))
        });
        let (to, error) = match prepared {
            Ok(v) => v,
            Err(e) => return errors::to_js(env, &e),
        };
        let client = self.client.clone();
        runtime::eager(env, async move { client.reply_error(&to, &error).await }, convert::sent_to_js)
    }

    /// Creates (or updates) a stream and its dead-letter stream; the summary's JSON text.
    #[napi(ts_return_type = "string | Error | Promise<string | Error>")]
    pub fn add_stream<'env>(&self, env: &'env Env, name: String, options: Option<String>) -> Result<Unknown<'env>> {
        let settings = match durable::stream_settings(&name, options) {
            Ok(s) => s,
            Err(e) => return errors::to_js(env, &e),
        };
        runtime::spawn(env, durable::add_stream(self.client.clone(), settings), durable::text_to_js)
    }

    /// A durable pull consumer on `stream` (created, or updated to these options).
    #[napi(ts_return_type = "Consumer | Error | Promise<Consumer | Error>")]
    pub fn consume<'env>(
        &self,
        env: &'env Env,
        stream: String,
        durable: String,
        options: Option<String>,
        arrow_rows: bool,
    ) -> Result<Unknown<'env>> {
        let opts = match durable::consume_options(options) {
            Ok(o) => o,
            Err(e) => return errors::to_js(env, &e),
        };
        let consumer = durable::consume(self.client.clone(), stream, durable, opts, arrow_out(arrow_rows));
        runtime::spawn(env, consumer, |env, c| c.into_unknown(env))
    }

    /// The sweep of `stream`'s orphaned link objects (`min_age` ms); the report's JSON text.
    #[napi(ts_return_type = "string | Error | Promise<string | Error>")]
    pub fn sweep_links<'env>(
        &self,
        env: &'env Env,
        stream: String,
        dry_run: bool,
        min_age: Option<f64>,
    ) -> Result<Unknown<'env>> {
        let min_age = match durable::min_age(min_age) {
            Ok(m) => m,
            Err(e) => return errors::to_js(env, &e),
        };
        runtime::spawn(env, durable::sweep(self.client.clone(), stream, min_age, dry_run), durable::text_to_js)
    }

    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn flush<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let client = self.client.clone();
        runtime::spawn(env, async move { client.flush().await }, |env, ()| Null.into_unknown(env))
    }

    /// Writes out pending publishes, delivers what is in flight to subscriptions, then closes.
    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn drain<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let client = self.client.clone();
        runtime::spawn(env, async move { client.drain().await }, |env, ()| Null.into_unknown(env))
    }
}

/// `(batch) => void`: a JSON array of finished spans (`natsbridge::io::span_export`).
type SpanSinkFn = napi::threadsafe_function::ThreadsafeFunction<String, (), String, napi::Status, false, true>;

/// Hands core's finished spans to `sink` on the JS thread, in batches; it never keeps the
/// process alive (a weak threadsafe function). A later call replaces the sink.
#[napi(ts_return_type = "null | Error")]
pub fn export_spans(env: &Env, sink: SpanSinkFn) -> Result<Unknown<'_>> {
    let sink = std::sync::Arc::new(move |batch: String| {
        sink.call(batch, napi::threadsafe_function::ThreadsafeFunctionCallMode::NonBlocking);
    });
    match natsbridge::io::span_export::export_spans(sink) {
        Ok(()) => Null.into_unknown(env),
        Err(e) => errors::to_js(env, &e),
    }
}

/// Core's error codes, in core's order.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| errors::code_name(*c)).collect()
}

#[napi]
pub fn payload_types() -> Vec<&'static str> {
    protocol::PayloadType::ALL.iter().map(|t| t.as_str()).collect()
}

#[napi]
pub fn msg_purposes() -> Vec<&'static str> {
    protocol::msg_purpose::ALL.to_vec()
}

/// Every connection option by core's canonical (snake_case) name.
#[napi]
pub fn option_names() -> Vec<&'static str> {
    OptionName::ALL.iter().map(|o| o.as_str()).collect()
}

/// Every per-message option by core's canonical name.
#[napi]
pub fn send_option_names() -> Vec<&'static str> {
    SendOptionName::ALL.iter().map(|o| o.as_str()).collect()
}

/// Every stream setting (`addStream`) by core's canonical name.
#[napi]
pub fn stream_option_names() -> Vec<&'static str> {
    StreamOptionName::ALL.iter().map(|o| o.as_str()).collect()
}

/// Every consumer setting (`consume`) by core's canonical name.
#[napi]
pub fn consume_option_names() -> Vec<&'static str> {
    ConsumeOptionName::ALL.iter().map(|o| o.as_str()).collect()
}

#[napi]
pub const DEFAULT_SIZE_THRESHOLD: u32 = protocol::DEFAULT_SIZE_THRESHOLD as u32;
