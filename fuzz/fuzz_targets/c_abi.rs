//! Random sequences of calls into libnatsbridge's C ABI (include/natsbridge.h), declared here as
//! C sees them, with random and NULL arguments: messages, connection options, smartreceive of
//! bytes, envelope and payload inspection, the Arrow/JSON-rows converters, status and error
//! getters, frees, and every client/subscription/consumer/delivery call with a NULL handle.
//! Nothing that needs a network: smartreceive is only given messages without links, and no
//! client is ever connected.
//!
//! Handles are freed once, as the header's ownership rules say (a double free is the caller's
//! bug, not the library's). Checked: no call returns INTERNAL_ERROR or a status outside the
//! header's enum; a NULL required argument is INVALID_ARGUMENT; `natsbridge_last_error` is ""
//! after a success and a message after a failure; what a call hands out reads within its bounds
//! (AddressSanitizer watches); smartreceive fails with core's code for the same bytes, or
//! gives its payloads.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use natsbridge::error::ErrorCode;
use natsbridge::protocol::{self, PayloadSource, ReceiveLimits};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr::{null, null_mut};

// Links the library's exports into this binary.
use natsbridge_c as _;

type Status = i32;
const OK: Status = 0;
const INVALID_ARGUMENT: Status = 12;
const INTERNAL_ERROR: Status = 101;

type UploadFn =
    Option<unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const u8, usize, *mut c_void) -> c_int>;
type DownloadFn =
    Option<unsafe extern "C" fn(*mut c_void, *const c_char, u32, u64, u64, *const c_char, *mut c_void) -> c_int>;

