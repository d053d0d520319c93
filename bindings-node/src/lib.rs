//! The private napi addon of the `natsbridge` npm package (`native.js` loads it; `index.js` is
//! the public API). It converts types and maps errors; the protocol and all I/O are core's
//! (DESIGN §8).

mod convert;
mod errors;
mod handlers;
mod runtime;
mod subscription;

use bytes::Bytes;
use convert::{ArrowOut, PayloadIn, SendOpts};
use handlers::{Handlers, JsLinkStore};
use napi::bindgen_prelude::{Either, Null, ToNapiValue, Uint8Array, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::store::RetryPolicy;
use natsbridge::io::{BridgeOptions, Client, ConnectOptions, FileServerKind, Received};
use natsbridge::protocol::{self, Envelope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use subscription::Subscription;

/// The addon's own allocations (envelopes, JSON, payload bytes) come from mimalloc: glibc's
/// malloc and free were about 15 % of the CPU time of a 100-byte send + receive loop, much of
/// it the addon's (bench/RESULTS-node.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arrow_out(rows: bool) -> ArrowOut {
    if rows { ArrowOut::Rows } else { ArrowOut::Ipc }
}

/// One-call style: a process-wide client per (broker URL, file server), made on first use.
type SharedKey = (String, Option<String>);
static SHARED: Mutex<Option<HashMap<SharedKey, Client>>> = Mutex::new(None);

async fn shared_client(url: Option<String>, fileserver_url: Option<String>) -> CoreResult<Client> {
    let url = url.unwrap_or_else(|| ConnectOptions::default().resolved_servers().join(","));
    let key = (url, fileserver_url);
    let existing = SHARED.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_default().get(&key).cloned();
    if let Some(c) = existing {
        return Ok(c);
    }
    let mut opts = ConnectOptions::with_server(&key.0);
    opts.bridge.fileserver_url = key.1.clone();
    let client = Client::connect(opts).await?;
    // Two first calls racing both connect; the first stored wins.
    Ok(SHARED.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_default().entry(key).or_insert(client).clone())
}

/// Where a one-call send or receive goes.
#[napi(object)]
#[derive(Default)]
pub struct Target {
    pub broker_url: Option<String>,
    pub fileserver_url: Option<String>,
}

async fn target_client(conn: Option<Client>, target: Option<Target>) -> CoreResult<Client> {
    match conn {
        Some(c) => Ok(c),
        None => {
            let t = target.unwrap_or_default();
            shared_client(t.broker_url, t.fileserver_url).await
        }
    }
}

/// Sends payloads as one envelope; the msg_json string published (an Error object on failure).
#[napi(ts_return_type = "string | Error | Promise<string | Error>")]
pub fn smartsend<'env>(
    env: &'env Env,
    subject: String,
    payloads: Vec<PayloadIn>,
    opts: Option<SendOpts>,
    conn: Option<&Connection>,
    target: Option<Target>,
    handlers: Option<Handlers>,
) -> Result<Unknown<'env>> {
    let (payloads, send) = match message(payloads, opts, handlers) {
        Ok(v) => v,
        Err(e) => return errors::to_js(env, &e),
    };
    let conn = conn.map(|c| c.client.clone());
    runtime::eager(
        env,
        async move {
            let client = target_client(conn, target).await?;
            client.smartsend(&subject, payloads, &send).await
        },
        convert::sent_to_js,
    )
}

/// The payloads and per-message options of a send; a per-call upload handler is the message's
/// link store.
fn message(
    payloads: Vec<PayloadIn>,
    opts: Option<SendOpts>,
    handlers: Option<Handlers>,
) -> CoreResult<(Vec<natsbridge::io::Outgoing>, natsbridge::io::SendOptions)> {
    let payloads = convert::outgoing(payloads)?;
    let mut send = convert::send_options(opts)?;
    if let Some(h) = handlers {
        send.link_store = Some(Arc::new(JsLinkStore::new(h)?));
    }
    Ok((payloads, send))
}

