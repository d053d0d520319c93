//! Connection options: core's `Settings` filled by name from text, in C's spelling of the one
//! vocabulary (core's canonical names; a duration's key ends in `_ms`), and the handler setter.

use crate::args;
use crate::handlers::{self, DownloadFn, UploadFn};
use crate::status::{Outcome, Status, guard, invalid};
use bridge::io::ConnectOptions as CoreConnectOptions;
use bridge::protocol::durable::{ConsumeOptionName, StreamOptionName};
use bridge::protocol::{OptionName, TimeUnit};
use serde_json::Value;
use std::ffi::{CString, c_char, c_void};
use std::sync::OnceLock;

/// Options for `natsbridge_client_connect`. Not shared between threads while being filled.
#[derive(Default)]
pub struct ConnectOptions {
    pub core: CoreConnectOptions,
}

/// A vocabulary of core option names (connection, stream or consumer options), as C spells
/// them: the canonical name, with `_ms` for a duration.
pub trait Vocabulary: Copy + std::str::FromStr + 'static {
    /// What the options are called in messages: "option", "stream option", "consume option".
    const KIND: &'static str;
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;
    fn is_duration(self) -> bool;
    /// Every C key, as the NULL-terminated array `natsbridge_*option_names()` returns.
    fn c_names() -> &'static CNames;
}

macro_rules! vocabulary {
    ($t:ty, $kind:literal) => {
        impl Vocabulary for $t {
            const KIND: &'static str = $kind;
            fn all() -> &'static [Self] {
                <$t>::ALL
            }
            fn name(self) -> &'static str {
                self.as_str()
            }
            fn is_duration(self) -> bool {
                <$t>::is_duration(self)
            }
            fn c_names() -> &'static CNames {
                static NAMES: OnceLock<CNames> = OnceLock::new();
                NAMES.get_or_init(CNames::of::<$t>)
            }
        }
    };
}
vocabulary!(OptionName, "option");
vocabulary!(StreamOptionName, "stream option");
vocabulary!(ConsumeOptionName, "consume option");

/// The C key of an option: its canonical name, with `_ms` for a duration.
pub fn c_key<V: Vocabulary>(option: V) -> String {
    if option.is_duration() { format!("{}_ms", option.name()) } else { option.name().to_owned() }
}

/// A NULL-terminated array of C keys, made once and never freed.
pub struct CNames {
    _keys: Vec<CString>,
    pointers: Vec<*const c_char>,
}

// SAFETY: the pointers point into `_keys`, which is never changed or dropped.
unsafe impl Send for CNames {}
// SAFETY: as above; read-only after it is made.
unsafe impl Sync for CNames {}

impl CNames {
    fn of<V: Vocabulary>() -> CNames {
        let keys: Vec<CString> = V::all().iter().map(|o| CString::new(c_key(*o)).expect("no NUL in a name")).collect();
        let pointers = keys.iter().map(|k| k.as_ptr()).chain([std::ptr::null()]).collect();
        CNames { _keys: keys, pointers }
    }

    pub fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// Names this API used before the one vocabulary, and what replaced them.
const RENAMED: [(&str, &str); 5] = [
    ("require_tls", "tls_required"),
    ("max_reconnects", "max_reconnect_attempts"),
    ("subscription_capacity", "pending_msgs_limit"),
    ("allowed_origin", "allowed_origins"),
    (
        "handler_url_prefix",
        "allowed_origins (a download handler serves the origin of fileserver_url and allowed_origins)",
    ),
];

/// The canonical name for a C key: durations only with their `_ms` suffix.
pub fn canonical<V: Vocabulary>(key: &str) -> Outcome<&str> {
    if let Some(base) = key.strip_suffix("_ms")
        && base.parse::<V>().is_ok_and(V::is_duration)
    {
        return Ok(base);
    }
    match key.parse::<V>() {
        Ok(option) if option.is_duration() => {
            Err(invalid(format!("{} {key:?} is a duration: give it in milliseconds as \"{key}_ms\"", V::KIND)))
        }
        Ok(_) => Ok(key),
        Err(_) => Err(match RENAMED.iter().find(|(old, _)| V::KIND == "option" && *old == key) {
            Some((_, new)) => invalid(format!("option {key:?} is now {new}")),
            None => invalid(format!(
                "unknown {} {key:?}; the {}s are {}",
                V::KIND,
                V::KIND,
                V::all().iter().map(|o| c_key(*o)).collect::<Vec<_>>().join(", ")
            )),
        }),
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
        // SAFETY: checked out-param.
        unsafe { args::write(out, Box::into_raw(Box::<ConnectOptions>::default())) };
        Ok(())
    })
}

/// Sets one option from text. `key` is a connection option's name in the one vocabulary
/// (`natsbridge_option_names()` lists them): `servers`, `name`, `user`, `password`, `token`,
/// `nkey` (seed), `credentials_file`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`,
/// `tls_required` (true/false), `max_reconnect_attempts` (-1: forever),
/// `reconnect_time_wait_ms`, `connect_timeout_ms`, `pending_msgs_limit`, `size_threshold`
/// (bytes; payloads this size or larger go by link), `fileserver_url`, `fileserver_kind`
/// (plik/http/s3), `object_store` (true/false), `object_store_bucket`, `object_store_ttl_ms`,
/// `object_store_replicas`, `plik_oneshot` (true/false), `plik_ttl_ms`, `plik_token`,
/// `s3_endpoint`, `s3_region`, `s3_profile`, `s3_addressing_style` (path/virtual),
/// `s3_access_key_id`, `s3_secret_access_key`, `s3_session_token`, `s3_presign` (true/false),
/// `s3_ttl_ms` (the S3 store of an `s3://bucket/prefix` `fileserver_url`),
/// `allowed_origins`, `max_retries`, `base_delay_ms`, `max_delay_ms`, `max_download_bytes`,
/// `max_payloads`, `max_message_bytes`, `max_json_depth` (at most 128), `max_arrow_columns`,
/// `max_arrow_batches`, `max_arrow_values` (what one received message may hold:
/// spec/PROTOCOL.md §9.4),
/// `sender_name`, `sender_id`, `jetstream` (true/false: smartsend publishes durably).
/// Durations are milliseconds and their keys end in `_ms`. The lists (`servers`,
/// `allowed_origins`) take comma-separated items and add to the list on every call. Unknown
/// keys, a duration without `_ms`, and malformed values: INVALID_ARGUMENT.
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
        Ok(opts.core.settings.set(canonical::<OptionName>(key)?, &Value::String(value.to_owned()), TimeUnit::Millis)?)
    })
}

/// Every key `natsbridge_connect_options_set` takes, as a NULL-terminated array.
///
/// Ownership: static, never freed. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_option_names() -> *const *const c_char {
    OptionName::c_names().as_ptr()
}

/// Installs the seeds' fileserver_upload_handler / fileserver_download_handler. Either may be
/// NULL, not both. Uploads of link payloads go to `upload` (its first argument is the
/// `fileserver_url` option, "" when unset); `download` fetches the links under the origin of
/// the `fileserver_url` option and of each `allowed_origins` entry (set at least one; e.g.
/// allowed_origins "mystore:" for every mystore: URL), with the connection's retry options.
/// Handlers run on the thread that made the natsbridge call (send, receive, subscription_next,
/// request, reply), never on a library thread, and must not call blocking natsbridge functions
/// (those fail with INVALID_ARGUMENT there).
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
        opts.core.upload_handler = handlers::upload_handler(upload, user_data);
        opts.core.download_handler = handlers::download_handler(download, user_data);
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
