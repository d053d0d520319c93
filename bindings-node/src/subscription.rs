//! A subscription handing JS decoded envelopes in batches: every message already waiting (and
//! decodable without waiting) comes back from one call, so a busy subscription costs one
//! N-API round trip per batch, not a Promise per message.

use crate::convert::{self, ArrowOut, Ready};
use crate::errors;
use crate::runtime;
use napi::bindgen_prelude::{Null, ToNapiValue, Unknown, within_runtime_if_available};
use napi::{Env, Result};
use napi_derive::napi;
use natsbridge::error::{Error, ErrorCode, Result as CoreResult};
use natsbridge::io::Received;
use natsbridge::protocol::TimeUnit;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// One `next()` of core's subscription, owning it for the while (so a started step, which may
/// have taken a message off the socket and be fetching its links, is never dropped and lost).
type Step = Pin<Box<dyn Future<Output = (natsbridge::io::Subscription, Option<CoreResult<Received>>)> + Send>>;

fn step(mut sub: natsbridge::io::Subscription) -> Step {
    Box::pin(async move {
        let item = sub.next().await;
        (sub, item)
    })
}

#[derive(Default)]
struct State {
    idle: Option<natsbridge::io::Subscription>,
    in_flight: Option<Step>,
    closed: bool,
}

impl State {
    fn take_step(&mut self) -> Option<Step> {
        self.in_flight.take().or_else(|| self.idle.take().map(step))
    }

    /// Takes what one poll each yields, up to `max`; a step still pending stays in flight.
    fn drain_ready(&mut self, out: &mut Vec<CoreResult<Ready>>, max: usize, arrow: ArrowOut) {
        while out.len() < max && !self.closed {
            let Some(mut fut) = self.take_step() else { return };
            let polled = within_runtime_if_available(|| {
                fut.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
            });
            match polled {
                Poll::Ready((sub, item)) => {
                    self.idle = Some(sub);
                    self.push(item, out, arrow);
                }
                Poll::Pending => {
                    self.in_flight = Some(fut);
                    return;
                }
            }
        }
    }

    fn push(&mut self, item: Option<CoreResult<Received>>, out: &mut Vec<CoreResult<Ready>>, arrow: ArrowOut) {
        match item {
            None => {
                self.closed = true;
                self.idle = None;
            }
            Some(r) => out.push(r.and_then(|r| convert::ready(r, arrow))),
        }
    }
}

/// `reader` serializes waiting `next_batch` calls (a step is owned by one at a time); `state`
/// is held only while polling, never across an await; `closing` wakes a waiting call when the
/// subscription is stopped.
struct Shared {
    reader: tokio::sync::Mutex<()>,
    state: std::sync::Mutex<State>,
    closing: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[napi]
pub struct Subscription {
    shared: Arc<Shared>,
    arrow: ArrowOut,
}

/// `null` once the subscription is closed, else an array of decoded messages and Error objects
/// (a message that failed to decode; the subscription goes on).
fn batch_to_js(env: &Env, batch: Option<Vec<CoreResult<Ready>>>) -> Result<Unknown<'_>> {
    let Some(batch) = batch else { return Null.into_unknown(env) };
    let mut arr = env.create_array(batch.len() as u32)?;
    for (i, item) in batch.into_iter().enumerate() {
        let value = match item {
            Ok(r) => convert::ready_to_js(env, r)?,
            Err(e) => errors::to_js(env, &e)?,
        };
        arr.set(i as u32, value)?;
    }
    arr.into_unknown(env)
}

impl Subscription {
    pub fn new(sub: natsbridge::io::Subscription, arrow: ArrowOut) -> Subscription {
        let state = State { idle: Some(sub), ..State::default() };
        let shared = Shared {
            reader: tokio::sync::Mutex::new(()),
            state: std::sync::Mutex::new(state),
            closing: tokio::sync::watch::channel(false).0,
        };
        Subscription { shared: Arc::new(shared), arrow }
    }
}

/// Waits for the next message (with the reader lock held), then takes what is ready behind it.
async fn wait_batch(
    shared: Arc<Shared>,
    max: usize,
    arrow: ArrowOut,
    timeout: Option<Duration>,
) -> CoreResult<Option<Vec<CoreResult<Ready>>>> {
    let _reader = shared.reader.lock().await;
    let mut closing = shared.closing.subscribe();
    let Some(mut fut) = ({
        let mut state = shared.state();
        if state.closed { None } else { state.take_step() }
    }) else {
        return Ok(None);
    };
    let waited = async {
        match timeout {
            None => Ok((&mut fut).await),
            Some(t) => tokio::time::timeout(t, &mut fut)
                .await
                .map_err(|_| Error::new(ErrorCode::Timeout, format!("no message within {t:?}"))),
        }
    };
    let done = tokio::select! {
        done = waited => done,
        _ = closing.wait_for(|closed| *closed) => return Ok(None),
    };
    let mut state = shared.state();
    let (sub, item) = match done {
        Ok(v) => v,
        Err(e) => {
            if !state.closed {
                state.in_flight = Some(fut);
            }
            return Err(e);
        }
    };
    if state.closed {
        return Ok(None);
    }
    state.idle = Some(sub);
    let mut out = Vec::new();
    state.push(item, &mut out, arrow);
    state.drain_ready(&mut out, max, arrow);
    Ok(if out.is_empty() { None } else { Some(out) })
}

#[napi]
impl Subscription {
    /// Up to `max` decoded messages: those ready now without waiting, else a Promise of the
    /// next one (and any ready behind it). TIMEOUT error when nothing arrives in `timeout` ms.
    #[napi(ts_return_type = "Array<Received | Error> | null | Error | Promise<Array<Received | Error> | null | Error>")]
    pub fn next_batch<'env>(&self, env: &'env Env, max: u32, timeout: Option<f64>) -> Result<Unknown<'env>> {
        let (max, arrow) = (max.max(1) as usize, self.arrow);
        if let Ok(_reader) = self.shared.reader.try_lock() {
            let mut state = self.shared.state();
            let mut out = Vec::new();
            state.drain_ready(&mut out, max, arrow);
            if !out.is_empty() {
                drop(state);
                return batch_to_js(env, Some(out));
            }
            if state.closed {
                drop(state);
                return batch_to_js(env, None);
            }
        }
        let timeout = match timeout.map(|ms| TimeUnit::Millis.duration("timeout", ms)).transpose() {
            Ok(t) => t,
            Err(e) => return errors::to_js(env, &e),
        };
        runtime::spawn(env, wait_batch(self.shared.clone(), max, arrow, timeout), batch_to_js)
    }

    /// Stops the subscription; messages not yet taken are dropped, a waiting `next_batch` ends.
    #[napi(ts_return_type = "null | Error | Promise<null | Error>")]
    pub fn unsubscribe<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let idle = {
            let mut state = self.shared.state();
            state.closed = true;
            state.in_flight = None;
            state.idle.take()
        };
        self.shared.closing.send_replace(true);
        runtime::eager(
            env,
            async move {
                match idle {
                    Some(sub) => sub.unsubscribe().await,
                    None => Ok(()),
                }
            },
            |env, ()| Null.into_unknown(env),
        )
    }
}
