//! Python values to core types and back. Conversion only: every rule about payloads lives in core.

use crate::errors::{coded, to_py};
use crate::link_stream::LinkStream;
use bytes::Bytes;
use natsbridge::error::ErrorCode;
use natsbridge::io::{Arrival, ByteSource, StreamedMessage, StreamedPayload};
use natsbridge::protocol::{
    Data, EnvelopeView, ErrorBody, HEADER_FIELDS, HostValue, Incoming, Outgoing, PayloadType, Received, Sent,
    TraceContext, Transport,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple};
use serde_json::{Map, Number, Value};

fn bad(message: impl Into<String>) -> PyErr {
    coded(ErrorCode::InvalidPayloadType, message)
}

/// bytes and bytearray are borrowed by the returned `Bytes` where possible (bytes: no copy);
/// memoryview and other buffers are copied once.
pub fn bytes_like(obj: &Bound<'_, PyAny>) -> PyResult<Option<Bytes>> {
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        let b: PyBackedBytes = obj.extract()?;
        return Ok(Some(Bytes::from_owner(b)));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.call_method0("tobytes")?.cast_into::<PyBytes>()?;
        return Ok(Some(Bytes::from_owner(PyBackedBytes::from(b))));
    }
    Ok(None)
}

/// A JSON value from dicts, lists, tuples, str, int, float, bool and None; what is not JSON is
/// an error with `code` (INVALID_PAYLOAD_TYPE for a payload, INVALID_ARGUMENT for an option).
pub fn to_json(obj: &Bound<'_, PyAny>, code: ErrorCode) -> PyResult<Value> {
    json_value(obj, 0, &|message| coded(code, message))
}

fn json_value(obj: &Bound<'_, PyAny>, depth: usize, bad: &dyn Fn(String) -> PyErr) -> PyResult<Value> {
    if depth > 512 {
        return Err(bad("JSON value nested deeper than 512 levels".into()));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(bad(format!("integer {obj} does not fit in 64 bits")));
    }
    if obj.is_instance_of::<PyFloat>() {
        let f: f64 = obj.extract()?;
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| bad(format!("{f} is not a JSON number (NaN and infinities are not allowed)")));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(bad(format!("JSON object keys must be str, not {}", k.get_type().name()?)));
            };
            map.insert(key.to_str()?.to_owned(), json_value(&v, depth + 1, bad)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l.iter().map(|v| json_value(&v, depth + 1, bad)).collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t.iter().map(|v| json_value(&v, depth + 1, bad)).collect::<PyResult<Vec<_>>>().map(Value::Array);
    }
    // numpy scalars and arrays (np.int64, np.bool_, ndarray) as the Python values `tolist` gives,
    // as pandas' own JSON export treats them.
    let ty = obj.get_type();
    if ty.module().is_ok_and(|m| m.to_str().is_ok_and(|m| m == "numpy" || m.starts_with("numpy.")))
        && let Ok(plain) = obj.call_method0("tolist")
        && !plain.get_type().is(&ty)
    {
        return json_value(&plain, depth + 1, bad);
    }
    Err(bad(format!("a {} is not JSON-serializable", ty.name()?)))
}

/// One `(dataname, data, payload_type)` tuple to an [`Outgoing`], by core's rule for host
/// values: bytes-like, str, or anything else as a JSON value; and an `os.PathLike` (a
/// `pathlib.Path`) is a file whose bytes are read only while they are sent.
pub fn outgoing(item: &Bound<'_, PyAny>) -> PyResult<Outgoing> {
    let (dataname, data, payload_type): (String, Bound<'_, PyAny>, String) = item.extract().map_err(|_| {
        bad(format!("each payload must be a (dataname, data, payload_type) tuple, not {}", describe(item)))
    })?;
    let py = data.py();
    let value = if let Some(b) = bytes_like(&data)? {
        HostValue::Bytes(b)
    } else if let Ok(s) = data.cast::<PyString>() {
        HostValue::Text(s.to_str()?.to_owned())
    } else if data.is_instance_of::<PyDict>() || data.is_instance_of::<PyList>() {
        HostValue::Json(to_json(&data, ErrorCode::InvalidPayloadType)?)
    } else if data.hasattr(intern!(py, "__fspath__"))? {
        // Paths and file objects are looked for after the common types: an attribute a value
        // lacks costs an AttributeError, over a microsecond of a small send.
        let path: std::path::PathBuf = data.extract()?;
        let source = ByteSource::file(&path).map_err(to_py)?;
        return Outgoing::from_source(dataname, &payload_type, source).map_err(to_py);
    } else if data.hasattr(intern!(py, "read"))? {
        return Outgoing::from_source(dataname, &payload_type, file_object_source(&data)?).map_err(to_py);
    } else {
        HostValue::Json(to_json(&data, ErrorCode::InvalidPayloadType)?)
    };
    Outgoing::from_host(dataname, &payload_type, value).map_err(to_py)
}

