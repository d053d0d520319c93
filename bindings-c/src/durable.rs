//! JetStream mode (spec/PROTOCOL.md §12): stream setup, durable pull consumers and their
//! deliveries, the link sweep. Settings and rules are core's (`StreamSettings`,
//! `ConsumeOptions`); here they arrive as a JSON object under C's keys (durations in
//! milliseconds, keys ending in `_ms`, as for connection options).

use crate::args;
use crate::client::{Client, bounded, deliver_json};
use crate::envelope::Envelope;
use crate::options::{Vocabulary, canonical};
use crate::runtime::block_on;
use crate::status::{Outcome, Status, guard, invalid};
use bridge::error::{Error, ErrorCode};
use bridge::io::{Consumer as CoreConsumer, DeliveryAck};
use bridge::protocol::TimeUnit;
use bridge::protocol::durable::{ConsumeOptionName, ConsumeOptions, StreamOptionName, StreamSettings};
use serde_json::{Map, Value};
use std::ffi::{CString, c_char, c_int};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// A `{...}` of options under C's keys (NULL: none), as core's canonical names and values.
///
/// # Safety
/// `json` is NULL or NUL-terminated.
unsafe fn json_options<V: Vocabulary>(json: *const c_char, what: &str) -> Outcome<Map<String, Value>> {
    // SAFETY: caller contract.
    let Some(text) = (unsafe { args::optional_text(json, what) })? else {
        return Ok(Map::new());
    };
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(format!("{what} is not JSON: {e}")))?;
    let Value::Object(given) = value else {
        return Err(invalid(format!("{what} is not a JSON object: {text}")));
    };
    given.into_iter().map(|(key, value)| Ok((canonical::<V>(&key)?.to_owned(), value))).collect()
}

fn deliver_value(out: *mut *mut c_char, value: Value) -> Outcome {
    deliver_json(out, value.to_string().as_bytes())
}

/// Creates the stream `name` (or updates it to these settings), and unless `dead_letter` is
/// false its dead-letter stream `<name>_DEAD_LETTER` (capturing `natsbridge.dead_letter.<name>`),
/// waiting up to `timeout_ms`. `options_json` is NULL or a JSON object of core's stream options
/// (`natsbridge_stream_option_names()` lists them): `subjects` (an array, or comma-separated
/// text; default `["<name>.>"]`), `storage` ("file" | "memory"), `replicas` (1–5), `max_age_ms`
/// (default and limit: the link TTL, `object_store_ttl_ms`), `retention` ("limits" | "workqueue"
/// | "interest"), `duplicate_window_ms` (default 120000, or max_age when shorter; longer than
/// max_age: INVALID_ARGUMENT), `dead_letter` (true/false). An unknown
/// key, a duration without `_ms`, a bad value or stream name, or a `max_age_ms` longer than the
/// link TTL: INVALID_ARGUMENT; the server refusing: NATS_CONNECTION_FAILED.
///
/// `summary_json` may be NULL; otherwise it receives `{"name", "subjects", "max_age_ms" (0:
/// unlimited), "replicas", "messages", "dead_letter_stream" (null when none)}`.
///
/// Ownership: `*summary_json` is the caller's (`natsbridge_string_free`).
/// Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live; `name`, `options_json` NULL or NUL-terminated; `summary_json` NULL or
/// valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_add_stream(
    client: *const Client,
    name: *const c_char,
    options_json: *const c_char,
    timeout_ms: u64,
    summary_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (client, name, options) = unsafe {
            (
                args::handle(client, "client")?,
                args::text(name, "name")?,
                json_options::<StreamOptionName>(options_json, "options_json")?,
            )
        };
        let settings = StreamSettings::from_json(name, &options, TimeUnit::Millis)?;
        let summary = bounded(client.core.add_stream(&settings), timeout_ms, "add_stream")?;
        deliver_value(summary_json, summary.to_json(TimeUnit::Millis))
    })
}

/// A durable pull consumer; `next` calls on one consumer are serialized.
pub struct Consumer {
    /// None once the connection is drained.
    core: Mutex<Option<CoreConsumer>>,
    /// The message of the last failed `next` (for callers whose calls run on pool threads).
    last_error: Mutex<CString>,
}

/// One decoded delivery and how to settle it. Read-only but for its settlement, which is atomic:
/// safe to use from several threads at once.
pub struct Delivery {
    envelope: Envelope,
    info: CString,
    ack: DeliveryAck,
}

