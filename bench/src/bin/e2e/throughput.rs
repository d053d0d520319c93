//! a. Small-message throughput.

use crate::clients::{
    RAW_SLOW_CONSUMER_EVENTS, binary, bridge_connect, envelope, floor_envelope, raw_connect, server_round_trip,
};
use crate::{BoxError, Res};
use bytes::Bytes;
use futures::StreamExt;
use natsbridge::io::{Client, SendOptions};
use natsbridge::protocol::Data;
use natsbridge::protocol::Settings;
use natsbridge_bench::SenderInfo;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Throughput {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) errors: u64,
    pub(crate) slow_consumer_events: u64,
    pub(crate) secs: f64,
}

impl Throughput {
    pub(crate) fn rate(&self) -> f64 {
        if self.secs > 0.0 { self.received as f64 / self.secs } else { 0.0 }
    }
}

/// How long the receiver may go without a message before it gives up.
pub(crate) const IDLE_LIMIT: Duration = Duration::from_secs(5);
/// Hard cap on one throughput run.
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(120);

/// One side of a throughput run.
#[derive(Clone, Copy)]
pub(crate) enum Via {
    /// Publisher: raw async-nats publishing the floor envelope (encoded once). Receiver: a raw
    /// subscriber counting messages.
    Raw,
    /// Diagnostic, core's codec over raw async-nats (no `Client`). Publisher: encodes the envelope
    /// per message. Receiver: a raw subscriber decoding every message.
    Codec,
    /// Publisher: `Client::smartsend` per message. Receiver: a `Subscription` decoding each.
    Bridge,
}

/// `n` messages from one connection to a subscriber on another; the rate is messages received
/// over the time from the first publish to the last message received.
pub(crate) async fn throughput(
    url: &str,
    subject: &str,
    send: Via,
    recv: Via,
    payload: &Bytes,
    n: u64,
) -> Res<Throughput> {
    enum Sub {
        Raw(async_nats::Subscriber),
        Bridge(natsbridge::io::Subscription, Client),
    }
    let mut sub = match recv {
        Via::Raw | Via::Codec => {
            let c = raw_connect(url).await?;
            let s = c.subscribe(subject.to_owned()).await?;
            server_round_trip(&c).await?;
            Sub::Raw(s)
        }
        Via::Bridge => {
            let c = bridge_connect(url, Settings::default()).await?;
            Sub::Bridge(c.subscribe(subject, None).await?, c)
        }
    };
    enum Pub {
        Raw(async_nats::Client),
        Bridge(Client),
    }
    let publisher = match send {
        Via::Raw | Via::Codec => Pub::Raw(raw_connect(url).await?),
        Via::Bridge => Pub::Bridge(bridge_connect(url, Settings::default()).await?),
    };
    let body = floor_envelope(url, subject, payload)?;
    let payload = payload.clone();
    let raw_events = RAW_SLOW_CONSUMER_EVENTS.load(Ordering::Relaxed);

    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let (mut count, mut errors, mut last) = (0u64, 0u64, start);
        while count + errors < n && start.elapsed() < RUN_LIMIT {
            let ok = match &mut sub {
                Sub::Raw(s) => match tokio::time::timeout(IDLE_LIMIT, s.next()).await {
                    Ok(Some(m)) if matches!(recv, Via::Codec) => {
                        natsbridge_bench::decode(&m.payload).map(black_box).is_ok()
                    }
                    Ok(Some(m)) => {
                        black_box(&m.payload);
                        true
                    }
                    _ => break,
                },
                Sub::Bridge(s, _) => match s.next_timeout(IDLE_LIMIT).await {
                    Some(Ok(r)) => {
                        black_box(&r.payloads);
                        true
                    }
                    Some(Err(e)) if e.code == natsbridge::error::ErrorCode::Timeout => break,
                    Some(Err(_)) => false,
                    None => break,
                },
            };
            if ok {
                count += 1;
            } else {
                errors += 1;
            }
            last = Instant::now();
        }
        let bridge_drops = if let Sub::Bridge(_, c) = &sub { c.slow_consumer_drops() } else { 0 };
        (count, errors, last, bridge_drops)
    });
    let subject = subject.to_owned();
    let publish = tokio::spawn(async move {
        match publisher {
            Pub::Raw(c) => {
                let sender = SenderInfo::default();
                let data = Data::Bytes(payload);
                for _ in 0..n {
                    let body =
                        if matches!(send, Via::Codec) { envelope(&sender, &subject, &data)? } else { body.clone() };
                    c.publish(subject.clone(), body).await?;
                }
                c.flush().await?;
            }
            Pub::Bridge(c) => {
                let opts = SendOptions::default();
                for _ in 0..n {
                    c.smartsend(&subject, binary("msg", payload.clone()), &opts).await?;
                }
                c.flush().await?;
            }
        }
        Ok::<_, BoxError>(())
    });
    publish.await??;
    let (received, errors, last, bridge_drops) = receiver.await?;
    Ok(Throughput {
        sent: n,
        received,
        errors,
        slow_consumer_events: RAW_SLOW_CONSUMER_EVENTS.load(Ordering::Relaxed) - raw_events + bridge_drops,
        secs: (last - start).as_secs_f64(),
    })
}
