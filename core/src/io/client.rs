//! The NATSBridge client: one NATS connection, the link stores, and smartsend / smartreceive /
//! subscribe / request built on them.

use super::options::{BridgeOptions, ConnectOptions, FileServerKind, SendOptions};
use super::store::{self, Fetch, LinkStore, Upload, http::HttpStore, objstore::ObjectStoreLink, plik::PlikStore};
use crate::error::{Error, ErrorCode, Result, err};
use crate::protocol::{
    self, Data, DecodedPayload, Envelope, ErrorBody, PayloadSource, PayloadType, Transport, WirePayload,
};
use async_nats::Subject;
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// One payload to send: the seeds' `(dataname, data, payload_type)`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub dataname: String,
    pub payload_type: PayloadType,
    pub data: Data,
}

impl Outgoing {
    pub fn new(dataname: impl Into<String>, data: Data, payload_type: PayloadType) -> Self {
        Outgoing { dataname: dataname.into(), payload_type, data }
    }
}

/// A received payload: the seeds' `(dataname, data, payload_type)`, plus how it travelled.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub dataname: String,
    pub payload_type: PayloadType,
    pub data: Data,
    pub transport: Transport,
}

/// A decoded message. `envelope.payloads` keeps the wire payloads (ids, metadata, URLs);
/// `payloads` holds the decoded values in the same order.
#[derive(Clone, Debug)]
pub struct Received {
    pub envelope: Envelope,
    pub payloads: Vec<Incoming>,
    /// The subject the message arrived on (None when decoded from bytes).
    pub subject: Option<String>,
    /// The NATS reply subject of the message, if it had one.
    pub reply: Option<String>,
}

/// What `smartsend` returns: the envelope and the exact JSON published.
#[derive(Clone, Debug)]
pub struct Sent {
    pub envelope: Envelope,
    /// UTF-8 JSON; kept as `Bytes` so publishing shares it instead of copying.
    pub json: Bytes,
}

impl Sent {
    fn new(envelope: Envelope) -> Sent {
        let json = Bytes::from(envelope.to_json());
        Sent { envelope, json }
    }

    pub fn json_str(&self) -> &str {
        std::str::from_utf8(&self.json).expect("envelope JSON is UTF-8")
    }
}

struct Inner {
    nats: async_nats::Client,
    broker_url: String,
    sender_id: String,
    sender_name: String,
    threshold: usize,
    /// Where uploads go, in order of preference: custom store, file server, object store.
    upload_store: Option<Arc<dyn LinkStore>>,
    /// Every store downloads may come from; a link no store serves is refused.
    stores: Vec<Arc<dyn LinkStore>>,
    retry: store::RetryPolicy,
    max_download_bytes: u64,
    transfer_progress: Option<store::Progress>,
    slow_consumer_drops: Arc<AtomicU64>,
    /// The server's max_payload, read from INFO again after each (re)connect: `server_info()`
    /// clones the whole INFO, too much for every send.
    max_payload: AtomicUsize,
    info_stale: Arc<AtomicBool>,
    replies: tokio::sync::OnceCell<Arc<Replies>>,
    /// Set by `drain`: async-nats may accept a publish after its drain and never write it, so
    /// the client refuses sends and subscribes from then on instead of losing them.
    drained: AtomicBool,
}

/// A connected client. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

fn connection_failed(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::NatsConnectionFailed, e.to_string())
}

