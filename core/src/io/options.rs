//! Connection and bridge options. Names follow the NATS clients (reference/ecosystem.md §2.1);
//! environment: `NATS_URL`, `FILESERVER_URL`, `SIZE_THRESHOLD` (DESIGN §5).

use super::store::{LinkStore, Progress, RetryPolicy, plik::PlikOptions};
use crate::error::{ErrorCode, Result, err};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_NATS_URL: &str = "nats://localhost:4222";

/// Which kind of server `fileserver_url` points at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileServerKind {
    #[default]
    Plik,
    /// Any server accepting `PUT {url}/{id}/{name}` and serving `GET` on the same URL.
    HttpPut,
}

#[derive(Clone)]
pub struct ConnectOptions {
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
    pub require_tls: bool,
    /// None: reconnect forever.
    pub max_reconnects: Option<usize>,
    pub reconnect_time_wait: Duration,
    pub connect_timeout: Duration,
    /// Messages buffered per subscription before the server's slow-consumer drops begin.
    pub subscription_capacity: usize,

    /// The bridge's own options.
    pub bridge: BridgeOptions,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
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
            require_tls: false,
            max_reconnects: None,
            reconnect_time_wait: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            subscription_capacity: 64 * 1024,
            bridge: BridgeOptions::default(),
        }
    }
}

impl ConnectOptions {
    pub fn with_server(url: &str) -> Self {
        ConnectOptions { servers: vec![url.to_owned()], ..Default::default() }
    }

    /// The servers to dial: explicit ones, else `NATS_URL` (comma-separated), else the default.
    pub fn resolved_servers(&self) -> Vec<String> {
        if !self.servers.is_empty() {
            return self.servers.clone();
        }
        match std::env::var("NATS_URL") {
            Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_owned()).collect(),
            _ => vec![DEFAULT_NATS_URL.to_owned()],
        }
    }
}

/// Options of the bridge itself: thresholds, link stores, download limits.
#[derive(Clone)]
pub struct BridgeOptions {
    /// None: `SIZE_THRESHOLD` env, else 500,000.
    pub size_threshold: Option<usize>,
    /// None: `FILESERVER_URL` env, else no file server (the object store takes links).
    pub fileserver_url: Option<String>,
    pub fileserver_kind: FileServerKind,
    pub plik: PlikOptions,
    /// Use the JetStream object store for links when no file server or custom store is set.
    pub object_store: bool,
    pub object_store_bucket: String,
    pub object_store_ttl: Duration,
    /// A host-provided store (the seeds' upload/download handlers). Takes uploads first.
    pub link_store: Option<Arc<dyn LinkStore>>,
    /// Extra origins (`scheme://host[:port]`) receivers may download from.
    pub allowed_origins: Vec<String>,
    pub retry: RetryPolicy,
    /// Link payloads whose declared size is larger are refused (PAYLOAD_TOO_LARGE).
    pub max_download_bytes: u64,
    pub sender_name: String,
    /// None: a UUID made once per client.
    pub sender_id: Option<String>,
    /// Told the bytes moved by every link upload and download (a CLI progress bar).
    pub transfer_progress: Option<Progress>,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            size_threshold: None,
            fileserver_url: None,
            fileserver_kind: FileServerKind::Plik,
            plik: PlikOptions::default(),
            object_store: true,
            object_store_bucket: "natsbridge".to_owned(),
            object_store_ttl: Duration::from_secs(3600),
            link_store: None,
            allowed_origins: Vec::new(),
            retry: RetryPolicy::default(),
            max_download_bytes: 4 << 30,
            sender_name: String::new(),
            sender_id: None,
            transfer_progress: None,
        }
    }
}

impl BridgeOptions {
    pub fn resolved_threshold(&self) -> Result<usize> {
        if let Some(t) = self.size_threshold {
            return Ok(t);
        }
        match std::env::var("SIZE_THRESHOLD") {
            Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
                Ok(t) => Ok(t),
                Err(_) => err(ErrorCode::InvalidEnvelope, format!("SIZE_THRESHOLD={v:?} is not a byte count")),
            },
            _ => Ok(crate::protocol::DEFAULT_SIZE_THRESHOLD),
        }
    }

    pub fn resolved_fileserver_url(&self) -> Option<String> {
        self.fileserver_url.clone().or_else(|| std::env::var("FILESERVER_URL").ok()).filter(|s| !s.trim().is_empty())
    }
}

/// Per-message options of `smartsend`, with the seeds' names. Unset fields take the defaults.
#[derive(Clone, Default)]
pub struct SendOptions {
    pub size_threshold: Option<usize>,
    pub correlation_id: Option<String>,
    pub msg_purpose: Option<String>,
    pub sender_name: Option<String>,
    pub sender_id: Option<String>,
    pub receiver_name: Option<String>,
    pub receiver_id: Option<String>,
    pub reply_to: Option<String>,
    pub reply_to_msg_id: Option<String>,
    pub metadata: Map<String, Value>,
    /// Store for this message's links instead of the client's (the seeds' fileserver_upload_handler).
    pub link_store: Option<Arc<dyn LinkStore>>,
}
