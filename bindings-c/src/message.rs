//! An outgoing message: payloads in order, the seeds' per-message send options, and an optional
//! per-message upload handler.

use crate::args;
use crate::handlers::{self, UploadFn};
use crate::status::{Outcome, Status, guard, invalid};
use bridge::io::store::UploadHandler;
use bridge::io::{ByteSource, Client, Outgoing, SendOptions};
use bridge::protocol::HostValue;
use bytes::Bytes;
use serde_json::Value;
use std::borrow::Cow;
use std::ffi::{c_char, c_void};

/// A message being built. Reusable: sending does not consume it.
#[derive(Default)]
pub struct Message {
    pub payloads: Vec<Outgoing>,
    pub options: SendOptions,
    /// The seeds' per-call fileserver_upload_handler.
    pub upload: Option<UploadHandler>,
}

impl Message {
    /// The send options on `client`: a per-message upload handler takes this message's links.
    pub fn options_on(&self, client: &Client) -> Outcome<Cow<'_, SendOptions>> {
        let Some(handler) = &self.upload else {
            return Ok(Cow::Borrowed(&self.options));
        };
        let link_store = Some(client.upload_handler_store(handler.clone(), None)?);
        Ok(Cow::Owned(SendOptions { link_store, ..self.options.clone() }))
    }
}

/// Makes an empty message.
///
/// Ownership: the caller owns `*out` and frees it with `natsbridge_message_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_message_new(out: *mut *mut Message) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: checked out-param.
        unsafe { args::write(out, Box::into_raw(Box::<Message>::default())) };
        Ok(())
    })
}

/// Appends a payload: the seeds' `(dataname, data, payload_type)`, `data` given serialized as
/// the wire carries it: text → UTF-8; dictionary → JSON text; jsontable → JSON text of an array
/// of row objects; arrowtable → Arrow IPC stream bytes; image, audio, video, binary → the bytes.
/// An unknown `payload_type` or non-UTF-8 text: INVALID_PAYLOAD_TYPE now; JSON and Arrow bytes
/// that do not parse: INVALID_PAYLOAD_TYPE when the message is sent. `data` may be NULL when
/// `len` is 0.
///
/// Ownership: every argument is copied. Thread safety: one thread at a time per `message`.
///
/// # Safety
/// `message` is NULL or a live message; strings are NULL or NUL-terminated; `data` is valid
/// for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_message_add(
    message: *mut Message,
    dataname: *const c_char,
    payload_type: *const c_char,
    data: *const u8,
    len: usize,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let message = unsafe { args::handle_mut(message, "message") }?;
        // SAFETY: caller contract.
        let (dataname, payload_type, bytes) = unsafe {
            (
                args::text(dataname, "dataname")?,
                args::text(payload_type, "payload_type")?,
                args::bytes(data, len, "data")?,
            )
        };
        let value = HostValue::Bytes(Bytes::copy_from_slice(bytes));
        message.payloads.push(Outgoing::from_host(dataname, payload_type, value)?);
        Ok(())
    })
}

/// Appends an image, audio, video or binary payload whose bytes stay in the file at `path`
/// until the message is sent (spec/PROTOCOL.md §7.5): a file too large ever to go direct is
/// streamed to the link store while it is read, never held whole; a smaller one is read when the
/// message is sent, and sent like bytes. A file that is missing or not a regular file:
/// INVALID_ARGUMENT now; another payload_type: INVALID_PAYLOAD_TYPE. The file must keep its size
/// until it is sent (else UPLOAD_FAILED, and nothing is published); each send reads it again.
///
/// Ownership: every argument is copied. Thread safety: one thread at a time per `message`.
///
/// # Safety
/// `message` is NULL or a live message; strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_message_add_file(
    message: *mut Message,
    dataname: *const c_char,
    payload_type: *const c_char,
    path: *const c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let message = unsafe { args::handle_mut(message, "message") }?;
        // SAFETY: caller contract.
        let (dataname, payload_type, path) = unsafe {
            (args::text(dataname, "dataname")?, args::text(payload_type, "payload_type")?, args::text(path, "path")?)
        };
        message.payloads.push(Outgoing::from_source(dataname, payload_type, ByteSource::file(path)?)?);
        Ok(())
    })
}

