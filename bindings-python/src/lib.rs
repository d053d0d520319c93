//! `natsbridge._natsbridge`: the private native module under the `natsbridge` package.
//! It converts types and maps errors; the protocol and all I/O are core's (DESIGN §8).
//!
//! Naming rule: every call that waits has an async form (`smartsend`) returning an awaitable
//! and a blocking twin with the suffix `_sync` (`smartsend_sync`) that releases the GIL.

mod convert;
mod errors;
mod handlers;
mod runtime;

use bytes::Bytes;
use convert::{outgoing_list, send_options};
use errors::to_py;
use handlers::PyLinkStore;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::store::RetryPolicy;
use natsbridge::io::{BridgeOptions, Client, ConnectOptions, Received, SendOptions, Sent};
use natsbridge::protocol::{self, Envelope};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyString, PyTuple};
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

/// The keys of a call that are not per-message options: where the call goes, and the seeds'
/// handlers with what they need.
#[derive(Default)]
struct CallExtras {
    broker_url: Option<String>,
    fileserver_url: Option<String>,
    upload_handler: Option<Arc<Py<PyAny>>>,
    download_handler: Option<Arc<Py<PyAny>>>,
    allowed_origins: Vec<String>,
    retry: RetryPolicy,
}

/// The extra keys a send takes; the rest of its options are per-message (convert::send_options).
const SEND_EXTRAS: &[&str] = &["broker_url", "fileserver_url", "fileserver_upload_handler"];
/// Every key a one-call receive takes.
const RECEIVE_EXTRAS: &[&str] = &[
    "broker_url",
    "fileserver_url",
    "fileserver_download_handler",
    "allowed_origins",
    "retries",
    "base_delay",
    "max_delay",
];

/// Takes the `keys` out of `opts`: the extras, and a copy of `opts` without them.
fn split_opts<'py>(
    opts: Option<&Bound<'py, PyDict>>,
    keys: &[&str],
) -> PyResult<(Option<Bound<'py, PyDict>>, CallExtras)> {
    let mut x = CallExtras::default();
    let Some(opts) = opts else { return Ok((None, x)) };
    let rest = opts.copy()?;
    for &key in keys {
        let Some(v) = rest.get_item(key)? else { continue };
        rest.del_item(key)?;
        if v.is_none() {
            continue;
        }
        match key {
            "broker_url" => x.broker_url = Some(v.extract()?),
            "fileserver_url" => x.fileserver_url = Some(v.extract()?),
            "fileserver_upload_handler" => x.upload_handler = Some(handlers::callable(&v, key)?),
            "fileserver_download_handler" => x.download_handler = Some(handlers::callable(&v, key)?),
            "allowed_origins" => x.allowed_origins = origins(&v)?,
            "retries" => x.retry.retries = v.extract()?,
            "base_delay" => x.retry.base_delay = millis(&v)?,
            "max_delay" => x.retry.max_delay = millis(&v)?,
            other => return Err(PyTypeError::new_err(format!("unexpected option {other:?}"))),
        }
    }
    Ok((Some(rest), x))
}

/// A list of origins (a lone str is one origin, not its characters).
fn origins(v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(vec![s.to_str()?.to_owned()]);
    }
    v.extract()
}

/// `FILESERVER_URL` from the environment, as core reads it.
fn env_fileserver_url() -> Option<String> {
    BridgeOptions::default().resolved_fileserver_url()
}

/// Where a one-call send or receive goes: an explicit connection, else the process-wide client
/// for `broker_url` (else `NATS_URL`, else the default).
#[derive(Clone)]
enum Target {
    Conn(Client),
    Shared { url: String, fileserver_url: Option<String> },
}

impl Target {
    fn new(conn: Option<&Connection>, x: &CallExtras) -> Target {
        if let Some(c) = conn {
            return Target::Conn(c.client.clone());
        }
        let url = match &x.broker_url {
            Some(u) => u.clone(),
            None => ConnectOptions::default().resolved_servers().join(","),
        };
        // With an upload handler, fileserver_url is only the handler's argument (it may not be
        // an http(s) URL at all), so the shared client makes no file server store for it.
        let fileserver_url = if x.upload_handler.is_some() { None } else { x.fileserver_url.clone() };
        Target::Shared { url, fileserver_url }
    }