impl Client {
    pub async fn connect(opts: ConnectOptions) -> Result<Client> {
        let servers = opts.resolved_servers();
        let addrs = servers
            .iter()
            .map(|s| {
                s.parse::<async_nats::ServerAddr>().map_err(|e| connection_failed(format!("bad server URL {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let drops = Arc::new(AtomicU64::new(0));
        let info_stale = Arc::new(AtomicBool::new(false));
        let nats = nats_options(&opts, drops.clone(), info_stale.clone())
            .await?
            .connect(addrs)
            .await
            .map_err(|e| connection_failed(format!("cannot connect to {}: {e}", servers.join(", "))))?;
        let bridge = &opts.bridge;
        let (upload_store, stores) = link_stores(bridge, &nats)?;
        let max_payload = nats.server_info().max_payload;
        Ok(Client {
            inner: Arc::new(Inner {
                broker_url: servers.join(","),
                sender_id: bridge.sender_id.clone().unwrap_or_else(protocol::new_id),
                sender_name: bridge.sender_name.clone(),
                threshold: bridge.resolved_threshold()?,
                upload_store,
                stores,
                retry: bridge.retry,
                max_download_bytes: bridge.max_download_bytes,
                transfer_progress: bridge.transfer_progress.clone(),
                slow_consumer_drops: drops,
                max_payload: AtomicUsize::new(max_payload),
                drained: AtomicBool::new(false),
                info_stale,
                replies: tokio::sync::OnceCell::new(),
                nats,
            }),
        })
    }

    /// The underlying async-nats client, for anything the bridge does not wrap.
    pub fn nats(&self) -> &async_nats::Client {
        &self.inner.nats
    }

    /// The server's max_payload, from its INFO.
    pub fn max_payload(&self) -> usize {
        if self.inner.info_stale.swap(false, Ordering::Relaxed) {
            self.inner.max_payload.store(self.inner.nats.server_info().max_payload, Ordering::Relaxed);
        }
        self.inner.max_payload.load(Ordering::Relaxed)
    }

    /// Messages reported dropped by slow-consumer events since connect.
    pub fn slow_consumer_drops(&self) -> u64 {
        self.inner.slow_consumer_drops.load(Ordering::Relaxed)
    }

    pub fn sender_id(&self) -> &str {
        &self.inner.sender_id
    }

    /// Serializes the payloads, moves large ones to the link store, and publishes the envelope.
    pub async fn smartsend(&self, subject: &str, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        let sent = self.build(subject, payloads, opts).await?;
        self.publish(subject, &sent, None).await?;
        Ok(sent)
    }

    /// NATS_CONNECTION_FAILED once the client was drained (or closed, which drains).
    fn ensure_open(&self) -> Result<()> {
        if self.inner.drained.load(Ordering::Acquire) {
            return err(ErrorCode::NatsConnectionFailed, "the connection was drained (closed); connect again");
        }
        Ok(())
    }

    async fn publish(&self, subject: &str, sent: &Sent, reply: Option<&str>) -> Result<()> {
        self.ensure_open().map_err(|e| e.with_correlation_id(&sent.envelope.correlation_id))?;
        let body = sent.json.clone();
        let result = match reply {
            Some(r) => self.inner.nats.publish_with_reply(subject.to_owned(), r.to_owned(), body).await,
            None => self.inner.nats.publish(subject.to_owned(), body).await,
        };
        result.map_err(|e| {
            connection_failed(format!("publish to {subject:?} failed: {e}"))
                .with_correlation_id(&sent.envelope.correlation_id)
        })
    }

    /// Builds the envelope (uploading link payloads) without publishing it.
    pub async fn build(&self, subject: &str, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        let mut env = Envelope::new(subject);
        self.fill_header(&mut env, opts);
        let cid = env.correlation_id.clone();
        self.ensure_open().map_err(|e| e.with_correlation_id(&cid))?;
        self.build_payloads(env, payloads, opts).await.map_err(|e| e.with_correlation_id(&cid))
    }

    fn fill_header(&self, env: &mut Envelope, opts: &SendOptions) {
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                field.clone_from(v);
            }
        };
        set(&mut env.correlation_id, &opts.correlation_id);
        set(&mut env.msg_purpose, &opts.msg_purpose);
        env.sender_name = opts.sender_name.clone().unwrap_or_else(|| self.inner.sender_name.clone());
        env.sender_id = opts.sender_id.clone().unwrap_or_else(|| self.inner.sender_id.clone());
        set(&mut env.receiver_name, &opts.receiver_name);
        set(&mut env.receiver_id, &opts.receiver_id);
        set(&mut env.reply_to, &opts.reply_to);
        set(&mut env.reply_to_msg_id, &opts.reply_to_msg_id);
        env.broker_url.clone_from(&self.inner.broker_url);
        env.metadata = opts.metadata.clone();
    }

    async fn build_payloads(&self, mut env: Envelope, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        let cid = env.correlation_id.clone();
        let threshold = opts.size_threshold.unwrap_or(self.inner.threshold);
        let max_payload = self.max_payload();
        let store = opts.link_store.clone().or_else(|| self.inner.upload_store.clone());

        let serialized = payloads
            .iter()
            .map(|p| protocol::serialize(&p.dataname, p.payload_type, &p.data))
            .collect::<Result<Vec<Bytes>>>()?;
        let sizes: Vec<usize> = serialized.iter().map(Bytes::len).collect();
        let mut plan: Vec<Transport> = sizes.iter().map(|&s| protocol::transport_for_size(s, threshold)).collect();
        let mut wire: Vec<Option<WirePayload>> = vec![None; payloads.len()];

        // Threshold links first, uploaded concurrently. A failed upload falls back to direct
        // (the envelope-size check below then decides whether that still fits).
        let uploads =
            plan.iter().enumerate().filter(|(_, t)| **t == Transport::Link).map(|(i, _)| i).collect::<Vec<_>>();
        let results = futures::future::join_all(
            uploads.iter().map(|&i| self.upload(store.as_deref(), &payloads[i], serialized[i].clone(), &cid)),
        )
        .await;
        let mut last_upload_error = None;
        for (&i, result) in uploads.iter().zip(results) {
            match result {
                Ok(p) => wire[i] = Some(p),
                Err(e) => {
                    tracing::warn!(correlation_id = %cid, dataname = %payloads[i].dataname, error = %e, "upload failed; trying direct transport");
                    plan[i] = Transport::Direct;
                    last_upload_error = Some(e);
                }
            }
        }

        loop {
            env.payloads = plan
                .iter()
                .enumerate()
                .map(|(i, t)| match (t, &wire[i]) {
                    (Transport::Link, Some(p)) => p.clone(),
                    _ => {
                        protocol::direct_payload(&payloads[i].dataname, payloads[i].payload_type, &serialized[i], false)
                    }
                })
                .collect();
            let sent = Sent::new(env);
            if sent.json.len() <= max_payload {
                tracing::debug!(correlation_id = %cid, bytes = sent.json.len(), payloads = plan.len(), "envelope built");
                return Ok(sent);
            }
            let json_len = sent.json.len();
            env = sent.envelope;
            let too_large = |why: String| {
                Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the envelope is {json_len} bytes, over the server's max_payload of {max_payload}; {why}"),
                )
            };
            let Some(i) = protocol::largest_direct(&plan, &sizes) else {
                return Err(too_large("every payload is already a link".into()));
            };
            if let Some(e) = last_upload_error.take() {
                return Err(Error::new(
                    ErrorCode::UploadFailed,
                    format!("{}; direct transport does not fit either", e.message),
                ));
            }
            if store.is_none() {
                return Err(too_large("no link store is configured (set fileserver_url or enable JetStream)".into()));
            }
            wire[i] = Some(self.upload(store.as_deref(), &payloads[i], serialized[i].clone(), &cid).await?);
            plan[i] = Transport::Link;
        }
    }

    async fn upload(
        &self,
        store: Option<&dyn LinkStore>,
        p: &Outgoing,
        bytes: Bytes,
        cid: &str,
    ) -> Result<WirePayload> {
        let Some(store) = store else {
            return err(ErrorCode::UploadFailed, "no link store is configured");
        };
        let size = bytes.len();
        tracing::debug!(correlation_id = %cid, dataname = %p.dataname, size, "uploading link payload");
        let upload = store.upload(Upload {
            dataname: &p.dataname,
            bytes: bytes.clone(),
            correlation_id: cid,
            progress: self.inner.transfer_progress.clone(),
        });
        let (url, sha256) = if store.checks_sha256() {
            let stored = upload.await?;
            let sha256 = match stored.sha256 {
                Some(s) => s,
                None => protocol::sha256_hex(&bytes),
            };
            (stored.url, sha256)
        } else {
            // Hash on another thread while the bytes travel.
            let hashing = tokio::task::spawn_blocking(move || protocol::sha256_hex(&bytes));
            let (stored, sha256) = futures::future::join(upload, hashing).await;
            let sha256 = sha256.map_err(|e| Error::new(ErrorCode::UploadFailed, format!("hashing stopped: {e}")))?;
            (stored?.url, sha256)
        };
        Ok(protocol::link_payload(&p.dataname, p.payload_type, size, url, sha256))
    }

    /// Decodes a message: checks the envelope, fetches links (allowed origins only, with
    /// backoff), verifies size and sha256, and deserializes every payload in order.
    /// `envelope.payloads` keeps each wire payload's fields; a direct payload's inline `data` is
    /// not kept (null): its decoded value is in `payloads`.
    pub async fn smartreceive(&self, message: &[u8]) -> Result<Received> {
        let links = Links {
            stores: &self.inner.stores,
            retry: self.inner.retry,
            max_download_bytes: self.inner.max_download_bytes,
            progress: self.inner.transfer_progress.as_ref(),
        };
        receive(message, &links).await
    }

    /// Subscribes and returns once the server has the subscription, so a publish made after
    /// this returns is delivered to it.
    pub async fn subscribe(&self, subject: &str, queue_group: Option<&str>) -> Result<Subscription> {
        self.ensure_open()?;
        let nats = &self.inner.nats;
        let sub = match queue_group {
            Some(q) => nats.queue_subscribe(subject.to_owned(), q.to_owned()).await,
            None => nats.subscribe(subject.to_owned()).await,
        }
        .map_err(|e| connection_failed(format!("subscribe to {subject:?} failed: {e}")))?;
        self.server_round_trip().await?;
        Ok(Subscription { client: self.clone(), sub })
    }

    /// Waits until the server has processed everything this connection sent before. async-nats'
    /// `flush()` only drains the client's buffer, so this echoes a message through the server.
    async fn server_round_trip(&self) -> Result<()> {
        let nats = &self.inner.nats;
        let inbox = nats.new_inbox();
        let mut echo = nats.subscribe(inbox.clone()).await.map_err(connection_failed)?;
        nats.publish(inbox, Bytes::new()).await.map_err(connection_failed)?;
        match tokio::time::timeout(Duration::from_secs(10), echo.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => err(ErrorCode::NatsConnectionFailed, "connection closed while subscribing"),
            Err(_) => err(ErrorCode::Timeout, "the server did not confirm the subscription within 10 s"),
        }
    }

    /// Sends a request envelope and waits for one reply. A NACK reply becomes its error.
    pub async fn request(
        &self,
        subject: &str,
        payloads: Vec<Outgoing>,
        opts: &SendOptions,
        timeout: Duration,
    ) -> Result<Received> {
        let replies = self.replies().await?;
        let (inbox, reply) = replies.expect();
        let mut opts = opts.clone();
        opts.reply_to = Some(inbox.clone());
        let sent = self.build(subject, payloads, &opts).await?;
        let cid = sent.envelope.correlation_id.clone();
        self.publish(subject, &sent, Some(&inbox)).await?;
        let message = match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(m)) => m,
            Ok(Err(_)) => {
                return Err(Error::new(ErrorCode::NatsConnectionFailed, "connection closed awaiting a reply")
                    .with_correlation_id(&cid));
            }
            Err(_) => {
                replies.forget(&inbox);
                return Err(Error::new(ErrorCode::Timeout, format!("no reply on {subject:?} within {timeout:?}"))
                    .with_correlation_id(&cid));
            }
        };
        if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Err(
                Error::new(ErrorCode::Timeout, format!("no responders on {subject:?}")).with_correlation_id(&cid)
            );
        }
        let received = self.smartreceive(&message.payload).await?;
        match received.envelope.error_reply() {
            Some(e) => Err(e),
            None => Ok(received),
        }
    }

    /// The client's one reply subscription (`<inbox>.*`), made on the first request: a
    /// subscribe/unsubscribe pair per request cost a third of the round-trip time.
    async fn replies(&self) -> Result<&Arc<Replies>> {
        self.inner
            .replies
            .get_or_try_init(|| async {
                let nats = &self.inner.nats;
                let prefix = nats.new_inbox();
                let mut sub = nats.subscribe(format!("{prefix}.*")).await.map_err(connection_failed)?;
                let replies = Arc::new(Replies {
                    prefix,
                    pending: Default::default(),
                    next: AtomicU64::new(0),
                    router: std::sync::OnceLock::new(),
                });
                let router = replies.clone();
                let task = tokio::spawn(async move {
                    while let Some(message) = sub.next().await {
                        let waiter = router.pending.lock().expect("not poisoned").remove(message.subject.as_str());
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(message);
                        }
                    }
                });
                replies.router.set(task.abort_handle()).expect("set once");
                Ok(replies)
            })
            .await
    }

    /// Replies to a received request: msg_purpose ACK unless set, same correlation id,
    /// reply_to_msg_id = the request's msg_id, sent to its reply_to (or NATS reply subject).
    pub async fn reply(&self, to: &Received, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        let subject = reply_subject(to)?;
        let mut opts = opts.clone();
        opts.correlation_id.get_or_insert_with(|| to.envelope.correlation_id.clone());
        opts.reply_to_msg_id.get_or_insert_with(|| to.envelope.msg_id.clone());
        opts.msg_purpose.get_or_insert_with(|| protocol::msg_purpose::ACK.to_owned());
        opts.receiver_name.get_or_insert_with(|| to.envelope.sender_name.clone());
        opts.receiver_id.get_or_insert_with(|| to.envelope.sender_id.clone());
        self.smartsend(&subject, payloads, &opts).await
    }

    /// Replies with a NACK carrying `error` as `{code, message, details}`.
    pub async fn reply_error(&self, to: &Received, error: &Error) -> Result<Sent> {
        let subject = reply_subject(to)?;
        let opts = SendOptions {
            correlation_id: Some(to.envelope.correlation_id.clone()),
            reply_to_msg_id: Some(to.envelope.msg_id.clone()),
            msg_purpose: Some(protocol::msg_purpose::NACK.to_owned()),
            receiver_name: Some(to.envelope.sender_name.clone()),
            receiver_id: Some(to.envelope.sender_id.clone()),
            ..Default::default()
        };
        let mut built = self.build(&subject, Vec::new(), &opts).await?;
        built.envelope.error = Some(ErrorBody {
            code: error.code.as_str().to_owned(),
            message: error.message.clone(),
            details: serde_json::json!({ "correlation_id": to.envelope.correlation_id }),
        });
        let sent = Sent::new(built.envelope);
        self.publish(&subject, &sent, None).await?;
        Ok(sent)
    }

    /// Publishes what is buffered and waits until it is written.
    pub async fn flush(&self) -> Result<()> {
        self.inner.nats.flush().await.map_err(connection_failed)
    }

    /// Writes out pending publishes, unsubscribes everything after delivering what is in
    /// flight, then closes. (async-nats' drain alone can close before buffered publishes are
    /// written: a send-then-drain script lost 1 message in 20.)
    pub async fn drain(&self) -> Result<()> {
        self.inner.drained.store(true, Ordering::Release);
        self.flush().await?;
        self.inner.nats.drain().await.map_err(connection_failed)
    }
}

