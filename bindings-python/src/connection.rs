//! A connection: `connect`, and what a connection does besides sending (`one_call.rs`):
//! subscribe, request, reply, reply_error, flush, close (which drains).

use crate::convert::{outgoing_list, to_json};
use crate::durable;
use crate::errors::{invalid, to_py};
use crate::options::{connect_options, opt_seconds, send_options, timeout};
use crate::subscription::Subscription;
use crate::{Out, none_out, received_out, runtime, sent_out};
use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{ByTransport, Client, ConnectOptions};
use natsbridge::protocol::{Outgoing, ReplyTo, SendOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use serde_json::{Map, Value};
use std::time::Duration;

/// One NATS connection and the bridge's link stores.
#[pyclass(frozen, module = "natsbridge._natsbridge")]
pub struct Connection {
    pub client: Client,
}

async fn do_connect(opts: ConnectOptions) -> PyResult<Connection> {
    let client = Client::connect(opts).await.map_err(to_py)?;
    Ok(Connection { client })
}

#[pyfunction]
#[pyo3(signature = (opts=None))]
pub fn connect<'py>(py: Python<'py>, opts: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
    let opts = connect_options(opts)?;
    runtime::future_into_py(py, do_connect(opts))
}

#[pyfunction]
#[pyo3(signature = (opts=None))]
pub fn connect_sync(py: Python<'_>, opts: Option<&Bound<'_, PyDict>>) -> PyResult<Connection> {
    let opts = connect_options(opts)?;
    runtime::block_on(py, do_connect(opts))
}

/// The header fields of a received envelope dict that a reply reads, for core's `ReplyTo`.
const REPLY_FIELDS: [&str; 6] = ["correlation_id", "msg_id", "sender_name", "sender_id", "reply_to", "reply"];

fn reply_to(request: &Bound<'_, PyAny>) -> PyResult<ReplyTo> {
    let Ok(env) = request.cast::<PyMapping>() else {
        return Err(invalid(format!("the request is a received envelope dict, not {}", request.get_type().name()?)));
    };
    let mut fields = Map::new();
    for key in REPLY_FIELDS {
        if let Ok(v) = env.get_item(key) {
            fields.insert(key.to_owned(), to_json(&v, ErrorCode::InvalidArgument)?);
        }
    }
    ReplyTo::from_json(&Value::Object(fields)).map_err(to_py)
}

