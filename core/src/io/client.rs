//! The NATSBridge client: one NATS connection and its link stores, driving the claim-check
//! machines of `protocol` ([`SendPlan`], [`ReceivePlan`]) with tokio, async-nats and reqwest.

use super::byte_source::{self, ByteSource};
use super::link_stream::{self, LinkStream, StreamedMessage, StreamedPayload};
use super::metrics::{Counters, Metrics};
use super::options::ConnectOptions;
use super::outbox::{Admitted, Kick, Outbox, Publish};
use super::stop::{self, Stopper};
use super::store::{
    Body, Fetch, HandlerStore, LinkStore, Progress, Upload, UploadHandler, http::HttpStore, objstore::ObjectStoreLink,
    plik, s3,
};
use super::trace::{self, SendTrace};
use crate::error::{Error, ErrorCode, Result, err};
use crate::protocol::{
    self, DirectMessage, Envelope, FileServerKind, Outgoing, ReceiveLimits, ReceivePlan, ReceiveRules, ReceiveStep,
    Received, ReplyTo, SendLimits, SendOptions, SendPlan, SendStep, Sender, Sent, Settings, StreamPart, TraceContext,
    UrlScope,
};
use async_nats::Subject;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tracing::{Instrument, Span};

pub(super) struct Inner {
    pub(super) nats: async_nats::Client,
    pub(super) js: async_nats::jetstream::Context,
    /// `smartsend` publishes durably (the `jetstream` option).
    pub(super) jetstream: bool,
    /// How long link objects live (`Settings::link_ttl`): streams and consumers are checked against it.
    pub(super) link_ttl: Option<Duration>,
    /// The stream capturing each subject published durably, asked once.
    pub(super) stream_of_subject: std::sync::Mutex<std::collections::HashMap<String, String>>,
    pub(super) object_store: Option<Arc<ObjectStoreLink>>,
    pub(super) sender: Sender,
    threshold: usize,
    /// The configured file server (option or `FILESERVER_URL`): a per-message upload handler's
    /// first argument.
    fileserver_url: Option<String>,
    /// Where uploads go, in order of preference: custom store, handlers, file server, object store.
    upload_store: Option<Arc<dyn LinkStore>>,
    /// Every store downloads may come from, numbered as `rules.sources`.
    pub(super) stores: Vec<Arc<dyn LinkStore>>,
    pub(super) rules: ReceiveRules,
    transfer_progress: Option<Progress>,
    slow_consumer_drops: Arc<AtomicU64>,
    /// What it sent and received (spec/PROTOCOL.md §13.3); shared with its link streams.
    pub(super) metrics: Arc<Counters>,
    /// The server's max_payload, read from INFO again after each (re)connect: `server_info()`
    /// clones the whole INFO, too much for every send.
    max_payload: AtomicUsize,
    info_stale: Arc<AtomicBool>,
    replies: tokio::sync::OnceCell<Arc<Replies>>,
    /// Set by `drain`: async-nats may accept a publish after its drain and never write it, so
    /// the client refuses sends and subscribes from then on instead of losing them.
    drained: AtomicBool,
    /// Deferred publishes, and the order of every core NATS publish.
    outbox: Outbox,
}

/// A message built and not yet published, with the spans of its send.
pub(super) struct Built {
    pub(super) sent: Sent,
    pub(super) trace: SendTrace,
}

/// A connected client. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
}

fn connection_failed(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::NatsConnectionFailed, e.to_string())
}

