//! Plain HTTP PUT/GET link store, and the HTTP client shared by the HTTP-based stores.
//!
//! Three parts:
//! * [`HttpClientConfig`] and [`client_for`]: one lazily built `reqwest::Client` per configuration
//!   (and per tokio runtime, see [`client_for`]), with a `plik_client/…` User-Agent and no redirects;
//! * [`get`]: the one GET routine of every HTTP store (status before body, bounded read; what
//!   went wrong is reported as a [`FetchFailure`] and judged by the receive plan);
//! * [`HttpStore`]: PUT `{base}/{uuid}/{dataname}` then GET that URL.

use super::{Body, Fetch, Fetched, LinkStore, Opened, Progress, Stored, Upload};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{self, ContentRange, FetchFailure, HTTP_ERROR_DETAIL_BYTES, HttpHead, UrlScope, display_url};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Client, StatusCode};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use url::Url;

/// The User-Agent of every request. Plik answers failed downloads of User-Agents it does not know
/// with a redirect to its web UI; `plik_client` is on its list (1.3.x; older builds only know
/// curl/wget/go-http-client…, see [`get`]'s redirect hook).
pub const USER_AGENT: &str = concat!("plik_client/natsbridge-", env!("CARGO_PKG_VERSION"));

/// Client settings. Stores with equal settings share one `reqwest::Client` (and its connection pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpClientConfig {
    /// Time allowed to establish the TCP connection.
    pub connect_timeout: Duration,
    /// Longest silence allowed while waiting for response bytes (not a total deadline, so big
    /// payloads are not cut off).
    pub read_timeout: Duration,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig { connect_timeout: Duration::from_secs(10), read_timeout: Duration::from_secs(30) }
    }
}

pub(crate) fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err means another provider is already installed process-wide: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn build_client(config: &HttpClientConfig) -> std::result::Result<Client, reqwest::Error> {
    install_crypto_provider();
    Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .build()
}

/// The shared client for `config`, built on first use.
///
/// Clients are kept per configuration *and per tokio runtime*: a pooled connection's task lives
/// on the runtime that opened it, and reusing it from another runtime after that one is dropped
/// fails with "dispatch task is gone" (seanmonstar/reqwest#1148). A process normally has one
/// runtime, so this is one client per configuration; a forked child or a test harness with a
/// runtime per test gets fresh ones.
pub fn client_for(config: &HttpClientConfig) -> std::result::Result<Client, reqwest::Error> {
    type Key = (HttpClientConfig, Option<tokio::runtime::Id>);
    static CLIENTS: OnceLock<Mutex<HashMap<Key, Client>>> = OnceLock::new();
    let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
    let key = (*config, runtime);
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let client = build_client(config)?;
    // Entries of runtimes that are gone are never used again: keep the map from growing without
    // bound in processes that create many runtimes (callers hold clones; dropping ours is safe).
    if clients.len() >= 64 {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
}

/// Makes `dataname` usable as the last segment of a URL and as a multipart file name, keeping it
/// readable: never empty, no path separators or control characters, not `.`/`..`, at most 255 bytes.
pub fn sanitize_file_name(dataname: &str) -> String {
    let mut name: String =
        dataname.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    if name.len() > 255 {
        let mut end = 255;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    if name.is_empty() {
        name.push_str("data");
    } else if name.chars().all(|c| c == '.') {
        name.insert(0, '_');
    }
    name
}

/// Reads a 3xx answer for one store (Plik's web-UI error redirects carry the real status).
/// `None` keeps it a redirect, which the receive plan refuses.
pub(crate) type RedirectHook = fn(location: &str) -> Option<FetchFailure>;

/// Whether a transport-level failure is worth another attempt: connection refused/reset,
/// timeouts and broken bodies are; a request that could not even be built is not.
fn is_retryable(e: &reqwest::Error) -> bool {
    !e.is_builder() && !e.is_redirect()
}

/// The start of an error answer's body (at most [`HTTP_ERROR_DETAIL_BYTES`] bytes are read).
async fn error_body(mut resp: reqwest::Response) -> Vec<u8> {
    let mut buf = Vec::new();
    // Bounded: a few chunks at most, each under the read timeout.
    while buf.len() < HTTP_ERROR_DETAIL_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk[..chunk.len().min(HTTP_ERROR_DETAIL_BYTES - buf.len())]),
            _ => break,
        }
    }
    buf
}

/// An upload's error answer as text: `HTTP 404 Not Found: file … removed`.
pub(crate) async fn error_text(status: StatusCode, resp: reqwest::Response) -> String {
    match FetchFailure::http_status(status.as_u16(), &error_body(resp).await) {
        FetchFailure::Status { detail, .. } if !detail.is_empty() => format!("HTTP {status}: {detail}"),
        _ => format!("HTTP {status}"),
    }
}

