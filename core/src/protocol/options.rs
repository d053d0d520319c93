//! The connection options every binding takes, by one name each (README "One vocabulary"): the
//! NATS client's and the bridge's, with their defaults and checks. Bindings spell the names in
//! their language's convention (snake_case, camelCase, C's `_ms` suffix) and pass values in their
//! unit of time; a bad name or value is INVALID_ARGUMENT here, in every language alike.

use super::{
    DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_SIZE_THRESHOLD, MAX_JSON_DEPTH, ReceiveLimits, ReceiveRules, RetryPolicy,
    SendOptions, UrlScope,
};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// The unit a binding's durations are in: seconds in Python, Julia and the CLI; milliseconds in
/// JavaScript and C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Millis,
}

impl TimeUnit {
    /// A duration argument given as a number in this unit (a call's `timeout`): INVALID_ARGUMENT
    /// unless it is a finite number >= 0, as for a duration option.
    pub fn duration(self, name: &str, amount: f64) -> Result<Duration> {
        let value =
            serde_json::Number::from_f64(amount).map_or_else(|| Value::String(amount.to_string()), Value::Number);
        duration(name, &value, self)
    }

    /// A duration handed to the host as a JSON member: `<name>_secs` or `<name>_ms`, the
    /// amount in that unit (whole milliseconds).
    pub fn member(self, name: &str, d: Duration) -> (String, Value) {
        match self {
            TimeUnit::Seconds => (format!("{name}_secs"), Value::from(d.as_secs_f64())),
            TimeUnit::Millis => (format!("{name}_ms"), Value::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        }
    }
}

/// Which kind of server `fileserver_url` points at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum FileServerKind {
    #[default]
    Plik,
    /// Any server accepting `PUT {url}/{id}/{name}` and serving `GET` on the same URL.
    Http,
    /// An S3-compatible object store; `fileserver_url` is `s3://bucket[/prefix]` (an `s3://` URL
    /// chooses this kind by itself).
    S3,
}

/// How requests name an S3 bucket: in the path (`{endpoint}/{bucket}/{key}`) or in the host
/// (`{bucket}.{endpoint host}/{key}`), as the AWS SDKs' `addressing_style`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum S3Addressing {
    Path,
    Virtual,
}

/// Every connection option, by its canonical (snake_case) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum OptionName {
    Servers,
    Name,
    User,
    Password,
    Token,
    Nkey,
    CredentialsFile,
    TlsCaFile,
    TlsCertFile,
    TlsKeyFile,
    TlsRequired,
    MaxReconnectAttempts,
    ReconnectTimeWait,
    ConnectTimeout,
    PendingMsgsLimit,
    SizeThreshold,
    FileserverUrl,
    FileserverKind,
    ObjectStore,
    ObjectStoreBucket,
    ObjectStoreTtl,
    ObjectStoreReplicas,
    PlikOneshot,
    PlikTtl,
    PlikToken,
    S3Endpoint,
    S3Region,
    S3Profile,
    S3AddressingStyle,
    S3AccessKeyId,
    S3SecretAccessKey,
    S3SessionToken,
    S3Presign,
    S3Ttl,
    AllowedOrigins,
    MaxRetries,
    BaseDelay,
    MaxDelay,
    MaxDownloadBytes,
    MaxPayloads,
    MaxMessageBytes,
    MaxJsonDepth,
    MaxArrowColumns,
    MaxArrowBatches,
    MaxArrowValues,
    SenderName,
    SenderId,
    Jetstream,
}

impl OptionName {
    pub const ALL: &'static [OptionName] = <OptionName as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the option is a duration (C spells these with an `_ms` suffix).
    pub fn is_duration(self) -> bool {
        use OptionName::*;
        matches!(self, ReconnectTimeWait | ConnectTimeout | ObjectStoreTtl | PlikTtl | S3Ttl | BaseDelay | MaxDelay)
    }
}

/// Every per-message option of `smartsend` (and `request`, `reply`), by its canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum SendOptionName {
    SizeThreshold,
    CorrelationId,
    MsgPurpose,
    SenderName,
    SenderId,
    ReceiverName,
    ReceiverId,
    ReplyTo,
    ReplyToMsgId,
    Metadata,
    /// The host's trace context as W3C headers (`{"traceparent": …, "tracestate": …, "baggage":
    /// …}`, what an OpenTelemetry propagator injects into a carrier), spec/PROTOCOL.md §13.
    TraceHeaders,
}

