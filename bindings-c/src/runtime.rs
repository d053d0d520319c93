//! The C side of core's process-wide runtime (`one_call::runtime`, made anew after `fork()`):
//! blocking calls poll their future on the caller's thread, so host handlers run there too.

use crate::status::{Outcome, invalid};
use bridge::io::one_call::runtime;
use std::future::Future;

/// Runs `fut` to completion on the calling thread (I/O is driven by the runtime's workers).
/// Because the future is polled here, link-store handlers it calls run on the caller's thread.
pub fn block_on<F: Future>(fut: F) -> Outcome<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(invalid(
            "a blocking natsbridge call was made from inside an upload/download handler; \
             handlers must not call natsbridge functions that block",
        ));
    }
    Ok(runtime().block_on(fut))
}

/// Drops a value that may hold NATS resources inside the runtime's context.
pub fn drop_in_runtime<T>(value: T) {
    let _context = runtime().enter();
    drop(value);
}
