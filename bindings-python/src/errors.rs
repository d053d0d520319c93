//! Core's error codes as Python exceptions: one base class, one subclass per code, each instance
//! carrying `.code` and `.correlation_id`. `InvalidArgumentError` (a caller mistake) is also a
//! `ValueError`, so code that catches ValueError for bad arguments keeps working.

use natsbridge::error::{Error, ErrorCode};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

create_exception!(_natsbridge, NATSBridgeError, PyException, "Base class of every NATSBridge error.");
create_exception!(_natsbridge, InvalidPayloadTypeError, NATSBridgeError, "INVALID_PAYLOAD_TYPE");
create_exception!(_natsbridge, UploadFailedError, NATSBridgeError, "UPLOAD_FAILED");
create_exception!(_natsbridge, DownloadFailedError, NATSBridgeError, "DOWNLOAD_FAILED");
create_exception!(_natsbridge, InvalidTransportError, NATSBridgeError, "INVALID_TRANSPORT");
create_exception!(_natsbridge, NatsConnectionFailedError, NATSBridgeError, "NATS_CONNECTION_FAILED");
create_exception!(_natsbridge, DeserializationError, NATSBridgeError, "DESERIALIZATION_ERROR");
create_exception!(_natsbridge, InvalidEnvelopeError, NATSBridgeError, "INVALID_ENVELOPE");
create_exception!(_natsbridge, ChecksumMismatchError, NATSBridgeError, "CHECKSUM_MISMATCH");
create_exception!(_natsbridge, PayloadTooLargeError, NATSBridgeError, "PAYLOAD_TOO_LARGE");
create_exception!(_natsbridge, UrlNotAllowedError, NATSBridgeError, "URL_NOT_ALLOWED");
create_exception!(_natsbridge, TimeoutError, NATSBridgeError, "TIMEOUT");

/// `InvalidArgumentError(NATSBridgeError, ValueError)`: two bases, which `create_exception!`
/// cannot make, so it is made with `type()` once per process.
static INVALID_ARGUMENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn invalid_argument_class(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    let cls = INVALID_ARGUMENT.get_or_try_init(py, || {
        let bases = PyTuple::new(py, [py.get_type::<NATSBridgeError>(), py.get_type::<PyValueError>()])?;
        let attrs = PyDict::new(py);
        attrs.set_item("__module__", "natsbridge._natsbridge")?;
        attrs.set_item("__doc__", "INVALID_ARGUMENT")?;
        let made = py.get_type::<PyType>().call1(("InvalidArgumentError", bases, attrs))?;
        Ok::<_, PyErr>(made.cast_into::<PyType>()?.unbind())
    })?;
    Ok(cls.bind(py).clone())
}

/// The exception class of a code. No `_ =>` arm: a new code in core breaks this build.
fn class(py: Python<'_>, code: ErrorCode) -> PyResult<Bound<'_, PyType>> {
    Ok(match code {
        ErrorCode::InvalidPayloadType => py.get_type::<InvalidPayloadTypeError>(),
        ErrorCode::UploadFailed => py.get_type::<UploadFailedError>(),
        ErrorCode::DownloadFailed => py.get_type::<DownloadFailedError>(),
        ErrorCode::InvalidTransport => py.get_type::<InvalidTransportError>(),
        ErrorCode::NatsConnectionFailed => py.get_type::<NatsConnectionFailedError>(),
        ErrorCode::DeserializationError => py.get_type::<DeserializationError>(),
        ErrorCode::InvalidEnvelope => py.get_type::<InvalidEnvelopeError>(),
        ErrorCode::ChecksumMismatch => py.get_type::<ChecksumMismatchError>(),
        ErrorCode::PayloadTooLarge => py.get_type::<PayloadTooLargeError>(),
        ErrorCode::UrlNotAllowed => py.get_type::<UrlNotAllowedError>(),
        ErrorCode::Timeout => py.get_type::<TimeoutError>(),
        ErrorCode::InvalidArgument => return invalid_argument_class(py),
    })
}

/// Converts a core error (takes the GIL if the caller does not hold it).
pub fn to_py(e: Error) -> PyErr {
    Python::attach(|py| match build(py, &e) {
        Ok(err) => err,
        Err(err) => err,
    })
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let value = class(py, e.code)?.call1((e.to_string(),))?;
    value.setattr("code", e.code.as_str())?;
    value.setattr("correlation_id", e.correlation_id.as_deref())?;
    Ok(PyErr::from_value(value))
}

/// A binding-side error with a code (bad input found while converting Python values).
pub fn coded(code: ErrorCode, message: impl Into<String>) -> PyErr {
    to_py(Error::new(code, message))
}

/// A caller mistake: INVALID_ARGUMENT.
pub fn invalid(message: impl Into<String>) -> PyErr {
    coded(ErrorCode::InvalidArgument, message)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("NATSBridgeError", py.get_type::<NATSBridgeError>())?;
    for &code in ErrorCode::ALL {
        let cls = class(py, code)?;
        m.add(cls.name()?, &cls)?;
        cls.setattr("code", code.as_str())?;
    }
    Ok(())
}
