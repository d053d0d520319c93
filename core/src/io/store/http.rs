//! Plain HTTP PUT/GET link store, and the HTTP client shared by the HTTP-based stores.
//!
//! Three parts:
//! * [`HttpClientConfig`] and [`client_for`]: one lazily built `reqwest::Client` per configuration
//!   (and per tokio runtime, see [`client_for`]), with a `plik_client/…` User-Agent and no redirects;
//! * [`get`]: the one GET routine of every HTTP store (status before body, bounded read, error
//!   classification into [`FetchError::Retryable`] / [`FetchError::Fatal`]);
//! * [`HttpStore`]: PUT `{base}/{uuid}/{dataname}` then GET that URL.

use super::{Fetch, FetchError, LinkStore, Progress, Stored, Upload};
use crate::error::{Error, ErrorCode, Result};
use bytes::Bytes;
use futures::future::BoxFuture;
use reqwest::{Client, StatusCode};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use url::Url;

/// The User-Agent of every request. Plik answers failed downloads of User-Agents it does not know
/// with a redirect to its web UI; `plik_client` is on its list (1.3.x; older builds only know
/// curl/wget/go-http-client…, see [`get`]'s redirect hook).
pub const USER_AGENT: &str = concat!("plik_client/natsbridge-", env!("CARGO_PKG_VERSION"));

/// How many bytes of an error response's body end up in the error message.
const ERROR_BODY_LIMIT: usize = 512;

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

fn install_crypto_provider() {
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

/// A URL as shown in messages and logs: without the query (pre-signed URLs carry secrets there).
pub(crate) fn display_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
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

/// Decides what a 3xx answer means for one store (Plik's web-UI error redirects carry the real
/// status). `None` keeps the default: fatal, "redirected to …, refusing".
pub(crate) type RedirectHook = fn(status: StatusCode, location: &str, url: &str) -> Option<FetchError>;

fn fetch_error(url: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::DownloadFailed, format!("GET {}: {what}", display_url(url)))
}

/// Whether a transport-level failure is worth another attempt: connection refused/reset,
/// timeouts and broken bodies are; a request that could not even be built is not.
fn is_retryable(e: &reqwest::Error) -> bool {
    !e.is_builder() && !e.is_redirect()
}

/// Reads at most [`ERROR_BODY_LIMIT`] bytes of an error answer's body as text.
pub(crate) async fn error_body(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    // Bounded: a few chunks at most, each under the read timeout.
    while buf.len() < ERROR_BODY_LIMIT {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk[..chunk.len().min(ERROR_BODY_LIMIT - buf.len())]),
            _ => break,
        }
    }
    let truncated = buf.len() >= ERROR_BODY_LIMIT;
    let mut text = String::from_utf8_lossy(&buf).trim().to_owned();
    if truncated {
        text.push('…');
    }
    text
}

/// Formats a non-success status and Plik-style plain-text body: `HTTP 404 Not Found: file … removed`.
pub(crate) fn status_message(status: StatusCode, body: &str) -> String {
    if body.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {body}") }
}

