//! At-least-once delivery over JetStream, driving the rules of `protocol::durable`: durable
//! publish (msg_id deduplication, awaited and retried PubAcks), stream setup, durable pull
//! consumers whose deliveries are settled explicitly, and link objects tied to their messages.

use super::client::{Built, Client};
use super::stop::{self, Stopper};
use super::store::LinkStore;
use super::trace;
use crate::error::{Error, ErrorCode, Result, err};
use crate::protocol::durable::{
    ConsumeOptions, DeadLetter, DeliverFrom, DeliveryInfo, MSG_ID_HEADER, PULL_EXPIRES, PULL_HEARTBEAT, PubAck,
    PublishFailure, RedeliveryWatch, Retention, Settlement, Storage, StreamSettings, no_stream_error, stall_delay,
};
use crate::protocol::{self, Outgoing, Received, SendOptions, Sent, TimeUnit};
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::{AckKind, Acker};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use serde_json::Value;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Span;

/// async-nats' name for a failed publish, in the words of core's retry rule.
fn failure(kind: PublishErrorKind) -> PublishFailure {
    match kind {
        PublishErrorKind::StreamNotFound => PublishFailure::StreamNotFound,
        PublishErrorKind::WrongLastMessageId => PublishFailure::WrongLastMessageId,
        PublishErrorKind::WrongLastSequence => PublishFailure::WrongLastSequence,
        PublishErrorKind::TimedOut => PublishFailure::TimedOut,
        PublishErrorKind::BrokenPipe => PublishFailure::BrokenPipe,
        PublishErrorKind::MaxAckPending => PublishFailure::MaxAckPending,
        PublishErrorKind::MaxPayloadExceeded => PublishFailure::MaxPayloadExceeded,
        _ => PublishFailure::Other,
    }
}

fn connection_failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::NatsConnectionFailed, format!("{what}: {e}"))
}

/// What `stream add` made.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSummary {
    pub name: String,
    pub subjects: Vec<String>,
    /// Zero: unlimited.
    pub max_age: Duration,
    pub replicas: usize,
    pub messages: u64,
    pub dead_letter_stream: Option<String>,
}

impl StreamSummary {
    /// The host's shape: `{"name", "subjects", "max_age_secs" | "max_age_ms", "replicas",
    /// "messages", "dead_letter_stream"}`, the duration in the host's unit.
    pub fn to_json(&self, unit: TimeUnit) -> Value {
        let (max_age, amount) = unit.member("max_age", self.max_age);
        let mut v = serde_json::json!({
            "name": self.name,
            "subjects": self.subjects,
            "replicas": self.replicas,
            "messages": self.messages,
            "dead_letter_stream": self.dead_letter_stream,
        });
        v[max_age] = amount;
        v
    }
}

/// What a sweep found (and removed, unless it was a dry run).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepReport {
    pub stream: String,
    /// Link objects uploaded for the stream's messages.
    pub checked: usize,
    /// Those whose message is not in the stream and that are older than the grace period.
    pub orphans: Vec<super::store::objstore::LinkObject>,
    pub dry_run: bool,
}

impl SweepReport {
    /// The host's shape: `{"stream", "checked", "orphans": [{"name", "url", "size", "msg_id",
    /// "age_secs" | "age_ms"}], "dry_run"}`, ages in the host's unit.
    pub fn to_json(&self, unit: TimeUnit) -> Value {
        let orphans: Vec<Value> = self
            .orphans
            .iter()
            .map(|o| {
                let (age, amount) = unit.member("age", o.age);
                let mut v = serde_json::json!({"name": o.name, "url": o.url, "size": o.size, "msg_id": o.msg_id});
                v[age] = amount;
                v
            })
            .collect();
        serde_json::json!({"stream": self.stream, "checked": self.checked, "orphans": orphans, "dry_run": self.dry_run})
    }
}

