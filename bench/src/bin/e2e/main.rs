//! End-to-end benchmark of the NATSBridge core against the raw async-nats floor, in one run.
//!
//! ```text
//! cargo run --release -p natsbridge-bench --bin e2e -- [--out FILE] [--msgs N] [--pings N]
//!     [--reps N] [--link-mb 10,100] [--only throughput,latency,link,plik,memory]
//! ```
//!
//! Starts its own nats-server and, for the Plik rows, its own Plik with the `servers` crate (free
//! loopback ports, temp dirs). See bench/README.md.
//!
//! The memory rows run this same binary as a child (`e2e mem-child send|receive ...`) so its
//! VmHWM (peak RSS) covers one 100 MB link transfer and nothing else.

mod clients;
mod latency;
mod memory;
mod report;
mod throughput;
mod transfer;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use clients::{SUB_CAPACITY, binary, bridge_connect, floor_envelope};
use latency::{Ping, latency};
use memory::{mem_child, run_mem_child};
use natsbridge::io::SendOptions;
use natsbridge::protocol::Settings;
use natsbridge_bench::binary_payload;
use natsbridge_servers::{NatsServer, Plik};
use report::{Report, median, num, status, times};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;
use throughput::{Throughput, Via, throughput};
use transfer::{link_once, median_transfer, stock_objstore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

const MB: f64 = 1_000_000.0;

#[derive(Parser)]
#[command(about = "End-to-end benchmark of the NATSBridge core against the raw async-nats floor")]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Also write the markdown report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 200_000)]
    msgs: u64,
    /// Timed round trips per latency run.
    #[arg(long, default_value_t = 5_000)]
    pings: usize,
    /// Untimed round trips first.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Link payload sizes in MB.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100])]
    link_mb: Vec<usize>,
    /// Only these groups.
    #[arg(long, value_delimiter = ',', value_parser = ["throughput", "latency", "link", "plik", "memory"])]
    only: Option<Vec<String>>,
    /// Messages buffered per subscription (default max(65536, --msgs)).
    #[arg(long)]
    sub_capacity: Option<usize>,
    /// Leave out the diagnostic rows.
    #[arg(long)]
    no_diag: bool,
}

#[derive(Subcommand)]
enum Mode {
    /// One latency variant alone (for perf / strace).
    Pingpong {
        #[arg(value_enum, default_value = "bridge")]
        variant: Ping,
        #[arg(default_value_t = 5_000)]
        n: usize,
    },
    /// The memory rows' child process: `send <url> <bytes>` or `receive <url> <envelope-file>`.
    #[command(hide = true)]
    MemChild { args: Vec<String> },
}

fn main() -> Res<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match &args.mode {
        Some(Mode::MemChild { args }) => rt.block_on(mem_child(args)),
        Some(Mode::Pingpong { variant, n }) => rt.block_on(pingpong_only(*variant, *n)),
        None => rt.block_on(run(args)),
    }
}

/// `e2e pingpong floor|bridge|mux|codec [N]`: one latency variant alone.
async fn pingpong_only(ping: Ping, n: usize) -> Res<()> {
    let nats = NatsServer::launch(Default::default())?;
    let l = latency(&nats.url(), "bench.pp", ping, &binary_payload(100), 500, n).await?;
    println!("{ping:?}: {l:?}");
    Ok(())
}

async fn run(args: Args) -> Res<()> {
    let wants = |what: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == what));
    let (reps, diag) = (args.reps as usize, !args.no_diag);
    SUB_CAPACITY.store(args.sub_capacity.unwrap_or((args.msgs as usize).max(64 * 1024)), Ordering::Relaxed);
    let nats = NatsServer::launch(Default::default())?;
    let url = nats.url();
    let version = natsbridge_servers::nats_server_version();
    let mut report = Report::default();
    report.notes.push(format!(
        "{} on {url} (JetStream, file store in a temp dir); {} CPUs visible",
        version,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    ));

    // a. Throughput of 100-byte messages.
    if wants("throughput") {
        let payload = binary_payload(100);
        let mut variants = vec![("floor", Via::Raw, Via::Raw), ("bridge", Via::Bridge, Via::Bridge)];
        if diag {
            variants.extend([
                ("smartsend -> raw count", Via::Bridge, Via::Raw),
                ("raw publish -> Subscription decode", Via::Raw, Via::Bridge),
                ("core codec per message over raw async-nats (no Client)", Via::Codec, Via::Codec),
            ]);
        }
        let mut results: Vec<Vec<Throughput>> = vec![Vec::new(); variants.len()];
        for rep in 0..reps {
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
        let t = format!("throughput 100 B x {} (median of {})", args.msgs, reps);
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
        if diag {
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
    let link = async |report: &mut Report, store: &str, opts: &dyn Fn() -> Settings| -> Res<()> {
        let sender = bridge_connect(&url, opts()).await?;
        let receiver = bridge_connect(&url, opts()).await?;
        let objstore = store == "object store";
        for p in &payloads {
            let tr = median_transfer(&format!("link {store}"), reps, async || link_once(&sender, &receiver, p).await)
                .await?;
            let t = format!("link {} MB via {store} (median of {})", p.len() / 1_000_000, reps);
            report.row(&t, "upload MB/s (smartsend)", &[&num(tr.up())]);
            report.row(&t, "download MB/s (smartreceive)", &[&num(tr.down())]);
            let total = tr.total();
            if objstore && p.len() >= 100_000_000 {
                let st = status(total >= 300.0, format!("{:.0}% of target", total / 3.0));
                report.row(&t, "total MB/s (send + receive)", &[&num(total), "", "", ">= 300 MB/s", &st]);
            } else {
                report.row(&t, "total MB/s (send + receive)", &[&num(total)]);
            }
            if objstore && diag {
                let stock = stock_objstore(&url, p, reps).await?;
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
        link(&mut report, "object store", &Settings::default).await?;
    }
    if wants("plik") {
        match Plik::launch(Default::default()) {
            Err(e) => {
                let msg = format!("Plik: {e}: Plik rows skipped");
                eprintln!("{msg}");
                report.notes.push(msg);
            }
            Ok(plik) => {
                let opts =
                    || Settings { fileserver_url: Some(plik.url.clone()), object_store: false, ..Default::default() };
                link(&mut report, "Plik", &opts).await?;
                report.notes.push(format!("Plik at {} (file backend, sqlite metadata in a temp dir)", plik.url));
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
        let sender = bridge_connect(&url, Settings::default()).await?;
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
