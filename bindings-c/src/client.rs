//! The client and subscription handles: blocking calls that drive the core's futures on the
//! caller's thread.

use crate::args;
use crate::envelope::Envelope;
use crate::message::Message;
use crate::options::ConnectOptions;
use crate::runtime::block_on;
use crate::status::{Outcome, Status, guard, invalid};
use bridge::error::{Error, ErrorCode};
use bridge::io::{
    Client as CoreClient, ConnectOptions as CoreConnectOptions, ReplyTo, Subscription as CoreSubscription,
};
use bridge::protocol::Sent;
use std::borrow::Cow;
use std::ffi::{CString, c_char};
use std::sync::Mutex;
use std::time::Duration;

/// A connected client. Every function taking a `const natsbridge_client *` may be called from
/// several threads at once.
pub struct Client {
    pub core: CoreClient,
}

/// A subscription; `next` calls on one subscription are serialized.
pub struct Subscription {
    core: Mutex<CoreSubscription>,
    /// The message of the last failed `next` (for callers whose calls run on pool threads).
    last_error: Mutex<CString>,
}

pub fn deliver(out: *mut *mut Envelope, received: bridge::io::Received) -> Outcome {
    let envelope = Envelope::new(received)?;
    // SAFETY: `out` was checked by the caller with args::out_param.
    unsafe { args::write(out, Box::into_raw(Box::new(envelope))) };
    Ok(())
}

/// The JSON a send hands back: exactly what was published, and in JetStream mode the stream's
/// acknowledgement after it as one more member, `"pub_ack":{"stream","sequence","duplicate"}`.
pub fn sent_json(sent: &Sent) -> Cow<'_, [u8]> {
    let Some(ack) = &sent.pub_ack else { return Cow::Borrowed(&sent.json) };
    let mut json = sent.json.to_vec();
    // The envelope is a JSON object: the member goes before its closing brace.
    let end = json.iter().rposition(|&b| b == b'}').unwrap_or(json.len());
    json.truncate(end);
    json.extend_from_slice(b",\"pub_ack\":");
    json.extend(serde_json::to_vec(ack).expect("plain data"));
    json.push(b'}');
    Cow::Owned(json)
}

pub fn deliver_json(out: *mut *mut c_char, json: &[u8]) -> Outcome {
    if !out.is_null() {
        let s = args::owned_string(json)?;
        // SAFETY: non-NULL out-param, valid for writes by the caller's contract.
        unsafe { args::write(out, s) };
    }
    Ok(())
}

/// Connects to NATS. `url` (may be NULL) is added to the options' servers; with neither, the
/// `NATS_URL` environment variable or nats://localhost:4222. `options` may be NULL (defaults)
/// and is not consumed. Fails with NATS_CONNECTION_FAILED (within the `connect_timeout_ms`
/// option, default 5000 ms); a malformed URL or option combination is INVALID_ARGUMENT.
///
/// Ownership: the caller owns `*out` and frees it with `natsbridge_client_free`.
/// Thread safety: any thread.
///
/// # Safety
/// `url` NULL or NUL-terminated; `options` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_connect(
    url: *const c_char,
    options: *const ConnectOptions,
    out: *mut *mut Client,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let url = unsafe { args::optional_text(url, "url") }?;
        // SAFETY: caller contract.
        let mut opts = unsafe { options.as_ref() }.map_or_else(CoreConnectOptions::default, |o| o.core.clone());
        if let Some(url) = url {
            opts.settings.servers.push(url.to_owned());
        }
        let core = block_on(CoreClient::connect(opts))??;
        // SAFETY: checked out-param.
        unsafe { args::write(out, Box::into_raw(Box::new(Client { core }))) };
        Ok(())
    })
}

