//! JS values to core types and back. Conversion only: every rule about payloads lives in core.
//!
//! The hand-written `index.js` hands the addon payload data as a string (or JSON text it made
//! with `JSON.stringify`) or a `Uint8Array`, and gets back strings, JSON texts and Buffers, which
//! it parses: V8's `JSON.parse` builds objects far faster than one N-API call per property.

use crate::errors;
use bytes::Bytes;
use napi::Status;
use napi::bindgen_prelude::{
    Array, BufferSlice, Either3, Function, Null, Object, Promise, ToNapiValue, Uint8Array, Unknown,
};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, JsString, JsStringLatin1, Result};
use natsbridge::error::Result as CoreResult;
use natsbridge::io::{Arrival, ByteSource, Incoming, Outgoing, Received, Sent, StreamedMessage, StreamedPayload};
use natsbridge::protocol::{Data, DirectMessage, Envelope, ErrorBody, HostValue, ReceivedView, TraceContext, arrow};
use serde_json::{Map, Value};

/// One payload as `index.js` passes it: `[dataname, data, payload_type, kind]`, where data is a
/// string, bytes or a pull function (a stream's), and `kind` says what a string is
/// ([`JSON_TEXT`], [`FILE_PATH`], else text) or, for a pull function, the stream's size.
pub type PayloadIn<'env> = (String, Either3<String, Uint8Array, PullFn<'env>>, String, f64);

/// `() => Promise<Uint8Array>`: a stream's next chunk, empty at its end (`index.js` makes it).
type PullFn<'env> = Function<'env, (), Promise<Uint8Array>>;
type PullTsfn = ThreadsafeFunction<(), Promise<Uint8Array>, (), Status, false, true>;

/// JSON text `index.js` made with `JSON.stringify`.
const JSON_TEXT: f64 = 1.0;
/// The path of a file given as a `file:` URL, read only while it is sent.
const FILE_PATH: f64 = 2.0;

/// Core's one rule for host values (`Outgoing::from_host`) decides what each one means.
pub fn outgoing(payloads: Vec<PayloadIn<'_>>) -> CoreResult<Vec<Outgoing>> {
    payloads
        .into_iter()
        .map(|(dataname, data, payload_type, kind)| {
            let value = match data {
                Either3::A(path) if kind == FILE_PATH => {
                    return Outgoing::from_source(dataname, &payload_type, ByteSource::file(path)?);
                }
                Either3::A(text) if kind == JSON_TEXT => HostValue::JsonText(text),
                Either3::A(text) => HostValue::Text(text),
                Either3::B(bytes) => HostValue::Bytes(Bytes::from_owner(bytes)),
                Either3::C(pull) => return Outgoing::from_source(dataname, &payload_type, pulled(&pull, kind)?),
            };
            Outgoing::from_host(dataname, &payload_type, value)
        })
        .collect()
}

/// A stream's bytes, pulled a chunk at a time on the JS thread while the send reads them (a weak
/// threadsafe function: it never keeps the process alive; the send's promise does).
fn pulled(pull: &PullFn<'_>, size: f64) -> CoreResult<ByteSource> {
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    if !(0.0..=MAX_SAFE_INTEGER).contains(&size) || size.fract() != 0.0 {
        let why = format!("a stream's size must be a whole number of bytes, not {size}");
        return Err(natsbridge::error::Error::invalid_argument(why));
    }
    let size = size as u64;
    let pull: PullTsfn = pull
        .build_threadsafe_function()
        .weak::<true>()
        .build()
        .map_err(|e| natsbridge::error::Error::invalid_argument(e.reason))?;
    let chunks = futures::stream::try_unfold(pull, |pull| async move {
        let chunk = pull.call_async(()).await.map_err(|e| std::io::Error::other(e.reason))?;
        let chunk = chunk.await.map_err(|e| std::io::Error::other(e.reason))?;
        Ok::<_, std::io::Error>((!chunk.is_empty()).then(|| (Bytes::from_owner(chunk), pull)))
    });
    Ok(ByteSource::from_chunks(chunks, size))
}

