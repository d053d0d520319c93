//! S3-compatible link store (spec/PROTOCOL.md §8.5): AWS S3 and the servers that speak its API,
//! through Apache Arrow's `object_store` (which also signs requests and presigns URLs).
//!
//! `fileserver_url` is `s3://bucket[/prefix]`; objects are `{prefix}/{uuid}/{dataname}`. A link is
//! `s3://bucket/key` (receivers fetch it with credentials of their own) or, with `s3_presign`, a
//! presigned GET URL any HTTP client can fetch until the TTL ends. What the options leave unset
//! is looked up where the AWS SDKs look ([`resolve`]).
//!
//! TTL: S3 keeps objects until they are deleted, so the TTL is kept three ways: each object
//! carries its expiry (`x-amz-meta-natsbridge-expires`) and a receiver refuses an expired one as
//! not found; a presigned URL expires with it; and after an upload the store deletes the expired
//! objects under its prefix, at most once per [`SWEEP_EVERY`].

use super::http::{
    HttpClientConfig, USER_AGENT, error_chain, get, open_get, parse_base_url, read_at_most, sanitize_file_name,
};
use super::{Body, Fetch, Fetched, LinkStore, Opened, Stored, Upload};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::durable::{LINK_MSG_ID_META, LINK_STREAM_META};
use crate::protocol::{FetchFailure, S3Addressing, S3Settings, UrlScope, display_url};
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::path::{Path, PathPart};
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, RetryConfig, StaticCredentialProvider, WriteMultipart,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;

/// User metadata naming the second (Unix time) after which the object is expired.
const EXPIRES_META: &str = "natsbridge-expires";
/// SigV4 presigned URLs live at most 7 days.
const MAX_PRESIGNED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A streamed upload's parts (S3 takes at most 10,000 per object: 78 GiB at this size) and how
/// many go at once: with the part being filled, at most 32 MiB held.
const MULTIPART_PART_SIZE: usize = 8 << 20;
const MULTIPART_PARTS_IN_FLIGHT: usize = 3;
/// How often one store lists its prefix for expired objects.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The bucket and key prefix of an `s3://bucket[/prefix]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// The key prefix without leading or trailing slashes ("" for the whole bucket).
    pub prefix: String,
}

impl S3Location {
    /// INVALID_ARGUMENT unless `url` is `s3://bucket[/prefix]` with nothing else.
    pub fn parse(url: &str) -> Result<S3Location> {
        let bad = |why: &str| Error::invalid_argument(format!("S3 store URL {url:?} {why}; give s3://bucket[/prefix]"));
        let u = Url::parse(url.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if !u.scheme().eq_ignore_ascii_case("s3") {
            return Err(bad("is not an s3:// URL"));
        }
        if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() || u.port().is_some() {
            return Err(bad("has a query, fragment, user or port"));
        }
        let bucket = u.host_str().unwrap_or_default();
        if bucket.is_empty() {
            return Err(bad("names no bucket"));
        }
        let mut prefix = Vec::new();
        for segment in u.path_segments().into_iter().flatten().filter(|s| !s.is_empty()) {
            let segment = percent_decode(segment).ok_or_else(|| bad("has a prefix that is not UTF-8"))?;
            PathPart::parse(&segment).map_err(|e| bad(&format!("has a prefix S3 keys cannot start with ({e})")))?;
            prefix.push(segment);
        }
        Ok(S3Location { bucket: bucket.to_owned(), prefix: prefix.join("/") })
    }
}

fn percent_decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment).decode_utf8().ok().map(|s| s.into_owned())
}

/// The S3 settings after every source was read (the options, then the environment, then the
/// profile in the shared files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub region: String,
    /// `https://bucket.s3.us-east-1.amazonaws.com` or `http://127.0.0.1:9000/bucket`: the URL
    /// every key of the bucket is below.
    pub bucket_endpoint: Url,
    /// None: object_store's own chain (web identity, container, instance metadata).
    pub credentials: Option<(String, String, Option<String>)>,
}