/// smartsend: serializes the payloads, moves large ones to the link store (uploads run on this
/// thread's call), publishes the envelope to `subject`. `envelope_json` may be NULL; otherwise
/// it receives the exact JSON published. The message is not consumed. Errors:
/// INVALID_PAYLOAD_TYPE, UPLOAD_FAILED, PAYLOAD_TOO_LARGE, NATS_CONNECTION_FAILED.
///
/// On a client connected with the option `jetstream` "true" the send is durable
/// (spec/PROTOCOL.md §12.1): it publishes to the stream capturing `subject` with `Nats-Msg-Id` =
/// the envelope's msg_id and returns once the stream has stored it (lost acknowledgements are
/// retried with the same msg_id, within the connection's `max_retries`). A subject no stream
/// captures is INVALID_ARGUMENT; no acknowledgement in time is TIMEOUT. `*envelope_json` is then
/// the JSON published with one more member at its end, the stream's acknowledgement:
/// `"pub_ack":{"stream":"ORDERS","sequence":7,"duplicate":false}` (`duplicate`: the stream
/// already held this msg_id and stored it once).
///
/// Ownership: `*envelope_json` is the caller's; free it with `natsbridge_string_free`.
/// Thread safety: any thread; concurrent sends on one client are fine.
///
/// # Safety
/// `client`, `message` NULL or live; `subject` NULL or NUL-terminated; `envelope_json` NULL or
/// valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_send(
    client: *const Client,
    subject: *const c_char,
    message: *const Message,
    envelope_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (client, subject, message) = unsafe {
            (args::handle(client, "client")?, args::text(subject, "subject")?, args::handle(message, "message")?)
        };
        let opts = message.options_on(&client.core)?;
        let sent = block_on(client.core.smartsend(subject, message.payloads.clone(), &opts))??;
        deliver_json(envelope_json, &sent_json(&sent))
    })
}

/// smartreceive: decodes raw message bytes (an envelope's JSON), fetching link payloads from the
/// client's allowed stores. Errors: INVALID_ENVELOPE, DESERIALIZATION_ERROR, DOWNLOAD_FAILED,
/// CHECKSUM_MISMATCH, URL_NOT_ALLOWED, PAYLOAD_TOO_LARGE, INVALID_TRANSPORT.
///
/// Ownership: `bytes` is read only during the call; the caller owns `*out`
/// (`natsbridge_envelope_free`). Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live; `bytes` valid for `len` bytes; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_receive(
    client: *const Client,
    bytes: *const u8,
    len: usize,
    out: *mut *mut Envelope,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let (client, bytes) = unsafe { (args::handle(client, "client")?, args::bytes(bytes, len, "bytes")?) };
        deliver(out, block_on(client.core.smartreceive(bytes))??)
    })
}

