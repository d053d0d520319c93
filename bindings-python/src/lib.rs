//! `natsbridge._natsbridge`: the private native module under the `natsbridge` package.
//! It converts types and maps errors; the protocol, its rules and all I/O are core's.
//!
//! Naming rule: every call that waits has an async form (`smartsend`) returning an awaitable
//! and a blocking twin with the suffix `_sync` (`smartsend_sync`) that releases the GIL.

mod completion;
mod connection;
mod convert;
mod durable;
mod errors;
mod handlers;
mod link_stream;
mod one_call;
mod options;
mod runtime;
mod sent;
mod subscription;

use natsbridge::error::ErrorCode;
use natsbridge::protocol::durable::{ConsumeOptionName, StreamOptionName};
use natsbridge::protocol::{self, OptionName, Received, SendOptionName, Sent};
use pyo3::prelude::*;

type MakeObject = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

/// A value made into a Python object once the GIL is held (the result of an awaitable).
struct Out(MakeObject);

impl<'py> IntoPyObject<'py> for Out {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (self.0)(py)
    }
}

fn out(f: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send + 'static) -> Out {
    Out(Box::new(f))
}

/// `(env, msg_json)`, built when read ([`sent::SendResult`]).
fn sent_out(sent: Sent) -> Out {
    out(move |py| Ok(Bound::new(py, sent::SendResult::new(sent))?.into_any()))
}

fn received_out(r: Received) -> Out {
    out(move |py| Ok(convert::received(py, &r)?.into_any()))
}

fn none_out() -> Out {
    out(|py| Ok(py.None().into_bound(py)))
}

/// The code strings, in core's order.
#[pyfunction]
fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// Hands core's finished spans to `sink(batch)`, a JSON array of spans as text
/// (`natsbridge::io::span_export`), from a thread of core's that takes the GIL for the call.
/// An exception in `sink` is reported as unraisable; after the interpreter began to shut down,
/// spans are dropped.
#[pyfunction]
fn export_spans(sink: Py<PyAny>) -> PyResult<()> {
    let sink = std::sync::Arc::new(move |batch: String| {
        Python::try_attach(|py| {
            if let Err(e) = sink.call1(py, (batch,)) {
                e.write_unraisable(py, None);
            }
        });
    });
    natsbridge::io::span_export::export_spans(sink).map_err(errors::to_py)
}

#[pymodule]
fn _natsbridge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<connection::Connection>()?;
    m.add_class::<subscription::Subscription>()?;
    m.add_class::<durable::Consumer>()?;
    m.add_class::<durable::Delivery>()?;
    m.add_class::<sent::SendResult>()?;
    m.add_class::<link_stream::LinkStream>()?;
    m.add_function(wrap_pyfunction!(one_call::smartsend, m)?)?;
    m.add_function(wrap_pyfunction!(one_call::smartsend_sync, m)?)?;
    m.add_function(wrap_pyfunction!(one_call::smartreceive, m)?)?;
    m.add_function(wrap_pyfunction!(one_call::smartreceive_sync, m)?)?;
    m.add_function(wrap_pyfunction!(connection::connect, m)?)?;
    m.add_function(wrap_pyfunction!(connection::connect_sync, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(export_spans, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::before_exit, m)?)?;
    m.add("PAYLOAD_TYPES", protocol::PayloadType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>())?;
    m.add("MSG_PURPOSES", protocol::msg_purpose::ALL.to_vec())?;
    m.add("DEFAULT_SIZE_THRESHOLD", protocol::DEFAULT_SIZE_THRESHOLD)?;
    // Core's option vocabulary, for the public layer and its test to check names against.
    m.add("OPTION_NAMES", OptionName::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>())?;
    m.add("SEND_OPTION_NAMES", SendOptionName::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>())?;
    m.add("STREAM_OPTION_NAMES", StreamOptionName::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>())?;
    m.add("CONSUME_OPTION_NAMES", ConsumeOptionName::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