/// Where a receive may fetch link payloads from, and its limits.
struct Links<'a> {
    stores: &'a [Arc<dyn LinkStore>],
    retry: store::RetryPolicy,
    max_download_bytes: u64,
    progress: Option<&'a store::Progress>,
}

async fn receive(message: &[u8], links: &Links<'_>) -> Result<Received> {
    let (envelope, decoded) = protocol::decode_message(message)?;
    let cid = envelope.correlation_id.clone();
    // Links are fetched concurrently; a message without links needs no futures at all.
    let fetches = decoded.iter().filter_map(|p| match &p.source {
        PayloadSource::Link(url) => Some(fetch_link(links, p, url, &cid)),
        PayloadSource::Inline(_) => None,
    });
    let fetched = futures::future::join_all(fetches).await;
    assemble(envelope, decoded, fetched).map_err(|e| e.with_correlation_id(&cid))
}

/// Allowed origin (no request otherwise), download cap, retries, then size and sha256.
async fn fetch_link(links: &Links<'_>, p: &DecodedPayload, url: &str, correlation_id: &str) -> Result<Bytes> {
    let Some(store) = links.stores.iter().find(|s| s.serves(url)) else {
        return err(
            ErrorCode::UrlNotAllowed,
            format!("payload {:?} links to {url}, which is not an allowed origin; no request was made", p.dataname),
        );
    };
    if p.size > links.max_download_bytes {
        return err(
            ErrorCode::PayloadTooLarge,
            format!(
                "payload {:?} is {} bytes, over the download limit of {}",
                p.dataname, p.size, links.max_download_bytes
            ),
        );
    }
    let fetch = Fetch { url, size: p.size, sha256: p.sha256.as_deref(), correlation_id, progress: links.progress };
    let bytes = store::download_with_retry(store.as_ref(), fetch, links.retry).await?;
    if store.checks_sha256() {
        p.verify_size(&bytes)?;
    } else {
        p.verify(&bytes)?;
    }
    Ok(bytes)
}

