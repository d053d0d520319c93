//! The seeds' handlers as core's handler closures (`UploadHandler`, `DownloadHandler`): each calls
//! the Python callable and converts its result; which URLs a handler serves, what its answer means
//! and which error codes follow are core's (`HandlerStore`).
//!
//! A handler runs on tokio's blocking pool with the GIL held, never on a runtime worker. If it
//! returns an awaitable, that is awaited on the caller's asyncio loop (the async API, whose
//! task locals name it) or run with `asyncio.run` on the blocking thread (the `_sync` twins,
//! where no loop waits). Whatever the handler does (raise, return junk, panic the thread) ends as
//! an error message for core; nothing unwinds into Python.

use crate::errors::invalid;
use crate::runtime::BridgeRuntime;
use natsbridge::error::ErrorCode;
use natsbridge::io::store::{DownloadCall, DownloadHandler, Progress, UploadCall, UploadHandler, UploadReply};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use pyo3_async_runtimes::generic::ContextExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

const UPLOAD: &str = "fileserver_upload_handler";
const DOWNLOAD: &str = "fileserver_download_handler";

/// A callable, checked when it is given (INVALID_ARGUMENT otherwise).
pub fn callable(value: &Bound<'_, PyAny>, key: &str) -> PyResult<Arc<Py<PyAny>>> {
    if !value.is_callable() {
        return Err(invalid(format!("{key} must be callable, not {}", value.get_type().name()?)));
    }
    Ok(Arc::new(value.clone().unbind()))
}

/// `fileserver_upload_handler(fileserver_url, dataname, data)`: its result (a dict, or a URL
/// str) goes to core as JSON.
pub fn upload(value: &Bound<'_, PyAny>) -> PyResult<UploadHandler> {
    let handler = callable(value, UPLOAD)?;
    Ok(Arc::new(move |c: UploadCall| {
        let handler = handler.clone();
        Box::pin(async move {
            let args: Args =
                Box::new(move |py| (c.fileserver_url, c.dataname, PyBytes::new(py, &c.data)).into_pyobject(py));
            call(UPLOAD, handler, args, |v| {
                let json = crate::convert::to_json(v, ErrorCode::UploadFailed)
                    .map_err(|_| format!("returned {}, not a dict with a \"url\"", type_name(v)))?;
                UploadReply::from_json(&json)
            })
            .await
        })
    }))
}

/// `fileserver_download_handler(url, max_retries, base_delay_ms, max_delay_ms, correlation_id)`:
/// its result must be bytes-like.
pub fn download(value: &Bound<'_, PyAny>) -> PyResult<DownloadHandler> {
    let handler = callable(value, DOWNLOAD)?;
    Ok(Arc::new(move |c: DownloadCall| {
        let handler = handler.clone();
        Box::pin(async move {
            let args: Args = Box::new(move |py| {
                (c.url, c.max_retries, c.base_delay_ms, c.max_delay_ms, c.correlation_id).into_pyobject(py)
            });
            call(DOWNLOAD, handler, args, |v| match crate::convert::bytes_like(v) {
                Ok(Some(b)) => Ok(b),
                Ok(None) => Err(format!("returned {}, not bytes", type_name(v))),
                Err(e) => Err(format!("returned unreadable bytes: {e}")),
            })
            .await
        })
    }))
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

/// A handler's arguments, made once the GIL is held.
type Args = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>> + Send>;

type PyFuture = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

/// Turns what a handler returned into what core takes, or says what was wrong with it.
type Extract<T> = fn(&Bound<'_, PyAny>) -> Result<T, String>;

/// What a handler call gave: a value, or an awaitable scheduled on the caller's event loop.
enum Step<T> {
    Done(Result<T, String>),
    Await(PyFuture),
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
/// An exception is its text ("RuntimeError: ..."), which core puts in the error it raises.
async fn call<T: Send + 'static>(
    what: &'static str,
    handler: Arc<Py<PyAny>>,
    args: Args,
    extract: Extract<T>,
) -> Result<T, String> {
    // The caller's asyncio loop, when the call came from the async API.
    let locals = BridgeRuntime::get_task_locals();
    let step = with_gil(what, move |py| {
        let result = match args(py).and_then(|a| handler.bind(py).call1(a)) {
            Ok(r) => r,
            Err(e) => return Ok(Step::Done(Err(e.to_string()))),
        };
        if !result.hasattr("__await__").unwrap_or(false) {
            return Ok(Step::Done(extract(&result)));
        }
        Ok(match &locals {
            Some(locals) => match pyo3_async_runtimes::into_future_with_locals(locals, result) {
                Ok(fut) => Step::Await(Box::pin(fut)),
                Err(e) => Step::Done(Err(e.to_string())),
            },
            // A _sync call: no loop is waiting for us, so the coroutine gets one of its own.
            None => match py.import("asyncio").and_then(|m| m.call_method1("run", (result,))) {
                Ok(value) => Step::Done(extract(&value)),
                Err(e) => Step::Done(Err(e.to_string())),
            },
        })
    })
    .await?;
    match step {
        Step::Done(r) => r,
        Step::Await(fut) => {
            let value = fut.await;
            with_gil(what, move |py| match value {
                Ok(v) => extract(v.bind(py)),
                Err(e) => Err(e.to_string()),
            })
            .await
        }
    }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}