/// Subscribes to `subject` (wildcards allowed), in queue group `queue` unless it is NULL,
/// and returns once the server has the subscription (a publish made after this is delivered).
///
/// Ownership: the caller owns `*out` (`natsbridge_subscription_free`); it keeps the connection
/// open, so the client and its subscriptions may be freed in any order. Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live; strings NULL or NUL-terminated; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_subscribe(
    client: *const Client,
    subject: *const c_char,
    queue: *const c_char,
    out: *mut *mut Subscription,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let (client, subject, queue) = unsafe {
            (args::handle(client, "client")?, args::text(subject, "subject")?, args::optional_text(queue, "queue")?)
        };
        let core = block_on(client.core.subscribe(subject, queue))??;
        let sub = Subscription { core: Mutex::new(core), last_error: Mutex::new(CString::default()) };
        // SAFETY: checked out-param.
        unsafe { args::write(out, Box::into_raw(Box::new(sub))) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` for the next message and decodes it (links fetched, download
/// handlers run on this thread). TIMEOUT when no message is decoded in time (one still fetching
/// its links is kept and comes with the next call); NATS_CONNECTION_FAILED when the subscription
/// or connection is closed; a message that fails to decode returns its error code (the
/// subscription goes on). `*out` is set only on NATSBRIDGE_STATUS_OK.
///
/// Ownership: the caller owns `*out` (`natsbridge_envelope_free`).
/// Thread safety: any thread; calls on one subscription wait for each other.
///
/// # Safety
/// `subscription` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_subscription_next(
    subscription: *const Subscription,
    timeout_ms: u64,
    out: *mut *mut Envelope,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let subscription = unsafe { args::handle(subscription, "subscription") }?;
        let timeout = Duration::from_millis(timeout_ms);
        subscription.next(|core| block_on(core.next_timeout(timeout)), |received| deliver(out, received))
    })
}

/// As `natsbridge_subscription_next`, but link payloads are not fetched: each reads as
/// transport "link" with no bytes (`natsbridge_envelope_payload`), and is taken with
/// `natsbridge_envelope_take_link` to read in chunks or save to a file, never whole in memory.
///
/// Ownership: the caller owns `*out` (`natsbridge_envelope_free`).
/// Thread safety: any thread; calls on one subscription wait for each other.
///
/// # Safety
/// `subscription` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_subscription_next_streamed(
    subscription: *const Subscription,
    timeout_ms: u64,
    out: *mut *mut Envelope,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let subscription = unsafe { args::handle(subscription, "subscription") }?;
        let timeout = Duration::from_millis(timeout_ms);
        subscription.next(
            |core| block_on(core.next_streamed_timeout(timeout)),
            |message| {
                // SAFETY: `out` was checked with args::out_param.
                unsafe { args::write(out, Box::into_raw(Box::new(Envelope::streamed(message)?))) };
                Ok(())
            },
        )
    })
}

impl Subscription {
    /// One `next` on the core subscription, its outcome noted for `natsbridge_subscription_last_error`.
    fn next<T>(
        &self,
        wait: impl FnOnce(&mut CoreSubscription) -> Outcome<Option<bridge::error::Result<T>>>,
        deliver: impl FnOnce(T) -> Outcome,
    ) -> Outcome {
        let mut core = self.core.lock().unwrap_or_else(|p| p.into_inner());
        let result = match wait(&mut core)? {
            Some(Ok(item)) => deliver(item),
            Some(Err(e)) => Err(e.into()),
            None => Err(Error::new(ErrorCode::NatsConnectionFailed, "the subscription or connection is closed").into()),
        };
        let message = result.as_ref().err().map(|f| f.message.clone()).unwrap_or_default();
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = CString::new(message).unwrap_or_default();
        result
    }
}

/// The message of the last `natsbridge_subscription_next` on this subscription that failed
/// ("" when the last one succeeded). `natsbridge_last_error()` is per thread; this is for
/// callers whose `next` runs on another thread than the one reading the error (Julia's
/// `@threadcall`).
///
/// Ownership: `*out` is borrowed from the subscription, valid until its next `next` or free.
/// Thread safety: read it from the thread that waited for that `next` to return.
///
/// # Safety
/// `subscription` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_subscription_last_error(
    subscription: *const Subscription,
    out: *mut *const c_char,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let subscription = unsafe { args::handle(subscription, "subscription") }?;
        let message = subscription.last_error.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: checked out-param. The CString's buffer lives until the next `next` replaces it.
        unsafe { args::write(out, message.as_ptr()) };
        Ok(())
    })
}

/// Sends a request and waits up to `timeout_ms` for the reply, decoded. TIMEOUT when no reply
/// comes (or no one is subscribed); a NACK reply returns its error's code with its message.
///
/// Ownership: the caller owns `*reply` (`natsbridge_envelope_free`); `message` is not consumed.
/// Thread safety: any thread; concurrent requests on one client are fine.
///
/// # Safety
/// `client`, `message` NULL or live; `subject` NULL or NUL-terminated; `reply` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_request(
    client: *const Client,
    subject: *const c_char,
    message: *const Message,
    timeout_ms: u64,
    reply: *mut *mut Envelope,
) -> Status {
    guard(|| {
        let out = args::out_param(reply, "reply")?;
        // SAFETY: caller contract.
        let (client, subject, message) = unsafe {
            (args::handle(client, "client")?, args::text(subject, "subject")?, args::handle(message, "message")?)
        };
        let (opts, timeout) = (message.options_on(&client.core)?, Duration::from_millis(timeout_ms));
        let received = block_on(client.core.request(subject, message.payloads.clone(), &opts, timeout))??;
        deliver(out, received)
    })
}

fn reply(client: &Client, to: &ReplyTo, message: &Message, envelope_json: *mut *mut c_char) -> Outcome {
    let opts = message.options_on(&client.core)?;
    let sent = block_on(client.core.reply(to, message.payloads.clone(), &opts))??;
    deliver_json(envelope_json, &sent.json)
}

fn reply_error(client: &Client, to: &ReplyTo, code: i32, text: &str, envelope_json: *mut *mut c_char) -> Outcome {
    let Some(code) = Status::code(code) else {
        return Err(invalid(format!("code {code} is not an error code (1 to {})", ErrorCode::ALL.len())));
    };
    let sent = block_on(client.core.reply_error(to, &Error::new(code, text)))??;
    deliver_json(envelope_json, &sent.json)
}

/// A request given as the JSON of a received envelope, as a host language holds it.
///
/// # Safety
/// `request_json` is NULL or NUL-terminated.
unsafe fn reply_to_json(request_json: *const c_char) -> Outcome<ReplyTo> {
    // SAFETY: caller contract.
    let text = unsafe { args::text(request_json, "request_json") }?;
    let value = serde_json::from_str(text).map_err(|e| invalid(format!("request_json is not JSON: {e}")))?;
    Ok(ReplyTo::from_json(&value)?)
}

/// Replies to a received request with `message` (msg_purpose ACK unless the message sets one;
/// same correlation id; reply_to_msg_id = the request's msg_id; sent to its reply_to, else its
/// NATS reply subject). INVALID_ENVELOPE when the request has no reply address. `envelope_json`
/// may be NULL.
///
/// Ownership: `*envelope_json` is the caller's (`natsbridge_string_free`).
/// Thread safety: any thread.
///
/// # Safety
/// `client`, `request`, `message` NULL or live; `envelope_json` NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_reply(
    client: *const Client,
    request: *const Envelope,
    message: *const Message,
    envelope_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (client, request, message) = unsafe {
            (args::handle(client, "client")?, args::handle(request, "request")?, args::handle(message, "message")?)
        };
        reply(client, &ReplyTo::of(&request.received), message, envelope_json)
    })
}

/// `natsbridge_client_reply` for a request held as JSON: an object with the received envelope's
/// `correlation_id`, `msg_id`, `sender_name`, `sender_id`, `reply_to` and `reply` (its NATS
/// reply subject), as `natsbridge_envelope_field` reads them; other members are ignored. JSON
/// that is not such an object: INVALID_ARGUMENT.
///
/// Ownership: `*envelope_json` is the caller's (`natsbridge_string_free`).
/// Thread safety: any thread.
///
/// # Safety
/// `client`, `message` NULL or live; `request_json` NULL or NUL-terminated; `envelope_json`
/// NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_reply_json(
    client: *const Client,
    request_json: *const c_char,
    message: *const Message,
    envelope_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (client, to, message) = unsafe {
            (args::handle(client, "client")?, reply_to_json(request_json)?, args::handle(message, "message")?)
        };
        reply(client, &to, message, envelope_json)
    })
}

/// Replies to a received request with a NACK carrying `{code, message}`; `code` is one of the
/// statuses 1 to 12 (the core error codes). Other values: INVALID_ARGUMENT.
///
/// Ownership: `*envelope_json` (if not NULL) is the caller's (`natsbridge_string_free`).
/// Thread safety: any thread.
///
/// # Safety
/// `client`, `request` NULL or live; `error_message` NULL or NUL-terminated; `envelope_json`
/// NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_reply_error(
    client: *const Client,
    request: *const Envelope,
    code: i32,
    error_message: *const c_char,
    envelope_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (client, request, text) = unsafe {
            (
                args::handle(client, "client")?,
                args::handle(request, "request")?,
                args::text(error_message, "error_message")?,
            )
        };
        reply_error(client, &ReplyTo::of(&request.received), code, text, envelope_json)
    })
}

/// `natsbridge_client_reply_error` for a request held as JSON (as `natsbridge_client_reply_json`).
///
/// Ownership: `*envelope_json` (if not NULL) is the caller's (`natsbridge_string_free`).
/// Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live; `request_json`, `error_message` NULL or NUL-terminated;
/// `envelope_json` NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_reply_error_json(
    client: *const Client,
    request_json: *const c_char,
    code: i32,
    error_message: *const c_char,
    envelope_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (client, to, text) = unsafe {
            (args::handle(client, "client")?, reply_to_json(request_json)?, args::text(error_message, "error_message")?)
        };
        reply_error(client, &to, code, text, envelope_json)
    })
}

/// What this client sent and received since it connected (spec/PROTOCOL.md §13.3), as a JSON
/// object's text: `messages_sent`, `messages_received`, `payloads_sent`, `payloads_received`,
/// `bytes_sent`, `bytes_received` (each `{"direct": n, "link": n}`), `download_retries`,
/// `checksum_failures`, `downloads`, `download_time_ms`.
///
/// Ownership: `*json` is the caller's (`natsbridge_string_free`). Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live; `json` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_metrics(client: *const Client, json: *mut *mut c_char) -> Status {
    guard(|| {
        let out = args::out_param(json, "json")?;
        // SAFETY: caller contract.
        let client = unsafe { args::handle(client, "client") }?;
        let text = client.core.metrics().to_json().to_string();
        // SAFETY: checked out-param.
        unsafe { args::write(out, args::owned_string(text)?) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` until everything sent so far is written to the server.
/// TIMEOUT or NATS_CONNECTION_FAILED on failure.
///
/// Ownership: nothing changes hands. Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_flush(client: *const Client, timeout_ms: u64) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let client = unsafe { args::handle(client, "client") }?;
        bounded(client.core.flush(), timeout_ms, "flush")
    })
}

