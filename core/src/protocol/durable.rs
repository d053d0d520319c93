//! At-least-once delivery over JetStream (spec/PROTOCOL.md §12) as plain rules: the stream and
//! consumer settings every binding takes by one name each, how a delivery that fails to decode is
//! settled (nak with a delay, or term plus a dead letter), and how long link objects must live.
//! No I/O: core's tokio client and the browser's JS both follow these.

use super::options::{bad, count, duration, flag, list, text};
use super::{ErrorBody, TimeUnit};
use crate::error::{Error, ErrorCode, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// The header JetStream deduplicates publishes by; its value is the envelope's `msg_id`.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// Object metadata naming the stream and message a link object was uploaded for (the sweep
/// finds objects whose message never reached the stream by them).
pub const LINK_STREAM_META: &str = "natsbridge-stream";
pub const LINK_MSG_ID_META: &str = "natsbridge-msg-id";

/// Where a consumer of `stream` republishes what can never decode, unless told otherwise.
pub fn dead_letter_subject(stream: &str) -> String {
    format!("natsbridge.dead_letter.{stream}")
}

/// The stream `stream add` creates beside `stream` to keep its dead letters.
pub fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}_DEAD_LETTER")
}

/// What the server tells a durable publisher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PubAck {
    pub stream: String,
    pub sequence: u64,
    /// The stream already held a message with this msg_id (a retried publish): stored once.
    pub duplicate: bool,
}

/// Where a delivery came from and how often it was delivered, as the server says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryInfo {
    pub stream: String,
    pub consumer: String,
    pub stream_sequence: u64,
    pub consumer_sequence: u64,
    /// 1 on the first delivery.
    pub delivered: u64,
    /// Messages still pending for the consumer.
    pub pending: u64,
    /// Delivered again after the server lost its record of an earlier delivery (a server killed
    /// before it wrote the consumer's state): `delivered` then says 1. See [`RedeliveryWatch`].
    pub replayed: bool,
}

impl DeliveryInfo {
    /// Delivered before: by the server's count, or as [`RedeliveryWatch`] saw.
    pub fn redelivered(&self) -> bool {
        self.delivered > 1 || self.replayed
    }

    /// As every binding hands it to the host: the fields and `redelivered`.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("plain data");
        v["redelivered"] = Value::Bool(self.redelivered());
        v
    }
}

/// Why a durable publish attempt failed, as a driver tells it (async-nats' `PublishErrorKind`,
/// nats.js' errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishFailure {
    /// No responders: no stream (yet) captures the subject, or its leader is moving.
    StreamNotFound,
    WrongLastMessageId,
    WrongLastSequence,
    /// No PubAck in time.
    TimedOut,
    /// The connection dropped.
    BrokenPipe,
    /// Too many PubAcks outstanding.
    MaxAckPending,
    MaxPayloadExceeded,
    Other,
}

/// How long a durable publish keeps retrying failures that may pass, counted from its first
/// attempt, even past the connection's `max_retries`: long enough for a stream leader's
/// election (5–7 s on a 3-node cluster, during which publishes get "no responders" at once) or
/// a server restart.
pub const PUBLISH_FAILOVER: Duration = Duration::from_secs(15);

impl PublishFailure {
    /// After failed attempt `attempt` (1-based), `elapsed` after the first began: the delay
    /// before publishing again with the same msg_id, or the send's error when the failure cannot
    /// pass, the connection is closed, or both the connection's retries and [`PUBLISH_FAILOVER`]
    /// are spent.
    pub fn retry_after(
        self,
        attempt: u32,
        elapsed: Duration,
        retry: &super::RetryPolicy,
        open: bool,
        subject: &str,
        detail: &str,
    ) -> Result<Duration> {
        use PublishFailure::*;
        let may_pass = matches!(self, TimedOut | BrokenPipe | Other | StreamNotFound | MaxAckPending);
        let delay = retry.delay_after(attempt);
        if may_pass && open && (attempt <= retry.retries || elapsed + delay <= PUBLISH_FAILOVER) {
            return Ok(delay);
        }
        let code = match self {
            TimedOut => ErrorCode::Timeout,
            MaxPayloadExceeded => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::NatsConnectionFailed,
        };
        Err(Error::new(
            code,
            format!(
                "durable publish to {subject:?} failed after {attempt} attempt(s) in {elapsed:.1?}: {self:?}: {detail}"
            ),
        ))
    }
}

