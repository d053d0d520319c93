//! The Python side of core's process-wide runtime (`one_call::runtime()`, fork-aware): GIL
//! sections at interpreter exit, the glue pyo3-async-runtimes needs, eager polling, a Ctrl-C
//! aware `block_on`, and draining the one-call style's shared connections at exit.

use natsbridge::io::one_call;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{ContextExt, Runtime as GenericRuntime};
use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The runtime of this process (made anew in a forked child).
pub fn runtime() -> &'static Runtime {
    one_call::runtime()
}

/// Runtime threads that are running Python code (or about to), and whether the interpreter is
/// exiting. At exit, such a thread can lose the race: CPython kills a thread that takes the GIL
/// back during finalization, and pyo3-async-runtimes' completion does exactly that (it releases
/// the GIL inside `call_soon_threadsafe`, the awaiting coroutine finishes, the script ends, and
/// the thread then crashes dropping its arguments; about 1 async script in 10 segfaulted at exit).
/// An `atexit` hook ([`before_exit`]) waits for the sections in flight and refuses new ones.
/// They belong to the process: a forked child has none of its parent's threads, so its count
/// starts afresh.
struct Sections {
    process: u64,
    active: usize,
    exiting: bool,
}

static SECTIONS: Mutex<Sections> = Mutex::new(Sections { process: u64::MAX, active: 0, exiting: false });
static SECTIONS_DONE: Condvar = Condvar::new();

fn sections() -> MutexGuard<'static, Sections> {
    let process = one_call::process_generation();
    let mut s = SECTIONS.lock().unwrap_or_else(|p| p.into_inner());
    if s.process != process {
        *s = Sections { process, active: 0, exiting: false };
    }
    s
}

/// While alive, [`before_exit`] waits for this thread to leave Python.
pub struct PythonSection(());

impl Drop for PythonSection {
    fn drop(&mut self) {
        let mut s = sections();
        s.active = s.active.saturating_sub(1);
        if s.active == 0 {
            SECTIONS_DONE.notify_all();
        }
    }
}

/// Enters a section in which a runtime thread may attach to Python; None once the interpreter
/// is exiting (the caller must then leave Python alone).
pub fn python_section() -> Option<PythonSection> {
    let mut s = sections();
    if s.exiting {
        return None;
    }
    s.active += 1;
    Some(PythonSection(()))
}

/// The `atexit` hook: drains the one-call style's shared connections (core never does, and a
/// script that sends and exits must lose nothing), then waits (GIL released, at most 5 s each)
/// until no runtime thread is in Python, and keeps them out from then on.
#[pyfunction]
pub fn before_exit(py: Python<'_>) {
    py.detach(|| {
        let clients = one_call::take_shared_clients();
        if !clients.is_empty() {
            let drains = futures::future::join_all(clients.iter().map(|c| c.drain()));
            // Errors are moot at exit: a connection that cannot drain has nothing left to deliver.
            let _ = runtime().block_on(async { tokio::time::timeout(Duration::from_secs(5), drains).await });
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut s = sections();
        s.exiting = true;
        while s.active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = SECTIONS_DONE.wait_timeout(s, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    })
}

/// The runtime as pyo3-async-runtimes sees it: `future_into_py` spawns on [`runtime`].
pub struct BridgeRuntime;

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

impl GenericRuntime for BridgeRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        runtime().spawn(fut)
    }

    /// pyo3-async-runtimes completes its awaitables here, with the GIL: in a Python section.
    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        runtime().spawn_blocking(move || {
            if let Some(_section) = python_section() {
                f()
            }
        })
    }
}

impl ContextExt for BridgeRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS.try_with(|c| c.get().cloned()).unwrap_or_default()
    }
}

