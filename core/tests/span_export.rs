//! `export_spans`: core's spans reach a host's sink as JSON, with the ids the message carries,
//! parented under the host's own span (its trace headers), the download linked to its upload.
//! Its own test binary: it installs the process's tracing subscriber.

mod common;

use common::links::{bounded, pseudo_random};
use futures::StreamExt;
use natsbridge::io::span_export::export_spans;
use natsbridge::io::{Client, ConnectOptions};
use natsbridge::protocol::{Data, Outgoing, PayloadType, SendOptions, TraceContext};
use natsbridge_servers::NatsServer;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The spans of `trace_id` among what the sink got, once `want` of them arrived.
async fn spans_of(got: &Mutex<Vec<Value>>, trace_id: &str, want: usize) -> Vec<Value> {
    for _ in 0..300 {
        let spans: Vec<Value> = got.lock().unwrap().iter().filter(|s| s["trace_id"] == trace_id).cloned().collect();
        if spans.len() >= want {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {want} spans of trace {trace_id} reached the sink within 3 s");
}

fn span<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = spans.iter().filter(|s| s["name"] == name).collect();
    assert_eq!(found.len(), 1, "one span {name:?} among {spans:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_gets_every_span_as_json_with_the_ids_the_message_carries() {
    let (batches, got) = (Arc::new(Mutex::new(0usize)), Arc::new(Mutex::new(Vec::<Value>::new())));
    let stale = Arc::new(Mutex::new(0usize));
    let counted = stale.clone();
    export_spans(Arc::new(move |_batch: String| *counted.lock().unwrap() += 1)).unwrap();
    // A second call replaces the sink: the first gets nothing more.
    let (sink_batches, sink_got) = (batches.clone(), got.clone());
    export_spans(Arc::new(move |batch: String| {
        *sink_batches.lock().unwrap() += 1;
        let spans: Vec<Value> = serde_json::from_str(&batch).expect("a batch is a JSON array");
        sink_got.lock().unwrap().extend(spans);
    }))
    .unwrap();

    let nats = NatsServer::start();
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.object_store = true;
    let (sender, receiver) = (Client::connect(opts.clone()).await.unwrap(), Client::connect(opts).await.unwrap());
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let mut wire = raw.subscribe("t.export").await.unwrap();
    let mut sub = receiver.subscribe("t.export", None).await.unwrap();
    raw.flush().await.unwrap();

    // The host's span, as a binding passes it: its trace headers.
    let host = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let trace = TraceContext::from_host(host, Some("congo=t61rcWkgMzE"), None).unwrap();
    let payloads = vec![Outgoing::new("big.bin", Data::Bytes(pseudo_random(600_000, 5)), PayloadType::Binary)];
    let send_opts = SendOptions { trace: Some(trace), ..SendOptions::default() };
    bounded("send", sender.smartsend("t.export", payloads, &send_opts)).await.unwrap();
    let message = bounded("raw message", wire.next()).await.unwrap();
    let traceparent = message.headers.unwrap().get("traceparent").unwrap().as_str().to_owned();
    bounded("receive", sub.next()).await.unwrap().unwrap();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let spans = spans_of(&got, trace_id, 5).await;
    let (send, upload, publish, receive, download) = (
        span(&spans, "send t.export"),
        span(&spans, "upload big.bin"),
        span(&spans, "publish t.export"),
        span(&spans, "receive t.export"),
        span(&spans, "download big.bin"),
    );
    assert_eq!(
        (send["parent_span_id"].as_str(), &send["parent_is_remote"]),
        (Some("00f067aa0ba902b7"), &Value::Bool(true))
    );
    assert_eq!(send["trace_state"], "congo=t61rcWkgMzE", "the host's tracestate goes on");
    assert_eq!(upload["parent_span_id"], send["span_id"]);
    assert_eq!(publish["parent_span_id"], send["span_id"]);
    assert_eq!(
        traceparent,
        format!("00-{trace_id}-{}-01", publish["span_id"].as_str().unwrap()),
        "the header names the publish span"
    );
    assert_eq!(receive["parent_span_id"], publish["span_id"]);
    assert_eq!(download["parent_span_id"], receive["span_id"]);
    assert_eq!(download["links"][0]["span_id"], upload["span_id"], "the download links to its upload");
    let kinds: Vec<&Value> = [send, upload, publish, receive, download].iter().map(|s| &s["kind"]).collect();
    assert_eq!(kinds, ["internal", "client", "producer", "consumer", "client"]);
    assert_eq!(upload["attributes"]["natsbridge.size"], 600_000);
    assert_eq!(receive["attributes"]["messaging.destination.name"], "t.export");
    assert_eq!(send["status"]["code"], "unset");
    for s in [send, download] {
        let (start, end) = (&s["start"], &s["end"]);
        let ns = |t: &Value| t[0].as_u64().unwrap() as u128 * 1_000_000_000 + t[1].as_u64().unwrap() as u128;
        assert!(ns(start) > 1_700_000_000 * 1_000_000_000 && ns(start) <= ns(end), "{start} {end}");
    }
    assert_eq!(*stale.lock().unwrap(), 0, "the replaced sink got nothing");
    assert!(*batches.lock().unwrap() >= 1);

    // An unsampled host trace stays unrecorded: nothing reaches the sink, the flag goes on.
    let unsampled =
        TraceContext::from_host("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", None, None).unwrap();
    let send_opts = SendOptions { trace: Some(unsampled), ..SendOptions::default() };
    let payloads = vec![Outgoing::new("note", Data::Text("hi".into()), PayloadType::Text)];
    bounded("send", sender.smartsend("t.export", payloads, &send_opts)).await.unwrap();
    let message = bounded("raw message", wire.next()).await.unwrap();
    let traceparent = message.headers.unwrap().get("traceparent").unwrap().as_str().to_owned();
    assert!(
        traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && traceparent.ends_with("-00"),
        "{traceparent}"
    );
    bounded("receive", sub.next()).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(got.lock().unwrap().iter().all(|s| s["trace_id"] != "0af7651916cd43dd8448eb211c80319c"));
}