/// A request body that reports each chunk as the connection takes it.
pub(crate) fn body_with_progress(body: Body, progress: Option<Progress>) -> reqwest::Body {
    const CHUNK: usize = 256 * 1024;
    match (body, progress) {
        (Body::Bytes(bytes), None) => reqwest::Body::from(bytes),
        (body, None) => reqwest::Body::wrap_stream(body.into_chunks(CHUNK)),
        (body, Some(report)) => reqwest::Body::wrap_stream(body.into_chunks(CHUNK).inspect_ok(move |chunk| {
            report(chunk.len() as u64);
        })),
    }
}

/// One GET attempt, shared by the HTTP stores: redirects are never followed, the status is read
/// before the body, and at most `fetch.size + 1` bytes of the body are read.
pub(crate) async fn get(
    config: &HttpClientConfig,
    fetch: Fetch<'_>,
    on_redirect: Option<RedirectHook>,
) -> std::result::Result<Fetched, FetchFailure> {
    let opened = open_get(config, fetch, 0, on_redirect).await?;
    let what = format!("GET {}", display_url(fetch.url));
    read_at_most(&what, fetch.size, opened.chunks, fetch.progress).await.map(Fetched::from)
}

/// One GET attempt whose body is streamed, from byte `offset` by a range request when it is
/// inside the object (a server that ignores the range answers 200: the body then starts at 0).
/// The checks are [`get`]'s; the body's length is checked against what is left to read.
pub(crate) async fn open_get(
    config: &HttpClientConfig,
    fetch: Fetch<'_>,
    offset: u64,
    on_redirect: Option<RedirectHook>,
) -> std::result::Result<Opened, FetchFailure> {
    let (url, size) = (fetch.url, fetch.size);
    let client = client_for(config).map_err(|e| {
        FetchFailure::Final(Error::new(
            ErrorCode::DownloadFailed,
            format!("GET {}: cannot build the HTTP client: {}", display_url(url), error_chain(&e)),
        ))
    })?;
    let mut request = client.get(url);
    if offset > 0 && offset < size {
        request = request.header(reqwest::header::RANGE, format!("bytes={offset}-"));
    }
    let resp = match request.send().await {
        Ok(resp) => resp,
        Err(e) if is_retryable(&e) => return Err(FetchFailure::Network(error_chain(&e.without_url()))),
        Err(e) => {
            let what = format!("GET {}: {}", display_url(url), error_chain(&e.without_url()));
            return Err(FetchFailure::Final(Error::new(ErrorCode::DownloadFailed, what)));
        }
    };
    let status = resp.status();
    let range = resp.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
    let start = protocol::body_start(url, Some(status.as_u16()), ContentRange::Header(range), offset)?;
    let location =
        resp.headers().get(reqwest::header::LOCATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match HttpHead::of(url, Some(status.as_u16()), location.as_deref(), resp.content_length(), size - start.min(size)) {
        HttpHead::Payload => {}
        HttpHead::Detail => return Err(FetchFailure::http_status(status.as_u16(), &error_body(resp).await)),
        HttpHead::Fail(failure) => {
            let decoded = location.as_deref().zip(on_redirect).and_then(|(location, hook)| hook(location));
            return Err(decoded.unwrap_or(failure));
        }
    }
    let chunks = resp.bytes_stream().map(|chunk| {
        chunk.map_err(|e| FetchFailure::Network(format!("reading body: {}", error_chain(&e.without_url()))))
    });
    Ok(Opened { chunks: Box::pin(chunks), offset: start, sha256: None })
}

/// A body's bytes, reading at most `size + 1` of them: one byte past the size is enough for the
/// receive plan to see the body is too long, and a lying server cannot make the receiver buffer
/// without bound. `what` names the download in errors.
pub(crate) async fn read_at_most(
    what: &str,
    size: u64,
    chunks: impl futures::Stream<Item = std::result::Result<Bytes, FetchFailure>>,
    progress: Option<&Progress>,
) -> std::result::Result<Bytes, FetchFailure> {
    let final_error = |m: String| FetchFailure::Final(Error::new(ErrorCode::DownloadFailed, format!("{what}: {m}")));
    let limit = usize::try_from(size)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| final_error(format!("size {size} does not fit in memory")))?;
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(limit - 1).map_err(|_| final_error(format!("cannot allocate {size} bytes")))?;
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let room = limit - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if let Some(report) = progress {
            report(chunk.len() as u64);
        }
        if buf.len() == limit {
            break;
        }
    }
    Ok(Bytes::from(buf))
}