impl SendOptionName {
    pub const ALL: &'static [SendOptionName] = <SendOptionName as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Connection settings: plain data, the same in every language.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    /// Server URLs; empty means `NATS_URL` or `nats://localhost:4222`.
    pub servers: Vec<String>,
    pub name: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// An nkey seed (`SU...`).
    pub nkey: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub tls_required: bool,
    /// None: reconnect forever.
    pub max_reconnect_attempts: Option<usize>,
    pub reconnect_time_wait: Duration,
    pub connect_timeout: Duration,
    /// Messages buffered per subscription before the server's slow-consumer drops begin.
    pub pending_msgs_limit: usize,
    /// None: `SIZE_THRESHOLD` env, else 500,000.
    pub size_threshold: Option<usize>,
    /// None: `FILESERVER_URL` env, else no file server (the object store takes links).
    pub fileserver_url: Option<String>,
    pub fileserver_kind: FileServerKind,
    /// Use the JetStream object store for links when no file server or handler takes them.
    pub object_store: bool,
    pub object_store_bucket: String,
    pub object_store_ttl: Duration,
    /// Replicas of the object store bucket when it is created (a clustered JetStream: 3).
    pub object_store_replicas: usize,
    /// Plik one-shot uploads: the first GET consumes the file. Only for a single known receiver.
    pub plik_oneshot: bool,
    /// How long Plik keeps an upload (rounded up to seconds; zero: Plik's own default).
    pub plik_ttl: Duration,
    /// Plik user token (`X-PlikToken`).
    pub plik_token: Option<String>,
    /// The S3 store (`fileserver_url` `s3://bucket[/prefix]`); each unset field is found where
    /// the AWS SDKs look for it (environment, then the shared config and credentials files).
    pub s3: S3Settings,
    /// Further origins (`scheme://host[:port][/path]`, or `scheme:`) links may be fetched from
    /// (by the download handler, when there is one).
    pub allowed_origins: Vec<String>,
    pub retry: RetryPolicy,
    /// Link payloads whose declared size is larger are refused (PAYLOAD_TOO_LARGE).
    pub max_download_bytes: u64,
    /// What one received message may hold.
    pub limits: ReceiveLimits,
    pub sender_name: String,
    /// None: a UUID made once per connection.
    pub sender_id: Option<String>,
    /// `smartsend` publishes to a JetStream stream and waits for its PubAck (at-least-once).
    pub jetstream: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            servers: Vec::new(),
            name: None,
            user: None,
            password: None,
            token: None,
            nkey: None,
            credentials_file: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_required: false,
            max_reconnect_attempts: None,
            reconnect_time_wait: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            pending_msgs_limit: 64 * 1024,
            size_threshold: None,
            fileserver_url: None,
            fileserver_kind: FileServerKind::Plik,
            object_store: true,
            object_store_bucket: "natsbridge".to_owned(),
            object_store_ttl: Duration::from_secs(3600),
            object_store_replicas: 1,
            plik_oneshot: false,
            plik_ttl: Duration::from_secs(3600),
            plik_token: None,
            s3: S3Settings::default(),
            allowed_origins: Vec::new(),
            retry: RetryPolicy::default(),
            max_download_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            limits: ReceiveLimits::default(),
            sender_name: String::new(),
            sender_id: None,
            jetstream: false,
        }
    }
}

/// The S3 store's options (spec/PROTOCOL.md §8.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Settings {
    /// The endpoint of an S3-compatible server (`http://127.0.0.1:9000`); None: AWS S3.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// The profile of the shared config and credentials files.
    pub profile: Option<String>,
    /// None: path-style with an endpoint, virtual-hosted without (AWS S3).
    pub addressing_style: Option<S3Addressing>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Links are presigned `https` GET URLs, which any HTTP client can fetch until the TTL ends,
    /// instead of `s3://bucket/key`, which receivers fetch with credentials of their own.
    pub presign: bool,
    /// How long a link lives: presigned URLs expire then and receivers refuse older objects.
    pub ttl: Duration,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: None,
            region: None,
            profile: None,
            addressing_style: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            presign: false,
            ttl: Duration::from_secs(3600),
        }
    }
}