/// A binary file object (`open(path, "rb")`, `io.BytesIO`, ...) as core's blocking reader: its
/// size is what is left from its position to its end, so it must be able to seek; `read(n)` is
/// then called with the GIL from core's blocking threads while the send reads it.
fn file_object_source(file: &Bound<'_, PyAny>) -> PyResult<ByteSource> {
    let py = file.py();
    let invalid = |why: String| coded(ErrorCode::InvalidArgument, why);
    let seekable = file.hasattr(intern!(py, "seekable"))? && file.call_method0(intern!(py, "seekable"))?.is_truthy()?;
    if !seekable {
        return Err(invalid(format!(
            "a {} that cannot seek has no size to send: read it into bytes, or write it to a file and send its path",
            describe(file)
        )));
    }
    let at: u64 = file.call_method0(intern!(py, "tell"))?.extract()?;
    let end: u64 = file.call_method1(intern!(py, "seek"), (0, 2))?.extract()?;
    file.call_method1(intern!(py, "seek"), (at, 0))?;
    let size = end.checked_sub(at).ok_or_else(|| invalid("the file object is positioned past its end".into()))?;
    let file = file.clone().unbind();
    Ok(ByteSource::blocking_reader(
        move |buf: &mut [u8]| {
            Python::attach(|py| {
                let chunk = file.bind(py).call_method1(intern!(py, "read"), (buf.len(),))?;
                let chunk = chunk.cast_into::<PyBytes>().map_err(|e| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "read() gave a {}, not bytes: open the file in binary mode",
                        e.into_inner().get_type().name().map(|n| n.to_string()).unwrap_or_default()
                    ))
                })?;
                let chunk = chunk.as_bytes();
                let asked = buf.len();
                let into = buf.get_mut(..chunk.len()).ok_or_else(|| {
                    pyo3::exceptions::PyValueError::new_err(format!("read({asked}) gave {} bytes", chunk.len()))
                })?;
                into.copy_from_slice(chunk);
                Ok::<_, PyErr>(chunk.len())
            })
            .map_err(|e| std::io::Error::other(e.to_string()))
        },
        size,
    ))
}

fn describe(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

pub fn outgoing_list(payloads: &Bound<'_, PyAny>) -> PyResult<Vec<Outgoing>> {
    if payloads.is_instance_of::<PyString>() || payloads.is_instance_of::<PyDict>() {
        return Err(bad("payloads must be a list of (dataname, data, payload_type) tuples"));
    }
    let mut out = Vec::new();
    for item in payloads.try_iter().map_err(|_| bad("payloads must be a list of tuples"))? {
        out.push(outgoing(&item?)?);
    }
    Ok(out)
}

/// A JSON value as Python objects.
pub fn from_json<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(from_json(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(m) => object(py, m)?.into_any(),
    })
}

fn object<'py>(py: Python<'py>, m: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, from_json(py, v)?)?;
    }
    Ok(d)
}

fn data<'py>(py: Python<'py>, d: &Data) -> PyResult<Bound<'py, PyAny>> {
    Ok(match d {
        Data::Text(s) => PyString::new(py, s).into_any(),
        Data::Json(v) => from_json(py, v)?,
        // Arrow IPC bytes: the Python layer turns them into a table.
        Data::JsonBytes(b) | Data::Arrow(b) | Data::Bytes(b) => PyBytes::new(py, b).into_any(),
    })
}