impl Client {
    pub async fn connect(opts: ConnectOptions) -> Result<Client> {
        let settings = &opts.settings;
        let servers = settings.resolved_servers();
        let addrs = servers
            .iter()
            .map(|s| {
                s.parse::<async_nats::ServerAddr>()
                    .map_err(|e| Error::invalid_argument(format!("bad server URL {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let threshold = settings.resolved_threshold()?;
        // A bad file server or origin is INVALID_ARGUMENT before anything is dialled.
        let stores = stores_before_connecting(&opts)?;
        let drops = Arc::new(AtomicU64::new(0));
        let info_stale = Arc::new(AtomicBool::new(false));
        let nats = nats_options(settings, drops.clone(), info_stale.clone())
            .await?
            .connect(addrs)
            .await
            .map_err(|e| connection_failed(format!("cannot connect to {}: {e}", servers.join(", "))))?;
        let (upload_store, stores, object_store) = link_stores(stores, settings, &nats);
        let has_handlers = opts.upload_handler.is_some() || opts.link_store.is_some();
        let rules = settings.receive_rules(stores.iter().map(|s| s.scopes()).collect());
        let max_payload = nats.server_info().max_payload;
        Ok(Client {
            inner: Arc::new(Inner {
                sender: Sender {
                    name: settings.sender_name.clone(),
                    id: settings.sender_id.clone().unwrap_or_else(protocol::new_id),
                    broker_url: servers.join(","),
                },
                threshold,
                js: async_nats::jetstream::new(nats.clone()),
                jetstream: settings.jetstream,
                link_ttl: settings.link_ttl(has_handlers),
                stream_of_subject: Default::default(),
                object_store,
                fileserver_url: settings.resolved_fileserver_url(),
                upload_store,
                stores,
                rules,
                transfer_progress: opts.transfer_progress.clone(),
                slow_consumer_drops: drops,
                metrics: Arc::default(),
                max_payload: AtomicUsize::new(max_payload),
                drained: AtomicBool::new(false),
                outbox: Outbox::default(),
                info_stale,
                replies: tokio::sync::OnceCell::new(),
                nats,
            }),
        })
    }

    /// What one received message may hold: a host that decodes a message itself
    /// ([`protocol::decode_direct`]) passes these.
    pub fn receive_limits(&self) -> &ReceiveLimits {
        &self.inner.rules.limits
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

    /// What this client sent and received since it connected (spec/PROTOCOL.md §13.3).
    pub fn metrics(&self) -> Metrics {
        self.inner.metrics.snapshot()
    }

    /// Messages reported dropped by slow-consumer events since connect.
    pub fn slow_consumer_drops(&self) -> u64 {
        self.inner.slow_consumer_drops.load(Ordering::Relaxed)
    }

    pub fn sender_id(&self) -> &str {
        &self.inner.sender.id
    }

    /// A per-message store over a host's upload handler (`SendOptions::link_store`). Its first
    /// argument is `fileserver_url`, else the connection's file server.
    pub fn upload_handler_store(
        &self,
        handler: UploadHandler,
        fileserver_url: Option<&str>,
    ) -> Result<Arc<dyn LinkStore>> {
        let server = fileserver_url.or(self.inner.fileserver_url.as_deref());
        Ok(Arc::new(HandlerStore::new(Some(handler), None, server, &[], self.inner.rules.retry)?))
    }

    /// Serializes the payloads, moves large ones to the link store, and publishes the envelope.
    /// In JetStream mode (the `jetstream` option) it publishes durably ([`Client::publish_durable`]).
    pub async fn smartsend(&self, subject: &str, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        if self.inner.jetstream {
            // Boxed, so a core NATS send's future is not the size of a durable one.
            return Box::pin(self.publish_durable(subject, payloads, opts)).await;
        }
        let built = self.build_message(subject, payloads, opts).await?;
        self.publish(subject, &built, None).await?;
        Ok(built.sent)
    }

    /// NATS_CONNECTION_FAILED once the client was drained (or closed, which drains).
    pub(super) fn ensure_open(&self) -> Result<()> {
        if self.inner.drained.load(Ordering::Acquire) {
            return err(ErrorCode::NatsConnectionFailed, "the connection was drained (closed); connect again");
        }
        Ok(())
    }

    /// Publishes after whatever was deferred before it.
    async fn publish(&self, subject: &str, built: &Built, reply: Option<&str>) -> Result<()> {
        let cid = &built.sent.envelope.correlation_id;
        let (span, headers) = built.trace.publish(subject, built.sent.json.len());
        let publish = Publish {
            subject: Subject::from(subject),
            reply: reply.map(Subject::from),
            headers,
            body: built.sent.json.clone(),
        };
        let handed_over = match self.ensure_open() {
            Ok(()) => self
                .inner
                .outbox
                .hand_over(&self.inner.nats, Some(publish))
                .await
                .map_err(|e| connection_failed(format!("publish to {subject:?} failed: {e}"))),
            Err(e) => Err(e),
        };
        match handed_over {
            Ok(()) => {
                self.inner.metrics.sent(&built.sent.envelope, built.sent.json.len());
                Ok(())
            }
            Err(e) => {
                let e = e.with_correlation_id(cid);
                trace::failed(&span, &e);
                built.trace.failed(&e);
                Err(e)
            }
        }
    }

    /// `smartsend`, for a caller that sends in bursts: the first send of a burst goes out at
    /// once ([`Kick::Arrange`]: the caller then arranges a kick soon, as an event loop's next
    /// turn); the sends after it are queued in order until that [`Client::kick`] (or any other
    /// publish, a flush, a drain, or this call when the queue is full: [`Kick::Done`]), so a
    /// burst is handed to the NATS connection at once. In JetStream mode the send is durable and
    /// waits for its PubAck, as `smartsend`'s ([`Kick::Done`]).
    pub async fn smartsend_deferred(
        &self,
        subject: &str,
        payloads: Vec<Outgoing>,
        opts: &SendOptions,
    ) -> Result<(Sent, Kick)> {
        if self.inner.jetstream {
            return Ok((self.smartsend(subject, payloads, opts).await?, Kick::Done));
        }
        let built = self.build_message(subject, payloads, opts).await?;
        let cid = &built.sent.envelope.correlation_id;
        self.ensure_open().map_err(|e| e.with_correlation_id(cid))?;
        // The publish span ends here: a deferred publish is handed over by a later kick.
        let (_span, headers) = built.trace.publish(subject, built.sent.json.len());
        let publish = Publish { subject: Subject::from(subject), reply: None, headers, body: built.sent.json.clone() };
        self.inner.metrics.sent(&built.sent.envelope, built.sent.json.len());
        let kick = match self.inner.outbox.admit(publish) {
            Admitted::First(publish) => {
                self.hand_over(Some(publish)).await.map_err(|e| e.with_correlation_id(cid))?;
                Kick::Arrange
            }
            Admitted::Queued => Kick::Arranged,
            Admitted::Full => {
                self.hand_over(None).await.map_err(|e| e.with_correlation_id(cid))?;
                Kick::Done
            }
        };
        Ok((built.sent, kick))
    }

    /// Hands every deferred publish to the NATS connection, in order, and ends the burst. It
    /// fails only once the connection is gone (a drain hands them over first); the failure is
    /// also logged, as hosts run their kicks from an event loop with nobody to tell.
    pub async fn kick(&self) -> Result<()> {
        self.inner.outbox.end_burst();
        self.hand_over(None).await.inspect_err(|e| {
            tracing::warn!(error = %e, "deferred publishes were not handed over: the connection is closed");
        })
    }

    /// Hands the queued publishes over, then `then`.
    async fn hand_over(&self, then: Option<Publish>) -> Result<()> {
        self.inner
            .outbox
            .hand_over(&self.inner.nats, then)
            .await
            .map_err(|e| connection_failed(format!("publish failed: {e}")))
    }

    /// Builds the envelope (uploading link payloads) without publishing it.
    pub async fn build(&self, subject: &str, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        Ok(self.build_message(subject, payloads, opts).await?.sent)
    }

    async fn build_message(&self, subject: &str, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Built> {
        protocol::check_subject(subject)?;
        self.build_envelope(self.inner.sender.envelope(subject, opts), payloads, opts, None).await
    }

    /// Drives the send plan: uploads run concurrently on this task (a host handler store is
    /// then called on the thread that polls the send).
    /// `stream`: the stream a durable publish goes to, for the link objects' metadata.
    pub(super) async fn build_envelope(
        &self,
        envelope: Envelope,
        payloads: Vec<Outgoing>,
        opts: &SendOptions,
        stream: Option<&str>,
    ) -> Result<Built> {
        let mut trace = SendTrace::start(&envelope.send_to, &envelope, opts.trace.as_ref());
        match self.build_traced(envelope, payloads, opts, stream, &mut trace).await {
            Ok(sent) => Ok(Built { sent, trace }),
            Err(e) => {
                trace.failed(&e);
                Err(e)
            }
        }
    }

    async fn build_traced(
        &self,
        envelope: Envelope,
        payloads: Vec<Outgoing>,
        opts: &SendOptions,
        stream: Option<&str>,
        trace: &mut SendTrace,
    ) -> Result<Sent> {
        let cid = envelope.correlation_id.clone();
        let msg_id = envelope.msg_id.clone();
        self.ensure_open().map_err(|e| e.with_correlation_id(&cid))?;
        let store = opts.link_store.clone().or_else(|| self.inner.upload_store.clone());
        let limits = SendLimits {
            threshold: opts.size_threshold.unwrap_or(self.inner.threshold),
            max_payload: self.max_payload(),
            can_upload: store.is_some(),
        };
        let payloads =
            byte_source::read_unstreamed(payloads, &limits).await.map_err(|e| e.with_correlation_id(&cid))?;
        let mut plan = SendPlan::new(envelope, payloads, limits)?;
        let mut uploads = FuturesUnordered::new();
        loop {
            match plan.step()? {
                SendStep::Upload(i) => {
                    let store = store.clone().expect("the plan uploads only when a store takes uploads");
                    let dataname = plan.dataname(i).to_owned();
                    let body = match plan.source(i) {
                        Some(source) => UploadBody::Streamed(source.clone()),
                        None => UploadBody::Held(plan.bytes(i).clone()),
                    };
                    let span = trace.upload(i, &cid, &dataname, plan.payload_type(i), plan.size(i) as u64);
                    let (cid, msg_id, progress) = (cid.clone(), msg_id.clone(), self.inner.transfer_progress.clone());
                    let stream = stream.map(str::to_owned);
                    uploads.push(
                        async move {
                            let tag = Tag { correlation_id: &cid, msg_id: &msg_id, stream: stream.as_deref() };
                            let uploaded = upload(store.as_ref(), &dataname, body, tag, progress).await;
                            if let Err(e) = &uploaded {
                                trace::failed(&Span::current(), e);
                            }
                            (i, uploaded)
                        }
                        .instrument(span),
                    );
                }
                SendStep::Wait => match uploads.next().await.expect("the plan waits only on running uploads") {
                    (i, Ok((url, sha256))) => plan.uploaded(i, url, sha256),
                    (i, Err(e)) => {
                        tracing::warn!(correlation_id = %cid, dataname = plan.dataname(i), error = %e, "upload failed");
                        plan.upload_failed(i, e);
                    }
                },
                SendStep::Publish => {
                    let sent = plan.finish();
                    tracing::debug!(correlation_id = %cid, bytes = sent.json.len(), "envelope built");
                    return Ok(sent);
                }
            }
        }
    }

    /// Decodes a message: checks the envelope, fetches links (allowed origins only, with
    /// backoff), verifies size and sha256, and deserializes every payload in order.
    /// `envelope.payloads` keeps each wire payload's fields; a direct payload's inline `data` is
    /// not kept (null): its decoded value is in `payloads`.
    pub async fn smartreceive(&self, message: &[u8]) -> Result<Received> {
        self.receive_message(message, None, None).await
    }

    /// `smartreceive` of a message that came with a subject and headers (its trace context).
    pub(super) async fn receive_message(
        &self,
        message: &[u8],
        subject: Option<&str>,
        headers: Option<&async_nats::HeaderMap>,
    ) -> Result<Received> {
        let stores = &self.inner.stores;
        let from = Arrived { subject, headers, metrics: Some(&self.inner.metrics) };
        receive(message, from, |i| stores[i].as_ref(), &self.inner.rules, self.inner.transfer_progress.as_ref()).await
    }

    /// Decodes a message but fetches no link: each link payload is a [`LinkStream`] to read, in
    /// chunks, to a file or a socket, so a payload of any size never has to fit in memory. Every
    /// link is checked against the allowed origins and the download limit first, as
    /// [`smartreceive`](Self::smartreceive) checks them.
    pub fn smartreceive_streamed(&self, message: &[u8]) -> Result<StreamedMessage> {
        let rules = &self.inner.rules;
        let plan = ReceivePlan::new(message, &rules.limits)?;
        let (envelope, parts) = plan.into_streams(rules)?;
        let shared_rules = Arc::new(rules.clone());
        let payloads: Vec<StreamedPayload> = parts
            .into_iter()
            .map(|part| match part {
                StreamPart::Value(incoming) => StreamedPayload::Value(incoming),
                StreamPart::Link { dataname, payload_type, fetch, check } => {
                    let from = link_stream::Source {
                        store: self.inner.stores[fetch.source].clone(),
                        rules: shared_rules.clone(),
                        correlation_id: envelope.correlation_id.clone(),
                        progress: self.inner.transfer_progress.clone(),
                        metrics: self.inner.metrics.clone(),
                    };
                    StreamedPayload::Link(Box::new(LinkStream::new(dataname, payload_type, fetch, check, from)))
                }
            })
            .collect();
        let transports = payloads.iter().map(|p| match p {
            StreamedPayload::Value(_) => protocol::Transport::Direct,
            StreamedPayload::Link(_) => protocol::Transport::Link,
        });
        self.inner.metrics.received(transports, message.len());
        Ok(StreamedMessage { envelope, payloads, subject: None, reply: None, trace: None })
    }

    /// Subscribes and returns once the server has the subscription, so a publish made after
    /// this returns is delivered to it.
    pub async fn subscribe(&self, subject: &str, queue_group: Option<&str>) -> Result<Subscription> {
        self.ensure_open()?;
        protocol::check_subject(subject)?;
        if let Some(q) = queue_group
            && (q.is_empty() || q.contains([' ', '\t', '\r', '\n']))
        {
            return Err(Error::invalid_argument(format!("{q:?} is not a queue group name: non-empty, no whitespace")));
        }
        let nats = &self.inner.nats;
        let sub = match queue_group {
            Some(q) => nats.queue_subscribe(subject.to_owned(), q.to_owned()).await,
            None => nats.subscribe(subject.to_owned()).await,
        }
        .map_err(|e| connection_failed(format!("subscribe to {subject:?} failed: {e}")))?;
        self.server_round_trip().await?;
        Ok(Subscription::new(self.clone(), sub))
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
        let built = self.build_message(subject, payloads, &opts).await?;
        let cid = built.sent.envelope.correlation_id.clone();
        self.publish(subject, &built, Some(&inbox)).await?;
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
        let received = self.receive_message(&message.payload, Some(&inbox), message.headers.as_ref()).await?;
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

    /// Replies to a received request: to its reply_to (else its NATS reply subject), with its
    /// correlation id, reply_to_msg_id = its msg_id, msg_purpose ACK unless set, and receiver
    /// fields naming its sender.
    /// Always on core NATS, also in JetStream mode: a reply goes to the requester's inbox, which
    /// no stream captures.
    pub async fn reply(&self, to: &ReplyTo, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        let subject = to.subject()?;
        let built = self.build_message(subject, payloads, &to.options(opts)).await?;
        self.publish(subject, &built, None).await?;
        Ok(built.sent)
    }

    /// Replies with a NACK carrying `error` as `{code, message, details}`.
    pub async fn reply_error(&self, to: &ReplyTo, error: &Error) -> Result<Sent> {
        let subject = to.subject()?;
        protocol::check_subject(subject)?;
        let (opts, body) = to.error_reply(error);
        let mut envelope = self.inner.sender.envelope(subject, &opts);
        envelope.error = Some(body);
        let built = self.build_envelope(envelope, Vec::new(), &opts, None).await?;
        self.publish(subject, &built, None).await?;
        Ok(built.sent)
    }

    /// Publishes what is buffered (deferred sends too) and waits until it is written.
    pub async fn flush(&self) -> Result<()> {
        self.kick().await?;
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

/// The next item of a subscription, or TIMEOUT when none comes within `timeout`.
async fn within<T>(timeout: Duration, next: impl Future<Output = Option<Result<T>>>) -> Option<Result<T>> {
    match tokio::time::timeout(timeout, next).await {
        Ok(item) => item,
        Err(_) => Some(err(ErrorCode::Timeout, format!("no message within {timeout:?}"))),
    }
}

/// Which message an upload belongs to.
struct Tag<'a> {
    correlation_id: &'a str,
    msg_id: &'a str,
    stream: Option<&'a str>,
}

/// What an upload sends: the plan's bytes, or a file or reader streamed through.
enum UploadBody {
    Held(Bytes),
    Streamed(ByteSource),
}

/// One upload: the URL and the sha256. Held bytes are hashed by stores that hash while storing,
/// else on another thread while they travel; a streamed source is hashed as it is read.
async fn upload(
    store: &dyn LinkStore,
    dataname: &str,
    body: UploadBody,
    tag: Tag<'_>,
    progress: Option<Progress>,
) -> Result<(String, Option<String>)> {
    let Tag { correlation_id, msg_id, stream } = tag;
    let upload = |body: Body| {
        tracing::debug!(correlation_id, dataname, size = body.size(), "uploading link payload");
        store.upload(Upload { dataname, body, correlation_id, progress, stream, msg_id })
    };
    let bytes = match body {
        UploadBody::Held(bytes) => bytes,
        UploadBody::Streamed(source) => {
            let sha256 = crate::io::byte_source::SourceDigest::default();
            let chunks = source.chunks(sha256.clone());
            let stored = upload(Body::Chunks { size: source.size(), chunks, sha256: sha256.clone() }).await?;
            let sha256 = *sha256.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            return match sha256 {
                Some(sha256) => Ok((stored.url, Some(hex::encode(sha256)))),
                None => err(ErrorCode::UploadFailed, "the link store did not read the whole payload"),
            };
        }
    };
    if store.checks_sha256() {
        let stored = upload(Body::Bytes(bytes)).await?;
        return Ok((stored.url, stored.sha256));
    }
    let hashing = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || protocol::sha256_hex(&bytes))
    };
    let (stored, sha256) = futures::future::join(upload(Body::Bytes(bytes)), hashing).await;
    let sha256 = sha256.map_err(|e| Error::new(ErrorCode::UploadFailed, format!("hashing stopped: {e}")))?;
    Ok((stored?.url, Some(sha256)))
}

/// Where a message came from (a subscription's subject and headers), and which client counts it.
#[derive(Clone, Copy, Default)]
struct Arrived<'m> {
    subject: Option<&'m str>,
    headers: Option<&'m async_nats::HeaderMap>,
    metrics: Option<&'m Counters>,
}

/// Receives a message in its receive span (spec/PROTOCOL.md §13.2), which continues the trace
/// its headers carry.
async fn receive<'s>(
    message: &[u8],
    from: Arrived<'_>,
    store: impl Fn(usize) -> &'s dyn LinkStore,
    rules: &ReceiveRules,
    progress: Option<&Progress>,
) -> Result<Received> {
    let plan = ReceivePlan::new(message, &rules.limits);
    let trace = trace::received_context(from.headers, |i| plan.as_ref().is_ok_and(|p| p.is_link(i)));
    let span = trace::receive_span(from.subject, message.len(), trace.as_ref());
    let received = match plan {
        Ok(plan) => {
            trace::identified(&span, plan.correlation_id(), &plan.envelope().msg_id);
            let fetching = fetch_links(plan, &span, trace.as_ref(), store, rules, progress, from.metrics);
            fetching.instrument(span.clone()).await
        }
        Err(e) => Err(e),
    };
    match received {
        Ok(received) => {
            if let Some(metrics) = from.metrics {
                metrics.received(received.payloads.iter().map(|p| p.transport), message.len());
            }
            Ok(Received { trace, ..received })
        }
        Err(e) => {
            trace::failed(&span, &e);
            Err(e)
        }
    }
}

/// Drives the receive plan: fetches run concurrently on this task, each from the store the plan
/// names (`store(source)`), after the delay it names, each link in its download span.
async fn fetch_links<'s>(
    mut plan: ReceivePlan,
    receive_span: &Span,
    trace: Option<&TraceContext>,
    store: impl Fn(usize) -> &'s dyn LinkStore,
    rules: &ReceiveRules,
    progress: Option<&Progress>,
    metrics: Option<&Counters>,
) -> Result<Received> {
    let cid = plan.correlation_id().to_owned();
    let mut fetches = FuturesUnordered::new();
    // Per link payload: its download span, and when its first attempt began.
    let mut downloads = std::collections::HashMap::new();
    loop {
        match plan.step(rules) {
            Ok(ReceiveStep::Fetch(f)) => {
                let store = store(f.source);
                let cid = cid.as_str();
                let (span, _) = downloads.entry(f.payload).or_insert_with(|| {
                    let (dataname, payload_type, size) = plan.payload(f.payload);
                    let span = trace::download_span(receive_span, f.payload, dataname, payload_type, size, trace);
                    (span, std::time::Instant::now())
                });
                let span = span.clone();
                fetches.push(
                    async move {
                        if !f.delay.is_zero() {
                            tokio::time::sleep(f.delay).await;
                        }
                        let fetch = Fetch { url: &f.url, size: f.size, correlation_id: cid, progress };
                        let result = store.download(fetch).await;
                        (f, result)
                    }
                    .instrument(span),
                );
            }
            Ok(ReceiveStep::Wait) => match fetches.next().await.expect("the plan waits only on running fetches") {
                (f, Ok(fetched)) => {
                    plan.fetched(&f, fetched.bytes, fetched.sha256.as_deref());
                    if let Some((span, started)) = downloads.remove(&f.payload) {
                        trace::attempts(&span, f.attempt);
                        match (plan.failure(), metrics) {
                            (Some(e), m) => {
                                trace::failed(&span, e);
                                if let (ErrorCode::ChecksumMismatch, Some(m)) = (e.code, m) {
                                    m.checksum_failed();
                                }
                            }
                            (None, Some(m)) => m.downloaded(f.size, started.elapsed()),
                            (None, None) => {}
                        }
                    }
                }
                (f, Err(failure)) => {
                    tracing::debug!(correlation_id = %cid, url = protocol::display_url(&f.url), attempt = f.attempt, failure = ?failure, "download failed");
                    plan.fetch_failed(&f, failure, rules);
                    match (plan.failure(), downloads.get(&f.payload)) {
                        (Some(e), Some((span, _))) => {
                            trace::attempts(span, f.attempt);
                            trace::failed(span, e);
                        }
                        (None, _) => {
                            if let Some(m) = metrics {
                                m.download_retried();
                            }
                        }
                        _ => {}
                    }
                }
            },
            Ok(ReceiveStep::Done) => return plan.finish(),
            Err(e) => return Err(e),
        }
    }
}

/// Decodes a message whose links are fetched by `store` alone (a host's download handler for one
/// call), with no NATS connection. `rules.sources` is replaced by the store's scopes.
pub async fn smartreceive_with_store(message: &[u8], store: &dyn LinkStore, rules: ReceiveRules) -> Result<Received> {
    let rules = ReceiveRules { sources: vec![store.scopes()], ..rules };
    receive(message, Arrived::default(), |_| store, &rules, None).await
}

/// Decodes a message whose payloads are all direct, without a connection. `Ok(None)` when it
/// has link payloads: those need a client's link stores (`Client::smartreceive`).
pub fn smartreceive_direct(message: &[u8], limits: &ReceiveLimits) -> Result<Option<Received>> {
    let plan = ReceivePlan::new(message, limits)?;
    if plan.has_links() {
        return Ok(None);
    }
    plan.finish().map(Some)
}

/// async-nats options from the settings. Slow-consumer events are counted in `drops`; a
/// (re)connect marks the cached INFO stale.
async fn nats_options(
    opts: &Settings,
    drops: Arc<AtomicU64>,
    info_stale: Arc<AtomicBool>,
) -> Result<async_nats::ConnectOptions> {
    let wait = opts.reconnect_time_wait;
    let mut o = async_nats::ConnectOptions::new()
        .connection_timeout(opts.connect_timeout)
        .subscription_capacity(opts.pending_msgs_limit)
        .max_reconnects(opts.max_reconnect_attempts)
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
            return Err(Error::invalid_argument("user and password must be given together"));
        }
        (None, None) => {}
    }
    if let Some(t) = &opts.token {
        o = o.token(t.clone());
    }
    if let Some(seed) = &opts.nkey {
        // A configuration mistake, found before connecting as a missing creds file is; the
        // message leaves the seed out, since it is a secret.
        nkeys::KeyPair::from_seed(seed)
            .map_err(|e| Error::invalid_argument(format!("nkey is not an nkey seed: {e}")))?;
        o = o.nkey(seed.clone());
    }
    if let Some(path) = &opts.credentials_file {
        o = o
            .credentials_file(path)
            .await
            .map_err(|e| Error::invalid_argument(format!("cannot read credentials_file {}: {e}", path.display())))?;
    }
    if let Some(ca) = &opts.tls_ca_file {
        o = o.add_root_certificates(ca.clone());
    }
    match (&opts.tls_cert_file, &opts.tls_key_file) {
        (Some(c), Some(k)) => o = o.add_client_certificate(c.clone(), k.clone()),
        (None, None) => {}
        _ => return Err(Error::invalid_argument("tls_cert_file and tls_key_file must be given together")),
    }
    if opts.tls_required {
        o = o.require_tls(true);
    }
    Ok(o)
}

type Stores = (Option<Arc<dyn LinkStore>>, Vec<Arc<dyn LinkStore>>, Option<Arc<ObjectStoreLink>>);

/// The store uploads go to and every store downloads may come from, in order: the caller's own
/// store, the host's handlers, the file server, the allowed origins (unless a download handler
/// serves them) — `stores`, made by [`stores_before_connecting`] — then the object store.
fn link_stores(mut stores: Vec<Arc<dyn LinkStore>>, settings: &Settings, nats: &async_nats::Client) -> Stores {
    let mut object_store = None;
    if settings.object_store && nats.server_info().jetstream {
        let store = Arc::new(ObjectStoreLink::new(
            nats.clone(),
            &settings.object_store_bucket,
            settings.object_store_ttl,
            settings.object_store_replicas,
        ));
        object_store = Some(store.clone());
        stores.push(store);
    }
    let upload_store = stores.iter().find(|s| s.takes_uploads()).cloned();
    (upload_store, stores, object_store)
}

/// The URLs a connection made with `opts` could download from, known before it connects (the
/// object store's scheme when it is enabled: whether the server has JetStream is not known yet).
/// A one-call receive refuses a link outside them before it connects to anything.
pub(super) fn link_scopes_before_connecting(opts: &ConnectOptions) -> Result<Vec<UrlScope>> {
    let mut scopes: Vec<UrlScope> = stores_before_connecting(opts)?.iter().flat_map(|s| s.scopes()).collect();
    if opts.settings.object_store {
        scopes.push(ObjectStoreLink::scope());
    }
    Ok(scopes)
}

/// [`link_stores`] but the object store, which needs the connection.
fn stores_before_connecting(opts: &ConnectOptions) -> Result<Vec<Arc<dyn LinkStore>>> {
    let settings = &opts.settings;
    let mut stores: Vec<Arc<dyn LinkStore>> = Vec::new();
    if let Some(custom) = &opts.link_store {
        stores.push(custom.clone());
    }
    let fileserver_url = settings.resolved_fileserver_url();
    let handlers = opts.upload_handler.is_some() || opts.download_handler.is_some();
    if handlers {
        stores.push(Arc::new(HandlerStore::new(
            opts.upload_handler.clone(),
            opts.download_handler.clone(),
            fileserver_url.as_deref(),
            &settings.allowed_origins,
            settings.retry,
        )?));
    }
    // With handlers, fileserver_url may be only the handlers' argument (any scheme).
    let file_server = fileserver_url.filter(|u| !handlers || u.starts_with("http://") || u.starts_with("https://"));
    if let Some(url) = file_server {
        stores.push(match settings.fileserver_kind_of(&url) {
            FileServerKind::Plik => Arc::new(plik::PlikStore::new(
                &url,
                plik::PlikOptions {
                    oneshot: settings.plik_oneshot,
                    ttl: settings.plik_ttl,
                    user_token: settings.plik_token.clone(),
                },
            )?),
            FileServerKind::Http => Arc::new(HttpStore::new(&url)?),
            FileServerKind::S3 => Arc::new(s3::S3Store::new(&url, &settings.s3)?),
        });
    }
    if opts.download_handler.is_none() {
        for origin in &settings.allowed_origins {
            stores.push(Arc::new(HttpStore::download_only(origin)?));
        }
    }
    Ok(stores)
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

/// A message whose links are still downloading. It lives in the subscription, so a `next` given
/// up (a timeout, a cancelled task) loses nothing: the next call finishes it.
type Decoding = Pin<Box<dyn Future<Output = Result<Received>> + Send>>;

/// A subscription that yields decoded messages. A message that fails to decode yields its error
/// (with the correlation id when known); the subscription goes on.
pub struct Subscription {
    client: Client,
    sub: async_nats::Subscriber,
    decoding: Option<Decoding>,
    stop: Stopper,
}

impl Subscription {
    fn new(client: Client, sub: async_nats::Subscriber) -> Subscription {
        Subscription { client, sub, decoding: None, stop: Stopper::new() }
    }

    pub fn stopper(&self) -> Stopper {
        self.stop.clone()
    }

    /// The next message, or None when the subscription or connection is closed, or stopped.
    /// Cancel-safe: a message taken off the subscription is never lost.
    pub async fn next(&mut self) -> Option<Result<Received>> {
        let limits = self.client.inner.rules.limits;
        let metrics = self.client.inner.metrics.clone();
        let decode_direct = move |message: async_nats::Message| {
            let mut received = match smartreceive_direct(&message.payload, &limits) {
                Ok(Some(received)) => received,
                Ok(None) => return Ok(Err(message)),
                Err(e) => {
                    trace::received_now(&message, Err(&e));
                    return Err(e);
                }
            };
            let ids = (received.envelope.correlation_id.as_str(), received.envelope.msg_id.as_str());
            let trace = trace::received_now(&message, Ok(ids));
            metrics.received(received.payloads.iter().map(|p| p.transport), message.payload.len());
            let (subject, reply) = route(&message);
            received.subject = Some(subject);
            received.reply = reply;
            received.trace = trace;
            Ok(Ok(received))
        };
        self.stop.clone().or_stopped(self.next_unstopped(decode_direct)).await
    }

    /// Like [`next`](Self::next) with a time limit: Err(TIMEOUT) when no message is decoded in
    /// time (one still downloading its links comes with the next call).
    pub async fn next_timeout(&mut self, timeout: Duration) -> Option<Result<Received>> {
        within(timeout, self.next()).await
    }

    /// The next message and every one ready behind it, up to `max` (at least one); None as for
    /// [`next`](Self::next). A binding hands over a busy subscription a batch per crossing, and
    /// builds its objects from each [`Arrival`]'s view with no owned envelope in between.
    pub async fn next_batch(&mut self, max: usize) -> Option<Vec<Result<Arrival>>> {
        stop::next_batch(&mut Arrivals(self), max).await
    }

    /// Appends to `out`, up to `max` in all, the messages that are decoded without waiting;
    /// false once the subscription is closed or stopped. Call it in the runtime's context.
    pub fn take_ready(&mut self, max: usize, out: &mut Vec<Result<Arrival>>) -> bool {
        stop::take_ready(&mut Arrivals(self), max, out)
    }

    /// The next message: one of direct payloads decoded by `decode_direct` (None when it has
    /// links), else received whole, links fetched, and turned into `T`.
    async fn next_unstopped<T: From<Received>>(
        &mut self,
        decode_direct: impl FnOnce(async_nats::Message) -> Result<std::result::Result<T, async_nats::Message>>,
    ) -> Option<Result<T>> {
        let decoding = match &mut self.decoding {
            Some(decoding) => decoding,
            None => {
                let message = self.sub.next().await?;
                // Most messages have no links and decode right here, with no future to keep.
                let message = match decode_direct(message) {
                    Ok(Ok(decoded)) => return Some(Ok(decoded)),
                    Err(e) => return Some(Err(e)),
                    Ok(Err(with_links)) => with_links,
                };
                let (subject, reply) = route(&message);
                let client = self.client.clone();
                self.decoding.insert(Box::pin(async move {
                    let mut received =
                        client.receive_message(&message.payload, Some(&subject), message.headers.as_ref()).await?;
                    received.subject = Some(subject);
                    received.reply = reply;
                    Ok(received)
                }))
            }
        };
        let result = decoding.await;
        self.decoding = None;
        Some(result.map(T::from))
    }

    /// The next message with its link payloads as streams ([`Client::smartreceive_streamed`]);
    /// None as for [`next`](Self::next).
    pub async fn next_streamed(&mut self) -> Option<Result<StreamedMessage>> {
        let message = self.stop.clone().or_stopped(self.sub.next()).await?;
        let (subject, reply) = route(&message);
        Some(self.client.smartreceive_streamed(&message.payload).map(|mut streamed| {
            let is_link = |i: usize| matches!(streamed.payloads.get(i), Some(StreamedPayload::Link(_)));
            streamed.trace = trace::received_context(message.headers.as_ref(), is_link);
            streamed.subject = Some(subject);
            streamed.reply = reply;
            streamed
        }))
    }

    /// Like [`next_streamed`](Self::next_streamed) with a time limit, as [`next_timeout`](Self::next_timeout).
    pub async fn next_streamed_timeout(&mut self, timeout: Duration) -> Option<Result<StreamedMessage>> {
        within(timeout, self.next_streamed()).await
    }

    /// The subscription as a `futures::Stream` of decoded messages (for `StreamExt` combinators).
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Received>> {
        futures::stream::unfold(self, |mut sub| async move { sub.next().await.map(|item| (item, sub)) })
    }

    pub async fn unsubscribe(mut self) -> Result<()> {
        self.sub.unsubscribe().await.map_err(connection_failed)
    }
}

/// A message taken off a subscription by [`Subscription::next_batch`].
pub enum Arrival {
    /// Direct payloads only, decoded as a view of the message; `trace`: the sender's trace
    /// context (boxed: rare, and this variant is the common one).
    Direct { message: DirectMessage, subject: String, reply: Option<String>, trace: Option<Box<TraceContext>> },
    /// A message with links, fetched and checked (boxed: an owned envelope is large, and rare here).
    Received(Box<Received>),
}

impl Arrival {
    /// The decoded payloads, in the envelope's order.
    pub fn payloads(&self) -> &[protocol::Incoming] {
        match self {
            Arrival::Direct { message, .. } => &message.payloads,
            Arrival::Received(received) => &received.payloads,
        }
    }
}

impl From<Received> for Arrival {
    fn from(received: Received) -> Arrival {
        Arrival::Received(Box::new(received))
    }
}

/// A subscription pulled as [`Arrival`]s.
struct Arrivals<'a>(&'a mut Subscription);

impl stop::Pull for Arrivals<'_> {
    type Item = Result<Arrival>;
    fn next(&mut self) -> impl Future<Output = Option<Result<Arrival>>> + Send + '_ {
        let limits = self.0.client.inner.rules.limits;
        let metrics = self.0.client.inner.metrics.clone();
        let decode_direct = move |message: async_nats::Message| {
            let decoded = DirectMessage::decode(message.payload.clone(), &limits)
                .inspect_err(|e| _ = trace::received_now(&message, Err(e)))?;
            Ok(match decoded {
                Some(direct) => {
                    let header = direct.envelope().header();
                    let trace = trace::received_now(&message, Ok((header[0].1, header[1].1))).map(Box::new);
                    metrics.received(direct.payloads.iter().map(|p| p.transport), message.payload.len());
                    let (subject, reply) = route(&message);
                    Ok(Arrival::Direct { message: direct, subject, reply, trace })
                }
                None => Err(message),
            })
        };
        let stop = self.0.stop.clone();
        async move { stop.or_stopped(self.0.next_unstopped(decode_direct)).await }
    }
}

/// A message's subject and reply subject.
fn route(message: &async_nats::Message) -> (String, Option<String>) {
    (message.subject.to_string(), message.reply.as_ref().map(|s: &Subject| s.to_string()))
}
