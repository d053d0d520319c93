//! Plik link store (spec/PROTOCOL.md §7.2).
//!
//! Upload: `POST /upload` with `{"oneShot", "ttl"}` → upload id + upload token; then
//! `POST /file/{uploadId}` (multipart, part `file`, header `X-UploadToken`) → file id. The link is
//! `{server}/file/{uploadId}/{fileId}/{fileName}`. Download: the shared GET of [`super::http`].
//!
//! Plik quirks handled here:
//! * failed downloads of User-Agents Plik does not recognize are answered with a 301 to its web UI
//!   carrying the real status (`/#/?err=<message>&errcode=<status>&uri=…`). Plik 1.3.x knows the
//!   `plik_client` User-Agent we send; older builds (e.g. the 2022 one scripts/install-plik.sh
//!   builds) do not, so such redirects are decoded back into the status they stand for;
//! * one-shot is "first GET wins": a second GET is a 404 (or a redirect saying 404), which is
//!   fatal, so nothing retries a consumed link;
//! * errors are plain text, not JSON: the message goes into the error as is.

use super::http::{
    HttpClientConfig, body_with_progress, client_for, error_chain, error_text, get, join_segments, open_get,
    parse_base_url, sanitize_file_name,
};
use super::{Fetch, Fetched, LinkStore, Opened, Stored, Upload};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{FetchFailure, UrlScope, display_url};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// Upload options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlikOptions {
    /// One-shot upload: the first GET consumes the file for good. Only for a single, known receiver
    /// (request/reply); a failed or repeated download cannot be retried. Default false.
    pub oneshot: bool,
    /// How long Plik keeps the upload. Rounded up to whole seconds; `Duration::ZERO` means Plik's
    /// own default (30 days unless its `DefaultTTL` says otherwise). Default 1 hour. Plik refuses a
    /// TTL above its `MaxTTL` with UPLOAD_FAILED.
    pub ttl: Duration,
    /// User token (`X-PlikToken`), needed when the server refuses anonymous uploads.
    pub user_token: Option<String>,
}

impl Default for PlikOptions {
    fn default() -> Self {
        PlikOptions { oneshot: false, ttl: Duration::from_secs(3600), user_token: None }
    }
}

/// Plik file server (`github.com/root-gg/plik`).
pub struct PlikStore {
    server: Url,
    options: PlikOptions,
    http: HttpClientConfig,
}

#[derive(Deserialize)]
struct CreatedUpload {
    id: String,
    #[serde(rename = "uploadToken", default)]
    upload_token: Option<String>,
}

#[derive(Deserialize)]
struct AddedFile {
    id: String,
    #[serde(rename = "fileName", default)]
    file_name: Option<String>,
}

/// Success bodies are small JSON documents; anything bigger is not Plik.
const REPLY_LIMIT: usize = 1 << 20;

impl PlikStore {
    /// `server_url`: Plik's base URL, e.g. `http://127.0.0.1:8080` (with its `Path` if it has one).
    pub fn new(server_url: &str, options: PlikOptions) -> Result<Self> {
        Ok(PlikStore { server: parse_base_url("Plik server", server_url)?, options, http: HttpClientConfig::default() })
    }

    fn ttl_secs(&self) -> u64 {
        let ttl = self.options.ttl;
        ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)
    }

    async fn put(&self, upload: Upload<'_>) -> Result<String> {
        let cid = upload.correlation_id;
        let fail = |msg: String| Error::new(ErrorCode::UploadFailed, msg).with_correlation_id(cid);
        let client =
            client_for(&self.http).map_err(|e| fail(format!("cannot build the HTTP client: {}", error_chain(&e))))?;
        let token = match &self.options.user_token {
            Some(t) => Some(
                reqwest::header::HeaderValue::from_str(t)
                    .map_err(|_| fail("the Plik user token is not a valid HTTP header value".to_owned()))?,
            ),
            None => None,
        };

        // 1. Create the upload.
        let create_url = join_segments(&self.server, &["upload"]);
        let body = serde_json::json!({ "oneShot": self.options.oneshot, "ttl": self.ttl_secs() });
        let mut req = client
            .post(create_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).expect("a JSON value serializes"));
        if let Some(t) = &token {
            req = req.header("X-PlikToken", t.clone());
        }
        let created: CreatedUpload = self.send_json(req, "POST", &create_url, &fail).await?;
        let upload_token = created
            .upload_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail(format!("POST {create_url}: Plik returned no uploadToken")))?;
        if created.id.is_empty() {
            return Err(fail(format!("POST {create_url}: Plik returned an empty upload id")));
        }

        // 2. Add the file: multipart, the part must be named `file` and carry a file name.
        let name = sanitize_file_name(upload.dataname);
        let size = upload.body.size();
        let part = reqwest::multipart::Part::stream_with_length(body_with_progress(upload.body, upload.progress), size)
            .file_name(name.clone());
        let form = reqwest::multipart::Form::new().part("file", part);
        let file_url = join_segments(&self.server, &["file", &created.id]);
        let mut req = client.post(file_url.clone()).header("X-UploadToken", upload_token).multipart(form);
        if let Some(t) = &token {
            req = req.header("X-PlikToken", t.clone());
        }
        let added: AddedFile = self.send_json(req, "POST", &file_url, &fail).await?;
        if added.id.is_empty() {
            return Err(fail(format!("POST {file_url}: Plik returned an empty file id")));
        }
        // The name Plik stored is the one the link must carry (it answers 400 to any other).
        let stored_name = added.file_name.filter(|n| !n.is_empty()).unwrap_or(name);
        let url = join_segments(&self.server, &["file", &created.id, &added.id, &stored_name]);
        tracing::debug!(correlation_id = cid, url = %url, size, oneshot = self.options.oneshot, "uploaded to Plik");
        Ok(url.into())
    }

    async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        method: &str,
        url: &Url,
        fail: &(dyn Fn(String) -> Error + Sync),
    ) -> Result<T> {
        let shown = display_url(url.as_str());
        let mut resp =
            req.send().await.map_err(|e| fail(format!("{method} {shown}: {}", error_chain(&e.without_url()))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("{method} {shown}: {}", error_text(status, resp).await)));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(format!("{method} {shown}: reading reply: {}", error_chain(&e.without_url()))))?
        {
            if buf.len() + chunk.len() > REPLY_LIMIT {
                return Err(fail(format!("{method} {shown}: reply is larger than {REPLY_LIMIT} bytes")));
            }
            buf.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&buf).map_err(|e| {
            let text = String::from_utf8_lossy(&buf[..buf.len().min(200)]).into_owned();
            fail(format!("{method} {shown}: unexpected reply ({e}): {text:?}"))
        })
    }
}

