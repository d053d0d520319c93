//! An outgoing message: payloads in order, and the seeds' per-message send options.

use crate::args;
use crate::handlers::{CLinkStore, UploadFn};
use crate::status::{Outcome, Status, guard, invalid};
use bridge::io::{Outgoing, SendOptions};
use bridge::protocol::{Data, PayloadType};
use bytes::Bytes;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// A message being built. Reusable: sending does not consume it.
#[derive(Default)]
pub struct Message {
    pub payloads: Vec<Outgoing>,
    pub options: SendOptions,
}

/// The core's value for serialized bytes of a payload type. Text must be UTF-8 here; JSON and
/// Arrow bytes are checked by the core when the message is sent.
fn data(dataname: &str, payload_type: PayloadType, bytes: &[u8]) -> Outcome<Data> {
    Ok(match payload_type {
        PayloadType::Text => match std::str::from_utf8(bytes) {
            Ok(s) => Data::Text(s.to_owned()),
            Err(e) => {
                return Err(bridge::error::Error::new(
                    bridge::error::ErrorCode::InvalidPayloadType,
                    format!("payload {dataname:?} has payload_type \"text\" but its bytes are not UTF-8: {e}"),
                )
                .into());
            }
        },
        PayloadType::Dictionary | PayloadType::JsonTable => Data::JsonBytes(Bytes::copy_from_slice(bytes)),
        PayloadType::ArrowTable => Data::Arrow(Bytes::copy_from_slice(bytes)),
        PayloadType::Image | PayloadType::Audio | PayloadType::Video | PayloadType::Binary => {
            Data::Bytes(Bytes::copy_from_slice(bytes))
        }
    })
}

impl Message {
    fn set(&mut self, key: &str, value: &str) -> Outcome {
        let o = &mut self.options;
        let text = || Some(value.to_owned());
        match key {
            "correlation_id" => o.correlation_id = text(),
            "msg_purpose" => o.msg_purpose = text(),
            "sender_name" => o.sender_name = text(),
            "sender_id" => o.sender_id = text(),
            "receiver_name" => o.receiver_name = text(),
            "receiver_id" => o.receiver_id = text(),
            "reply_to" => o.reply_to = text(),
            "reply_to_msg_id" => o.reply_to_msg_id = text(),
            "size_threshold" => {
                o.size_threshold = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| invalid(format!("option \"size_threshold\" needs a byte count, not {value:?}")))?,
                )
            }
            "metadata" => match serde_json::from_str(value) {
                Ok(serde_json::Value::Object(map)) => o.metadata = map,
                _ => return Err(invalid(format!("option \"metadata\" needs a JSON object, not {value:?}"))),
            },
            _ => return Err(invalid(format!("unknown message option {key:?}"))),
        }
        Ok(())
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
        let (dataname, type_name, bytes) = unsafe {
            (
                args::text(dataname, "dataname")?,
                args::text(payload_type, "payload_type")?,
                args::bytes(data, len, "data")?,
            )
        };
        let payload_type = PayloadType::parse(type_name)?;
        let value = self::data(dataname, payload_type, bytes)?;
        message.payloads.push(Outgoing::new(dataname, value, payload_type));
        Ok(())
    })
}

/// Sets a send option. Keys: `correlation_id`, `msg_purpose` (ACK, NACK, updateStatus, shutdown,
/// chat, command, event, or any non-empty text), `sender_name`, `sender_id`, `receiver_name`,
/// `receiver_id`, `reply_to`, `reply_to_msg_id`, `size_threshold` (bytes), `metadata` (a JSON
/// object). Unknown keys and malformed values: INVALID_ARGUMENT.
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
        message.set(key, value)
    })
}

/// Sends this message's link payloads through `upload` instead of the client's store (the
/// seeds' per-call `fileserver_upload_handler`). The handler runs on the sending thread.
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
        let Some(upload) = upload else {
            return Err(invalid("upload is NULL"));
        };
        message.options.link_store = Some(Arc::new(CLinkStore::new(Some(upload), None, user_data, None, Vec::new())?));
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
