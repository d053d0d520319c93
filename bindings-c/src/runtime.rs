//! The library's one tokio runtime (DESIGN §8): made on first use, shared by every call and
//! every client, and made anew in a child process after `fork()` (the child has none of the
//! parent's worker threads).

use crate::status::{Outcome, invalid};
use std::future::Future;
use std::sync::Mutex;
use tokio::runtime::Runtime;

struct State {
    pid: u32,
    runtime: &'static Runtime,
    /// Runtimes of the parent processes this one was forked from: never dropped (dropping would
    /// wait for worker threads that do not exist here), kept here so they stay reachable.
    inherited: Vec<&'static Runtime>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn new_runtime() -> &'static Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("natsbridge")
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    Box::leak(Box::new(rt))
}

pub fn runtime() -> &'static Runtime {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    match guard.as_mut() {
        Some(state) if state.pid == pid => state.runtime,
        Some(state) => {
            let parent = std::mem::replace(&mut state.runtime, new_runtime());
            state.inherited.push(parent);
            state.pid = pid;
            state.runtime
        }
        None => guard.insert(State { pid, runtime: new_runtime(), inherited: Vec::new() }).runtime,
    }
}

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