/// A durable send to a subject no stream captures: never a silent core-NATS publish.
pub fn no_stream_error(subject: &str, detail: &str) -> Error {
    Error::invalid_argument(format!(
        "no JetStream stream captures subject {subject:?} ({detail}); create one (stream add NAME with subjects [{subject:?}]) or send without jetstream"
    ))
}

/// How long one pull request waits for messages, and the idle heartbeat that tells a live pull
/// from a dead one.
pub const PULL_EXPIRES: Duration = Duration::from_secs(5);
pub const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

/// The wait before pulling again after `stalls` failed or ended pulls in a row: 100 ms doubling
/// to 2 s, so a consumer resumes by itself once the server is back.
pub fn stall_delay(stalls: u32) -> Duration {
    Duration::from_millis(100).saturating_mul(1 << stalls.saturating_sub(1).min(5)).min(Duration::from_secs(2))
}

/// Marks the redeliveries a server no longer counts. A nats-server killed with SIGKILL loses the
/// consumer state it had not yet written (even with `sync_interval: always`); restarted, it
/// delivers those messages again with `delivered` 1 and consumer sequences it already used. A
/// consumer sequence at or below the highest one seen is therefore a redelivery.
#[derive(Clone, Debug, Default)]
pub struct RedeliveryWatch {
    highest_consumer_sequence: u64,
}

impl RedeliveryWatch {
    pub fn observe(&mut self, info: &mut DeliveryInfo) {
        if info.consumer_sequence <= self.highest_consumer_sequence {
            info.replayed = true;
        } else {
            self.highest_consumer_sequence = info.consumer_sequence;
        }
    }
}

/// How a delivery that failed to decode is settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered again after the delay: the failure may pass (a link download).
    Nak(Duration),
    /// Never delivered again; the message goes to the dead-letter subject first.
    Term,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Retention {
    #[default]
    Limits,
    /// Each message goes to one consumer and leaves the stream when acked; its link objects are
    /// deleted then too.
    WorkQueue,
    Interest,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum DeliverFrom {
    /// Everything still in the stream (a new durable's first position).
    #[default]
    All,
    /// Only what is published after the consumer is created.
    New,
}

/// Every stream setting, by its canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum StreamOptionName {
    Subjects,
    Storage,
    Replicas,
    MaxAge,
    Retention,
    DuplicateWindow,
    DeadLetter,
}

/// Every consumer setting, by its canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum ConsumeOptionName {
    AckWait,
    MaxDeliver,
    Backoff,
    MaxAckPending,
    DoubleAck,
    NakDelay,
    DeadLetterSubject,
    FilterSubject,
    Batch,
    DeliverFrom,
}

macro_rules! names {
    ($t:ty) => {
        impl $t {
            pub const ALL: &'static [$t] = <$t as strum::VariantArray>::VARIANTS;

            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Whether the setting is a duration (C spells these with an `_ms` suffix).
            pub fn is_duration(self) -> bool {
                matches!(self.as_str(), "max_age" | "duplicate_window" | "ack_wait" | "backoff" | "nak_delay")
            }

            fn parse(kind: &str, name: &str) -> Result<$t> {
                name.parse().map_err(|_| {
                    let all: Vec<_> = Self::ALL.iter().map(|o| o.as_str()).collect();
                    Error::invalid_argument(format!("unknown {kind} option {name:?}; they are {}", all.join(", ")))
                })
            }
        }
    };
}
names!(StreamOptionName);
names!(ConsumeOptionName);