// The opaque handles are `void *` here: the target never looks inside them.
unsafe extern "C" {
    fn natsbridge_string_free(s: *mut c_char);
    fn natsbridge_bytes_free(data: *mut u8, len: usize);
    fn natsbridge_version() -> *const c_char;
    fn natsbridge_arrow_from_json_rows(json: *const u8, len: usize, out: *mut *mut u8, out_len: *mut usize) -> Status;
    fn natsbridge_arrow_to_json_rows(data: *const u8, len: usize, out: *mut *mut c_char) -> Status;
    fn natsbridge_client_send(
        client: *const c_void,
        subject: *const c_char,
        message: *const c_void,
        json: *mut *mut c_char,
    ) -> Status;
    fn natsbridge_client_receive(client: *const c_void, bytes: *const u8, len: usize, out: *mut *mut c_void) -> Status;
    fn natsbridge_client_subscribe(
        client: *const c_void,
        subject: *const c_char,
        queue: *const c_char,
        out: *mut *mut c_void,
    ) -> Status;
    fn natsbridge_subscription_next(subscription: *const c_void, timeout_ms: u64, out: *mut *mut c_void) -> Status;
    fn natsbridge_subscription_last_error(subscription: *const c_void, out: *mut *const c_char) -> Status;
    fn natsbridge_client_request(
        client: *const c_void,
        subject: *const c_char,
        message: *const c_void,
        timeout_ms: u64,
        reply: *mut *mut c_void,
    ) -> Status;
    fn natsbridge_client_reply(
        client: *const c_void,
        request: *const c_void,
        message: *const c_void,
        json: *mut *mut c_char,
    ) -> Status;
    fn natsbridge_client_reply_json(
        client: *const c_void,
        request_json: *const c_char,
        message: *const c_void,
        json: *mut *mut c_char,
    ) -> Status;
    fn natsbridge_client_reply_error(
        client: *const c_void,
        request: *const c_void,
        code: Status,
        message: *const c_char,
        json: *mut *mut c_char,
    ) -> Status;
    fn natsbridge_client_flush(client: *const c_void, timeout_ms: u64) -> Status;
    fn natsbridge_client_close(client: *const c_void, timeout_ms: u64) -> Status;
    fn natsbridge_client_free(client: *mut c_void);
    fn natsbridge_subscription_free(subscription: *mut c_void);
    fn natsbridge_consumer_next(consumer: *const c_void, timeout_ms: u64, out: *mut *mut c_void) -> Status;
    fn natsbridge_consumer_last_error(consumer: *const c_void, out: *mut *const c_char) -> Status;
    fn natsbridge_delivery_envelope(delivery: *const c_void, out: *mut *const c_void) -> Status;
    fn natsbridge_delivery_info_json(delivery: *const c_void, out: *mut *const c_char) -> Status;
    fn natsbridge_delivery_ack(delivery: *const c_void, timeout_ms: u64) -> Status;
    fn natsbridge_delivery_free(delivery: *mut c_void);
    fn natsbridge_consumer_free(consumer: *mut c_void);
    fn natsbridge_stream_option_names() -> *const *const c_char;
    fn natsbridge_consume_option_names() -> *const *const c_char;
    fn natsbridge_envelope_field(envelope: *const c_void, name: *const c_char, out: *mut *const c_char) -> Status;
    fn natsbridge_envelope_payload_count(envelope: *const c_void, out: *mut usize) -> Status;
    fn natsbridge_envelope_payload(
        envelope: *const c_void,
        index: usize,
        dataname: *mut *const c_char,
        payload_type: *mut *const c_char,
        transport: *mut *const c_char,
        data: *mut *const u8,
        len: *mut usize,
    ) -> Status;
    fn natsbridge_envelope_free(envelope: *mut c_void);
    fn natsbridge_buffer_append(buffer: *mut c_void, data: *const u8, len: usize) -> Status;
    fn natsbridge_message_new(out: *mut *mut c_void) -> Status;
    fn natsbridge_message_add(
        message: *mut c_void,
        dataname: *const c_char,
        payload_type: *const c_char,
        data: *const u8,
        len: usize,
    ) -> Status;
    fn natsbridge_message_set(message: *mut c_void, key: *const c_char, value: *const c_char) -> Status;
    fn natsbridge_message_set_upload_handler(message: *mut c_void, upload: UploadFn, user_data: *mut c_void) -> Status;
    fn natsbridge_message_free(message: *mut c_void);
    fn natsbridge_smartsend(
        subject: *const c_char,
        message: *const c_void,
        broker_url: *const c_char,
        fileserver_url: *const c_char,
        json: *mut *mut c_char,
    ) -> Status;
    fn natsbridge_smartreceive(
        bytes: *const u8,
        len: usize,
        broker_url: *const c_char,
        fileserver_url: *const c_char,
        out: *mut *mut c_void,
    ) -> Status;
    fn natsbridge_connect_options_new(out: *mut *mut c_void) -> Status;
    fn natsbridge_connect_options_set(opts: *mut c_void, key: *const c_char, value: *const c_char) -> Status;
    fn natsbridge_option_names() -> *const *const c_char;
    fn natsbridge_connect_options_set_handlers(
        opts: *mut c_void,
        upload: UploadFn,
        download: DownloadFn,
        user_data: *mut c_void,
    ) -> Status;
    fn natsbridge_connect_options_free(opts: *mut c_void);
    fn natsbridge_last_error() -> *const c_char;
    fn natsbridge_last_error_correlation_id() -> *const c_char;
    fn natsbridge_status_name(status: i32) -> *const c_char;
}

/// Handlers that are installed but never run: nothing here sends, or fetches a link.
unsafe extern "C" fn refusing_upload(
    _: *mut c_void,
    _: *const c_char,
    _: *const c_char,
    _: *const u8,
    _: usize,
    _: *mut c_void,
) -> c_int {
    1
}

unsafe extern "C" fn refusing_download(
    _: *mut c_void,
    _: *const c_char,
    _: u32,
    _: u64,
    _: u64,
    _: *const c_char,
    _: *mut c_void,
) -> c_int {
    1
}

