//! JetStream mode against the raw async-nats JetStream floor, in one run.
//!
//! ```text
//! cargo run --release -p natsbridge-bench --bin jetstream -- [--msgs N] [--batch N] [--link-mb N]
//!     [--no-cluster] [--out FILE]
//! ```
//!
//! Rows: durable publish of 100-byte messages with PubAcks awaited one by one and batched; durable
//! consume (ack each); a link through a replicas-1 bucket and, on a 3-node cluster, a replicas-3
//! bucket. The floor publishes and consumes the same envelope bytes (with the same Nats-Msg-Id
//! header) through async-nats alone. Servers are started by the `servers` crate on loopback.

use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::durable::{ConsumeOptions, StreamSettings};
use natsbridge::protocol::{Data, PayloadType};
use natsbridge_bench::{SenderInfo, binary_payload};
use natsbridge_servers::{NatsCluster, NatsServer};
use std::fmt::Write as _;
use std::future::IntoFuture as _;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(about = "JetStream mode against the raw async-nats JetStream floor")]
struct Args {
    /// Messages per throughput row.
    #[arg(long, default_value_t = 20_000)]
    msgs: u64,
    /// PubAcks outstanding at once in the batched rows.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Size of the link rows in MB.
    #[arg(long, default_value_t = 100)]
    link_mb: usize,
    /// Leave out the replicas-3 row (it starts a 3-node cluster).
    #[arg(long)]
    no_cluster: bool,
    /// Also write the markdown table here.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

struct Row {
    test: String,
    bridge: f64,
    floor: Option<f64>,
    unit: &'static str,
}

fn rate(n: u64, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

async fn bridge(urls: &[String], jetstream: bool, replicas: usize) -> Res<Client> {
    let mut opts = ConnectOptions::default();
    opts.settings.servers = urls.to_vec();
    opts.settings.jetstream = jetstream;
    opts.settings.object_store_replicas = replicas;
    Ok(Client::connect(opts).await?)
}

fn hundred_bytes() -> Vec<Outgoing> {
    vec![Outgoing::new("msg", Data::Bytes(Bytes::from(vec![7u8; 100])), PayloadType::Binary)]
}

/// The envelope the floor publishes: what smartsend would publish for the same 100 bytes.
fn floor_bytes(subject: &str) -> Res<Bytes> {
    let data = Data::Bytes(Bytes::from(vec![7u8; 100]));
    Ok(natsbridge_bench::encode(&SenderInfo::default(), subject, "msg", PayloadType::Binary, &data)?)
}

fn msg_id_headers(i: u64) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", format!("floor-{i}").as_str());
    h
}

async fn publish_rows(c: &Client, js: &async_nats::jetstream::Context, args: &Args) -> Res<Vec<Row>> {
    let n = args.msgs;
    let mut rows = Vec::new();
    for (i, name) in ["ONE_BRIDGE", "ONE_FLOOR", "BATCH_BRIDGE", "BATCH_FLOOR"].iter().enumerate() {
        let mut s = StreamSettings::new(name);
        s.dead_letter = i == 0;
        c.add_stream(&s).await?;
    }
    let body = floor_bytes("ONE_FLOOR.x")?;

    let t = Instant::now();
    for _ in 0..n {
        c.smartsend("ONE_BRIDGE.x", hundred_bytes(), &SendOptions::default()).await?;
    }
    let bridge_one = rate(n, t.elapsed());
    let t = Instant::now();
    for i in 0..n {
        js.publish_with_headers("ONE_FLOOR.x", msg_id_headers(i), body.clone()).await?.await?;
    }
    let floor_one = rate(n, t.elapsed());
    rows.push(Row {
        test: "durable publish 100 B, PubAck awaited one by one".into(),
        bridge: bridge_one,
        floor: Some(floor_one),
        unit: "msg/s",
    });

    let t = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(args.batch as u64);
        let batch = (0..k).map(|_| ("BATCH_BRIDGE.x".to_owned(), hundred_bytes(), SendOptions::default())).collect();
        for r in c.publish_durable_batch(batch).await {
            r?;
        }
        left -= k;
    }
    let bridge_batch = rate(n, t.elapsed());
    let t = Instant::now();
    let mut acks = FuturesOrdered::new();
    for i in 0..n {
        acks.push_back(js.publish_with_headers("BATCH_FLOOR.x", msg_id_headers(i), body.clone()).await?.into_future());
        if acks.len() >= args.batch {
            acks.next().await.expect("pending")?;
        }
    }
    while let Some(ack) = acks.next().await {
        ack?;
    }
    let floor_batch = rate(n, t.elapsed());
    rows.push(Row {
        test: format!("durable publish 100 B, {} PubAcks outstanding", args.batch),
        bridge: bridge_batch,
        floor: Some(floor_batch),
        unit: "msg/s",
    });
    Ok(rows)
}