/// Strings and numbers for JS in a few values instead of one N-API call (or a `JSON.parse`) per
/// field: `nums`, a one-byte string of numbers (unsigned LEB128: seven bits a character, low
/// first, the high bit set on all but the last): counts, flags and each string's end offset in
/// its text (a typed array instead cost more than it saved: an ArrayBuffer per call); `vals`,
/// the texts (every string of one message, one after another) and the values that cross on
/// their own (Buffers, large strings, Error objects, acks). `index.js`'s `Unpack` reads them
/// back in the order they were written. A string read back is a slice of its message's text
/// (V8 shares the text for slices of 13 characters or more), so a text holds one message only.
#[derive(Default)]
pub struct Pack {
    nums: Vec<u8>,
    vals: Vec<Val>,
    text: String,
    /// `text`'s length in UTF-16 units (JS string offsets).
    end: usize,
    /// Where in `vals` the current text goes.
    text_at: Option<usize>,
}

pub enum Val {
    /// A message's text or a string that crosses on its own.
    Str(String),
    Bytes(Vec<u8>),
    Error(natsbridge::error::Error),
    Ack(natsbridge::io::DeliveryAck),
    Link(Box<natsbridge::io::LinkStream>),
}

/// Payload strings longer than this cross on their own, not in a message's text: no second copy,
/// and a header string the user keeps (a V8 slice of the text) keeps at most about this much
/// of its message alive.
const OWN_STRING: usize = 1024;

impl Pack {
    /// Starts a message's text: the strings from here on are in it.
    pub fn text(&mut self) {
        self.finish_text();
        self.text.reserve(512); // a header's strings
        self.nums.reserve(64);
        self.text_at = Some(self.vals.len());
        self.vals.push(Val::Str(String::new()));
    }

    fn finish_text(&mut self) {
        if let Some(at) = self.text_at.take() {
            self.vals[at] = Val::Str(std::mem::take(&mut self.text));
            self.end = 0;
        }
    }

    pub fn str(&mut self, s: &str) {
        self.text.push_str(s);
        self.end += if s.is_ascii() { s.len() } else { s.encode_utf16().count() };
        self.num(self.end as u64);
    }

    pub fn num(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.nums.push((x as u8 & 0x7f) | 0x80);
            x >>= 7;
        }
        self.nums.push(x as u8);
    }

    pub fn flag(&mut self, b: bool) {
        self.num(u64::from(b));
    }

    /// A JSON object's text, or "" for an empty one (JS makes `{}`).
    pub fn object(&mut self, m: &Map<String, Value>) {
        if m.is_empty() {
            self.str("");
        } else {
            self.str(&serde_json::to_string(m).expect("a JSON map serializes"));
        }
    }

    pub fn val(&mut self, v: Val) {
        self.vals.push(v);
    }

    /// The envelope's header fields in the seeds' order, then metadata.
    /// The twelve header strings in core's order, then the metadata.
    fn header(&mut self, fields: [(&str, &str); 12], metadata: &Map<String, Value>) {
        for (_, s) in fields {
            self.str(s);
        }
        self.object(metadata);
    }

    fn error(&mut self, e: Option<&ErrorBody>) {
        match e {
            Some(body) => self.str(&serde_json::to_string(body).expect("an error body serializes")),
            None => self.str(""),
        }
    }

    fn optional(&mut self, s: Option<&str>) {
        self.flag(s.is_some());
        if let Some(s) = s {
            self.str(s);
        }
    }

    /// `[nums, vals]`.
    pub fn into_js(self, env: &Env) -> Result<Unknown<'_>> {
        let (nums, vals) = self.parts(env)?;
        let mut out = env.create_array(2)?;
        out.set(0, nums)?;
        out.set(1, vals)?;
        out.into_unknown(env)
    }

    /// `nums` and `vals`.
    pub fn parts(mut self, env: &Env) -> Result<(JsString<'_>, Array<'_>)> {
        self.finish_text();
        let nums = env.create_string_latin1(&self.nums)?;
        let mut vals = env.create_array(self.vals.len() as u32)?;
        for (i, v) in self.vals.into_iter().enumerate() {
            let i = i as u32;
            match v {
                Val::Str(s) if s.is_ascii() => vals.set(i, env.create_string_latin1(s.as_bytes())?)?,
                Val::Str(s) => vals.set(i, env.create_string(&s)?)?,
                // Small: a copy V8 owns, so our buffer is reused at once. Large: handed over
                // without a copy (freed when V8 collects it; until then each one is fresh memory).
                Val::Bytes(b) if b.len() < COPY_BELOW => vals.set(i, BufferSlice::copy_from(env, &b)?)?,
                Val::Bytes(b) => vals.set(i, BufferSlice::from_data(env, b)?)?,
                Val::Error(e) => vals.set(i, crate::errors::to_js(env, &e)?)?,
                Val::Ack(ack) => vals.set(i, crate::DeliveryAck::new(ack))?,
                Val::Link(link) => vals.set(i, crate::link_stream::LinkStream::new(*link))?,
            }
        }
        Ok((nums, vals))
    }
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
    /// A link payload of a streamed message, read from JS.
    Link(Box<natsbridge::io::LinkStream>),
}

