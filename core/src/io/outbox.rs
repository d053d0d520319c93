//! Publishes a caller defers (`Client::smartsend_deferred`). The first send of a burst goes out
//! at once, so a lone message (a request, a reply) waits for nothing; the sends after it, until
//! the kick the caller arranges for its event loop's next turn, are queued in order and handed
//! to async-nats together. Handing async-nats one publish wakes its writer task, which from a
//! host's thread (Python, Node) is a futex wake-up costing a fifth of a 100-byte send; a burst
//! handed over at once wakes it a few times and goes out in few socket writes.

use async_nats::Subject;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Mutex;

/// A queue this long, or holding this many bytes, is handed over at once by the send that
/// filled it: it bounds the memory and the delay of a caller that never lets its kick run.
const MAX_MESSAGES: usize = 128;
const MAX_BYTES: usize = 64 * 1024;

pub(super) struct Publish {
    pub(super) subject: Subject,
    pub(super) reply: Option<Subject>,
    /// Trace context (spec/PROTOCOL.md §13), when the send has one.
    pub(super) headers: Option<async_nats::HeaderMap>,
    pub(super) body: Bytes,
}

#[derive(Default)]
struct Queue {
    publishes: VecDeque<Publish>,
    bytes: usize,
    /// A burst is under way: its first send went out, and a kick is arranged to end it.
    burst: bool,
}

/// What a deferred send asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    /// The send started a burst and went out at once: arrange a kick soon (an event loop's next
    /// turn), which hands over the sends queued until then and ends the burst.
    Arrange,
    /// Queued behind the kick an earlier send arranged.
    Arranged,
    /// The queue was full, and this send handed it over.
    Done,
}

/// What [`Outbox::admit`] did with a publish.
pub(super) enum Admitted {
    /// It starts a burst: hand it over now.
    First(Publish),
    Queued,
    /// Queued, and the queue is full: hand it over now.
    Full,
}

#[derive(Default)]
pub(super) struct Outbox {
    queue: Mutex<Queue>,
    /// Held while publishes are handed over, so two kicks (or a kick and a direct publish) never
    /// interleave and reorder them.
    handing_over: tokio::sync::Mutex<()>,
}

impl Outbox {
    pub(super) fn admit(&self, publish: Publish) -> Admitted {
        let mut q = self.queue.lock().expect("not poisoned");
        if !q.burst {
            q.burst = true;
            return Admitted::First(publish);
        }
        q.bytes += publish.body.len();
        q.publishes.push_back(publish);
        if q.publishes.len() >= MAX_MESSAGES || q.bytes >= MAX_BYTES { Admitted::Full } else { Admitted::Queued }
    }

    /// Ends the burst: the next send goes out at once again.
    pub(super) fn end_burst(&self) {
        self.queue.lock().expect("not poisoned").burst = false;
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
        then: Option<Publish>,
    ) -> Result<(), async_nats::PublishError> {
        let _order = self.handing_over.lock().await;
        for p in self.take().into_iter().chain(then) {
            match (p.reply, p.headers) {
                (Some(reply), None) => nats.publish_with_reply(p.subject, reply, p.body).await?,
                (None, None) => nats.publish(p.subject, p.body).await?,
                (Some(reply), Some(headers)) => {
                    nats.publish_with_reply_and_headers(p.subject, reply, headers, p.body).await?
                }
                (None, Some(headers)) => nats.publish_with_headers(p.subject, headers, p.body).await?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_sends_its_first_at_once_and_queues_the_rest_until_full() {
        let outbox = Outbox::default();
        let admit = |n: usize| {
            outbox.admit(Publish {
                subject: Subject::from("s"),
                reply: None,
                headers: None,
                body: Bytes::from(vec![0; n]),
            })
        };
        assert!(matches!(admit(10), Admitted::First(_)), "the first send of a burst goes out at once");
        assert!(matches!(admit(10), Admitted::Queued));
        assert!(matches!(admit(MAX_BYTES), Admitted::Full));
        assert_eq!(outbox.take().len(), 2);
        assert!(matches!(admit(1), Admitted::Queued), "a full queue handed over does not end the burst");
        assert_eq!(outbox.take().len(), 1);
        outbox.end_burst();
        assert!(matches!(admit(1), Admitted::First(_)), "the kick ends it");
        let rest: Vec<Admitted> = (1..=MAX_MESSAGES).map(|_| admit(1)).collect();
        assert!(matches!(rest.last(), Some(Admitted::Full)), "128 messages fill the queue");
        assert!(rest[..rest.len() - 1].iter().all(|a| matches!(a, Admitted::Queued)));
    }
}