/// One profile's values from the shared config and credentials files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub addressing_style: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl Profile {
    /// The profile `name` of the shared config file (`[profile name]`, or `[default]`) and the
    /// shared credentials file (`[name]`; its keys win, as in the AWS SDKs).
    pub fn read(name: &str, config: Option<&str>, credentials: Option<&str>) -> Profile {
        let mut values = HashMap::new();
        let config_section = if name == "default" { "default".to_owned() } else { format!("profile {name}") };
        if let Some(text) = config {
            values.extend(ini_section(text, &config_section));
        }
        if let Some(text) = credentials {
            values.extend(ini_section(text, name));
        }
        let mut take = |key: &str| values.remove(key).filter(|v| !v.is_empty());
        Profile {
            region: take("region"),
            endpoint_url: take("endpoint_url"),
            addressing_style: take("s3.addressing_style"),
            access_key_id: take("aws_access_key_id"),
            secret_access_key: take("aws_secret_access_key"),
            session_token: take("aws_session_token"),
        }
    }
}

/// The `key = value` lines of `[section]` in an AWS shared file; a key with an empty value
/// followed by indented lines (`s3 =` then `  addressing_style = path`) gives `s3.addressing_style`.
fn ini_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut inside = false;
    let mut parent: Option<String> = None;
    for line in text.lines() {
        let indented = line.starts_with([' ', '\t']);
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.split_whitespace().collect::<Vec<_>>().join(" ") == section;
            parent = None;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        if !inside {
            continue;
        }
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_owned());
        match &parent {
            Some(p) if indented => {
                values.insert(format!("{p}.{key}"), value);
            }
            _ if value.is_empty() => parent = Some(key),
            _ => {
                parent = None;
                values.insert(key, value);
            }
        }
    }
    values
}

