//! The seeds' fileserver_upload_handler / fileserver_download_handler as C function pointers,
//! wrapped as core's handlers. Core decides which URLs they serve and what their answers mean;
//! here a call is made and its return code and buffer become the result. The call is made when
//! core invokes the handler, inside a future the blocking API polls on the caller's thread
//! (`runtime::block_on`): a handler runs on the thread that made the natsbridge call.

use crate::args;
use crate::status::{Status, guard};
use bridge::io::ByteSource;
use bridge::io::store::{DownloadCall, DownloadHandler, UploadCall, UploadHandler, UploadReply};
use bytes::Bytes;
use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::Arc;

/// Bytes a handler hands back: the URL an upload handler stored the data at, the bytes a
/// download handler fetched, or, when the handler fails, its error message. Made by the library
/// for one handler call and valid only during that call.
#[derive(Default)]
pub struct Buffer {
    bytes: Vec<u8>,
}

/// The seeds' `fileserver_upload_handler(fileserver_url, dataname, data)`: stores `len` bytes
/// and appends to `url_out` the URL receivers will fetch, or the seeds' reply object as JSON
/// (`{"status": 200, "url": ...}`; a status outside 2xx is a failure). Returns 0 on success; on
/// failure returns non-zero and may append an error message to `url_out` instead.
/// `fileserver_url` is the configured file server ("" when none). Every pointer is borrowed
/// for the call.
pub type UploadFn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        fileserver_url: *const c_char,
        dataname: *const c_char,
        data: *const u8,
        len: usize,
        url_out: *mut Buffer,
    ) -> c_int,
>;

/// The seeds' `fileserver_download_handler(url, max_retries, base_delay_ms, max_delay_ms,
/// correlation_id)`: fetches `url` and appends its bytes to `bytes_out`, retrying on its own
/// (up to `max_retries` attempts, waiting `base_delay_ms` doubling up to `max_delay_ms`: the
/// connection's options). Returns 0 on success; on failure returns non-zero and may append an
/// error message instead. Every pointer is borrowed for the call.
pub type DownloadFn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        url: *const c_char,
        max_retries: u32,
        base_delay_ms: u64,
        max_delay_ms: u64,
        correlation_id: *const c_char,
        bytes_out: *mut Buffer,
    ) -> c_int,
>;

/// Reads a payload's next bytes: puts at most `capacity` bytes in `buf` and returns how many,
/// 0 at the end, or a negative number when it cannot read (the send fails with UPLOAD_FAILED).
pub type ReadFn = Option<unsafe extern "C" fn(user_data: *mut c_void, buf: *mut u8, capacity: usize) -> i64>;

/// Takes one batch of the library's finished spans: `json`, a JSON array of spans (the format of
/// `natsbridge_export_spans`), NUL-terminated, borrowed for the call.
pub type SpanSinkFn = Option<unsafe extern "C" fn(user_data: *mut c_void, json: *const c_char)>;

/// The caller's `user_data`. The C API documents that it must be usable from every thread that
/// calls natsbridge with this client or message.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: only passed back to the caller's handlers, under the documented contract above.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    // A method, so closures capture the Send wrapper rather than its raw pointer field.
    fn get(self) -> *mut c_void {
        self.0
    }
}

fn c_string(s: &str, what: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("was not called: {what} holds a NUL byte"))
}

/// A failed call: its return code and the message it left, if any.
fn failed(rc: c_int, buffer: Buffer) -> String {
    let message = String::from_utf8_lossy(&buffer.bytes);
    if message.trim().is_empty() { format!("returned {rc}") } else { format!("returned {rc}: {message}") }
}