/// Words the API knows, so sequences reach past "unknown key" and "unknown type".
const WORDS: &[&str] = &[
    "text",
    "dictionary",
    "arrowtable",
    "jsontable",
    "image",
    "audio",
    "video",
    "binary",
    "Text",
    "",
    "correlation_id",
    "msg_id",
    "timestamp",
    "send_to",
    "msg_purpose",
    "sender_name",
    "sender_id",
    "receiver_name",
    "receiver_id",
    "reply_to",
    "reply_to_msg_id",
    "broker_url",
    "metadata",
    "error",
    "subject",
    "reply",
    "size_threshold",
    "servers",
    "name",
    "user",
    "password",
    "token",
    "nkey",
    "tls_required",
    "max_reconnect_attempts",
    "reconnect_time_wait_ms",
    "connect_timeout_ms",
    "pending_msgs_limit",
    "fileserver_url",
    "fileserver_kind",
    "object_store",
    "object_store_ttl_ms",
    "plik_oneshot",
    "plik_ttl_ms",
    "allowed_origins",
    "max_retries",
    "base_delay_ms",
    "max_delay_ms",
    "max_download_bytes",
    "jetstream",
    "base_delay",
    "true",
    "false",
    "-1",
    "0",
    "1",
    "500000",
    "18446744073709551616",
    "plik",
    "http",
    "nats://127.0.0.1:1",
    "mem:",
    "http://h/store",
    "{}",
    "{\"a\":[1,2.5,null]}",
    "[{\"a\":1}]",
    "ACK",
    "NACK",
    "base64",
    "json",
    "arrow-ipc",
    "none",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Null,
    Word(u8),
    /// Any bytes: cut at the first NUL, as C would see them (may be invalid UTF-8).
    Raw(Vec<u8>),
}

impl Text {
    /// The argument's C string, kept alive by the caller.
    fn c_string(&self) -> Option<CString> {
        match self {
            Text::Null => None,
            Text::Word(i) => Some(CString::new(WORDS[usize::from(*i) % WORDS.len()]).expect("no NUL in a word")),
            Text::Raw(b) => {
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                Some(CString::new(&b[..end]).expect("cut at the NUL"))
            }
        }
    }
}

fn ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(null(), |s| s.as_ptr())
}

#[derive(Arbitrary, Debug)]
enum Buf {
    /// NULL with a length: INVALID_ARGUMENT unless the length is 0.
    Null(u8),
    Bytes(Vec<u8>),
    /// A message made of one payload's fields, so smartreceive gets past the envelope parse.
    /// `size`: None is the data's true length.
    Envelope {
        payload_type: Text,
        encoding: Text,
        size: Option<u16>,
        data: Vec<u8>,
    },
}

impl Buf {
    fn bytes(&self) -> (Option<Vec<u8>>, usize) {
        match self {
            Buf::Null(len) => (None, usize::from(*len)),
            Buf::Bytes(b) => (Some(b.clone()), b.len()),
            Buf::Envelope { payload_type, encoding, size, data } => {
                let text = |t: &Text| t.c_string().map_or(serde_json::Value::Null, |s| s.to_string_lossy().into());
                let message = serde_json::json!({
                    "correlation_id": "fuzz-cid",
                    "payloads": [{
                        "dataname": "p",
                        "payload_type": text(payload_type),
                        "transport": "direct",
                        "encoding": text(encoding),
                        "size": size.map_or(data.len(), usize::from),
                        "data": protocol::base64_encode(data),
                    }],
                })
                .to_string()
                .into_bytes();
                let len = message.len();
                (Some(message), len)
            }
        }
    }
}

/// Which live handle of a kind a call uses: NULL, or one of those made so far.
#[derive(Arbitrary, Debug)]
enum Handle {
    Null,
    Live(u8),
}