/// A JetStream stream as `stream add` creates it.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSettings {
    pub name: String,
    /// Empty: the stream's name as its one subject, with `.>` under it.
    pub subjects: Vec<String>,
    pub storage: Storage,
    pub replicas: usize,
    /// None: the link store's TTL, so no message outlives its links.
    pub max_age: Option<Duration>,
    pub retention: Retention,
    /// Publishes retried with the same msg_id inside this window are stored once. None: two
    /// minutes, or max_age when that is shorter (as nats-server defaults it).
    pub duplicate_window: Option<Duration>,
    /// Also create the stream that keeps this stream's dead letters.
    pub dead_letter: bool,
}

/// nats-server's duplicate window when none is given.
const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl StreamSettings {
    pub fn new(name: &str) -> StreamSettings {
        StreamSettings {
            name: name.to_owned(),
            subjects: Vec::new(),
            storage: Storage::File,
            replicas: 1,
            max_age: None,
            retention: Retention::Limits,
            duplicate_window: None,
            dead_letter: true,
        }
    }

    /// A stream name as the server takes it: non-empty, no whitespace, no `.`, `*`, `>`, path separators.
    pub fn check_name(name: &str) -> Result<()> {
        if name.is_empty() || name.contains(['.', '*', '>', '/', '\\', ' ', '\t', '\r', '\n']) {
            return Err(Error::invalid_argument(format!(
                "{name:?} is not a stream name: non-empty, without whitespace, '.', '*', '>', '/' or '\\'"
            )));
        }
        Ok(())
    }

    pub fn set(&mut self, name: &str, value: &Value, unit: TimeUnit) -> Result<()> {
        let option = StreamOptionName::parse("stream", name)?;
        if value.is_null() {
            return Ok(());
        }
        let v = value;
        use StreamOptionName::*;
        match option {
            Subjects => list(name, v, &mut self.subjects)?,
            Storage => self.storage = text(name, v)?.parse().map_err(|_| bad(name, v, "\"file\" or \"memory\""))?,
            Replicas => {
                let n = count(name, v)?;
                if !(1..=5).contains(&n) {
                    return Err(bad(name, v, "1 to 5 replicas"));
                }
                self.replicas = n as usize;
            }
            MaxAge => self.max_age = Some(duration(name, v, unit)?),
            Retention => {
                self.retention =
                    text(name, v)?.parse().map_err(|_| bad(name, v, "\"limits\", \"workqueue\" or \"interest\""))?
            }
            DuplicateWindow => self.duplicate_window = Some(duration(name, v, unit)?),
            DeadLetter => self.dead_letter = flag(name, v)?,
        }
        Ok(())
    }

    pub fn from_json(name: &str, options: &Map<String, Value>, unit: TimeUnit) -> Result<StreamSettings> {
        StreamSettings::check_name(name)?;
        let mut s = StreamSettings::new(name);
        options.iter().try_for_each(|(k, v)| s.set(k, v, unit))?;
        for subject in &s.subjects {
            super::check_subject(subject)?;
        }
        Ok(s)
    }

    /// The subjects the stream captures.
    pub fn resolved_subjects(&self) -> Vec<String> {
        if self.subjects.is_empty() { vec![format!("{}.>", self.name)] } else { self.subjects.clone() }
    }

    /// The max_age to create the stream with: the setting, else the link TTL. INVALID_ARGUMENT when
    /// messages would outlive their links (a redelivery would find its link gone).
    pub fn resolved_max_age(&self, link_ttl: Option<Duration>) -> Result<Duration> {
        match (self.max_age, link_ttl) {
            (None, Some(ttl)) => Ok(ttl),
            (None, None) => Ok(Duration::ZERO),
            (Some(age), Some(ttl)) if age.is_zero() || age > ttl => Err(Error::invalid_argument(format!(
                "stream {:?}: max_age {} outlives the link objects' TTL of {:?}: a redelivered message would find \
                 its links gone; give max_age <= the TTL or raise object_store_ttl / plik_ttl",
                self.name,
                if age.is_zero() { "unlimited".to_owned() } else { format!("{age:?}") },
                ttl
            ))),
            (Some(age), _) => Ok(age),
        }
    }

    /// The duplicate window to create the stream with (`max_age` resolved, zero: unlimited).
    /// INVALID_ARGUMENT for a window longer than max_age, which the server refuses.
    pub fn resolved_duplicate_window(&self, max_age: Duration) -> Result<Duration> {
        let limited = |d: Duration| if max_age.is_zero() { d } else { d.min(max_age) };
        match self.duplicate_window {
            None => Ok(limited(DEFAULT_DUPLICATE_WINDOW)),
            Some(w) if limited(w) < w => Err(Error::invalid_argument(format!(
                "stream {:?}: duplicate_window {w:?} is longer than max_age {max_age:?}: give duplicate_window <= max_age",
                self.name
            ))),
            Some(w) => Ok(w),
        }
    }

    /// The settings of the stream that keeps this one's dead letters.
    pub fn dead_letter_settings(&self) -> StreamSettings {
        StreamSettings {
            name: dead_letter_stream(&self.name),
            subjects: vec![dead_letter_subject(&self.name)],
            retention: Retention::Limits,
            dead_letter: false,
            max_age: Some(Duration::ZERO),
            ..self.clone()
        }
    }
}