impl Client {
    /// The stream that captures `subject`, asked once per subject. INVALID_ARGUMENT when none
    /// does: a durable send never falls back to core NATS.
    async fn stream_for(&self, subject: &str) -> Result<String> {
        if let Some(s) = self.inner.stream_of_subject.lock().expect("not poisoned").get(subject) {
            return Ok(s.clone());
        }
        let name =
            self.inner.js.stream_by_subject(subject).await.map_err(|e| no_stream_error(subject, &e.to_string()))?;
        self.inner.stream_of_subject.lock().expect("not poisoned").insert(subject.to_owned(), name.clone());
        Ok(name)
    }

    /// Publishes durably: finds the stream capturing `subject`, uploads and verifies the links
    /// (tagged with the stream and msg_id), then publishes with `Nats-Msg-Id` = msg_id and waits
    /// for the PubAck, retrying a failed publish with the same msg_id (the stream stores it once).
    pub async fn publish_durable(&self, subject: &str, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Sent> {
        let built = self.build_durable(subject, payloads, opts).await?;
        let (span, headers) = built.trace.publish(subject, built.sent.json.len());
        let first = self.send_durable(subject, &built.sent, headers.as_ref()).await;
        self.confirmed(subject, built, span, headers, first).await
    }

    /// `built` with its PubAck, once the stream confirms it; its spans end with the outcome.
    async fn confirmed(
        &self,
        subject: &str,
        built: Built,
        span: Span,
        headers: Option<HeaderMap>,
        first: Result<PublishAckFuture, PublishFailure>,
    ) -> Result<Sent> {
        let Built { mut sent, trace } = built;
        match self.confirm_durable(subject, &sent, headers.as_ref(), first).await {
            Ok(ack) => {
                self.inner.metrics.sent(&sent.envelope, sent.json.len());
                sent.pub_ack = Some(ack);
                Ok(sent)
            }
            Err(e) => {
                trace::failed(&span, &e);
                trace.failed(&e);
                Err(e)
            }
        }
    }

    /// Publishes many messages durably with every PubAck outstanding at once (throughput), then
    /// confirms each in order, retrying those that failed. One result per message.
    pub async fn publish_durable_batch(
        &self,
        messages: Vec<(String, Vec<Outgoing>, SendOptions)>,
    ) -> Vec<Result<Sent>> {
        let mut all_built = Vec::with_capacity(messages.len());
        for (subject, payloads, opts) in messages {
            let built = self.build_durable(&subject, payloads, &opts).await;
            all_built.push((subject, built));
        }
        let mut pending = FuturesOrdered::new();
        for (subject, built) in all_built {
            let sending = match built {
                Ok(built) => {
                    let (span, headers) = built.trace.publish(&subject, built.sent.json.len());
                    let first = self.send_durable(&subject, &built.sent, headers.as_ref()).await;
                    Ok((built, span, headers, first))
                }
                Err(e) => Err(e),
            };
            pending.push_back(async move {
                let (built, span, headers, first) = sending?;
                self.confirmed(&subject, built, span, headers, first).await
            });
        }
        pending.collect().await
    }

    async fn build_durable(&self, subject: &str, payloads: Vec<Outgoing>, opts: &SendOptions) -> Result<Built> {
        protocol::check_subject(subject)?;
        let envelope = self.inner.sender.envelope(subject, opts);
        let cid = envelope.correlation_id.clone();
        let stream = self.stream_for(subject).await.map_err(|e| e.with_correlation_id(&cid))?;
        self.build_envelope(envelope, payloads, opts, Some(&stream)).await
    }

    /// `trace`: the message's trace headers (spec/PROTOCOL.md §13), when it has them.
    async fn send_durable(
        &self,
        subject: &str,
        sent: &Sent,
        trace: Option<&HeaderMap>,
    ) -> Result<PublishAckFuture, PublishFailure> {
        self.ensure_open().map_err(|_| PublishFailure::BrokenPipe)?;
        // After the core NATS sends deferred before it, as they were made.
        self.kick().await.map_err(|_| PublishFailure::BrokenPipe)?;
        let mut headers = trace.cloned().unwrap_or_default();
        headers.insert(MSG_ID_HEADER, sent.envelope.msg_id.as_str());
        let publish = jetstream::message::PublishMessage::build().payload(sent.json.clone()).headers(headers);
        self.inner.js.send_publish(subject.to_owned(), publish).await.map_err(|e| failure(e.kind()))
    }

    /// Waits for the PubAck of the first attempt, then retries with the same msg_id while the
    /// failure may pass (a timeout, a reconnect, a stream leader moving), by the rule of
    /// [`PublishFailure::retry_after`].
    async fn confirm_durable(
        &self,
        subject: &str,
        sent: &Sent,
        trace: Option<&HeaderMap>,
        first: Result<PublishAckFuture, PublishFailure>,
    ) -> Result<PubAck> {
        let cid = &sent.envelope.correlation_id;
        let started = tokio::time::Instant::now();
        let mut attempt = 1;
        let mut result = match first {
            Ok(ack) => ack.await.map_err(|e| failure(e.kind())),
            Err(f) => Err(f),
        };
        loop {
            let failed = match result {
                Ok(ack) => {
                    return Ok(PubAck { stream: ack.stream, sequence: ack.sequence, duplicate: ack.duplicate });
                }
                Err(f) => f,
            };
            let open = self.ensure_open().is_ok();
            let delay = failed
                .retry_after(attempt, started.elapsed(), &self.inner.rules.retry, open, subject, "")
                .map_err(|e| e.with_correlation_id(cid))?;
            tracing::debug!(correlation_id = %cid, attempt, failure = ?failed, "durable publish retried");
            tokio::time::sleep(delay).await;
            attempt += 1;
            result = match self.send_durable(subject, sent, trace).await {
                Ok(ack) => ack.await.map_err(|e| failure(e.kind())),
                Err(f) => Err(f),
            };
        }
    }

    /// Creates the stream (or updates it to these settings), and its dead-letter stream. Its
    /// max_age defaults to the link TTL and may not exceed it.
    pub async fn add_stream(&self, settings: &StreamSettings) -> Result<StreamSummary> {
        self.ensure_open()?;
        let max_age = settings.resolved_max_age(self.inner.link_ttl)?;
        let info = self.create_stream(settings, max_age).await?;
        let dead_letter_stream = if settings.dead_letter {
            let dead = settings.dead_letter_settings();
            self.create_stream(&dead, Duration::ZERO).await?;
            Some(dead.name)
        } else {
            None
        };
        Ok(StreamSummary {
            name: info.config.name,
            subjects: info.config.subjects,
            max_age: info.config.max_age,
            replicas: info.config.num_replicas,
            messages: info.state.messages,
            dead_letter_stream,
        })
    }

    async fn create_stream(&self, s: &StreamSettings, max_age: Duration) -> Result<stream::Info> {
        let config = stream::Config {
            name: s.name.clone(),
            subjects: s.resolved_subjects(),
            storage: match s.storage {
                Storage::File => stream::StorageType::File,
                Storage::Memory => stream::StorageType::Memory,
            },
            num_replicas: s.replicas,
            max_age,
            retention: match s.retention {
                Retention::Limits => stream::RetentionPolicy::Limits,
                Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
                Retention::Interest => stream::RetentionPolicy::Interest,
            },
            duplicate_window: s.resolved_duplicate_window(max_age)?,
            ..Default::default()
        };
        self.inner
            .js
            .create_or_update_stream(config)
            .await
            .map_err(|e| Error::new(ErrorCode::NatsConnectionFailed, format!("cannot create stream {:?}: {e}", s.name)))
    }

    /// A durable pull consumer on `stream` (created, or updated to these options). INVALID_ARGUMENT
    /// when the stream does not exist or redeliveries could outlive the link objects.
    pub async fn consume(&self, stream: &str, durable: &str, opts: ConsumeOptions) -> Result<Consumer> {
        self.ensure_open()?;
        StreamSettings::check_name(stream)?;
        StreamSettings::check_name(durable).map_err(|_| {
            Error::invalid_argument(format!("{durable:?} is not a durable name: no whitespace, '.', '*', '>'"))
        })?;
        opts.check_link_lifetime(self.inner.link_ttl)?;
        let mut handle = self.inner.js.get_stream(stream).await.map_err(|e| {
            Error::invalid_argument(format!("no stream {stream:?} ({e}); create it with `natsbridge stream add`"))
        })?;
        let work_queue = handle.info().await.map_err(|e| connection_failed("stream info", e))?.config.retention
            == stream::RetentionPolicy::WorkQueue;
        let config = pull::Config {
            durable_name: Some(durable.to_owned()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: opts.ack_wait,
            max_deliver: opts.max_deliver.map_or(-1, |n| n as i64),
            backoff: opts.backoff.clone(),
            max_ack_pending: opts.max_ack_pending.map_or(0, |n| n as i64),
            filter_subject: opts.filter_subject.clone().unwrap_or_default(),
            deliver_policy: match opts.deliver_from {
                DeliverFrom::All => DeliverPolicy::All,
                DeliverFrom::New => DeliverPolicy::New,
            },
            ..Default::default()
        };
        let consumer: PullConsumer = handle.create_consumer(config).await.map_err(|e| {
            Error::new(
                ErrorCode::NatsConnectionFailed,
                format!("cannot create consumer {durable:?} on {stream:?}: {e}"),
            )
        })?;
        let batch = opts.batch;
        let decoder = Decoder {
            client: self.clone(),
            dead_letter_subject: opts.resolved_dead_letter_subject(stream),
            opts,
            work_queue,
        };
        Ok(Consumer {
            decoder: Arc::new(decoder),
            stream: stream.to_owned(),
            batch,
            consumer,
            messages: None,
            decoding: None,
            stalls: 0,
            watch: RedeliveryWatch::default(),
            stop: Stopper::new(),
        })
    }

    /// Link objects uploaded for `stream` whose message is not in it (never published, or gone)
    /// and older than `min_age` (a publish may still be retried within the duplicate window):
    /// listed, and removed unless `dry_run`. Object-store links only: Plik and HTTP stores cannot
    /// be listed.
    pub async fn sweep_links(&self, stream: &str, min_age: Option<Duration>, dry_run: bool) -> Result<SweepReport> {
        self.ensure_open()?;
        let Some(store) = self.inner.object_store.clone() else {
            return err(
                ErrorCode::InvalidArgument,
                "the sweep lists the object store, which this connection does not use",
            );
        };
        let mut handle = self
            .inner
            .js
            .get_stream(stream)
            .await
            .map_err(|e| Error::invalid_argument(format!("no stream {stream:?}: {e}")))?;
        let info = handle.info().await.map_err(|e| connection_failed("stream info", e))?.clone();
        let min_age = min_age.unwrap_or(info.config.duplicate_window);
        let objects = store.objects_of_stream(stream).await?;
        let published = self.msg_ids_in(&handle, &info.state).await?;
        let orphans: Vec<_> =
            objects.iter().filter(|o| o.age >= min_age && !published.contains(&o.msg_id)).cloned().collect();
        if !dry_run {
            for o in &orphans {
                store.delete(&o.url).await?;
            }
        }
        Ok(SweepReport { stream: stream.to_owned(), checked: objects.len(), orphans, dry_run })
    }

    /// The `Nats-Msg-Id` of every message in the stream, read by sequence (a work-queue stream
    /// takes no ordered consumer).
    async fn msg_ids_in(&self, stream: &stream::Stream, state: &stream::State) -> Result<HashSet<String>> {
        if state.messages == 0 {
            return Ok(HashSet::new());
        }
        let reads = futures::stream::iter(state.first_sequence..=state.last_sequence)
            .map(|seq| async move { stream.get_raw_message(seq).await })
            .buffer_unordered(64);
        let results: Vec<_> = reads.collect().await;
        let mut ids = HashSet::new();
        for result in results {
            match result {
                Ok(m) => {
                    if let Some(id) = m.headers.get(MSG_ID_HEADER) {
                        ids.insert(id.as_str().to_owned());
                    }
                }
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {}
                Err(e) => return Err(connection_failed("reading the stream failed", e)),
            }
        }
        Ok(ids)
    }

    /// Deletes a link's object through the store serving its URL; false when no store can.
    async fn delete_link(&self, url: &str) -> Result<bool> {
        let sources = &self.inner.rules.sources;
        match sources.iter().position(|scopes| scopes.iter().any(|s| s.matches(url))) {
            Some(i) => self.inner.stores[i].delete(url).await,
            None => Ok(false),
        }
    }
}

/// A durable pull consumer: yields decoded deliveries, each to be settled by the application.
/// Deliveries that fail to decode are settled here (spec/PROTOCOL.md §12.3) and not yielded: a
/// failed link download is nak'd for a later delivery, anything that can never decode goes to the
/// dead-letter subject and is terminated. After a server restart or a reconnect it pulls again by
/// itself.
///
/// `next` is cancel-safe: a call dropped while a delivery decodes (a timeout around it, a
/// `select!`) leaves the decoding in the consumer, and the next call goes on with it.
pub struct Consumer {
    decoder: Arc<Decoder>,
    stream: String,
    batch: usize,
    consumer: PullConsumer,
    messages: Option<pull::Stream>,
    /// The delivery being decoded, kept across cancelled `next` calls.
    decoding: Option<Decoding>,
    /// Pull streams that failed in a row, for the delay before the next.
    stalls: u32,
    watch: RedeliveryWatch,
    stop: Stopper,
}

impl stop::Pull for Consumer {
    type Item = Result<Delivery>;
    fn next(&mut self) -> impl Future<Output = Option<Result<Delivery>>> + Send + '_ {
        Consumer::next(self)
    }
}

impl Consumer {
    pub fn stream(&self) -> &str {
        &self.stream
    }