/// Consumes the `n` messages of BATCH_FLOOR (same envelope bytes for both) through a durable
/// each: the bridge decodes and acks; the floor acks what async-nats pulls.
async fn consume_row(c: &Client, js: &async_nats::jetstream::Context, n: u64) -> Res<Row> {
    let mut consumer = c.consume("BATCH_FLOOR", "bridge", ConsumeOptions::default()).await?;
    let t = Instant::now();
    for _ in 0..n {
        let d = consumer.next_timeout(Duration::from_secs(30)).await.ok_or("closed")??;
        d.ack.ack().await?;
    }
    let bridge = rate(n, t.elapsed());
    let stream = js.get_stream("BATCH_FLOOR").await?;
    let raw: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("floor".into()),
            ..Default::default()
        })
        .await?;
    let mut messages = raw.stream().max_messages_per_batch(100).messages().await?;
    let t = Instant::now();
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(30), messages.next()).await?.ok_or("closed")??;
        m.ack().await?;
    }
    let floor = rate(n, t.elapsed());
    Ok(Row { test: "durable consume 100 B (decode, ack each)".into(), bridge, floor: Some(floor), unit: "msg/s" })
}

/// One link through the object store: durable publish (upload + PubAck) and consume (download,
/// verify, ack), in MB/s of payload end to end.
async fn link_row(urls: &[String], replicas: usize, mb: usize, label: &str) -> Res<Row> {
    let c = bridge(urls, true, replicas).await?;
    let mut s = StreamSettings::new("LINKS");
    s.replicas = replicas;
    c.add_stream(&s).await?;
    let payload = binary_payload(mb * 1_000_000);
    let t = Instant::now();
    let sent = c
        .smartsend(
            "LINKS.x",
            vec![Outgoing::new("blob", Data::Bytes(payload), PayloadType::Binary)],
            &SendOptions::default(),
        )
        .await?;
    assert_eq!(sent.envelope.payloads[0].transport, "link");
    let mut consumer = c.consume("LINKS", "w", ConsumeOptions::default()).await?;
    let d = consumer.next_timeout(Duration::from_secs(120)).await.ok_or("closed")??;
    d.ack.ack().await?;
    let secs = t.elapsed().as_secs_f64();
    Ok(Row { test: format!("{mb} MB link, {label}"), bridge: mb as f64 / secs, floor: None, unit: "MB/s" })
}

fn markdown(rows: &[Row], args: &Args) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| Test | NATSBridge | Raw async-nats JetStream | Ratio |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for r in rows {
        let (floor, ratio) = match r.floor {
            Some(f) => (format!("{f:.0} {}", r.unit), format!("{:.0}%", 100.0 * r.bridge / f)),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(s, "| {} | {:.0} {} | {floor} | {ratio} |", r.test, r.bridge, r.unit);
    }
    let _ = writeln!(s, "\n{} messages per row; file-backed streams; loopback.", args.msgs);
    s
}

async fn run(args: &Args) -> Res<String> {
    let server = NatsServer::start();
    let urls = vec![server.url()];
    let c = bridge(&urls, true, 1).await?;
    let js = async_nats::jetstream::new(c.nats().clone());
    let mut rows = publish_rows(&c, &js, args).await?;
    rows.push(consume_row(&c, &js, args.msgs).await?);
    rows.push(link_row(&urls, 1, args.link_mb, "replicas-1 stream and bucket").await?);
    drop(server);
    if !args.no_cluster {
        let cluster = NatsCluster::start(3)?;
        rows.push(link_row(&cluster.urls(), 3, args.link_mb, "replicas-3 stream and bucket (3-node cluster)").await?);
    }
    Ok(markdown(&rows, args))
}

#[tokio::main]
async fn main() -> Res<()> {
    let args = Args::parse();
    let table = run(&args).await?;
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::write(out, &table)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench runs end to end with tiny sizes (the smoke test of `cargo test`).
    #[tokio::test(flavor = "multi_thread")]
    async fn smoke() {
        let args = Args { msgs: 50, batch: 10, link_mb: 1, no_cluster: true, out: None };
        let table = run(&args).await.unwrap();
        assert!(table.contains("durable consume"), "{table}");
        assert_eq!(table.lines().filter(|l| l.contains(" msg/s |")).count(), 3, "{table}");
    }
}