/// How a durable consumer pulls and settles.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumeOptions {
    /// How long the server waits for an ack before delivering again.
    pub ack_wait: Duration,
    /// None: deliver until acked or terminated.
    pub max_deliver: Option<u64>,
    /// Redelivery delays after each unacknowledged delivery (server side); empty: `ack_wait`.
    pub backoff: Vec<Duration>,
    /// None: the server's default (1,000).
    pub max_ack_pending: Option<u64>,
    /// `ack` waits for the server's confirmation.
    pub double_ack: bool,
    /// The nak delay after a failed link download; doubles with each delivery, up to 30 s.
    pub nak_delay: Duration,
    /// None: `natsbridge.dead_letter.<stream>`.
    pub dead_letter_subject: Option<String>,
    pub filter_subject: Option<String>,
    /// Messages asked for per pull request.
    pub batch: usize,
    pub deliver_from: DeliverFrom,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            ack_wait: Duration::from_secs(30),
            max_deliver: None,
            backoff: Vec::new(),
            max_ack_pending: None,
            double_ack: false,
            nak_delay: Duration::from_secs(1),
            dead_letter_subject: None,
            filter_subject: None,
            batch: 100,
            deliver_from: DeliverFrom::All,
        }
    }
}

const MAX_NAK_DELAY: Duration = Duration::from_secs(30);

