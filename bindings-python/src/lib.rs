//! `natsbridge._natsbridge`: the private native module under the `natsbridge` package.
//! It converts types and maps errors; the protocol and all I/O are core's (DESIGN §8).
//!
//! Naming rule: every call that waits has an async form (`smartsend`) returning an awaitable
//! and a blocking twin with the suffix `_sync` (`smartsend_sync`) that releases the GIL.

mod convert;
mod errors;
mod runtime;

use bytes::Bytes;
use convert::{outgoing_list, send_options};
use errors::to_py;
use natsbridge::error::{ErrorCode, Result as CoreResult};
use natsbridge::io::store::RetryPolicy;
use natsbridge::io::{Client, ConnectOptions, Received, Sent};
use natsbridge::protocol;
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::sync::Arc;
use std::time::Duration;

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

fn sent_out(sent: Sent) -> Out {
    out(move |py| {
        let env = convert::sent_envelope(py, &sent.envelope)?;
        let json = PyString::new(py, sent.json_str());
        Ok(PyTuple::new(py, [env.into_any(), json.into_any()])?.into_any())
    })
}

fn received_out(r: Received) -> Out {
    out(move |py| Ok(convert::received(py, &r)?.into_any()))
}

fn none_out() -> Out {
    out(|py| Ok(py.None().into_bound(py)))
}

fn opt_str(opts: Option<&Bound<'_, PyDict>>, key: &str) -> PyResult<Option<String>> {
    match opts.map(|o| o.get_item(key)).transpose()?.flatten() {
        Some(v) if !v.is_none() => Ok(Some(v.extract()?)),
        _ => Ok(None),
    }
}

/// Where a one-call send or receive goes: an explicit connection, else the process-wide client
/// for `broker_url` (else `NATS_URL`, else the default).
#[derive(Clone)]
enum Target {
    Conn(Client),
    Shared { url: String, fileserver_url: Option<String> },
}

impl Target {
    fn from_opts(conn: Option<&Connection>, opts: Option<&Bound<'_, PyDict>>) -> PyResult<Target> {
        if let Some(c) = conn {
            return Ok(Target::Conn(c.client.clone()));
        }
        let url = match opt_str(opts, "broker_url")? {
            Some(u) => u,
            None => ConnectOptions::default().resolved_servers().join(","),
        };
        Ok(Target::Shared { url, fileserver_url: opt_str(opts, "fileserver_url")? })
    }

    async fn client(&self) -> CoreResult<Client> {
        match self {
            Target::Conn(c) => Ok(c.clone()),
            Target::Shared { url, fileserver_url } => runtime::shared_client(url, fileserver_url.as_deref()).await,
        }
    }
}

/// The send options minus the one-call keys (broker_url, fileserver_url) the target took.
fn split_send_opts<'py>(opts: Option<&Bound<'py, PyDict>>) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(opts) = opts else { return Ok(None) };
    let rest = opts.copy()?;
    for key in ["broker_url", "fileserver_url"] {
        if rest.contains(key)? {
            rest.del_item(key)?;
        }
    }
    Ok(Some(rest))
}

type SendArgs = (Target, String, Vec<natsbridge::io::Outgoing>, natsbridge::io::SendOptions);

fn send_args(
    subject: &str,
    payloads: &Bound<'_, PyAny>,
    conn: Option<&Connection>,
    opts: Option<&Bound<'_, PyDict>>,
) -> PyResult<SendArgs> {
    let target = Target::from_opts(conn, opts)?;
    let payloads = outgoing_list(payloads)?;
    let send = send_options(split_send_opts(opts)?.as_ref())?;
    Ok((target, subject.to_owned(), payloads, send))
}

async fn do_send((target, subject, payloads, opts): SendArgs) -> PyResult<Out> {
    let client = target.client().await.map_err(to_py)?;
    client.smartsend(&subject, payloads, &opts).await.map(sent_out).map_err(to_py)
}

/// Sends payloads as one envelope. Returns an awaitable of `(env, msg_json)`.
#[pyfunction]
#[pyo3(signature = (subject, payloads, conn=None, opts=None))]
fn smartsend<'py>(
    py: Python<'py>,
    subject: &str,
    payloads: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = send_args(subject, payloads, conn.as_deref(), opts)?;
    runtime::future_into_py(py, do_send(args))
}