/// An option value as a binding hands it over. Text is parsed for every kind (C passes text);
/// null leaves the option unset.
pub(super) fn bad(name: &str, value: &Value, want: &str) -> Error {
    Error::invalid_argument(format!("option {name:?} needs {want}, not {value}"))
}

pub(super) fn text(name: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad(name, v, "a string")),
    }
}

pub(super) fn number(name: &str, v: &Value) -> Result<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite()).ok_or_else(|| bad(name, v, "a number"))
}

/// A non-negative whole number.
pub(super) fn count(name: &str, v: &Value) -> Result<u64> {
    let n = number(name, v)?;
    if n < 0.0 || n.fract() != 0.0 || n > 2f64.powi(53) {
        return Err(bad(name, v, "a whole number >= 0"));
    }
    Ok(n as u64)
}

pub(super) fn flag(name: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.trim(), "true" | "1" | "yes") => Ok(true),
        Value::String(s) if matches!(s.trim(), "false" | "0" | "no") => Ok(false),
        _ => Err(bad(name, v, "true or false")),
    }
}

pub(super) fn duration(name: &str, v: &Value, unit: TimeUnit) -> Result<Duration> {
    let n = number(name, v)?;
    let secs = match unit {
        TimeUnit::Seconds => n,
        TimeUnit::Millis => n / 1000.0,
    };
    let want = match unit {
        TimeUnit::Seconds => "a number of seconds >= 0",
        TimeUnit::Millis => "a number of milliseconds >= 0",
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad(name, v, want))
}

/// A list: an array of strings, or one string of comma-separated items (added to the list).
pub(super) fn list(name: &str, v: &Value, into: &mut Vec<String>) -> Result<()> {
    match v {
        Value::String(s) => into.extend(s.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())),
        Value::Array(items) => {
            into.clear();
            for item in items {
                into.push(text(name, item)?);
            }
        }
        _ => return Err(bad(name, v, "a list of strings")),
    }
    Ok(())
}