/// Where each S3 setting comes from, first found wins, as in the AWS SDKs:
/// - credentials: the `s3_access_key_id`/`s3_secret_access_key`/`s3_session_token` options; the
///   profile named by `s3_profile`; `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
///   `AWS_SESSION_TOKEN`; the profile `AWS_PROFILE` (else `default`); else object_store's chain;
/// - region: `s3_region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, `us-east-1`;
/// - endpoint: `s3_endpoint`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's
///   `endpoint_url`, else AWS S3;
/// - addressing: `s3_addressing_style`, the profile's `s3 = addressing_style`, else path-style
///   with an endpoint and virtual-hosted without.
///
/// `env` reads a variable; `read` reads a file (the profile files are `AWS_CONFIG_FILE` and
/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and `~/.aws/credentials`).
pub fn resolve(
    location: &S3Location,
    settings: &S3Settings,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&std::path::Path) -> Option<String>,
) -> Result<Resolved> {
    let home_file = |var: &str, name: &str| {
        env(var)
            .map(std::path::PathBuf::from)
            .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".aws").join(name)))
    };
    let profile_name = settings.profile.clone().or_else(|| env("AWS_PROFILE")).unwrap_or_else(|| "default".into());
    let config = home_file("AWS_CONFIG_FILE", "config").and_then(|p| read(&p));
    let credentials_file = home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials").and_then(|p| read(&p));
    let profile = Profile::read(&profile_name, config.as_deref(), credentials_file.as_deref());
    if settings.profile.is_some() && config.is_none() && credentials_file.is_none() {
        return Err(Error::invalid_argument(format!(
            "s3_profile {profile_name:?}: no AWS config or credentials file was found"
        )));
    }

    let from_profile = || profile.access_key_id.clone().zip(profile.secret_access_key.clone());
    let credentials = match (&settings.access_key_id, &settings.secret_access_key) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone(), settings.session_token.clone())),
        (None, None) => {
            let from_env = || env("AWS_ACCESS_KEY_ID").zip(env("AWS_SECRET_ACCESS_KEY"));
            if settings.profile.is_some() {
                from_profile().map(|(i, s)| (i, s, profile.session_token.clone()))
            } else if let Some((id, secret)) = from_env() {
                Some((id, secret, env("AWS_SESSION_TOKEN")))
            } else {
                from_profile().map(|(i, s)| (i, s, profile.session_token.clone()))
            }
        }
        _ => return Err(Error::invalid_argument("give s3_access_key_id and s3_secret_access_key together")),
    };
    let region = settings
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| profile.region.clone())
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = settings
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| profile.endpoint_url.clone());
    let addressing = match settings.addressing_style {
        Some(style) => style,
        None => match profile.addressing_style.as_deref().map(str::parse::<S3Addressing>) {
            Some(Ok(style)) => style,
            _ if endpoint.is_some() => S3Addressing::Path,
            _ => S3Addressing::Virtual,
        },
    };
    let bucket = &location.bucket;
    let bucket_endpoint = match endpoint {
        Some(endpoint) => {
            let mut url = parse_base_url("S3 endpoint", &endpoint)?;
            match addressing {
                S3Addressing::Path => {
                    url.path_segments_mut().expect("http(s) URL has a path").pop_if_empty().push(bucket);
                }
                S3Addressing::Virtual => {
                    let host = format!("{bucket}.{}", url.host_str().unwrap_or_default());
                    url.set_host(Some(&host)).map_err(|e| {
                        Error::invalid_argument(format!(
                            "bucket {bucket:?} cannot be a host name ({e}): use path addressing"
                        ))
                    })?;
                }
            }
            url
        }
        None => {
            let url = match addressing {
                S3Addressing::Virtual => format!("https://{bucket}.s3.{region}.amazonaws.com"),
                S3Addressing::Path => format!("https://s3.{region}.amazonaws.com/{bucket}"),
            };
            parse_base_url("S3 endpoint", &url)
                .map_err(|_| Error::invalid_argument(format!("bucket {bucket:?} or region {region:?} is not valid")))?
        }
    };
    Ok(Resolved { region, bucket_endpoint, credentials })
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// An S3 bucket (or a prefix of one) as a link store.
pub struct S3Store {
    s3: AmazonS3,
    location: S3Location,
    bucket_endpoint: Url,
    presign: bool,
    ttl: Duration,
    http: HttpClientConfig,
    last_sweep: Mutex<Option<Instant>>,
}

impl S3Store {
    /// `url`: `s3://bucket[/prefix]`; the rest comes from `settings` and [`resolve`]'s sources.
    pub fn new(url: &str, settings: &S3Settings) -> Result<S3Store> {
        let location = S3Location::parse(url)?;
        let resolved = resolve(&location, settings, &process_env, &|p| std::fs::read_to_string(p).ok())?;
        S3Store::with(location, resolved, settings)
    }

