//! Link helpers shared by the link store tests: one link fetched through core's receive driver,
//! a time bound, and bytes no shortcut can guess.

use bytes::Bytes;
use natsbridge::io::smartreceive_with_store;
use natsbridge::io::store::{Fetch, LinkStore};
use natsbridge::protocol::{Data, Envelope, PayloadType, ReceiveRules, RetryPolicy, WirePayload};
use std::time::Duration;

/// Fetches one link through core's receive driver (origin check, retries, size check) as a
/// message whose only payload is that link, without a sha256 so any bytes of the right size pass.
pub async fn download_with_retry(
    store: &dyn LinkStore,
    fetch: Fetch<'_>,
    retry: RetryPolicy,
) -> Result<Bytes, natsbridge::error::Error> {
    let mut env = Envelope::new("linkstores");
    env.payloads.push(WirePayload {
        dataname: "blob".into(),
        payload_type: "binary".into(),
        transport: "link".into(),
        encoding: "none".into(),
        size: fetch.size,
        data: fetch.url.into(),
        ..WirePayload::default()
    });
    let rules = ReceiveRules { retry, ..ReceiveRules::default() };
    let received = smartreceive_with_store(env.to_json().as_bytes(), store, rules).await?;
    match &received.payloads[0] {
        p if p.payload_type == PayloadType::Binary => match &p.data {
            Data::Bytes(b) => Ok(b.clone()),
            other => panic!("not bytes: {other:?}"),
        },
        other => panic!("unexpected payload {other:?}"),
    }
}

/// Every test is bounded: a hang is a failure, not a stuck CI job.
pub async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 60 s"))
}

/// Non-trivial bytes: xorshift, so every offset matters and no compression or sniffing shortcut helps.
pub fn pseudo_random(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}
