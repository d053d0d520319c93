//! A subscription: decoded envelopes in arrival order, as an async and a blocking iterator.

use crate::errors::to_py;
use crate::options::opt_timeout;
use crate::{Out, none_out, received_out, runtime};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Core's subscription (None once closed), and the signal that ends a waiting `next` so an
/// unsubscribe need not wait for one more message.
struct State {
    sub: tokio::sync::Mutex<Option<natsbridge::io::Subscription>>,
    closing: tokio::sync::watch::Sender<bool>,
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
        let state = State { sub: tokio::sync::Mutex::new(Some(sub)), closing: tokio::sync::watch::Sender::new(false) };
        Subscription { inner: Arc::new(state) }
    }
}

/// The next envelope; `Ok(None)` when the subscription is closed.
async fn next_message(inner: SubState, timeout: Option<Duration>) -> PyResult<Option<Out>> {
    let mut closing = inner.closing.subscribe();
    let mut guard = inner.sub.lock().await;
    let Some(sub) = guard.as_mut() else { return Ok(None) };
    let next = async {
        match timeout {
            Some(t) => sub.next_timeout(t).await,
            None => sub.next().await,
        }
    };
    let item = tokio::select! {
        item = next => item,
        _ = closing.wait_for(|c| *c) => return Ok(None),
    };
    match item {
        None => {
            *guard = None;
            Ok(None)
        }
        Some(r) => r.map(|r| Some(received_out(r))).map_err(to_py),
    }
}

async fn unsubscribe(inner: SubState) -> PyResult<()> {
    inner.closing.send_replace(true);
    let sub = inner.sub.lock().await.take();
    match sub {
        Some(s) => s.unsubscribe().await.map_err(to_py),
        None => Ok(()),
    }
}

#[pymethods]
impl Subscription {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        runtime::eager_future_into_py(py, async move {
            match next_message(inner, None).await? {
                Some(o) => Ok(o),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match runtime::block_on(py, next_message(self.inner.clone(), None))? {
            Some(o) => o.into_pyobject(py),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// The next envelope, None when the subscription is closed; TimeoutError (code TIMEOUT) when
    /// nothing arrives within `timeout` seconds.
    #[pyo3(signature = (timeout=None))]
    fn next<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, timeout) = (self.inner.clone(), opt_timeout(timeout)?);
        runtime::eager_future_into_py(
            py,
            async move { Ok(next_message(inner, timeout).await?.unwrap_or_else(none_out)) },
        )
    }

    #[pyo3(signature = (timeout=None))]
    fn next_sync<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_timeout(timeout)?;
        runtime::block_on(py, next_message(self.inner.clone(), timeout))?.unwrap_or_else(none_out).into_pyobject(py)
    }

    fn unsubscribe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        runtime::future_into_py(py, async move { unsubscribe(inner).await.map(|_| none_out()) })
    }

    fn unsubscribe_sync(&self, py: Python<'_>) -> PyResult<()> {
        runtime::block_on(py, unsubscribe(self.inner.clone()))
    }
}
