//! What subscriptions and consumers share as iterators: stopping a `next` from elsewhere (a
//! binding's unsubscribe or close runs on another task or thread than the waiting `next`), and
//! handing over in one batch what is ready.

use futures::FutureExt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// Ends an iterator's waiting and later `next` calls, from a task or thread that need not hold
/// the iterator: they return None (the owner still unsubscribes or drops it).
#[derive(Clone)]
pub struct Stopper(Arc<watch::Sender<bool>>);

impl Stopper {
    pub(super) fn new() -> Stopper {
        Stopper(Arc::new(watch::Sender::new(false)))
    }

    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// `next`'s result, or None as soon as this is stopped (`next` must be cancel-safe).
    pub(super) async fn or_stopped<T>(self, next: impl Future<Output = Option<T>>) -> Option<T> {
        let mut stopped = self.0.subscribe();
        if *stopped.borrow_and_update() {
            return None;
        }
        tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => None,
            item = next => item,
        }
    }
}

/// A cancel-safe iterator of decoded items (a subscription, a consumer).
pub(super) trait Pull {
    type Item;
    fn next(&mut self) -> impl Future<Output = Option<Self::Item>> + Send + '_;
}

/// The next item and every one ready behind it, up to `max` (at least one).
pub(super) async fn next_batch<P: Pull>(pull: &mut P, max: usize) -> Option<Vec<P::Item>> {
    let mut batch = vec![pull.next().await?];
    take_ready(pull, max, &mut batch);
    Some(batch)
}

/// Appends to `out`, up to `max` in all, the items ready without waiting; false once the
/// iterator has ended or is stopped.
pub(super) fn take_ready<P: Pull>(pull: &mut P, max: usize, out: &mut Vec<P::Item>) -> bool {
    while out.len() < max {
        match pull.next().now_or_never() {
            Some(Some(item)) => out.push(item),
            Some(None) => return false,
            None => break,
        }
    }
    true
}
