//! A subscription handing JS decoded envelopes in batches: every message already waiting (and
//! decodable without waiting) comes back from one call, so a busy subscription costs one
//! N-API round trip per batch, not a Promise per message. The batching is core's.

use crate::convert::{self, ArrowOut, Ready};
use crate::errors;
use crate::runtime;
use napi::bindgen_prelude::{Null, ToNapiValue, Unknown, within_runtime_if_available};
use napi::{Env, Result};
use napi_derive::napi;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::{Arrival, Stopper};
use natsbridge::protocol::TimeUnit;
use std::sync::Arc;

/// Core's subscription (None once unsubscribed), held by one `next_batch` at a time, and its
/// stopper, which ends a waiting `next_batch` when the subscription is stopped.
struct Shared {
    sub: tokio::sync::Mutex<Option<natsbridge::io::Subscription>>,
    stopper: Stopper,
}

#[napi]
pub struct Subscription {
    shared: Arc<Shared>,
    arrow: ArrowOut,
}

fn ready_batch(batch: Vec<CoreResult<Arrival>>, arrow: ArrowOut) -> Vec<CoreResult<Ready>> {
    batch.into_iter().map(|a| a.and_then(|a| convert::ready_arrival(a, arrow))).collect()
}

fn batch_to_js(env: &Env, batch: Option<Vec<CoreResult<Ready>>>) -> Result<Unknown<'_>> {
    convert::batch_to_js(env, batch, convert::pack_ready)
}

impl Subscription {
    pub fn new(sub: natsbridge::io::Subscription, arrow: ArrowOut) -> Subscription {
        let stopper = sub.stopper();
        Subscription { shared: Arc::new(Shared { sub: tokio::sync::Mutex::new(Some(sub)), stopper }), arrow }
    }
}

#[napi]
impl Subscription {
    /// Up to `max` decoded messages: those ready now without waiting, else a Promise of the
    /// next one (and any ready behind it). TIMEOUT error when nothing arrives in `timeout` ms.
    #[napi(
        ts_return_type = "[string, Array<unknown>] | null | Error | Promise<[string, Array<unknown>] | null | Error>"
    )]
    pub fn next_batch<'env>(&self, env: &'env Env, max: u32, timeout: Option<f64>) -> Result<Unknown<'env>> {
        let (max, arrow) = (max.max(1) as usize, self.arrow);
        if let Ok(mut guard) = self.shared.sub.try_lock() {
            let Some(sub) = guard.as_mut() else { return batch_to_js(env, None) };
            let mut ready = Vec::new();
            let open = within_runtime_if_available(|| sub.take_ready(max, &mut ready));
            if !ready.is_empty() {
                drop(guard);
                return batch_to_js(env, Some(ready_batch(ready, arrow)));
            }
            if !open {
                return batch_to_js(env, None);
            }
        }
        let timeout = match timeout.map(|ms| TimeUnit::Millis.duration("timeout", ms)).transpose() {
            Ok(t) => t,
            Err(e) => return errors::to_js(env, &e),
        };
        let shared = self.shared.clone();
        let wait = async move {
            let mut guard = shared.sub.lock().await;
            let Some(sub) = guard.as_mut() else { return Ok(None) };
            let batch = match timeout {
                None => sub.next_batch(max).await,
                Some(t) => tokio::time::timeout(t, sub.next_batch(max))
                    .await
                    .map_err(|_| Error::new(ErrorCode::Timeout, format!("no message within {t:?}")))?,
            };
            Ok(batch.map(|b| ready_batch(b, arrow)))
        };
        runtime::spawn(env, wait, batch_to_js)
    }

    /// The next message with each link payload a `LinkStream` (nothing is fetched until it is
    /// read), or null once closed. TIMEOUT error when nothing arrives in `timeout` ms.
    #[napi(ts_return_type = "Promise<[string, Array<unknown>] | null | Error>")]
    pub fn next_streamed<'env>(&self, env: &'env Env, timeout: Option<f64>) -> Result<Unknown<'env>> {
        let timeout = match timeout.map(|ms| TimeUnit::Millis.duration("timeout", ms)).transpose() {
            Ok(t) => t,
            Err(e) => return errors::to_js(env, &e),
        };
        let (shared, arrow) = (self.shared.clone(), self.arrow);
        let wait = async move {
            let mut guard = shared.sub.lock().await;
            let Some(sub) = guard.as_mut() else { return Ok(None) };
            let next = match timeout {
                Some(t) => sub.next_streamed_timeout(t).await,
                None => sub.next_streamed().await,
            };
            next.map(|m| m.and_then(|m| convert::ready_streamed(m, arrow))).transpose()
        };
        runtime::spawn(env, wait, |env, ready| match ready {
            Some(r) => convert::ready_to_js(env, r),
            None => Null.into_unknown(env),
        })
    }

    /// Stops the subscription; messages not yet taken are dropped, a waiting `next_batch` ends.
    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn unsubscribe<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        self.shared.stopper.stop();
        let shared = self.shared.clone();
        runtime::eager(
            env,
            async move {
                match shared.sub.lock().await.take() {
                    Some(sub) => sub.unsubscribe().await,
                    None => Ok(()),
                }
            },
            |env, ()| Null.into_unknown(env),
        )
    }
}