#[derive(Arbitrary, Debug)]
enum Call {
    MessageNew {
        null_out: bool,
    },
    MessageAdd {
        message: Handle,
        dataname: Text,
        payload_type: Text,
        data: Buf,
    },
    MessageSet {
        message: Handle,
        key: Text,
        value: Text,
    },
    MessageSetUploadHandler {
        message: Handle,
        with_handler: bool,
    },
    MessageFree {
        message: Handle,
    },
    OptionsNew {
        null_out: bool,
    },
    OptionsSet {
        options: Handle,
        key: Text,
        value: Text,
    },
    OptionsSetHandlers {
        options: Handle,
        upload: bool,
        download: bool,
    },
    OptionsFree {
        options: Handle,
    },
    SmartReceive {
        bytes: Buf,
        broker_url: Text,
        fileserver_url: Text,
        null_out: bool,
    },
    EnvelopeField {
        envelope: Handle,
        name: Text,
        null_out: bool,
    },
    EnvelopePayloadCount {
        envelope: Handle,
        null_out: bool,
    },
    EnvelopePayload {
        envelope: Handle,
        index: u8,
        null_outs: u8,
    },
    EnvelopeFree {
        envelope: Handle,
    },
    ArrowFromJsonRows {
        json: Buf,
        null_out: bool,
        null_len: bool,
    },
    ArrowToJsonRows {
        data: Buf,
        null_out: bool,
    },
    StatusName(i32),
    Version,
    OptionNames,
    /// Calls that need a connection, made with NULL handles: INVALID_ARGUMENT before any I/O.
    NullHandle {
        call: u8,
        subject: Text,
        message: Handle,
        bytes: Buf,
        code: i32,
    },
    BufferAppend {
        data: Buf,
    },
}

#[derive(Default)]
struct Live {
    messages: Vec<*mut c_void>,
    options: Vec<*mut c_void>,
    envelopes: Vec<*mut c_void>,
}

impl Live {
    fn pick(list: &[*mut c_void], h: &Handle) -> *mut c_void {
        match h {
            Handle::Live(i) if !list.is_empty() => list[usize::from(*i) % list.len()],
            _ => null_mut(),
        }
    }

    /// Takes a handle out of the list (the caller frees it once).
    fn take(list: &mut Vec<*mut c_void>, h: &Handle) -> *mut c_void {
        match h {
            Handle::Live(i) if !list.is_empty() => {
                let i = usize::from(*i) % list.len();
                list.swap_remove(i)
            }
            _ => null_mut(),
        }
    }

    fn free_all(self) {
        // SAFETY: each handle was made by the library and is freed once, here.
        unsafe {
            self.messages.into_iter().for_each(|m| natsbridge_message_free(m));
            self.options.into_iter().for_each(|o| natsbridge_connect_options_free(o));
            self.envelopes.into_iter().for_each(|e| natsbridge_envelope_free(e));
        }
    }
}

fn c_str<'a>(p: *const c_char) -> &'a str {
    assert!(!p.is_null(), "the library returned a NULL string");
    // SAFETY: the library's strings are NUL-terminated and live until the next call.
    unsafe { CStr::from_ptr(p) }.to_str().expect("the library's strings are UTF-8")
}

/// The status C sees for a core error code (1 to 12, in `ErrorCode::ALL`'s order).
fn status_of(code: ErrorCode) -> Status {
    ErrorCode::ALL.iter().position(|c| *c == code).expect("every code is in ALL") as Status + 1
}

/// The rules every call's status follows.
fn check(status: Status, null_argument: bool) {
    let last_error = c_str(unsafe { natsbridge_last_error() }).to_owned();
    assert_ne!(status, INTERNAL_ERROR, "a panic reached the C boundary: {last_error}");
    assert!((0..=12).contains(&status), "status {status} is not in natsbridge_status");
    if null_argument {
        assert_eq!(status, INVALID_ARGUMENT, "a NULL argument gave {status}: {last_error}");
    }
    assert_eq!(status == OK, last_error.is_empty(), "status {status}, last error {last_error:?}");
    c_str(unsafe { natsbridge_last_error_correlation_id() });
    assert!(!c_str(unsafe { natsbridge_status_name(status) }).is_empty());
}

/// Walks a NULL-terminated name array.
fn names(array: *const *const c_char) -> usize {
    assert!(!array.is_null());
    let mut n = 0;
    // SAFETY: the library's arrays end with NULL.
    while !unsafe { *array.add(n) }.is_null() {
        c_str(unsafe { *array.add(n) });
        n += 1;
    }
    n
}