/// A received message in the shapes JS receives, made off the JS thread.
pub struct Ready {
    header: Header,
    items: Vec<Item>,
    subject: Option<String>,
    reply: Option<String>,
    /// The sender's trace context as the JSON of its W3C headers.
    trace: Option<String>,
}

/// The JSON object of a trace context's W3C headers (`trace_headers` in JS).
fn trace_json(trace: Option<&TraceContext>) -> Option<String> {
    Some(Value::Object(trace?.w3c_carrier()).to_string())
}

/// Where a received message's header is read from: the message itself, or an owned envelope.
enum Header {
    View(DirectMessage),
    /// Boxed: an owned envelope is large, and the view the common case.
    Owned(Box<Envelope>),
}

/// A payload as JS receives it: dataname, value, payload_type, transport.
type Item = (String, Value2, &'static str, &'static str);

pub fn ready(r: Received, arrow_out: ArrowOut) -> CoreResult<Ready> {
    let mut envelope = r.envelope;
    envelope.payloads = Vec::new(); // JS gets the decoded values, not the wire payloads
    Ok(Ready {
        header: Header::Owned(Box::new(envelope)),
        items: items(r.payloads, arrow_out)?,
        subject: r.subject,
        reply: r.reply,
        trace: trace_json(r.trace.as_ref()),
    })
}

/// [`ready`] of a message taken off a subscription.
pub fn ready_arrival(a: Arrival, arrow_out: ArrowOut) -> CoreResult<Ready> {
    match a {
        Arrival::Direct { mut message, subject, reply, trace } => {
            let items = items(std::mem::take(&mut message.payloads), arrow_out)?;
            let trace = trace_json(trace.as_deref());
            Ok(Ready { header: Header::View(message), items, subject: Some(subject), reply, trace })
        }
        Arrival::Received(r) => ready(*r, arrow_out),
    }
}

/// A message whose link payloads are streamed ([`natsbridge::io::Subscription::next_streamed`]):
/// as [`ready`], each link payload's value a [`crate::link_stream::LinkStream`].
pub fn ready_streamed(m: StreamedMessage, arrow_out: ArrowOut) -> CoreResult<Ready> {
    let mut envelope = m.envelope;
    envelope.payloads = Vec::new();
    let mut items = Vec::with_capacity(m.payloads.len());
    for p in m.payloads {
        items.push(match p {
            StreamedPayload::Value(p) => item(p, arrow_out)?,
            StreamedPayload::Link(link) => {
                let (dataname, payload_type) = (link.dataname().to_owned(), link.payload_type().as_str());
                (dataname, Value2::Link(link), payload_type, "link")
            }
        });
    }
    let trace = trace_json(m.trace.as_ref());
    Ok(Ready { header: Header::Owned(Box::new(envelope)), items, subject: m.subject, reply: m.reply, trace })
}

