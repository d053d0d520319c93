//! The send side of the claim-check rules as a sans-IO machine (spec/PROTOCOL.md §7): which
//! payloads go by link, in which order they are uploaded, whether the envelope fits the server's
//! `max_payload`, the fallback to direct when an upload fails, and the final envelope bytes.
//!
//! A driver (core's tokio client, the browser's JS) asks [`SendPlan::step`] what to do, does it,
//! and hands the result back; the plan never touches a socket.

use super::{
    Data, Envelope, HostValue, PayloadType, Transport, WirePayload, direct_payload_header, link_payload, serialize,
};
use crate::error::{Error, ErrorCode, Result};
use bytes::Bytes;
use serde_json::{Map, Value};
use std::ops::Range;

/// One payload to send: the seeds' `(dataname, data, payload_type)`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub dataname: String,
    pub payload_type: PayloadType,
    pub data: Data,
    /// Where the bytes are read from instead of `data` (then empty), for a byte payload too large
    /// to hold ([`Outgoing::from_source`]).
    #[cfg(feature = "io")]
    pub source: Option<crate::io::ByteSource>,
}

impl Outgoing {
    pub fn new(dataname: impl Into<String>, data: Data, payload_type: PayloadType) -> Self {
        Outgoing {
            dataname: dataname.into(),
            payload_type,
            data,
            #[cfg(feature = "io")]
            source: None,
        }
    }

    /// An image, audio, video or binary payload whose bytes stay in a file or a reader until the
    /// send reads them (spec/PROTOCOL.md §7.5): one too large to ever go direct is streamed to
    /// the link store and never held whole. INVALID_PAYLOAD_TYPE for other payload types.
    #[cfg(feature = "io")]
    pub fn from_source(
        dataname: impl Into<String>,
        payload_type: &str,
        source: crate::io::ByteSource,
    ) -> Result<Outgoing> {
        let dataname = dataname.into();
        let payload_type = PayloadType::parse(payload_type)?;
        if !payload_type.is_bytes() {
            return Err(Error::new(
                ErrorCode::InvalidPayloadType,
                format!(
                    "payload {dataname:?} has payload_type {:?}: only image, audio, video and binary payloads are read from a file or reader",
                    payload_type.as_str()
                ),
            ));
        }
        Ok(Outgoing { source: Some(source), ..Outgoing::new(dataname, Data::Bytes(Bytes::new()), payload_type) })
    }

    /// A payload from a host value and a payload_type name, by the rules every binding shares:
    /// bytes are an arrowtable's IPC stream, a dictionary's or jsontable's JSON text, or the raw
    /// bytes of the byte types; a string is a text payload, or a JSON string value for a
    /// dictionary; a JSON value is a dictionary or jsontable, or an arrowtable's rows (core builds
    /// the IPC stream). Whether the data then fits its type is checked when it is serialized.
    pub fn from_host(dataname: impl Into<String>, payload_type: &str, value: HostValue) -> Result<Outgoing> {
        let dataname = dataname.into();
        let payload_type = PayloadType::parse(payload_type)?;
        let mismatch = |what: &str| {
            Error::new(
                ErrorCode::InvalidPayloadType,
                format!("payload {dataname:?} has payload_type {:?}, which cannot hold {what}", payload_type.as_str()),
            )
        };
        let data = match (payload_type, value) {
            (PayloadType::ArrowTable, HostValue::Bytes(b)) => Data::Arrow(b),
            (PayloadType::Dictionary | PayloadType::JsonTable, HostValue::Bytes(b)) => Data::JsonBytes(b),
            (PayloadType::Text, HostValue::Bytes(b)) => match String::from_utf8(b.to_vec()) {
                Ok(s) => Data::Text(s),
                Err(_) => return Err(mismatch("bytes that are not UTF-8")),
            },
            (_, HostValue::Bytes(b)) => Data::Bytes(b),
            (PayloadType::Text, HostValue::Text(s)) => Data::Text(s),
            (PayloadType::Dictionary | PayloadType::JsonTable, HostValue::Text(s)) => Data::Json(Value::String(s)),
            (_, HostValue::Text(_)) => return Err(mismatch("a string (it needs bytes)")),
            (PayloadType::Dictionary | PayloadType::JsonTable, HostValue::Json(v)) => Data::Json(v),
            (PayloadType::Dictionary | PayloadType::JsonTable, HostValue::JsonText(s)) => {
                Data::JsonBytes(Bytes::from(s))
            }
            (PayloadType::ArrowTable, HostValue::Json(rows)) => {
                Data::Arrow(super::arrow::from_json_rows(&rows).map_err(|e| {
                    Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?}: {}", e.message))
                })?)
            }
            (PayloadType::ArrowTable, HostValue::JsonText(text)) => {
                let rows: Value = serde_json::from_str(&text).map_err(|e| {
                    Error::new(ErrorCode::InvalidPayloadType, format!("payload {dataname:?}: rows are not JSON: {e}"))
                })?;
                return Outgoing::from_host(dataname, payload_type.as_str(), HostValue::Json(rows));
            }
            (_, HostValue::Json(_) | HostValue::JsonText(_)) => return Err(mismatch("a JSON value")),
        };
        Ok(Outgoing::new(dataname, data, payload_type))
    }
}