/// Decodes a message whose links are fetched from `store` alone (a host's download handler
/// for one call), with no NATS connection.
pub async fn smartreceive_with_store(
    message: &[u8],
    store: Arc<dyn LinkStore>,
    retry: store::RetryPolicy,
    max_download_bytes: u64,
) -> Result<Received> {
    receive(message, &Links { stores: &[store], retry, max_download_bytes, progress: None }).await
}

/// Decodes a message whose payloads are all direct, without a connection. `Ok(None)` when it
/// has link payloads: those need a client's link stores (`Client::smartreceive`).
pub fn smartreceive_direct(message: &[u8]) -> Result<Option<Received>> {
    let (envelope, decoded) = protocol::decode_message(message)?;
    if decoded.iter().any(|p| matches!(p.source, PayloadSource::Link(_))) {
        return Ok(None);
    }
    let cid = envelope.correlation_id.clone();
    assemble(envelope, decoded, Vec::new()).map(Some).map_err(|e| e.with_correlation_id(&cid))
}

/// The decoded payloads in envelope order; `fetched` holds each link payload's bytes in turn.
fn assemble(envelope: Envelope, decoded: Vec<DecodedPayload>, fetched: Vec<Result<Bytes>>) -> Result<Received> {
    let mut fetched = fetched.into_iter();
    let mut payloads = Vec::with_capacity(decoded.len());
    for p in decoded {
        let (transport, bytes) = match p.source {
            PayloadSource::Inline(bytes) => (Transport::Direct, bytes),
            PayloadSource::Link(_) => (Transport::Link, fetched.next().expect("one result per link")?),
        };
        let data = protocol::deserialize(p.payload_type, bytes)?;
        payloads.push(Incoming { dataname: p.dataname, payload_type: p.payload_type, data, transport });
    }
    Ok(Received { envelope, payloads, subject: None, reply: None })
}

