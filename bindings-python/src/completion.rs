//! How an awaitable whose work finishes on the runtime's threads completes in Python: one
//! completion queue per event loop, watched by the loop through a socket pair. A runtime thread
//! pushes the finished result and, when the queue was empty, writes one byte; the loop wakes,
//! drains every result waiting, makes their Python objects and resolves their futures, all on
//! its own thread with the GIL it already holds. Runtime threads never take the GIL here.
//! (pyo3-async-runtimes' completion hands each result to a blocking thread that takes the GIL and
//! calls `call_soon_threadsafe`: about 100 µs per await, bench/RESULTS-python.md.)

use crate::runtime::runtime;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

type MakeResult = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

/// A result on its way to the future that awaits it.
struct Finished {
    future: Py<PyAny>,
    result: MakeResult,
}

/// The completion queue of one event loop, and the socket pair that wakes it.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
pub struct Completions {
    queue: Mutex<Vec<Finished>>,
    wake: UnixStream,
    watched: UnixStream,
}

impl Completions {
    fn new() -> PyResult<Completions> {
        let (wake, watched) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        watched.set_nonblocking(true)?;
        Ok(Completions { queue: Mutex::new(Vec::new()), wake, watched })
    }

    /// From a runtime thread: queues the result, waking the loop when it was not already woken.
    fn push(&self, finished: Finished) {
        let first = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.push(finished);
            queue.len() == 1
        };
        if first {
            // A full socket buffer means the loop has a wake-up pending already.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

#[pymethods]
impl Completions {
    /// The loop's reader callback: resolves every future whose result is waiting. One that
    /// cannot be resolved is reported as unraisable and the rest still are.
    fn drain(&self, py: Python<'_>) {
        // Emptied before the queue is taken: a result pushed after the take writes a new byte.
        let mut sink = [0u8; 256];
        while matches!((&self.watched).read(&mut sink), Ok(n) if n > 0) {}
        let finished = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        for Finished { future, result } in finished {
            if let Err(e) = resolve(future.bind(py), result) {
                e.write_unraisable(py, Some(future.bind(py)));
            }
        }
    }
}

fn resolve(future: &Bound<'_, PyAny>, result: MakeResult) -> PyResult<()> {
    let py = future.py();
    // A cancelled future takes no result.
    if future.call_method0(pyo3::intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match result(py) {
        Ok(value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,))?,
        Err(e) => future.call_method1(pyo3::intern!(py, "set_exception"), (e.into_value(py),))?,
    };
    Ok(())
}

/// The completion queue of `event_loop`, made (and watched by it) on first use.
fn completions_of(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Py<Completions>> {
    static BY_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let by_loop = BY_LOOP
        .get_or_try_init(py, || py.import("weakref")?.getattr("WeakKeyDictionary")?.call0().map(Bound::unbind))?
        .bind(py);
    if let Some(found) =
        by_loop.call_method1(pyo3::intern!(py, "get"), (event_loop,))?.extract::<Option<Py<Completions>>>()?
    {
        return Ok(found);
    }
    let completions = Bound::new(py, Completions::new()?)?;
    let fd = completions.get().watched.as_raw_fd();
    event_loop.call_method1("add_reader", (fd, completions.getattr("drain")?))?;
    // The loop stops watching when it is garbage: closing a loop closes its selector.
    by_loop.set_item(event_loop, &completions)?;
    Ok(completions.unbind())
}

/// Cancels the runtime's task when its Python future is cancelled.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
struct CancelOnCancel(tokio::task::AbortHandle);

#[pymethods]
impl CancelOnCancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0(pyo3::intern!(future.py(), "cancelled"))?.is_truthy()? {
            self.0.abort();
        }
        Ok(())
    }
}

/// A future of `event_loop`, resolved with `fut`'s result; `fut` (scoped with the caller's task
/// locals, for the handlers it may call) runs on the runtime. Cancelling the Python future drops
/// `fut`.
pub fn spawn_into_py<'py, F, T>(py: Python<'py>, event_loop: &Bound<'py, PyAny>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let completions = completions_of(py, event_loop)?;
    let future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let awaited = future.clone().unbind();
    let task = runtime().spawn(async move {
        let result = fut.await;
        let finished = Finished {
            future: awaited,
            result: Box::new(move |py| result.and_then(|value| value.into_bound_py_any(py))),
        };
        completions.get().push(finished);
    });
    future.call_method1(pyo3::intern!(py, "add_done_callback"), (CancelOnCancel(task.abort_handle()),))?;
    Ok(future)
}