/// Core's upload handler over a C function (None for NULL).
pub fn upload_handler(f: UploadFn, user_data: *mut c_void) -> Option<UploadHandler> {
    let f = f?;
    let user_data = UserData(user_data);
    Some(Arc::new(move |call: UploadCall| {
        let result = (|| {
            let server = c_string(&call.fileserver_url, "fileserver_url")?;
            let name = c_string(&call.dataname, "dataname")?;
            let mut out = Buffer::default();
            // SAFETY: every pointer is valid for the call; the handler's contract is in the header.
            let rc = unsafe {
                f(user_data.get(), server.as_ptr(), name.as_ptr(), call.data.as_ptr(), call.data.len(), &mut out)
            };
            if rc != 0 {
                return Err(failed(rc, out));
            }
            let text = String::from_utf8(out.bytes).map_err(|_| "gave a URL that is not UTF-8".to_owned())?;
            // The seeds' reply object ({"status": 200, "url": ...}) as JSON, or the URL itself.
            let reply = if text.trim_start().starts_with('{') {
                serde_json::from_str(&text).map_err(|e| format!("gave a JSON reply that does not parse: {e}"))?
            } else {
                serde_json::Value::String(text)
            };
            UploadReply::from_json(&reply)
        })();
        Box::pin(std::future::ready(result))
    }))
}

/// `size` bytes read by a C function, for core's [`ByteSource::blocking_reader`] (None for NULL).
pub fn byte_source(f: ReadFn, user_data: *mut c_void, size: u64) -> Option<ByteSource> {
    let f = f?;
    let user_data = UserData(user_data);
    Some(ByteSource::blocking_reader(
        move |buf: &mut [u8]| {
            // SAFETY: `buf` is valid for `buf.len()` bytes of writes; the function's contract is
            // in the header.
            let n = unsafe { f(user_data.get(), buf.as_mut_ptr(), buf.len()) };
            usize::try_from(n).map_err(|_| std::io::Error::other(format!("the read function returned {n}")))
        },
        size,
    ))
}

/// Core's span sink over a C function (None for NULL).
pub fn span_sink(f: SpanSinkFn, user_data: *mut c_void) -> Option<bridge::io::span_export::SpanSink> {
    let f = f?;
    let user_data = UserData(user_data);
    Some(Arc::new(move |batch: String| {
        // Core writes JSON text: no NUL inside.
        if let Ok(json) = CString::new(batch) {
            // SAFETY: `json` is valid for the call; the function's contract is in the header.
            unsafe { f(user_data.get(), json.as_ptr()) };
        }
    }))
}

/// Core's download handler over a C function (None for NULL).
pub fn download_handler(f: DownloadFn, user_data: *mut c_void) -> Option<DownloadHandler> {
    let f = f?;
    let user_data = UserData(user_data);
    Some(Arc::new(move |call: DownloadCall| {
        let result = (|| {
            let url = c_string(&call.url, "url")?;
            let cid = c_string(&call.correlation_id, "correlation_id")?;
            let mut out = Buffer::default();
            // SAFETY: as in upload_handler.
            let rc = unsafe {
                f(
                    user_data.get(),
                    url.as_ptr(),
                    call.max_retries,
                    call.base_delay_ms,
                    call.max_delay_ms,
                    cid.as_ptr(),
                    &mut out,
                )
            };
            if rc != 0 {
                return Err(failed(rc, out));
            }
            Ok(Bytes::from(out.bytes))
        })();
        Box::pin(std::future::ready(result))
    }))
}

/// Appends `len` bytes to a handler's output buffer. Call it only inside the handler that was
/// given `buffer`. INVALID_ARGUMENT when `buffer` is NULL, or `data` is NULL with `len > 0`.
///
/// Ownership: `data` is copied. Thread safety: the handler's thread.
///
/// # Safety
/// `buffer` is the one passed to the running handler; `data` is valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_buffer_append(buffer: *mut Buffer, data: *const u8, len: usize) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let buffer = unsafe { args::handle_mut(buffer, "buffer") }?;
        // SAFETY: caller contract.
        let data = unsafe { args::bytes(data, len, "data") }?;
        buffer.bytes.extend_from_slice(data);
        Ok(())
    })
}
