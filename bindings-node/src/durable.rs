//! JetStream mode (spec/PROTOCOL.md §12): stream setup, durable consumers and their deliveries,
//! the link sweep. Settings and rules are core's (`StreamSettings`, `ConsumeOptions`, the
//! settlement of what fails to decode); here they are converted, durations in milliseconds.
//! Plain data (summaries, delivery info, sweep reports) goes to JS as JSON text, which
//! `index.js` parses: keys are core's snake_case names, as on the envelope.

use crate::convert::{self, ArrowOut, Ready, Val};
use crate::{errors, json_object, runtime};
use napi::bindgen_prelude::{Null, ToNapiValue, Unknown, within_runtime_if_available};
use napi::{Env, Result};
use napi_derive::napi;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::{Client, Stopper, StreamSummary, SweepReport};
use natsbridge::protocol::TimeUnit;
use natsbridge::protocol::durable::{ConsumeOptions, StreamSettings};
use std::sync::Arc;
use std::time::Duration;

fn millis(what: &str, ms: Option<f64>) -> CoreResult<Option<Duration>> {
    ms.map(|ms| TimeUnit::Millis.duration(what, ms)).transpose()
}

/// JSON text made off the JS thread (index.js parses it).
pub fn text_to_js(env: &Env, text: String) -> Result<Unknown<'_>> {
    text.into_unknown(env)
}

pub fn stream_settings(name: &str, options: Option<String>) -> CoreResult<StreamSettings> {
    StreamSettings::from_json(name, &json_object(options, "stream options")?, TimeUnit::Millis)
}

pub fn consume_options(options: Option<String>) -> CoreResult<ConsumeOptions> {
    ConsumeOptions::from_json(&json_object(options, "consume options")?, TimeUnit::Millis)
}

pub fn min_age(ms: Option<f64>) -> CoreResult<Option<Duration>> {
    millis("min_age", ms)
}

pub async fn add_stream(client: Client, settings: StreamSettings) -> CoreResult<String> {
    let summary: StreamSummary = client.add_stream(&settings).await?;
    Ok(summary.to_json(TimeUnit::Millis).to_string())
}

/// The report, each orphan's age as `age_ms`.
pub async fn sweep(client: Client, stream: String, min_age: Option<Duration>, dry_run: bool) -> CoreResult<String> {
    let report: SweepReport = client.sweep_links(&stream, min_age, dry_run).await?;
    Ok(report.to_json(TimeUnit::Millis).to_string())
}

/// Core's consumer (None once closed or ended), held by one `next_batch` at a time, and its
/// stopper, which ends a waiting `next_batch` on close.
struct State {
    consumer: tokio::sync::Mutex<Option<natsbridge::io::Consumer>>,
    stopper: Stopper,
}

/// A durable pull consumer handing JS decoded deliveries in batches, as a subscription does:
/// every delivery already decoded (or decodable without waiting) comes back from one call.
#[napi]
pub struct Consumer {
    state: Arc<State>,
    arrow: ArrowOut,
}

pub async fn consume(
    client: Client,
    stream: String,
    durable: String,
    opts: ConsumeOptions,
    arrow: ArrowOut,
) -> CoreResult<Consumer> {
    let consumer = client.consume(&stream, &durable, opts).await?;
    let state = State { stopper: consumer.stopper(), consumer: tokio::sync::Mutex::new(Some(consumer)) };
    Ok(Consumer { state: Arc::new(state), arrow })
}

/// A decoded delivery in the shapes JS receives, made off the JS thread when it waited.
struct ReadyDelivery {
    ready: Ready,
    info: String,
    ack: natsbridge::io::DeliveryAck,
}

fn ready_delivery(d: natsbridge::io::Delivery, arrow: ArrowOut) -> CoreResult<ReadyDelivery> {
    Ok(ReadyDelivery { ready: convert::ready(d.received, arrow)?, info: d.info.to_json().to_string(), ack: d.ack })
}

fn ready_deliveries(
    batch: Vec<CoreResult<natsbridge::io::Delivery>>,
    arrow: ArrowOut,
) -> Vec<CoreResult<ReadyDelivery>> {
    batch.into_iter().map(|d| d.and_then(|d| ready_delivery(d, arrow))).collect()
}

