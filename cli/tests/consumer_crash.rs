//! A consuming process (`natsbridge consume`) killed with SIGKILL mid-stream and started again
//! with the same durable name: nothing is lost, and what the first process had not acked comes
//! back marked as a redelivery.

use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::durable::StreamSettings;
use natsbridge::protocol::{Data, PayloadType};
use natsbridge_servers::NatsServer;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 2_000;

fn consume(url: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_natsbridge"))
        .args(["--servers", url, "consume", "CRASH", "worker", "--json", "--ack-wait", "1"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run natsbridge consume")
}

/// (stream sequence, delivered) of one `--json` line.
fn delivery(line: &str) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let d = &v["delivery"];
    (d["stream_sequence"].as_u64().unwrap(), d["delivered"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_killed_mid_stream_and_restarted_with_its_durable_loses_nothing() {
    let server = NatsServer::start();
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.jetstream = true;
    let client = Client::connect(opts).await.unwrap();
    client.add_stream(&StreamSettings::new("CRASH")).await.unwrap();
    let batch = (0..MESSAGES)
        .map(|i| {
            let payload = vec![Outgoing::new("n", Data::Text(i.to_string()), PayloadType::Text)];
            ("CRASH.x".to_owned(), payload, SendOptions::default())
        })
        .collect();
    for sent in client.publish_durable_batch(batch).await {
        sent.unwrap();
    }

    // The first process prints (then acks) a third of the stream, and is killed.
    let mut first = consume(&server.url(), &[]);
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let mut seen_first = HashSet::new();
    while seen_first.len() < (MESSAGES / 3) as usize {
        let line = lines.next().expect("the first consumer printed").unwrap();
        seen_first.insert(delivery(&line).0);
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    // What it printed before the kill, still in the pipe.
    for line in lines {
        let Ok(line) = line else { break };
        if !line.is_empty() && line.ends_with('}') {
            seen_first.insert(delivery(&line).0);
        }
    }

    // The second process takes over the durable and runs until the stream is drained.
    let mut second = consume(&server.url(), &["--timeout", "3"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_second: HashMap<u64, u64> = HashMap::new();
    for line in BufReader::new(second.stdout.take().unwrap()).lines() {
        assert!(Instant::now() < deadline, "bounded");
        let (seq, delivered) = delivery(&line.unwrap());
        seen_second.insert(seq, delivered);
    }
    second.wait().unwrap(); // it exits once nothing arrives for 3 s
    let all: HashSet<u64> = seen_first.iter().copied().chain(seen_second.keys().copied()).collect();
    let missing: Vec<u64> = (1..=MESSAGES).filter(|s| !all.contains(s)).collect();
    assert!(missing.is_empty(), "lost (processed by neither process): {missing:?}");
    for (seq, delivered) in &seen_second {
        if seen_first.contains(seq) {
            assert!(*delivered > 1, "message {seq} came back to the second process unmarked");
        }
    }
    let again = seen_second.keys().filter(|s| seen_first.contains(s)).count();
    println!(
        "consumer killed after {} of {MESSAGES}: the restarted one processed {}, {again} of them redeliveries, 0 lost",
        seen_first.len(),
        seen_second.len()
    );
}