    async fn client(&self) -> CoreResult<Client> {
        match self {
            Target::Conn(c) => Ok(c.clone()),
            Target::Shared { url, fileserver_url } => runtime::shared_client(url, fileserver_url.as_deref()).await,
        }
    }
}

/// Per-message options, with the per-message upload handler as the message's link store. Its
/// first argument is the call's fileserver_url, else the connection's, else `FILESERVER_URL`.
fn message_options(conn: Option<&Connection>, opts: Option<&Bound<'_, PyDict>>) -> PyResult<(SendOptions, CallExtras)> {
    let (rest, x) = split_opts(opts, SEND_EXTRAS)?;
    let mut send = send_options(rest.as_ref())?;
    if let Some(h) = &x.upload_handler {
        let server = x
            .fileserver_url
            .clone()
            .or_else(|| conn.and_then(|c| c.fileserver_url.clone()))
            .or_else(env_fileserver_url);
        let store = PyLinkStore::new(Some(h.clone()), None, server.as_deref(), &[], RetryPolicy::default())?;
        send.link_store = Some(Arc::new(store));
    }
    Ok((send, x))
}

type SendArgs = (Target, String, Vec<natsbridge::io::Outgoing>, SendOptions);

fn send_args(
    subject: &str,
    payloads: &Bound<'_, PyAny>,
    conn: Option<&Connection>,
    opts: Option<&Bound<'_, PyDict>>,
) -> PyResult<SendArgs> {
    let (send, x) = message_options(conn, opts)?;
    let target = Target::new(conn, &x);
    let payloads = outgoing_list(payloads)?;
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
    runtime::eager_future_into_py(py, do_send(args))
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

/// How a one-call receive fetches links: through a client, or through the call's own download
/// handler (no connection needed).
enum Receive {
    Target(Target),
    Handler(Arc<PyLinkStore>),
}

fn receive_plan(conn: Option<&Connection>, opts: Option<&Bound<'_, PyDict>>) -> PyResult<Receive> {
    let (rest, x) = split_opts(opts, RECEIVE_EXTRAS)?;
    if let Some(key) = rest.as_ref().and_then(|r| r.keys().iter().next()) {
        return Err(PyTypeError::new_err(format!("unexpected receive option {key}")));
    }
    let Some(h) = &x.download_handler else { return Ok(Receive::Target(Target::new(conn, &x))) };
    if conn.is_some() {
        return Err(PyTypeError::new_err(
            "a connection's download handler is given to connect(); smartreceive(fileserver_download_handler=...) \
             is for the one-call style, without a connection",
        ));
    }
    let server = x.fileserver_url.clone().or_else(env_fileserver_url);
    let store = PyLinkStore::new(None, Some(h.clone()), server.as_deref(), &x.allowed_origins, x.retry)?;
    Ok(Receive::Handler(Arc::new(store)))
}

/// Decodes a message. Direct payloads need no connection; link payloads are fetched through the
/// target's client, or the call's download handler.
async fn do_receive(plan: Receive, bytes: Bytes) -> PyResult<Out> {
    let target = match plan {
        Receive::Target(t) => t,
        Receive::Handler(store) => {
            let (retry, limit) = (store.retry(), BridgeOptions::default().max_download_bytes);
            return natsbridge::io::smartreceive_with_store(&bytes, store, retry, limit)
                .await
                .map(received_out)
                .map_err(to_py);
        }
    };
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
    let plan = receive_plan(conn.as_deref(), opts)?;
    let bytes = message_bytes(msg)?;
    runtime::eager_future_into_py(py, do_receive(plan, bytes))
}

#[pyfunction]
#[pyo3(signature = (msg, conn=None, opts=None))]
fn smartreceive_sync<'py>(
    py: Python<'py>,
    msg: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let plan = receive_plan(conn.as_deref(), opts)?;
    let bytes = message_bytes(msg)?;
    runtime::block_on(py, do_receive(plan, bytes))?.into_pyobject(py)
}