/// Decodes a message. Direct payloads need no connection; links go through `conn`, else the
/// one-call client of `target`.
#[napi(ts_return_type = "Received | Error | Promise<Received | Error>")]
pub fn smartreceive<'env>(
    env: &'env Env,
    msg: Either<Uint8Array, String>,
    arrow_rows: bool,
    conn: Option<&Connection>,
    target: Option<Target>,
    handlers: Option<Handlers>,
) -> Result<Unknown<'env>> {
    let store = match handlers.map(JsLinkStore::new).transpose() {
        Ok(s) => s.filter(JsLinkStore::has_download),
        Err(e) => return errors::to_js(env, &e),
    };
    let bytes = match msg {
        Either::A(b) => Bytes::from_owner(b),
        Either::B(s) => Bytes::from(s),
    };
    let out = arrow_out(arrow_rows);
    let conn = conn.map(|c| c.client.clone());
    runtime::eager(
        env,
        async move {
            let received = if let Some(store) = store {
                let (retry, limit) = (store.retry(), BridgeOptions::default().max_download_bytes);
                natsbridge::io::smartreceive_with_store(&bytes, Arc::new(store), retry, limit).await?
            } else if let Some(c) = conn {
                c.smartreceive(&bytes).await?
            } else if let Some(r) = natsbridge::io::smartreceive_direct(&bytes)? {
                r
            } else {
                target_client(None, target).await?.smartreceive(&bytes).await?
            };
            convert::ready(received, out)
        },
        convert::ready_to_js,
    )
}

/// Drains every one-call client (index.js calls it from `close()` and at `beforeExit`).
#[napi(ts_return_type = "null | Error | Promise<null | Error>")]
pub fn close_shared(env: &Env) -> Result<Unknown<'_>> {
    let clients: Vec<Client> =
        SHARED.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default().into_values().collect();
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

/// Connect options: nats.js's names (index.js maps `tls: {caFile, ...}` and friends), then the
/// bridge's own.
#[napi(object)]
#[derive(Default)]
pub struct ConnectOpts {
    pub servers: Option<Vec<String>>,
    pub name: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// An nkey seed (`SU...`).
    pub nkey: Option<String>,
    pub creds_file: Option<String>,
    pub tls_ca_file: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub tls_required: Option<bool>,
    /// -1: forever.
    pub max_reconnect_attempts: Option<f64>,
    /// Milliseconds, as in nats.js.
    pub reconnect_time_wait: Option<f64>,
    /// Connect timeout in milliseconds (nats.js `timeout`).
    pub timeout: Option<f64>,
    pub pending_limit: Option<f64>,
    pub size_threshold: Option<f64>,
    pub fileserver_url: Option<String>,
    /// "plik" (default) or "http" (PUT/GET).
    pub fileserver_kind: Option<String>,
    pub object_store: Option<bool>,
    pub object_store_bucket: Option<String>,
    pub object_store_ttl: Option<f64>,
    pub allowed_origins: Option<Vec<String>>,
    pub retries: Option<u32>,
    pub base_delay: Option<f64>,
    pub max_delay: Option<f64>,
    pub max_download_bytes: Option<f64>,
    pub sender_name: Option<String>,
    pub sender_id: Option<String>,
}

fn millis(n: f64, what: &str) -> CoreResult<Duration> {
    Duration::try_from_secs_f64(n / 1000.0).map_err(|_| {
        Error::new(ErrorCode::NatsConnectionFailed, format!("{what} must be a number of milliseconds >= 0, not {n}"))
    })
}