/// async-nats options from ours. Slow-consumer events are counted in `drops`; a (re)connect
/// marks the cached INFO stale.
async fn nats_options(
    opts: &ConnectOptions,
    drops: Arc<AtomicU64>,
    info_stale: Arc<AtomicBool>,
) -> Result<async_nats::ConnectOptions> {
    let wait = opts.reconnect_time_wait;
    let mut o = async_nats::ConnectOptions::new()
        .connection_timeout(opts.connect_timeout)
        .subscription_capacity(opts.subscription_capacity)
        .max_reconnects(opts.max_reconnects)
        .reconnect_delay_callback(move |attempts| if attempts <= 1 { Duration::ZERO } else { wait })
        .event_callback(move |event| {
            let (drops, stale) = (drops.clone(), info_stale.clone());
            async move {
                match event {
                    async_nats::Event::Connected => stale.store(true, Ordering::Relaxed),
                    async_nats::Event::SlowConsumer(sid) => {
                        drops.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            sid,
                            "slow consumer: the server or client dropped messages for this subscription"
                        );
                    }
                    other => tracing::debug!(event = %other, "nats connection event"),
                }
            }
        });
    if let Some(name) = &opts.name {
        o = o.name(name);
    }
    match (&opts.user, &opts.password) {
        (Some(u), Some(p)) => o = o.user_and_password(u.clone(), p.clone()),
        (Some(_), None) | (None, Some(_)) => {
            return err(ErrorCode::NatsConnectionFailed, "user and password must be given together");
        }
        (None, None) => {}
    }
    if let Some(t) = &opts.token {
        o = o.token(t.clone());
    }
    if let Some(seed) = &opts.nkey {
        o = o.nkey(seed.clone());
    }
    if let Some(path) = &opts.credentials_file {
        o = o.credentials_file(path).await.map_err(connection_failed)?;
    }
    if let Some(ca) = &opts.tls_ca_file {
        o = o.add_root_certificates(ca.clone());
    }
    match (&opts.tls_cert_file, &opts.tls_key_file) {
        (Some(c), Some(k)) => o = o.add_client_certificate(c.clone(), k.clone()),
        (None, None) => {}
        _ => return err(ErrorCode::NatsConnectionFailed, "tls_cert_file and tls_key_file must be given together"),
    }
    if opts.require_tls {
        o = o.require_tls(true);
    }
    Ok(o)
}