#[pyfunction]
#[pyo3(signature = (subject, payloads, conn=None, opts=None))]
fn smartsend_sync<'py>(
    py: Python<'py>,
    subject: &str,
    payloads: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = send_args(subject, payloads, conn.as_deref(), opts)?;
    runtime::block_on(py, do_send(args))?.into_pyobject(py)
}

fn message_bytes(msg: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    match convert::bytes_like(msg)? {
        Some(b) => Ok(b),
        None => {
            if let Ok(s) = msg.cast::<PyString>() {
                return Ok(Bytes::copy_from_slice(s.to_str()?.as_bytes()));
            }
            Err(PyTypeError::new_err(format!(
                "a message is bytes, bytearray, memoryview or str, not {}",
                msg.get_type().name()?
            )))
        }
    }
}

/// Decodes a message. Direct payloads need no connection; link payloads are fetched through the
/// target's client.
async fn do_receive(target: Target, bytes: Bytes) -> PyResult<Out> {
    if let Target::Conn(c) = &target {
        return c.smartreceive(&bytes).await.map(received_out).map_err(to_py);
    }
    if let Some(received) = natsbridge::io::smartreceive_direct(&bytes).map_err(to_py)? {
        return Ok(received_out(received));
    }
    let client = target.client().await.map_err(to_py)?;
    client.smartreceive(&bytes).await.map(received_out).map_err(to_py)
}

/// Decodes a message (the bytes of a NATS message). Returns an awaitable of the envelope dict.
#[pyfunction]
#[pyo3(signature = (msg, conn=None, opts=None))]
fn smartreceive<'py>(
    py: Python<'py>,
    msg: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let target = Target::from_opts(conn.as_deref(), opts)?;
    let bytes = message_bytes(msg)?;
    runtime::future_into_py(py, do_receive(target, bytes))
}

#[pyfunction]
#[pyo3(signature = (msg, conn=None, opts=None))]
fn smartreceive_sync<'py>(
    py: Python<'py>,
    msg: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let target = Target::from_opts(conn.as_deref(), opts)?;
    let bytes = message_bytes(msg)?;
    runtime::block_on(py, do_receive(target, bytes))?.into_pyobject(py)
}

fn seconds(v: &Bound<'_, PyAny>, key: &str) -> PyResult<Duration> {
    let s: f64 = v.extract()?;
    Duration::try_from_secs_f64(s).map_err(|_| PyValueError::new_err(format!("{key} must be a non-negative number")))
}

fn millis(v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    Ok(Duration::from_millis(v.extract()?))
}

