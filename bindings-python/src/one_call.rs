//! `smartsend` / `smartreceive`: on a given connection, or in the seeds' one-call style through
//! core's `one_call` (a shared connection per broker and file server, per-call handlers).

use crate::connection::Connection;
use crate::errors::{invalid, to_py};
use crate::options::{receive_options, send_options};
use crate::{Out, received_out, runtime, sent_out};
use bytes::Bytes;
use natsbridge::io::one_call::{self, CallOptions};
use natsbridge::io::{Client, Kick};
use natsbridge::protocol::{self, Outgoing, SendOptions};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::task::Poll;

struct SendArgs {
    conn: Option<Client>,
    subject: String,
    payloads: Vec<Outgoing>,
    opts: SendOptions,
    call: CallOptions,
}

fn send_args(
    subject: &str,
    payloads: &Bound<'_, PyAny>,
    conn: Option<&Connection>,
    opts: Option<&Bound<'_, PyDict>>,
) -> PyResult<SendArgs> {
    let (opts, call) = send_options(opts, conn.is_none())?;
    Ok(SendArgs {
        conn: conn.map(|c| c.client.clone()),
        subject: subject.to_owned(),
        payloads: crate::convert::outgoing_list(payloads)?,
        opts,
        call,
    })
}

async fn do_send(a: SendArgs) -> PyResult<Out> {
    let sent = match &a.conn {
        Some(c) => one_call::send_on(c, &a.subject, a.payloads, a.opts, &a.call).await,
        None => one_call::smartsend(&a.subject, a.payloads, a.opts, &a.call).await,
    };
    sent.map(sent_out).map_err(to_py)
}

/// Sends payloads as one envelope. Returns an awaitable of `(env, msg_json)`.
#[pyfunction]
#[pyo3(signature = (subject, payloads, conn=None, opts=None))]
pub fn smartsend<'py>(
    py: Python<'py>,
    subject: &str,
    payloads: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = send_args(subject, payloads, conn.as_deref(), opts)?;
    match args.conn.clone() {
        Some(client) => deferred_send_into_py(py, client, args),
        None => runtime::eager_future_into_py(py, do_send(args)),
    }
}

/// A send on a connection, deferred (core's `smartsend_deferred`): the first send of a burst
/// goes out at once, the ones the coroutine makes after it before it yields are handed to the
/// connection together at the event loop's next turn, as nats-py's own publishes are. Finished
/// later than its first poll (an upload), it kicks itself.
fn deferred_send_into_py<'py>(py: Python<'py>, client: Client, a: SendArgs) -> PyResult<Bound<'py, PyAny>> {
    let kicker = client.clone();
    let send = async move {
        let sent = one_call::send_on_deferred(&client, &a.subject, a.payloads, a.opts, &a.call).await;
        sent.map(|(sent, kick)| (sent_out(sent), kick)).map_err(to_py)
    };
    let runtime::FirstPoll { locals, future: send, first } = runtime::poll_first(py, send)?;
    match first {
        Poll::Ready(Ok((out, kick))) => {
            if kick == Kick::Arrange {
                locals.event_loop(py).call_method1(intern!(py, "call_soon"), (KickCall { client: kicker },))?;
            }
            runtime::ready_into_py(py, Ok(out))
        }
        Poll::Ready(Err(e)) => runtime::ready_into_py::<Out>(py, Err(e)),
        Poll::Pending => crate::completion::spawn_into_py(py, &locals.event_loop(py), async move {
            let (out, kick) = send.await?;
            if kick == Kick::Arrange {
                kicker.kick().await.map_err(to_py)?;
            }
            Ok(out)
        }),
    }
}

/// The callback a deferred send arranges on the event loop: hands the connection's deferred
/// sends over.
#[pyclass(module = "natsbridge._natsbridge")]
struct KickCall {
    client: Client,
}