fn items(payloads: Vec<Incoming>, arrow_out: ArrowOut) -> CoreResult<Vec<Item>> {
    payloads.into_iter().map(|p| item(p, arrow_out)).collect()
}

fn item(p: Incoming, arrow_out: ArrowOut) -> CoreResult<Item> {
    let value = match (p.data, arrow_out) {
        (Data::Text(s), _) => Value2::Str(s),
        (Data::Json(v), _) => Value2::Str(v.to_string()),
        (Data::Arrow(b), ArrowOut::Rows) => Value2::Str(arrow::to_json_rows_text(&b)?),
        // Checked JSON, so UTF-8: JS parses it as a string.
        (Data::JsonBytes(b), _) => match String::from_utf8(Vec::from(b)) {
            Ok(s) => Value2::Str(s),
            Err(e) => Value2::Bytes(e.into_bytes()),
        },
        (Data::Arrow(b) | Data::Bytes(b), _) => Value2::Bytes(Vec::from(b)),
    };
    Ok((p.dataname, value, p.payload_type.as_str(), p.transport.as_str()))
}

/// A received message: its text, the header ([`Pack::header`]), the error body's JSON (or
/// ""), subject, reply and the trace headers' JSON (each a flag, then the string), the number
/// of payloads and for each:
/// dataname, payload_type, transport, then 0 and the value as a string, or 1 and the value in
/// `vals` (a Buffer, or a large string).
pub fn pack_ready(pack: &mut Pack, r: Ready) {
    let route = [r.subject.as_deref(), r.reply.as_deref(), r.trace.as_deref()];
    match &r.header {
        Header::View(m) => {
            let e = m.envelope();
            pack_received(pack, e.header(), e.metadata(), e.error(), route, r.items);
        }
        Header::Owned(e) => pack_received(pack, e.header(), &e.metadata, e.error.as_ref(), route, r.items),
    }
}

/// A message decoded as a view of its bytes (core's `decode_direct`: no owned envelope), as
/// `[nums, vals]` in [`pack_ready`]'s layout.
pub fn view_to_js<'env>(env: &'env Env, view: ReceivedView<'_>, arrow_out: ArrowOut) -> Result<Unknown<'env>> {
    let e = &view.envelope;
    let items = match items(view.payloads, arrow_out) {
        Ok(items) => items,
        Err(err) => return errors::to_js(env, &err),
    };
    let mut pack = Pack::default();
    pack_received(&mut pack, e.header(), e.metadata(), e.error(), [None; 3], items);
    pack.into_js(env)
}

fn pack_received(
    pack: &mut Pack,
    header: [(&str, &str); 12],
    metadata: &Map<String, Value>,
    error: Option<&ErrorBody>,
    [subject, reply, trace]: [Option<&str>; 3],
    items: Vec<Item>,
) {
    pack.text();
    pack.header(header, metadata);
    pack.error(error);
    pack.optional(subject);
    pack.optional(reply);
    pack.optional(trace);
    pack.num(items.len() as u64);
    for (dataname, value, payload_type, transport) in items {
        pack.str(&dataname);
        pack.str(payload_type);
        pack.str(transport);
        match value {
            Value2::Str(s) if s.len() <= OWN_STRING => {
                pack.num(0);
                pack.str(&s);
            }
            Value2::Str(s) => {
                pack.num(1);
                pack.val(Val::Str(s));
            }
            Value2::Bytes(b) => {
                pack.num(1);
                pack.val(Val::Bytes(b));
            }
            Value2::Link(link) => {
                pack.num(1);
                pack.val(Val::Link(link));
            }
        }
    }
}