/// A durable pull consumer `durable` on `stream` (created, or updated to these options; explicit
/// acks), waiting up to `timeout_ms` for the server. `options_json` is NULL or a JSON object of
/// core's consume options (`natsbridge_consume_option_names()` lists them): `ack_wait_ms`
/// (default 30000), `max_deliver` (-1: unlimited, the default), `backoff_ms` (an array of
/// redelivery delays), `max_ack_pending`, `double_ack` (an ack waits for the server's
/// confirmation), `nak_delay_ms` (default 1000: the first delay after a failed link download,
/// doubling per delivery up to 30 s), `dead_letter_subject` (default
/// `natsbridge.dead_letter.<stream>`), `filter_subject`, `batch` (messages per pull, default 100),
/// `deliver_from` ("all" | "new"). No such stream, a bad name or option, or redeliveries that
/// could outlast the link TTL: INVALID_ARGUMENT.
///
/// Deliveries that can never decode are not handed out: they go to the dead-letter subject as an
/// error envelope carrying the original bytes and are terminated; a failed link download is
/// nak'd to come back later (spec/PROTOCOL.md §12.3).
///
/// Ownership: the caller owns `*out` (`natsbridge_consumer_free`); it keeps the connection open,
/// so client and consumer may be freed in any order. Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live; strings NULL or NUL-terminated; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_consume(
    client: *const Client,
    stream: *const c_char,
    durable: *const c_char,
    options_json: *const c_char,
    timeout_ms: u64,
    out: *mut *mut Consumer,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let (client, stream, durable, options) = unsafe {
            (
                args::handle(client, "client")?,
                args::text(stream, "stream")?,
                args::text(durable, "durable")?,
                json_options::<ConsumeOptionName>(options_json, "options_json")?,
            )
        };
        let opts = ConsumeOptions::from_json(&options, TimeUnit::Millis)?;
        let core = bounded(client.core.consume(stream, durable, opts), timeout_ms, "consume")?;
        let consumer = Consumer { core: Mutex::new(Some(core)), last_error: Mutex::new(CString::default()) };
        // SAFETY: checked out-param.
        unsafe { args::write(out, Box::into_raw(Box::new(consumer))) };
        Ok(())
    })
}

fn closed() -> Error {
    Error::new(ErrorCode::NatsConnectionFailed, "the consumer's connection is closed")
}

fn next(consumer: &Consumer, timeout_ms: u64, out: *mut *mut Delivery) -> Outcome {
    let mut core = consumer.core.lock().unwrap_or_else(|p| p.into_inner());
    let Some(pulling) = core.as_mut() else { return Err(closed().into()) };
    // Core's `next` is cancel-safe: a delivery still decoding at the time limit stays in the
    // consumer for the next call.
    match block_on(pulling.next_timeout(Duration::from_millis(timeout_ms)))? {
        Some(Ok(d)) => {
            let info = CString::new(d.info.to_json().to_string()).map_err(|_| invalid("NUL in the delivery info"))?;
            let delivery = Delivery { envelope: Envelope::new(d.received)?, info, ack: d.ack };
            // SAFETY: `out` was checked with args::out_param.
            unsafe { args::write(out, Box::into_raw(Box::new(delivery))) };
            Ok(())
        }
        Some(Err(e)) => Err(e.into()),
        None => {
            crate::runtime::drop_in_runtime(core.take());
            Err(closed().into())
        }
    }
}

/// Waits up to `timeout_ms` for the next decoded delivery (links fetched and verified; download
/// handlers run on this thread). TIMEOUT when none is ready in time: a delivery still arriving or
/// decoding then is not dropped, the next call goes on with it. NATS_CONNECTION_FAILED once the
/// connection is closed. The consumer pulls again by itself after a server restart or a
/// reconnect. `*out` is set only on NATSBRIDGE_STATUS_OK; settle it (`natsbridge_delivery_ack`,
/// `_nak`, `_in_progress`, `_term`) before its ack wait runs out, or the server delivers it again.
///
/// Ownership: the caller owns `*out` (`natsbridge_delivery_free`; freeing does not settle it).
/// Thread safety: any thread; calls on one consumer wait for each other.
///
/// # Safety
/// `consumer` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_consumer_next(
    consumer: *const Consumer,
    timeout_ms: u64,
    out: *mut *mut Delivery,
) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let consumer = unsafe { args::handle(consumer, "consumer") }?;
        let result = next(consumer, timeout_ms, out);
        let message = result.as_ref().err().map(|f| f.message.clone()).unwrap_or_default();
        *consumer.last_error.lock().unwrap_or_else(|p| p.into_inner()) = CString::new(message).unwrap_or_default();
        result
    })
}

