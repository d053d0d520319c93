//! Connections (raw async-nats and the bridge's `Client`) and core's codec without a `Client`.

use crate::Res;
use bytes::Bytes;
use futures::StreamExt;
use natsbridge::io::{Client, ConnectOptions, Outgoing};
use natsbridge::protocol::{Data, PayloadType, Settings};
use natsbridge_bench::SenderInfo;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Subscription capacity (messages buffered client-side) of every connection; set from
/// `--sub-capacity`, default max(65,536, --msgs) so the client never drops in the throughput test.
pub static SUB_CAPACITY: AtomicUsize = AtomicUsize::new(64 * 1024);

/// Slow-consumer events seen by all raw async-nats connections of this process (the bridge
/// `Client` counts its own).
pub static RAW_SLOW_CONSUMER_EVENTS: AtomicU64 = AtomicU64::new(0);

/// A raw async-nats connection with the bridge's subscription capacity.
pub async fn raw_connect(url: &str) -> Res<async_nats::Client> {
    let c = async_nats::ConnectOptions::new()
        .subscription_capacity(SUB_CAPACITY.load(Ordering::Relaxed))
        .event_callback(|e| async move {
            if let async_nats::Event::SlowConsumer(_) = e {
                RAW_SLOW_CONSUMER_EVENTS.fetch_add(1, Ordering::Relaxed);
            }
        })
        .connect(url)
        .await?;
    Ok(c)
}

/// Waits until the server has processed everything `c` sent (e.g. a SUB) by echoing a message.
pub async fn server_round_trip(c: &async_nats::Client) -> Res<()> {
    let inbox = c.new_inbox();
    let mut echo = c.subscribe(inbox.clone()).await?;
    c.publish(inbox, Bytes::new()).await?;
    tokio::time::timeout(Duration::from_secs(10), echo.next()).await?.ok_or("connection closed")?;
    Ok(())
}

/// A bridge `Client` on `url` with these settings and the bench's subscription capacity.
pub async fn bridge_connect(url: &str, settings: Settings) -> Res<Client> {
    let settings = Settings {
        servers: vec![url.to_owned()],
        pending_msgs_limit: SUB_CAPACITY.load(Ordering::Relaxed),
        ..settings
    };
    Ok(Client::connect(ConnectOptions { settings, ..Default::default() }).await?)
}

pub fn binary(dataname: &str, bytes: Bytes) -> Vec<Outgoing> {
    vec![Outgoing::new(dataname, Data::Bytes(bytes), PayloadType::Binary)]
}

/// Core's encode without `Client` (`natsbridge_bench::encode`): the envelope smartsend would
/// publish for one binary payload named "msg".
pub fn envelope(sender: &SenderInfo, subject: &str, data: &Data) -> Res<Bytes> {
    Ok(natsbridge_bench::encode(sender, subject, "msg", PayloadType::Binary, data)?)
}

/// The envelope the floor publishes: encoded once, with the header smartsend would write.
pub fn floor_envelope(url: &str, subject: &str, payload: &Bytes) -> Res<Bytes> {
    let sender = SenderInfo { broker_url: url.to_owned(), ..Default::default() };
    envelope(&sender, subject, &Data::Bytes(payload.clone()))
}

/// Core's decode without `Client` (`natsbridge_bench::decode`): the envelope's one payload.
pub fn payload_of(message: &[u8]) -> Res<Data> {
    natsbridge_bench::decode(message)?.1.pop().ok_or_else(|| "no payload".into())
}
