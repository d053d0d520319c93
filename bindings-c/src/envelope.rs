//! A received, decoded message: the envelope's fields and each payload's
//! `(dataname, payload_type, bytes)` in order, as C strings and byte views it can borrow.

use crate::args;
use crate::status::{Outcome, Status, guard, invalid};
use bridge::io::{Incoming, LinkStream, Received, StreamedMessage, StreamedPayload};
use bridge::protocol::{Data, PayloadType, Transport};
use std::ffi::{CStr, CString, c_char};
use std::sync::{Mutex, OnceLock};

struct Payload {
    dataname: CString,
    payload_type: PayloadType,
    transport: Transport,
    /// The serialized bytes followed by one NUL (not counted in `len`), so text and JSON can be
    /// used as C strings.
    bytes: Vec<u8>,
}

impl Payload {
    fn decoded(p: Incoming) -> Outcome<Payload> {
        let mut bytes = match p.data {
            Data::Text(s) => s.into_bytes(),
            Data::Json(v) => serde_json::to_vec(&v).map_err(|e| invalid(format!("JSON re-encoding: {e}")))?,
            Data::JsonBytes(b) | Data::Arrow(b) | Data::Bytes(b) => b.to_vec(),
        };
        bytes.push(0);
        Ok(Payload { dataname: c_text(&p.dataname), payload_type: p.payload_type, transport: p.transport, bytes })
    }
}

/// A decoded message. Read-only but for taking its streamed links: safe to read from several
/// threads at once.
pub struct Envelope {
    /// The core's message with its payload values moved out (into `payloads`); kept for replies.
    pub received: Received,
    fields: Vec<(&'static str, CString)>,
    payloads: Vec<Payload>,
    /// A streamed message's link payloads by payload index, until taken; empty otherwise.
    links: Mutex<Vec<Option<LinkStream>>>,
}

fn c_text(s: &str) -> CString {
    // Envelope strings come from JSON and may hold an escaped NUL; C sees the text up to it.
    CString::new(s).unwrap_or_else(|e| {
        let end = e.nul_position();
        CString::new(&s.as_bytes()[..end]).expect("cut before the NUL")
    })
}

/// A payload type's name as a C string (core's names, made once).
fn type_name(t: PayloadType) -> &'static CStr {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        PayloadType::ALL.iter().map(|p| CString::new(p.as_str()).expect("no NUL in a type name")).collect()
    });
    let index = PayloadType::ALL.iter().position(|p| *p == t).expect("every type is in ALL");
    &names[index]
}

fn transport_name(t: Transport) -> &'static CStr {
    match t {
        Transport::Direct => c"direct",
        Transport::Link => c"link",
    }
}

impl Envelope {
    pub fn new(mut received: Received) -> Outcome<Envelope> {
        let payloads =
            std::mem::take(&mut received.payloads).into_iter().map(Payload::decoded).collect::<Outcome<_>>()?;
        Ok(Envelope::with(received, payloads, Vec::new()))
    }

    /// A message whose link payloads are streamed: each one reads as transport "link" with no
    /// bytes, and is taken with `natsbridge_envelope_take_link`.
    pub fn streamed(m: StreamedMessage) -> Outcome<Envelope> {
        let (mut payloads, mut links) = (Vec::new(), Vec::new());
        for p in m.payloads {
            match p {
                StreamedPayload::Value(p) => {
                    payloads.push(Payload::decoded(p)?);
                    links.push(None);
                }
                StreamedPayload::Link(link) => {
                    payloads.push(Payload {
                        dataname: c_text(link.dataname()),
                        payload_type: link.payload_type(),
                        transport: Transport::Link,
                        bytes: vec![0],
                    });
                    links.push(Some(*link));
                }
            }
        }
        let received =
            Received { envelope: m.envelope, payloads: Vec::new(), subject: m.subject, reply: m.reply, trace: m.trace };
        Ok(Envelope::with(received, payloads, links))
    }

    fn with(received: Received, payloads: Vec<Payload>, links: Vec<Option<LinkStream>>) -> Envelope {
        let e = &received.envelope;
        let metadata = serde_json::Value::Object(e.metadata.clone()).to_string();
        let error = e.error.as_ref().map(|b| serde_json::to_string(b).expect("plain data")).unwrap_or_default();
        let trace_headers = received.trace.as_ref().map(|t| serde_json::Value::Object(t.w3c_carrier()).to_string());
        let fields = vec![
            ("correlation_id", c_text(&e.correlation_id)),
            ("msg_id", c_text(&e.msg_id)),
            ("timestamp", c_text(&e.timestamp)),
            ("send_to", c_text(&e.send_to)),
            ("msg_purpose", c_text(&e.msg_purpose)),
            ("sender_name", c_text(&e.sender_name)),
            ("sender_id", c_text(&e.sender_id)),
            ("receiver_name", c_text(&e.receiver_name)),
            ("receiver_id", c_text(&e.receiver_id)),
            ("reply_to", c_text(&e.reply_to)),
            ("reply_to_msg_id", c_text(&e.reply_to_msg_id)),
            ("broker_url", c_text(&e.broker_url)),
            ("metadata", c_text(&metadata)),
            ("error", c_text(&error)),
            ("subject", c_text(received.subject.as_deref().unwrap_or_default())),
            ("reply", c_text(received.reply.as_deref().unwrap_or_default())),
            ("trace_headers", c_text(trace_headers.as_deref().unwrap_or_default())),
        ];
        Envelope { received, fields, payloads, links: Mutex::new(links) }
    }
}

