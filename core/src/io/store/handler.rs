//! Link stores over the host's own functions: the seeds' `fileserver_upload_handler(fileserver_url,
//! dataname, data) -> {"url": ...}` and `fileserver_download_handler(url, max_retries, base_delay,
//! max_delay, correlation_id) -> bytes` (delays in integer milliseconds, as the seeds define them,
//! in every language). Bindings only call the host function; what its answer means, which URLs it
//! serves and which errors it ends in are decided here.

use super::{Fetch, Fetched, LinkStore, Stored, Upload};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{FetchFailure, RetryPolicy, UrlScope};
use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;

/// The arguments of one upload handler call (`correlation_id` for logs and for hosts whose
/// handler signature has room for it).
#[derive(Clone, Debug)]
pub struct UploadCall {
    pub fileserver_url: String,
    pub dataname: String,
    pub data: Bytes,
    pub correlation_id: String,
}

/// The arguments of one download handler call.
#[derive(Clone, Debug)]
pub struct DownloadCall {
    pub url: String,
    pub max_retries: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub correlation_id: String,
}

/// What an upload handler answered: the seeds' `{"status": 200, "uploadid", "fileid", "url"}`,
/// of which only `url` is needed; a `status` outside 2xx is a failure.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadReply {
    pub status: Option<i64>,
    pub url: Option<String>,
}

impl UploadReply {
    /// From the handler's return value as JSON: an object with `url` (and maybe `status`), or
    /// the URL string itself.
    pub fn from_json(value: &Value) -> std::result::Result<UploadReply, String> {
        match value {
            Value::String(url) => Ok(UploadReply { status: None, url: Some(url.clone()) }),
            Value::Object(fields) => Ok(UploadReply {
                status: fields.get("status").and_then(Value::as_i64),
                url: match fields.get("url") {
                    None => None,
                    Some(Value::String(u)) => Some(u.clone()),
                    Some(other) => return Err(format!("returned a \"url\" that is not a string: {other}")),
                },
            }),
            other => Err(format!("returned {}, not an object with a \"url\"", json_kind(other))),
        }
    }

