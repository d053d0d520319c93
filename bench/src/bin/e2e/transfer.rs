//! c. Link transfer through a link store, and the stock object store for reference.

use crate::clients::{binary, raw_connect};
use crate::{MB, Res};
use bytes::Bytes;
use natsbridge::io::{Client, SendOptions};
use natsbridge::protocol::Data;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    pub(crate) bytes: usize,
    pub(crate) upload_s: f64,
    pub(crate) download_s: f64,
}

impl Transfer {
    pub(crate) fn up(&self) -> f64 {
        self.bytes as f64 / MB / self.upload_s
    }
    pub(crate) fn down(&self) -> f64 {
        self.bytes as f64 / MB / self.download_s
    }
    pub(crate) fn total(&self) -> f64 {
        self.bytes as f64 / MB / (self.upload_s + self.download_s)
    }
}

/// One untimed warm-up, then the median by total time of `reps` transfers (each printed to stderr).
pub(crate) async fn median_transfer(
    what: &str,
    reps: usize,
    mut once: impl AsyncFnMut() -> Res<Transfer>,
) -> Res<Transfer> {
    once().await?;
    let mut runs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let r = once().await?;
        eprintln!("{what} {} B: up {:.0} / down {:.0} / total {:.0} MB/s", r.bytes, r.up(), r.down(), r.total());
        runs.push(r);
    }
    runs.sort_by(|a, b| (a.upload_s + a.download_s).total_cmp(&(b.upload_s + b.download_s)));
    Ok(runs[runs.len() / 2])
}

/// smartsend of one binary payload over the threshold (upload + publish of the envelope), then
/// smartreceive of that envelope on a second connection (download + size/sha256 checks).
pub(crate) async fn link_once(sender: &Client, receiver: &Client, payload: &Bytes) -> Res<Transfer> {
    let t = Instant::now();
    let sent = sender.smartsend("bench.link", binary("blob.bin", payload.clone()), &SendOptions::default()).await?;
    let upload_s = t.elapsed().as_secs_f64();
    let transport = &sent.envelope.payloads[0].transport;
    if transport != "link" {
        return Err(format!("expected a link payload, got transport {transport:?}").into());
    }
    let t = Instant::now();
    let received = receiver.smartreceive(&sent.json).await?;
    let download_s = t.elapsed().as_secs_f64();
    let head = 4096.min(payload.len());
    match &received.payloads[0].data {
        Data::Bytes(b) if b.len() == payload.len() && b[..head] == payload[..head] => {}
        _ => return Err("the downloaded payload differs from the one sent".into()),
    }
    Ok(Transfer { bytes: payload.len(), upload_s, download_s })
}

/// Reference: stock async-nats `ObjectStore::put` / `get` + `read_to_end` of the same bytes on
/// two connections (no envelope, no sha256 of our own; the stock reader checks its digest).
pub(crate) async fn stock_objstore(url: &str, payload: &Bytes, reps: usize) -> Res<Transfer> {
    use async_nats::jetstream::{self, object_store};
    use tokio::io::AsyncReadExt as _;
    let a = jetstream::new(raw_connect(url).await?);
    let b = jetstream::new(raw_connect(url).await?);
    let cfg = object_store::Config { bucket: "stock".into(), max_age: Duration::from_secs(3600), ..Default::default() };
    let put = match a.get_object_store("stock").await {
        Ok(s) => s,
        Err(_) => a.create_object_store(cfg).await?,
    };
    let get = b.get_object_store("stock").await?;
    median_transfer("stock object store", reps, async || {
        let name = natsbridge::protocol::new_id();
        let t = Instant::now();
        put.put(name.as_str(), &mut payload.as_ref()).await?;
        let upload_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut buf = Vec::with_capacity(payload.len());
        get.get(name.as_str()).await?.read_to_end(&mut buf).await?;
        let download_s = t.elapsed().as_secs_f64();
        if buf.len() != payload.len() {
            return Err("stock object store returned a different length".into());
        }
        Ok(Transfer { bytes: payload.len(), upload_s, download_s })
    })
    .await
}