fn seconds(v: &Bound<'_, PyAny>, key: &str) -> PyResult<Duration> {
    let s: f64 = v.extract()?;
    Duration::try_from_secs_f64(s).map_err(|_| PyValueError::new_err(format!("{key} must be a non-negative number")))
}

fn millis(v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    Ok(Duration::from_millis(v.extract()?))
}

/// What `connect` needs: core's options, the handlers' store (also in `opts.bridge.link_store`),
/// and the file server URL the handlers are given.
struct ConnectPlan {
    opts: ConnectOptions,
    fileserver_url: Option<String>,
}

/// Connect options with nats-py's names, plus the bridge's own.
fn connect_options(opts: Option<&Bound<'_, PyDict>>) -> PyResult<ConnectPlan> {
    let mut o = ConnectOptions::default();
    let Some(opts) = opts else {
        return Ok(ConnectPlan { opts: o, fileserver_url: env_fileserver_url() });
    };
    let mut retry = RetryPolicy::default();
    let (mut upload, mut download, mut allowed) = (None, None, Vec::new());
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
            "object_store_ttl" => b.object_store_ttl = seconds(&v, &key)?,
            "plik_oneshot" => b.plik.oneshot = v.extract()?,
            "plik_ttl" => b.plik.ttl = seconds(&v, &key)?,
            "plik_token" => b.plik.user_token = Some(v.extract()?),
            "transfer_progress" => b.transfer_progress = Some(handlers::progress(&v)?),
            "allowed_origins" => allowed = origins(&v)?,
            "fileserver_upload_handler" => upload = Some(handlers::callable(&v, &key)?),
            "fileserver_download_handler" => download = Some(handlers::callable(&v, &key)?),
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
    let fileserver_url = o.bridge.resolved_fileserver_url();
    if upload.is_none() && download.is_none() {
        o.bridge.allowed_origins = allowed;
        return Ok(ConnectPlan { opts: o, fileserver_url });
    }
    handler_store(&mut o.bridge, upload, download, fileserver_url.as_deref(), allowed)?;
    Ok(ConnectPlan { opts: o, fileserver_url })
}

fn is_http(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// The client-wide handlers as core's custom store, which core asks first. The download handler
/// serves the file server's origin and `allowed` (core then needs no stores of its own for
/// those); without it, core keeps `allowed` for downloads. Without an upload handler the store
/// takes no uploads, and core sends them to its file server store (http(s) only) or the object
/// store.
fn handler_store(
    b: &mut BridgeOptions,
    upload: Option<Arc<Py<PyAny>>>,
    download: Option<Arc<Py<PyAny>>>,
    fileserver_url: Option<&str>,
    allowed: Vec<String>,
) -> PyResult<()> {
    let store = PyLinkStore::new(upload, download.clone(), fileserver_url, &allowed, b.retry)?;
    // Some(""): no file server store in core (and no FILESERVER_URL lookup either).
    b.fileserver_url = Some(fileserver_url.filter(|u| is_http(u)).unwrap_or_default().to_owned());
    if download.is_none() {
        b.allowed_origins = allowed;
    }
    b.link_store = Some(Arc::new(store));
    Ok(())
}

/// A connection: one NATS connection and the bridge's link stores.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
struct Connection {
    client: Client,
    /// The configured file server (given or `FILESERVER_URL`): a per-message upload handler's
    /// first argument.
    fileserver_url: Option<String>,
}

async fn do_connect(plan: ConnectPlan) -> PyResult<Connection> {
    let client = Client::connect(plan.opts).await.map_err(to_py)?;
    Ok(Connection { client, fileserver_url: plan.fileserver_url })
}

#[pyfunction]
#[pyo3(signature = (opts=None))]
fn connect<'py>(py: Python<'py>, opts: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
    let plan = connect_options(opts)?;
    runtime::future_into_py(py, do_connect(plan))
}