/// A request body that reports each chunk as the connection takes it.
pub(crate) fn body_with_progress(bytes: Bytes, progress: Option<Progress>) -> reqwest::Body {
    const CHUNK: usize = 256 * 1024;
    let Some(report) = progress else { return reqwest::Body::from(bytes) };
    let chunks = (0..bytes.len()).step_by(CHUNK).map(move |start| {
        let chunk = bytes.slice(start..(start + CHUNK).min(bytes.len()));
        report(chunk.len() as u64);
        Ok::<_, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

/// One GET attempt, shared by the HTTP stores.
///
/// The status is checked before the body: 2xx is read; 3xx is fatal (redirects are never followed,
/// so a web page cannot pass for the payload); 429 and 5xx are retryable; other 4xx are fatal.
/// The body is read into a buffer of `expected_size` bytes and the read stops at the first byte
/// beyond it (CHECKSUM_MISMATCH, nothing more is read); a shorter body is a CHECKSUM_MISMATCH too.
pub(crate) async fn get(
    config: &HttpClientConfig,
    fetch: Fetch<'_>,
    on_redirect: Option<RedirectHook>,
) -> std::result::Result<Bytes, FetchError> {
    let (url, expected_size, progress) = (fetch.url, fetch.size, fetch.progress);
    let client = client_for(config).map_err(|e| {
        FetchError::Fatal(fetch_error(url, format!("cannot build the HTTP client: {}", error_chain(&e))))
    })?;
    let mut resp = match client.get(url).send().await {
        Ok(resp) => resp,
        Err(e) if is_retryable(&e) => {
            return Err(FetchError::Retryable(fetch_error(url, error_chain(&e.without_url()))));
        }
        Err(e) => return Err(FetchError::Fatal(fetch_error(url, error_chain(&e.without_url())))),
    };
    let status = resp.status();
    if status.is_redirection() {
        let location =
            resp.headers().get(reqwest::header::LOCATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let location = location.unwrap_or_default();
        if let Some(hook) = on_redirect
            && let Some(e) = hook(status, &location, url)
        {
            return Err(e);
        }
        return Err(FetchError::Fatal(fetch_error(
            url,
            format!("HTTP {status}, redirected to {location:?}, refusing"),
        )));
    }
    if !status.is_success() {
        let body = error_body(resp).await;
        let e = fetch_error(url, status_message(status, &body));
        return Err(if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            FetchError::Retryable(e)
        } else {
            FetchError::Fatal(e)
        });
    }

    let mismatch = |what: String| {
        FetchError::Fatal(Error::new(ErrorCode::ChecksumMismatch, format!("GET {}: {what}", display_url(url))))
    };
    if let Some(len) = resp.content_length()
        && len != expected_size
    {
        return Err(mismatch(format!("server announces {len} bytes, the envelope says {expected_size}")));
    }
    let capacity = usize::try_from(expected_size)
        .map_err(|_| FetchError::Fatal(fetch_error(url, format!("size {expected_size} does not fit in memory"))))?;
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(capacity)
        .map_err(|_| FetchError::Fatal(fetch_error(url, format!("cannot allocate {expected_size} bytes"))))?;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if chunk.len() > capacity - buf.len() {
                    return Err(mismatch(format!("body is longer than the expected {expected_size} bytes")));
                }
                buf.extend_from_slice(&chunk);
                if let Some(report) = progress {
                    report(chunk.len() as u64);
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(FetchError::Retryable(fetch_error(
                    url,
                    format!("reading body: {}", error_chain(&e.without_url())),
                )));
            }
        }
    }
    if buf.len() != capacity {
        return Err(mismatch(format!("body has {} bytes, the envelope says {expected_size}", buf.len())));
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
    let url = Url::parse(base)
        .map_err(|e| Error::new(ErrorCode::UrlNotAllowed, format!("invalid {what} URL {base:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::new(
            ErrorCode::UrlNotAllowed,
            format!("{what} URL must be http(s)://host[:port][/path], got {base:?}"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::new(
            ErrorCode::UrlNotAllowed,
            format!("{what} URL must not have a query or fragment: {base:?}"),
        ));
    }
    Ok(url)
}

/// The base URL's path without its trailing slash ("" for the root).
pub(crate) fn base_path(base: &Url) -> &str {
    base.path().trim_end_matches('/')
}

/// Whether `url` has `base`'s scheme, host and port, and a path under `base_path + prefix`
/// (prefix starting with '/', e.g. "/" or "/file/"), with something after it.
pub(crate) fn same_origin_under(base: &Url, prefix: &str, url: &str) -> bool {
    let Ok(url) = Url::parse(url) else { return false };
    if url.scheme() != base.scheme()
        || url.host() != base.host()
        || url.port_or_known_default() != base.port_or_known_default()
    {
        return false;
    }
    let path = url.path();
    let base = base_path(base);
    path.strip_prefix(base).and_then(|rest| rest.strip_prefix(prefix)).is_some_and(|rest| !rest.is_empty())
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
}

impl HttpStore {
    /// `base_url`: absolute http(s) URL, optionally with a path (`http://host:8080/natsbridge`).
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(HttpStore { base: parse_base_url("HTTP store", base_url)?, http: HttpClientConfig::default() })
    }

    /// Use other timeouts.
    pub fn with_http_config(mut self, config: HttpClientConfig) -> Self {
        self.http = config;
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    async fn put(&self, upload: Upload<'_>) -> Result<String> {
        let fail = |msg: String| Error::new(ErrorCode::UploadFailed, msg).with_correlation_id(upload.correlation_id);
        let id = uuid::Uuid::new_v4().to_string();
        let name = sanitize_file_name(upload.dataname);
        let url = join_segments(&self.base, &[&id, &name]);
        let client =
            client_for(&self.http).map_err(|e| fail(format!("cannot build the HTTP client: {}", error_chain(&e))))?;
        let size = upload.bytes.len();
        let resp = client
            .put(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body_with_progress(upload.bytes, upload.progress))
            .send()
            .await
            .map_err(|e| fail(format!("PUT {}: {}", display_url(url.as_str()), error_chain(&e.without_url()))))?;
        let status = resp.status();
        if !status.is_success() {
            let body = error_body(resp).await;
            return Err(fail(format!("PUT {}: {}", display_url(url.as_str()), status_message(status, &body))));
        }
        tracing::debug!(correlation_id = upload.correlation_id, url = %url, size, "uploaded to HTTP store");
        Ok(url.into())
    }
}

impl LinkStore for HttpStore {
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, Result<Stored>> {
        Box::pin(async move { self.put(upload).await.map(Stored::from) })
    }

    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, std::result::Result<Bytes, FetchError>> {
        Box::pin(get(&self.http, fetch, None))
    }

    fn serves(&self, url: &str) -> bool {
        same_origin_under(&self.base, "/", url)
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
    fn joins_and_serves() {
        let base = Url::parse("http://127.0.0.1:8080/store/").unwrap();
        let u = join_segments(&base, &["id", "a b?#%é"]);
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/store/id/a%20b%3F%23%25%C3%A9");
        assert!(same_origin_under(&base, "/", u.as_str()));
        assert!(!same_origin_under(&base, "/", "http://127.0.0.1:8080/storex/id/a"));
        assert!(!same_origin_under(&base, "/", "http://127.0.0.1:8080/store/"));
        assert!(!same_origin_under(&base, "/", "http://127.0.0.1:8080/store/../etc/x"));
        assert!(!same_origin_under(&base, "/", "https://127.0.0.1:8080/store/id/a"));
        assert!(!same_origin_under(&base, "/", "http://127.0.0.1:8081/store/id/a"));
        let root = Url::parse("http://localhost").unwrap();
        assert!(same_origin_under(&root, "/", "http://localhost:80/x"));
    }

    #[test]
    fn display_url_drops_query() {
        assert_eq!(display_url("http://h/p?sig=secret"), "http://h/p");
    }
}
