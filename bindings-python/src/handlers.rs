//! Custom link stores from Python callables (DESIGN §3): the seeds'
//! `fileserver_upload_handler(file_server_url, dataname, data) -> {"url": ...}` and
//! `fileserver_download_handler(url, max_retries, base_delay, max_delay, correlation_id) -> bytes`.
//!
//! A handler runs on tokio's blocking pool with the GIL held, never on a runtime worker. If it
//! returns an awaitable, that is awaited on the caller's asyncio loop (the async API, whose
//! task locals name it) or run with `asyncio.run` on the blocking thread (the `_sync` twins,
//! where no loop waits). Whatever the handler does (raise, return junk, panic the thread) ends as
//! UPLOAD_FAILED / DOWNLOAD_FAILED with the Python exception text; nothing unwinds into Python.

use crate::runtime::BridgeRuntime;
use bytes::Bytes;
use futures::future::BoxFuture;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::store::{Fetch, FetchError, LinkStore, Progress, RetryPolicy, Stored, Upload, UrlScope};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMapping, PyString, PyTuple};
use pyo3_async_runtimes::generic::ContextExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

const UPLOAD: &str = "fileserver_upload_handler";

fn err<T>(code: ErrorCode, message: impl Into<String>) -> CoreResult<T> {
    Err(Error::new(code, message))
}
const DOWNLOAD: &str = "fileserver_download_handler";

/// A callable, checked when it is given.
pub fn callable(value: &Bound<'_, PyAny>, key: &str) -> PyResult<Arc<Py<PyAny>>> {
    if !value.is_callable() {
        return Err(PyTypeError::new_err(format!("{key} must be callable, not {}", value.get_type().name()?)));
    }
    Ok(Arc::new(value.clone().unbind()))
}

/// `transfer_progress(nbytes)`, told the bytes moved by each link upload and download chunk. It
/// runs on a runtime thread, so it should be quick; what it raises is reported as unraisable
/// (sys.unraisablehook) and the transfer goes on.
pub fn progress(value: &Bound<'_, PyAny>) -> PyResult<Progress> {
    let callback = callable(value, "transfer_progress")?;
    Ok(Arc::new(move |n: u64| {
        let Some(_section) = crate::runtime::python_section() else { return };
        Python::try_attach(|py| {
            if let Err(e) = callback.bind(py).call1((n,)) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }))
}

/// The seeds' handlers as a core [`LinkStore`].
pub struct PyLinkStore {
    upload: Option<Arc<Py<PyAny>>>,
    download: Option<Arc<Py<PyAny>>>,
    /// The upload handler's first argument ("" when no file server is configured).
    fileserver_url: String,
    /// The URLs the download handler serves.
    allowed: Vec<UrlScope>,
    /// Passed to the download handler, which retries on its own (the seeds' contract).
    retry: RetryPolicy,
}

impl PyLinkStore {
    /// `allowed_origins` only matters with a download handler: it then serves those and the
    /// origin of `fileserver_url`, and at least one must be given.
    pub fn new(
        upload: Option<Arc<Py<PyAny>>>,
        download: Option<Arc<Py<PyAny>>>,
        fileserver_url: Option<&str>,
        allowed_origins: &[String],
        retry: RetryPolicy,
    ) -> PyResult<PyLinkStore> {
        let mut allowed = Vec::new();
        if download.is_some() {
            allowed =
                UrlScope::for_handler(fileserver_url, allowed_origins).map_err(|e| PyValueError::new_err(e.message))?;
            if allowed.is_empty() {
                return Err(PyValueError::new_err(format!(
                    "{DOWNLOAD} serves the fileserver_url origin and allowed_origins: give at least one \
                     (e.g. allowed_origins=[\"myscheme://bucket\"])"
                )));
            }
        }
        Ok(PyLinkStore {
            upload,
            download,
            fileserver_url: fileserver_url.unwrap_or_default().to_owned(),
            allowed,
            retry,
        })
    }

    /// The retry policy the download handler is given.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// One call of the download handler; every failure is DOWNLOAD_FAILED.
    async fn fetch(&self, url: &str, correlation_id: &str) -> CoreResult<Bytes> {
        let Some(handler) = self.download.clone() else {
            return err(ErrorCode::DownloadFailed, format!("no {DOWNLOAD} for {url}"));
        };
        let (retries, base, max) = (
            self.retry.retries,
            u64::try_from(self.retry.base_delay.as_millis()).unwrap_or(u64::MAX),
            u64::try_from(self.retry.max_delay.as_millis()).unwrap_or(u64::MAX),
        );
        let (url, cid) = (url.to_owned(), correlation_id.to_owned());
        let args: Args = Box::new(move |py| (url, retries, base, max, cid).into_pyobject(py));
        call(DOWNLOAD, handler, args, downloaded).await.map_err(|m| Error::new(ErrorCode::DownloadFailed, m))
    }
}

impl LinkStore for PyLinkStore {
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, CoreResult<Stored>> {
        Box::pin(async move {
            let Some(handler) = self.upload.clone() else {
                // Not reached: without an upload handler `takes_uploads` is false.
                return err(ErrorCode::UploadFailed, format!("no {UPLOAD}"));
            };
            let (server, name, bytes) = (self.fileserver_url.clone(), upload.dataname.to_owned(), upload.bytes);
            let args: Args = Box::new(move |py| (server, name, PyBytes::new(py, &bytes)).into_pyobject(py));
            call(UPLOAD, handler, args, uploaded_url)
                .await
                .map(Stored::from)
                .map_err(|m| Error::new(ErrorCode::UploadFailed, m))
        })
    }

    /// Fatal on any failure: the handler retries on its own (it is given the retry policy).
    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<Bytes, FetchError>> {
        Box::pin(async move { self.fetch(fetch.url, fetch.correlation_id).await.map_err(FetchError::Fatal) })
    }

    fn takes_uploads(&self) -> bool {
        self.upload.is_some()
    }

    fn serves(&self, url: &str) -> bool {
        if self.download.is_none() {
            return false;
        }
        self.allowed.iter().any(|a| a.matches(url))
    }
}

/// A handler's arguments, made once the GIL is held.
type Args = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>> + Send>;

type PyFuture = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

/// What a handler call gave: a value, or an awaitable scheduled on the caller's event loop.
enum Step<T> {
    Done(Result<T, String>),
    Await(PyFuture),
}

fn raised(what: &str, e: PyErr) -> String {
    format!("{what} raised {e}")
}

/// Runs `f` on the blocking pool with the GIL; a panic there, or a finalizing interpreter, is
/// an error message, never an unwind.
async fn with_gil<T: Send + 'static>(
    what: &'static str,
    f: impl for<'py> FnOnce(Python<'py>) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let task = tokio::task::spawn_blocking(move || {
        let _section = crate::runtime::python_section()?;
        Python::try_attach(f)
    });
    match task.await {
        Ok(Some(r)) => r,
        Ok(None) => Err(format!("{what} was not called: the Python interpreter is shutting down")),
        Err(e) => Err(format!("{what} stopped: {e}")),
    }
}

