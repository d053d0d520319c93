//! libnatsbridge: the C ABI of NATSBridge, shared by C programs and Julia's `ccall`. Conversion
//! and error mapping only; the protocol, I/O, options and handler rules are the core's.
//!
//! Conventions: every function returns a `natsbridge_status` (0 = OK) and writes results through
//! out-params; `natsbridge_last_error()` gives the message. Handles are opaque. Everything the
//! library hands out is freed with the matching NULL-safe `*_free`. Every export runs inside
//! `catch_unwind`; NULL or malformed arguments are INVALID_ARGUMENT. Calls block the calling
//! thread (with timeouts where waiting is the point); no foreign code runs on a library thread.

mod args;
mod client;
mod durable;
mod envelope;
mod handlers;
mod message;
mod one_call;
mod options;
mod runtime;
mod status;

use status::{Status, guard};
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Frees a boxed handle inside the runtime's context; a panic while dropping is swallowed (a
/// `*_free` has no status to report it with, and unwinding into C is undefined).
///
/// # Safety
/// `ptr` is NULL or came from `Box::into_raw` and is not used afterwards.
unsafe fn free_box<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: caller contract.
    let value = unsafe { Box::from_raw(ptr) };
    let _ = catch_unwind(AssertUnwindSafe(|| runtime::drop_in_runtime(value)));
}

/// Hands the library's own spans (send, upload, publish, receive, download: spec/PROTOCOL.md
/// §13.2) to `sink` as they end, in batches, each a JSON array of spans: `name`, `kind`
/// ("internal", "client", "producer", "consumer"), `trace_id`, `span_id` (hex), `trace_flags`,
/// `trace_state`, `parent_span_id` (hex or null), `parent_is_remote`, `start` and `end`
/// (`[seconds, nanoseconds]` since the Unix epoch), `attributes` (an object), `links`
/// (`[{trace_id, span_id, trace_flags, trace_state, attributes}]`), `events`, `status`
/// (`{code: "unset"|"ok"|"error", description}`): what an OpenTelemetry exporter needs. A send
/// with `trace_headers` is the child of that span, and the message then names the library's
/// publish span. A later call replaces the sink; once called, spans are made for the rest of
/// the process. NULL `sink`: INVALID_ARGUMENT.
///
/// Ownership: `user_data` stays the caller's and must stay valid while the process may end a
/// span. Thread safety: `sink` is called from one library thread, one batch at a time.
///
/// # Safety
/// `sink` follows the typedef's contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_export_spans(sink: handlers::SpanSinkFn, user_data: *mut c_void) -> Status {
    guard(|| {
        let sink = handlers::span_sink(sink, user_data).ok_or_else(|| status::invalid("sink must not be NULL"))?;
        bridge::io::span_export::export_spans(sink)?;
        Ok(())
    })
}

/// Frees a string the library returned (envelope JSON, Arrow JSON rows). NULL is a no-op.
///
/// Ownership: takes `s`. Thread safety: any thread.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: made by CString::into_raw in args::owned_string.
        let s = unsafe { std::ffi::CString::from_raw(s) };
        let _ = catch_unwind(AssertUnwindSafe(|| drop(s)));
    }
}

/// Frees a byte buffer the library returned together with its length. NULL is a no-op.
///
/// Ownership: takes `data`. Thread safety: any thread.
///
/// # Safety
/// `data`/`len` are NULL/any or exactly a buffer and length returned by this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_bytes_free(data: *mut u8, len: usize) {
    if !data.is_null() {
        // SAFETY: made by Box<[u8]>::into_raw with this length in `owned_bytes`.
        let bytes = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)) };
        let _ = catch_unwind(AssertUnwindSafe(|| drop(bytes)));
    }
}

fn owned_bytes(bytes: Vec<u8>) -> (*mut u8, usize) {
    let len = bytes.len();
    (Box::into_raw(bytes.into_boxed_slice()).cast::<u8>(), len)
}

/// The library version, e.g. "0.1.0".
///
/// Ownership: static string. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// Converts a JSON array of row objects (text, `len` bytes) to Arrow IPC stream bytes, for C
/// programs without an Arrow library (spec/PROTOCOL.md's JSON-rows mapping). Bad JSON or rows:
/// INVALID_PAYLOAD_TYPE.
///
/// Ownership: the caller owns `*out`/`*out_len` (`natsbridge_bytes_free(*out, *out_len)`).
/// Thread safety: any thread.
///
/// # Safety
/// `json` valid for `len` bytes; `out`, `out_len` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_arrow_from_json_rows(
    json: *const u8,
    len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> Status {
    guard(|| {
        let (out, out_len) = (args::out_param(out, "out")?, args::out_param(out_len, "out_len")?);
        // SAFETY: caller contract.
        let json = unsafe { args::bytes(json, len, "json") }?;
        let rows: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
            bridge::error::Error::new(bridge::error::ErrorCode::InvalidPayloadType, format!("rows are not JSON: {e}"))
        })?;
        let ipc = bridge::protocol::arrow::from_json_rows(&rows)?;
        let (ptr, n) = owned_bytes(ipc.to_vec());
        // SAFETY: checked out-params.
        unsafe {
            args::write(out, ptr);
            args::write(out_len, n);
        }
        Ok(())
    })
}

/// Converts Arrow IPC stream bytes to the JSON-rows text of spec/PROTOCOL.md (an array of row
/// objects). Bytes that are not an Arrow stream: DESERIALIZATION_ERROR.
///
/// Ownership: the caller owns `*out` (`natsbridge_string_free`). Thread safety: any thread.
///
/// # Safety
/// `data` valid for `len` bytes; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_arrow_to_json_rows(data: *const u8, len: usize, out: *mut *mut c_char) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let data = unsafe { args::bytes(data, len, "data") }?;
        let rows = bridge::protocol::arrow::to_json_rows_text(&bytes::Bytes::copy_from_slice(data))?;
        let s = args::owned_string(rows)?;
        // SAFETY: checked out-param.
        unsafe { args::write(out, s) };
        Ok(())
    })
}
