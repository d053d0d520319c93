//! Trace context end to end (spec/PROTOCOL.md §13) with the real OpenTelemetry SDK behind a
//! `tracing-opentelemetry` layer, against a real nats-server: the headers on the wire, the spans
//! of a send and of a receive, a download linked to its upload, failures on their spans, and
//! malformed headers received as if untraced.

mod common;

use bytes::Bytes;
use common::links::{bounded, pseudo_random};
use futures::StreamExt;
use natsbridge::error::ErrorCode;
use natsbridge::io::{Client, ConnectOptions, Outgoing};
use natsbridge::protocol::durable::{ConsumeOptions, StreamSettings};
use natsbridge::protocol::{Data, PayloadType, SendOptions, TimeUnit, TraceContext};
use natsbridge_servers::NatsServer;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::sync::OnceLock;
use std::time::Duration;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Every span this test binary ends, exported as it ends.
fn exported() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("natsbridge-test"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
        exporter
    })
}

/// The spans of one trace, once `want` of them have ended (a receiver's spans end on its task).
async fn spans_of(trace_id: TraceId, want: usize) -> Vec<SpanData> {
    for _ in 0..200 {
        let spans: Vec<SpanData> = exported()
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id() == trace_id)
            .collect();
        if spans.len() >= want {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {want} spans of trace {trace_id} ended within 2 s");
}

fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name:?} among {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    found[0]
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.clone())
}

fn text(span: &SpanData, key: &str) -> String {
    match attribute(span, key) {
        Some(v) => v.as_str().into_owned(),
        None => panic!("span {:?} has no {key}: {:?}", span.name, span.attributes),
    }
}

async fn client(nats: &NatsServer) -> Client {
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.object_store = true;
    Client::connect(opts).await.unwrap()
}