/// Drains the connection (writes pending publishes, delivers in-flight messages, unsubscribes)
/// and closes it, waiting up to `timeout_ms`. The client must still be freed. Calls made on it
/// afterwards fail with NATS_CONNECTION_FAILED.
///
/// Ownership: `client` stays the caller's (free it afterwards). Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_close(client: *const Client, timeout_ms: u64) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let client = unsafe { args::handle(client, "client") }?;
        bounded(client.core.drain(), timeout_ms, "close")
    })
}

pub fn bounded<T>(
    fut: impl std::future::Future<Output = bridge::error::Result<T>>,
    timeout_ms: u64,
    what: &str,
) -> Outcome<T> {
    // The timer is made inside the runtime's context (block_on enters it while polling).
    match block_on(async { tokio::time::timeout(Duration::from_millis(timeout_ms), fut).await })? {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::new(ErrorCode::Timeout, format!("{what} did not finish within {timeout_ms} ms")).into()),
    }
}

/// Frees a client (its connection closes once its subscriptions are freed too; pending
/// publishes may be lost: call `natsbridge_client_close` or `_flush` first). NULL is a no-op.
///
/// Ownership: takes `client`. Thread safety: any thread, once no call uses it.
///
/// # Safety
/// `client` NULL or a live client not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_free(client: *mut Client) {
    // SAFETY: caller contract; made by Box::into_raw.
    unsafe { crate::free_box(client) }
}

/// Unsubscribes and frees a subscription. NULL is a no-op.
///
/// Ownership: takes `subscription`. Thread safety: any thread, once no call uses it.
///
/// # Safety
/// `subscription` NULL or a live subscription not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_subscription_free(subscription: *mut Subscription) {
    // SAFETY: caller contract; made by Box::into_raw.
    unsafe { crate::free_box(subscription) }
}