/// The message of the last `natsbridge_consumer_next` on this consumer that failed ("" when the
/// last one succeeded), for callers whose `next` runs on another thread than the one reading the
/// error (Julia's `@threadcall`), as `natsbridge_subscription_last_error`.
///
/// Ownership: `*out` is borrowed from the consumer, valid until its next `next` or free.
/// Thread safety: read it from the thread that waited for that `next` to return.
///
/// # Safety
/// `consumer` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_consumer_last_error(consumer: *const Consumer, out: *mut *const c_char) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let consumer = unsafe { args::handle(consumer, "consumer") }?;
        let message = consumer.last_error.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: checked out-param. The CString's buffer lives until the next `next` replaces it.
        unsafe { args::write(out, message.as_ptr()) };
        Ok(())
    })
}

/// The decoded message of a delivery, read with `natsbridge_envelope_field` /
/// `_payload_count` / `_payload` (and replied to with `natsbridge_client_reply`) like one from
/// `natsbridge_subscription_next`; its `subject` field is the subject it was published on.
///
/// Ownership: `*out` is borrowed from `delivery`, valid until `natsbridge_delivery_free`; never
/// pass it to `natsbridge_envelope_free`. Thread safety: any thread.
///
/// # Safety
/// `delivery` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_delivery_envelope(delivery: *const Delivery, out: *mut *const Envelope) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let delivery = unsafe { args::handle(delivery, "delivery") }?;
        // SAFETY: checked out-param.
        unsafe { args::write(out, &delivery.envelope as *const Envelope) };
        Ok(())
    })
}

/// Where a delivery came from, as the server says, as JSON text: `{"stream", "consumer",
/// "stream_sequence", "consumer_sequence", "delivered" (1 on the first delivery), "pending",
/// "replayed", "redelivered"}` (`redelivered`: delivered before, by the server's count or because
/// the server lost its record of an earlier delivery, `replayed`).
///
/// Ownership: `*out` is borrowed from `delivery`, valid until it is freed.
/// Thread safety: any thread.
///
/// # Safety
/// `delivery` NULL or live; `out` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_delivery_info_json(delivery: *const Delivery, out: *mut *const c_char) -> Status {
    guard(|| {
        let out = args::out_param(out, "out")?;
        // SAFETY: caller contract.
        let delivery = unsafe { args::handle(delivery, "delivery") }?;
        // SAFETY: checked out-param.
        unsafe { args::write(out, delivery.info.as_ptr()) };
        Ok(())
    })
}

/// # Safety
/// `delivery` NULL or live.
unsafe fn settle<F: Future<Output = bridge::error::Result<()>>>(
    delivery: *const Delivery,
    timeout_ms: u64,
    what: &str,
    how: impl FnOnce(DeliveryAck) -> F,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let delivery = unsafe { args::handle(delivery, "delivery") }?;
        bounded(how(delivery.ack.clone()), timeout_ms, what)
    })
}

/// Settles a delivery as processed: the server does not deliver it again. Waits up to
/// `timeout_ms`: for the server's confirmation with the consume option `double_ack`, or when the
/// delivery's link objects are deleted after it (work-queue streams); otherwise only until the
/// ack is written. A delivery settled before (ack, nak or term): INVALID_ARGUMENT. TIMEOUT or
/// NATS_CONNECTION_FAILED still count as settling (the server delivers it again after its ack
/// wait if the ack was lost).
///
/// Ownership: nothing changes hands. Thread safety: any thread.
///
/// # Safety
/// `delivery` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_delivery_ack(delivery: *const Delivery, timeout_ms: u64) -> Status {
    // SAFETY: caller contract.
    unsafe { settle(delivery, timeout_ms, "ack", |ack| async move { ack.ack().await }) }
}

/// Settles a delivery as not processed: the server delivers it again after `delay_ms` (0: at
/// once), waiting up to `timeout_ms` to write it. Settled before: INVALID_ARGUMENT.
///
/// Ownership: nothing changes hands. Thread safety: any thread.
///
/// # Safety
/// `delivery` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_delivery_nak(delivery: *const Delivery, delay_ms: u64, timeout_ms: u64) -> Status {
    let delay = (delay_ms > 0).then(|| Duration::from_millis(delay_ms));
    // SAFETY: caller contract.
    unsafe { settle(delivery, timeout_ms, "nak", |ack| async move { ack.nak(delay).await }) }
}

