//! Connection options: a handle filled with `natsbridge_connect_options_set(opts, key, value)`
//! (the keys are the NATS clients' and the seeds' option names) and the handler setter.

use crate::args;
use crate::handlers::{CLinkStore, DownloadFn, UploadFn, check_prefix};
use crate::status::{Outcome, Status, guard, invalid};
use bridge::io::{ConnectOptions as CoreConnectOptions, FileServerKind};
use std::ffi::{c_char, c_void};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Options for `natsbridge_client_connect`. Not shared between threads while being filled.
pub struct ConnectOptions {
    pub core: CoreConnectOptions,
    handlers: Option<(UploadFn, DownloadFn, *mut c_void)>,
    handler_prefixes: Vec<String>,
}

impl ConnectOptions {
    /// The core options, with the C handlers (if any) as the custom link store.
    pub fn resolved(&self) -> Outcome<CoreConnectOptions> {
        let mut core = self.core.clone();
        if let Some((upload, download, user_data)) = self.handlers {
            let fileserver_url = core.bridge.resolved_fileserver_url();
            let store =
                CLinkStore::new(upload, download, user_data, fileserver_url.as_deref(), self.handler_prefixes.clone())?;
            core.bridge.link_store = Some(Arc::new(store));
        }
        Ok(core)
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Outcome<T> {
    value.trim().parse().map_err(|_| invalid(format!("option {key:?} needs a non-negative integer, not {value:?}")))
}

fn flag(key: &str, value: &str) -> Outcome<bool> {
    match value.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(format!("option {key:?} needs true or false, not {value:?}"))),
    }
}

fn millis(key: &str, value: &str) -> Outcome<Duration> {
    number(key, value).map(Duration::from_millis)
}

impl ConnectOptions {
    fn set(&mut self, key: &str, value: &str) -> Outcome {
        let o = &mut self.core;
        let b = &mut o.bridge;
        let text = || Some(value.to_owned());
        match key {
            "servers" => o.servers.extend(value.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())),
            "name" => o.name = text(),
            "user" => o.user = text(),
            "password" => o.password = text(),
            "token" => o.token = text(),
            "nkey" => o.nkey = text(),
            "credentials_file" => o.credentials_file = Some(PathBuf::from(value)),
            "tls_ca_file" => o.tls_ca_file = Some(PathBuf::from(value)),
            "tls_cert_file" => o.tls_cert_file = Some(PathBuf::from(value)),
            "tls_key_file" => o.tls_key_file = Some(PathBuf::from(value)),
            "require_tls" => o.require_tls = flag(key, value)?,
            "max_reconnects" => o.max_reconnects = Some(number(key, value)?),
            "reconnect_time_wait_ms" => o.reconnect_time_wait = millis(key, value)?,
            "connect_timeout_ms" => o.connect_timeout = millis(key, value)?,
            "subscription_capacity" => o.subscription_capacity = number(key, value)?,
            "size_threshold" => b.size_threshold = Some(number(key, value)?),
            "fileserver_url" => b.fileserver_url = text(),
            "fileserver_kind" => {
                b.fileserver_kind = match value {
                    "plik" => FileServerKind::Plik,
                    "http" => FileServerKind::HttpPut,
                    _ => return Err(invalid(format!("option \"fileserver_kind\" is plik or http, not {value:?}"))),
                }
            }
            "object_store" => b.object_store = flag(key, value)?,
            "object_store_bucket" => b.object_store_bucket = value.to_owned(),
            "object_store_ttl_ms" => b.object_store_ttl = millis(key, value)?,
            "allowed_origin" => b.allowed_origins.push(value.to_owned()),
            "max_retries" => b.retry.retries = number(key, value)?,
            "base_delay_ms" => b.retry.base_delay = millis(key, value)?,
            "max_delay_ms" => b.retry.max_delay = millis(key, value)?,
            "max_download_bytes" => b.max_download_bytes = number(key, value)?,
            "sender_name" => b.sender_name = value.to_owned(),
            "sender_id" => b.sender_id = text(),
            "handler_url_prefix" => {
                check_prefix(value)?;
                self.handler_prefixes.push(value.to_owned());
            }
            _ => return Err(invalid(format!("unknown connect option {key:?}"))),
        }
        Ok(())
    }
}

