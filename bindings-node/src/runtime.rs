//! Running core futures for JS. The tokio runtime is napi-rs's: made lazily on first use, one
//! per process, shut down when the Node environment exits (so no thread outlives it).
//!
//! Every call is polled once right here on the JS thread, inside the runtime's context: a send
//! that needs no upload (async-nats only queues the message for its writer task) or a receive
//! of a direct-only message completes at once and JS gets the value with no thread hop. Only
//! a future still pending goes on to the runtime and settles a Promise later; a hop per call
//! cost the Python binding ~100 µs (bench/RESULTS-python.md).

use crate::errors;
use napi::bindgen_prelude::{Function, JsObjectValue, ToNapiValue, Unknown, within_runtime_if_available};
use napi::{Env, Result};
use natsbridge::io::Client;
use std::future::Future;
use std::task::{Context, Poll};

/// Polls `fut` once; Ready → the converted value (or error object), else a Promise of it.
pub fn eager<'env, T, F, C>(env: &'env Env, fut: F, convert: C) -> Result<Unknown<'env>>
where
    T: Send + 'static,
    F: Future<Output = natsbridge::error::Result<T>> + Send + 'static,
    C: for<'a> FnOnce(&'a Env, T) -> Result<Unknown<'a>> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    let first =
        within_runtime_if_available(|| fut.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref())));
    match first {
        Poll::Ready(r) => errors::settle(env, r, convert),
        Poll::Pending => spawn(env, fut, convert),
    }
}

/// A Promise of `fut`'s result, run on the runtime.
pub fn spawn<'env, T, F, C>(env: &'env Env, fut: F, convert: C) -> Result<Unknown<'env>>
where
    T: Send + 'static,
    F: Future<Output = natsbridge::error::Result<T>> + Send + 'static,
    C: for<'a> FnOnce(&'a Env, T) -> Result<Unknown<'a>> + Send + 'static,
{
    let promise =
        env.spawn_future_with_callback(async move { Ok(fut.await) }, move |env, r| errors::settle(env, r, convert))?;
    promise.into_unknown(env)
}

/// Hands `client`'s deferred sends over at the event loop's next turn (`setImmediate`), on this
/// thread when the connection takes them at once, else on the runtime.
pub fn arrange_kick(env: &Env, client: Client) -> Result<()> {
    let kick = env.create_function_from_closure::<(), (), _>("kick", move |_| {
        // Core logs a kick that fails (the connection is gone).
        let mut kick = Box::pin({
            let client = client.clone();
            async move {
                let _ = client.kick().await;
            }
        });
        let first = within_runtime_if_available(|| {
            kick.as_mut().poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
        });
        if first.is_pending() {
            napi::bindgen_prelude::spawn(kick);
        }
        Ok(())
    })?;
    let set_immediate: Function<Function<(), ()>, Unknown> = env.get_global()?.get_named_property("setImmediate")?;
    set_immediate.call(kick)?;
    Ok(())
}