/// A Python awaitable running `fut` on the binding's runtime (completed through the event loop's
/// completion queue, `completion.rs`). Cancelling it drops `fut`.
pub fn future_into_py<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let locals = pyo3_async_runtimes::generic::get_current_locals::<BridgeRuntime>(py)?;
    let event_loop = locals.event_loop(py);
    crate::completion::spawn_into_py(py, &event_loop, BridgeRuntime::scope(locals, fut))
}

/// Like [`future_into_py`], but polls `fut` once first, on the calling thread with the GIL
/// released and inside the runtime's context. A send that needs no upload, or a receive whose
/// message is already waiting, completes right there and Python gets an already-finished
/// future: handing a result back from the runtime's threads cost ~100 µs per await
/// (bench/RESULTS-python.md). Otherwise the started future goes on on the runtime, and completes
/// through the event loop's completion queue.
pub fn eager_future_into_py<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let FirstPoll { locals, future, first } = poll_first(py, fut)?;
    let std::task::Poll::Ready(result) = first else {
        return crate::completion::spawn_into_py(py, &locals.event_loop(py), future);
    };
    ready_into_py(py, result)
}

/// A future after its first poll: the caller's task locals, the future, and that poll's result.
pub struct FirstPoll<T> {
    pub locals: TaskLocals,
    pub future: Pin<Box<dyn Future<Output = T> + Send>>,
    pub first: std::task::Poll<T>,
}

/// A future scoped to the caller's event loop (for handlers awaited during the first poll as
/// during the rest), polled once on the calling thread with the GIL released.
pub fn poll_first<F>(py: Python<'_>, fut: F) -> PyResult<FirstPoll<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    let locals = pyo3_async_runtimes::generic::get_current_locals::<BridgeRuntime>(py)?;
    let mut future = BridgeRuntime::scope(locals.clone(), fut);
    let first = py.detach(|| poll_once(future.as_mut()));
    Ok(FirstPoll { locals, future, first })
}

/// One poll, in the runtime's context, with a waker that does nothing: what is not finished by
/// then is polled again on the runtime.
pub fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> std::task::Poll<F::Output> {
    let _context = runtime().enter();
    let waker = futures::task::noop_waker();
    fut.poll(&mut std::task::Context::from_waker(&waker))
}

/// An awaitable of a result already here ([`Ready`]).
pub fn ready_into_py<'py, T>(py: Python<'py>, result: PyResult<T>) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a>,
{
    let result = result.and_then(|value| pyo3::IntoPyObjectExt::into_py_any(value, py));
    Ok(Bound::new(py, Ready { result: Some(result) })?.into_any())
}

/// An awaitable whose result is already here: `await` returns it (or raises its error) at once.
/// An event loop future made and settled for it was a tenth of an awaited 100-byte send.
/// `asyncio.gather`, `wait_for` and `ensure_future` take it as they take any awaitable.
#[pyclass(module = "natsbridge._natsbridge")]
pub struct Ready {
    result: Option<PyResult<Py<PyAny>>>,
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self) -> PyResult<()> {
        match self.result.take() {
            Some(Ok(value)) => Err(pyo3::exceptions::PyStopIteration::new_err((value,))),
            Some(Err(e)) => Err(e),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err("cannot await a finished natsbridge call twice")),
        }
    }

    /// Always true, as for a finished future.
    fn done(&self) -> bool {
        true
    }
}

/// Runs `fut` to completion on the runtime with the GIL released (the `_sync` twins). Every
/// 100 ms it takes the GIL back to run Python's signal handlers, so Ctrl-C interrupts a
/// blocking call (its KeyboardInterrupt is raised and `fut` is dropped).
pub fn block_on<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    const SIGNAL_CHECK: std::time::Duration = std::time::Duration::from_millis(100);
    let rt = runtime();
    let mut fut = std::pin::pin!(fut);
    loop {
        // The timer is made inside block_on: it needs the runtime's context.
        if let Ok(done) = py.detach(|| rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, fut.as_mut()).await })) {
            return done;
        }
        py.check_signals()?;
    }
}