/// The header keys, made once per interpreter.
static HEADER_KEYS: PyOnceLock<[Py<PyString>; 12]> = PyOnceLock::new();

/// The envelope's header fields (the seeds' names, core's order), `metadata` and `error` into `d`.
fn header(
    py: Python<'_>,
    d: &Bound<'_, PyDict>,
    fields: [(&str, &str); 12],
    metadata: &Map<String, Value>,
    error: Option<&ErrorBody>,
) -> PyResult<()> {
    let keys = HEADER_KEYS.get_or_init(py, || HEADER_FIELDS.map(|k| PyString::intern(py, k).unbind()));
    for (key, (_, value)) in keys.iter().zip(fields) {
        d.set_item(key.bind(py), value)?;
    }
    d.set_item(intern!(py, "metadata"), object(py, metadata)?)?;
    if let Some(err) = error {
        let body = PyDict::new(py);
        body.set_item(intern!(py, "code"), &err.code)?;
        body.set_item(intern!(py, "message"), &err.message)?;
        body.set_item(intern!(py, "details"), from_json(py, &err.details)?)?;
        d.set_item(intern!(py, "error"), body)?;
    }
    Ok(())
}

/// Payload `i` of a sent envelope as its wire object; a direct payload's `data` is read from the
/// sent JSON (core writes the base64 there only).
fn wire_payload<'py>(py: Python<'py>, sent: &Sent, i: usize) -> PyResult<Bound<'py, PyDict>> {
    let p = &sent.envelope.payloads[i];
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), &p.id)?;
    d.set_item(intern!(py, "dataname"), &p.dataname)?;
    d.set_item(intern!(py, "payload_type"), &p.payload_type)?;
    d.set_item(intern!(py, "transport"), &p.transport)?;
    d.set_item(intern!(py, "encoding"), &p.encoding)?;
    d.set_item(intern!(py, "size"), p.size)?;
    match sent.payload_data(i) {
        Some(text) => d.set_item(intern!(py, "data"), text)?,
        None => d.set_item(intern!(py, "data"), from_json(py, &p.data)?)?,
    }
    d.set_item(intern!(py, "metadata"), object(py, &p.metadata)?)?;
    Ok(d)
}

/// A sent envelope as a dict with the wire payload objects.
pub fn sent_envelope<'py>(py: Python<'py>, sent: &Sent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let e = &sent.envelope;
    header(py, &d, e.header(), &e.metadata, e.error.as_ref())?;
    let payloads = PyList::empty(py);
    for i in 0..sent.envelope.payloads.len() {
        payloads.append(wire_payload(py, sent, i)?)?;
    }
    d.set_item(intern!(py, "payloads"), payloads)?;
    Ok(d)
}

/// The payload type's name, made once per interpreter.
fn payload_type_str(py: Python<'_>, t: PayloadType) -> &Bound<'_, PyString> {
    match t {
        PayloadType::Text => intern!(py, "text"),
        PayloadType::Dictionary => intern!(py, "dictionary"),
        PayloadType::ArrowTable => intern!(py, "arrowtable"),
        PayloadType::JsonTable => intern!(py, "jsontable"),
        PayloadType::Image => intern!(py, "image"),
        PayloadType::Audio => intern!(py, "audio"),
        PayloadType::Video => intern!(py, "video"),
        PayloadType::Binary => intern!(py, "binary"),
    }
}

/// A received message: the header fields, `payloads` as `(dataname, data, payload_type)`
/// tuples, `transports` (one per payload: "direct" or "link"), `subject` / `reply` when the
/// message came from a subscription, and `trace_headers` when it carried a trace context.
pub fn received<'py>(py: Python<'py>, r: &Received) -> PyResult<Bound<'py, PyDict>> {
    let e = &r.envelope;
    let d = PyDict::new(py);
    header(py, &d, e.header(), &e.metadata, e.error.as_ref())?;
    received_payloads(py, &d, r.payloads.iter().map(|p| incoming(py, p)))?;
    route(py, &d, r.subject.as_deref(), r.reply.as_deref())?;
    trace_headers(py, &d, r.trace.as_ref())?;
    Ok(d)
}