/// Connect options with nats-py's names, plus the bridge's own.
fn connect_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<ConnectOptions> {
    let mut o = ConnectOptions::default();
    let Some(opts) = opts else { return Ok(o) };
    let mut retry = RetryPolicy::default();
    for (k, v) in opts.iter() {
        if v.is_none() {
            continue;
        }
        let key: String = k.extract()?;
        let b = &mut o.bridge;
        match key.as_str() {
            "servers" => {
                o.servers = if let Ok(s) = v.cast::<PyString>() {
                    s.to_str()?.split(',').map(|s| s.trim().to_owned()).collect()
                } else {
                    v.extract()?
                }
            }
            "name" => o.name = Some(v.extract()?),
            "user" => o.user = Some(v.extract()?),
            "password" => o.password = Some(v.extract()?),
            "token" => o.token = Some(v.extract()?),
            "nkeys_seed" => o.nkey = Some(v.extract()?),
            "user_credentials" => o.credentials_file = Some(v.extract()?),
            "tls_ca_file" => o.tls_ca_file = Some(v.extract()?),
            "tls_cert_file" => o.tls_cert_file = Some(v.extract()?),
            "tls_key_file" => o.tls_key_file = Some(v.extract()?),
            "tls_required" => o.require_tls = v.extract()?,
            "max_reconnect_attempts" => {
                let n: i64 = v.extract()?;
                o.max_reconnects = usize::try_from(n).ok();
            }
            "reconnect_time_wait" => o.reconnect_time_wait = seconds(&v, &key)?,
            "connect_timeout" => o.connect_timeout = seconds(&v, &key)?,
            "pending_msgs_limit" => o.subscription_capacity = v.extract()?,
            "size_threshold" => b.size_threshold = Some(v.extract()?),
            "fileserver_url" => b.fileserver_url = Some(v.extract()?),
            "fileserver_kind" => {
                let kind: String = v.extract()?;
                b.fileserver_kind = match kind.as_str() {
                    "plik" => natsbridge::io::FileServerKind::Plik,
                    "http_put" => natsbridge::io::FileServerKind::HttpPut,
                    _ => return Err(PyValueError::new_err("fileserver_kind is \"plik\" or \"http_put\"")),
                }
            }
            "object_store" => b.object_store = v.extract()?,
            "object_store_bucket" => b.object_store_bucket = v.extract()?,
            "allowed_origins" => b.allowed_origins = v.extract()?,
            "max_download_bytes" => b.max_download_bytes = v.extract()?,
            "sender_name" => b.sender_name = v.extract()?,
            "sender_id" => b.sender_id = Some(v.extract()?),
            "retries" => retry.retries = v.extract()?,
            "base_delay" => retry.base_delay = millis(&v)?,
            "max_delay" => retry.max_delay = millis(&v)?,
            other => return Err(PyTypeError::new_err(format!("unexpected connect option {other:?}"))),
        }
    }
    o.bridge.retry = retry;
    Ok(o)
}

/// A connection: one NATS connection and the bridge's link stores.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
struct Connection {
    client: Client,
}

async fn do_connect(opts: ConnectOptions) -> PyResult<Connection> {
    Client::connect(opts).await.map(|client| Connection { client }).map_err(to_py)
}

#[pyfunction]
#[pyo3(signature = (opts=None))]
fn connect<'py>(py: Python<'py>, opts: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
    let opts = connect_options(opts)?;
    runtime::future_into_py(py, do_connect(opts))
}

#[pyfunction]
#[pyo3(signature = (opts=None))]
fn connect_sync(py: Python<'_>, opts: Option<&Bound<'_, PyDict>>) -> PyResult<Connection> {
    let opts = connect_options(opts)?;
    runtime::block_on(py, do_connect(opts))
}

struct RequestArgs {
    client: Client,
    subject: String,
    payloads: Vec<natsbridge::io::Outgoing>,
    opts: natsbridge::io::SendOptions,
    timeout: Duration,
}

async fn do_request(a: RequestArgs) -> PyResult<Out> {
    a.client.request(&a.subject, a.payloads, &a.opts, a.timeout).await.map(received_out).map_err(to_py)
}

async fn do_subscribe(client: Client, subject: String, queue: Option<String>) -> PyResult<Subscription> {
    let sub = client.subscribe(&subject, queue.as_deref()).await.map_err(to_py)?;
    Ok(Subscription { inner: Arc::new(tokio::sync::Mutex::new(Some(sub))) })
}

#[pymethods]
impl Connection {
    /// The client's sender_id (a UUID made at connect unless given).
    #[getter]
    fn sender_id(&self) -> &str {
        self.client.sender_id()
    }

    #[getter]
    fn max_payload(&self) -> usize {
        self.client.max_payload()
    }

