//! Stopping a subscription's or consumer's `next` from elsewhere: a binding's unsubscribe or
//! close runs on another task or thread than the `next` waiting on the iterator.

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