/// Each delivery as a subscription's message ([`convert::pack_ready`]), then the info's JSON
/// text and its [`DeliveryAck`] in `vals`.
fn batch_to_js(env: &Env, batch: Option<Vec<CoreResult<ReadyDelivery>>>) -> Result<Unknown<'_>> {
    convert::batch_to_js(env, batch, |pack, d| {
        convert::pack_ready(pack, d.ready);
        pack.str(&d.info);
        pack.val(Val::Ack(d.ack));
    })
}

/// Waits for the next delivery (the consumer's lock held), then takes what is ready behind it.
async fn wait_batch(
    state: Arc<State>,
    max: usize,
    arrow: ArrowOut,
    timeout: Option<Duration>,
) -> CoreResult<Option<Vec<CoreResult<ReadyDelivery>>>> {
    let mut guard = state.consumer.lock().await;
    let Some(consumer) = guard.as_mut() else { return Ok(None) };
    let batch = match timeout {
        None => consumer.next_batch(max).await,
        // TIMEOUT: the consumer goes on (a delivery being decoded stays in it).
        Some(t) => tokio::time::timeout(t, consumer.next_batch(max))
            .await
            .map_err(|_| Error::new(ErrorCode::Timeout, format!("no delivery within {t:?}")))?,
    };
    if batch.is_none() && !state.stopper.is_stopped() {
        *guard = None; // the connection ended it
    }
    Ok(batch.map(|b| ready_deliveries(b, arrow)))
}

#[napi]
impl Consumer {
    /// Up to `max` decoded deliveries: those ready now without waiting, else a Promise of the
    /// next one (and any ready behind it); null once closed (or the connection is). TIMEOUT error
    /// when nothing arrives within `timeout` ms.
    #[napi(
        ts_return_type = "[string, Array<unknown>] | null | Error | Promise<[string, Array<unknown>] | null | Error>"
    )]
    pub fn next_batch<'env>(&self, env: &'env Env, max: u32, timeout: Option<f64>) -> Result<Unknown<'env>> {
        let (max, arrow) = (max.max(1) as usize, self.arrow);
        if let Ok(mut guard) = self.state.consumer.try_lock() {
            let Some(consumer) = guard.as_mut() else { return batch_to_js(env, None) };
            let mut ready = Vec::new();
            let open = within_runtime_if_available(|| consumer.take_ready(max, &mut ready));
            if !open && !self.state.stopper.is_stopped() {
                *guard = None; // the connection ended it
            }
            drop(guard);
            if !ready.is_empty() {
                return batch_to_js(env, Some(ready_deliveries(ready, arrow)));
            }
            if !open {
                return batch_to_js(env, None);
            }
        }
        let timeout = match millis("timeout", timeout) {
            Ok(t) => t,
            Err(e) => return errors::to_js(env, &e),
        };
        runtime::spawn(env, wait_batch(self.state.clone(), max, arrow, timeout), batch_to_js)
    }

    /// Stops pulling: a waiting and every later `next_batch` gives null. The durable consumer
    /// stays on the server, where a consumer of the same name resumes.
    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let state = self.state.clone();
        state.stopper.stop();
        runtime::eager(
            env,
            async move {
                drop(state.consumer.lock().await.take());
                Ok(())
            },
            |env, ()| Null.into_unknown(env),
        )
    }
}

/// How one delivery is settled (core's `DeliveryAck`); a second settlement is INVALID_ARGUMENT.
#[napi]
pub struct DeliveryAck {
    ack: natsbridge::io::DeliveryAck,
}

impl DeliveryAck {
    pub(crate) fn new(ack: natsbridge::io::DeliveryAck) -> DeliveryAck {
        DeliveryAck { ack }
    }
}

fn done(env: &Env, (): ()) -> Result<Unknown<'_>> {
    Null.into_unknown(env)
}

#[napi]
impl DeliveryAck {
    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn ack<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let ack = self.ack.clone();
        runtime::eager(env, async move { ack.ack().await }, done)
    }

    /// Delivered again after `delay` ms (none: at once).
    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn nak<'env>(&self, env: &'env Env, delay: Option<f64>) -> Result<Unknown<'env>> {
        let delay = match millis("delay", delay) {
            Ok(d) => d,
            Err(e) => return errors::to_js(env, &e),
        };
        let ack = self.ack.clone();
        runtime::eager(env, async move { ack.nak(delay).await }, done)
    }

    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn in_progress<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let ack = self.ack.clone();
        runtime::eager(env, async move { ack.in_progress().await }, done)
    }

    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn term<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let ack = self.ack.clone();
        runtime::eager(env, async move { ack.term().await }, done)
    }
}
