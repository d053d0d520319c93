//! A received, decoded message: the envelope's fields and each payload's
//! `(dataname, payload_type, bytes)` in order, as C strings and byte views it can borrow.

use crate::args;
use crate::status::{Outcome, Status, guard, invalid};
use bridge::io::Received;
use bridge::protocol::{Data, PayloadType, Transport};
use std::ffi::{CStr, CString, c_char};
use std::sync::OnceLock;

struct Payload {
    dataname: CString,
    payload_type: PayloadType,
    transport: Transport,
    /// The serialized bytes followed by one NUL (not counted in `len`), so text and JSON can be
    /// used as C strings.
    bytes: Vec<u8>,
}

/// A decoded message. Read-only: safe to read from several threads at once.
pub struct Envelope {
    /// The core's message with its payload values moved out (into `payloads`); kept for replies.
    pub received: Received,
    fields: Vec<(&'static str, CString)>,
    payloads: Vec<Payload>,
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
        let e = &received.envelope;
        let metadata = serde_json::Value::Object(e.metadata.clone()).to_string();
        let error = e.error.as_ref().map(|b| serde_json::to_string(b).expect("plain data")).unwrap_or_default();
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
        ];
        let payloads = std::mem::take(&mut received.payloads)
            .into_iter()
            .map(|p| {
                let mut bytes = match p.data {
                    Data::Text(s) => s.into_bytes(),
                    Data::Json(v) => serde_json::to_vec(&v).map_err(|e| invalid(format!("JSON re-encoding: {e}")))?,
                    Data::JsonBytes(b) | Data::Arrow(b) | Data::Bytes(b) => b.to_vec(),
                };
                bytes.push(0);
                Ok(Payload {
                    dataname: c_text(&p.dataname),
                    payload_type: p.payload_type,
                    transport: p.transport,
                    bytes,
                })
            })
            .collect::<Outcome<Vec<_>>>()?;
        Ok(Envelope { received, fields, payloads })
    }
}

/// Reads an envelope field as text. `name` is one of: correlation_id, msg_id, timestamp,
/// send_to, msg_purpose, sender_name, sender_id, receiver_name, receiver_id, reply_to,
/// reply_to_msg_id, broker_url, metadata (a JSON object's text), error (a NACK's or dead
/// letter's `{"code","message","details"}` as JSON text, "" when the envelope has none), subject
/// (the NATS subject it arrived on, "" when decoded from bytes), reply (its NATS reply subject,
/// or "").
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