/// Per-message options of `smartsend`, with the seeds' names. Unset fields take the sender's
/// defaults.
#[derive(Clone, Default)]
pub struct SendOptions {
    /// None: the connection's threshold.
    pub size_threshold: Option<usize>,
    pub correlation_id: Option<String>,
    pub msg_purpose: Option<String>,
    pub sender_name: Option<String>,
    pub sender_id: Option<String>,
    pub receiver_name: Option<String>,
    pub receiver_id: Option<String>,
    pub reply_to: Option<String>,
    pub reply_to_msg_id: Option<String>,
    pub metadata: Map<String, Value>,
    /// The host's trace context (its current OpenTelemetry context), carried in the message's
    /// headers (spec/PROTOCOL.md §13).
    pub trace: Option<super::TraceContext>,
    /// Store for this message's links instead of the connection's (a per-call upload handler).
    #[cfg(feature = "io")]
    pub link_store: Option<std::sync::Arc<dyn crate::io::store::LinkStore>>,
}

/// Who sends: the header values a message takes when its options leave them unset.
#[derive(Clone, Debug, Default)]
pub struct Sender {
    pub name: String,
    pub id: String,
    pub broker_url: String,
}

impl Sender {
    /// A new envelope for `subject`, fresh ids, the header from `opts` over this sender's
    /// defaults. On wasm32 the caller sets `timestamp` (there is no clock here).
    pub fn envelope(&self, subject: &str, opts: &SendOptions) -> Envelope {
        let mut env = Envelope::new(subject);
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                field.clone_from(v);
            }
        };
        set(&mut env.correlation_id, &opts.correlation_id);
        set(&mut env.msg_purpose, &opts.msg_purpose);
        env.sender_name.clone_from(opts.sender_name.as_ref().unwrap_or(&self.name));
        env.sender_id.clone_from(opts.sender_id.as_ref().unwrap_or(&self.id));
        set(&mut env.receiver_name, &opts.receiver_name);
        set(&mut env.receiver_id, &opts.receiver_id);
        set(&mut env.reply_to, &opts.reply_to);
        set(&mut env.reply_to_msg_id, &opts.reply_to_msg_id);
        env.broker_url.clone_from(&self.broker_url);
        env.metadata = opts.metadata.clone();
        env
    }
}