/// A message whose payloads are all direct (or that fails to decode): smartreceive decodes it
/// without a connection. One with a link would connect to a broker, so it is not sent.
fn needs_no_network(bytes: &[u8]) -> bool {
    match protocol::decode_message(bytes, &ReceiveLimits::default()) {
        Ok((_, payloads)) => payloads.iter().all(|p| matches!(p.source, PayloadSource::Inline(_))),
        Err(_) => true,
    }
}

fuzz_target!(|calls: Vec<Call>| {
    natsbridge_fuzz::init();
    let mut live = Live::default();
    for call in calls.iter().take(64) {
        // SAFETY: every pointer passed is NULL, a live handle of the right kind, or points to
        // memory that outlives the call with the length given.
        unsafe { run(call, &mut live) };
    }
    live.free_all();
});

unsafe fn run(call: &Call, live: &mut Live) {
    unsafe {
        match call {
            Call::MessageNew { null_out } => {
                let mut out = null_mut();
                let status = natsbridge_message_new(if *null_out { null_mut() } else { &mut out });
                check(status, *null_out);
                if status == OK {
                    assert!(!out.is_null());
                    live.messages.push(out);
                }
            }
            Call::MessageAdd { message, dataname, payload_type, data } => {
                let m = Live::pick(&live.messages, message);
                let (name, ty) = (dataname.c_string(), payload_type.c_string());
                let (bytes, len) = data.bytes();
                let invalid = m.is_null() || name.is_none() || ty.is_none() || (bytes.is_none() && len > 0);
                let status =
                    natsbridge_message_add(m, ptr(&name), ptr(&ty), bytes.as_ref().map_or(null(), |b| b.as_ptr()), len);
                check(status, invalid);
            }
            Call::MessageSet { message, key, value } => {
                let m = Live::pick(&live.messages, message);
                let (k, v) = (key.c_string(), value.c_string());
                check(natsbridge_message_set(m, ptr(&k), ptr(&v)), m.is_null() || k.is_none() || v.is_none());
            }
            Call::MessageSetUploadHandler { message, with_handler } => {
                let m = Live::pick(&live.messages, message);
                let upload: UploadFn = if *with_handler { Some(refusing_upload) } else { None };
                check(natsbridge_message_set_upload_handler(m, upload, null_mut()), m.is_null() || !with_handler);
            }
            Call::MessageFree { message } => natsbridge_message_free(Live::take(&mut live.messages, message)),
            Call::OptionsNew { null_out } => {
                let mut out = null_mut();
                let status = natsbridge_connect_options_new(if *null_out { null_mut() } else { &mut out });
                check(status, *null_out);
                if status == OK {
                    assert!(!out.is_null());
                    live.options.push(out);
                }
            }
            Call::OptionsSet { options, key, value } => {
                let o = Live::pick(&live.options, options);
                let (k, v) = (key.c_string(), value.c_string());
                check(natsbridge_connect_options_set(o, ptr(&k), ptr(&v)), o.is_null() || k.is_none() || v.is_none());
            }
            Call::OptionsSetHandlers { options, upload, download } => {
                let o = Live::pick(&live.options, options);
                let up: UploadFn = if *upload { Some(refusing_upload) } else { None };
                let down: DownloadFn = if *download { Some(refusing_download) } else { None };
                let status = natsbridge_connect_options_set_handlers(o, up, down, null_mut());
                check(status, o.is_null() || !(upload | download));
            }
            Call::OptionsFree { options } => natsbridge_connect_options_free(Live::take(&mut live.options, options)),
            Call::SmartReceive { bytes, broker_url, fileserver_url, null_out } => {
                let (data, len) = bytes.bytes();
                if data.as_deref().is_some_and(|d| !needs_no_network(d)) {
                    return;
                }
                let (broker, server) = (broker_url.c_string(), fileserver_url.c_string());
                let mut out = null_mut();
                let data_ptr = data.as_ref().map_or(null(), |b| b.as_ptr());
                let out_ptr = if *null_out { null_mut() } else { &mut out };
                let status = natsbridge_smartreceive(data_ptr, len, ptr(&broker), ptr(&server), out_ptr);
                let not_utf8 = |s: &Option<CString>| s.as_ref().is_some_and(|s| s.to_str().is_err());
                let invalid = *null_out || (data.is_none() && len > 0) || not_utf8(&broker) || not_utf8(&server);
                check(status, invalid);
                if invalid {
                    return;
                }
                let bytes = data.unwrap_or_default();
                match protocol::decode_direct(&bytes, &ReceiveLimits::default()) {
                    Err(e) => assert_eq!(status, status_of(e.code), "core says {e}"),
                    Ok(Some(view)) => {
                        assert_eq!(status, OK, "{}", c_str(natsbridge_last_error()));
                        let mut count = usize::MAX;
                        check(natsbridge_envelope_payload_count(out, &mut count), false);
                        assert_eq!(count, view.payloads.len());
                        live.envelopes.push(out);
                    }
                    Ok(None) => unreachable!("links are filtered out above"),
                }
            }
            Call::EnvelopeField { envelope, name, null_out } => {
                let e = Live::pick(&live.envelopes, envelope);
                let n = name.c_string();
                let mut out = null();
                let status = natsbridge_envelope_field(e, ptr(&n), if *null_out { null_mut() } else { &mut out });
                check(status, e.is_null() || n.is_none() || *null_out);
                if status == OK {
                    c_str(out);
                }
            }
            Call::EnvelopePayloadCount { envelope, null_out } => {
                let e = Live::pick(&live.envelopes, envelope);
                let mut out = 0;
                let status = natsbridge_envelope_payload_count(e, if *null_out { null_mut() } else { &mut out });
                check(status, e.is_null() || *null_out);
            }
            Call::EnvelopePayload { envelope, index, null_outs } => {
                let e = Live::pick(&live.envelopes, envelope);
                let mut count = 0;
                if !e.is_null() {
                    check(natsbridge_envelope_payload_count(e, &mut count), false);
                }
                let (mut name, mut ty, mut transport, mut data, mut len) = (null(), null(), null(), null(), 0usize);
                let want = |bit: u8| null_outs & (1 << bit) == 0;
                let status = natsbridge_envelope_payload(
                    e,
                    usize::from(*index),
                    if want(0) { &mut name } else { null_mut() },
                    if want(1) { &mut ty } else { null_mut() },
                    if want(2) { &mut transport } else { null_mut() },
                    if want(3) { &mut data } else { null_mut() },
                    if want(4) { &mut len } else { null_mut() },
                );
                // Every out-param is optional; NULL envelope and an index out of range are errors.
                check(status, e.is_null() || usize::from(*index) >= count);
                if status == OK {
                    if want(0) {
                        c_str(name);
                    }
                    if want(1) {
                        protocol::PayloadType::parse(c_str(ty)).expect("a payload type name");
                    }
                    if want(2) {
                        assert_eq!(c_str(transport), "direct");
                    }
                    if want(3) && want(4) {
                        // Every byte and the NUL after them are readable.
                        let bytes = std::slice::from_raw_parts(data, len + 1);
                        assert_eq!(bytes[len], 0, "payload data is NUL-terminated");
                    }
                }
            }
            Call::EnvelopeFree { envelope } => natsbridge_envelope_free(Live::take(&mut live.envelopes, envelope)),
            Call::ArrowFromJsonRows { json, null_out, null_len } => {
                let (data, len) = json.bytes();
                let (mut out, mut out_len) = (null_mut(), 0usize);
                let status = natsbridge_arrow_from_json_rows(
                    data.as_ref().map_or(null(), |b| b.as_ptr()),
                    len,
                    if *null_out { null_mut() } else { &mut out },
                    if *null_len { null_mut() } else { &mut out_len },
                );
                check(status, *null_out || *null_len || (data.is_none() && len > 0));
                if status == OK {
                    let ipc = bytes::Bytes::copy_from_slice(std::slice::from_raw_parts(out, out_len));
                    protocol::arrow::validate_stream(&ipc).expect("the library's IPC stream reads back");
                    natsbridge_bytes_free(out, out_len);
                }
            }
            Call::ArrowToJsonRows { data, null_out } => {
                let (bytes, len) = data.bytes();
                let mut out = null_mut();
                let status = natsbridge_arrow_to_json_rows(
                    bytes.as_ref().map_or(null(), |b| b.as_ptr()),
                    len,
                    if *null_out { null_mut() } else { &mut out },
                );
                let invalid = *null_out || (bytes.is_none() && len > 0);
                check(status, invalid);
                if invalid {
                    return;
                }
                match protocol::arrow::to_json_rows_text(&bytes::Bytes::from(bytes.unwrap_or_default())) {
                    Ok(text) => {
                        assert_eq!((status, c_str(out)), (OK, text.as_str()));
                        natsbridge_string_free(out);
                    }
                    Err(e) => assert_eq!(status, status_of(e.code), "core says {e}"),
                }
            }
            Call::StatusName(status) => {
                c_str(natsbridge_status_name(*status));
            }
            Call::Version => assert_eq!(c_str(natsbridge_version()), "0.1.0"),
            Call::OptionNames => {
                assert!(names(natsbridge_option_names()) > 0);
                assert!(names(natsbridge_stream_option_names()) > 0);
                assert!(names(natsbridge_consume_option_names()) > 0);
            }
            Call::NullHandle { call, subject, message, bytes, code } => {
                null_handle_call(*call, subject, Live::pick(&live.messages, message), bytes, *code)
            }
            Call::BufferAppend { data } => {
                let (bytes, len) = data.bytes();
                check(natsbridge_buffer_append(null_mut(), bytes.as_ref().map_or(null(), |b| b.as_ptr()), len), true);
            }
        }
    }
}

