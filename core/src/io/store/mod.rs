//! Claim-check link stores (DESIGN §3): where link payloads' bytes go and come back from.
//! One trait; the client picks a store for uploads and routes each download by its URL.

pub mod http;
pub mod objstore;
pub mod plik;

use crate::error::{Error, ErrorCode, Result};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Called with the number of bytes a link upload or download just moved (for progress bars).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What a store is asked to keep.
pub struct Upload<'a> {
    pub dataname: &'a str,
    pub bytes: Bytes,
    pub correlation_id: &'a str,
    pub progress: Option<Progress>,
}

/// Where an upload went.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub url: String,
    /// Lowercase hex SHA-256 of the bytes, from stores that hash while uploading.
    pub sha256: Option<String>,
}

impl From<String> for Stored {
    fn from(url: String) -> Self {
        Stored { url, sha256: None }
    }
}

/// One download: the link and what the envelope says the bytes are.
#[derive(Clone, Copy)]
pub struct Fetch<'a> {
    pub url: &'a str,
    /// The envelope's `size`.
    pub size: u64,
    /// The envelope's `metadata.sha256` (hex), when it has one.
    pub sha256: Option<&'a str>,
    /// The message's, for logs and for host handlers (the seeds' download handler takes it).
    pub correlation_id: &'a str,
    pub progress: Option<&'a Progress>,
}

impl<'a> Fetch<'a> {
    pub fn new(url: &'a str, size: u64) -> Self {
        Fetch { url, size, sha256: None, correlation_id: "", progress: None }
    }
}

/// A failed download attempt, and whether trying again can help (connection refused, 5xx)
/// or not (404, a one-shot link already consumed, a redirect, a size mismatch).
#[derive(Debug)]
pub enum FetchError {
    Retryable(Error),
    Fatal(Error),
}

impl FetchError {
    pub fn into_error(self) -> Error {
        match self {
            FetchError::Retryable(e) | FetchError::Fatal(e) => e,
        }
    }
}

/// A claim-check backend. Implemented in core for Plik, plain HTTP and the JetStream object
/// store; bindings implement it over host callbacks (the seeds' `fileserver_upload_handler` /
/// `fileserver_download_handler`).
pub trait LinkStore: Send + Sync {
    /// Stores the bytes and returns the URL a receiver fetches them from (and their sha256 when
    /// `checks_sha256`).
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, Result<Stored>>;

    /// One attempt to fetch `fetch.url`. A store reads at most one byte more than `fetch.size`,
    /// so a lying server cannot make the receiver buffer without bound.
    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<Bytes, FetchError>>;

    /// True when the store hashes the bytes itself: `upload` returns their sha256, and
    /// `download` fails with CHECKSUM_MISMATCH unless the bytes hash to `fetch.sha256`. The
    /// client then makes no hash pass of its own over link payloads.
    fn checks_sha256(&self) -> bool {
        false
    }

    /// False for a store that only downloads (a host's download handler without an upload
    /// handler): uploads then go to the next store that takes them.
    fn takes_uploads(&self) -> bool {
        true
    }

    /// Whether `url` belongs to this store. Downloads go to the first store that serves the URL;
    /// a URL no store serves is refused with URL_NOT_ALLOWED before any request is made.
    fn serves(&self, url: &str) -> bool;
}

/// Download retry policy: `retries` attempts in all, sleeping `base_delay`, then doubling up to
/// `max_delay` between them (the seeds' defaults: 5, 100 ms, 5000 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base_delay: std::time::Duration,
    pub max_delay: std::time::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            base_delay: std::time::Duration::from_millis(100),
            max_delay: std::time::Duration::from_millis(5000),
        }
    }
}