/// What `smartsend` returns: the envelope and the exact JSON published.
///
/// A direct payload's base64 is written only into `json` (a second copy cost a megabyte
/// payload a 1.3 MB allocation and copy): in `envelope` its `data` is null, and
/// [`Sent::payload_data`] reads the text from `json`.
#[derive(Clone, Debug)]
pub struct Sent {
    pub envelope: Envelope,
    /// UTF-8 JSON; kept as `Bytes` so publishing shares it instead of copying.
    pub json: Bytes,
    /// The stream's acknowledgement, when published in JetStream mode.
    pub pub_ack: Option<super::durable::PubAck>,
    /// Per payload, where the text of its string `data` is in `json`.
    data: Vec<Option<Range<usize>>>,
}

impl Sent {
    pub fn new(envelope: Envelope) -> Sent {
        let json = super::json::envelope_json(&envelope, |_| None);
        Sent { envelope, json: Bytes::from(json.text), pub_ack: None, data: json.data }
    }

    pub fn json_str(&self) -> &str {
        std::str::from_utf8(&self.json).expect("envelope JSON is UTF-8")
    }

    /// Payload `i`'s `data` as it is on the wire when that is a string written without escapes
    /// (a direct payload's base64, a link's URL), read from `json`.
    pub fn payload_data(&self, i: usize) -> Option<&str> {
        self.data_range(i).map(|r| &self.json_str()[r])
    }

    /// Where payload `i`'s string `data` is in `json` (between its quotes).
    pub fn data_range(&self, i: usize) -> Option<Range<usize>> {
        self.data.get(i).cloned().flatten()
    }
}

/// What a send is allowed: the threshold, the server's limit, and whether any store takes uploads.
#[derive(Clone, Copy, Debug)]
pub struct SendLimits {
    /// Payloads of this many serialized bytes or more go by link.
    pub threshold: usize,
    /// The server's max_payload: the envelope JSON must not be longer.
    pub max_payload: usize,
    /// Whether a link store takes uploads.
    pub can_upload: bool,
}

/// Whether a byte payload of `size` bytes from a file or reader is streamed to the link store
/// while it is read, rather than read into memory first (spec/PROTOCOL.md §7.5): only when its
/// base64 alone is over max_payload, so direct transport could never carry it. A smaller one is
/// read and follows §7.1-7.2 like any bytes, the fallback to direct included.
pub fn streams_source(size: u64, limits: &SendLimits) -> bool {
    size.div_ceil(3).saturating_mul(4) > limits.max_payload as u64
}

/// What the driver does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendStep {
    /// Store payload `i`'s serialized bytes ([`SendPlan::bytes`]) and answer with
    /// [`SendPlan::uploaded`] or [`SendPlan::upload_failed`]. Every upload handed out before a
    /// `Wait` may run at the same time.
    Upload(usize),
    /// Uploads are running: hand back the next result.
    Wait,
    /// The envelope is final: publish [`SendPlan::finish`]'s JSON.
    Publish,
}

/// Whether an upload's failure may fall back to direct transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    /// Uploads of the payloads at or over the threshold: a failure falls back to direct.
    Threshold,
    /// An upload to make the envelope fit max_payload: direct does not fit, so a failure is final.
    Fit,
}

/// One smartsend without the I/O.
pub struct SendPlan {
    envelope: Envelope,
    payloads: Vec<Serialized>,
    limits: SendLimits,
    /// Uploads handed out by `step` in the current round, not yet asked for.
    to_upload: Vec<usize>,
    running: usize,
    round: Round,
    /// The last threshold-round upload failure: if direct transport does not fit either, it is the error.
    upload_error: Option<Error>,
    failed: Option<Error>,
    json: Option<(Bytes, Vec<Option<Range<usize>>>)>,
}

struct Serialized {
    dataname: String,
    payload_type: PayloadType,
    bytes: Bytes,
    transport: Transport,
    link: Option<WirePayload>,
    /// A byte payload streamed from a file or reader (§7.5): `bytes` is empty, the driver reads
    /// the source while it uploads, and there is no direct fallback.
    #[cfg(feature = "io")]
    source: Option<crate::io::ByteSource>,
}