impl Settings {
    /// Sets one option by its canonical name. Null leaves it as it is.
    pub fn set(&mut self, name: &str, value: &Value, unit: TimeUnit) -> Result<()> {
        let Ok(option) = name.parse::<OptionName>() else {
            return Err(Error::invalid_argument(format!(
                "unknown option {name:?}; the options are {}",
                OptionName::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        if value.is_null() {
            return Ok(());
        }
        let v = value;
        let some_text = || text(name, v).map(Some);
        let path = || text(name, v).map(|p| Some(PathBuf::from(p)));
        use OptionName::*;
        match option {
            Servers => list(name, v, &mut self.servers)?,
            Name => self.name = some_text()?,
            User => self.user = some_text()?,
            Password => self.password = some_text()?,
            Token => self.token = some_text()?,
            Nkey => self.nkey = some_text()?,
            CredentialsFile => self.credentials_file = path()?,
            TlsCaFile => self.tls_ca_file = path()?,
            TlsCertFile => self.tls_cert_file = path()?,
            TlsKeyFile => self.tls_key_file = path()?,
            TlsRequired => self.tls_required = flag(name, v)?,
            MaxReconnectAttempts => {
                // -1: forever, as in the NATS clients.
                let n = number(name, v)?;
                self.max_reconnect_attempts = if n == -1.0 { None } else { Some(count(name, v)? as usize) };
            }
            ReconnectTimeWait => self.reconnect_time_wait = duration(name, v, unit)?,
            ConnectTimeout => self.connect_timeout = duration(name, v, unit)?,
            PendingMsgsLimit => self.pending_msgs_limit = (count(name, v)? as usize).max(1),
            SizeThreshold => self.size_threshold = Some(count(name, v)? as usize),
            FileserverUrl => self.fileserver_url = some_text()?,
            FileserverKind => {
                let kind = text(name, v)?;
                self.fileserver_kind = kind.parse().map_err(|_| bad(name, v, "\"plik\", \"http\" or \"s3\""))?;
            }
            ObjectStore => self.object_store = flag(name, v)?,
            ObjectStoreBucket => self.object_store_bucket = text(name, v)?,
            ObjectStoreTtl => self.object_store_ttl = duration(name, v, unit)?,
            ObjectStoreReplicas => {
                let n = count(name, v)?;
                if !(1..=5).contains(&n) {
                    return Err(bad(name, v, "1 to 5 replicas"));
                }
                self.object_store_replicas = n as usize;
            }
            PlikOneshot => self.plik_oneshot = flag(name, v)?,
            PlikTtl => self.plik_ttl = duration(name, v, unit)?,
            PlikToken => self.plik_token = some_text()?,
            S3Endpoint => self.s3.endpoint = some_text()?,
            S3Region => self.s3.region = some_text()?,
            S3Profile => self.s3.profile = some_text()?,
            S3AddressingStyle => {
                let style = text(name, v)?;
                self.s3.addressing_style = Some(style.parse().map_err(|_| bad(name, v, "\"path\" or \"virtual\""))?);
            }
            S3AccessKeyId => self.s3.access_key_id = some_text()?,
            S3SecretAccessKey => self.s3.secret_access_key = some_text()?,
            S3SessionToken => self.s3.session_token = some_text()?,
            S3Presign => self.s3.presign = flag(name, v)?,
            S3Ttl => self.s3.ttl = duration(name, v, unit)?,
            AllowedOrigins => list(name, v, &mut self.allowed_origins)?,
            MaxRetries => {
                let n = count(name, v)?;
                if n == 0 || n > u64::from(u32::MAX) {
                    return Err(bad(name, v, "a whole number >= 1"));
                }
                self.retry.retries = n as u32;
            }
            BaseDelay => self.retry.base_delay = duration(name, v, unit)?,
            MaxDelay => self.retry.max_delay = duration(name, v, unit)?,
            MaxDownloadBytes => self.max_download_bytes = count(name, v)?,
            MaxPayloads => self.limits.max_payloads = count(name, v)? as usize,
            MaxMessageBytes => self.limits.max_message_bytes = count(name, v)?,
            MaxJsonDepth => {
                let n = count(name, v)?;
                if !(1..=MAX_JSON_DEPTH as u64).contains(&n) {
                    return Err(bad(name, v, &format!("1 to {MAX_JSON_DEPTH}")));
                }
                self.limits.max_json_depth = n as usize;
            }
            MaxArrowColumns => self.limits.max_arrow_columns = count(name, v)? as usize,
            MaxArrowBatches => self.limits.max_arrow_batches = count(name, v)? as usize,
            MaxArrowValues => self.limits.max_arrow_values = count(name, v)?,
            SenderName => self.sender_name = text(name, v)?,
            SenderId => self.sender_id = some_text()?,
            Jetstream => self.jetstream = flag(name, v)?,
        }
        Ok(())
    }

    /// The receive rules of a connection with these settings whose link sources serve `sources`.
    pub fn receive_rules(&self, sources: Vec<Vec<UrlScope>>) -> ReceiveRules {
        ReceiveRules { sources, retry: self.retry, max_download_bytes: self.max_download_bytes, limits: self.limits }
    }

    /// Sets every option of a JSON object (a binding's options, converted).
    pub fn apply(&mut self, options: &Map<String, Value>, unit: TimeUnit) -> Result<()> {
        options.iter().try_for_each(|(name, value)| self.set(name, value, unit))
    }

    /// The size threshold: the option, else `SIZE_THRESHOLD` from the environment, else 500,000.
    pub fn resolved_threshold(&self) -> Result<usize> {
        if let Some(t) = self.size_threshold {
            return Ok(t);
        }
        match env("SIZE_THRESHOLD") {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| Error::invalid_argument(format!("SIZE_THRESHOLD={v:?} is not a byte count"))),
            None => Ok(DEFAULT_SIZE_THRESHOLD),
        }
    }

    /// The file server: the option, else `FILESERVER_URL` from the environment; blank is none.
    pub fn resolved_fileserver_url(&self) -> Option<String> {
        self.fileserver_url.clone().or_else(|| env("FILESERVER_URL")).filter(|s| !s.trim().is_empty())
    }

    /// How long uploaded link objects live, when the store says: Plik's TTL, the object store's
    /// TTL; None for a plain HTTP store or a host's handlers (their lifetime is theirs).
    pub fn link_ttl(&self, has_handlers: bool) -> Option<Duration> {
        if has_handlers {
            return None;
        }
        match self.resolved_fileserver_url() {
            Some(url) => match self.fileserver_kind_of(&url) {
                FileServerKind::Plik => Some(self.plik_ttl).filter(|t| !t.is_zero()),
                FileServerKind::Http => None,
                FileServerKind::S3 => Some(self.s3.ttl),
            },
            None => self.object_store.then_some(self.object_store_ttl),
        }
    }

    /// The kind of file server `url` is: an `s3://` URL is an S3 store whatever
    /// `fileserver_kind` says, other URLs are of `fileserver_kind`.
    pub fn fileserver_kind_of(&self, url: &str) -> FileServerKind {
        let scheme = url.trim_start().get(..5);
        if scheme.is_some_and(|s| s.eq_ignore_ascii_case("s3://")) { FileServerKind::S3 } else { self.fileserver_kind }
    }

    /// The servers to dial: the option, else `NATS_URL` (comma-separated), else the default.
    pub fn resolved_servers(&self) -> Vec<String> {
        if !self.servers.is_empty() {
            return self.servers.clone();
        }
        match env("NATS_URL") {
            Some(v) => v.split(',').map(|s| s.trim().to_owned()).collect(),
            None => vec![DEFAULT_NATS_URL.to_owned()],
        }
    }
}

pub const DEFAULT_NATS_URL: &str = "nats://localhost:4222";

/// An environment variable, unless it is blank (there is no environment on wasm32).
fn env(name: &str) -> Option<String> {
    #[cfg(not(target_arch = "wasm32"))]
    return std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    #[cfg(target_arch = "wasm32")]
    {
        let _ = name;
        None
    }
}

/// The trace context of a `trace_headers` carrier: header names match in any case, and other
/// headers (a propagator's own) are ignored; with no traceparent there is no trace context.
fn trace_headers(name: &str, v: &Value) -> Result<Option<super::TraceContext>> {
    let Value::Object(carrier) = v else {
        return Err(bad(name, v, "an object of W3C trace headers ({\"traceparent\": …})"));
    };
    let header = |wanted: &str| -> Result<Option<String>> {
        match carrier.iter().find(|(k, _)| k.eq_ignore_ascii_case(wanted)) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((k, v)) => text(&format!("{name}.{k}"), v).map(Some),
        }
    };
    let Some(traceparent) = header(super::trace::TRACEPARENT)? else { return Ok(None) };
    let (tracestate, baggage) = (header(super::trace::TRACESTATE)?, header(super::trace::BAGGAGE)?);
    super::TraceContext::from_host(&traceparent, tracestate.as_deref(), baggage.as_deref()).map(Some)
}

impl SendOptions {
    /// Sets one per-message option by its canonical name. Null leaves it as it is.
    pub fn set(&mut self, name: &str, value: &Value) -> Result<()> {
        let Ok(option) = name.parse::<SendOptionName>() else {
            return Err(Error::invalid_argument(format!(
                "unknown send option {name:?}; the send options are {}",
                SendOptionName::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        if value.is_null() {
            return Ok(());
        }
        let v = value;
        let some_text = || text(name, v).map(Some);
        use SendOptionName::*;
        match option {
            SizeThreshold => self.size_threshold = Some(count(name, v)? as usize),
            CorrelationId => self.correlation_id = some_text()?,
            MsgPurpose => {
                let purpose = text(name, v)?;
                if purpose.is_empty() {
                    return Err(bad(name, v, "a non-empty string"));
                }
                self.msg_purpose = Some(purpose);
            }
            SenderName => self.sender_name = some_text()?,
            SenderId => self.sender_id = some_text()?,
            ReceiverName => self.receiver_name = some_text()?,
            ReceiverId => self.receiver_id = some_text()?,
            ReplyTo => self.reply_to = some_text()?,
            ReplyToMsgId => self.reply_to_msg_id = some_text()?,
            Metadata => match v {
                Value::Object(m) => self.metadata = m.clone(),
                _ => return Err(bad(name, v, "an object")),
            },
            TraceHeaders => self.trace = trace_headers(name, v)?,
        }
        Ok(())
    }

    /// The per-message options of a JSON object (a binding's options, converted).
    pub fn from_json(options: &Map<String, Value>) -> Result<SendOptions> {
        let mut opts = SendOptions::default();
        options.iter().try_for_each(|(name, value)| opts.set(name, value))?;
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn options_take_their_unit_and_text() {
        let mut s = Settings::default();
        s.set("connect_timeout", &json!(1.5), TimeUnit::Seconds).unwrap();
        assert_eq!(s.connect_timeout, Duration::from_millis(1500));
        s.set("base_delay", &json!("250"), TimeUnit::Millis).unwrap();
        assert_eq!(s.retry.base_delay, Duration::from_millis(250));
        s.set("servers", &json!("nats://a:1, nats://b:2"), TimeUnit::Millis).unwrap();
        s.set("servers", &json!("nats://c:3"), TimeUnit::Millis).unwrap();
        assert_eq!(s.servers, ["nats://a:1", "nats://b:2", "nats://c:3"]);
        s.set("allowed_origins", &json!(["mem:"]), TimeUnit::Seconds).unwrap();
        assert_eq!(s.allowed_origins, ["mem:"]);
        s.set("max_reconnect_attempts", &json!(-1), TimeUnit::Seconds).unwrap();
        assert_eq!(s.max_reconnect_attempts, None);
        s.set("tls_required", &json!("yes"), TimeUnit::Seconds).unwrap();
        s.set("fileserver_kind", &json!("http"), TimeUnit::Seconds).unwrap();
        assert!(s.tls_required && s.fileserver_kind == FileServerKind::Http);
        s.set("sender_name", &Value::Null, TimeUnit::Seconds).unwrap();
        assert_eq!(s.sender_name, "");
    }

    #[test]
    fn bad_names_and_values_are_invalid_arguments() {
        let cases = [
            ("pass", json!("x")),
            ("size_threshold", json!(-1)),
            ("size_threshold", json!(1.5)),
            ("size_threshold", json!("lots")),
            ("connect_timeout", json!(-2)),
            ("max_retries", json!(0)),
            ("fileserver_kind", json!("http_put")),
            ("tls_required", json!("maybe")),
            ("servers", json!(5)),
            ("max_json_depth", json!(0)),
            ("max_json_depth", json!(129)), // above serde's recursion limit
            ("max_payloads", json!(-1)),
        ];
        for (name, value) in cases {
            let e = Settings::default().set(name, &value, TimeUnit::Seconds).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{name} = {value}");
            assert!(e.message.contains(name), "{}", e.message);
        }
        let e = Settings::default().set("bogus", &Value::Null, TimeUnit::Seconds).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "an unknown name is refused even when unset");
        let e = SendOptions::from_json(json!({"correlation": null}).as_object().unwrap()).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let e = SendOptions::from_json(json!({"metadata": [1]}).as_object().unwrap()).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn call_durations_take_their_unit() {
        assert_eq!(TimeUnit::Millis.duration("timeout", 1500.0).unwrap(), Duration::from_millis(1500));
        assert_eq!(TimeUnit::Seconds.duration("timeout", 0.25).unwrap(), Duration::from_millis(250));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = TimeUnit::Millis.duration("timeout", bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
            assert!(e.message.contains("timeout"), "{}", e.message);
        }
    }

    #[test]
    fn every_name_round_trips() {
        for o in OptionName::ALL {
            assert_eq!(o.as_str().parse::<OptionName>().unwrap(), *o);
        }
        let opts = SendOptions::from_json(json!({"correlation_id": "c", "metadata": {"k": 1}}).as_object().unwrap());
        assert_eq!(opts.unwrap().correlation_id.as_deref(), Some("c"));
    }

    #[test]
    fn trace_headers_are_a_propagators_carrier() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let carrier = json!({"Traceparent": tp, "tracestate": "a=b", "uber-trace-id": "ignored", "baggage": null});
        let opts = SendOptions::from_json(json!({"trace_headers": carrier}).as_object().unwrap()).unwrap();
        let trace = opts.trace.unwrap();
        assert_eq!(trace.traceparent.to_string(), tp);
        assert_eq!((trace.tracestate.as_deref(), trace.baggage), (Some("a=b"), None));
        let no_span = json!({"trace_headers": {"baggage": "k=v"}});
        assert_eq!(SendOptions::from_json(no_span.as_object().unwrap()).unwrap().trace, None);
        for bad in [json!("00-…"), json!({"traceparent": "00-zz"}), json!({"traceparent": tp, "tracestate": 1})] {
            let e = SendOptions::from_json(json!({"trace_headers": bad}).as_object().unwrap()).err().unwrap();
            assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad}");
            assert!(e.message.contains("trace"), "{}", e.message);
        }
    }
}