/// Adds a binary, image, audio or video payload of `size` bytes that `read` gives, called as
/// the send needs them (in chunks of at most 256 KiB) on a thread of the library's: a payload
/// too large ever to go direct is streamed to the link store while it is read, never held
/// whole. `read` must give exactly `size` bytes, then 0; fewer, more or a negative return fail
/// the send with UPLOAD_FAILED, and nothing is published. A reader is read by one send: a
/// second send of the message fails with UPLOAD_FAILED. NULL `read`: INVALID_ARGUMENT.
///
/// Ownership: names are copied; `user_data` stays the caller's and must stay valid until the
/// send that reads it returns. Thread safety: one thread at a time per `message`; `read` is
/// called from another thread than the sending one, one call at a time.
///
/// # Safety
/// `message` is NULL or a live message; strings are NULL or NUL-terminated; `read` follows the
/// typedef's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_message_add_reader(
    message: *mut Message,
    dataname: *const c_char,
    payload_type: *const c_char,
    size: u64,
    read: handlers::ReadFn,
    user_data: *mut c_void,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let message = unsafe { args::handle_mut(message, "message") }?;
        // SAFETY: caller contract.
        let (dataname, payload_type) =
            unsafe { (args::text(dataname, "dataname")?, args::text(payload_type, "payload_type")?) };
        let source = handlers::byte_source(read, user_data, size).ok_or_else(|| invalid("read must not be NULL"))?;
        message.payloads.push(Outgoing::from_source(dataname, payload_type, source)?);
        Ok(())
    })
}

/// Sets a send option. Keys: `correlation_id`, `msg_purpose` (ACK, NACK, updateStatus, shutdown,
/// chat, command, event, or any non-empty text), `sender_name`, `sender_id`, `receiver_name`,
/// `receiver_id`, `reply_to`, `reply_to_msg_id`, `size_threshold` (bytes), `metadata` (a JSON
/// object's text), `trace_headers` (the caller's W3C trace context as a JSON object's text,
/// `{"traceparent":"00-…","tracestate":"…"}`, spec/PROTOCOL.md §13). Unknown keys and malformed
/// values: INVALID_ARGUMENT.
///
/// Ownership: copied. Thread safety: one thread at a time per `message`.
///
/// # Safety
/// `message` is NULL or a live message; `key`, `value` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_message_set(
    message: *mut Message,
    key: *const c_char,
    value: *const c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let message = unsafe { args::handle_mut(message, "message") }?;
        // SAFETY: caller contract.
        let (key, value) = unsafe { (args::text(key, "key")?, args::text(value, "value")?) };
        // C passes text; metadata and trace_headers are objects, given as their JSON.
        let value = match key {
            "metadata" | "trace_headers" => {
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()))
            }
            _ => Value::String(value.to_owned()),
        };
        Ok(message.options.set(key, &value)?)
    })
}

/// Sends this message's link payloads through `upload` instead of the client's store (the
/// seeds' per-call `fileserver_upload_handler`; its first argument is the one-call
/// `fileserver_url`, else the client's `fileserver_url` option, else ""). The handler runs on
/// the sending thread.
///
/// Ownership: `user_data` stays the caller's and must outlive the message's sends.
/// Thread safety: one thread at a time per `message`.
///
/// # Safety
/// `message` is NULL or a live message; `upload` follows the typedef's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_message_set_upload_handler(
    message: *mut Message,
    upload: UploadFn,
    user_data: *mut c_void,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let message = unsafe { args::handle_mut(message, "message") }?;
        message.upload = Some(handlers::upload_handler(upload, user_data).ok_or_else(|| invalid("upload is NULL"))?);
        Ok(())
    })
}

/// Frees a message. NULL is a no-op.
///
/// Ownership: takes `message`. Thread safety: any thread, once no call uses it.
///
/// # Safety
/// `message` is NULL or a live message not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_message_free(message: *mut Message) {
    // SAFETY: caller contract; made by Box::into_raw.
    unsafe { crate::free_box(message) }
}