    fn with(location: S3Location, resolved: Resolved, settings: &S3Settings) -> Result<S3Store> {
        if settings.presign && settings.ttl > MAX_PRESIGNED_TTL {
            return Err(Error::invalid_argument(format!(
                "s3_ttl {:?} is longer than a presigned URL can live (7 days)",
                settings.ttl
            )));
        }
        if settings.ttl.is_zero() {
            return Err(Error::invalid_argument("s3_ttl must be longer than zero"));
        }
        let http = HttpClientConfig::default();
        let endpoint = resolved.bucket_endpoint.as_str().trim_end_matches('/').to_owned();
        super::http::install_crypto_provider();
        // The environment's other AWS settings (web identity, container credentials) still
        // apply; the endpoint computed here, which already names the bucket, replaces its own.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_region(&resolved.region)
            .with_endpoint(&endpoint)
            .with_config(AmazonS3ConfigKey::S3Endpoint, &endpoint)
            .with_virtual_hosted_style_request(true)
            .with_client_options(
                ClientOptions::new()
                    .with_user_agent(reqwest::header::HeaderValue::from_static(USER_AGENT))
                    .with_allow_http(resolved.bucket_endpoint.scheme() == "http")
                    .with_connect_timeout(http.connect_timeout)
                    .with_read_timeout(http.read_timeout)
                    .with_timeout_disabled(),
            )
            // The receive plan retries downloads; an upload failure is the sender's to handle.
            .with_retry(RetryConfig { max_retries: 0, ..RetryConfig::default() });
        if let Some((key_id, secret_key, token)) = resolved.credentials {
            builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new(AwsCredential {
                key_id,
                secret_key,
                token,
            })));
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::invalid_argument(format!("S3 store s3://{}: {}", location.bucket, error_chain(&e))))?;
        Ok(S3Store {
            s3,
            location,
            bucket_endpoint: resolved.bucket_endpoint,
            presign: settings.presign,
            ttl: settings.ttl,
            http,
            last_sweep: Mutex::new(None),
        })
    }

    fn prefix_path(&self) -> Path {
        Path::from_iter(self.location.prefix.split('/').filter(|s| !s.is_empty()).map(PathPart::from))
    }

    /// `s3://bucket/key`, each segment of the key percent-encoded.
    fn link_of(&self, key: &Path) -> String {
        let mut url = Url::parse(&format!("s3://{}/", self.location.bucket)).expect("bucket names parse");
        url.path_segments_mut()
            .expect("s3 URLs have a path")
            .pop_if_empty()
            .extend(key.parts().map(|p| p.as_ref().to_owned()));
        url.into()
    }

    /// The key a link of this store names (an `s3://` URL or a presigned one).
    fn key_of(&self, url: &str) -> std::result::Result<Path, String> {
        let u = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let mut segments = u.path_segments().ok_or("no path")?.map(|s| s.to_owned()).collect::<Vec<_>>();
        if u.scheme() != "s3" {
            // Presigned: the path below the bucket endpoint's.
            let below = self.bucket_endpoint.path_segments().into_iter().flatten().filter(|s| !s.is_empty()).count();
            segments.drain(..below.min(segments.len()));
        }
        let decoded = segments
            .iter()
            .map(|s| percent_decode(s).ok_or("a key that is not UTF-8"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Path::parse(decoded.join("/")).map_err(|e| format!("not an object key: {e}"))
    }

    async fn put(&self, upload: Upload<'_>) -> Result<Stored> {
        let cid = upload.correlation_id;
        let fail = |m: String| Error::new(ErrorCode::UploadFailed, m).with_correlation_id(cid);
        let id = uuid::Uuid::new_v4().to_string();
        let name = sanitize_file_name(upload.dataname);
        let key = Path::from_iter(
            self.prefix_path().parts().chain([PathPart::from(id.as_str()), PathPart::from(name.as_str())]),
        );
        let expires = unix_now().saturating_add(self.ttl.as_secs() + u64::from(self.ttl.subsec_nanos() > 0));
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "application/octet-stream".into());
        attributes.insert(Attribute::Metadata(EXPIRES_META.into()), expires.to_string().into());
        if let Some(stream) = upload.stream {
            attributes.insert(Attribute::Metadata(LINK_STREAM_META.into()), stream.to_owned().into());
            attributes.insert(Attribute::Metadata(LINK_MSG_ID_META.into()), upload.msg_id.to_owned().into());
        }
        let size = upload.body.size();
        let put_failed =
            |e: object_store::Error| fail(format!("PUT s3://{}/{key}: {}", self.location.bucket, error_chain(&e)));
        match upload.body {
            Body::Bytes(bytes) => {
                let options = PutOptions { attributes, ..PutOptions::default() };
                self.s3.put_opts(&key, PutPayload::from(bytes), options).await.map_err(put_failed)?;
                if let Some(report) = &upload.progress {
                    report(size);
                }
            }
            body @ Body::Chunks { .. } => {
                let options = PutMultipartOptions { attributes, ..PutMultipartOptions::default() };
                let parts = self.s3.put_multipart_opts(&key, options).await.map_err(put_failed)?;
                let mut parts = WriteMultipart::new_with_chunk_size(parts, MULTIPART_PART_SIZE);
                let mut chunks = body.into_chunks(MULTIPART_PART_SIZE);
                let written: std::result::Result<(), Error> = async {
                    while let Some(chunk) = chunks.next().await {
                        let chunk = chunk.map_err(|e| fail(e.to_string()))?;
                        parts.wait_for_capacity(MULTIPART_PARTS_IN_FLIGHT).await.map_err(put_failed)?;
                        let len = chunk.len() as u64;
                        parts.put(chunk);
                        if let Some(report) = &upload.progress {
                            report(len);
                        }
                    }
                    Ok(())
                }
                .await;
                match written {
                    Ok(()) => parts.finish().await.map(drop).map_err(put_failed)?,
                    Err(e) => {
                        // Leaves no parts behind for the bucket to bill; the upload's error is the one to report.
                        let _ = parts.abort().await;
                        return Err(e);
                    }
                }
            }
        }
        let url = if self.presign {
            self.s3
                .signed_url(reqwest::Method::GET, &key, self.ttl)
                .await
                .map_err(|e| fail(format!("cannot presign s3://{}/{key}: {}", self.location.bucket, error_chain(&e))))?
                .into()
        } else {
            self.link_of(&key)
        };
        tracing::debug!(correlation_id = cid, key = %key, size, "uploaded to S3");
        self.sweep_now_and_then();
        Ok(Stored::from(url))
    }

    async fn get_object(&self, fetch: Fetch<'_>) -> std::result::Result<Fetched, FetchFailure> {
        let opened = self.open_object(fetch, 0).await?;
        let what = format!("object {}", display_url(fetch.url));
        read_at_most(&what, fetch.size, opened.chunks, fetch.progress).await.map(Fetched::from)
    }

    /// A GET of the object from byte `offset` (a range GET when it is inside the object).
    async fn open_object(&self, fetch: Fetch<'_>, offset: u64) -> std::result::Result<Opened, FetchFailure> {
        let key = self.key_of(fetch.url).map_err(|m| final_failure(format!("{}: {m}", display_url(fetch.url))))?;
        let offset = if offset < fetch.size { offset } else { 0 };
        let options = GetOptions { range: (offset > 0).then_some(GetRange::Offset(offset)), ..GetOptions::default() };
        let result = self.s3.get_opts(&key, options).await.map_err(|e| failure_of(&key, e))?;
        if let Some(failure) = FetchFailure::announced(Some(result.meta.size), fetch.size) {
            return Err(failure);
        }
        if let Some(expired) = expiry(&result.attributes).filter(|&at| at < unix_now()) {
            return Err(FetchFailure::NotFound(format!("object {key} expired at Unix time {expired}")));
        }
        let offset = result.range.start;
        let chunks = result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| FetchFailure::Network(format!("reading {key}: {}", error_chain(&e)))));
        Ok(Opened { chunks: Box::pin(chunks), offset, sha256: None })
    }

    async fn remove(&self, url: &str) -> Result<bool> {
        let key = self.key_of(url).map_err(|m| Error::invalid_argument(format!("{}: {m}", display_url(url))))?;
        match self.s3.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(Error::new(ErrorCode::DownloadFailed, format!("cannot delete {key}: {}", error_chain(&e)))),
        }
    }

    /// Starts a sweep of the prefix when the last one is [`SWEEP_EVERY`] old (or there was none).
    fn sweep_now_and_then(&self) {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let (s3, prefix, ttl) = (self.s3.clone(), self.prefix_path(), self.ttl);
        tokio::spawn(async move {
            match sweep(&s3, &prefix, ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(prefix = %prefix, removed = n, "swept expired S3 link objects"),
                Err(e) => {
                    tracing::warn!(prefix = %prefix, error = %error_chain(&e), "S3 sweep failed; the next upload tries again")
                }
            }
        });
    }
}