/// Tells the server the delivery is still being worked on: it waits another ack wait before
/// delivering it again. May be called any number of times before the delivery is settled; after:
/// INVALID_ARGUMENT.
///
/// Ownership: nothing changes hands. Thread safety: any thread.
///
/// # Safety
/// `delivery` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_delivery_in_progress(delivery: *const Delivery, timeout_ms: u64) -> Status {
    // SAFETY: caller contract.
    unsafe { settle(delivery, timeout_ms, "in_progress", |ack| async move { ack.in_progress().await }) }
}

/// Settles a delivery as never to be processed: the server does not deliver it again (no dead
/// letter is written; that is for what cannot decode). Settled before: INVALID_ARGUMENT.
///
/// Ownership: nothing changes hands. Thread safety: any thread.
///
/// # Safety
/// `delivery` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_delivery_term(delivery: *const Delivery, timeout_ms: u64) -> Status {
    // SAFETY: caller contract.
    unsafe { settle(delivery, timeout_ms, "term", |ack| async move { ack.term().await }) }
}

/// Frees a delivery and everything borrowed from it. Freeing does not settle it: one left
/// unsettled is delivered again after its ack wait. NULL is a no-op.
///
/// Ownership: takes `delivery`. Thread safety: any thread, once no call uses it.
///
/// # Safety
/// `delivery` NULL or a live delivery not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_delivery_free(delivery: *mut Delivery) {
    // SAFETY: caller contract; made by Box::into_raw.
    unsafe { crate::free_box(delivery) }
}

/// Frees a consumer (the durable stays on the server; consuming it again resumes where it
/// was). A delivery it was still decoding is delivered again after its ack wait. NULL is a no-op.
///
/// Ownership: takes `consumer`. Thread safety: any thread, once no call uses it.
///
/// # Safety
/// `consumer` NULL or a live consumer not in use elsewhere.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_consumer_free(consumer: *mut Consumer) {
    // SAFETY: caller contract; made by Box::into_raw.
    unsafe { crate::free_box(consumer) }
}

/// Finds the object-store link objects uploaded for `stream`'s messages whose message is not in
/// the stream (a publish that failed after its upload, or a message gone before its links) and
/// older than `min_age_ms` (negative: the stream's duplicate window, within which a publish may
/// still be retried), and removes them unless `dry_run` is non-zero; waits up to `timeout_ms`.
/// No such stream, or a client without the object store: INVALID_ARGUMENT. (Plik and HTTP stores
/// cannot be listed; their TTL bounds what a failed publish leaves.)
///
/// `report_json` may be NULL; otherwise it receives `{"stream", "checked" (link objects of the
/// stream), "orphans": [{"name", "url", "size", "msg_id", "age_ms"}], "dry_run"}`.
///
/// Ownership: `*report_json` is the caller's (`natsbridge_string_free`). Thread safety: any thread.
///
/// # Safety
/// `client` NULL or live; `stream` NULL or NUL-terminated; `report_json` NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn natsbridge_client_sweep_links(
    client: *const Client,
    stream: *const c_char,
    dry_run: c_int,
    min_age_ms: i64,
    timeout_ms: u64,
    report_json: *mut *mut c_char,
) -> Status {
    guard(|| {
        // SAFETY: caller contract.
        let (client, stream) = unsafe { (args::handle(client, "client")?, args::text(stream, "stream")?) };
        let min_age = u64::try_from(min_age_ms).ok().map(Duration::from_millis);
        let report = bounded(client.core.sweep_links(stream, min_age, dry_run != 0), timeout_ms, "sweep_links")?;
        deliver_value(report_json, report.to_json(TimeUnit::Millis))
    })
}

/// Every key `natsbridge_client_add_stream`'s `options_json` takes, as a NULL-terminated array.
///
/// Ownership: static, never freed. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_stream_option_names() -> *const *const c_char {
    StreamOptionName::c_names().as_ptr()
}

/// Every key `natsbridge_client_consume`'s `options_json` takes, as a NULL-terminated array.
///
/// Ownership: static, never freed. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_consume_option_names() -> *const *const c_char {
    ConsumeOptionName::c_names().as_ptr()
}