fn error_of(code: &str, message: &str) -> PyResult<Error> {
    match ErrorCode::parse(code) {
        Some(c) => Ok(Error::new(c, message)),
        None => Err(invalid(format!(
            "unknown error code {code:?}; one of {}",
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A message's options on this connection; a per-message upload handler takes its links.
fn message_options(client: &Client, opts: Option<&Bound<'_, PyDict>>) -> PyResult<SendOptions> {
    let (mut send, call) = send_options(opts, false)?;
    if let Some(handler) = call.upload_handler {
        send.link_store = Some(client.upload_handler_store(handler, call.fileserver_url.as_deref()).map_err(to_py)?);
    }
    Ok(send)
}

struct RequestArgs {
    client: Client,
    subject: String,
    payloads: Vec<Outgoing>,
    opts: SendOptions,
    timeout: Duration,
}

async fn do_request(a: RequestArgs) -> PyResult<Out> {
    a.client.request(&a.subject, a.payloads, &a.opts, a.timeout).await.map(received_out).map_err(to_py)
}

struct ReplyArgs {
    client: Client,
    to: ReplyTo,
    payloads: Vec<Outgoing>,
    opts: SendOptions,
}

async fn do_reply(a: ReplyArgs) -> PyResult<Out> {
    a.client.reply(&a.to, a.payloads, &a.opts).await.map(sent_out).map_err(to_py)
}

async fn do_reply_error(client: Client, to: ReplyTo, error: Error) -> PyResult<Out> {
    client.reply_error(&to, &error).await.map(sent_out).map_err(to_py)
}

async fn do_subscribe(client: Client, subject: String, queue: Option<String>) -> PyResult<Subscription> {
    let sub = client.subscribe(&subject, queue.as_deref()).await.map_err(to_py)?;
    Ok(Subscription::new(sub))
}

impl Connection {
    fn request_args(
        &self,
        subject: &str,
        payloads: &Bound<'_, PyAny>,
        timeout_s: &Bound<'_, PyAny>,
        opts: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<RequestArgs> {
        Ok(RequestArgs {
            client: self.client.clone(),
            subject: subject.to_owned(),
            payloads: outgoing_list(payloads)?,
            opts: message_options(&self.client, opts)?,
            timeout: timeout(timeout_s)?,
        })
    }

    fn reply_args(
        &self,
        request: &Bound<'_, PyAny>,
        payloads: &Bound<'_, PyAny>,
        opts: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ReplyArgs> {
        Ok(ReplyArgs {
            client: self.client.clone(),
            to: reply_to(request)?,
            payloads: outgoing_list(payloads)?,
            opts: message_options(&self.client, opts)?,
        })
    }
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

    /// What this connection sent and received since it connected (spec/PROTOCOL.md §13.3):
    /// counts, byte counts by transport (`{"direct", "link"}`), and `download_time` in seconds.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.client.metrics();
        let by_transport = |t: ByTransport| -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            d.set_item("direct", t.direct)?;
            d.set_item("link", t.link)?;
            Ok(d)
        };
        let d = PyDict::new(py);
        d.set_item("messages_sent", m.messages_sent)?;
        d.set_item("messages_received", m.messages_received)?;
        d.set_item("payloads_sent", by_transport(m.payloads_sent)?)?;
        d.set_item("payloads_received", by_transport(m.payloads_received)?)?;
        d.set_item("bytes_sent", by_transport(m.bytes_sent)?)?;
        d.set_item("bytes_received", by_transport(m.bytes_received)?)?;
        d.set_item("download_retries", m.download_retries)?;
        d.set_item("checksum_failures", m.checksum_failures)?;
        d.set_item("downloads", m.downloads)?;
        d.set_item("download_time", m.download_time.as_secs_f64())?;
        Ok(d)
    }

    #[pyo3(signature = (subject, queue=None))]
    fn subscribe<'py>(&self, py: Python<'py>, subject: String, queue: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        runtime::future_into_py(py, do_subscribe(self.client.clone(), subject, queue))
    }

    #[pyo3(signature = (subject, queue=None))]
    fn subscribe_sync(&self, py: Python<'_>, subject: String, queue: Option<String>) -> PyResult<Subscription> {
        runtime::block_on(py, do_subscribe(self.client.clone(), subject, queue))
    }

    #[pyo3(signature = (subject, payloads, timeout, opts=None))]
    fn request<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        payloads: &Bound<'py, PyAny>,
        timeout: &Bound<'py, PyAny>,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = self.request_args(subject, payloads, timeout, opts)?;
        runtime::future_into_py(py, do_request(args))
    }

    #[pyo3(signature = (subject, payloads, timeout, opts=None))]
    fn request_sync<'py>(
        &self,
        py: Python<'py>,
        subject: &str,
        payloads: &Bound<'py, PyAny>,
        timeout: &Bound<'py, PyAny>,
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
        let (to, error) = (reply_to(request)?, error_of(code, message)?);
        runtime::future_into_py(py, do_reply_error(self.client.clone(), to, error))
    }

    fn reply_error_sync<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
        code: &str,
        message: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (to, error) = (reply_to(request)?, error_of(code, message)?);
        runtime::block_on(py, do_reply_error(self.client.clone(), to, error))?.into_pyobject(py)
    }

    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.client.clone();
        runtime::future_into_py(py, async move { c.flush().await.map(|_| none_out()).map_err(to_py) })
    }

    fn flush_sync(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.client.clone();
        runtime::block_on(py, async move { c.flush().await.map_err(to_py) })
    }

    /// Delivers what is in flight, unsubscribes everything and closes the connection (core's
    /// drain writes out buffered publishes first).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.client.clone();
        runtime::future_into_py(py, async move { c.drain().await.map(|_| none_out()).map_err(to_py) })
    }

    fn close_sync(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.client.clone();
        runtime::block_on(py, async move { c.drain().await.map_err(to_py) })
    }

    // JetStream mode (durable.rs).
    #[pyo3(signature = (name, opts=None))]
    fn add_stream<'py>(
        &self,
        py: Python<'py>,
        name: String,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let settings = durable::stream_settings(&name, opts)?;
        runtime::future_into_py(py, durable::add_stream(self.client.clone(), settings))
    }

    #[pyo3(signature = (name, opts=None))]
    fn add_stream_sync<'py>(
        &self,
        py: Python<'py>,
        name: String,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let settings = durable::stream_settings(&name, opts)?;
        runtime::block_on(py, durable::add_stream(self.client.clone(), settings))?.into_pyobject(py)
    }

    #[pyo3(signature = (stream, durable, opts=None))]
    fn consume<'py>(
        &self,
        py: Python<'py>,
        stream: String,
        durable: String,
        opts: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = durable::consume_options(opts)?;
        runtime::future_into_py(py, durable::consume(self.client.clone(), stream, durable, opts))
    }

    #[pyo3(signature = (stream, durable, opts=None))]
    fn consume_sync(
        &self,
        py: Python<'_>,
        stream: String,
        durable: String,
        opts: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<durable::Consumer> {
        let opts = durable::consume_options(opts)?;
        runtime::block_on(py, durable::consume(self.client.clone(), stream, durable, opts))
    }

    #[pyo3(signature = (stream, dry_run=true, min_age=None))]
    fn sweep_links<'py>(
        &self,
        py: Python<'py>,
        stream: String,
        dry_run: bool,
        min_age: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let min_age = opt_seconds("min_age", min_age)?;
        runtime::future_into_py(py, durable::sweep(self.client.clone(), stream, min_age, dry_run))
    }

    #[pyo3(signature = (stream, dry_run=true, min_age=None))]
    fn sweep_links_sync<'py>(
        &self,
        py: Python<'py>,
        stream: String,
        dry_run: bool,
        min_age: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let min_age = opt_seconds("min_age", min_age)?;
        runtime::block_on(py, durable::sweep(self.client.clone(), stream, min_age, dry_run))?.into_pyobject(py)
    }
}