/// A trace id and span id from a traceparent header.
fn ids(traceparent: &str) -> (TraceId, SpanId) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (TraceId::from_hex(parts[1]).unwrap(), SpanId::from_hex(parts[2]).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_goes_from_the_sender_through_a_link_to_the_receiver() {
    exported();
    let nats = NatsServer::start();
    let (sender, receiver) = (client(&nats).await, client(&nats).await);
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let mut wire = raw.subscribe("t.otel").await.unwrap();
    let mut sub = receiver.subscribe("t.otel", None).await.unwrap();
    raw.flush().await.unwrap();

    let big = pseudo_random(600_000, 3);
    let payloads = vec![
        Outgoing::new("note", Data::Text("hi".into()), PayloadType::Text),
        Outgoing::new("big.bin", Data::Bytes(big.clone()), PayloadType::Binary),
    ];
    let root = tracing::info_span!("caller");
    let sent = bounded("send", sender.smartsend("t.otel", payloads, &SendOptions::default()).instrument(root.clone()))
        .await
        .unwrap();
    drop(root);
    let cid = sent.envelope.correlation_id.clone();

    // On the wire: the publish span's context and the upload span of payload 1.
    let message = bounded("raw message", wire.next()).await.unwrap();
    let headers = message.headers.expect("the message has trace headers");
    let traceparent = headers.get("traceparent").expect("traceparent").as_str().to_owned();
    let (trace_id, publish_id) = ids(&traceparent);
    assert!(traceparent.ends_with("-01"), "sampled: {traceparent}");
    let upload_spans = headers.get("natsbridge-upload-spans").expect("upload spans").as_str().to_owned();
    assert!(headers.get("tracestate").is_none() && headers.get("baggage").is_none());

    let received = bounded("receive", sub.next()).await.unwrap().unwrap();
    assert_eq!(received.payloads[1].data, Data::Bytes(big));
    let trace = received.trace.as_ref().expect("the received trace context");
    assert_eq!(trace.traceparent.to_string(), traceparent);

    let spans = spans_of(trace_id, 6).await;
    let (caller, send, upload, publish, receive, download) = (
        span(&spans, "caller"),
        span(&spans, "send t.otel"),
        span(&spans, "upload big.bin"),
        span(&spans, "publish t.otel"),
        span(&spans, "receive t.otel"),
        span(&spans, "download big.bin"),
    );
    assert_eq!(send.parent_span_id, caller.span_context.span_id());
    assert_eq!(upload.parent_span_id, send.span_context.span_id());
    assert_eq!(publish.parent_span_id, send.span_context.span_id());
    assert_eq!(publish.span_context.span_id(), publish_id, "the header names the publish span");
    assert_eq!(upload_spans, format!("1:{}", upload.span_context.span_id()));
    assert_eq!(receive.parent_span_id, publish_id, "the receive continues the sender's trace");
    assert!(receive.parent_span_is_remote);
    assert_eq!(download.parent_span_id, receive.span_context.span_id());
    let linked: Vec<SpanId> = download.links.links.iter().map(|l| l.span_context.span_id()).collect();
    assert_eq!(linked, [upload.span_context.span_id()], "the download links to its upload");

    assert_eq!(
        [send.span_kind.clone(), upload.span_kind.clone(), publish.span_kind.clone()],
        [SpanKind::Internal, SpanKind::Client, SpanKind::Producer]
    );
    assert_eq!([receive.span_kind.clone(), download.span_kind.clone()], [SpanKind::Consumer, SpanKind::Client]);
    for s in [send, upload, receive] {
        assert_eq!(text(s, "messaging.message.conversation_id"), cid, "{}", s.name);
    }
    assert_eq!(text(receive, "messaging.message.id"), sent.envelope.msg_id);
    assert_eq!(text(publish, "messaging.destination.name"), "t.otel");
    assert_eq!(text(upload, "natsbridge.payload_type"), "binary");
    assert_eq!(attribute(upload, "natsbridge.size"), Some(Value::I64(600_000)));
    assert_eq!(attribute(download, "natsbridge.attempts"), Some(Value::I64(1)));
    assert_eq!(attribute(send, "messaging.message.body.size"), Some(Value::I64(sent.json.len() as i64)));
    for s in &spans {
        assert_eq!(s.status, Status::Unset, "{}", s.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_context_is_the_parent_and_its_state_and_baggage_travel() {
    exported();
    let nats = NatsServer::start();
    let (sender, receiver) = (client(&nats).await, client(&nats).await);
    let mut sub = receiver.subscribe("t.host", None).await.unwrap();
    let host = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let trace = TraceContext::from_host(host, Some("congo=t61rcWkgMzE"), Some("tenant=acme")).unwrap();
    let opts = SendOptions { trace: Some(trace), ..SendOptions::default() };
    let payloads = vec![Outgoing::new("n", Data::Text("x".into()), PayloadType::Text)];
    bounded("send", sender.smartsend("t.host", payloads, &opts)).await.unwrap();
    let received = bounded("receive", sub.next()).await.unwrap().unwrap();

    let (trace_id, host_span) = ids(host);
    let spans = spans_of(trace_id, 3).await;
    let (send, publish, receive) =
        (span(&spans, "send t.host"), span(&spans, "publish t.host"), span(&spans, "receive t.host"));
    assert_eq!(send.parent_span_id, host_span);
    assert!(send.parent_span_is_remote);
    assert_eq!(receive.parent_span_id, publish.span_context.span_id());
    let got = received.trace.unwrap();
    assert_eq!(got.traceparent.span_id, publish.span_context.span_id().to_bytes());
    assert_eq!(got.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    assert_eq!(got.baggage.as_deref(), Some("tenant=acme"));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_trace_headers_are_received_as_untraced() {
    exported();
    let nats = NatsServer::start();
    let (sender, receiver) = (client(&nats).await, client(&nats).await);
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = receiver.subscribe("t.bad", None).await.unwrap();
    let payloads = vec![Outgoing::new("n", Data::Text("x".into()), PayloadType::Text)];
    let sent = sender.build("t.bad", payloads, &SendOptions::default()).await.unwrap();
    for traceparent in ["garbage", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", ""] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("traceparent", traceparent);
        headers.insert("natsbridge-upload-spans", "0:b7ad6b7169203331");
        raw.publish_with_headers("t.bad", headers, sent.json.clone()).await.unwrap();
        let received = bounded("receive", sub.next()).await.unwrap().unwrap();
        assert_eq!(received.payloads[0].data, Data::Text("x".into()), "{traceparent:?}");
        assert_eq!(received.trace, None, "{traceparent:?}");
    }
    // A good traceparent with an upload span naming a direct payload: the span is dropped.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("traceparent", "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    headers.insert("natsbridge-upload-spans", "0:b7ad6b7169203331");
    raw.publish_with_headers("t.bad", headers, sent.json.clone()).await.unwrap();
    let received = bounded("receive", sub.next()).await.unwrap().unwrap();
    let trace = received.trace.unwrap();
    assert!(!trace.traceparent.sampled());
    assert_eq!(trace.upload_spans, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_on_their_spans_with_the_error_code() {
    exported();
    let nats = NatsServer::start();
    let receiver = client(&nats).await;
    // An upload to a closed port, with a payload too large to fall back to direct.
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.fileserver_url = Some("http://127.0.0.1:9/".into());
    let failing = Client::connect(opts).await.unwrap();
    let root = tracing::info_span!("failing caller");
    let trace_id = {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        root.context().span().span_context().trace_id()
    };
    let too_big = Bytes::from(vec![7u8; failing.max_payload() + 1]);
    let payloads = vec![Outgoing::new("big", Data::Bytes(too_big), PayloadType::Binary)];
    let e = bounded("send", failing.smartsend("t.fail", payloads, &SendOptions::default()).instrument(root.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::UploadFailed);
    drop(root);
    let spans = spans_of(trace_id, 3).await;
    for name in ["send t.fail", "upload big"] {
        let s = span(&spans, name);
        assert!(matches!(s.status, Status::Error { .. }), "{name}: {:?}", s.status);
        assert_eq!(text(s, "error.type"), "UPLOAD_FAILED", "{name}");
    }
    assert!(spans.iter().all(|s| s.name != "publish t.fail"), "nothing was published");

    // A link whose bytes are not the ones the envelope's sha256 names.
    let sender = client(&nats).await;
    let payloads = vec![Outgoing::new("big.bin", Data::Bytes(pseudo_random(600_000, 4)), PayloadType::Binary)];
    let root = tracing::info_span!("forging caller");
    let sent = sender.build("t.forged", payloads, &SendOptions::default()).instrument(root.clone()).await.unwrap();
    drop(root);
    let sha256 = sent.envelope.payloads[0].metadata["sha256"].as_str().unwrap().to_owned();
    let forged = String::from_utf8(sent.json.to_vec()).unwrap().replace(&sha256, &"0".repeat(64));
    let e = bounded("receive", receiver.smartreceive(forged.as_bytes())).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ChecksumMismatch);
    // Received from bytes alone, with no headers: a new trace. Found by its correlation id.
    let cid = sent.envelope.correlation_id.clone();
    let mut found = None;
    for _ in 0..200 {
        let spans = exported().get_finished_spans().unwrap();
        let receive = spans.iter().find(|s| {
            s.name == "receive" && attribute(s, "messaging.message.conversation_id") == Some(cid.clone().into())
        });
        let download = receive.and_then(|r| {
            spans.iter().find(|d| d.name == "download big.bin" && d.parent_span_id == r.span_context.span_id())
        });
        if let (Some(receive), Some(download)) = (receive, download) {
            found = Some((receive.clone(), download.clone()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (receive, download) = found.unwrap_or_else(|| panic!("no receive span with a download span for {cid}"));
    for s in [&receive, &download] {
        assert!(matches!(s.status, Status::Error { .. }), "{}: {:?}", s.name, s.status);
        assert_eq!(text(s, "error.type"), "CHECKSUM_MISMATCH", "{}", s.name);
    }
    assert_eq!(receive.parent_span_id, SpanId::INVALID, "no headers: no parent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_durable_publish_carries_its_trace_beside_its_msg_id() {
    exported();
    let nats = NatsServer::start();
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.jetstream = true;
    let c = Client::connect(opts).await.unwrap();
    c.add_stream(&StreamSettings::new("TRACED")).await.unwrap();
    let root = tracing::info_span!("durable caller");
    let payloads = vec![Outgoing::new("n", Data::Text("x".into()), PayloadType::Text)];
    let sent = bounded("send", c.smartsend("TRACED.a", payloads, &SendOptions::default()).instrument(root.clone()))
        .await
        .unwrap();
    drop(root);
    let options = ConsumeOptions::from_json(&serde_json::Map::new(), TimeUnit::Seconds).unwrap();
    let mut consumer = c.consume("TRACED", "worker", options).await.unwrap();
    let delivery = bounded("delivery", consumer.next()).await.unwrap().unwrap();
    delivery.ack.ack().await.unwrap();

    let js = async_nats::jetstream::new(c.nats().clone());
    let stored = js.get_stream("TRACED").await.unwrap().get_raw_message(1).await.unwrap();
    assert_eq!(stored.headers.get("Nats-Msg-Id").unwrap().as_str(), sent.envelope.msg_id);
    let traceparent = stored.headers.get("traceparent").expect("traceparent").as_str().to_owned();
    let (trace_id, publish_id) = ids(&traceparent);
    assert_eq!(delivery.received.trace.unwrap().traceparent.to_string(), traceparent);
    let spans = spans_of(trace_id, 4).await;
    assert_eq!(span(&spans, "publish TRACED.a").span_context.span_id(), publish_id);
    assert_eq!(span(&spans, "receive TRACED.a").parent_span_id, publish_id);
}