fn connect_options(o: ConnectOpts) -> CoreResult<ConnectOptions> {
    let mut c = ConnectOptions {
        servers: o.servers.unwrap_or_default(),
        name: o.name,
        user: o.user,
        password: o.pass,
        token: o.token,
        nkey: o.nkey,
        credentials_file: o.creds_file.map(Into::into),
        tls_ca_file: o.tls_ca_file.map(Into::into),
        tls_cert_file: o.tls_cert_file.map(Into::into),
        tls_key_file: o.tls_key_file.map(Into::into),
        require_tls: o.tls_required.unwrap_or(false),
        ..ConnectOptions::default()
    };
    if let Some(n) = o.max_reconnect_attempts {
        c.max_reconnects = if n < 0.0 { None } else { Some(n as usize) };
    }
    if let Some(ms) = o.reconnect_time_wait {
        c.reconnect_time_wait = millis(ms, "reconnectTimeWait")?;
    }
    if let Some(ms) = o.timeout {
        c.connect_timeout = millis(ms, "timeout")?;
    }
    if let Some(n) = o.pending_limit {
        c.subscription_capacity = convert::byte_count(n)?.max(1);
    }
    let b = &mut c.bridge;
    b.size_threshold = o.size_threshold.map(convert::byte_count).transpose()?;
    b.fileserver_url = o.fileserver_url;
    b.fileserver_kind = match o.fileserver_kind.as_deref() {
        None | Some("plik") => FileServerKind::Plik,
        Some("http") => FileServerKind::HttpPut,
        Some(other) => {
            return Err(Error::new(
                ErrorCode::UrlNotAllowed,
                format!("fileserverKind must be \"plik\" or \"http\", not {other:?}"),
            ));
        }
    };
    if let Some(v) = o.object_store {
        b.object_store = v;
    }
    if let Some(v) = o.object_store_bucket {
        b.object_store_bucket = v;
    }
    if let Some(ms) = o.object_store_ttl {
        b.object_store_ttl = millis(ms, "objectStoreTtl")?;
    }
    b.allowed_origins = o.allowed_origins.unwrap_or_default();
    b.retry = retry_policy(o.retries, o.base_delay, o.max_delay)?;
    if let Some(n) = o.max_download_bytes {
        b.max_download_bytes = convert::byte_count(n)? as u64;
    }
    b.sender_name = o.sender_name.unwrap_or_default();
    b.sender_id = o.sender_id;
    Ok(c)
}

pub(crate) fn retry_policy(retries: Option<u32>, base: Option<f64>, max: Option<f64>) -> CoreResult<RetryPolicy> {
    let mut r = RetryPolicy::default();
    if let Some(n) = retries {
        r.retries = n;
    }
    if let Some(ms) = base {
        r.base_delay = millis(ms, "baseDelay")?;
    }
    if let Some(ms) = max {
        r.max_delay = millis(ms, "maxDelay")?;
    }
    Ok(r)
}

/// A connection: one NATS connection and the bridge's link stores.
#[napi]
pub struct Connection {
    client: Client,
}

#[napi(ts_return_type = "Connection | Error | Promise<Connection | Error>")]
pub fn connect<'env>(env: &'env Env, opts: Option<ConnectOpts>, handlers: Option<Handlers>) -> Result<Unknown<'env>> {
    let opts = connect_options(opts.unwrap_or_default()).and_then(|mut o| {
        if let Some(h) = handlers {
            install_handlers(&mut o.bridge, h)?;
        }
        Ok(o)
    });
    let opts = match opts {
        Ok(v) => v,
        Err(e) => return errors::to_js(env, &e),
    };
    runtime::spawn(env, Client::connect(opts), move |env, client| Connection { client }.into_unknown(env))
}

/// The connection-wide handlers as core's custom store, which core asks first. The download
/// handler serves the file server's origin and the allowed origins (core then needs no stores
/// of its own for those); without one, core keeps the allowed origins. With an upload handler,
/// `fileserverUrl` is only the handler's argument unless it is http(s) (core's Plik store then
/// serves downloads the handler does not).
fn install_handlers(b: &mut BridgeOptions, mut h: Handlers) -> CoreResult<()> {
    h.fileserver_url = h.fileserver_url.or_else(|| b.resolved_fileserver_url());
    if h.allowed_origins.is_none() {
        h.allowed_origins = Some(b.allowed_origins.clone());
    }
    h.retries = h.retries.or(Some(b.retry.retries));
    h.base_delay = h.base_delay.or(Some(b.retry.base_delay.as_secs_f64() * 1000.0));
    h.max_delay = h.max_delay.or(Some(b.retry.max_delay.as_secs_f64() * 1000.0));
    let is_http = |u: &str| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    // Some(""): no file server store in core (and no FILESERVER_URL lookup either).
    b.fileserver_url = Some(h.fileserver_url.clone().filter(|u| is_http(u)).unwrap_or_default());
    let store = JsLinkStore::new(h)?;
    if store.has_download() {
        b.allowed_origins.clear();
    }
    b.link_store = Some(Arc::new(store));
    Ok(())
}