    #[pyo3(signature = (subject, queue=None))]
    fn subscribe<'py>(&self, py: Python<'py>, subject: String, queue: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        runtime::future_into_py(py, do_subscribe(self.client.clone(), subject, queue))
    }

    #[pyo3(signature = (subject, queue=None))]
    fn subscribe_sync(&self, py: Python<'_>, subject: String, queue: Option<String>) -> PyResult<Subscription> {
        runtime::block_on(py, do_subscribe(self.client.clone(), subject, queue))
    }

    #[pyo3(signature = (subject, payloads, timeout=5.0, opts=None))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        payloads: &Bound<'py, PyAny>,
        timeout: f64,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = self.request_args(subject, payloads, timeout, opts)?;
        runtime::future_into_py(py, do_request(args))
    }

    #[pyo3(signature = (subject, payloads, timeout=5.0, opts=None))]
    fn request_sync<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        payloads: &Bound<'py, PyAny>,
        timeout: f64,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = self.request_args(subject, payloads, timeout, opts)?;
        runtime::block_on(py, do_request(args))?.into_pyobject(py)
    }

    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.client.clone();
        runtime::future_into_py(py, async move { c.flush().await.map(|_| none_out()).map_err(to_py) })
    }

    fn flush_sync(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.client.clone();
        runtime::block_on(py, async move { c.flush().await.map_err(to_py) })
    }

    /// Delivers what is in flight, unsubscribes everything and closes the connection.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.client.clone();
        runtime::future_into_py(py, async move { drain(c).await.map(|_| none_out()) })
    }

    fn drain_sync(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.client.clone();
        runtime::block_on(py, drain(c))
    }
}

/// Flushes, then drains: core's `drain` (async-nats') can close before buffered publishes are
/// written, which lost about 1 message in 20 when a script sent and exited at once.
async fn drain(c: Client) -> PyResult<()> {
    c.flush().await.map_err(to_py)?;
    c.drain().await.map_err(to_py)
}

impl Connection {
    fn request_args(
        &self,
        subject: &str,
        payloads: &Bound<'_, PyAny>,
        timeout: f64,
        opts: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<RequestArgs> {
        Ok(RequestArgs {
            client: self.client.clone(),
            subject: subject.to_owned(),
            payloads: outgoing_list(payloads)?,
            opts: send_options(opts)?,
            timeout: Duration::try_from_secs_f64(timeout)
                .map_err(|_| PyValueError::new_err("timeout must be a non-negative number of seconds"))?,
        })
    }
}

type SubState = Arc<tokio::sync::Mutex<Option<natsbridge::io::Subscription>>>;

/// Decoded envelopes from one subscription, in arrival order. A message that fails to decode
/// raises its error; the subscription goes on.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
struct Subscription {
    inner: SubState,
}

/// The next envelope; `Ok(None)` when the subscription is closed.
async fn next_message(inner: SubState, timeout: Option<Duration>) -> PyResult<Option<Out>> {
    let mut guard = inner.lock().await;
    let Some(sub) = guard.as_mut() else { return Ok(None) };
    let item = match timeout {
        Some(t) => sub.next_timeout(t).await,
        None => sub.next().await,
    };
    match item {
        None => {
            *guard = None;
            Ok(None)
        }
        Some(r) => r.map(|r| Some(received_out(r))).map_err(to_py),
    }
}

fn opt_timeout(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(Duration::try_from_secs_f64)
        .transpose()
        .map_err(|_| PyValueError::new_err("timeout must be a non-negative number of seconds"))
}

#[pymethods]
impl Subscription {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        runtime::future_into_py(py, async move {
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
    fn next<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, timeout) = (self.inner.clone(), opt_timeout(timeout)?);
        runtime::future_into_py(py, async move { Ok(next_message(inner, timeout).await?.unwrap_or_else(none_out)) })
    }

    #[pyo3(signature = (timeout=None))]
    fn next_sync<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
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

async fn unsubscribe(inner: SubState) -> PyResult<()> {
    let sub = inner.lock().await.take();
    match sub {
        Some(s) => s.unsubscribe().await.map_err(to_py),
        None => Ok(()),
    }
}

/// The code strings, in core's order.
#[pyfunction]
fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

#[pymodule]
fn _natsbridge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<Connection>()?;
    m.add_class::<Subscription>()?;
    m.add_function(wrap_pyfunction!(smartsend, m)?)?;
    m.add_function(wrap_pyfunction!(smartsend_sync, m)?)?;
    m.add_function(wrap_pyfunction!(smartreceive, m)?)?;
    m.add_function(wrap_pyfunction!(smartreceive_sync, m)?)?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(connect_sync, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add("PAYLOAD_TYPES", protocol::PayloadType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>())?;
    m.add("MSG_PURPOSES", protocol::msg_purpose::ALL.to_vec())?;
    m.add("DEFAULT_SIZE_THRESHOLD", protocol::DEFAULT_SIZE_THRESHOLD)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
