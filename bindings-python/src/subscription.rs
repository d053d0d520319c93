//! A subscription: decoded envelopes in arrival order, in batches (the public layer's async
//! iterator) or one at a time.

use crate::errors::to_py;
use crate::options::opt_timeout;
use crate::{Out, none_out, out, received_out, runtime};
use natsbridge::error::Result as CoreResult;
use natsbridge::io::{Arrival, Stopper};
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::Arc;
use std::time::Duration;

/// Core's subscription (None once closed) and its stopper, which ends a waiting `next` so an
/// unsubscribe need not wait for one more message.
struct State {
    sub: tokio::sync::Mutex<Option<natsbridge::io::Subscription>>,
    stopper: Stopper,
}

type SubState = Arc<State>;

/// Decoded envelopes from one subscription, in arrival order. A message that fails to decode
/// raises its error; the subscription goes on.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
pub struct Subscription {
    inner: SubState,
}

impl Subscription {
    pub fn new(sub: natsbridge::io::Subscription) -> Subscription {
        let stopper = sub.stopper();
        Subscription { inner: Arc::new(State { sub: tokio::sync::Mutex::new(Some(sub)), stopper }) }
    }
}

/// The next message, decoded (links fetched) or, when `streamed`, with its link payloads as
/// `LinkStream`s; `Ok(None)` when the subscription is closed.
async fn next_message(inner: SubState, timeout: Option<Duration>, streamed: bool) -> PyResult<Option<Out>> {
    let streamed_out = |m| out(move |py| Ok(crate::convert::streamed(py, m)?.into_any()));
    let mut guard = inner.sub.lock().await;
    let Some(sub) = guard.as_mut() else { return Ok(None) };
    let item = match (streamed, timeout) {
        (false, None) => sub.next().await.map(|r| r.map(received_out)),
        (false, Some(t)) => sub.next_timeout(t).await.map(|r| r.map(received_out)),
        (true, None) => sub.next_streamed().await.map(|r| r.map(streamed_out)),
        (true, Some(t)) => sub.next_streamed_timeout(t).await.map(|r| r.map(streamed_out)),
    };
    match item {
        None => {
            if !inner.stopper.is_stopped() {
                *guard = None; // closed by the connection: nothing left to unsubscribe
            }
            Ok(None)
        }
        Some(r) => r.map(Some).map_err(to_py),
    }
}

/// A list of envelopes, each a message that failed to decode as its exception object.
fn batch_out(batch: Vec<CoreResult<Arrival>>) -> Out {
    out(move |py| {
        let list = PyList::empty(py);
        for item in batch {
            match item {
                Ok(a) => list.append(crate::convert::arrival(py, &a)?)?,
                Err(e) => list.append(to_py(e).into_value(py))?,
            }
        }
        Ok(list.into_any())
    })
}

async fn unsubscribe(inner: SubState) -> PyResult<()> {
    inner.stopper.stop();
    let sub = inner.sub.lock().await.take();
    match sub {
        Some(s) => s.unsubscribe().await.map_err(to_py),
        None => Ok(()),
    }
}

#[pymethods]
impl Subscription {
    /// Up to `max` envelopes: those ready now, else an awaitable of the next one and any ready
    /// behind it; None once closed. A message that failed to decode is its exception object.
    fn next_batch<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyAny>> {
        let max = max.max(1);
        if let Ok(mut guard) = self.inner.sub.try_lock() {
            let Some(sub) = guard.as_mut() else { return runtime::ready_into_py(py, Ok(none_out())) };
            let mut ready = Vec::new();
            let open = py.detach(|| {
                let _context = runtime::runtime().enter();
                sub.take_ready(max, &mut ready)
            });
            if !ready.is_empty() {
                return runtime::ready_into_py(py, Ok(batch_out(ready)));
            }
            if !open {
                return runtime::ready_into_py(py, Ok(none_out()));
            }
        }
        let inner = self.inner.clone();
        // Eager: polled once here, so a message that arrives meanwhile finds the wait registered.
        runtime::eager_future_into_py(py, async move {
            let mut guard = inner.sub.lock().await;
            let Some(sub) = guard.as_mut() else { return Ok(none_out()) };
            Ok(sub.next_batch(max).await.map_or_else(none_out, batch_out))
        })
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match runtime::block_on(py, next_message(self.inner.clone(), None, false))? {
            Some(o) => o.into_pyobject(py),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// The next envelope, None when the subscription is closed; TimeoutError (code TIMEOUT) when
    /// nothing arrives within `timeout` seconds.
    #[pyo3(signature = (timeout=None))]
    fn next<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, timeout) = (self.inner.clone(), opt_timeout(timeout)?);
        runtime::eager_future_into_py(py, async move {
            Ok(next_message(inner, timeout, false).await?.unwrap_or_else(none_out))
        })
    }

    #[pyo3(signature = (timeout=None))]
    fn next_sync<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_timeout(timeout)?;
        runtime::block_on(py, next_message(self.inner.clone(), timeout, false))?
            .unwrap_or_else(none_out)
            .into_pyobject(py)
    }

    /// Like `next`, with each link payload's data a `LinkStream` to read in chunks or save to a
    /// file (nothing is fetched until it is read).
    #[pyo3(signature = (timeout=None))]
    fn next_streamed<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, timeout) = (self.inner.clone(), opt_timeout(timeout)?);
        runtime::future_into_py(
            py,
            async move { Ok(next_message(inner, timeout, true).await?.unwrap_or_else(none_out)) },
        )
    }

    #[pyo3(signature = (timeout=None))]
    fn next_streamed_sync<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_timeout(timeout)?;
        runtime::block_on(py, next_message(self.inner.clone(), timeout, true))?
            .unwrap_or_else(none_out)
            .into_pyobject(py)
    }

    fn unsubscribe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        runtime::future_into_py(py, async move { unsubscribe(inner).await.map(|_| none_out()) })
    }

    fn unsubscribe_sync(&self, py: Python<'_>) -> PyResult<()> {
        runtime::block_on(py, unsubscribe(self.inner.clone()))
    }
}