/// Makes an empty options object (every option at its default; environment variables
/// `NATS_URL`, `FILESERVER_URL`, `SIZE_THRESHOLD` apply to options left unset).
///
/// Ownership: the caller owns `*out` and frees it with `natsbridge_connect_options_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `out` is valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_connect_options_new(out: *mut *mut ConnectOptions) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        let opts = ConnectOptions { core: CoreConnectOptions::default(), handlers: None, handler_prefixes: Vec::new() };
        // SAFETY: checked out-param.
        unsafe { args::write(out, Box::into_raw(Box::new(opts))) };
        Ok(())
    })
}

/// Sets one option from text. Keys: `servers` (comma-separated URLs, added to the list),
/// `name`, `user`, `password`, `token`, `nkey` (seed), `credentials_file`, `tls_ca_file`,
/// `tls_cert_file`, `tls_key_file`, `require_tls` (true/false), `max_reconnects`,
/// `reconnect_time_wait_ms`, `connect_timeout_ms`, `subscription_capacity`, `size_threshold`
/// (bytes; payloads this size or larger go by link), `fileserver_url`, `fileserver_kind`
/// (plik/http), `object_store` (true/false), `object_store_bucket`, `object_store_ttl_ms`,
/// `allowed_origin` (one more origin downloads may come from; repeatable), `max_retries`,
/// `base_delay_ms`, `max_delay_ms`, `max_download_bytes`, `sender_name`, `sender_id`,
/// `handler_url_prefix` (a URL prefix the download handler serves, ending in '/' or a bare
/// "scheme:"; repeatable). Unknown keys and malformed values: INVALID_ARGUMENT.
///
/// Ownership: `key` and `value` are copied. Thread safety: one thread at a time per `opts`.
///
/// # Safety
/// `opts` is NULL or a live options object; `key`, `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_connect_options_set(
    opts: *mut ConnectOptions,
    key: *const c_char,
    value: *const c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let opts = unsafe { args::handle_mut(opts, "opts") }?;
        // SAFETY: caller contract.
        let (key, value) = unsafe { (args::text(key, "key")?, args::text(value, "value")?) };
        opts.set(key, value)
    })
}

/// Installs custom link-store handlers (the seeds' fileserver upload/download handlers). Either
/// may be NULL, not both. Uploads of link payloads go to `upload`; links whose URL starts with a
/// `handler_url_prefix` option are fetched with `download`. Handlers run on the thread that made
/// the natsbridge call (send, receive, subscription_next, request), never on a library thread,
/// and must not call blocking natsbridge functions (those fail with INVALID_ARGUMENT there).
///
/// Ownership: `user_data` stays the caller's; it must stay valid while any client made from
/// these options lives, and be usable from every thread that uses such a client.
/// Thread safety: one thread at a time per `opts`.
///
/// # Safety
/// `opts` is NULL or a live options object; the function pointers follow the typedefs' contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_connect_options_set_handlers(
    opts: *mut ConnectOptions,
    upload: UploadFn,
    download: DownloadFn,
    user_data: *mut c_void,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let opts = unsafe { args::handle_mut(opts, "opts") }?;
        if upload.is_none() && download.is_none() {
            return Err(invalid("give an upload handler, a download handler, or both"));
        }
        opts.handlers = Some((upload, download, user_data));
        Ok(())
    })
}

/// Frees an options object. NULL is a no-op.
///
/// Ownership: takes `opts`; it must not be used afterwards. Thread safety: any thread.
///
/// # Safety
/// `opts` is NULL or a live options object not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_connect_options_free(opts: *mut ConnectOptions) {
    // SAFETY: caller contract; made by Box::into_raw in natsbridge_connect_options_new.
    unsafe { crate::free_box(opts) }
}