    pub fn stopper(&self) -> Stopper {
        self.stop.clone()
    }

    /// The next decoded delivery; None once the connection is drained or this is stopped (a
    /// delivery being decoded then is not settled: it comes again after `ack_wait`).
    pub async fn next(&mut self) -> Option<Result<Delivery>> {
        self.stop.clone().or_stopped(self.next_unstopped()).await
    }

    /// The next delivery and every one ready behind it, up to `max` (at least one); None as for
    /// [`next`](Self::next).
    pub async fn next_batch(&mut self, max: usize) -> Option<Vec<Result<Delivery>>> {
        stop::next_batch(self, max).await
    }

    /// Appends to `out`, up to `max` in all, the deliveries decoded without waiting; false once
    /// the consumer has ended or is stopped. Call it in the runtime's context.
    pub fn take_ready(&mut self, max: usize, out: &mut Vec<Result<Delivery>>) -> bool {
        stop::take_ready(self, max, out)
    }

    async fn next_unstopped(&mut self) -> Option<Result<Delivery>> {
        loop {
            if let Some(decoding) = &mut self.decoding {
                let delivery = decoding.await;
                self.decoding = None;
                match delivery {
                    Some(delivery) => return Some(Ok(delivery)),
                    None => continue,
                }
            }
            if self.decoder.client.ensure_open().is_err() {
                return None;
            }
            let messages = match &mut self.messages {
                Some(m) => m,
                None => {
                    let pull = self
                        .consumer
                        .stream()
                        .max_messages_per_batch(self.batch)
                        .expires(PULL_EXPIRES)
                        .heartbeat(PULL_HEARTBEAT)
                        .messages()
                        .await;
                    match pull {
                        Ok(m) => self.messages.insert(m),
                        Err(e) => {
                            self.stall(e.to_string()).await;
                            continue;
                        }
                    }
                }
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    self.stalls = 0;
                    self.decoding = self.start_decoding(message);
                }
                Some(Err(e)) if e.kind() == pull::MessagesErrorKind::MissingHeartbeat => {
                    tracing::debug!(stream = %self.stream, "missed heartbeat; pulling again");
                    self.messages = None;
                }
                Some(Err(e)) => {
                    self.messages = None;
                    self.stall(e.to_string()).await;
                }
                None => {
                    self.messages = None;
                    self.stall("the pull stream ended".into()).await;
                }
            }
        }
    }

