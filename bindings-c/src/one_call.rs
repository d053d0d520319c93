//! The seeds' one-call style (`smartsend(subject, data, broker_url=...)`) over core's
//! `one_call`: a process-wide connection per broker and file server, made on first use.

use crate::args;
use crate::client::{bounded, deliver, deliver_json, sent_json};
use crate::envelope::Envelope;
use crate::message::Message;
use crate::runtime::block_on;
use crate::status::{Outcome, Status, guard};
use bridge::io::one_call::{self, CallOptions};
use std::ffi::c_char;

/// # Safety
/// `broker_url`, `fileserver_url` are NULL or NUL-terminated.
unsafe fn call_options(broker_url: *const c_char, fileserver_url: *const c_char) -> Outcome<CallOptions> {
    // SAFETY: caller contract.
    let (broker_url, fileserver_url) = unsafe {
        (args::optional_text(broker_url, "broker_url")?, args::optional_text(fileserver_url, "fileserver_url")?)
    };
    Ok(CallOptions {
        broker_url: broker_url.map(str::to_owned),
        fileserver_url: fileserver_url.map(str::to_owned),
        ..CallOptions::default()
    })
}

/// smartsend without a client: on the process-wide connection to `broker_url` (NULL: the
/// `NATS_URL` environment variable, else nats://localhost:4222) whose link payloads go to
/// `fileserver_url` (NULL: `FILESERVER_URL`, else the JetStream object store). A per-message
/// upload handler (`natsbridge_message_set_upload_handler`) takes the links instead, with
/// `fileserver_url` as its first argument. `envelope_json` may be NULL. Errors as
/// `natsbridge_client_send`. Call `natsbridge_shared_close` before the program exits.
///
/// Ownership: `*envelope_json` is the caller's (`natsbridge_string_free`); `message` is not
/// consumed. Thread safety: any thread.
///
/// # Safety
/// `message` NULL or live; strings NULL or NUL-terminated; `envelope_json` NULL or valid for
/// writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_smartsend(
    subject: *const c_char,
    message: *const Message,
    broker_url: *const c_char,
    fileserver_url: *const c_char,
    envelope_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (subject, message, mut call) = unsafe {
            (
                args::text(subject, "subject")?,
                args::handle(message, "message")?,
                call_options(broker_url, fileserver_url)?,
            )
        };
        call.upload_handler.clone_from(&message.upload);
        let payloads = message.payloads.clone();
        let sent = block_on(one_call::smartsend(subject, payloads, message.options.clone(), &call))??;
        deliver_json(envelope_json, &sent_json(&sent))
    })
}

/// smartreceive without a client: decodes raw message bytes (an envelope's JSON). Direct
/// payloads need no connection; links are fetched through the process-wide connection to
/// `broker_url` with `fileserver_url`'s file server (NULL: as in `natsbridge_smartsend`).
/// Errors as `natsbridge_client_receive`.
///
/// Ownership: `bytes` is read only during the call; the caller owns `*out`
/// (`natsbridge_envelope_free`). Thread safety: any thread.
///
/// # Safety
/// `bytes` valid for `len` bytes; strings NULL or NUL-terminated; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_smartreceive(
    bytes: *const u8,
    len: usize,
    broker_url: *const c_char,
    fileserver_url: *const c_char,
    out: *mut *mut Envelope,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let (bytes, call) = unsafe { (args::bytes(bytes, len, "bytes")?, call_options(broker_url, fileserver_url)?) };
        deliver(out, block_on(one_call::smartreceive(bytes, &call))??)
    })
}

/// Drains and closes every connection of the one-call style, waiting up to `timeout_ms` in all
/// (publishes still buffered are written first). Later one-call functions connect anew.
///
/// Ownership: nothing changes hands. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_shared_close(timeout_ms: u64) -> Status {
    guard(|| {
        let clients = one_call::take_shared_clients();
        let drain = futures::future::try_join_all(clients.iter().map(|c| c.drain()));
        bounded(async { drain.await.map(drop) }, timeout_ms, "shared_close")
    })
}
