//! b. Ping-pong latency.

use crate::Res;
use crate::clients::{binary, bridge_connect, envelope, floor_envelope, payload_of, raw_connect, server_round_trip};
use bytes::Bytes;
use futures::StreamExt;
use natsbridge::io::{Outgoing, ReplyTo, SendOptions};
use natsbridge::protocol::Data;
use natsbridge::protocol::Settings;
use natsbridge_bench::SenderInfo;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Latency {
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
    pub(crate) mean_us: f64,
    /// CPU time (user + system) of this whole process per round trip: requester and responder
    /// run here, nats-server does not.
    pub(crate) cpu_us: f64,
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
pub(crate) async fn measure<T>(warmup: usize, n: usize, mut round_trip: impl AsyncFnMut() -> Res<T>) -> Res<Latency> {
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
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Ping {
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

pub(crate) async fn latency(
    url: &str,
    subject: &str,
    ping: Ping,
    payload: &Bytes,
    warmup: usize,
    n: usize,
) -> Res<Latency> {
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
            let c = bridge_connect(url, Settings::default()).await?;
            let mut sub = c.subscribe(subject, None).await?;
            tokio::spawn(async move {
                let opts = SendOptions::default();
                while let Some(r) = sub.next().await {
                    let Ok(r) = r else { continue };
                    let Some(p) = r.payloads.first() else { continue };
                    let back = vec![Outgoing::new(p.dataname.clone(), p.data.clone(), p.payload_type)];
                    if c.reply(&ReplyTo::of(&r), back, &opts).await.is_err() {
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
            let c = bridge_connect(url, Settings::default()).await?;
            measure(warmup, n, async || {
                Ok(c.request(subject, binary("msg", payload.clone()), &opts, Duration::from_secs(10)).await?)
            })
            .await
        }
        Ping::Mux => {
            let c = bridge_connect(url, Settings::default()).await?;
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
