//! JetStream mode (spec/PROTOCOL.md §12): stream setup, durable consumers and their deliveries,
//! the link sweep. Options and rules are core's (`StreamSettings`, `ConsumeOptions`); here they
//! are converted, durations in seconds.

use crate::convert::{from_json, to_json};
use crate::errors::{invalid, to_py};
use crate::options::{opt_seconds, opt_timeout};
use crate::{Out, none_out, out, received_out, runtime};
use natsbridge::error::ErrorCode;
use natsbridge::io::{Client, DeliveryAck, Stopper};
use natsbridge::protocol::TimeUnit;
use natsbridge::protocol::durable::{ConsumeOptions, StreamSettings};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

fn json_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<Map<String, Value>> {
    let mut map = Map::new();
    for (k, v) in opts.into_iter().flat_map(|d| d.iter()) {
        let key: String = k.extract().map_err(|_| invalid("option names are str"))?;
        map.insert(key, to_json(&v, ErrorCode::InvalidArgument)?);
    }
    Ok(map)
}

fn json_out(v: Value) -> Out {
    out(move |py| from_json(py, &v))
}

/// Core's consumer (None once stopped or closed), and its stopper, which ends a pending `next`.
struct ConsumerState {
    consumer: tokio::sync::Mutex<Option<natsbridge::io::Consumer>>,
    stopper: Stopper,
}

type Shared = Arc<ConsumerState>;

/// A durable pull consumer: decoded deliveries, each to be settled.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
pub struct Consumer {
    inner: Shared,
}

/// One decoded delivery: `envelope` (as a subscription yields it), `info`, and its settlement.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
pub struct Delivery {
    envelope: Py<PyAny>,
    info: Py<PyAny>,
    ack: DeliveryAck,
}

fn delivery_out(d: natsbridge::io::Delivery) -> Out {
    out(move |py| {
        let envelope = received_out(d.received).into_pyobject(py)?.unbind();
        let info = from_json(py, &d.info.to_json())?.unbind();
        Ok(Bound::new(py, Delivery { envelope, info, ack: d.ack })?.into_any())
    })
}

async fn next_delivery(inner: Shared, timeout: Option<Duration>) -> PyResult<Option<Out>> {
    let mut guard = inner.consumer.lock().await;
    let Some(consumer) = guard.as_mut() else { return Ok(None) };
    let item = match timeout {
        Some(t) => consumer.next_timeout(t).await,
        None => consumer.next().await,
    };
    match item {
        None => {
            *guard = None;
            Ok(None)
        }
        Some(r) => r.map(|d| Some(delivery_out(d))).map_err(to_py),
    }
}

/// Drops core's consumer: its pull ends and the durable stays on the server, where a new
/// consumer of the same name resumes. A pending `next` returns None.
async fn stop(inner: Shared) {
    inner.stopper.stop();
    drop(inner.consumer.lock().await.take());
}

#[pymethods]
impl Consumer {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        runtime::eager_future_into_py(py, async move {
            next_delivery(inner, None).await?.ok_or_else(|| PyStopAsyncIteration::new_err(()))
        })
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match runtime::block_on(py, next_delivery(self.inner.clone(), None))? {
            Some(d) => d.into_pyobject(py),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// The next delivery, None once the connection is closed; TimeoutError (code TIMEOUT) when
    /// nothing arrives within `timeout` seconds.
    #[pyo3(signature = (timeout=None))]
    fn next<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, timeout) = (self.inner.clone(), opt_timeout(timeout)?);
        runtime::eager_future_into_py(
            py,
            async move { Ok(next_delivery(inner, timeout).await?.unwrap_or_else(none_out)) },
        )
    }

    #[pyo3(signature = (timeout=None))]
    fn next_sync<'py>(&self, py: Python<'py>, timeout: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = opt_timeout(timeout)?;
        runtime::block_on(py, next_delivery(self.inner.clone(), timeout))?.unwrap_or_else(none_out).into_pyobject(py)
    }

    /// Stops pulling; a pending and every later `next` returns None. The durable consumer stays
    /// on the server.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        runtime::future_into_py(py, async move {
            stop(inner).await;
            Ok(none_out())
        })
    }

    fn stop_sync(&self, py: Python<'_>) -> PyResult<()> {
        runtime::block_on(py, async {
            stop(self.inner.clone()).await;
            Ok(())
        })
    }
}

