//! Publishes a caller defers (`Client::smartsend_deferred`): queued in order and handed to
//! async-nats together at the next kick. Handing async-nats one publish wakes its writer task,
//! which from a host's thread (Python, Node) is a futex wake-up costing a fifth of a 100-byte
//! send; a burst handed over at once wakes it once and goes out in few socket writes.

use async_nats::Subject;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;

/// A queue this long, or holding this many bytes, is handed over at once by the send that
/// filled it: it bounds the memory and the delay of a caller that never lets its kick run.
const MAX_MESSAGES: usize = 128;
const MAX_BYTES: usize = 64 * 1024;

struct Publish {
    subject: Subject,
    reply: Option<Subject>,
    body: Bytes,
}

#[derive(Default)]
struct Queue {
    publishes: VecDeque<Publish>,
    bytes: usize,
}

/// What a deferred send asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    /// The queue was empty: arrange a kick soon (an event loop's next turn).
    Arrange,
    /// A kick is already arranged (by an earlier send).
    Arranged,
    /// The queue was full, and this send handed it over.
    Done,
}

#[derive(Default)]
pub(super) struct Outbox {
    queue: Mutex<Queue>,
    /// Held while publishes are handed over, so two kicks (or a kick and a direct publish) never
    /// interleave and reorder them.
    handing_over: tokio::sync::Mutex<()>,
}

impl Outbox {
    pub(super) fn push(&self, subject: Subject, reply: Option<Subject>, body: Bytes) -> Kick {
        let mut q = self.queue.lock().expect("not poisoned");
        let was_empty = q.publishes.is_empty();
        q.bytes += body.len();
        q.publishes.push_back(Publish { subject, reply, body });
        if q.publishes.len() >= MAX_MESSAGES || q.bytes >= MAX_BYTES {
            Kick::Done
        } else if was_empty {
            Kick::Arrange
        } else {
            Kick::Arranged
        }
    }

    fn take(&self) -> VecDeque<Publish> {
        let mut q = self.queue.lock().expect("not poisoned");
        q.bytes = 0;
        std::mem::take(&mut q.publishes)
    }

    /// Hands every queued publish to async-nats in order, then `then` (a direct publish that
    /// must not overtake them).
    pub(super) async fn hand_over(
        &self,
        nats: &async_nats::Client,
        then: Option<(Subject, Option<Subject>, Bytes)>,
    ) -> Result<(), async_nats::PublishError> {
        let _order = self.handing_over.lock().await;
        let queued = self.take().into_iter().map(|p| (p.subject, p.reply, p.body));
        for (subject, reply, body) in queued.chain(then) {
            match reply {
                Some(reply) => nats.publish_with_reply(subject, reply, body).await?,
                None => nats.publish(subject, body).await?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_push_arranges_a_kick_and_a_full_queue_is_done_at_once() {
        let outbox = Outbox::default();
        let push = |n: usize| outbox.push(Subject::from("s"), None, Bytes::from(vec![0; n]));
        assert_eq!(push(10), Kick::Arrange);
        assert_eq!(push(10), Kick::Arranged);
        assert_eq!(push(MAX_BYTES), Kick::Done);
        assert_eq!(outbox.take().len(), 3);
        assert_eq!(push(1), Kick::Arrange, "an emptied queue arranges a kick again");
        let kicks: Vec<Kick> = (1..MAX_MESSAGES).map(|_| push(1)).collect();
        assert_eq!(kicks.last(), Some(&Kick::Done));
        assert!(kicks[..kicks.len() - 1].iter().all(|k| *k == Kick::Arranged));
    }
}