/// Reads an envelope field as text. `name` is one of: correlation_id, msg_id, timestamp,
/// send_to, msg_purpose, sender_name, sender_id, receiver_name, receiver_id, reply_to,
/// reply_to_msg_id, broker_url, metadata (a JSON object's text), error (a NACK's or dead
/// letter's `{"code","message","details"}` as JSON text, "" when the envelope has none), subject
/// (the NATS subject it arrived on, "" when decoded from bytes), reply (its NATS reply subject,
/// or ""), trace_headers (the sender's W3C trace context, spec/PROTOCOL.md §13, as a JSON object's
/// text such as `{"traceparent":"00-…"}`, "" when it carried none).
/// Unknown names: INVALID_ARGUMENT.
///
/// Ownership: `*out` is borrowed from `envelope` and valid until it is freed.
/// Thread safety: any thread; an envelope may be read from several threads at once.
///
/// # Safety
/// `envelope` is NULL or live; `name` NULL or NUL-terminated; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_envelope_field(
    envelope: *const Envelope,
    name: *const c_char,
    out: *mut *const c_char,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let (envelope, name) = unsafe { (args::handle(envelope, "envelope")?, args::text(name, "name")?) };
        let Some((_, value)) = envelope.fields.iter().find(|(k, _)| *k == name) else {
            return Err(invalid(format!("unknown envelope field {name:?}")));
        };
        // SAFETY: checked out-param.
        unsafe { args::write(out, value.as_ptr()) };
        Ok(())
    })
}

/// The number of payloads.
///
/// Ownership: nothing changes hands. Thread safety: any thread.
///
/// # Safety
/// `envelope` is NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_envelope_payload_count(envelope: *const Envelope, out: *mut usize) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let envelope = unsafe { args::handle(envelope, "envelope") }?;
        // SAFETY: checked out-param.
        unsafe { args::write(out, envelope.payloads.len()) };
        Ok(())
    })
}

/// Reads payload `index` (0-based, in the sender's order): its dataname, payload_type ("text",
/// "dictionary", "arrowtable", "jsontable", "image", "audio", "video", "binary"), transport
/// ("direct" or "link") and serialized bytes (text: UTF-8; dictionary/jsontable: JSON text;
/// arrowtable: Arrow IPC stream; others: the bytes). `*data` is followed by a NUL byte not
/// counted in `*len`, so text and JSON can be used as C strings. Any out-param may be NULL when
/// not wanted. An index out of range: INVALID_ARGUMENT.
///
/// Ownership: every output is borrowed from `envelope`, valid until it is freed.
/// Thread safety: any thread.
///
/// # Safety
/// `envelope` is NULL or live; every non-NULL out-param is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_envelope_payload(
    envelope: *const Envelope,
    index: usize,
    dataname: *mut *const c_char,
    payload_type: *mut *const c_char,
    transport: *mut *const c_char,
    data: *mut *const u8,
    len: *mut usize,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let envelope = unsafe { args::handle(envelope, "envelope") }?;
        let Some(p) = envelope.payloads.get(index) else {
            return Err(invalid(format!(
                "payload index {index} is out of range ({} payloads)",
                envelope.payloads.len()
            )));
        };
        // SAFETY: each out-param is NULL (skipped) or valid for writes by the caller's contract.
        unsafe {
            write_optional(dataname, p.dataname.as_ptr());
            write_optional(payload_type, type_name(p.payload_type).as_ptr());
            write_optional(transport, transport_name(p.transport).as_ptr());
            write_optional(data, p.bytes.as_ptr());
            write_optional(len, p.bytes.len() - 1);
        }
        Ok(())
    })
}

/// # Safety
/// `ptr` is NULL or valid for writes.
unsafe fn write_optional<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: caller contract.
        unsafe { ptr.write(value) }
    }
}

/// Takes link payload `index` of an envelope from `natsbridge_subscription_next_streamed`, to
/// read with `natsbridge_link_read` or `natsbridge_link_save` (nothing is fetched before).
/// INVALID_ARGUMENT for an index out of range, a direct payload, a link already taken, or an
/// envelope that was not received streamed.
///
/// Ownership: the caller owns `*out` and frees it with `natsbridge_link_free`; it does not
/// borrow from the envelope. Thread safety: any thread.
///
/// # Safety
/// `envelope` is NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_envelope_take_link(
    envelope: *const Envelope,
    index: usize,
    out: *mut *mut Link,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let envelope = unsafe { args::handle(envelope, "envelope") }?;
        let mut links = envelope.links.lock().unwrap_or_else(|p| p.into_inner());
        let Some(link) = links.get_mut(index).and_then(Option::take) else {
            return Err(invalid(format!(
                "payload {index} is not a streamed link payload still to take (natsbridge_subscription_next_streamed)"
            )));
        };
        let link = Link { stream: link, pending: None, sha256: None };
        // SAFETY: checked out-param.
        unsafe { args::write(out, Box::into_raw(Box::new(link))) };
        Ok(())
    })
}

