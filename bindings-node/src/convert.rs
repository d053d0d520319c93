//! JS values to core types and back. Conversion only: every rule about payloads lives in core.
//!
//! The hand-written `index.js` hands the addon payload data as a string (or JSON text it made
//! with `JSON.stringify`) or a `Uint8Array`, and gets back strings, JSON texts and Buffers, which
//! it parses: V8's `JSON.parse` builds objects far faster than one N-API call per property.

use bytes::Bytes;
use napi::bindgen_prelude::{BufferSlice, Either, Null, Object, ToNapiValue, Uint8Array, Unknown};
use napi::{Env, JsStringLatin1, Result};
use natsbridge::error::Result as CoreResult;
use natsbridge::io::{Outgoing, Received, Sent};
use natsbridge::protocol::{Data, Envelope, ErrorBody, HostValue, arrow};
use serde::Serialize;
use serde_json::{Map, Value};

/// One payload as `index.js` passes it: `[dataname, data, payload_type, json]`, where data is a
/// string (JSON text when `json`) or bytes.
pub type PayloadIn = (String, Either<String, Uint8Array>, String, bool);

/// Core's one rule for host values (`Outgoing::from_host`) decides what each one means.
pub fn outgoing(payloads: Vec<PayloadIn>) -> CoreResult<Vec<Outgoing>> {
    payloads
        .into_iter()
        .map(|(dataname, data, payload_type, json)| {
            let value = match data {
                Either::A(text) if json => HostValue::JsonText(text),
                Either::A(text) => HostValue::Text(text),
                Either::B(bytes) => HostValue::Bytes(Bytes::from_owner(bytes)),
            };
            Outgoing::from_host(dataname, &payload_type, value)
        })
        .collect()
}

/// The envelope's header fields with the seeds' names, serialized for `JSON.parse` in JS.
#[derive(Serialize)]
struct Header<'a> {
    correlation_id: &'a str,
    msg_id: &'a str,
    timestamp: &'a str,
    send_to: &'a str,
    msg_purpose: &'a str,
    sender_name: &'a str,
    sender_id: &'a str,
    receiver_name: &'a str,
    receiver_id: &'a str,
    reply_to: &'a str,
    reply_to_msg_id: &'a str,
    broker_url: &'a str,
    metadata: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorBody>,
}

fn header_json(e: &Envelope) -> String {
    let h = Header {
        correlation_id: &e.correlation_id,
        msg_id: &e.msg_id,
        timestamp: &e.timestamp,
        send_to: &e.send_to,
        msg_purpose: &e.msg_purpose,
        sender_name: &e.sender_name,
        sender_id: &e.sender_id,
        receiver_name: &e.receiver_name,
        receiver_id: &e.receiver_id,
        reply_to: &e.reply_to,
        reply_to_msg_id: &e.reply_to_msg_id,
        broker_url: &e.broker_url,
        metadata: &e.metadata,
        error: e.error.as_ref(),
    };
    serde_json::to_string(&h).expect("a header of strings and JSON values serializes")
}

/// How received arrowtables reach JS: the JSON-rows view (core's one implementation) or the
/// IPC stream bytes (for an apache-arrow `Table`, or as they are).
#[derive(Clone, Copy)]
pub enum ArrowOut {
    Rows,
    Ipc,
}

/// Received byte payloads below this size are copied into a V8-owned Buffer.
const COPY_BELOW: usize = 64 * 1024;

enum Value2 {
    Str(String),
    Bytes(Vec<u8>),
}

/// A received message in the shapes JS receives, made off the JS thread.
pub struct Ready {
    header: String,
    items: Vec<(String, Value2, &'static str, &'static str)>,
    subject: Option<String>,
    reply: Option<String>,
}

pub fn ready(r: Received, arrow_out: ArrowOut) -> CoreResult<Ready> {
    let header = header_json(&r.envelope);
    let mut items = Vec::with_capacity(r.payloads.len());
    for p in r.payloads {
        let value = match (p.data, arrow_out) {
            (Data::Text(s), _) => Value2::Str(s),
            (Data::Json(v), _) => Value2::Str(v.to_string()),
            (Data::Arrow(b), ArrowOut::Rows) => Value2::Str(arrow::to_json_rows_text(&b)?),
            (Data::JsonBytes(b) | Data::Arrow(b) | Data::Bytes(b), _) => Value2::Bytes(Vec::from(b)),
        };
        items.push((p.dataname, value, p.payload_type.as_str(), p.transport.as_str()));
    }
    Ok(Ready { header, items, subject: r.subject, reply: r.reply })
}

/// `{h: headerJson, p: [dataname, value, payload_type, transport, ...], s: subject, r: reply}`:
/// one flat array, so a message costs a handful of N-API calls.
pub fn ready_to_js(env: &Env, r: Ready) -> Result<Unknown<'_>> {
    ready_object(env, r)?.into_unknown(env)
}

