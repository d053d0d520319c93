//! The process-wide parts every binding shares: one lazily made tokio runtime that a forked child
//! makes anew, and the seeds' one-call style (`smartsend(subject, data, broker_url=...)`), whose
//! connections are kept per URL and options, made on first use, so it is as fast as passing a
//! connection.

use super::client::{self, Client, smartreceive_direct, smartreceive_with_store};
use super::options::ConnectOptions;
use super::outbox::Kick;
use super::store::{DownloadHandler, HandlerStore, UploadHandler};
use crate::error::Error;
use crate::error::Result;
use crate::protocol::{
    self, Outgoing, ReceiveLimits, ReceivePlan, ReceiveRules, Received, ReceivedView, RetryPolicy, SendOptions, Sent,
    Settings, TimeUnit,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use tokio::runtime::Runtime;

struct Process {
    generation: u64,
    runtime: Option<&'static Runtime>,
    clients: HashMap<Settings, Client>,
}

static PROCESS: Mutex<Option<Process>> = Mutex::new(None);

/// Counts the forks this process descends from: bumped in each forked child, so telling a child
/// from its parent costs an atomic load, not a getpid system call on every send.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Which process this is: it changes in a forked child, and only there.
#[allow(unsafe_code)] // the one FFI call of core: std has no fork hook
pub fn process_generation() -> u64 {
    static WATCH_FORKS: Once = Once::new();
    // SAFETY: registers a handler that only increments an atomic (async-signal-safe).
    WATCH_FORKS.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(forked_child));
    });
    FORK_GENERATION.load(Ordering::SeqCst)
}

/// Runs `f` on this process's state. After a fork the parent's runtime has no threads here: it
/// and its clients are leaked, never dropped (dropping would wait for workers that do not exist).
fn with_process<T>(f: impl FnOnce(&mut Process) -> T) -> T {
    let generation = process_generation();
    let mut guard = PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|p| p.generation != generation) {
        if let Some(parent) = guard.take() {
            std::mem::forget(parent.clients);
        }
        *guard = Some(Process { generation, runtime: None, clients: HashMap::new() });
    }
    f(guard.as_mut().expect("just set"))
}

/// The runtime of a binding that has none of its own (Python, C): made on first use, two worker
/// threads, made anew in a forked child.
pub fn runtime() -> &'static Runtime {
    with_process(|p| {
        *p.runtime.get_or_insert_with(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("natsbridge")
                .enable_all()
                .build()
                .expect("cannot start the tokio runtime");
            Box::leak(Box::new(rt))
        })
    })
}

/// The process-wide client for these settings, connected on first use.
pub async fn shared_client(settings: &Settings) -> Result<Client> {
    if let Some(c) = with_process(|p| p.clients.get(settings).cloned()) {
        return Ok(c);
    }
    // Boxed: connecting is a 12 KB future, and inline it made every one-call send and receive
    // future that size (moved at least once per call), though it runs once per process.
    let client = Box::pin(Client::connect(ConnectOptions { settings: settings.clone(), ..Default::default() })).await?;
    // Two first calls racing both connect; the first stored wins and the other is dropped.
    Ok(with_process(|p| p.clients.entry(settings.clone()).or_insert(client).clone()))
}

/// Forgets every shared client and hands them over (to drain them at exit).
pub fn take_shared_clients() -> Vec<Client> {
    with_process(|p| p.clients.drain().map(|(_, c)| c).collect())
}

/// Where a one-call send or receive goes and what it may use: the seeds' keyword arguments.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// None: `NATS_URL`, else the default.
    pub broker_url: Option<String>,
    /// None: `FILESERVER_URL`. The handlers' first argument and served origin; without an upload
    /// handler, also the file server the shared connection uploads to.
    pub fileserver_url: Option<String>,
    pub upload_handler: Option<UploadHandler>,
    pub download_handler: Option<DownloadHandler>,
    /// Origins the download handler serves besides the file server's.
    pub allowed_origins: Vec<String>,
    /// Given to the download handler.
    pub retry: RetryPolicy,
    /// What a received message may hold.
    pub limits: ReceiveLimits,
}