#[pymethods]
impl KickCall {
    fn __call__(&self, py: Python<'_>) {
        let client = self.client.clone();
        py.detach(|| {
            // Core logs a kick that fails (the connection is gone).
            let mut kick = Box::pin(async move { client.kick().await.is_ok() });
            if runtime::poll_once(kick.as_mut()).is_pending() {
                // The connection's send buffer is full: the rest goes on on the runtime.
                runtime::runtime().spawn(kick);
            }
        })
    }
}

#[pyfunction]
#[pyo3(signature = (subject, payloads, conn=None, opts=None))]
pub fn smartsend_sync<'py>(
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
    if let Some(b) = crate::convert::bytes_like(msg)? {
        return Ok(b);
    }
    if let Ok(s) = msg.cast::<PyString>() {
        return Ok(Bytes::copy_from_slice(s.to_str()?.as_bytes()));
    }
    Err(invalid(format!("a message is bytes, bytearray, memoryview or str, not {}", msg.get_type().name()?)))
}

/// Through a connection's link stores, or the one-call style's (its options).
enum Receive {
    Conn(Client),
    OneCall(CallOptions),
}

fn receive_args(conn: Option<&Connection>, opts: Option<&Bound<'_, PyDict>>) -> PyResult<Receive> {
    match conn {
        Some(_) if opts.is_some_and(|o| !o.is_empty()) => Err(invalid(
            "smartreceive's options are for the one-call style, without a connection; a connection's \
             handlers and origins are given to connect()",
        )),
        Some(c) => Ok(Receive::Conn(c.client.clone())),
        None => Ok(Receive::OneCall(receive_options(opts)?)),
    }
}

/// A message without links (most messages) decodes right here, GIL released: no runtime, no
/// task, no future moved around, and the dict is built from a view of the message (no owned
/// envelope in between). None: it goes through [`do_receive`].
fn receive_direct<'py>(py: Python<'py>, how: &Receive, bytes: &Bytes) -> PyResult<Option<Bound<'py, PyAny>>> {
    let decoded = py.detach(|| match how {
        Receive::Conn(client) => protocol::decode_direct(bytes, client.receive_limits()),
        Receive::OneCall(call) => one_call::smartreceive_now_view(bytes, call),
    });
    match decoded.map_err(to_py)? {
        Some(view) => Ok(Some(crate::convert::received_view(py, &view.envelope, &view.payloads)?.into_any())),
        None => Ok(None),
    }
}

async fn do_receive(how: Receive, bytes: Bytes) -> PyResult<Out> {
    let received = match &how {
        Receive::Conn(c) => c.smartreceive(&bytes).await,
        Receive::OneCall(call) => one_call::smartreceive(&bytes, call).await,
    };
    received.map(received_out).map_err(to_py)
}

/// Decodes a message (the bytes of a NATS message). Returns an awaitable of the envelope dict.
#[pyfunction]
#[pyo3(signature = (msg, conn=None, opts=None))]
pub fn smartreceive<'py>(
    py: Python<'py>,
    msg: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let how = receive_args(conn.as_deref(), opts)?;
    let bytes = message_bytes(msg)?;
    match receive_direct(py, &how, &bytes) {
        Ok(Some(env)) => runtime::ready_into_py(py, Ok(env.unbind())),
        Err(e) => runtime::ready_into_py::<Out>(py, Err(e)),
        Ok(None) => runtime::eager_future_into_py(py, do_receive(how, bytes)),
    }
}

#[pyfunction]
#[pyo3(signature = (msg, conn=None, opts=None))]
pub fn smartreceive_sync<'py>(
    py: Python<'py>,
    msg: &Bound<'py, PyAny>,
    conn: Option<PyRef<'py, Connection>>,
    opts: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let how = receive_args(conn.as_deref(), opts)?;
    let bytes = message_bytes(msg)?;
    match receive_direct(py, &how, &bytes)? {
        Some(env) => Ok(env),
        None => runtime::block_on(py, do_receive(how, bytes))?.into_pyobject(py),
    }
}