/// The object of [`ready_to_js`] (a durable delivery adds its info and settlement to it).
pub fn ready_object(env: &Env, r: Ready) -> Result<Object<'_>> {
    let mut flat = env.create_array((r.items.len() * 4) as u32)?;
    let mut i = 0;
    for (dataname, value, payload_type, transport) in r.items {
        flat.set(i, dataname)?;
        match value {
            Value2::Str(s) => flat.set(i + 1, s)?,
            // Small: a copy V8 owns, so our buffer is reused at once. Large: handed over without
            // a copy (freed when V8 collects it; until then each one is fresh memory).
            Value2::Bytes(b) if b.len() < COPY_BELOW => flat.set(i + 1, BufferSlice::copy_from(env, &b)?)?,
            Value2::Bytes(b) => flat.set(i + 1, BufferSlice::from_data(env, b)?)?,
        }
        flat.set(i + 2, payload_type)?;
        flat.set(i + 3, transport)?;
        i += 4;
    }
    let mut o = Object::new(env)?;
    o.set("h", r.header)?;
    o.set("p", flat)?;
    o.set("s", r.subject)?;
    o.set("r", r.reply)?;
    Ok(o)
}

/// Payload data above this many bytes in all is not parsed again in JS (see [`sent_to_js`]).
const LARGE_DIRECT: usize = 2048;
/// An envelope at least this long becomes an external string (no copy into V8's heap).
const EXTERNAL_JSON: usize = 256 * 1024;

/// A published envelope for JS: `msgJson`, or `[msgJson, skeleton, ranges]` for large direct
/// data, or `[msgJson, skeleton, ranges, pubAck]` for a durable publish. For large direct data
/// `skeleton` is the JSON with each direct payload's data as `null` and `ranges` are `[start,
/// end)` offsets of those data strings in `msgJson` (JS slices them: a V8 slice does not copy,
/// and `JSON.parse` of a megabyte of base64 cost ~1 ms a message); else both are null. `pubAck`
/// is the stream's `{stream, sequence, duplicate}` (core's `PubAck`, JetStream mode).
pub fn sent_to_js(env: &Env, sent: Sent) -> Result<Unknown<'_>> {
    let json = sent.json_str();
    // ASCII: a one-byte JS string, copied without UTF-8 decoding, offsets equal in bytes and
    // in JS string units.
    let ascii = json.is_ascii();
    let direct: usize = (0..sent.envelope.payloads.len()).filter_map(|i| sent.data_range(i)).map(|r| r.len()).sum();
    let large = ascii && direct >= LARGE_DIRECT;
    let text = if !ascii {
        env.create_string(json)?
    } else if large && json.len() >= EXTERNAL_JSON {
        // Large: an external string over our copy of the bytes, which V8 frees when it is
        // collected (V8's own copy page-faulted fresh large-object pages: a third of a 1 MB send).
        JsStringLatin1::from_data(env, json.as_bytes().to_vec())?.into_value()
    } else {
        env.create_string_latin1(json)?
    };
    let ranges = large.then(|| data_ranges(&sent));
    if ranges.is_none() && sent.pub_ack.is_none() {
        return text.into_unknown(env);
    }
    let mut out = env.create_array(if sent.pub_ack.is_some() { 4 } else { 3 })?;
    out.set(0, text)?;
    match ranges {
        Some((skeleton, ranges)) => {
            out.set(1, env.create_string_latin1(&skeleton)?)?;
            out.set(2, ranges.into_iter().map(|r| r as u32).collect::<Vec<u32>>())?;
        }
        None => {
            out.set(1, Null)?;
            out.set(2, Null)?;
        }
    }
    if let Some(ack) = &sent.pub_ack {
        let mut o = Object::new(env)?;
        o.set("stream", ack.stream.as_str())?;
        o.set("sequence", ack.sequence as f64)?;
        o.set("duplicate", ack.duplicate)?;
        out.set(3, o)?;
    }
    out.into_unknown(env)
}

/// The skeleton (the JSON with each string `data` as `null`) and the `[start, end)` offsets of
/// those strings in the JSON, in payload order, from where core wrote them.
fn data_ranges(sent: &Sent) -> (Vec<u8>, Vec<usize>) {
    let bytes = &sent.json[..];
    let mut skeleton = Vec::with_capacity(1024);
    let mut ranges = Vec::new();
    let mut copied = 0;
    for r in (0..sent.envelope.payloads.len()).filter_map(|i| sent.data_range(i)) {
        // The quotes around the text go with it.
        skeleton.extend_from_slice(&bytes[copied..r.start - 1]);
        skeleton.extend_from_slice(b"null");
        copied = r.end + 1;
        ranges.extend([r.start, r.end]);
    }
    skeleton.extend_from_slice(&bytes[copied..]);
    (skeleton, ranges)
}

/// `null` once a subscription or consumer is closed, else an array of `item_to_js` of each
/// decoded item and Error objects (an item that failed to decode; the iterator goes on).
pub fn batch_to_js<'env, T>(
    env: &'env Env,
    batch: Option<Vec<CoreResult<T>>>,
    item_to_js: impl Fn(&'env Env, T) -> Result<Unknown<'env>>,
) -> Result<Unknown<'env>> {
    let Some(batch) = batch else { return Null.into_unknown(env) };
    let mut arr = env.create_array(batch.len() as u32)?;
    for (i, item) in batch.into_iter().enumerate() {
        let value = match item {
            Ok(item) => item_to_js(env, item)?,
            Err(e) => crate::errors::to_js(env, &e)?,
        };
        arr.set(i as u32, value)?;
    }
    arr.into_unknown(env)
}