impl Serialized {
    fn size(&self) -> usize {
        #[cfg(feature = "io")]
        if let Some(source) = &self.source {
            return usize::try_from(source.size()).unwrap_or(usize::MAX);
        }
        self.bytes.len()
    }

    #[cfg(feature = "io")]
    fn streamed(&self) -> bool {
        self.source.is_some()
    }

    #[cfg(not(feature = "io"))]
    fn streamed(&self) -> bool {
        false
    }

    /// The link payload, once this payload goes by link and its upload is done.
    fn stored_link(&self) -> Option<&WirePayload> {
        self.link.as_ref().filter(|_| self.transport == Transport::Link)
    }
}

impl SendPlan {
    /// Serializes every payload (INVALID_PAYLOAD_TYPE when data does not fit its type) and plans
    /// transports by the threshold: direct iff the serialized size is under it.
    pub fn new(envelope: Envelope, payloads: Vec<Outgoing>, limits: SendLimits) -> Result<SendPlan> {
        let cid = envelope.correlation_id.clone();
        let payloads = payloads
            .into_iter()
            .map(|p| {
                #[cfg(feature = "io")]
                if let Some(source) = p.source {
                    return Ok(Serialized {
                        source: Some(source),
                        dataname: p.dataname,
                        payload_type: p.payload_type,
                        bytes: Bytes::new(),
                        transport: Transport::Link,
                        link: None,
                    });
                }
                let bytes = serialize(&p.dataname, p.payload_type, &p.data)?;
                let transport = super::transport_for_size(bytes.len(), limits.threshold);
                Ok(Serialized {
                    dataname: p.dataname,
                    payload_type: p.payload_type,
                    bytes,
                    transport,
                    link: None,
                    #[cfg(feature = "io")]
                    source: None,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.with_correlation_id(&cid))?;
        let mut plan = SendPlan {
            envelope,
            payloads,
            limits,
            to_upload: Vec::new(),
            running: 0,
            round: Round::Threshold,
            upload_error: None,
            failed: None,
            json: None,
        };
        let links = (0..plan.payloads.len()).filter(|&i| plan.payloads[i].transport == Transport::Link);
        if limits.can_upload {
            // Handed out in payload order: `step` pops from the back.
            plan.to_upload = links.rev().collect();
        } else {
            // Nowhere to upload: as if each upload had failed.
            for i in links.collect::<Vec<_>>() {
                plan.fall_back_to_direct(i, Error::new(ErrorCode::UploadFailed, "no link store is configured"));
            }
        }
        Ok(plan)
    }

    pub fn correlation_id(&self) -> &str {
        &self.envelope.correlation_id
    }

    pub fn dataname(&self, i: usize) -> &str {
        &self.payloads[i].dataname
    }

    pub fn payload_type(&self, i: usize) -> PayloadType {
        self.payloads[i].payload_type
    }

    /// Payload `i`'s size as uploaded: its serialized bytes, or its source's size.
    pub fn size(&self, i: usize) -> usize {
        self.payloads[i].size()
    }

    /// Payload `i`'s serialized bytes: what an upload stores (empty for a streamed source).
    pub fn bytes(&self, i: usize) -> &Bytes {
        &self.payloads[i].bytes
    }

    /// Payload `i`'s file or reader, when it is streamed to the store instead of held.
    #[cfg(feature = "io")]
    pub fn source(&self, i: usize) -> Option<&crate::io::ByteSource> {
        self.payloads[i].source.as_ref()
    }

    /// The next thing to do. An error ends the send: nothing may be published.
    pub fn step(&mut self) -> Result<SendStep> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(i) = self.to_upload.pop() {
            self.running += 1;
            return Ok(SendStep::Upload(i));
        }
        if self.running > 0 {
            return Ok(SendStep::Wait);
        }
        if self.json.is_some() {
            return Ok(SendStep::Publish);
        }
        self.fit().map_err(|e| {
            let e = e.with_correlation_id(&self.envelope.correlation_id);
            self.failed = Some(e.clone());
            e
        })
    }

    /// Builds the envelope; publishes it if it fits, else moves the largest direct payload to link.
    fn fit(&mut self) -> Result<SendStep> {
        self.envelope.payloads = self
            .payloads
            .iter()
            .map(|p| match p.stored_link() {
                Some(link) => link.clone(),
                None => direct_payload_header(&p.dataname, p.payload_type, p.bytes.len(), None),
            })
            .collect();
        // Direct payloads' base64 goes straight into the JSON.
        let payloads = &self.payloads;
        let written = super::json::envelope_json(&self.envelope, |i| {
            payloads[i].stored_link().is_none().then(|| &payloads[i].bytes[..])
        });
        let json = written.text;
        if json.len() <= self.limits.max_payload {
            self.json = Some((Bytes::from(json), written.data));
            return Ok(SendStep::Publish);
        }
        let too_large = |why: &str| {
            Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the envelope is {} bytes, over the server's max_payload of {}; {why}",
                    json.len(),
                    self.limits.max_payload
                ),
            )
        };
        let largest = (0..self.payloads.len())
            .filter(|&i| self.payloads[i].transport == Transport::Direct)
            .max_by_key(|&i| self.payloads[i].bytes.len());
        let Some(i) = largest else {
            return Err(too_large("every payload is already a link"));
        };
        if let Some(e) = self.upload_error.take() {
            return Err(Error::new(
                ErrorCode::UploadFailed,
                format!("{}; direct transport does not fit either", e.message),
            ));
        }
        if !self.limits.can_upload {
            return Err(too_large("no link store is configured (set fileserver_url or enable JetStream)"));
        }
        self.round = Round::Fit;
        self.running = 1;
        Ok(SendStep::Upload(i))
    }

