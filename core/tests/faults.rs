//! Faults against real servers on loopback, each bounded in time and count: nats-server killed
//! with SIGKILL and restarted on the same port (core NATS and JetStream mode), and the file
//! server (Plik, then a plain HTTP store) down during a link receive.

mod common;

use common::flaky_http::{FlakyHttp, Serve};
use natsbridge::error::ErrorCode;
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::durable::{ConsumeOptions, StreamSettings};
use natsbridge::protocol::{Data, FileServerKind, PayloadType, RetryPolicy, TimeUnit};
use natsbridge_servers::{NatsServer, Plik};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 10_000;
/// The server is killed once this many messages were sent.
const KILL_AT: u64 = 3_000;

fn options(server: &NatsServer) -> ConnectOptions {
    let mut opts = ConnectOptions::with_server(&server.url());
    // Reconnect quickly: the restart takes well under a second.
    opts.settings.reconnect_time_wait = Duration::from_millis(100);
    opts
}

fn numbered(i: u64) -> Vec<Outgoing> {
    vec![Outgoing::new("n", Data::Text(format!("message {i:05}")), PayloadType::Text)]
}

fn number_of(text: &Data) -> u64 {
    let Data::Text(t) = text else { panic!("not text: {text:?}") };
    let n = t.strip_prefix("message ").unwrap_or_else(|| panic!("corrupted: {t:?}"));
    n.parse().unwrap_or_else(|_| panic!("corrupted: {t:?}"))
}

