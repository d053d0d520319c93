//! Custom link stores from C function pointers (the seeds' fileserver_upload_handler /
//! fileserver_download_handler, DESIGN §3). The calls happen synchronously inside the store's
//! futures, which the blocking API polls on the caller's thread (`runtime::block_on`): a handler
//! runs on the thread that called send / receive / next / request, never on a tokio worker.

use crate::args;
use crate::status::{Outcome, Status, guard, invalid};
use bridge::error::{Error, ErrorCode};
use bridge::io::store::{Fetch, FetchError, LinkStore, Stored, Upload};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::ffi::{CString, c_char, c_int, c_void};

/// Bytes a handler hands back: the URL an upload handler stored the data at, the bytes a
/// download handler fetched, or, when the handler fails, its error message. Made by the library
/// for one handler call and valid only during that call.
pub struct Buffer {
    bytes: Vec<u8>,
}

/// Uploads `data` and appends the URL receivers will fetch to `url_out`. Returns 0 on success;
/// on failure returns non-zero and may append an error message to `url_out`. `fileserver_url`
/// is the configured file server ("" when none). All pointers are borrowed for the call.
pub type UploadFn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        fileserver_url: *const c_char,
        dataname: *const c_char,
        correlation_id: *const c_char,
        data: *const u8,
        len: usize,
        url_out: *mut Buffer,
    ) -> c_int,
>;

/// Fetches `url` (whose envelope says it holds `size` bytes) and appends the bytes to
/// `bytes_out`. Returns 0 on success; on failure returns non-zero and may append an error
/// message instead. No retries are made by the library: retry inside the handler if wanted.
pub type DownloadFn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        url: *const c_char,
        size: u64,
        correlation_id: *const c_char,
        bytes_out: *mut Buffer,
    ) -> c_int,
>;

/// The user's `user_data`. The C API documents that it must be usable from every thread that
/// calls natsbridge with this client.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: only passed back to the user's handlers, under the documented contract above.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

#[derive(Clone)]
pub struct CLinkStore {
    upload: UploadFn,
    download: DownloadFn,
    user_data: UserData,
    fileserver_url: CString,
    /// URL prefixes the download handler serves.
    prefixes: Vec<String>,
}

/// A download prefix must end at a boundary ("scheme://host/..." ending in '/', or "scheme:"),
/// so "http://files" cannot also claim "http://files.evil.example/".
pub fn check_prefix(prefix: &str) -> Outcome {
    let bounded = prefix.ends_with('/') || (prefix.ends_with(':') && !prefix.contains('/'));
    if prefix.is_empty() || !bounded {
        return Err(invalid(format!(
            "handler URL prefix {prefix:?} must end with '/' (e.g. \"http://files.local/\") or be a scheme (\"mystore:\")"
        )));
    }
    Ok(())
}

impl CLinkStore {
    pub fn new(
        upload: UploadFn,
        download: DownloadFn,
        user_data: *mut c_void,
        fileserver_url: Option<&str>,
        prefixes: Vec<String>,
    ) -> Outcome<CLinkStore> {
        if upload.is_none() && download.is_none() {
            return Err(invalid("give an upload handler, a download handler, or both"));
        }
        if download.is_some() && prefixes.is_empty() {
            return Err(invalid("a download handler needs the URL prefixes it serves (option \"handler_url_prefix\")"));
        }
        let fileserver_url =
            CString::new(fileserver_url.unwrap_or_default()).map_err(|_| invalid("fileserver_url holds a NUL byte"))?;
        Ok(CLinkStore { upload, download, user_data: UserData(user_data), fileserver_url, prefixes })
    }
}

fn c_string(s: &str, what: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} holds a NUL byte"))
}

/// The handler's message, or a generic one when it left none.
fn failure_text(handler: &str, rc: c_int, buffer: Buffer) -> String {
    let message = String::from_utf8_lossy(&buffer.bytes);
    if message.trim().is_empty() {
        format!("{handler} failed (returned {rc})")
    } else {
        format!("{handler} failed (returned {rc}): {message}")
    }
}

impl LinkStore for CLinkStore {
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, bridge::error::Result<Stored>> {
        let result = self.call_upload(&upload).map_err(|m| Error::new(ErrorCode::UploadFailed, m));
        Box::pin(std::future::ready(result))
    }

    /// Fatal on any failure: the handler retries on its own if it wants to.
    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<Bytes, FetchError>> {
        let result =
            self.call_download(&fetch).map_err(|m| FetchError::Fatal(Error::new(ErrorCode::DownloadFailed, m)));
        Box::pin(std::future::ready(result))
    }

    fn takes_uploads(&self) -> bool {
        self.upload.is_some()
    }

    fn serves(&self, url: &str) -> bool {
        self.download.is_some() && self.prefixes.iter().any(|p| url.starts_with(p.as_str()) && url.len() > p.len())
    }
}

impl CLinkStore {
    // The calls happen when the store is asked (not when its future is polled): the core polls
    // that future on the caller's thread anyway, and a ready future keeps it simple.
    fn call_upload(&self, upload: &Upload<'_>) -> Result<Stored, String> {
        let Some(handler) = self.upload else {
            return Err("no upload handler".into());
        };
        let name = c_string(upload.dataname, "dataname")?;
        let cid = c_string(upload.correlation_id, "correlation_id")?;
        let mut out = Buffer { bytes: Vec::new() };
        // SAFETY: every pointer is valid for the call; the handler's contract is in the header.
        let rc = unsafe {
            handler(
                self.user_data.0,
                self.fileserver_url.as_ptr(),
                name.as_ptr(),
                cid.as_ptr(),
                upload.bytes.as_ptr(),
                upload.bytes.len(),
                &mut out,
            )
        };
        if rc != 0 {
            return Err(failure_text("the upload handler", rc, out));
        }
        match String::from_utf8(out.bytes) {
            Ok(url) if !url.trim().is_empty() => Ok(Stored::from(url)),
            Ok(_) => Err("the upload handler returned 0 but gave no URL".into()),
            Err(_) => Err("the upload handler's URL is not UTF-8".into()),
        }
    }

    fn call_download(&self, fetch: &Fetch<'_>) -> Result<Bytes, String> {
        let Some(handler) = self.download else {
            return Err(format!("no download handler for {}", fetch.url));
        };
        let url = c_string(fetch.url, "url")?;
        let cid = c_string(fetch.correlation_id, "correlation_id")?;
        let mut out = Buffer { bytes: Vec::new() };
        // SAFETY: as in call_upload.
        let rc = unsafe { handler(self.user_data.0, url.as_ptr(), fetch.size, cid.as_ptr(), &mut out) };
        if rc != 0 {
            return Err(failure_text("the download handler", rc, out));
        }
        Ok(Bytes::from(out.bytes))
    }
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