    /// Payload `i` was stored at `url`. `sha256`: the bytes' hex digest when the store computed it
    /// while storing; else it is computed here.
    pub fn uploaded(&mut self, i: usize, url: String, sha256: Option<String>) {
        self.running -= 1;
        let p = &mut self.payloads[i];
        let sha256 = sha256.unwrap_or_else(|| super::sha256_hex(&p.bytes));
        p.link = Some(link_payload(&p.dataname, p.payload_type, p.size(), url, sha256));
        p.transport = Transport::Link;
    }

    /// The upload of payload `i` failed. At the threshold it goes direct instead, if the envelope
    /// then fits; an upload made to fit max_payload has no such fallback.
    pub fn upload_failed(&mut self, i: usize, error: Error) {
        self.running -= 1;
        let error = Error { code: ErrorCode::UploadFailed, ..error };
        match self.round {
            Round::Threshold => self.fall_back_to_direct(i, error),
            Round::Fit => {
                if self.failed.is_none() {
                    self.failed = Some(error.with_correlation_id(&self.envelope.correlation_id));
                }
            }
        }
    }

    /// The fallback of spec/PROTOCOL.md §7.2: a payload whose threshold upload failed (or that had
    /// nowhere to go) goes direct instead; `error` is the send's error if the envelope then does
    /// not fit.
    fn fall_back_to_direct(&mut self, i: usize, error: Error) {
        if self.payloads[i].streamed() {
            // Streamed only because direct transport could never carry it (`streams_source`).
            let error =
                Error::new(ErrorCode::UploadFailed, format!("{}; direct transport does not fit either", error.message));
            self.failed.get_or_insert(error.with_correlation_id(&self.envelope.correlation_id));
            return;
        }
        self.payloads[i].transport = Transport::Direct;
        self.upload_error = Some(error);
    }

