//! The result of a send: `(env, msg_json)`, each made into a Python object the first time it is
//! read. Most senders ignore the result, and building both cost a 100-byte send a sixth of its
//! time and a 1 MB direct send two copies of its base64 into Python strings.

use crate::convert;
use natsbridge::protocol::Sent;
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

/// Unpacks, indexes and compares as the tuple `(env, msg_json)`; `.env` and `.msg_json` name them.
#[pyclass(module = "natsbridge", name = "SendResult", frozen, sequence)]
pub struct SendResult {
    sent: Sent,
    env: PyOnceLock<Py<PyDict>>,
    msg_json: PyOnceLock<Py<PyString>>,
}

impl SendResult {
    pub fn new(sent: Sent) -> SendResult {
        SendResult { sent, env: PyOnceLock::new(), msg_json: PyOnceLock::new() }
    }

    fn pair<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [self.env(py)?.into_any(), self.msg_json(py).into_any()])
    }
}

#[pymethods]
impl SendResult {
    /// The sent envelope as a dict with the wire payload objects (and `pub_ack` in JetStream mode).
    #[getter]
    fn env<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let env = self.env.get_or_try_init(py, || {
            let env = convert::sent_envelope(py, &self.sent)?;
            if let Some(ack) = &self.sent.pub_ack {
                env.set_item("pub_ack", convert::from_json(py, &serde_json::to_value(ack).expect("plain data"))?)?;
            }
            Ok::<_, PyErr>(env.unbind())
        })?;
        Ok(env.bind(py).clone())
    }

    /// The exact JSON published.
    #[getter]
    fn msg_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.msg_json.get_or_init(py, || PyString::new(py, self.sent.json_str()).unbind()).bind(py).clone()
    }

    fn __len__(&self) -> usize {
        2
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        match index {
            0 | -2 => Ok(self.env(py)?.into_any()),
            1 | -1 => Ok(self.msg_json(py).into_any()),
            _ => Err(PyIndexError::new_err("SendResult index out of range (it is (env, msg_json))")),
        }
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.pair(py)?.try_iter().map(Bound::into_any)
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(other) = other.cast::<SendResult>() {
            return self.pair(py)?.eq(other.get().pair(py)?);
        }
        self.pair(py)?.eq(other)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("SendResult{}", self.pair(py)?.repr()?))
    }
}