/// Calls `handler(*args(py))` and turns its result, awaited if need be, into `T` with `extract`.
async fn call<T: Send + 'static>(
    what: &'static str,
    handler: Arc<Py<PyAny>>,
    args: Args,
    extract: fn(&str, &Bound<'_, PyAny>) -> Result<T, String>,
) -> Result<T, String> {
    // The caller's asyncio loop, when the call came from the async API.
    let locals = BridgeRuntime::get_task_locals();
    let step = with_gil(what, move |py| {
        let result = match args(py).and_then(|a| handler.bind(py).call1(a)) {
            Ok(r) => r,
            Err(e) => return Ok(Step::Done(Err(raised(what, e)))),
        };
        if !result.hasattr("__await__").unwrap_or(false) {
            return Ok(Step::Done(extract(what, &result)));
        }
        Ok(match &locals {
            Some(locals) => match pyo3_async_runtimes::into_future_with_locals(locals, result) {
                Ok(fut) => Step::Await(Box::pin(fut)),
                Err(e) => Step::Done(Err(raised(what, e))),
            },
            // A _sync call: no loop is waiting for us, so the coroutine gets one of its own.
            None => match py.import("asyncio").and_then(|m| m.call_method1("run", (result,))) {
                Ok(value) => Step::Done(extract(what, &value)),
                Err(e) => Step::Done(Err(raised(what, e))),
            },
        })
    })
    .await?;
    match step {
        Step::Done(r) => r,
        Step::Await(fut) => {
            let value = fut.await;
            with_gil(what, move |py| match value {
                Ok(v) => extract(what, v.bind(py)),
                Err(e) => Err(raised(what, e)),
            })
            .await
        }
    }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// The seeds' upload result: `{"status": 200, "uploadid": ..., "fileid": ..., "url": ...}`;
/// only "url" is required, and a "status" outside 2xx is a failure.
fn uploaded_url(what: &str, result: &Bound<'_, PyAny>) -> Result<String, String> {
    let Ok(map) = result.cast::<PyMapping>() else {
        return Err(format!("{what} returned {}, not a dict with a \"url\"", type_name(result)));
    };
    if let Ok(status) = map.get_item("status")
        && let Ok(code) = status.extract::<i64>()
        && !(200..300).contains(&code)
    {
        return Err(format!("{what} returned status {code}"));
    }
    let Ok(url) = map.get_item("url") else {
        return Err(format!("{what} returned a dict without \"url\""));
    };
    match url.cast::<PyString>().ok().and_then(|s| s.to_str().ok().map(str::to_owned)) {
        Some(u) if !u.trim().is_empty() => Ok(u),
        _ => Err(format!("{what} returned a \"url\" that is not a non-empty str: {}", type_name(&url))),
    }
}

fn downloaded(what: &str, result: &Bound<'_, PyAny>) -> Result<Bytes, String> {
    match crate::convert::bytes_like(result) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(format!("{what} returned {}, not bytes", type_name(result))),
        Err(e) => Err(format!("{what} returned unreadable bytes: {e}")),
    }
}