/// Deletes the objects under `prefix` last modified more than `ttl` ago: a listing does not
/// carry user metadata, so the age of the object stands for its expiry (senders sharing a
/// prefix share its TTL). Returns how many were deleted.
pub async fn sweep(s3: &AmazonS3, prefix: &Path, ttl: Duration) -> object_store::Result<usize> {
    let cutoff = i64::try_from(unix_now().saturating_sub(ttl.as_secs())).unwrap_or(i64::MAX);
    let mut listing = s3.list(Some(prefix));
    let mut removed = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        if meta.last_modified.timestamp() < cutoff {
            match s3.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn expiry(attributes: &Attributes) -> Option<u64> {
    attributes.get(&Attribute::Metadata(EXPIRES_META.into())).and_then(|v| v.as_ref().trim().parse().ok())
}

fn final_failure(message: String) -> FetchFailure {
    FetchFailure::Final(Error::new(ErrorCode::DownloadFailed, message))
}

/// What an object_store error on GET means to the receive plan.
fn failure_of(key: &Path, e: object_store::Error) -> FetchFailure {
    let message = format!("GET {key}: {}", error_chain(&e));
    match e {
        object_store::Error::NotFound { .. } => FetchFailure::NotFound(message),
        object_store::Error::PermissionDenied { .. } => FetchFailure::Status { status: 403, detail: message },
        object_store::Error::Unauthenticated { .. } => FetchFailure::Status { status: 401, detail: message },
        object_store::Error::Generic { .. } => FetchFailure::Network(message),
        _ => final_failure(message),
    }
}

impl LinkStore for S3Store {
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, Result<Stored>> {
        Box::pin(self.put(upload))
    }

    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, std::result::Result<Fetched, FetchFailure>> {
        if fetch.url.starts_with("s3://") {
            Box::pin(self.get_object(fetch))
        } else {
            // A presigned URL carries its own authorization: a plain GET, as any receiver makes.
            Box::pin(get(&self.http, fetch, None))
        }
    }

    fn open<'a>(&'a self, fetch: Fetch<'a>, offset: u64) -> BoxFuture<'a, std::result::Result<Opened, FetchFailure>> {
        if fetch.url.starts_with("s3://") {
            Box::pin(self.open_object(fetch, offset))
        } else {
            Box::pin(open_get(&self.http, fetch, offset, None))
        }
    }

    fn delete<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.remove(url))
    }

    /// `s3://bucket/prefix/…` and, for presigned links, the same keys under the bucket's endpoint.
    fn scopes(&self) -> Vec<UrlScope> {
        let prefix = self.location.prefix.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>();
        let mut s3 = Url::parse(&format!("s3://{}/", self.location.bucket)).expect("bucket names parse");
        s3.path_segments_mut().expect("s3 URLs have a path").pop_if_empty().extend(&prefix);
        let mut http = self.bucket_endpoint.clone();
        http.path_segments_mut().expect("http(s) URL has a path").pop_if_empty().extend(prefix);
        let s3_scope = UrlScope::parse(s3.as_str()).expect("an s3 URL is a scope");
        vec![s3_scope, UrlScope::under(&http, "")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(url: &str) -> S3Location {
        S3Location::parse(url).unwrap()
    }

    /// [`resolve`] with these variables and files only.
    fn resolve_with(settings: &S3Settings, vars: &[(&str, &str)], files: &[(&str, &str)]) -> Result<Resolved> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let files: HashMap<std::path::PathBuf, String> = files.iter().map(|(k, v)| (k.into(), v.to_string())).collect();
        resolve(&location("s3://bkt/links"), settings, &|name| vars.get(name).cloned(), &|path| {
            files.get(path).cloned()
        })
    }

    #[test]
    fn store_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(location("s3://bkt"), S3Location { bucket: "bkt".into(), prefix: "".into() });
        assert_eq!(location("s3://bkt/a/b/"), S3Location { bucket: "bkt".into(), prefix: "a/b".into() });
        assert_eq!(location("S3://bkt//a%20b"), S3Location { bucket: "bkt".into(), prefix: "a b".into() });
        for bad in
            ["http://bkt/a", "s3:///a", "s3://bkt/a?x=1", "s3://u@bkt/a", "s3://bkt:9000/a", "s3://bkt/a%2Fb", "nope"]
        {
            let e = S3Location::parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn profiles_are_read_as_the_aws_sdks_read_them() {
        let config = "[default]\nregion = eu-west-1\n\n[profile dev]\nregion=us-west-2\nendpoint_url = http://127.0.0.1:9000\ns3 =\n  addressing_style = virtual\naws_access_key_id = from-config\n# a comment\n";
        let credentials =
            "[dev]\naws_access_key_id = AK\naws_secret_access_key = SK\n[default]\naws_access_key_id = D\n";
        let dev = Profile::read("dev", Some(config), Some(credentials));
        assert_eq!(dev.region.as_deref(), Some("us-west-2"));
        assert_eq!(dev.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(dev.addressing_style.as_deref(), Some("virtual"));
        assert_eq!(dev.access_key_id.as_deref(), Some("AK"), "the credentials file wins");
        assert_eq!(dev.secret_access_key.as_deref(), Some("SK"));
        let default = Profile::read("default", Some(config), Some(credentials));
        assert_eq!((default.region.as_deref(), default.access_key_id.as_deref()), (Some("eu-west-1"), Some("D")));
        assert_eq!(Profile::read("other", Some(config), None), Profile::default());
    }

    #[test]
    fn each_setting_comes_from_the_first_source_that_has_it() {
        let files = [
            (
                "/home/u/.aws/config",
                "[default]\nregion = eu-north-1\n[profile p]\nregion = ap-south-1\nendpoint_url = http://127.0.0.1:1\n",
            ),
            (
                "/home/u/.aws/credentials",
                "[default]\naws_access_key_id = DK\naws_secret_access_key = DS\n[p]\naws_access_key_id = PK\naws_secret_access_key = PS\n",
            ),
        ];
        let home = ("HOME", "/home/u");
        let none = S3Settings::default();

        // Nothing but the default profile: its region and keys, AWS S3, virtual-hosted.
        let r = resolve_with(&none, &[home], &files).unwrap();
        assert_eq!(r.region, "eu-north-1");
        assert_eq!(r.credentials, Some(("DK".into(), "DS".into(), None)));
        assert_eq!(r.bucket_endpoint.as_str(), "https://bkt.s3.eu-north-1.amazonaws.com/");

        // The environment's keys beat the default profile; AWS_PROFILE picks another for the rest.
        let vars = [
            home,
            ("AWS_ACCESS_KEY_ID", "EK"),
            ("AWS_SECRET_ACCESS_KEY", "ES"),
            ("AWS_SESSION_TOKEN", "ET"),
            ("AWS_PROFILE", "p"),
        ];
        let r = resolve_with(&none, &vars, &files).unwrap();
        assert_eq!(r.credentials, Some(("EK".into(), "ES".into(), Some("ET".into()))));
        assert_eq!(r.region, "ap-south-1");
        assert_eq!(r.bucket_endpoint.as_str(), "http://127.0.0.1:1/bkt", "an endpoint means path-style");

        // s3_profile is a choice made in code: its keys beat the environment's.
        let settings = S3Settings { profile: Some("p".into()), ..S3Settings::default() };
        assert_eq!(resolve_with(&settings, &vars, &files).unwrap().credentials, Some(("PK".into(), "PS".into(), None)));

        // Options beat everything; AWS_ENDPOINT_URL_S3 beats AWS_ENDPOINT_URL.
        let settings = S3Settings {
            region: Some("r1".into()),
            access_key_id: Some("OK".into()),
            secret_access_key: Some("OS".into()),
            addressing_style: Some(S3Addressing::Virtual),
            ..S3Settings::default()
        };
        let vars = [
            home,
            ("AWS_REGION", "r2"),
            ("AWS_ENDPOINT_URL", "http://a:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3.local:9000/base"),
        ];
        let r = resolve_with(&settings, &vars, &files).unwrap();
        assert_eq!((r.region.as_str(), r.credentials.unwrap().0.as_str()), ("r1", "OK"));
        assert_eq!(r.bucket_endpoint.as_str(), "http://bkt.s3.local:9000/base");

        // AWS_CONFIG_FILE moves the profile file; AWS_DEFAULT_REGION is the last variable tried.
        let vars = [("AWS_CONFIG_FILE", "/etc/aws.cfg"), ("AWS_DEFAULT_REGION", "r3")];
        let r = resolve_with(&none, &vars, &[("/etc/aws.cfg", "[default]\nregion = r4\n")]).unwrap();
        assert_eq!((r.region.as_str(), r.credentials), ("r3", None));
        let path = S3Settings { addressing_style: Some(S3Addressing::Path), ..S3Settings::default() };
        assert_eq!(
            resolve_with(&path, &[], &[]).unwrap().bucket_endpoint.as_str(),
            "https://s3.us-east-1.amazonaws.com/bkt"
        );
    }

    #[test]
    fn contradictory_or_missing_settings_are_invalid_arguments() {
        let half = S3Settings { access_key_id: Some("AK".into()), ..S3Settings::default() };
        let no_files = S3Settings { profile: Some("p".into()), ..S3Settings::default() };
        let bad_endpoint = S3Settings { endpoint: Some("ftp://x".into()), ..S3Settings::default() };
        for settings in [half, no_files, bad_endpoint] {
            assert_eq!(resolve_with(&settings, &[], &[]).unwrap_err().code, ErrorCode::InvalidArgument, "{settings:?}");
        }
        let resolved = resolve_with(&S3Settings::default(), &[], &[]).unwrap();
        let too_long = S3Settings { presign: true, ttl: Duration::from_secs(8 * 24 * 3600), ..S3Settings::default() };
        let e = S3Store::with(location("s3://bkt"), resolved, &too_long).err().unwrap();
        assert!(e.message.contains("7 days"), "{}", e.message);
    }

    #[test]
    fn links_name_their_key_and_the_store_serves_only_its_prefix() {
        let settings = S3Settings { endpoint: Some("http://127.0.0.1:9000".into()), ..S3Settings::default() };
        let resolved = resolve_with(&settings, &[], &[]).unwrap();
        let store = S3Store::with(location("s3://bkt/links"), resolved, &settings).unwrap();
        let key = Path::from_iter(["links", "id", "a b%é"].map(PathPart::from));
        let link = store.link_of(&key);
        // object_store's key escapes % and what is not ASCII (`a b%25%C3%A9`); the URL escapes the key.
        assert_eq!(link, "s3://bkt/links/id/a%20b%2525%25C3%25A9");
        assert_eq!(store.key_of(&link).unwrap(), key);
        let presigned = "http://127.0.0.1:9000/bkt/links/id/a%20b%2525%25C3%25A9?X-Amz-Signature=00";
        assert_eq!(store.key_of(presigned).unwrap(), key);
        let scopes = store.scopes();
        let served = |url: &str| scopes.iter().any(|s| s.matches(url));
        assert!(served(&link) && served(presigned));
        for other in [
            "s3://bkt/other/id/x",
            "s3://bkt2/links/id/x",
            "http://127.0.0.1:9000/bkt/other/x",
            "http://127.0.0.1:9001/bkt/links/x",
        ] {
            assert!(!served(other), "{other}");
        }
    }
}