    /// Like [`next`](Self::next) with a time limit: Err(TIMEOUT) when nothing decodes in time
    /// (a delivery still decoding then is handed out by the next call).
    pub async fn next_timeout(&mut self, timeout: Duration) -> Option<Result<Delivery>> {
        match tokio::time::timeout(timeout, self.next()).await {
            Ok(next) => next,
            Err(_) => Some(err(ErrorCode::Timeout, format!("no delivery within {timeout:?}"))),
        }
    }

    /// Waits before pulling again, while the server is away.
    async fn stall(&mut self, why: String) {
        self.stalls += 1;
        tracing::debug!(stream = %self.stream, stalls = self.stalls, %why, "pull interrupted; pulling again");
        tokio::time::sleep(stall_delay(self.stalls)).await;
    }

    /// Starts decoding one message (None: not a JetStream delivery, skipped).
    fn start_decoding(&mut self, message: jetstream::Message) -> Option<Decoding> {
        let mut info = match message.info() {
            Ok(i) => DeliveryInfo {
                stream: i.stream.to_owned(),
                consumer: i.consumer.to_owned(),
                stream_sequence: i.stream_sequence,
                consumer_sequence: i.consumer_sequence,
                delivered: i.delivered.max(1) as u64,
                pending: i.pending,
                replayed: false,
            },
            Err(e) => {
                tracing::warn!(error = %e, "a delivery without JetStream metadata; skipped");
                return None;
            }
        };
        self.watch.observe(&mut info);
        Some(Box::pin(self.decoder.clone().decode(message, info)))
    }
}

