//! What clients count (spec/PROTOCOL.md §13.3), against a real nats-server and the real
//! OpenTelemetry metrics SDK: messages, payloads and bytes by transport, downloads and their
//! time, retries and checksum failures, both as `Client::metrics` snapshots and as instruments
//! of the meter provider installed before the clients connected. One test: the meter provider
//! is global.

mod common;

use bytes::Bytes;
use common::flaky_http::{Failure, FlakyHttp, Serve};
use common::links::{bounded, pseudo_random};
use natsbridge::error::ErrorCode;
use natsbridge::io::{ByTransport, Client, ConnectOptions, Outgoing};
use natsbridge::protocol::{Data, FileServerKind, PayloadType, RetryPolicy, SendOptions};
use natsbridge_servers::NatsServer;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use std::collections::HashMap;
use std::time::Duration;

async fn client(nats: &NatsServer, fileserver: Option<&str>) -> Client {
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.object_store = fileserver.is_none();
    if let Some(url) = fileserver {
        opts.settings.fileserver_url = Some(url.to_owned());
        opts.settings.fileserver_kind = FileServerKind::Http;
        let fast = Duration::from_millis(20);
        opts.settings.retry = RetryPolicy { retries: 5, base_delay: fast, max_delay: fast };
    }
    Client::connect(opts).await.unwrap()
}

fn text(name: &str) -> Outgoing {
    Outgoing::new(name, Data::Text("hi".into()), PayloadType::Text)
}

fn blob(bytes: &Bytes) -> Outgoing {
    Outgoing::new("blob", Data::Bytes(bytes.clone()), PayloadType::Binary)
}

/// Every exported u64 sum by (instrument name, its `natsbridge.transport` or "").
fn sums(exporter: &InMemoryMetricExporter) -> HashMap<(String, String), u64> {
    let mut out = HashMap::new();
    let exported = exporter.get_finished_metrics().unwrap();
    let last = exported.last().expect("metrics were exported");
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                for point in sum.data_points() {
                    let transport = point
                        .attributes()
                        .find(|kv| kv.key.as_str() == "natsbridge.transport")
                        .map(|kv| kv.value.as_str().into_owned())
                        .unwrap_or_default();
                    out.insert((metric.name().to_owned(), transport), point.value());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_count_what_they_send_and_receive() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(exporter.clone()).build()).build();
    opentelemetry::global::set_meter_provider(provider.clone());

    let nats = NatsServer::start();
    let (sender, receiver) = (client(&nats, None).await, client(&nats, None).await);
    let mut sub = receiver.subscribe("t.metrics", None).await.unwrap();
    let big = pseudo_random(600_000, 5);
    let first = sender.smartsend("t.metrics", vec![text("a")], &SendOptions::default()).await.unwrap();
    let second = sender.smartsend("t.metrics", vec![blob(&big), text("b")], &SendOptions::default()).await.unwrap();
    for _ in 0..2 {
        bounded("receive", sub.next()).await.unwrap().unwrap();
    }
    let envelopes = (first.json.len() + second.json.len()) as u64;

    let sent = sender.metrics();
    assert_eq!(sent.messages_sent, 2);
    assert_eq!(sent.payloads_sent, ByTransport { direct: 2, link: 1 });
    assert_eq!(sent.bytes_sent, ByTransport { direct: envelopes, link: 600_000 });
    assert_eq!((sent.messages_received, sent.downloads), (0, 0));
    let got = receiver.metrics();
    assert_eq!(got.messages_received, 2);
    assert_eq!(got.payloads_received, ByTransport { direct: 2, link: 1 });
    assert_eq!(got.bytes_received, ByTransport { direct: envelopes, link: 600_000 });
    assert_eq!(got.downloads, 1);
    assert!(got.download_time > Duration::ZERO);
    assert_eq!((got.download_retries, got.checksum_failures, got.messages_sent), (0, 0, 0));

    // Bytes that are not the sender's: a checksum failure, and no message received.
    let sha256 = second.envelope.payloads[0].metadata["sha256"].as_str().unwrap().to_owned();
    let forged = String::from_utf8(second.json.to_vec()).unwrap().replace(&sha256, &"0".repeat(64));
    let e = bounded("forged", receiver.smartreceive(forged.as_bytes())).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ChecksumMismatch);
    let after = receiver.metrics();
    assert_eq!((after.checksum_failures, after.messages_received, after.downloads), (1, 2, 1));

    // A link store that fails the first two GETs: two retries, then the download.
    let flaky = FlakyHttp::start_flaky(2, Failure::Status(503), Serve::NotFound).await;
    let url = flaky.url("/");
    let (http_sender, http_receiver) = (client(&nats, Some(&url)).await, client(&nats, Some(&url)).await);
    let sent = http_sender.build("t.metrics", vec![blob(&big)], &SendOptions::default()).await.unwrap();
    let received = bounded("flaky", http_receiver.smartreceive(&sent.json)).await.unwrap();
    assert_eq!(received.payloads[0].data, Data::Bytes(big.clone()));
    let flaky_counts = http_receiver.metrics();
    assert_eq!((flaky_counts.download_retries, flaky_counts.downloads), (2, 1));
    assert_eq!(http_sender.metrics().messages_sent, 0, "built, not published");

    // The same counts in the OpenTelemetry instruments (all clients together).
    provider.force_flush().unwrap();
    let sums = sums(&exporter);
    let at = |name: &str, transport: &str| sums.get(&(name.to_owned(), transport.to_owned())).copied();
    assert_eq!(at("natsbridge.messages.sent", ""), Some(2));
    assert_eq!(at("natsbridge.messages.received", ""), Some(3));
    assert_eq!(at("natsbridge.payloads.sent", "direct"), Some(2));
    assert_eq!(at("natsbridge.payloads.sent", "link"), Some(1));
    assert_eq!(at("natsbridge.payloads.received", "link"), Some(2));
    assert_eq!(at("natsbridge.bytes.received", "link"), Some(1_200_000));
    assert_eq!(at("natsbridge.download.retries", ""), Some(2));
    assert_eq!(at("natsbridge.checksum.failures", ""), Some(1));
    let exported = exporter.get_finished_metrics().unwrap();
    let histogram = exported
        .last()
        .unwrap()
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .find(|m| m.name() == "natsbridge.download.duration")
        .map(|m| match m.data() {
            AggregatedMetrics::F64(MetricData::Histogram(h)) => h.data_points().map(|p| p.count()).sum::<u64>(),
            other => panic!("not an f64 histogram: {other:?}"),
        });
    assert_eq!(histogram, Some(2), "one duration per verified download");
}