/// A reqwest error with its sources ("error sending request: connection refused"), which its
/// Display alone leaves out.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        source = s.source();
    }
    msg
}

/// Parses a store's base URL: absolute http(s), no query or fragment.
pub(crate) fn parse_base_url(what: &str, base: &str) -> Result<Url> {
    let url = Url::parse(base).map_err(|e| Error::invalid_argument(format!("invalid {what} URL {base:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::invalid_argument(format!("{what} URL must be http(s)://host[:port][/path], got {base:?}")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid_argument(format!("{what} URL must not have a query or fragment: {base:?}")));
    }
    Ok(url)
}

/// `base` with `segments` appended, each percent-encoded as one path segment.
pub(crate) fn join_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        // http(s) URLs always have a path, so this cannot fail.
        let mut path = url.path_segments_mut().expect("http(s) URL has a path");
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// Plain HTTP link store: PUT `{base}/{uuid}/{dataname}`, then GET that URL. Works with any
/// server that accepts PUT (nginx/Caddy WebDAV, a pre-signed-URL gateway, a test server).
pub struct HttpStore {
    base: Url,
    http: HttpClientConfig,
    /// False for an allowed origin that links may come from but uploads do not go to.
    takes_uploads: bool,
}

impl HttpStore {
    /// `base_url`: absolute http(s) URL, optionally with a path (`http://host:8080/natsbridge`).
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(HttpStore {
            base: parse_base_url("HTTP store", base_url)?,
            http: HttpClientConfig::default(),
            takes_uploads: true,
        })
    }

    /// An allowed origin: links under `base_url` may be fetched; nothing is uploaded there.
    pub fn download_only(base_url: &str) -> Result<Self> {
        Ok(HttpStore { takes_uploads: false, ..HttpStore::new(base_url)? })
    }

    async fn put(&self, upload: Upload<'_>) -> Result<String> {
        let fail = |msg: String| Error::new(ErrorCode::UploadFailed, msg).with_correlation_id(upload.correlation_id);
        let id = uuid::Uuid::new_v4().to_string();
        let name = sanitize_file_name(upload.dataname);
        let url = join_segments(&self.base, &[&id, &name]);
        let client =
            client_for(&self.http).map_err(|e| fail(format!("cannot build the HTTP client: {}", error_chain(&e))))?;
        let size = upload.body.size();
        let resp = client
            .put(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body_with_progress(upload.body, upload.progress))
            .send()
            .await
            .map_err(|e| fail(format!("PUT {}: {}", display_url(url.as_str()), error_chain(&e.without_url()))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("PUT {}: {}", display_url(url.as_str()), error_text(status, resp).await)));
        }
        tracing::debug!(correlation_id = upload.correlation_id, url = %url, size, "uploaded to HTTP store");
        Ok(url.into())
    }
}

impl LinkStore for HttpStore {
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, Result<Stored>> {
        Box::pin(async move { self.put(upload).await.map(Stored::from) })
    }

    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, std::result::Result<Fetched, FetchFailure>> {
        Box::pin(get(&self.http, fetch, None))
    }

    fn open<'a>(&'a self, fetch: Fetch<'a>, offset: u64) -> BoxFuture<'a, std::result::Result<Opened, FetchFailure>> {
        Box::pin(open_get(&self.http, fetch, offset, None))
    }

    fn takes_uploads(&self) -> bool {
        self.takes_uploads
    }

    fn scopes(&self) -> Vec<UrlScope> {
        vec![UrlScope::under(&self.base, "")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_readable_and_safe() {
        assert_eq!(sanitize_file_name("report 2024.csv"), "report 2024.csv");
        assert_eq!(sanitize_file_name("données ✓"), "données ✓");
        assert_eq!(sanitize_file_name("a/b\\c\n"), "a_b_c_");
        assert_eq!(sanitize_file_name(""), "data");
        assert_eq!(sanitize_file_name(".."), "_..");
        let long = "é".repeat(200);
        let s = sanitize_file_name(&long);
        assert!(s.len() <= 255 && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn joins_and_scopes() {
        let base = Url::parse("http://127.0.0.1:8080/store/").unwrap();
        let u = join_segments(&base, &["id", "a b?#%é"]);
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/store/id/a%20b%3F%23%25%C3%A9");
        let store = HttpStore::new(base.as_str()).unwrap();
        assert!(store.scopes()[0].matches(u.as_str()));
        assert!(!store.scopes()[0].matches("http://127.0.0.1:8080/storex/id/a"));
        assert_eq!(HttpStore::new("ftp://h").err().unwrap().code, ErrorCode::InvalidArgument);
    }
}