/// A message being decoded into a delivery (None: it failed and was settled).
type Decoding = Pin<Box<dyn Future<Output = Option<Delivery>> + Send>>;

/// What decoding a delivery needs, shared by the consumer and the decoding in flight.
struct Decoder {
    client: Client,
    opts: ConsumeOptions,
    dead_letter_subject: String,
    work_queue: bool,
}

impl Decoder {
    /// Decodes one message, telling the server it is in progress while links download. A
    /// failure is settled here and gives None.
    async fn decode(self: Arc<Self>, message: jetstream::Message, info: DeliveryInfo) -> Option<Delivery> {
        let (message, acker) = message.split();
        let receive = self.client.receive_message(&message.payload, Some(&message.subject), message.headers.as_ref());
        tokio::pin!(receive);
        // First tick after half the ack wait: an immediate first tick still waits for the
        // timer wheel's next millisecond, which capped consumption near 900 messages/s.
        let every = self.opts.keepalive();
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let result = loop {
            tokio::select! {
                result = &mut receive => break result,
                _ = keepalive.tick() => {
                    let _ = acker.ack_with(AckKind::Progress).await;
                }
            }
        };
        match result {
            Ok(mut received) => {
                received.subject = Some(message.subject.to_string());
                let links = if self.work_queue {
                    received
                        .envelope
                        .payloads
                        .iter()
                        .filter(|p| p.transport == "link")
                        .filter_map(|p| p.data.as_str().map(str::to_owned))
                        .collect()
                } else {
                    Vec::new()
                };
                let ack = DeliveryAck(Arc::new(AckState {
                    acker,
                    waits: self.opts.ack_waits(links.len()),
                    client: self.client.clone(),
                    links,
                    settled: AtomicBool::new(false),
                }));
                Some(Delivery { received, info, ack })
            }
            Err(e) => {
                self.settle_failure(&message.subject, &message.payload, &e, &info, &acker).await;
                None
            }
        }
    }