/// The connection options a one-call send or receive takes besides `broker_url`.
const CALL_SETTINGS: [&str; 11] = [
    "fileserver_url",
    "allowed_origins",
    "max_retries",
    "base_delay",
    "max_delay",
    "max_payloads",
    "max_message_bytes",
    "max_json_depth",
    "max_arrow_columns",
    "max_arrow_batches",
    "max_arrow_values",
];

impl CallOptions {
    /// Takes the one-call options out of a call's options (a binding's keyword arguments as
    /// JSON): `broker_url`, `fileserver_url`, `allowed_origins`, `max_retries`, `base_delay` and
    /// `max_delay`, checked as connection options are. What is left is the message's own options.
    /// The handlers are the binding's to set.
    pub fn take_from(options: &mut Map<String, Value>, unit: TimeUnit) -> Result<CallOptions> {
        if !options.contains_key("broker_url") && !CALL_SETTINGS.iter().any(|name| options.contains_key(*name)) {
            // The common case (a send on a connection): no settings to build.
            return Ok(CallOptions::default());
        }
        let broker_url = match options.remove("broker_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) => Some(url),
            Some(other) => {
                return Err(Error::invalid_argument(format!("option \"broker_url\" needs a string, not {other}")));
            }
        };
        let mut settings = Settings::default();
        for name in CALL_SETTINGS {
            if let Some(value) = options.remove(name) {
                settings.set(name, &value, unit)?;
            }
        }
        Ok(CallOptions {
            broker_url,
            fileserver_url: settings.fileserver_url,
            allowed_origins: settings.allowed_origins,
            retry: settings.retry,
            limits: settings.limits,
            ..CallOptions::default()
        })
    }

    /// The shared connection's settings: the broker and, unless an upload handler takes the
    /// links (its fileserver_url may be any URL), the file server.
    fn settings(&self) -> Settings {
        let mut settings = Settings::default();
        if let Some(url) = &self.broker_url {
            settings.servers = url.split(',').map(|s| s.trim().to_owned()).collect();
        }
        if self.upload_handler.is_none() {
            settings.fileserver_url.clone_from(&self.fileserver_url);
        }
        settings.limits = self.limits;
        settings
    }

    fn fileserver_url(&self) -> Option<String> {
        let settings = Settings { fileserver_url: self.fileserver_url.clone(), ..Settings::default() };
        settings.resolved_fileserver_url()
    }
}

/// `smartsend` without a connection: through the shared one of `call`'s broker; a per-call upload
/// handler takes this message's links.
pub async fn smartsend(subject: &str, payloads: Vec<Outgoing>, opts: SendOptions, call: &CallOptions) -> Result<Sent> {
    let client = shared_client(&call.settings()).await?;
    send_on(&client, subject, payloads, opts, call).await
}

/// `smartsend` on a connection, with a per-call upload handler when `call` has one (its first
/// argument: `call`'s fileserver_url, else the connection's).
pub async fn send_on(
    client: &Client,
    subject: &str,
    payloads: Vec<Outgoing>,
    opts: SendOptions,
    call: &CallOptions,
) -> Result<Sent> {
    client.smartsend(subject, payloads, &call_store(client, opts, call)?).await
}

/// [`send_on`], deferred ([`Client::smartsend_deferred`]).
pub async fn send_on_deferred(
    client: &Client,
    subject: &str,
    payloads: Vec<Outgoing>,
    opts: SendOptions,
    call: &CallOptions,
) -> Result<(Sent, Kick)> {
    client.smartsend_deferred(subject, payloads, &call_store(client, opts, call)?).await
}

fn call_store(client: &Client, mut opts: SendOptions, call: &CallOptions) -> Result<SendOptions> {
    if let Some(handler) = &call.upload_handler {
        opts.link_store = Some(client.upload_handler_store(handler.clone(), call.fileserver_url.as_deref())?);
    }
    Ok(opts)
}