type Stores = (Option<Arc<dyn LinkStore>>, Vec<Arc<dyn LinkStore>>);

/// The store uploads go to (custom, else file server, else object store) and every store
/// downloads may come from.
fn link_stores(bridge: &BridgeOptions, nats: &async_nats::Client) -> Result<Stores> {
    let mut stores: Vec<Arc<dyn LinkStore>> = Vec::new();
    let mut upload_store: Option<Arc<dyn LinkStore>> = None;
    let mut add = |store: Arc<dyn LinkStore>, takes_uploads: bool| {
        if takes_uploads && upload_store.is_none() {
            upload_store = Some(store.clone());
        }
        stores.push(store);
    };
    if let Some(custom) = &bridge.link_store {
        add(custom.clone(), custom.takes_uploads());
    }
    if let Some(url) = bridge.resolved_fileserver_url() {
        match bridge.fileserver_kind {
            FileServerKind::Plik => add(Arc::new(PlikStore::new(&url, bridge.plik.clone())?), true),
            FileServerKind::HttpPut => add(Arc::new(HttpStore::new(&url)?), true),
        }
    }
    for origin in &bridge.allowed_origins {
        add(Arc::new(HttpStore::new(origin)?), false);
    }
    if bridge.object_store && nats.server_info().jetstream {
        add(Arc::new(ObjectStoreLink::new(nats.clone(), &bridge.object_store_bucket, bridge.object_store_ttl)), true);
    }
    Ok((upload_store, stores))
}