    async fn settle_failure(&self, subject: &str, payload: &[u8], error: &Error, info: &DeliveryInfo, acker: &Acker) {
        let settlement = self.opts.settlement(error, info.delivered);
        tracing::warn!(
            stream = %info.stream, sequence = info.stream_sequence, delivered = info.delivered,
            error = %error, ?settlement, "delivery failed to decode"
        );
        let settled = match settlement {
            Settlement::Nak(delay) => acker.ack_with(AckKind::Nak(Some(delay))).await,
            Settlement::Term => match self.dead_letter(subject, payload, error, info).await {
                Ok(()) => acker.ack_with(AckKind::Term).await,
                Err(e) => {
                    // Not terminated without its dead letter: delivered again instead.
                    tracing::warn!(error = %e, "dead letter not published; nak instead of term");
                    acker.ack_with(AckKind::Nak(Some(self.opts.nak_delay_after(info.delivered)))).await
                }
            },
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "settling a failed delivery failed; the server delivers it again after ack_wait");
        }
    }

    /// Republishes what can never decode to the dead-letter subject: the seeds' error response
    /// naming where it came from, the original bytes as its payload. Durable when a stream
    /// captures the subject (msg_id from stream and sequence, so a retry is stored once).
    async fn dead_letter(&self, subject: &str, payload: &[u8], error: &Error, info: &DeliveryInfo) -> Result<()> {
        let client = &self.client;
        let to = self.dead_letter_subject.as_str();
        let letter = DeadLetter::of(payload, error, subject, info);
        let mut envelope = client.inner.sender.envelope(to, &letter.opts);
        envelope.msg_id = letter.msg_id;
        envelope.error = Some(letter.error);
        let payloads = vec![letter.original];
        match client.stream_for(to).await {
            Ok(stream) => {
                let built = client.build_envelope(envelope, payloads, &letter.opts, Some(&stream)).await?;
                let (span, headers) = built.trace.publish(to, built.sent.json.len());
                let first = client.send_durable(to, &built.sent, headers.as_ref()).await;
                client.confirmed(to, built, span, headers, first).await.map(|_| ())
            }
            Err(_) => {
                tracing::warn!(subject = to, "no stream keeps dead letters; published on core NATS");
                let built = client.build_envelope(envelope, payloads, &letter.opts, None).await?;
                client
                    .nats()
                    .publish(to.to_owned(), built.sent.json)
                    .await
                    .map_err(|e| connection_failed("dead letter", e))
            }
        }
    }
}

