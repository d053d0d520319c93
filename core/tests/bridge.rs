//! smartsend / smartreceive / subscribe / request against a real nats-server with JetStream.

mod common;

use bytes::Bytes;
use natsbridge::error::ErrorCode;
use natsbridge::io::{Arrival, Client, ConnectOptions, Kick, Outgoing, ReplyTo, SendOptions};
use natsbridge::protocol::{self, Data, PayloadType, Transport, arrow};
use natsbridge_servers::NatsServer;
use serde_json::json;
use std::time::Duration;

async fn client(server: &NatsServer) -> Client {
    Client::connect(ConnectOptions::with_server(&server.url())).await.unwrap()
}

fn sample(payload_type: PayloadType, size_hint: usize) -> Data {
    match payload_type {
        PayloadType::Text => Data::Text("héllo ✓ ".repeat(size_hint / 10 + 1)),
        PayloadType::Dictionary => Data::Json(json!({"a": {"b": [1, 2.5, null, "x".repeat(size_hint)]}})),
        PayloadType::JsonTable => {
            Data::Json(json!([{"id": 1, "name": "x".repeat(size_hint)}, {"id": 2, "name": null}]))
        }
        PayloadType::ArrowTable => {
            let rows: Vec<_> = (0..(size_hint / 20 + 1))
                .map(|i| json!({"id": i, "v": i as f64 / 3.0, "s": format!("r{i}")}))
                .collect();
            Data::Arrow(arrow::from_json_rows(&json!(rows)).unwrap())
        }
        _ => Data::Bytes(Bytes::from((0..size_hint + 1).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_payload_type_over_both_transports() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut sub = c.subscribe("t.types", None).await.unwrap();
    for &payload_type in PayloadType::ALL {
        for (threshold, transport) in [(usize::MAX, Transport::Direct), (1, Transport::Link)] {
            let data = sample(payload_type, 2000);
            let opts = SendOptions { size_threshold: Some(threshold), ..Default::default() };
            let sent =
                c.smartsend("t.types", vec![Outgoing::new("p", data.clone(), payload_type)], &opts).await.unwrap();
            assert_eq!(sent.envelope.payloads[0].transport, transport.as_str());
            common::schema::assert_sent_envelope_valid(&sent.json);
            let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
            assert_eq!(got.envelope.msg_id, sent.envelope.msg_id);
            assert_eq!(got.payloads.len(), 1);
            assert_eq!(got.payloads[0].payload_type, payload_type);
            assert_eq!(got.payloads[0].transport, transport);
            assert_eq!(got.payloads[0].data, data, "{payload_type:?} over {transport:?}");
            if transport == Transport::Link {
                let url = sent.envelope.payloads[0].data.as_str().unwrap();
                assert!(url.starts_with("nats-obj://natsbridge/"), "{url}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_payload_keeps_order_and_mixes_transports() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut sub = c.subscribe("t.multi", None).await.unwrap();
    let big = Data::Bytes(Bytes::from(vec![9u8; 2 * 1024 * 1024]));
    let payloads = vec![
        Outgoing::new("msg", Data::Text("Hello World".into()), PayloadType::Text),
        Outgoing::new("big", big.clone(), PayloadType::Binary),
        Outgoing::new("cfg", Data::Json(json!({"k": [1, 2]})), PayloadType::Dictionary),
        Outgoing::new("rows", Data::Json(json!([{"a": 1}])), PayloadType::JsonTable),
    ];
    let sent = c.smartsend("t.multi", payloads, &SendOptions::default()).await.unwrap();
    common::schema::assert_sent_envelope_valid(&sent.json);
    let transports: Vec<_> = sent.envelope.payloads.iter().map(|p| p.transport.as_str()).collect();
    assert_eq!(transports, ["direct", "link", "direct", "direct"]);
    let Data::Bytes(big_bytes) = &big else { unreachable!() };
    assert_eq!(sent.envelope.payloads[1].metadata["sha256"], protocol::sha256_hex(big_bytes));
    let got = sub.next_timeout(Duration::from_secs(10)).await.unwrap().unwrap();
    let names: Vec<_> = got.payloads.iter().map(|p| p.dataname.as_str()).collect();
    assert_eq!(names, ["msg", "big", "cfg", "rows"]);
    assert_eq!(got.payloads[1].data, big);
    assert_eq!(got.payloads[0].data, Data::Text("Hello World".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn threshold_boundary_is_strictly_less_than() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let opts = SendOptions { size_threshold: Some(1000), ..Default::default() };
    for (size, want) in [(999, "direct"), (1000, "link"), (1001, "link")] {
        let data = Data::Bytes(Bytes::from(vec![1u8; size]));
        let sent = c.smartsend("t.th", vec![Outgoing::new("b", data, PayloadType::Binary)], &opts).await.unwrap();
        assert_eq!(sent.envelope.payloads[0].transport, want, "size {size}");
        assert_eq!(sent.envelope.payloads[0].size, size as u64);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn envelope_over_max_payload_moves_largest_to_link() {
    let server = NatsServer::with_config("max_payload: 65536");
    let c = client(&server).await;
    assert_eq!(c.max_payload(), 65536);
    let mut sub = c.subscribe("t.max", None).await.unwrap();
    // Each is under the threshold, but together (base64: 4/3) they overflow 64 KiB.
    let small = Data::Bytes(Bytes::from(vec![1u8; 20_000]));
    let large = Data::Bytes(Bytes::from(vec![2u8; 30_000]));
    let sent = c
        .smartsend(
            "t.max",
            vec![
                Outgoing::new("small", small.clone(), PayloadType::Binary),
                Outgoing::new("large", large.clone(), PayloadType::Binary),
            ],
            &SendOptions::default(),
        )
        .await
        .unwrap();
    assert!(sent.json.len() <= 65536);
    assert_eq!(sent.envelope.payloads[0].transport, "direct");
    assert_eq!(sent.envelope.payloads[1].transport, "link");
    let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(got.payloads[0].data, small);
    assert_eq!(got.payloads[1].data, large);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_large_without_a_link_store_fails_before_publishing() {
    let server = NatsServer::with_config("max_payload: 65536");
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.object_store = false;
    let c = Client::connect(opts).await.unwrap();
    let watcher = client(&server).await;
    let mut sub = watcher.subscribe("t.nolink", None).await.unwrap();
    let data = Data::Bytes(Bytes::from(vec![0u8; 100_000]));
    let e = c
        .smartsend("t.nolink", vec![Outgoing::new("b", data, PayloadType::Binary)], &SendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{e}");
    assert!(e.correlation_id.is_some());
    // Nothing was published: a later message is the first one the watcher sees.
    c.smartsend(
        "t.nolink",
        vec![Outgoing::new("t", Data::Text("after".into()), PayloadType::Text)],
        &SendOptions::default(),
    )
    .await
    .unwrap();
    let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(got.payloads[0].data, Data::Text("after".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn under_threshold_without_link_store_but_fitting_goes_direct() {
    // A payload over the threshold falls back to direct when no store takes it and it fits.
    let server = NatsServer::start();
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.object_store = false;
    let c = Client::connect(opts).await.unwrap();
    let data = Data::Bytes(Bytes::from(vec![3u8; 5000]));
    let send = SendOptions { size_threshold: Some(100), ..Default::default() };
    let sent = c.smartsend("t.fallback", vec![Outgoing::new("b", data, PayloadType::Binary)], &send).await.unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, "direct");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_returns_only_once_the_server_has_it() {
    let server = NatsServer::start();
    let receiver = client(&server).await;
    let sender = client(&server).await;
    for i in 0..30 {
        let subject = format!("t.race.{i}");
        let mut sub = receiver.subscribe(&subject, None).await.unwrap();
        sender
            .smartsend(
                &subject,
                vec![Outgoing::new("i", Data::Json(json!(i)), PayloadType::Dictionary)],
                &SendOptions::default(),
            )
            .await
            .unwrap();
        let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap_or_else(|e| panic!("round {i}: {e}"));
        assert_eq!(got.payloads[0].data, Data::Json(json!(i)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_reply_and_nack() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut service = c.subscribe("t.svc", None).await.unwrap();
    let responder = c.clone();
    tokio::spawn(async move {
        while let Some(Ok(req)) = service.next().await {
            match &req.payloads[0].data {
                Data::Text(t) if t == "fail" => {
                    let e = natsbridge::error::Error::new(ErrorCode::DownloadFailed, "could not fetch it");
                    responder.reply_error(&ReplyTo::of(&req), &e).await.unwrap();
                }
                Data::Text(t) => {
                    let up = Data::Text(t.to_uppercase());
                    responder
                        .reply(
                            &ReplyTo::of(&req),
                            vec![Outgoing::new("answer", up, PayloadType::Text)],
                            &SendOptions::default(),
                        )
                        .await
                        .unwrap();
                }
                _ => unreachable!(),
            }
        }
    });
    let ask = |t: &str| vec![Outgoing::new("q", Data::Text(t.into()), PayloadType::Text)];
    // A tap on the reply subjects checks the ACK and NACK envelopes the responder publishes.
    let mut tap = c.nats().subscribe("_INBOX.>").await.unwrap();
    let reply = c.request("t.svc", ask("hi"), &SendOptions::default(), Duration::from_secs(5)).await.unwrap();
    let raw = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut tap)).await.unwrap().unwrap();
    common::schema::assert_sent_envelope_valid(&raw.payload);
    assert_eq!(reply.payloads[0].data, Data::Text("HI".into()));
    assert_eq!(reply.envelope.msg_purpose, "ACK");
    let e = c.request("t.svc", ask("fail"), &SendOptions::default(), Duration::from_secs(5)).await.unwrap_err();
    let raw = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut tap)).await.unwrap().unwrap();
    common::schema::assert_sent_envelope_valid(&raw.payload);
    assert_eq!(e.code, ErrorCode::DownloadFailed);
    assert_eq!(e.message, "could not fetch it");
    let e = c.request("t.nobody", ask("x"), &SendOptions::default(), Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Timeout);
}

#[tokio::test(flavor = "multi_thread")]
async fn receive_side_errors_have_codes() {
    let server = NatsServer::start();
    let c = client(&server).await;
    assert_eq!(c.smartreceive(b"not json").await.unwrap_err().code, ErrorCode::InvalidEnvelope);

    // A link to an origin nobody allowed: refused without a request.
    let mut env = protocol::Envelope::new("x");
    env.payloads.push(protocol::link_payload(
        "p",
        PayloadType::Binary,
        3,
        "http://127.0.0.1:9/file/a/b/c".into(),
        "00".into(),
    ));
    let e = c.smartreceive(env.to_json().as_bytes()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UrlNotAllowed);
    assert_eq!(e.correlation_id.as_deref(), Some(env.correlation_id.as_str()));

    // An object-store link whose checksum does not match the stored bytes.
    let big = Data::Bytes(Bytes::from(vec![5u8; 4096]));
    let opts = SendOptions { size_threshold: Some(1), ..Default::default() };
    let mut sent = c.smartsend("t.sum", vec![Outgoing::new("b", big, PayloadType::Binary)], &opts).await.unwrap();
    sent.envelope.payloads[0].metadata.insert("sha256".into(), protocol::sha256_hex(b"other").into());
    let e = c.smartreceive(sent.envelope.to_json().as_bytes()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ChecksumMismatch);

    // A link to a missing object fails at once (not found is not retried).
    sent.envelope.payloads[0].data = json!("nats-obj://natsbridge/no-such-object");
    let started = std::time::Instant::now();
    let e = c.smartreceive(sent.envelope.to_json().as_bytes()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::DownloadFailed, "{e}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_errors() {
    let port = natsbridge_servers::free_port();
    let mut opts = ConnectOptions::with_server(&format!("nats://127.0.0.1:{port}"));
    opts.settings.connect_timeout = Duration::from_secs(1);
    let e = Client::connect(opts).await.err().unwrap();
    assert_eq!(e.code, ErrorCode::NatsConnectionFailed);

    let server = NatsServer::with_config("authorization { token: \"s3cret\" }");
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.token = Some("s3cret".into());
    Client::connect(opts.clone()).await.unwrap();
    opts.settings.token = Some("wrong".into());
    opts.settings.max_reconnect_attempts = Some(1);
    assert_eq!(Client::connect(opts).await.err().unwrap().code, ErrorCode::NatsConnectionFailed);

    let server = NatsServer::with_config("authorization { user: alice, password: \"pw\" }");
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.user = Some("alice".into());
    opts.settings.password = Some("pw".into());
    Client::connect(opts.clone()).await.unwrap();
    opts.settings.password = Some("nope".into());
    assert_eq!(Client::connect(opts).await.err().unwrap().code, ErrorCode::NatsConnectionFailed);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_consumer_drops_are_counted() {
    let server = NatsServer::start();
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.pending_msgs_limit = 4;
    let c = Client::connect(opts).await.unwrap();
    let _sub = c.subscribe("t.slow", None).await.unwrap();
    let msg = vec![Outgoing::new("t", Data::Text("x".into()), PayloadType::Text)];
    for _ in 0..200 {
        c.smartsend("t.slow", msg.clone(), &SendOptions::default()).await.unwrap();
    }
    c.flush().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c.slow_consumer_drops() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(c.slow_consumer_drops() > 0);
}

/// A host-provided store, as a binding's upload/download handlers would be.
struct MemoryStore {
    objects: std::sync::Mutex<std::collections::HashMap<String, Bytes>>,
    fail_uploads: bool,
}

impl MemoryStore {
    fn new(fail_uploads: bool) -> std::sync::Arc<MemoryStore> {
        std::sync::Arc::new(MemoryStore { objects: Default::default(), fail_uploads })
    }
}

impl natsbridge::io::store::LinkStore for MemoryStore {
    fn upload<'a>(
        &'a self,
        u: natsbridge::io::store::Upload<'a>,
    ) -> futures::future::BoxFuture<'a, natsbridge::error::Result<natsbridge::io::store::Stored>> {
        Box::pin(async move {
            if self.fail_uploads {
                return Err(natsbridge::error::Error::new(ErrorCode::UploadFailed, "handler refused"));
            }
            let url = format!("mem://{}/{}", u.correlation_id, u.dataname);
            let bytes = u
                .body
                .collect()
                .await
                .map_err(|e| natsbridge::error::Error::new(ErrorCode::UploadFailed, e.to_string()))?;
            self.objects.lock().unwrap().insert(url.clone(), bytes);
            Ok(url.into())
        })
    }

    fn download<'a>(
        &'a self,
        fetch: natsbridge::io::store::Fetch<'a>,
    ) -> futures::future::BoxFuture<'a, Result<natsbridge::io::store::Fetched, natsbridge::protocol::FetchFailure>>
    {
        Box::pin(async move {
            let found = self.objects.lock().unwrap().get(fetch.url).cloned();
            found.map(Into::into).ok_or_else(|| natsbridge::protocol::FetchFailure::NotFound("gone".into()))
        })
    }

    fn scopes(&self) -> Vec<natsbridge::protocol::UrlScope> {
        vec![natsbridge::protocol::UrlScope::scheme("mem")]
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_link_store_takes_links() {
    let server = NatsServer::start();
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.link_store = Some(MemoryStore::new(false));
    let c = Client::connect(opts).await.unwrap();
    let mut sub = c.subscribe("t.custom", None).await.unwrap();
    let data = Data::Bytes(Bytes::from(vec![4u8; 1000]));
    let send = SendOptions { size_threshold: Some(10), ..Default::default() };
    let sent =
        c.smartsend("t.custom", vec![Outgoing::new("b", data.clone(), PayloadType::Binary)], &send).await.unwrap();
    let url = sent.envelope.payloads[0].data.as_str().unwrap();
    assert!(url.starts_with("mem://"), "{url}");
    let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!((got.payloads[0].transport, &got.payloads[0].data), (Transport::Link, &data));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_upload_falls_back_to_direct_only_when_it_fits() {
    let server = NatsServer::with_config("max_payload: 65536");
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.link_store = Some(MemoryStore::new(true));
    let c = Client::connect(opts).await.unwrap();
    let send = SendOptions { size_threshold: Some(10), ..Default::default() };
    let fits = Data::Bytes(Bytes::from(vec![1u8; 1000]));
    let sent = c.smartsend("t.up", vec![Outgoing::new("b", fits, PayloadType::Binary)], &send).await.unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, "direct");
    let too_big = Data::Bytes(Bytes::from(vec![1u8; 100_000]));
    let e = c.smartsend("t.up", vec![Outgoing::new("b", too_big, PayloadType::Binary)], &send).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UploadFailed, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn download_cap_refuses_before_fetching() {
    let server = NatsServer::start();
    let sender = client(&server).await;
    let mut opts = ConnectOptions::with_server(&server.url());
    opts.settings.max_download_bytes = 1000;
    let receiver = Client::connect(opts).await.unwrap();
    let send = SendOptions { size_threshold: Some(10), ..Default::default() };
    let data = Data::Bytes(Bytes::from(vec![1u8; 5000]));
    let sent = sender.smartsend("t.cap", vec![Outgoing::new("b", data, PayloadType::Binary)], &send).await.unwrap();
    let e = receiver.smartreceive(&sent.json).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plik_links_end_to_end_and_only_from_allowed_origins() {
    let server = NatsServer::start();
    let plik = natsbridge_servers::Plik::start();
    let with_plik = |oneshot: bool| {
        let mut o = ConnectOptions::with_server(&server.url());
        o.settings.fileserver_url = Some(plik.url.clone());
        o.settings.plik_oneshot = oneshot;
        o
    };
    let sender = Client::connect(with_plik(false)).await.unwrap();
    let receiver = Client::connect(with_plik(false)).await.unwrap();
    let mut sub = receiver.subscribe("t.plik", None).await.unwrap();
    let data = Data::Bytes(Bytes::from((0..700_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>()));
    let sent = sender
        .smartsend("t.plik", vec![Outgoing::new("scan.png", data.clone(), PayloadType::Image)], &SendOptions::default())
        .await
        .unwrap();
    let url = sent.envelope.payloads[0].data.as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/file/", plik.url)), "{url}");
    let got = sub.next_timeout(Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!((got.payloads[0].transport, &got.payloads[0].data), (Transport::Link, &data));
    // TTL mode: a second receiver can fetch it too.
    assert_eq!(receiver.smartreceive(&sent.json).await.unwrap().payloads[0].data, data);

    // A receiver that was not told about this file server refuses the link.
    let stranger = client(&server).await;
    assert_eq!(stranger.smartreceive(&sent.json).await.unwrap_err().code, ErrorCode::UrlNotAllowed);

    // One-shot: the first receive wins, the second fails cleanly.
    let oneshot = Client::connect(with_plik(true)).await.unwrap();
    let sent = oneshot
        .build("t.plik1", vec![Outgoing::new("b", data.clone(), PayloadType::Binary)], &SendOptions::default())
        .await
        .unwrap();
    assert_eq!(receiver.smartreceive(&sent.json).await.unwrap().payloads[0].data, data);
    assert_eq!(receiver.smartreceive(&sent.json).await.unwrap_err().code, ErrorCode::DownloadFailed);
}

#[tokio::test(flavor = "multi_thread")]
async fn transfer_progress_counts_every_link_byte() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let server = NatsServer::start();
    let plik = natsbridge_servers::Plik::start();
    for fileserver in [None, Some(plik.url.clone())] {
        let moved = std::sync::Arc::new(AtomicU64::new(0));
        let counter = moved.clone();
        let mut opts = ConnectOptions::with_server(&server.url());
        opts.settings.fileserver_url = fileserver.clone();
        opts.transfer_progress = Some(std::sync::Arc::new(move |n| {
            counter.fetch_add(n, Ordering::Relaxed);
        }));
        let c = Client::connect(opts).await.unwrap();
        let data = Data::Bytes(Bytes::from(vec![7u8; 3_000_000]));
        let sent = c
            .smartsend("t.progress", vec![Outgoing::new("b", data, PayloadType::Binary)], &SendOptions::default())
            .await
            .unwrap();
        assert_eq!(moved.load(Ordering::Relaxed), 3_000_000, "upload via {fileserver:?}");
        c.smartreceive(&sent.json).await.unwrap();
        assert_eq!(moved.load(Ordering::Relaxed), 6_000_000, "download via {fileserver:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_message_yields_its_error_and_the_subscription_goes_on() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut sub = c.subscribe("t.bad", None).await.unwrap();
    c.nats().publish("t.bad", Bytes::from_static(b"{\"payloads\": [{\"dataname\": 1}]}")).await.unwrap();
    let mut env = protocol::Envelope::new("t.bad");
    env.payloads.push(protocol::direct_payload("x", PayloadType::Text, b"hi", false));
    env.payloads[0].transport = "carrier-pigeon".into();
    c.nats().publish("t.bad", Bytes::from(env.to_json())).await.unwrap();
    c.smartsend(
        "t.bad",
        vec![Outgoing::new("t", Data::Text("fine".into()), PayloadType::Text)],
        &SendOptions::default(),
    )
    .await
    .unwrap();
    let first = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap_err();
    assert_eq!(first.code, ErrorCode::InvalidEnvelope);
    let second = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap_err();
    assert_eq!(second.code, ErrorCode::InvalidTransport);
    assert_eq!(second.correlation_id.as_deref(), Some(env.correlation_id.as_str()));
    let third = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(third.payloads[0].data, Data::Text("fine".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_group_members_share_the_messages() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut a = c.subscribe("t.q", Some("workers")).await.unwrap();
    let mut b = c.subscribe("t.q", Some("workers")).await.unwrap();
    for i in 0..100 {
        c.smartsend(
            "t.q",
            vec![Outgoing::new("i", Data::Json(json!(i)), PayloadType::Dictionary)],
            &SendOptions::default(),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    for sub in [&mut a, &mut b] {
        let before = seen.len();
        while let Some(Ok(m)) = sub.next_timeout(Duration::from_millis(300)).await {
            let Data::Json(v) = &m.payloads[0].data else { panic!() };
            seen.push(v.as_i64().unwrap());
        }
        assert!(seen.len() > before, "a queue member got nothing");
    }
    seen.sort();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_each_get_their_own_reply() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut service = c.subscribe("t.echo", None).await.unwrap();
    let responder = c.clone();
    tokio::spawn(async move {
        while let Some(Ok(req)) = service.next().await {
            let echo = req.payloads[0].data.clone();
            responder
                .reply(
                    &ReplyTo::of(&req),
                    vec![Outgoing::new("echo", echo, PayloadType::Dictionary)],
                    &SendOptions::default(),
                )
                .await
                .unwrap();
        }
    });
    let asks = (0..50).map(|i| {
        let c = c.clone();
        async move {
            let ask = vec![Outgoing::new("q", Data::Json(json!(i)), PayloadType::Dictionary)];
            let reply = c.request("t.echo", ask, &SendOptions::default(), Duration::from_secs(5)).await.unwrap();
            (i, reply.payloads[0].data.clone(), reply.envelope.reply_to_msg_id.is_empty())
        }
    });
    for (i, data, no_reply_id) in futures::future::join_all(asks).await {
        assert_eq!(data, Data::Json(json!(i)));
        assert!(!no_reply_id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_is_a_stream() {
    use futures::StreamExt as _;
    let server = NatsServer::start();
    let c = client(&server).await;
    let stream = c.subscribe("t.stream", None).await.unwrap().into_stream();
    for i in 0..5 {
        c.smartsend(
            "t.stream",
            vec![Outgoing::new("i", Data::Json(json!(i)), PayloadType::Dictionary)],
            &SendOptions::default(),
        )
        .await
        .unwrap();
    }
    let got: Vec<Data> = tokio::time::timeout(
        Duration::from_secs(5),
        stream.take(5).map(|r| r.unwrap().payloads[0].data.clone()).collect(),
    )
    .await
    .unwrap();
    assert_eq!(got, (0..5).map(|i| Data::Json(json!(i))).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_client_refuses_sends_and_subscribes() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let watcher = client(&server).await;
    let mut sub = watcher.subscribe("t.drained", None).await.unwrap();
    let text = |s: &str| vec![Outgoing::new("m", Data::Text(s.into()), PayloadType::Text)];
    c.smartsend("t.drained", text("before"), &SendOptions::default()).await.unwrap();
    c.drain().await.unwrap();
    let opts = SendOptions { correlation_id: Some("cid-late".into()), ..Default::default() };
    let e = c.smartsend("t.drained", text("after"), &opts).await.unwrap_err();
    assert_eq!((e.code, e.correlation_id.as_deref()), (ErrorCode::NatsConnectionFailed, Some("cid-late")));
    assert_eq!(c.subscribe("t.other", None).await.err().map(|e| e.code), Some(ErrorCode::NatsConnectionFailed));
    // The message sent before the drain arrived; nothing after it.
    let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(got.payloads[0].data, Data::Text("before".into()));
    let after = sub.next_timeout(Duration::from_millis(300)).await;
    assert!(matches!(after, Some(Err(ref e)) if e.code == ErrorCode::Timeout), "{after:?}");
}

fn text(s: &str) -> Vec<Outgoing> {
    vec![Outgoing::new("m", Data::Text(s.into()), PayloadType::Text)]
}

fn texts(batch: &[natsbridge::error::Result<Arrival>]) -> Vec<String> {
    batch
        .iter()
        .map(|r| match &r.as_ref().unwrap().payloads()[0].data {
            Data::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// A busy subscription hands over every message already waiting in one call, in order, up to
/// the limit asked for.
#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_hands_over_what_is_ready_in_batches() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut sub = c.subscribe("t.batch", None).await.unwrap();
    for i in 0..5 {
        c.smartsend("t.batch", text(&i.to_string()), &SendOptions::default()).await.unwrap();
    }
    c.flush().await.unwrap();
    let first = sub.next_batch(2).await.unwrap();
    assert_eq!(texts(&first), ["0", "1"][..first.len()], "at most 2, in order");
    tokio::time::sleep(Duration::from_millis(300)).await; // the rest are in by now
    let mut rest = Vec::new();
    assert!(sub.take_ready(10, &mut rest), "still open");
    let mut all = texts(&first);
    all.extend(texts(&rest));
    assert_eq!(all, ["0", "1", "2", "3", "4"]);
    let mut none = Vec::new();
    assert!(sub.take_ready(10, &mut none) && none.is_empty(), "nothing ready: no wait, nothing taken");
}

/// A batch gives direct messages as views of their bytes, with the header a `next` would give,
/// and a message with links received whole, each in its place; a bad message is its error.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_views_direct_messages_and_receives_links_in_place() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut sub = c.subscribe("t.arrive", None).await.unwrap();
    let mut expect = c.subscribe("t.arrive", None).await.unwrap();
    let link = SendOptions { size_threshold: Some(1), ..Default::default() };
    let direct = SendOptions {
        reply_to: Some("t.answer".into()),
        sender_name: Some("na\"me\n".into()), // escaped on the wire: the view owns this one
        ..Default::default()
    };
    c.smartsend("t.arrive", text("0"), &direct).await.unwrap();
    c.smartsend("t.arrive", text("1"), &link).await.unwrap();
    c.nats().publish("t.arrive", Bytes::from_static(b"{\"payloads\": 7}")).await.unwrap();
    let built = c.build("t.arrive", text("3"), &direct).await.unwrap();
    c.nats().publish_with_reply("t.arrive", "t.inbox", built.json).await.unwrap();
    c.flush().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        got.extend(tokio::time::timeout(Duration::from_secs(5), sub.next_batch(10)).await.unwrap().unwrap());
    }
    for (i, arrival) in got.into_iter().enumerate() {
        let want = expect.next_timeout(Duration::from_secs(5)).await.unwrap();
        match (arrival, want) {
            (Ok(Arrival::Direct { message, subject, reply, trace }), Ok(want)) => {
                assert!(i == 0 || i == 3, "message {i} is direct");
                assert_eq!(message.envelope().header(), want.envelope.header());
                assert_eq!(message.envelope().metadata(), &want.envelope.metadata);
                assert_eq!(message.payloads, want.payloads);
                assert_eq!((Some(subject), reply), (want.subject, want.reply));
                assert_eq!(trace.map(|t| *t), want.trace);
            }
            (Ok(Arrival::Received(received)), Ok(want)) => {
                assert_eq!(i, 1, "only the link message is received whole");
                assert_eq!(received.payloads[0].transport, Transport::Link);
                assert_eq!((&received.envelope, &received.payloads), (&want.envelope, &want.payloads));
            }
            (Err(e), Err(want)) => assert_eq!((i, e.code), (2, want.code)),
            (got, want) => panic!("message {i}: {:?} against {want:?}", got.map(|a| a.payloads().to_vec())),
        }
    }
}

/// A receiver's limits, set as connection options, hold on every receive path: too many
/// payloads is INVALID_ENVELOPE, too many bytes PAYLOAD_TOO_LARGE, too deep JSON
/// PAYLOAD_TOO_LARGE; within them a message decodes.
#[tokio::test(flavor = "multi_thread")]
async fn a_receivers_limits_hold_on_every_receive_path() {
    let server = NatsServer::start();
    let sender = client(&server).await;
    let mut opts = ConnectOptions::with_server(&server.url());
    let limits = json!({"max_payloads": 2, "max_message_bytes": 100, "max_json_depth": 3});
    opts.settings.apply(limits.as_object().unwrap(), protocol::TimeUnit::Millis).unwrap();
    let receiver = Client::connect(opts).await.unwrap();
    let (mut one, mut batch) =
        (receiver.subscribe("t.limits", None).await.unwrap(), receiver.subscribe("t.limits", None).await.unwrap());
    let texts = |sizes: &[usize]| {
        sizes.iter().map(|&n| Outgoing::new("t", Data::Text("x".repeat(n)), PayloadType::Text)).collect()
    };
    let deep = vec![Outgoing::new("d", Data::Json(json!({"a": [[[1]]]})), PayloadType::Dictionary)];
    let cases = [
        (texts(&[1, 1, 1]), Some(ErrorCode::InvalidEnvelope)),
        (texts(&[60, 60]), Some(ErrorCode::PayloadTooLarge)),
        (deep, Some(ErrorCode::PayloadTooLarge)),
        (texts(&[50, 50]), None),
    ];
    for (payloads, want) in cases {
        let sent = sender.smartsend("t.limits", payloads, &SendOptions::default()).await.unwrap();
        let got = [
            receiver.smartreceive(&sent.json).await.map(|r| r.payloads.len()),
            one.next_timeout(Duration::from_secs(5)).await.unwrap().map(|r| r.payloads.len()),
            batch.next_batch(1).await.unwrap().remove(0).map(|a| a.payloads().len()),
        ];
        for got in got {
            match (got, want) {
                (Err(e), Some(code)) => assert_eq!(e.code, code, "{e}"),
                (Ok(n), None) => assert_eq!(n, 2),
                (got, want) => panic!("{got:?}, expected {want:?}"),
            }
        }
    }
    // The sender's own defaults take all of them.
    let deep = vec![Outgoing::new("d", Data::Json(json!({"a": [[[1]]]})), PayloadType::Dictionary)];
    let sent = sender.smartsend("t.other", deep, &SendOptions::default()).await.unwrap();
    assert_eq!(sender.smartreceive(&sent.json).await.unwrap().payloads.len(), 1);
}

/// A stopper ends a `next` that is waiting, from another task, and every later one.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_subscription_ends_a_waiting_next() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut sub = c.subscribe("t.stop", None).await.unwrap();
    let stopper = sub.stopper();
    let waiting = tokio::spawn(async move {
        let item = sub.next().await;
        (item.is_none(), sub.next().await.is_none(), sub.take_ready(5, &mut Vec::new()))
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stopper.stop();
    let ended = tokio::time::timeout(Duration::from_secs(2), waiting).await.expect("stopped in time").unwrap();
    assert_eq!(ended, (true, true, false));
}

/// A `next_timeout` that runs out while a message's links download loses nothing: the message
/// comes with the next call (it used to be dropped with the cancelled future).
#[tokio::test(flavor = "multi_thread")]
async fn a_message_still_downloading_when_next_times_out_comes_with_the_next_call() {
    use futures::FutureExt;
    use natsbridge::io::store::{DownloadCall, UploadCall, UploadReply};
    let server = NatsServer::start();
    let mut sender_opts = ConnectOptions::with_server(&server.url());
    sender_opts.upload_handler = Some(std::sync::Arc::new(|call: UploadCall| {
        async move { Ok(UploadReply { status: None, url: Some(format!("slow://store/{}", call.dataname)) }) }.boxed()
    }));
    let sender = Client::connect(sender_opts).await.unwrap();
    let mut receiver_opts = ConnectOptions::with_server(&server.url());
    receiver_opts.settings.allowed_origins = vec!["slow:".into()];
    receiver_opts.download_handler = Some(std::sync::Arc::new(|_: DownloadCall| {
        async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Ok(Bytes::from_static(b"worth the wait"))
        }
        .boxed()
    }));
    let receiver = Client::connect(receiver_opts).await.unwrap();
    let mut sub = receiver.subscribe("t.slow", None).await.unwrap();
    let opts = SendOptions { size_threshold: Some(1), ..Default::default() };
    sender.smartsend("t.slow", text("worth the wait"), &opts).await.unwrap();
    sender.flush().await.unwrap();
    let e = sub.next_timeout(Duration::from_millis(300)).await.unwrap().err().unwrap();
    assert_eq!(e.code, ErrorCode::Timeout, "the download takes 800 ms");
    let got = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(got.payloads[0].data, Data::Text("worth the wait".into()));
    assert_eq!(got.subject.as_deref(), Some("t.slow"));
}

/// A burst of deferred sends: the first goes out at once, the rest wait for the kick, keep their
/// order against every other publish of the client, and a full queue goes out by itself.
#[tokio::test(flavor = "multi_thread")]
async fn deferred_sends_go_out_in_order_at_the_kick() {
    let server = NatsServer::start();
    let c = client(&server).await;
    let mut sub = c.subscribe("t.defer", None).await.unwrap();
    let opts = SendOptions::default();
    let (_, kick) = c.smartsend_deferred("t.defer", text("0"), &opts).await.unwrap();
    assert_eq!(kick, Kick::Arrange, "the first send starts a burst and asks for a kick");
    let first = sub.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(first.payloads[0].data, Data::Text("0".into()), "the first send of a burst goes out at once");
    let (_, kick) = c.smartsend_deferred("t.defer", text("1"), &opts).await.unwrap();
    assert_eq!(kick, Kick::Arranged, "the kick is already arranged");
    let early = sub.next_timeout(Duration::from_millis(300)).await;
    assert!(matches!(early, Some(Err(ref e)) if e.code == ErrorCode::Timeout), "published before the kick: {early:?}");
    // A direct send goes out after the deferred ones, and takes them with it.
    c.smartsend("t.defer", text("2"), &opts).await.unwrap();
    c.smartsend_deferred("t.defer", text("3"), &opts).await.unwrap();
    c.kick().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(sub.next_batch(10).await.unwrap());
    }
    assert_eq!(texts(&got), ["1", "2", "3"]);

    // After the kick a new burst starts; a full queue (128 messages or 64 KiB) behind its first
    // send is handed over by the send that filled it, unkicked.
    let mut sent = 0;
    loop {
        let (_, kick) = c.smartsend_deferred("t.defer", text(&sent.to_string()), &opts).await.unwrap();
        assert_eq!(kick == Kick::Arrange, sent == 0, "only the first send starts the burst");
        sent += 1;
        if kick == Kick::Done {
            break;
        }
        assert!(sent <= 128, "128 queued messages fill the queue");
    }
    let mut got = Vec::new();
    while got.len() < sent {
        match sub.next_timeout(Duration::from_secs(5)).await.unwrap() {
            Ok(r) => got.push(Ok(Arrival::from(r))),
            Err(e) => panic!("the full queue did not go out by itself: {e} after {}", got.len()),
        }
    }
    assert_eq!(texts(&got), (0..sent).map(|i| i.to_string()).collect::<Vec<_>>());
}