    fn into_url(self) -> std::result::Result<String, String> {
        if let Some(code) = self.status.filter(|c| !(200..300).contains(c)) {
            return Err(format!("returned status {code}"));
        }
        match self.url {
            Some(u) if !u.trim().is_empty() => Ok(u),
            Some(_) => Err("returned an empty \"url\"".into()),
            None => Err("returned no \"url\"".into()),
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A host's upload handler; `Err` carries what the host reported (its exception text).
pub type UploadHandler =
    Arc<dyn Fn(UploadCall) -> BoxFuture<'static, std::result::Result<UploadReply, String>> + Send + Sync>;
/// A host's download handler, which retries on its own (it is given the retry policy).
pub type DownloadHandler =
    Arc<dyn Fn(DownloadCall) -> BoxFuture<'static, std::result::Result<Bytes, String>> + Send + Sync>;

const UPLOAD: &str = "fileserver_upload_handler";
const DOWNLOAD: &str = "fileserver_download_handler";

/// The host's handlers as a link store.
pub struct HandlerStore {
    upload: Option<UploadHandler>,
    download: Option<DownloadHandler>,
    /// The upload handler's first argument ("" when no file server is configured).
    fileserver_url: String,
    /// The URLs the download handler serves.
    scopes: Vec<UrlScope>,
    retry: RetryPolicy,
}

impl HandlerStore {
    /// A download handler serves the origin of `fileserver_url` and `allowed_origins`, and needs
    /// at least one of them (INVALID_ARGUMENT otherwise).
    pub fn new(
        upload: Option<UploadHandler>,
        download: Option<DownloadHandler>,
        fileserver_url: Option<&str>,
        allowed_origins: &[String],
        retry: RetryPolicy,
    ) -> Result<HandlerStore> {
        if upload.is_none() && download.is_none() {
            return Err(Error::invalid_argument(format!("give a {UPLOAD}, a {DOWNLOAD}, or both")));
        }
        let mut scopes = Vec::new();
        if download.is_some() {
            scopes = UrlScope::for_handler(fileserver_url, allowed_origins)?;
            if scopes.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "{DOWNLOAD} serves the origin of fileserver_url and allowed_origins: give at least one \
                     (e.g. allowed_origins [\"myscheme:\"])"
                )));
            }
        }
        Ok(HandlerStore {
            upload,
            download,
            fileserver_url: fileserver_url.unwrap_or_default().to_owned(),
            scopes,
            retry,
        })
    }

    /// Decodes a message whose links all go to this store's download handler.
    pub fn has_download(&self) -> bool {
        self.download.is_some()
    }

    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl LinkStore for HandlerStore {
    /// The handler takes bytes: a payload streamed from a file or reader is read whole first.
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, Result<Stored>> {
        Box::pin(async move {
            let failed = |m: String| Error::new(ErrorCode::UploadFailed, format!("{UPLOAD} {m}"));
            let Some(handler) = self.upload.as_ref() else { return Err(failed("was not given".into())) };
            let data = upload.body.collect().await.map_err(|e| Error::new(ErrorCode::UploadFailed, e.to_string()))?;
            let call = handler(UploadCall {
                fileserver_url: self.fileserver_url.clone(),
                dataname: upload.dataname.to_owned(),
                data,
                correlation_id: upload.correlation_id.to_owned(),
            });
            let url = call.await.map_err(|m| failed(format!("failed: {m}")))?.into_url().map_err(failed)?;
            Ok(Stored::from(url))
        })
    }

    /// A failure is final: the handler did its own retrying.
    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, std::result::Result<Fetched, FetchFailure>> {
        let call = self.download.as_ref().map(|handler| {
            handler(DownloadCall {
                url: fetch.url.to_owned(),
                max_retries: self.retry.retries,
                base_delay_ms: millis(self.retry.base_delay),
                max_delay_ms: millis(self.retry.max_delay),
                correlation_id: fetch.correlation_id.to_owned(),
            })
        });
        Box::pin(async move {
            let failed =
                |m: String| FetchFailure::Final(Error::new(ErrorCode::DownloadFailed, format!("{DOWNLOAD} {m}")));
            let Some(call) = call else { return Err(failed(format!("was not given for {}", fetch.url))) };
            call.await.map(Fetched::from).map_err(|m| failed(format!("failed: {m}")))
        })
    }

    fn takes_uploads(&self) -> bool {
        self.upload.is_some()
    }

    fn scopes(&self) -> Vec<UrlScope> {
        self.scopes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upload_replies_follow_the_seeds_contract() {
        let url = |v: Value| UploadReply::from_json(&v).and_then(UploadReply::into_url);
        assert_eq!(url(json!({"status": 200, "url": "mem://a"})).unwrap(), "mem://a");
        assert_eq!(url(json!("mem://b")).unwrap(), "mem://b");
        assert_eq!(url(json!({"status": 500, "url": "mem://a"})).unwrap_err(), "returned status 500");
        assert_eq!(url(json!({"status": 200})).unwrap_err(), "returned no \"url\"");
        assert_eq!(url(json!({"url": " "})).unwrap_err(), "returned an empty \"url\"");
        assert!(url(json!([1])).unwrap_err().contains("an array"));
    }

    #[test]
    fn a_download_handler_needs_somewhere_to_serve() {
        let download: DownloadHandler = Arc::new(|_| Box::pin(async { Ok(Bytes::new()) }));
        let e = HandlerStore::new(None, Some(download.clone()), None, &[], RetryPolicy::default()).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let e = HandlerStore::new(None, None, None, &[], RetryPolicy::default()).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let store =
            HandlerStore::new(None, Some(download), Some("mem://files"), &["s3:".into()], RetryPolicy::default())
                .unwrap();
        assert_eq!(store.scopes().len(), 2);
        assert!(!store.takes_uploads());
    }
}