fn nak_delay(delay: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    opt_seconds("delay", delay)
}

#[pymethods]
impl Delivery {
    #[getter]
    fn envelope(&self, py: Python<'_>) -> Py<PyAny> {
        self.envelope.clone_ref(py)
    }

    #[getter]
    fn info(&self, py: Python<'_>) -> Py<PyAny> {
        self.info.clone_ref(py)
    }

    fn ack<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ack = self.ack.clone();
        runtime::future_into_py(py, async move { ack.ack().await.map_err(to_py).map(|_| none_out()) })
    }

    fn ack_sync(&self, py: Python<'_>) -> PyResult<()> {
        runtime::block_on(py, async { self.ack.ack().await.map_err(to_py) })
    }

    #[pyo3(signature = (delay=None))]
    fn nak<'py>(&self, py: Python<'py>, delay: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let (ack, delay) = (self.ack.clone(), nak_delay(delay)?);
        runtime::future_into_py(py, async move { ack.nak(delay).await.map_err(to_py).map(|_| none_out()) })
    }

    #[pyo3(signature = (delay=None))]
    fn nak_sync(&self, py: Python<'_>, delay: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let delay = nak_delay(delay)?;
        runtime::block_on(py, async { self.ack.nak(delay).await.map_err(to_py) })
    }

    fn in_progress<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ack = self.ack.clone();
        runtime::future_into_py(py, async move { ack.in_progress().await.map_err(to_py).map(|_| none_out()) })
    }

    fn in_progress_sync(&self, py: Python<'_>) -> PyResult<()> {
        runtime::block_on(py, async { self.ack.in_progress().await.map_err(to_py) })
    }

    fn term<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ack = self.ack.clone();
        runtime::future_into_py(py, async move { ack.term().await.map_err(to_py).map(|_| none_out()) })
    }

    fn term_sync(&self, py: Python<'_>) -> PyResult<()> {
        runtime::block_on(py, async { self.ack.term().await.map_err(to_py) })
    }
}

pub(crate) async fn add_stream(client: Client, settings: StreamSettings) -> PyResult<Out> {
    let summary = client.add_stream(&settings).await.map_err(to_py)?;
    Ok(json_out(summary.to_json(TimeUnit::Seconds)))
}

pub(crate) async fn consume(
    client: Client,
    stream: String,
    durable: String,
    opts: ConsumeOptions,
) -> PyResult<Consumer> {
    let consumer = client.consume(&stream, &durable, opts).await.map_err(to_py)?;
    let state = ConsumerState { stopper: consumer.stopper(), consumer: tokio::sync::Mutex::new(Some(consumer)) };
    Ok(Consumer { inner: Arc::new(state) })
}

pub(crate) async fn sweep(client: Client, stream: String, min_age: Option<Duration>, dry_run: bool) -> PyResult<Out> {
    let report = client.sweep_links(&stream, min_age, dry_run).await.map_err(to_py)?;
    Ok(json_out(report.to_json(TimeUnit::Seconds)))
}

pub(crate) fn stream_settings(name: &str, opts: Option<&Bound<'_, PyDict>>) -> PyResult<StreamSettings> {
    StreamSettings::from_json(name, &json_options(opts)?, TimeUnit::Seconds).map_err(to_py)
}

pub(crate) fn consume_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<ConsumeOptions> {
    ConsumeOptions::from_json(&json_options(opts)?, TimeUnit::Seconds).map_err(to_py)
}