/// Plik's web-UI error redirect (`Location: {path}/#/?err=<message>&errcode=<status>&uri=…`) back
/// into the status it stands for.
fn plik_redirect(location: &str) -> Option<FetchFailure> {
    let (_, query) = location.split_once("#/?")?;
    // The message is not escaped by older Plik builds: read `err` up to `&errcode=` by hand.
    let err_start = query.find("err=")? + "err=".len();
    let code_at = query.find("&errcode=")?;
    let message = query.get(err_start..code_at)?;
    let code: String = query[code_at + "&errcode=".len()..].chars().take_while(char::is_ascii_digit).collect();
    let status = StatusCode::from_bytes(code.as_bytes()).ok()?;
    let message = url::form_urlencoded::parse(format!("m={message}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| message.to_owned());
    Some(FetchFailure::Status {
        status: status.as_u16(),
        detail: format!("{message} (Plik answered with a redirect to its web UI)"),
    })
}

impl LinkStore for PlikStore {
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, Result<Stored>> {
        Box::pin(async move { self.put(upload).await.map(Stored::from) })
    }

    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, std::result::Result<Fetched, FetchFailure>> {
        Box::pin(get(&self.http, fetch, Some(plik_redirect)))
    }

    fn open<'a>(&'a self, fetch: Fetch<'a>, offset: u64) -> BoxFuture<'a, std::result::Result<Opened, FetchFailure>> {
        Box::pin(open_get(&self.http, fetch, offset, Some(plik_redirect)))
    }

    fn scopes(&self) -> Vec<UrlScope> {
        vec![UrlScope::under(&self.server, "/file")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plik_web_ui_redirects() {
        let loc = "/#/?err=file a b.bin (X1) is not available : removed&errcode=404&uri=/file/u/X1/a b.bin";
        match plik_redirect(loc) {
            Some(FetchFailure::Status { status: 404, detail }) => {
                assert!(detail.starts_with("file a b.bin (X1) is not available : removed"), "{detail}")
            }
            other => panic!("expected a 404, got {other:?}"),
        }
        let loc = "/plik/#/?err=internal%20server%20error&errcode=500&uri=/x";
        match plik_redirect(loc) {
            Some(FetchFailure::Status { status: 500, detail }) => assert!(detail.contains("internal server error")),
            other => panic!("expected a 500, got {other:?}"),
        }
        assert!(plik_redirect("http://elsewhere/login").is_none());
    }

    #[test]
    fn ttl_rounds_up_and_scope_is_the_file_path() {
        let s = PlikStore::new(
            "http://127.0.0.1:8080",
            PlikOptions { ttl: Duration::from_millis(1500), ..Default::default() },
        )
        .unwrap();
        assert_eq!(s.ttl_secs(), 2);
        let scope = &s.scopes()[0];
        assert!(scope.matches("http://127.0.0.1:8080/file/u/f/n"));
        assert!(!scope.matches("http://127.0.0.1:8080/upload/u"));
        assert!(!scope.matches("http://localhost:8080/file/u/f/n"));
        assert_eq!(PlikStore::new("ftp://h", PlikOptions::default()).err().unwrap().code, ErrorCode::InvalidArgument);
    }
}
