//! Link payloads received as streams (spec/PROTOCOL.md §8.3.2): read in chunks or saved to a
//! file, never whole in memory, checked against the envelope's size and sha256 at the end.

use crate::errors::to_py;
use crate::{Out, out, runtime};
use bytes::Bytes;
use natsbridge::error::Result as CoreResult;
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;
use std::sync::Arc;

type Shared = Arc<tokio::sync::Mutex<natsbridge::io::LinkStream>>;

/// A link payload's bytes as they arrive: `for chunk in link` / `async for chunk in link`, or
/// `save(path)` / `save_sync(path)`. The last read checks size and sha256: an iteration that
/// ends without an error delivered exactly the sender's bytes; `save` writes `<path>.partial`
/// and renames it once they are checked, else removes it.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
pub struct LinkStream {
    #[pyo3(get)]
    dataname: String,
    #[pyo3(get)]
    payload_type: &'static str,
    /// The envelope's size in bytes.
    #[pyo3(get)]
    size: u64,
    stream: Shared,
}

impl LinkStream {
    pub fn new(stream: natsbridge::io::LinkStream) -> LinkStream {
        LinkStream {
            dataname: stream.dataname().to_owned(),
            payload_type: stream.payload_type().as_str(),
            size: stream.size(),
            stream: Arc::new(tokio::sync::Mutex::new(stream)),
        }
    }
}

async fn next_chunk(stream: Shared) -> CoreResult<Option<Bytes>> {
    stream.lock().await.next_chunk().await
}

fn chunk_out(chunk: Bytes) -> Out {
    out(move |py| Ok(PyBytes::new(py, &chunk).into_any()))
}

#[pymethods]
impl LinkStream {
    /// The bytes' sha256 (hex) once every byte was read and checked; None before.
    #[getter]
    fn sha256(&self) -> Option<String> {
        self.stream.try_lock().ok().and_then(|s| s.sha256().map(str::to_owned))
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next chunk (bytes), waiting with the GIL released.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match runtime::block_on(py, async { next_chunk(self.stream.clone()).await.map_err(to_py) })? {
            Some(chunk) => Ok(PyBytes::new(py, &chunk)),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.stream.clone();
        runtime::future_into_py(py, async move {
            match next_chunk(stream).await.map_err(to_py)? {
                Some(chunk) => Ok(chunk_out(chunk)),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    /// Writes the bytes to `path` as they arrive; the number of bytes written.
    fn save<'py>(&self, py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let stream = self.stream.clone();
        runtime::future_into_py(py, async move { stream.lock().await.save(&path).await.map_err(to_py) })
    }

    fn save_sync(&self, py: Python<'_>, path: PathBuf) -> PyResult<u64> {
        runtime::block_on(py, async { self.stream.lock().await.save(&path).await.map_err(to_py) })
    }
}