/// A link payload's bytes as they arrive, checked against the envelope's size and sha256 at the end.
pub struct Link {
    stream: LinkStream,
    /// The rest of a chunk larger than the caller's buffer.
    pending: Option<bytes::Bytes>,
    /// The sha256 as a C string once every byte was read and checked.
    sha256: Option<CString>,
}

/// Reads the link's next bytes into `buf` (at most `capacity`): `*len` is how many; 0 once every
/// byte was read and the size and sha256 were checked (CHECKSUM_MISMATCH, DOWNLOAD_FAILED… if
/// not: the bytes read so far are not the sender's). Blocks until bytes arrive; a broken download
/// resumes where it stopped.
///
/// Ownership: nothing changes hands. Thread safety: one thread at a time per link; not from
/// inside an upload or download handler.
///
/// # Safety
/// `link` is NULL or live; `buf` valid for `capacity` bytes of writes; `len` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_link_read(
    link: *mut Link,
    buf: *mut u8,
    capacity: usize,
    len: *mut usize,
) -> Status {
    guard(|| {
        let len = args::out_param(len, "len")?;
        // SAFETY: caller contract.
        let link = unsafe { args::handle_mut(link, "link") }?;
        if buf.is_null() || capacity == 0 {
            return Err(invalid("buf must be non-NULL with a capacity of at least 1"));
        }
        let chunk = crate::runtime::block_on(link.next_bytes(capacity))??;
        // SAFETY: `buf` is valid for `capacity` bytes by the caller's contract; chunk.len() <= capacity.
        unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), buf, chunk.len()) };
        // SAFETY: checked out-param.
        unsafe { args::write(len, chunk.len()) };
        Ok(())
    })
}

/// Writes the link's bytes to the file at `path` as they arrive, through `<path>.partial`,
/// renamed once the size and sha256 are checked (removed if they are not, leaving `path` as it
/// was). `*written` (may be NULL): the number of bytes. INVALID_ARGUMENT once
/// `natsbridge_link_read` has read from the link (the file would miss those bytes).
///
/// Ownership: nothing changes hands. Thread safety: one thread at a time per link; not from
/// inside a handler.
///
/// # Safety
/// `link` is NULL or live; `path` NULL or NUL-terminated; `written` NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_link_save(link: *mut Link, path: *const c_char, written: *mut u64) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (link, path) = unsafe { (args::handle_mut(link, "link")?, args::text(path, "path")?) };
        let n = crate::runtime::block_on(link.stream.save(std::path::Path::new(path)))??;
        link.note_sha256();
        // SAFETY: NULL or valid for writes by the caller's contract.
        unsafe { write_optional(written, n) };
        Ok(())
    })
}

/// The bytes' sha256 (lowercase hex) once every byte was read and checked; NULL before.
///
/// Ownership: `*out` is borrowed from `link`, valid until it is freed. Thread safety: as
/// `natsbridge_link_read`.
///
/// # Safety
/// `link` is NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_link_sha256(link: *const Link, out: *mut *const c_char) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let link = unsafe { args::handle(link, "link") }?;
        let sha256 = link.sha256.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: checked out-param.
        unsafe { args::write(out, sha256) };
        Ok(())
    })
}

/// Frees a link (an unread one is never fetched). NULL is a no-op.
///
/// Ownership: takes `link`. Thread safety: any thread, once no call uses it.
///
/// # Safety
/// `link` is NULL or a live link not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_link_free(link: *mut Link) {
    // SAFETY: caller contract; made by Box::into_raw.
    unsafe { crate::free_box(link) }
}

impl Link {
    /// Up to `max` bytes of the next chunk; what is left of a larger chunk comes with the next read.
    async fn next_bytes(&mut self, max: usize) -> bridge::error::Result<bytes::Bytes> {
        let mut chunk = match self.pending.take() {
            Some(chunk) => chunk,
            None => loop {
                match self.stream.next_chunk().await? {
                    Some(chunk) if chunk.is_empty() => continue,
                    Some(chunk) => break chunk,
                    None => {
                        self.note_sha256();
                        return Ok(bytes::Bytes::new());
                    }
                }
            },
        };
        if chunk.len() > max {
            self.pending = Some(chunk.split_off(max));
        }
        Ok(chunk)
    }

    fn note_sha256(&mut self) {
        self.sha256 = self.stream.sha256().map(c_text);
    }
}

/// Frees an envelope and everything borrowed from it. NULL is a no-op.
///
/// Ownership: takes `envelope`. Thread safety: any thread, once no call reads it.
///
/// # Safety
/// `envelope` is NULL or a live envelope not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_envelope_free(envelope: *mut Envelope) {
    // SAFETY: caller contract; made by Box::into_raw.
    unsafe { crate::free_box(envelope) }
}
