//! Keyword options to core's option types. The names, values and checks are core's (`Settings`,
//! `SendOptions`, README "One vocabulary"); here the host-only callables are taken out and the
//! rest is converted to JSON, durations in seconds.

use crate::convert::to_json;
use crate::errors::{invalid, to_py};
use crate::handlers;
use natsbridge::error::ErrorCode;
use natsbridge::io::ConnectOptions;
use natsbridge::io::one_call::CallOptions;
use natsbridge::io::store::{DownloadHandler, Progress, UploadHandler};
use natsbridge::protocol::{SendOptions, Settings, TimeUnit};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Map, Value};
use std::time::Duration;

/// The host-only options (callables), and the rest of `opts` as a JSON object.
struct Split {
    json: Map<String, Value>,
    upload: Option<UploadHandler>,
    download: Option<DownloadHandler>,
    progress: Option<Progress>,
}

fn split(opts: Option<&Bound<'_, PyDict>>) -> PyResult<Split> {
    let mut out = Split { json: Map::new(), upload: None, download: None, progress: None };
    let Some(opts) = opts else { return Ok(out) };
    for (k, v) in opts.iter() {
        if v.is_none() {
            continue;
        }
        let key: String = k.extract().map_err(|_| invalid("option names are str"))?;
        match key.as_str() {
            "fileserver_upload_handler" => out.upload = Some(handlers::upload(&v)?),
            "fileserver_download_handler" => out.download = Some(handlers::download(&v)?),
            "transfer_progress" => out.progress = Some(handlers::progress(&v)?),
            _ => {
                let value = to_json(&v, ErrorCode::InvalidArgument)?;
                out.json.insert(key, value);
            }
        }
    }
    Ok(out)
}

fn refuse(what: &str, key: &str) -> PyErr {
    invalid(format!("unknown {what} option {key:?}"))
}

/// `connect(**options)`: every connection option of core, and the three host-only ones.
pub fn connect_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<ConnectOptions> {
    let s = split(opts)?;
    let mut settings = Settings::default();
    settings.apply(&s.json, TimeUnit::Seconds).map_err(to_py)?;
    Ok(ConnectOptions {
        settings,
        link_store: None,
        upload_handler: s.upload,
        download_handler: s.download,
        transfer_progress: s.progress,
    })
}

/// A send's options: per-message options for core, and where the send goes. `one_call`: no
/// connection was given, so `broker_url` says which shared connection sends.
pub fn send_options(opts: Option<&Bound<'_, PyDict>>, one_call: bool) -> PyResult<(SendOptions, CallOptions)> {
    let mut s = split(opts)?;
    if s.download.is_some() {
        return Err(refuse("send", "fileserver_download_handler"));
    }
    if s.progress.is_some() {
        return Err(refuse("send", "transfer_progress"));
    }
    if s.json.contains_key("broker_url") && !one_call {
        return Err(invalid("broker_url is for sends without a connection; this one goes on its connection"));
    }
    let call = CallOptions::take_from(&mut s.json, TimeUnit::Seconds).map_err(to_py)?;
    let call = CallOptions { upload_handler: s.upload, ..call };
    Ok((SendOptions::from_json(&s.json).map_err(to_py)?, call))
}

/// The options of a one-call receive: `broker_url`, the download handler and what it is given.
pub fn receive_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<CallOptions> {
    let mut s = split(opts)?;
    if s.upload.is_some() {
        return Err(refuse("smartreceive", "fileserver_upload_handler"));
    }
    if s.progress.is_some() {
        return Err(refuse("smartreceive", "transfer_progress"));
    }
    let call = CallOptions::take_from(&mut s.json, TimeUnit::Seconds).map_err(to_py)?;
    if let Some(key) = s.json.keys().next() {
        return Err(refuse("smartreceive", key));
    }
    Ok(CallOptions { download_handler: s.download, ..call })
}

/// A `timeout` argument in seconds (INVALID_ARGUMENT unless a number >= 0).
pub fn timeout(value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    seconds("timeout", value)
}

/// A duration argument `name` in seconds (INVALID_ARGUMENT unless a number >= 0).
pub fn seconds(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let Ok(seconds) = value.extract::<f64>() else {
        return Err(invalid(format!("{name} needs a number of seconds, not {}", value.get_type().name()?)));
    };
    TimeUnit::Seconds.duration(name, seconds).map_err(to_py)
}

/// An optional duration argument `name` in seconds (None stays None).
pub fn opt_seconds(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    value.filter(|v| !v.is_none()).map(|v| seconds(name, v)).transpose()
}

/// An optional `timeout` (None: wait as long as it takes).
pub fn opt_timeout(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    opt_seconds("timeout", value)
}