/// One received message as `[nums, vals]` ([`pack_ready`]).
pub fn ready_to_js(env: &Env, r: Ready) -> Result<Unknown<'_>> {
    let mut pack = Pack::default();
    pack_ready(&mut pack, r);
    pack.into_js(env)
}

/// Direct data above this many bytes in all is a slice of `msgJson` in JS, not a copy.
const LARGE_DIRECT: usize = 2048;
/// An envelope at least this long becomes an external string (no copy into V8's heap).
const EXTERNAL_JSON: usize = 256 * 1024;

/// A published envelope for JS: `[msgJson, nums, vals]`, or `[msgJson, nums, vals, pubAck]`
/// for a durable publish (`pubAck`: the stream's `{stream, sequence, duplicate}`, core's
/// `PubAck`). `nums` and `vals` are a [`Pack`] of the envelope's fields, which `index.js` turns
/// into the object `JSON.parse(msgJson)` would give without parsing it: the header
/// ([`Pack::header`]), the number of payloads and for each: id, dataname, payload_type,
/// transport, encoding, size, the data (0 and the string; 1 and its `[start, end)` in `msgJson`,
/// for large direct data: a V8 slice does not copy; 2 and its JSON text), its metadata; then the
/// error body's JSON (or "").
pub fn sent_to_js(env: &Env, sent: Sent) -> Result<Unknown<'_>> {
    let json = sent.json_str();
    // ASCII: a one-byte JS string, copied without UTF-8 decoding, offsets equal in bytes and
    // in JS string units.
    let ascii = json.is_ascii();
    let e = &sent.envelope;
    let direct: usize = (0..e.payloads.len()).filter_map(|i| sent.data_range(i)).map(|r| r.len()).sum();
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
    let mut pack = Pack::default();
    pack.text();
    pack.header(e.header(), &e.metadata);
    pack.num(e.payloads.len() as u64);
    for (i, p) in e.payloads.iter().enumerate() {
        for s in [&p.id, &p.dataname, &p.payload_type, &p.transport, &p.encoding] {
            pack.str(s);
        }
        pack.num(p.size);
        // Core says where each string data is in the JSON (a direct payload's base64 is only there).
        match (sent.data_range(i), large) {
            (Some(r), true) => {
                pack.num(1);
                pack.num(r.start as u64);
                pack.num(r.end as u64);
            }
            (Some(r), false) => {
                pack.num(0);
                pack.str(&json[r]);
            }
            (None, _) => {
                pack.num(2);
                pack.str(&p.data.to_string());
            }
        }
        pack.object(&p.metadata);
    }
    pack.error(e.error.as_ref());
    let (nums, vals) = pack.parts(env)?;
    let mut out = env.create_array(if sent.pub_ack.is_some() { 4 } else { 3 })?;
    out.set(0, text)?;
    out.set(1, nums)?;
    out.set(2, vals)?;
    if let Some(ack) = &sent.pub_ack {
        let mut o = Object::new(env)?;
        o.set("stream", ack.stream.as_str())?;
        o.set("sequence", ack.sequence as f64)?;
        o.set("duplicate", ack.duplicate)?;
        out.set(3, o)?;
    }
    out.into_unknown(env)
}

/// `null` once a subscription or consumer is closed, else one [`Pack`] of the batch: for each
/// item 0 and what `pack_item` writes, or 1 and an Error object in `vals` (an item that failed
/// to decode; the iterator goes on).
pub fn batch_to_js<T>(
    env: &Env,
    batch: Option<Vec<CoreResult<T>>>,
    pack_item: impl Fn(&mut Pack, T),
) -> Result<Unknown<'_>> {
    let Some(batch) = batch else { return Null.into_unknown(env) };
    let mut pack = Pack::default();
    for item in batch {
        match item {
            Ok(item) => {
                pack.num(0);
                pack_item(&mut pack, item);
            }
            Err(e) => {
                pack.num(1);
                pack.val(Val::Error(e));
            }
        }
    }
    pack.into_js(env)
}