fn reply_subject(to: &Received) -> Result<String> {
    if !to.envelope.reply_to.is_empty() {
        return Ok(to.envelope.reply_to.clone());
    }
    match &to.reply {
        Some(r) => Ok(r.clone()),
        None => Err(Error::new(ErrorCode::InvalidEnvelope, "the message has no reply_to and no NATS reply subject")
            .with_correlation_id(&to.envelope.correlation_id)),
    }
}

/// Routes replies arriving on `<prefix>.*` to the request waiting for each subject.
struct Replies {
    prefix: String,
    pending: std::sync::Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<async_nats::Message>>>,
    next: AtomicU64,
    /// The task reading the subscription; its subscription would keep the connection open.
    router: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(router) = self.replies.get().and_then(|r| r.router.get()) {
            router.abort();
        }
    }
}

impl Replies {
    /// A fresh reply subject and the receiver its reply will arrive on.
    fn expect(&self) -> (String, tokio::sync::oneshot::Receiver<async_nats::Message>) {
        let subject = format!("{}.{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending.lock().expect("not poisoned").insert(subject.clone(), tx);
        (subject, rx)
    }

    fn forget(&self, subject: &str) {
        self.pending.lock().expect("not poisoned").remove(subject);
    }
}

/// A subscription that yields decoded messages. A message that fails to decode yields its error
/// (with the correlation id when known); the subscription goes on.
pub struct Subscription {
    client: Client,
    sub: async_nats::Subscriber,
}

impl Subscription {
    /// The next message, or None when the subscription or connection is closed.
    pub async fn next(&mut self) -> Option<Result<Received>> {
        let message = self.sub.next().await?;
        Some(self.decode(message).await)
    }

    /// Like [`next`](Self::next) with a time limit: Err(TIMEOUT) when nothing arrives in time.
    pub async fn next_timeout(&mut self, timeout: Duration) -> Option<Result<Received>> {
        match tokio::time::timeout(timeout, self.sub.next()).await {
            Ok(Some(message)) => Some(self.decode(message).await),
            Ok(None) => None,
            Err(_) => Some(err(ErrorCode::Timeout, format!("no message within {timeout:?}"))),
        }
    }

    async fn decode(&self, message: async_nats::Message) -> Result<Received> {
        let mut received = self.client.smartreceive(&message.payload).await?;
        received.subject = Some(message.subject.to_string());
        received.reply = message.reply.map(|s: Subject| s.to_string());
        Ok(received)
    }

    /// The subscription as a `futures::Stream` of decoded messages (for `StreamExt` combinators).
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Received>> {
        futures::stream::unfold(self, |mut sub| async move { sub.next().await.map(|item| (item, sub)) })
    }

    pub async fn unsubscribe(mut self) -> Result<()> {
        self.sub.unsubscribe().await.map_err(connection_failed)
    }
}