/// One decoded delivery and how to settle it.
pub struct Delivery {
    pub received: Received,
    pub info: DeliveryInfo,
    pub ack: DeliveryAck,
}

/// Settles a delivery; cheap to clone (a binding keeps one beside the decoded value).
#[derive(Clone)]
pub struct DeliveryAck(Arc<AckState>);

struct AckState {
    acker: Acker,
    /// `ack` waits for the server's confirmation (`ConsumeOptions::ack_waits`).
    waits: bool,
    client: Client,
    /// Link objects to delete after the final ack (work-queue streams).
    links: Vec<String>,
    settled: AtomicBool,
}

impl DeliveryAck {
    /// Processed: the message is not delivered again. With `double_ack`, or links to delete, it
    /// waits for the server's confirmation.
    pub async fn ack(&self) -> Result<()> {
        let state = &self.0;
        self.settle()?;
        let result = if state.waits { state.acker.double_ack().await } else { state.acker.ack().await };
        result.map_err(|e| connection_failed("ack failed", e))?;
        for url in &state.links {
            if let Err(e) = state.client.delete_link(url).await {
                tracing::warn!(url = protocol::display_url(url), error = %e, "link object not deleted; a sweep removes it");
            }
        }
        Ok(())
    }

    /// Not processed: delivered again after `delay` (None: at once).
    pub async fn nak(&self, delay: Option<Duration>) -> Result<()> {
        self.settle()?;
        self.0.acker.ack_with(AckKind::Nak(delay)).await.map_err(|e| connection_failed("nak failed", e))
    }

    /// Still working on it: the server waits another ack_wait before delivering again.
    pub async fn in_progress(&self) -> Result<()> {
        if self.0.settled.load(Ordering::Acquire) {
            return err(ErrorCode::InvalidArgument, "the delivery was already settled");
        }
        self.0.acker.ack_with(AckKind::Progress).await.map_err(|e| connection_failed("in_progress failed", e))
    }

    /// Never to be processed: not delivered again.
    pub async fn term(&self) -> Result<()> {
        self.settle()?;
        self.0.acker.ack_with(AckKind::Term).await.map_err(|e| connection_failed("term failed", e))
    }

    fn settle(&self) -> Result<()> {
        if self.0.settled.swap(true, Ordering::AcqRel) {
            return err(ErrorCode::InvalidArgument, "the delivery was already settled (ack, nak or term)");
        }
        Ok(())
    }
}