/// The one-call receive of a message that needs no I/O (no links), decoded right here; None
/// when it has links, or a download handler is given.
pub fn smartreceive_now(message: &[u8], call: &CallOptions) -> Result<Option<Received>> {
    if !decodes_now(call) {
        return Ok(None);
    }
    smartreceive_direct(message, &call.limits)
}

/// [`smartreceive_now`] as a view of the message ([`protocol::decode_direct`]), for a host that
/// builds its own objects from it.
pub fn smartreceive_now_view<'a>(message: &'a [u8], call: &CallOptions) -> Result<Option<ReceivedView<'a>>> {
    if !decodes_now(call) {
        return Ok(None);
    }
    protocol::decode_direct(message, &call.limits)
}

/// A download handler's store is checked and used as for any message, so nothing is decoded
/// before it is there.
fn decodes_now(call: &CallOptions) -> bool {
    call.download_handler.is_none()
}

/// `smartreceive` without a connection. With a download handler, links are fetched by it alone
/// and no connection is made; a message of direct payloads needs none either; otherwise links go
/// through the shared connection of `call`'s broker.
pub async fn smartreceive(message: &[u8], call: &CallOptions) -> Result<Received> {
    if let Some(received) = smartreceive_now(message, call)? {
        return Ok(received);
    }
    if let Some(handler) = &call.download_handler {
        let server = call.fileserver_url();
        let store =
            HandlerStore::new(None, Some(handler.clone()), server.as_deref(), &call.allowed_origins, call.retry)?;
        let rules = ReceiveRules { retry: call.retry, limits: call.limits, ..ReceiveRules::default() };
        return smartreceive_with_store(message, &store, rules).await;
    }
    let settings = call.settings();
    // Every link is checked against what the connection could serve before connecting, so a
    // link to `file:///etc/passwd` is URL_NOT_ALLOWED, not a connection failure.
    let opts = ConnectOptions { settings, ..Default::default() };
    let rules = opts.settings.receive_rules(vec![client::link_scopes_before_connecting(&opts)?]);
    ReceivePlan::new(message, &rules.limits)?.step(&rules)?;
    shared_client(&opts.settings).await?.smartreceive(message).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::protocol::{Envelope, PayloadType, link_payload};
    use serde_json::json;

    /// Nothing listens on 127.0.0.1:1, so a receive that connected first would fail with
    /// NATS_CONNECTION_FAILED; a link no store could serve is refused before that.
    #[tokio::test]
    async fn a_link_outside_every_store_is_refused_before_connecting() {
        let call = CallOptions { broker_url: Some("nats://127.0.0.1:1".into()), ..Default::default() };
        let mut env = Envelope::new("s");
        env.payloads.push(link_payload("p", PayloadType::Binary, 10, "file:///etc/passwd".into(), "0".repeat(64)));
        let err = smartreceive(env.to_json().as_bytes(), &call).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::UrlNotAllowed, "{err}");
        env.payloads[0].data = "nats-obj://natsbridge/x".into(); // the object store could serve it
        let err = smartreceive(env.to_json().as_bytes(), &call).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NatsConnectionFailed, "{err}");
    }

    #[test]
    fn call_options_come_out_and_the_rest_stays() {
        let mut map =
            json!({"broker_url": "nats://h:1", "base_delay": 0.25, "allowed_origins": "mem:", "msg_purpose": "event"});
        let call = CallOptions::take_from(map.as_object_mut().unwrap(), TimeUnit::Seconds).unwrap();
        assert_eq!(call.broker_url.as_deref(), Some("nats://h:1"));
        assert_eq!(call.retry.base_delay, std::time::Duration::from_millis(250));
        assert_eq!(call.allowed_origins, ["mem:"]);
        assert_eq!(map, json!({"msg_purpose": "event"}));
        let mut bad = json!({"max_retries": 0});
        let e = CallOptions::take_from(bad.as_object_mut().unwrap(), TimeUnit::Millis).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
    }
}