/// A call that needs a client, subscription, consumer, delivery or envelope it is not given.
unsafe fn null_handle_call(call: u8, subject: &Text, message: *mut c_void, bytes: &Buf, code: i32) {
    let s = subject.c_string();
    let (data, len) = bytes.bytes();
    let data = data.as_ref().map_or(null(), |b| b.as_ptr());
    let (mut json, mut env, mut text) = (null_mut(), null_mut(), null());
    let mut env_ref: *const c_void = null();
    unsafe {
        let status = match call % 17 {
            0 => natsbridge_client_send(null(), ptr(&s), message, &mut json),
            1 => natsbridge_client_receive(null(), data, len, &mut env),
            2 => natsbridge_client_subscribe(null(), ptr(&s), null(), &mut env),
            3 => natsbridge_subscription_next(null(), 0, &mut env),
            4 => natsbridge_subscription_last_error(null(), &mut text),
            5 => natsbridge_client_request(null(), ptr(&s), message, 0, &mut env),
            6 => natsbridge_client_reply(null(), null(), message, &mut json),
            7 => natsbridge_client_reply_json(null(), ptr(&s), message, &mut json),
            8 => natsbridge_client_reply_error(null(), null(), code, ptr(&s), &mut json),
            9 => natsbridge_client_flush(null(), 0),
            10 => natsbridge_client_close(null(), 0),
            11 => natsbridge_consumer_next(null(), 0, &mut env),
            12 => natsbridge_consumer_last_error(null(), &mut text),
            13 => natsbridge_delivery_envelope(null(), &mut env_ref),
            14 => natsbridge_delivery_info_json(null(), &mut text),
            15 => natsbridge_delivery_ack(null(), 0),
            // smartsend with no message fails before it connects.
            _ => natsbridge_smartsend(ptr(&s), null(), null(), null(), &mut json),
        };
        check(status, true);
        // The frees take NULL.
        natsbridge_client_free(null_mut());
        natsbridge_subscription_free(null_mut());
        natsbridge_consumer_free(null_mut());
        natsbridge_delivery_free(null_mut());
        natsbridge_envelope_free(null_mut());
        natsbridge_message_free(null_mut());
        natsbridge_connect_options_free(null_mut());
        natsbridge_string_free(null_mut());
        natsbridge_bytes_free(null_mut(), len);
    }
}