/// Kills the server once `sent` reaches KILL_AT, then restarts it on the same port.
async fn kill_and_restart(server: &mut NatsServer, sent: &AtomicU64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.load(Ordering::Relaxed) < KILL_AT {
        assert!(Instant::now() < deadline, "the publisher never reached {KILL_AT}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn core_nats_carries_on_after_the_server_is_killed_and_restarted() {
    let mut server = NatsServer::start();
    let publisher = Client::connect(options(&server)).await.unwrap();
    let receiver = Client::connect(options(&server)).await.unwrap();
    let mut sub = receiver.subscribe("faults.core", None).await.unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let publishing = {
        let (publisher, sent) = (publisher.clone(), sent.clone());
        tokio::spawn(async move {
            let mut refused = 0u64;
            for i in 0..MESSAGES {
                if publisher.smartsend("faults.core", numbered(i), &SendOptions::default()).await.is_err() {
                    refused += 1;
                }
                sent.store(i + 1, Ordering::Relaxed);
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            let _ = publisher.flush().await;
            refused
        })
    };
    kill_and_restart(&mut server, &sent).await;
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "bounded");
        match sub.next_timeout(Duration::from_secs(3)).await.unwrap() {
            Ok(r) => {
                let n = number_of(&r.payloads[0].data);
                assert!(n < MESSAGES);
                assert!(seen.insert(n), "message {n} arrived twice");
            }
            Err(e) if e.code == ErrorCode::Timeout && publishing.is_finished() => break,
            Err(e) if e.code == ErrorCode::Timeout => continue,
            Err(e) => panic!("a message arrived corrupted: {e}"),
        }
    }
    let refused = publishing.await.unwrap();
    let lost = MESSAGES - seen.len() as u64;
    println!(
        "core NATS, server killed at {KILL_AT}: {} received, {lost} lost ({refused} refused to the publisher)",
        seen.len()
    );
    assert!(seen.contains(&(MESSAGES - 1)), "the publisher and the subscriber carried on after the restart");
    assert!(seen.iter().filter(|&&n| n > KILL_AT + 100).count() > 1000, "most messages after the restart arrive");
}

#[tokio::test(flavor = "multi_thread")]
async fn jetstream_loses_nothing_when_the_server_is_killed_and_restarted() {
    let mut server = NatsServer::start();
    let mut opts = options(&server);
    opts.settings.jetstream = true;
    let publisher = Client::connect(opts.clone()).await.unwrap();
    publisher.add_stream(&StreamSettings::new("FAULTS")).await.unwrap();
    let consumer_client = Client::connect(opts).await.unwrap();
    let consume =
        ConsumeOptions::from_json(serde_json::json!({"ack_wait": 2}).as_object().unwrap(), TimeUnit::Seconds).unwrap();
    let mut consumer = consumer_client.consume("FAULTS", "worker", consume).await.unwrap();

    let sent = Arc::new(AtomicU64::new(0));
    let publishing = {
        let (publisher, sent) = (publisher.clone(), sent.clone());
        tokio::spawn(async move {
            let mut duplicates = 0u64;
            for i in 0..MESSAGES {
                let s = publisher.smartsend("FAULTS.x", numbered(i), &SendOptions::default()).await;
                let ack = s.unwrap_or_else(|e| panic!("durable publish {i} failed: {e}")).pub_ack.unwrap();
                duplicates += u64::from(ack.duplicate);
                sent.store(i + 1, Ordering::Relaxed);
            }
            duplicates
        })
    };
    let killer = async { kill_and_restart(&mut server, &sent).await };
    let consuming = async {
        let mut processed: HashMap<u64, u64> = HashMap::new();
        let mut redeliveries = 0u64;
        let mut ack_errors = 0u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while processed.len() < MESSAGES as usize {
            let published = sent.load(Ordering::Relaxed);
            assert!(
                Instant::now() < deadline,
                "bounded: {} of {MESSAGES} processed, {published} published",
                processed.len()
            );
            let Some(next) = consumer.next_timeout(Duration::from_secs(20)).await else { panic!("consumer closed") };
            if let Err(e) = &next {
                eprintln!("after {} processed, {} published: {e}", processed.len(), sent.load(Ordering::Relaxed));
            }
            let d = next.unwrap_or_else(|e| panic!("after {} processed: {e}", processed.len()));
            let n = number_of(&d.received.payloads[0].data);
            // Processed again is fine if it is the same stored message: a SIGKILL can lose the
            // consumer's delivery count, so after the restart it may come back as delivered 1.
            // The same number under another stream sequence would be a publish stored twice.
            match processed.entry(n) {
                Entry::Occupied(first) => {
                    assert_eq!(*first.get(), d.info.stream_sequence, "message {n} stored twice: {:?}", d.info);
                    redeliveries += 1;
                }
                Entry::Vacant(first) => {
                    first.insert(d.info.stream_sequence);
                }
            }
            // An ack lost to the kill is redelivered later: processed again, marked.
            if let Err(e) = d.ack.ack().await {
                ack_errors += 1;
                if ack_errors < 5 || ack_errors.is_multiple_of(500) {
                    eprintln!("ack {ack_errors} failed (message {n}, delivered {}): {e}", d.info.delivered);
                }
            }
        }
        redeliveries
    };
    let ((), redeliveries) = tokio::join!(killer, consuming);
    let duplicates = publishing.await.unwrap();
    let info = async_nats::jetstream::new(publisher.nats().clone())
        .get_stream("FAULTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    println!(
        "JetStream, server killed at {KILL_AT}: {MESSAGES} sent, {MESSAGES} processed, 0 lost; {redeliveries} redeliveries, \
         {duplicates} publishes retried and deduplicated; the stream holds {info}"
    );
    assert_eq!(info, MESSAGES, "every message stored exactly once, retried publishes included");
}

fn fast_retry(retries: u32) -> RetryPolicy {
    RetryPolicy { retries, base_delay: Duration::from_millis(200), max_delay: Duration::from_millis(1000) }
}

async fn link_client(
    nats: &NatsServer,
    fileserver: &str,
    kind: FileServerKind,
    retry: RetryPolicy,
    jetstream: bool,
) -> Client {
    let mut opts = options(nats);
    opts.settings.fileserver_url = Some(fileserver.to_owned());
    opts.settings.fileserver_kind = kind;
    opts.settings.retry = retry;
    opts.settings.jetstream = jetstream;
    Client::connect(opts).await.unwrap()
}

fn blob() -> Vec<Outgoing> {
    let bytes: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    vec![Outgoing::new("blob", Data::Bytes(bytes.into()), PayloadType::Binary)]
}

#[tokio::test(flavor = "multi_thread")]
async fn plik_down_for_three_seconds_is_ridden_out_and_down_for_good_is_download_failed() {
    let nats = NatsServer::start();
    let mut plik = Plik::start();
    let url = plik.url.clone();
    // Seven tries 200 ms doubling to 1 s: about 4.6 s of waiting, more than the outage.
    let c = link_client(&nats, &url, FileServerKind::Plik, fast_retry(7), false).await;
    let sent = c.build("plik.x", blob(), &SendOptions::default()).await.unwrap();
    plik.kill();
    let receive = tokio::spawn({
        let (c, json) = (c.clone(), sent.json.clone());
        async move { c.smartreceive(&json).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    plik.restart().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), receive).await.unwrap().unwrap().unwrap();
    assert_eq!(got.payloads[0].data, blob()[0].data, "the backoff recovered");

    let short = link_client(&nats, &url, FileServerKind::Plik, fast_retry(3), false).await;
    plik.kill();
    let t = Instant::now();
    let e = short.smartreceive(&sent.json).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::DownloadFailed, "{e}");
    // Three tries: 200 + 400 ms of waiting plus three refused connections.
    assert!(t.elapsed() < Duration::from_secs(3), "within the retry budget: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn http_store_down_for_three_seconds_is_ridden_out_and_down_for_good_is_download_failed() {
    let nats = NatsServer::start();
    let mut http = FlakyHttp::start(Serve::NotFound).await;
    let url = http.url("/files");
    let c = link_client(&nats, &url, FileServerKind::Http, fast_retry(7), false).await;
    let sent = c.build("http.x", blob(), &SendOptions::default()).await.unwrap();
    http.stop();
    let receive = tokio::spawn({
        let (c, json) = (c.clone(), sent.json.clone());
        async move { c.smartreceive(&json).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    http.restart().await;
    let got = tokio::time::timeout(Duration::from_secs(30), receive).await.unwrap().unwrap().unwrap();
    assert_eq!(got.payloads[0].data, blob()[0].data);

    http.stop();
    let short = link_client(&nats, &url, FileServerKind::Http, fast_retry(3), false).await;
    let t = Instant::now();
    assert_eq!(short.smartreceive(&sent.json).await.unwrap_err().code, ErrorCode::DownloadFailed);
    assert!(t.elapsed() < Duration::from_secs(3), "within the retry budget: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn jetstream_naks_a_link_while_plik_is_down_and_processes_it_once_plik_is_back() {
    let nats = NatsServer::start();
    let mut plik = Plik::start();
    let url = plik.url.clone();
    let c = link_client(&nats, &url, FileServerKind::Plik, fast_retry(2), true).await;
    c.add_stream(&StreamSettings::new("PLIKED")).await.unwrap();
    let sent = c.smartsend("PLIKED.x", blob(), &SendOptions::default()).await.unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, "link");
    plik.kill();
    let opts = ConsumeOptions::from_json(serde_json::json!({"nak_delay": 0.5}).as_object().unwrap(), TimeUnit::Seconds)
        .unwrap();
    let mut consumer = c.consume("PLIKED", "w", opts).await.unwrap();
    let early = consumer.next_timeout(Duration::from_secs(2)).await.unwrap();
    assert_eq!(early.err().unwrap().code, ErrorCode::Timeout, "not yielded while Plik is down");
    plik.restart().unwrap();
    let d = consumer.next_timeout(Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(d.received.payloads[0].data, blob()[0].data);
    assert!(d.info.delivered >= 2, "nak'd, then delivered again: {:?}", d.info);
    d.ack.ack().await.unwrap();
}