#[pyfunction]
#[pyo3(signature = (opts=None))]
fn connect_sync(py: Python<'_>, opts: Option<&Bound<'_, PyDict>>) -> PyResult<Connection> {
    let plan = connect_options(opts)?;
    runtime::block_on(py, do_connect(plan))
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

    /// Replies to a received request envelope (see `Client::reply`). Returns `(env, msg_json)`.
    #[pyo3(signature = (request, payloads, opts=None))]
    fn reply<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        payloads: &Bound<'py, PyAny>,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = self.reply_args(request, payloads, opts)?;
        runtime::future_into_py(py, do_reply(args))
    }

    #[pyo3(signature = (request, payloads, opts=None))]
    fn reply_sync<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        payloads: &Bound<'py, PyAny>,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = self.reply_args(request, payloads, opts)?;
        runtime::block_on(py, do_reply(args))?.into_pyobject(py)
    }

    /// Replies with a NACK carrying `{code, message}` (see `Client::reply_error`).
    fn reply_error<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        code: &str,
        message: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, to, error) = (self.client.clone(), replied_to(request)?, error_of(code, message)?);
        runtime::future_into_py(py, async move { client.reply_error(&to, &error).await.map(sent_out).map_err(to_py) })
    }

    fn reply_error_sync<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        code: &str,
        message: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, to, error) = (self.client.clone(), replied_to(request)?, error_of(code, message)?);
        runtime::block_on(py, async move { client.reply_error(&to, &error).await.map(sent_out).map_err(to_py) })?
            .into_pyobject(py)
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

struct ReplyArgs {
    client: Client,
    to: Received,
    payloads: Vec<natsbridge::io::Outgoing>,
    opts: SendOptions,
}

async fn do_reply(a: ReplyArgs) -> PyResult<Out> {
    a.client.reply(&a.to, a.payloads, &a.opts).await.map(sent_out).map_err(to_py)
}

/// What `Client::reply` / `reply_error` read of a request, rebuilt from its envelope dict: the
/// header fields, and `reply` (the NATS reply subject) when it came from a subscription.
fn replied_to(request: &Bound<'_, PyAny>) -> PyResult<Received> {
    let Ok(env) = request.cast::<PyMapping>() else {
        return Err(PyTypeError::new_err(format!(
            "the request is a received envelope dict, not {}",
            request.get_type().name()?
        )));
    };
    let field = |key: &str| -> PyResult<Option<String>> {
        match env.get_item(key) {
            Ok(v) if !v.is_none() => v.extract().map(Some),
            _ => Ok(None),
        }
    };
    let Some(correlation_id) = field("correlation_id")? else {
        return Err(PyValueError::new_err("the request envelope has no correlation_id"));
    };
    let envelope = Envelope {
        correlation_id,
        msg_id: field("msg_id")?.unwrap_or_default(),
        send_to: field("send_to")?.unwrap_or_default(),
        sender_name: field("sender_name")?.unwrap_or_default(),
        sender_id: field("sender_id")?.unwrap_or_default(),
        reply_to: field("reply_to")?.unwrap_or_default(),
        ..Envelope::default()
    };
    Ok(Received { envelope, payloads: Vec::new(), subject: field("subject")?, reply: field("reply")? })
}

fn error_of(code: &str, message: &str) -> PyResult<Error> {
    match ErrorCode::parse(code) {
        Some(c) => Ok(Error::new(c, message)),
        None => Err(PyValueError::new_err(format!(
            "unknown error code {code:?}; one of {}",
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

impl Connection {
    fn reply_args(
        &self,
        request: &Bound<'_, PyAny>,
        payloads: &Bound<'_, PyAny>,
        opts: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ReplyArgs> {
        Ok(ReplyArgs {
            client: self.client.clone(),
            to: replied_to(request)?,
            payloads: outgoing_list(payloads)?,
            opts: message_options(Some(self), opts)?.0,
        })
    }

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
            opts: message_options(Some(self), opts)?.0,
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
    fn next<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let (inner, timeout) = (self.inner.clone(), opt_timeout(timeout)?);
        runtime::eager_future_into_py(
            py,
            async move { Ok(next_message(inner, timeout).await?.unwrap_or_else(none_out)) },
        )
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
    m.add_function(wrap_pyfunction!(runtime::before_exit, m)?)?;
    m.add("PAYLOAD_TYPES", protocol::PayloadType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>())?;
    m.add("MSG_PURPOSES", protocol::msg_purpose::ALL.to_vec())?;
    m.add("DEFAULT_SIZE_THRESHOLD", protocol::DEFAULT_SIZE_THRESHOLD)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