    /// The sent envelope and the JSON to publish, once `step` said `Publish`.
    pub fn finish(self) -> Sent {
        let (json, data) = self.json.expect("finish() after step() returned Publish");
        Sent { envelope: self.envelope, json, pub_ack: None, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: PayloadType = PayloadType::Text;

    fn plan(sizes: &[usize], limits: SendLimits) -> SendPlan {
        let payloads =
            sizes.iter().enumerate().map(|(i, &n)| Outgoing::new(format!("p{i}"), Data::Text("x".repeat(n)), TEXT));
        SendPlan::new(Envelope::new("s"), payloads.collect(), limits).unwrap()
    }

    fn limits(threshold: usize, max_payload: usize) -> SendLimits {
        SendLimits { threshold, max_payload, can_upload: true }
    }

    fn transports(sent: &Sent) -> Vec<&str> {
        sent.envelope.payloads.iter().map(|p| p.transport.as_str()).collect()
    }

    #[test]
    fn small_payloads_publish_at_once() {
        let mut p = plan(&[10, 20], limits(100, 1 << 20));
        assert_eq!(p.step().unwrap(), SendStep::Publish);
        let sent = p.finish();
        assert_eq!(transports(&sent), ["direct", "direct"]);
        assert!(sent.json_str().contains("\"payload_bytes\":20"));
    }

    #[test]
    fn direct_data_is_written_once_straight_into_the_json() {
        let mut p = plan(&[200, 10], limits(100, 1 << 20));
        assert_eq!(p.step().unwrap(), SendStep::Upload(0));
        p.uploaded(0, "nats-obj://b/0".into(), None);
        assert_eq!(p.step().unwrap(), SendStep::Publish);
        let sent = p.finish();
        let base64 = crate::protocol::base64_encode(b"xxxxxxxxxx");
        assert_eq!(sent.envelope.payloads[1].data, serde_json::Value::Null, "not kept twice");
        assert_eq!(sent.payload_data(1), Some(base64.as_str()));
        assert_eq!(sent.payload_data(0), Some("nats-obj://b/0"));
        assert_eq!(sent.payload_data(2), None);
        // The bytes on the wire are those of the whole envelope serialized by serde.
        let mut whole = sent.envelope.clone();
        whole.payloads[1].data = base64.clone().into();
        assert_eq!(sent.json_str(), serde_json::to_string(&whole).unwrap());
        let again = Sent::new(whole);
        assert_eq!((again.json_str(), again.payload_data(1)), (sent.json_str(), Some(base64.as_str())));
    }

    #[test]
    fn threshold_links_upload_together_in_order() {
        let mut p = plan(&[200, 10, 300], limits(100, 1 << 20));
        assert_eq!(p.step().unwrap(), SendStep::Upload(0));
        assert_eq!(p.step().unwrap(), SendStep::Upload(2));
        assert_eq!(p.step().unwrap(), SendStep::Wait);
        p.uploaded(2, "nats-obj://b/2".into(), None);
        p.uploaded(0, "nats-obj://b/0".into(), Some("ab".into()));
        assert_eq!(p.step().unwrap(), SendStep::Publish);
        let sent = p.finish();
        assert_eq!(transports(&sent), ["link", "direct", "link"]);
        assert_eq!(sent.envelope.payloads[0].metadata["sha256"], "ab");
        assert_eq!(
            sent.envelope.payloads[2].metadata["sha256"],
            crate::protocol::sha256_hex("x".repeat(300).as_bytes())
        );
    }

    #[test]
    fn a_failed_threshold_upload_goes_direct_when_it_fits() {
        let mut p = plan(&[200], limits(100, 1 << 20));
        assert_eq!(p.step().unwrap(), SendStep::Upload(0));
        p.upload_failed(0, Error::new(ErrorCode::UploadFailed, "store down"));
        assert_eq!(p.step().unwrap(), SendStep::Publish);
        assert_eq!(transports(&p.finish()), ["direct"]);
    }

    #[test]
    fn a_failed_upload_is_the_error_when_direct_does_not_fit() {
        let mut p = plan(&[2000], limits(100, 1500));
        assert_eq!(p.step().unwrap(), SendStep::Upload(0));
        p.upload_failed(0, Error::new(ErrorCode::DownloadFailed, "store down"));
        let e = p.step().unwrap_err();
        assert_eq!(e.code, ErrorCode::UploadFailed);
        assert!(e.message.starts_with("store down; direct transport does not fit"), "{}", e.message);
        assert!(e.correlation_id.is_some());
    }

    #[test]
    fn over_max_payload_the_largest_direct_payload_moves_to_link() {
        let mut p = plan(&[300, 1500, 50], limits(10_000, 2500));
        assert_eq!(p.step().unwrap(), SendStep::Upload(1));
        assert_eq!(p.step().unwrap(), SendStep::Wait);
        p.uploaded(1, "nats-obj://b/1".into(), None);
        assert_eq!(p.step().unwrap(), SendStep::Publish);
        assert_eq!(transports(&p.finish()), ["direct", "link", "direct"]);
        // An upload made to fit has no fallback.
        let mut p = plan(&[600, 900], limits(10_000, 1200));
        assert_eq!(p.step().unwrap(), SendStep::Upload(1));
        p.upload_failed(1, Error::new(ErrorCode::UploadFailed, "store down"));
        assert_eq!(p.step().unwrap_err().message, "store down");
    }

    #[test]
    fn without_a_store_threshold_links_go_direct_when_they_fit() {
        let no_store = |max_payload| SendLimits { threshold: 100, max_payload, can_upload: false };
        let mut p = plan(&[200], no_store(1 << 20));
        assert_eq!(p.step().unwrap(), SendStep::Publish);
        assert_eq!(transports(&p.finish()), ["direct"]);
        let e = plan(&[2000], no_store(1000)).step().unwrap_err();
        assert_eq!(e.code, ErrorCode::UploadFailed);
        assert!(e.message.starts_with("no link store is configured"), "{}", e.message);
    }

    #[test]
    fn nothing_to_move_or_nowhere_to_move_it_is_payload_too_large() {
        let mut p = plan(&[2000], SendLimits { threshold: 10_000, max_payload: 1000, can_upload: false });
        let e = p.step().unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
        assert!(e.message.contains("no link store"), "{}", e.message);
        let mut p = plan(&[], limits(10, 10));
        assert!(p.step().unwrap_err().message.contains("every payload is already a link"));
    }

    #[test]
    fn bad_data_fails_before_any_step() {
        let payloads = vec![Outgoing::new("t", Data::Bytes(Bytes::new()), TEXT)];
        let e = SendPlan::new(Envelope::new("s"), payloads, limits(10, 100)).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidPayloadType);
        assert!(e.correlation_id.is_some());
    }

    #[test]
    fn host_values_follow_one_rule_set() {
        let from = |t: &str, v: HostValue| Outgoing::from_host("p", t, v).map(|o| o.data);
        assert_eq!(from("text", HostValue::Text("hi".into())).unwrap(), Data::Text("hi".into()));
        assert_eq!(from("dictionary", HostValue::Text("hi".into())).unwrap(), Data::Json("hi".into()));
        assert!(matches!(from("binary", HostValue::Bytes(Bytes::from_static(b"\0"))).unwrap(), Data::Bytes(_)));
        assert!(matches!(from("jsontable", HostValue::Bytes(Bytes::from_static(b"[]"))).unwrap(), Data::JsonBytes(_)));
        let rows = HostValue::Json(serde_json::json!([{"a": 1}, {"a": 2}]));
        let Data::Arrow(ipc) = from("arrowtable", rows).unwrap() else { panic!("not arrow") };
        assert_eq!(crate::protocol::arrow::num_rows(&ipc).unwrap(), 2);
        for (t, v) in [("image", HostValue::Text("x".into())), ("binary", HostValue::Json(Value::Null))] {
            assert_eq!(from(t, v).unwrap_err().code, ErrorCode::InvalidPayloadType);
        }
        assert_eq!(from("Text", HostValue::Text("x".into())).unwrap_err().code, ErrorCode::InvalidPayloadType);
    }
}