impl RetryPolicy {
    /// The sleep after failed attempt `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> std::time::Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Fetches with the retry policy. Fatal errors end the loop at once.
pub async fn download_with_retry(store: &dyn LinkStore, fetch: Fetch<'_>, policy: RetryPolicy) -> Result<Bytes> {
    let url = fetch.url;
    let attempts = policy.retries.max(1);
    let mut attempt = 1;
    loop {
        match store.download(fetch).await {
            Ok(bytes) => return Ok(bytes),
            Err(FetchError::Fatal(e)) => return Err(e),
            Err(FetchError::Retryable(e)) if attempt >= attempts => {
                return Err(Error::new(
                    ErrorCode::DownloadFailed,
                    format!("failed to fetch {url} after {attempts} attempts: {}", e.message),
                ));
            }
            Err(FetchError::Retryable(e)) => {
                let delay = policy.delay_after(attempt);
                tracing::debug!(url, attempt, delay_ms = delay.as_millis() as u64, error = %e, "download failed, retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// The URLs a host's download handler serves (the bindings' `allowed_origins`):
/// `scheme://host[:port][/path]` is that origin under that path; `scheme:` is every URL of the
/// scheme, for custom schemes without a host (`mem:`, `s3:`).
#[derive(Clone, Debug)]
pub struct UrlScope {
    scheme: String,
    /// None: any URL of the scheme.
    host: Option<String>,
    port: Option<u16>,
    /// Without its trailing slash; "" for the root.
    path: String,
}

impl UrlScope {
    /// URL_NOT_ALLOWED when `pattern` is not a URL.
    pub fn parse(pattern: &str) -> Result<UrlScope> {
        let u = url::Url::parse(pattern.trim()).map_err(|e| {
            Error::new(ErrorCode::UrlNotAllowed, format!("allowed origin {pattern:?} is not a URL: {e}"))
        })?;
        let host = u.host_str().filter(|h| !h.is_empty()).map(str::to_ascii_lowercase);
        let path = if host.is_some() { u.path().trim_end_matches('/').to_owned() } else { String::new() };
        Ok(UrlScope { scheme: u.scheme().to_owned(), port: u.port_or_known_default(), host, path })
    }

    /// The scopes of a download handler: the origin of `fileserver_url` (when given) and each of
    /// `origins`. May be empty; a binding then says which of its options to set.
    pub fn for_handler<'a>(
        fileserver_url: Option<&'a str>,
        origins: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<UrlScope>> {
        let server = fileserver_url.filter(|u| !u.trim().is_empty());
        server.into_iter().chain(origins.into_iter().map(String::as_str)).map(UrlScope::parse).collect()
    }

    pub fn matches(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else { return false };
        if url.scheme() != self.scheme {
            return false;
        }
        let Some(host) = &self.host else { return true };
        url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
            && url.port_or_known_default() == self.port
            && (self.path.is_empty() || url.path().strip_prefix(&self.path).is_some_and(|rest| rest.starts_with('/')))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_scopes_match_origin_path_and_scheme() {
        use super::UrlScope;
        let under = UrlScope::parse("https://Files.example:8443/store/").unwrap();
        assert!(under.matches("https://files.example:8443/store/a.bin"));
        assert!(!under.matches("https://files.example:8443/storefront/a.bin"));
        assert!(!under.matches("https://files.example/store/a.bin"));
        assert!(!under.matches("http://files.example:8443/store/a.bin"));
        let default_port = UrlScope::parse("https://files.example").unwrap();
        assert!(default_port.matches("https://files.example:443/x"));
        let scheme = UrlScope::parse("mem:").unwrap();
        assert!(scheme.matches("mem://bucket/key") && scheme.matches("mem:key"));
        assert!(!scheme.matches("memo://bucket/key") && !scheme.matches("not a url"));
        let e = UrlScope::parse("no scheme").unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::UrlNotAllowed);
        let scopes = UrlScope::for_handler(Some(" "), &["mem:".to_owned()]).unwrap();
        assert_eq!(scopes.len(), 1);
    }

    use super::*;
    use std::time::Duration;

    #[test]
    fn delays_double_and_cap() {
        let p = RetryPolicy::default();
        let ms: Vec<u128> = (1..=8).map(|a| p.delay_after(a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        let p = RetryPolicy { retries: 3, base_delay: Duration::from_millis(7), max_delay: Duration::from_millis(10) };
        assert_eq!(p.delay_after(40), Duration::from_millis(10));
    }
}