impl ConsumeOptions {
    pub fn set(&mut self, name: &str, value: &Value, unit: TimeUnit) -> Result<()> {
        let option = ConsumeOptionName::parse("consume", name)?;
        if value.is_null() {
            return Ok(());
        }
        let v = value;
        use ConsumeOptionName::*;
        match option {
            AckWait => {
                self.ack_wait = duration(name, v, unit)?;
                if self.ack_wait < Duration::from_millis(100) {
                    return Err(bad(name, v, "at least 100 ms"));
                }
            }
            MaxDeliver => {
                // -1: unlimited, as in the NATS clients.
                let unlimited = matches!(v, Value::Number(n) if n.as_f64() == Some(-1.0));
                self.max_deliver = if unlimited { None } else { Some(count(name, v)?.max(1)) };
            }
            Backoff => {
                let items = match v {
                    Value::Array(items) => items.clone(),
                    _ => return Err(bad(name, v, "a list of durations")),
                };
                self.backoff = items.iter().map(|d| duration(name, d, unit)).collect::<Result<_>>()?;
            }
            MaxAckPending => self.max_ack_pending = Some(count(name, v)?.max(1)),
            DoubleAck => self.double_ack = flag(name, v)?,
            NakDelay => self.nak_delay = duration(name, v, unit)?,
            DeadLetterSubject => {
                let subject = text(name, v)?;
                super::check_subject(&subject)?;
                self.dead_letter_subject = Some(subject);
            }
            FilterSubject => {
                let subject = text(name, v)?;
                super::check_subject(&subject)?;
                self.filter_subject = Some(subject);
            }
            Batch => {
                let n = count(name, v)?;
                if n == 0 || n > 10_000 {
                    return Err(bad(name, v, "1 to 10,000 messages"));
                }
                self.batch = n as usize;
            }
            DeliverFrom => {
                self.deliver_from = text(name, v)?.parse().map_err(|_| bad(name, v, "\"all\" or \"new\""))?
            }
        }
        if let (Some(max), false) = (self.max_deliver, self.backoff.is_empty())
            && (self.backoff.len() as u64) > max
        {
            return Err(Error::invalid_argument(format!(
                "backoff has {} delays but max_deliver is {max}: the server refuses more delays than deliveries",
                self.backoff.len()
            )));
        }
        Ok(())
    }

    pub fn from_json(options: &Map<String, Value>, unit: TimeUnit) -> Result<ConsumeOptions> {
        let mut o = ConsumeOptions::default();
        options.iter().try_for_each(|(k, v)| o.set(k, v, unit))?;
        Ok(o)
    }

    pub fn resolved_dead_letter_subject(&self, stream: &str) -> String {
        self.dead_letter_subject.clone().unwrap_or_else(|| dead_letter_subject(stream))
    }

    /// The delay of a nak after delivery `delivered` (1-based) failed to download.
    pub fn nak_delay_after(&self, delivered: u64) -> Duration {
        let factor = 1u32.checked_shl(delivered.saturating_sub(1).min(31) as u32).unwrap_or(u32::MAX);
        self.nak_delay.saturating_mul(factor).min(MAX_NAK_DELAY.max(self.nak_delay))
    }

    /// The rule for a delivery that failed with `error`: a failure that may pass (a download, a
    /// timeout, the connection) is nak'd for a later delivery, unless this was the last delivery
    /// the consumer allows; anything else can never decode and is terminated (after a dead letter).
    pub fn settlement(&self, error: &Error, delivered: u64) -> Settlement {
        let transient =
            matches!(error.code, ErrorCode::DownloadFailed | ErrorCode::Timeout | ErrorCode::NatsConnectionFailed);
        let last = self.max_deliver.is_some_and(|max| delivered >= max);
        if transient && !last { Settlement::Nak(self.nak_delay_after(delivered)) } else { Settlement::Term }
    }

    /// How often a delivery still decoding (links downloading) is reported in progress.
    pub fn keepalive(&self) -> Duration {
        self.ack_wait / 2
    }

    /// Whether `ack` waits for the server's confirmation: asked for, or link objects are deleted
    /// after it (they may go only once the message surely will not come back).
    pub fn ack_waits(&self, links_to_delete: usize) -> bool {
        self.double_ack || links_to_delete > 0
    }

    /// The longest a message can keep being redelivered: each delivery waits its ack wait (or
    /// backoff) or its nak delay, whichever is longer. None when deliveries are unlimited.
    pub fn redelivery_span(&self) -> Option<Duration> {
        let max = self.max_deliver?;
        let wait = |i: u64| -> Duration {
            let ack = match self.backoff.last() {
                Some(last) => *self.backoff.get(i as usize).unwrap_or(last),
                None => self.ack_wait,
            };
            ack.max(self.nak_delay_after(i + 1))
        };
        Some((0..max.min(10_000)).map(wait).sum())
    }

