//! JetStream mode from a shell: `stream add`, `consume` (acks each message once printed) and
//! `sweep`. Every flag is one of core's stream or consume option names in kebab-case.

use crate::show;
use clap::Args;
use natsbridge::error::Error;
use natsbridge::io::Client;
use natsbridge::protocol::TimeUnit;
use natsbridge::protocol::durable::{ConsumeOptions, StreamSettings};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Stream settings (core's stream option names; durations in seconds).
#[derive(Args, Default)]
pub struct StreamArgs {
    /// Subjects the stream captures (repeatable; default NAME.>).
    #[arg(long)]
    subjects: Vec<String>,
    /// file (default) or memory.
    #[arg(long)]
    storage: Option<String>,
    #[arg(long)]
    replicas: Option<String>,
    /// Seconds; default the link objects' TTL.
    #[arg(long)]
    max_age: Option<String>,
    /// limits (default), workqueue or interest.
    #[arg(long)]
    retention: Option<String>,
    /// Seconds within which a retried publish is stored once (default 120).
    #[arg(long)]
    duplicate_window: Option<String>,
    /// true (default): also create NAME_DEAD_LETTER for what can never decode.
    #[arg(long)]
    dead_letter: Option<String>,
}

/// Consumer settings (core's consume option names; durations in seconds).
#[derive(Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    ack_wait: Option<String>,
    /// -1: unlimited (default).
    #[arg(long, allow_negative_numbers = true)]
    max_deliver: Option<String>,
    /// Redelivery delays in seconds, comma-separated.
    #[arg(long)]
    backoff: Option<String>,
    #[arg(long)]
    max_ack_pending: Option<String>,
    /// Wait for the server to confirm each ack.
    #[arg(long)]
    double_ack: bool,
    #[arg(long)]
    nak_delay: Option<String>,
    #[arg(long)]
    dead_letter_subject: Option<String>,
    #[arg(long)]
    filter_subject: Option<String>,
    #[arg(long)]
    batch: Option<String>,
    /// all (default) or new.
    #[arg(long)]
    deliver_from: Option<String>,
}

fn text_options(pairs: &[(&str, Option<&String>)]) -> Map<String, Value> {
    pairs.iter().filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), Value::String(v.clone())))).collect()
}

impl StreamArgs {
    pub fn settings(&self, name: &str) -> Result<StreamSettings, Error> {
        let mut map = text_options(&[
            ("storage", self.storage.as_ref()),
            ("replicas", self.replicas.as_ref()),
            ("max_age", self.max_age.as_ref()),
            ("retention", self.retention.as_ref()),
            ("duplicate_window", self.duplicate_window.as_ref()),
            ("dead_letter", self.dead_letter.as_ref()),
        ]);
        if !self.subjects.is_empty() {
            map.insert("subjects".into(), serde_json::json!(self.subjects));
        }
        StreamSettings::from_json(name, &map, TimeUnit::Seconds)
    }
}

impl ConsumeArgs {
    pub fn options(&self) -> Result<ConsumeOptions, Error> {
        let double_ack = self.double_ack.then(|| "true".to_owned());
        let mut map = text_options(&[
            ("ack_wait", self.ack_wait.as_ref()),
            ("max_ack_pending", self.max_ack_pending.as_ref()),
            ("double_ack", double_ack.as_ref()),
            ("nak_delay", self.nak_delay.as_ref()),
            ("dead_letter_subject", self.dead_letter_subject.as_ref()),
            ("filter_subject", self.filter_subject.as_ref()),
            ("batch", self.batch.as_ref()),
            ("deliver_from", self.deliver_from.as_ref()),
        ]);
        if let Some(n) = &self.max_deliver {
            let n: f64 = n.trim().parse().map_err(|_| Error::invalid_argument(format!("--max-deliver {n:?}")))?;
            map.insert("max_deliver".into(), serde_json::json!(n));
        }
        if let Some(list) = &self.backoff {
            let delays: Vec<Value> = list.split(',').map(|d| Value::String(d.trim().to_owned())).collect();
            map.insert("backoff".into(), Value::Array(delays));
        }
        ConsumeOptions::from_json(&map, TimeUnit::Seconds)
    }
}

pub async fn add_stream(client: &Client, settings: &StreamSettings) -> Result<(), Error> {
    let summary = client.add_stream(settings).await?;
    println!("{}", summary.to_json(TimeUnit::Seconds));
    Ok(())
}

/// What `consume` prints and when it stops.
pub struct ConsumeRun {
    pub count: Option<u64>,
    pub timeout: Option<f64>,
    pub out_dir: Option<PathBuf>,
    pub json: bool,
    pub ready: bool,
}

/// Prints each delivery (with its stream sequence and delivery count), then acks it.
pub async fn consume(
    client: &Client,
    stream: &str,
    durable: &str,
    opts: ConsumeOptions,
    run: ConsumeRun,
    progress: &show::TransferProgress,
) -> Result<(), Error> {
    let mut consumer = client.consume(stream, durable, opts).await?;
    if run.ready {
        eprintln!("ready: consuming {stream} as {durable}");
    }
    let mut seen = 0u64;
    while run.count.is_none_or(|c| seen < c) {
        let next = match run.timeout {
            Some(secs) => consumer.next_timeout(Duration::from_secs_f64(secs)).await,
            None => consumer.next().await,
        };
        let Some(delivery) = next else { break };
        progress.finish();
        let delivery = delivery?;
        if run.json {
            let mut line = show::to_json(&delivery.received);
            line["delivery"] = delivery.info.to_json();
            println!("{line}");
        } else {
            let i = &delivery.info;
            println!("{} #{} (delivery {})", i.stream, i.stream_sequence, i.delivered);
            show::received(&delivery.received, run.out_dir.as_deref(), false)?;
        }
        delivery.ack.ack().await?;
        seen += 1;
    }
    client.flush().await
}

pub async fn sweep(client: &Client, stream: &str, dry_run: bool, min_age: Option<f64>) -> Result<(), Error> {
    let min_age = min_age
        .map(|s| Duration::try_from_secs_f64(s).map_err(|_| Error::invalid_argument(format!("--min-age {s}"))))
        .transpose()?;
    let report = client.sweep_links(stream, min_age, dry_run).await?;
    println!("{}", serde_json::to_string_pretty(&report.to_json(TimeUnit::Seconds)).expect("plain data"));
    if !dry_run && !report.orphans.is_empty() {
        eprintln!("removed {} link object(s) whose message is not in {stream}", report.orphans.len());
    }
    Ok(())
}

/// A stream `dev` creates so JetStream mode works out of the box.
pub fn dev_stream() -> StreamSettings {
    StreamSettings::new("EVENTS")
}