/// [`received`] of a message decoded as a view (no owned envelope in between).
pub fn received_view<'py>(
    py: Python<'py>,
    e: &EnvelopeView<'_>,
    payloads: &[Incoming],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    header(py, &d, e.header(), e.metadata(), e.error())?;
    received_payloads(py, &d, payloads.iter().map(|p| incoming(py, p)))?;
    Ok(d)
}

/// [`received`] of a message taken off a subscription.
pub fn arrival<'py>(py: Python<'py>, a: &Arrival) -> PyResult<Bound<'py, PyDict>> {
    match a {
        Arrival::Direct { message, subject, reply, trace } => {
            let d = received_view(py, message.envelope(), &message.payloads)?;
            route(py, &d, Some(subject), reply.as_deref())?;
            trace_headers(py, &d, trace.as_deref())?;
            Ok(d)
        }
        Arrival::Received(r) => received(py, r),
    }
}

/// The sender's trace context as W3C headers, a carrier `opentelemetry.propagate.extract` takes.
fn trace_headers(py: Python<'_>, d: &Bound<'_, PyDict>, trace: Option<&TraceContext>) -> PyResult<()> {
    let Some(trace) = trace else { return Ok(()) };
    let carrier = PyDict::new(py);
    for (name, value) in trace.w3c_headers() {
        carrier.set_item(name, value)?;
    }
    d.set_item(intern!(py, "trace_headers"), carrier)
}

fn route(py: Python<'_>, d: &Bound<'_, PyDict>, subject: Option<&str>, reply: Option<&str>) -> PyResult<()> {
    if let Some(s) = subject {
        d.set_item(intern!(py, "subject"), s)?;
    }
    if let Some(s) = reply {
        d.set_item(intern!(py, "reply"), s)?;
    }
    Ok(())
}

/// A message whose link payloads are streamed: as [`received`], with each link payload's data a
/// [`crate::link_stream::LinkStream`] (nothing is fetched until it is read).
pub fn streamed<'py>(py: Python<'py>, m: StreamedMessage) -> PyResult<Bound<'py, PyDict>> {
    let e = &m.envelope;
    let d = PyDict::new(py);
    header(py, &d, e.header(), &e.metadata, e.error.as_ref())?;
    let payloads = m.payloads.into_iter().map(|p| match p {
        StreamedPayload::Value(p) => incoming(py, &p),
        StreamedPayload::Link(link) => {
            let (dataname, payload_type) = (PyString::new(py, link.dataname()), link.payload_type());
            Ok((dataname, Bound::new(py, LinkStream::new(*link))?.into_any(), payload_type, Transport::Link))
        }
    });
    received_payloads(py, &d, payloads)?;
    route(py, &d, m.subject.as_deref(), m.reply.as_deref())?;
    trace_headers(py, &d, m.trace.as_ref())?;
    Ok(d)
}

fn transport_str(py: Python<'_>, t: Transport) -> &Bound<'_, PyString> {
    match t {
        Transport::Direct => intern!(py, "direct"),
        Transport::Link => intern!(py, "link"),
    }
}

/// One payload as `received_payloads` takes it: dataname, data, payload_type, transport.
type PayloadOut<'py> = (Bound<'py, PyString>, Bound<'py, PyAny>, PayloadType, Transport);

fn incoming<'py>(py: Python<'py>, p: &Incoming) -> PyResult<PayloadOut<'py>> {
    Ok((PyString::new(py, &p.dataname), data(py, &p.data)?, p.payload_type, p.transport))
}

/// `payloads` as `(dataname, data, payload_type)` tuples and `transports`, into `d`.
fn received_payloads<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    received: impl Iterator<Item = PyResult<PayloadOut<'py>>>,
) -> PyResult<()> {
    let payloads = PyList::empty(py);
    let transports = PyList::empty(py);
    for p in received {
        let (dataname, data, payload_type, transport) = p?;
        payloads.append(PyTuple::new(
            py,
            [dataname.into_any(), data, payload_type_str(py, payload_type).clone().into_any()],
        )?)?;
        transports.append(transport_str(py, transport))?;
    }
    d.set_item(intern!(py, "payloads"), payloads)?;
    d.set_item(intern!(py, "transports"), transports)?;
    Ok(())
}