    /// INVALID_ARGUMENT when a message could still be redelivered after its link objects expired.
    pub fn check_link_lifetime(&self, link_ttl: Option<Duration>) -> Result<()> {
        match (self.redelivery_span(), link_ttl) {
            (Some(span), Some(ttl)) if span > ttl => Err(Error::invalid_argument(format!(
                "redeliveries may go on for {span:?} (ack_wait/backoff and nak delays over max_deliver {}), longer \
                 than the link objects' TTL of {ttl:?}: lower max_deliver or raise object_store_ttl / plik_ttl",
                self.max_deliver.unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    }
}

/// The dead letter of a message that could never decode: the seeds' error response (msg_purpose
/// NACK, `error` = `{code, message, details}`) naming where the original is, with the original
/// bytes as its one binary payload, `original_message`.
pub fn dead_letter_error(error: &Error, subject: &str, info: &DeliveryInfo) -> ErrorBody {
    ErrorBody {
        code: error.code.as_str().to_owned(),
        message: error.message.clone(),
        details: serde_json::json!({
            "subject": subject,
            "stream": info.stream,
            "stream_sequence": info.stream_sequence,
            "consumer": info.consumer,
            "delivered": info.delivered,
            "correlation_id": error.correlation_id,
        }),
    }
}

pub const DEAD_LETTER_PAYLOAD: &str = "original_message";

/// Everything of a dead letter but its sender: the options (NACK, the original's correlation id
/// when it can be read), its msg_id (`dead-letter-<stream>-<sequence>`: a retried dead letter is
/// stored once), the error body, and the original bytes as its one payload.
pub struct DeadLetter {
    pub opts: super::SendOptions,
    pub msg_id: String,
    pub error: ErrorBody,
    pub original: super::Outgoing,
}

impl DeadLetter {
    pub fn of(message: &[u8], error: &Error, subject: &str, info: &DeliveryInfo) -> DeadLetter {
        let opts = super::SendOptions {
            msg_purpose: Some(super::msg_purpose::NACK.to_owned()),
            correlation_id: correlation_id_of(message),
            ..super::SendOptions::default()
        };
        DeadLetter {
            opts,
            msg_id: format!("dead-letter-{}-{}", info.stream, info.stream_sequence),
            error: dead_letter_error(error, subject, info),
            original: super::Outgoing::new(
                DEAD_LETTER_PAYLOAD,
                super::Data::Bytes(bytes::Bytes::copy_from_slice(message)),
                super::PayloadType::Binary,
            ),
        }
    }
}

/// The correlation id of a message that may not parse as an envelope, when one can be read.
pub fn correlation_id_of(message: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Header {
        correlation_id: Option<String>,
    }
    serde_json::from_slice::<Header>(message).ok()?.correlation_id.filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Result<ConsumeOptions> {
        ConsumeOptions::from_json(v.as_object().unwrap(), TimeUnit::Seconds)
    }

    #[test]
    fn failures_that_may_pass_are_naked_with_a_growing_delay_and_the_rest_terminated() {
        let o = opts(json!({"nak_delay": 0.5, "max_deliver": 4})).unwrap();
        let download = Error::new(ErrorCode::DownloadFailed, "down");
        assert_eq!(o.settlement(&download, 1), Settlement::Nak(Duration::from_millis(500)));
        assert_eq!(o.settlement(&download, 3), Settlement::Nak(Duration::from_secs(2)));
        assert_eq!(o.settlement(&download, 4), Settlement::Term, "the last delivery is not lost to a nak");
        for code in [ErrorCode::InvalidEnvelope, ErrorCode::DeserializationError, ErrorCode::ChecksumMismatch] {
            assert_eq!(o.settlement(&Error::new(code, "bad"), 1), Settlement::Term, "{code}");
        }
        let unlimited = opts(json!({"max_deliver": -1})).unwrap();
        assert_eq!(unlimited.settlement(&download, 1_000), Settlement::Nak(MAX_NAK_DELAY));
    }

    #[test]
    fn links_must_outlive_redeliveries() {
        let ttl = Some(Duration::from_secs(60));
        let o = opts(json!({"ack_wait": 10, "max_deliver": 5, "nak_delay": 0.1})).unwrap();
        assert_eq!(o.redelivery_span(), Some(Duration::from_secs(50)));
        o.check_link_lifetime(ttl).unwrap();
        let o = opts(json!({"ack_wait": 10, "max_deliver": 7, "nak_delay": 0.1})).unwrap();
        assert_eq!(o.check_link_lifetime(ttl).unwrap_err().code, ErrorCode::InvalidArgument);
        let o = opts(json!({"backoff": [1, 2], "max_deliver": 3, "nak_delay": 0.1})).unwrap();
        assert_eq!(o.redelivery_span(), Some(Duration::from_secs(5)));
        let stream = StreamSettings::new("S");
        assert_eq!(stream.resolved_max_age(ttl).unwrap(), Duration::from_secs(60));
        let mut long = stream.clone();
        long.max_age = Some(Duration::from_secs(61));
        assert_eq!(long.resolved_max_age(ttl).unwrap_err().code, ErrorCode::InvalidArgument);
        assert_eq!(long.resolved_max_age(None).unwrap(), Duration::from_secs(61));
    }

    #[test]
    fn the_duplicate_window_fits_in_max_age() {
        let secs = Duration::from_secs;
        let mut s = StreamSettings::new("S");
        assert_eq!(s.resolved_duplicate_window(Duration::ZERO).unwrap(), secs(120));
        assert_eq!(s.resolved_duplicate_window(secs(3600)).unwrap(), secs(120));
        assert_eq!(s.resolved_duplicate_window(secs(30)).unwrap(), secs(30), "defaulted down to max_age");
        s.duplicate_window = Some(secs(10));
        assert_eq!(s.resolved_duplicate_window(secs(30)).unwrap(), secs(10));
        s.duplicate_window = Some(secs(60));
        let e = s.resolved_duplicate_window(secs(30)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("duplicate_window"), "{e}");
        assert_eq!(s.resolved_duplicate_window(Duration::ZERO).unwrap(), secs(60));
    }

    #[test]
    fn bad_settings_are_invalid_arguments() {
        for bad in [
            json!({"ack_wait": 0.01}),
            json!({"batch": 0}),
            json!({"backoff": 5}),
            json!({"backoff": [1, 2, 3], "max_deliver": 2}),
            json!({"deliver_from": "last"}),
            json!({"dead_letter_subject": "a..b"}),
            json!({"ackwait": 1}),
        ] {
            assert_eq!(opts(bad.clone()).unwrap_err().code, ErrorCode::InvalidArgument, "{bad}");
        }
        for bad in [json!({"replicas": 0}), json!({"storage": "disk"}), json!({"retention": "queue"})] {
            let e = StreamSettings::from_json("S", bad.as_object().unwrap(), TimeUnit::Seconds).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
        }
        assert!(StreamSettings::check_name("a.b").is_err() && StreamSettings::check_name("").is_err());
        let s = StreamSettings::from_json(
            "S",
            json!({"retention": "workqueue", "max_age": 5000}).as_object().unwrap(),
            TimeUnit::Millis,
        )
        .unwrap();
        assert_eq!((s.retention, s.max_age), (Retention::WorkQueue, Some(Duration::from_secs(5))));
        assert_eq!(s.resolved_subjects(), ["S.>"]);
        assert_eq!(s.dead_letter_settings().subjects, ["natsbridge.dead_letter.S"]);
    }

    #[test]
    fn publishes_that_may_pass_are_retried_with_growing_delays_until_the_budget_is_spent() {
        let retry = super::super::RetryPolicy::default();
        let ms = Duration::from_millis;
        let delay = PublishFailure::TimedOut.retry_after(1, ms(0), &retry, true, "s", "").unwrap();
        assert_eq!(delay, ms(100));
        assert_eq!(PublishFailure::StreamNotFound.retry_after(3, ms(500), &retry, true, "s", "").unwrap(), ms(400));
        // Past max_retries, a stream leader's election is still waited out...
        assert_eq!(PublishFailure::StreamNotFound.retry_after(9, ms(6000), &retry, true, "s", "").unwrap(), ms(5000));
        // ...until PUBLISH_FAILOVER is spent.
        let spent = PublishFailure::TimedOut.retry_after(6, ms(12_000), &retry, true, "s", "").unwrap_err();
        assert_eq!(spent.code, ErrorCode::Timeout);
        assert!(spent.message.contains("6 attempt(s)"), "{spent}");
        let no_retries = super::super::RetryPolicy { retries: 0, ..retry };
        assert!(PublishFailure::TimedOut.retry_after(1, ms(0), &no_retries, true, "s", "").is_ok());
        let closed = PublishFailure::BrokenPipe.retry_after(1, ms(0), &retry, false, "s", "").unwrap_err();
        assert_eq!(closed.code, ErrorCode::NatsConnectionFailed);
        let too_big = PublishFailure::MaxPayloadExceeded.retry_after(1, ms(0), &retry, true, "s", "").unwrap_err();
        assert_eq!(too_big.code, ErrorCode::PayloadTooLarge);
        assert_eq!(
            PublishFailure::WrongLastSequence.retry_after(1, ms(0), &retry, true, "s", "").unwrap_err().code,
            ErrorCode::NatsConnectionFailed
        );
        assert_eq!(
            (stall_delay(1), stall_delay(2), stall_delay(9)),
            (Duration::from_millis(100), Duration::from_millis(200), Duration::from_secs(2))
        );
    }

    #[test]
    fn a_dead_letter_names_its_origin_and_keeps_the_bytes() {
        let info = DeliveryInfo {
            stream: "S".into(),
            consumer: "c".into(),
            stream_sequence: 7,
            consumer_sequence: 3,
            delivered: 2,
            pending: 0,
            replayed: false,
        };
        let error = Error::new(ErrorCode::InvalidEnvelope, "bad").with_correlation_id("c1");
        let d = DeadLetter::of(br#"{"correlation_id":"c1"}"#, &error, "S.x", &info);
        assert_eq!(
            (d.msg_id.as_str(), d.opts.msg_purpose.as_deref(), d.opts.correlation_id.as_deref()),
            ("dead-letter-S-7", Some("NACK"), Some("c1"))
        );
        assert_eq!(d.error.details["stream_sequence"], 7);
        assert_eq!(
            d.original.data,
            super::super::Data::Bytes(bytes::Bytes::from_static(br#"{"correlation_id":"c1"}"#))
        );
        assert!(ConsumeOptions::default().ack_waits(1) && !ConsumeOptions::default().ack_waits(0));
    }

    #[test]
    fn a_consumer_sequence_seen_before_is_a_redelivery_whatever_the_server_counts() {
        let mut watch = RedeliveryWatch::default();
        let at = |seq: u64| DeliveryInfo {
            stream: "S".into(),
            consumer: "c".into(),
            stream_sequence: seq,
            consumer_sequence: seq,
            delivered: 1,
            pending: 0,
            replayed: false,
        };
        for seq in [1, 2, 3] {
            let mut i = at(seq);
            watch.observe(&mut i);
            assert!(!i.redelivered());
        }
        let mut again = at(2);
        watch.observe(&mut again);
        assert!(again.redelivered() && again.to_json()["redelivered"] == true);
        let mut next = at(4);
        watch.observe(&mut next);
        assert!(!next.redelivered());
    }

    #[test]
    fn a_correlation_id_is_read_from_what_parses() {
        assert_eq!(correlation_id_of(br#"{"correlation_id":"c1","payloads":5}"#).as_deref(), Some("c1"));
        assert_eq!(correlation_id_of(b"not json"), None);
    }
}