/// Request options: the per-message ones and a timeout in milliseconds.
fn timeout_ms(ms: Option<f64>) -> CoreResult<Duration> {
    millis(ms.unwrap_or(5000.0), "timeout")
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

    #[napi(ts_return_type = "Received | Error | Promise<Received | Error>")]
    pub fn request<'env>(
        &self,
        env: &'env Env,
        subject: String,
        payloads: Vec<PayloadIn>,
        opts: Option<SendOpts>,
        timeout: Option<f64>,
        arrow_rows: bool,
    ) -> Result<Unknown<'env>> {
        let prepared = message(payloads, opts, None).and_then(|(p, o)| Ok((p, o, timeout_ms(timeout)?)));
        let (payloads, send, timeout) = match prepared {
            Ok(v) => v,
            Err(e) => return errors::to_js(env, &e),
        };
        let client = self.client.clone();
        let out = arrow_out(arrow_rows);
        runtime::spawn(
            env,
            async move { convert::ready(client.request(&subject, payloads, &send, timeout).await?, out) },
            convert::ready_to_js,
        )
    }

    /// Replies to a received request (see core's `Client::reply`); the msg_json published.
    #[napi(ts_return_type = "string | Error | Promise<string | Error>")]
    pub fn reply<'env>(
        &self,
        env: &'env Env,
        to: ReplyTo,
        payloads: Vec<PayloadIn>,
        opts: Option<SendOpts>,
    ) -> Result<Unknown<'env>> {
        let (payloads, send) = match message(payloads, opts, None) {
            Ok(v) => v,
            Err(e) => return errors::to_js(env, &e),
        };
        let client = self.client.clone();
        let to = to.received();
        runtime::eager(env, async move { client.reply(&to, payloads, &send).await }, convert::sent_to_js)
    }

    /// Replies with a NACK carrying `{code, message}`.
    #[napi(ts_return_type = "string | Error | Promise<string | Error>")]
    pub fn reply_error<'env>(
        &self,
        env: &'env Env,
        to: ReplyTo,
        code: String,
        message: String,
    ) -> Result<Unknown<'env>> {
        let Some(code) = ErrorCode::parse(&code) else {
            let known = ErrorCode::ALL.map(errors::code_name).join(", ");
            return errors::to_js(
                env,
                &Error::new(ErrorCode::InvalidEnvelope, format!("unknown error code {code:?}; one of {known}")),
            );
        };
        let client = self.client.clone();
        let to = to.received();
        let error = Error::new(code, message);
        runtime::eager(env, async move { client.reply_error(&to, &error).await }, convert::sent_to_js)
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

/// What a reply needs of the request envelope (index.js passes the received env's fields).
#[napi(object)]
pub struct ReplyTo {
    pub correlation_id: String,
    pub msg_id: Option<String>,
    pub send_to: Option<String>,
    pub sender_name: Option<String>,
    pub sender_id: Option<String>,
    pub reply_to: Option<String>,
    pub subject: Option<String>,
    pub reply: Option<String>,
}

impl ReplyTo {
    fn received(self) -> Received {
        let envelope = Envelope {
            correlation_id: self.correlation_id,
            msg_id: self.msg_id.unwrap_or_default(),
            send_to: self.send_to.unwrap_or_default(),
            sender_name: self.sender_name.unwrap_or_default(),
            sender_id: self.sender_id.unwrap_or_default(),
            reply_to: self.reply_to.unwrap_or_default(),
            ..Envelope::default()
        };
        Received { envelope, payloads: Vec::new(), subject: self.subject, reply: self.reply }
    }
}

/// Core's error codes, in core's order.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.map(errors::code_name).to_vec()
}

#[napi]
pub fn payload_types() -> Vec<&'static str> {
    protocol::PayloadType::ALL.map(|t| t.as_str()).to_vec()
}

#[napi]
pub fn msg_purposes() -> Vec<&'static str> {
    protocol::msg_purpose::ALL.to_vec()
}

#[napi]
pub const DEFAULT_SIZE_THRESHOLD: u32 = protocol::DEFAULT_SIZE_THRESHOLD as u32;
