//! Custom link stores from JS functions (DESIGN §3): the seeds'
//! `fileserver_upload_handler(fileserver_url, dataname, data) -> {url, ...}` and
//! `fileserver_download_handler(url, max_retries, base_delay, max_delay, correlation_id) -> bytes`.
//!
//! `index.js` wraps the user's (plain or async) functions so each returns a Promise of a URL
//! string / a Uint8Array; they run on the JS thread through unref'd threadsafe functions, which
//! never keep the process alive. Whatever a handler does (throw, reject, return junk) ends as
//! UPLOAD_FAILED / DOWNLOAD_FAILED with its message.

use bytes::Bytes;
use futures::future::BoxFuture;
use napi::Status;
use napi::bindgen_prelude::{Buffer, FnArgs, Promise, Uint8Array};
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::store::{Fetch, FetchError, LinkStore, RetryPolicy, Stored, Upload, UrlScope};

type UploadArgs = FnArgs<(String, String, Buffer)>;
type DownloadArgs = FnArgs<(String, u32, f64, f64, String)>;
/// `(fileserver_url, dataname, data) => Promise<url>`; weak (unref'd), errors not passed in.
pub type UploadFn = ThreadsafeFunction<UploadArgs, Promise<String>, UploadArgs, Status, false, true>;
/// `(url, max_retries, base_delay_ms, max_delay_ms, correlation_id) => Promise<Uint8Array>`.
pub type DownloadFn = ThreadsafeFunction<DownloadArgs, Promise<Uint8Array>, DownloadArgs, Status, false, true>;

#[napi(object, object_to_js = false)]
pub struct Handlers {
    pub upload: Option<UploadFn>,
    pub download: Option<DownloadFn>,
    /// The upload handler's first argument; its origin is one the download handler serves.
    pub fileserver_url: Option<String>,
    /// More URL prefixes (`scheme://host[:port][/path]`, or `scheme:` for a whole custom scheme)
    /// the download handler serves.
    pub allowed_origins: Option<Vec<String>>,
    pub retries: Option<u32>,
    pub base_delay: Option<f64>,
    pub max_delay: Option<f64>,
}

pub struct JsLinkStore {
    upload: Option<UploadFn>,
    download: Option<DownloadFn>,
    fileserver_url: String,
    allowed: Vec<UrlScope>,
    retry: RetryPolicy,
}

impl JsLinkStore {
    pub fn new(h: Handlers) -> CoreResult<JsLinkStore> {
        let mut allowed = Vec::new();
        if h.download.is_some() {
            allowed = UrlScope::for_handler(h.fileserver_url.as_deref(), h.allowed_origins.iter().flatten())?;
            if allowed.is_empty() {
                return Err(Error::new(
                    ErrorCode::UrlNotAllowed,
                    "fileserverDownloadHandler serves the fileserverUrl origin and allowedOrigins: give at least one \
                     (e.g. allowedOrigins: ['myscheme:'])",
                ));
            }
        }
        Ok(JsLinkStore {
            upload: h.upload,
            download: h.download,
            fileserver_url: h.fileserver_url.unwrap_or_default(),
            allowed,
            retry: crate::retry_policy(h.retries, h.base_delay, h.max_delay)?,
        })
    }

    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    pub fn has_download(&self) -> bool {
        self.download.is_some()
    }
}

impl LinkStore for JsLinkStore {
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, CoreResult<Stored>> {
        Box::pin(async move {
            let failed = |m: String| Error::new(ErrorCode::UploadFailed, format!("fileserverUploadHandler: {m}"));
            let Some(handler) = &self.upload else { return Err(failed("none was given".into())) };
            let args =
                (self.fileserver_url.clone(), upload.dataname.to_owned(), Buffer::from(upload.bytes.to_vec())).into();
            let promise = handler.call_async(args).await.map_err(|e| failed(e.reason))?;
            let url = promise.await.map_err(|e| failed(e.reason))?;
            Ok(Stored::from(url))
        })
    }

    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<Bytes, FetchError>> {
        Box::pin(async move {
            // The handler retries on its own (the seeds' contract), so a failure is final.
            let failed = |m: String| {
                FetchError::Fatal(Error::new(ErrorCode::DownloadFailed, format!("fileserverDownloadHandler: {m}")))
            };
            let Some(handler) = &self.download else { return Err(failed("none was given".into())) };
            let r = self.retry;
            let args = (
                fetch.url.to_owned(),
                r.retries,
                r.base_delay.as_secs_f64() * 1000.0,
                r.max_delay.as_secs_f64() * 1000.0,
                fetch.correlation_id.to_owned(),
            )
                .into();
            let promise = handler.call_async(args).await.map_err(|e| failed(e.reason))?;
            let bytes = promise.await.map_err(|e| failed(e.reason))?;
            Ok(Bytes::from_owner(bytes))
        })
    }

    fn takes_uploads(&self) -> bool {
        self.upload.is_some()
    }

    fn serves(&self, url: &str) -> bool {
        self.download.is_some() && self.allowed.iter().any(|a| a.matches(url))
    }
}
