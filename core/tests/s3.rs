//! The S3 link store against a real S3-compatible server (s3s-fs, built by
//! scripts/install-s3s.sh) on a loopback port: links with credentials and presigned, the TTL,
//! deletion and the sweep, and a whole send and receive through two clients.

mod common;

use bytes::Bytes;
use common::links::{bounded, download_with_retry, pseudo_random};
use natsbridge::error::ErrorCode;
use natsbridge::io::store::http::HttpStore;
use natsbridge::io::store::s3::S3Store;
use natsbridge::io::store::{Body, Fetch, LinkStore, Upload};
use natsbridge::io::{Client, ConnectOptions, Outgoing};
use natsbridge::protocol::{Data, PayloadType, RetryPolicy, S3Settings, SendOptions};
use natsbridge_servers::{NatsServer, S3Server};
use std::time::Duration;

fn settings(server: &S3Server) -> S3Settings {
    S3Settings {
        endpoint: Some(server.endpoint.clone()),
        access_key_id: Some(S3Server::ACCESS_KEY.into()),
        secret_access_key: Some(S3Server::SECRET_KEY.into()),
        ..S3Settings::default()
    }
}

fn upload<'a>(dataname: &'a str, bytes: &Bytes) -> Upload<'a> {
    Upload {
        dataname,
        body: Body::Bytes(bytes.clone()),
        correlation_id: "cid-s3",
        progress: None,
        stream: None,
        msg_id: "",
    }
}

/// Fetches one link through core's receive driver, retrying twice quickly.
async fn fetch(store: &dyn LinkStore, url: &str, size: u64) -> Result<Bytes, natsbridge::error::Error> {
    let retry = RetryPolicy { retries: 2, base_delay: Duration::from_millis(20), max_delay: Duration::from_millis(40) };
    download_with_retry(store, Fetch::new(url, size), retry).await
}

#[tokio::test]
async fn an_s3_link_names_its_key_and_serves_the_exact_bytes() {
    let server = S3Server::start();
    let store = S3Store::new(&server.url("links"), &settings(&server)).unwrap();
    let bytes = pseudo_random(300_000, 7);
    let stored = bounded("upload", store.upload(upload("report 1.bin", &bytes))).await.unwrap();
    let id = stored.url.strip_prefix("s3://natsbridge/links/").and_then(|rest| rest.strip_suffix("/report%201.bin"));
    let id = id.unwrap_or_else(|| panic!("link {}", stored.url));
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    // The server keeps exactly those bytes at that key.
    assert_eq!(server.keys(), [format!("links/{id}/report 1.bin")], "{}", server.log());
    assert_eq!(std::fs::read(server.bucket_dir().join("links").join(id).join("report 1.bin")).unwrap(), bytes);
    assert_eq!(bounded("download", fetch(&store, &stored.url, 300_000)).await.unwrap(), bytes);

    // Another prefix of the bucket, another bucket: not this store's links.
    for other in [format!("s3://natsbridge/elsewhere/{id}/x"), format!("s3://other/links/{id}/x")] {
        assert_eq!(fetch(&store, &other, 1).await.unwrap_err().code, ErrorCode::UrlNotAllowed, "{other}");
    }
    // A key that is not there is final: one request, DOWNLOAD_FAILED.
    let missing = stored.url.replace(id, "00000000-0000-4000-8000-000000000000");
    assert_eq!(fetch(&store, &missing, 300_000).await.unwrap_err().code, ErrorCode::DownloadFailed);
}

#[tokio::test]
async fn a_presigned_link_is_fetched_by_a_receiver_without_credentials() {
    let server = S3Server::start();
    let store = S3Store::new(&server.url("p"), &S3Settings { presign: true, ..settings(&server) }).unwrap();
    let bytes = pseudo_random(70_000, 3);
    let stored = store.upload(upload("a.bin", &bytes)).await.unwrap();
    let prefix = format!("{}/natsbridge/p/", server.endpoint);
    assert!(stored.url.starts_with(&prefix) && stored.url.contains("X-Amz-Signature="), "{}", stored.url);
    assert!(stored.url.contains("X-Amz-Expires=3600"), "{}", stored.url);
    // A plain HTTP receiver whose allowed origins cover the bucket fetches it.
    let plain = HttpStore::download_only(&format!("{}/natsbridge", server.endpoint)).unwrap();
    assert_eq!(fetch(&plain, &stored.url, 70_000).await.unwrap(), bytes);
    assert_eq!(fetch(&store, &stored.url, 70_000).await.unwrap(), bytes);
    // The signature covers the key: the same query on another key is refused by the server.
    let forged = stored.url.replace("/a.bin?", "/b.bin?");
    assert_eq!(fetch(&plain, &forged, 70_000).await.unwrap_err().code, ErrorCode::DownloadFailed);
}

#[tokio::test]
async fn a_link_past_its_ttl_is_refused_and_the_sweep_removes_it() {
    let server = S3Server::start();
    let short = S3Settings { ttl: Duration::from_secs(1), ..settings(&server) };
    let store = S3Store::new(&server.url("t"), &short).unwrap();
    let bytes = pseudo_random(1000, 5);
    let first = store.upload(upload("old.bin", &bytes)).await.unwrap();
    assert_eq!(fetch(&store, &first.url, 1000).await.unwrap(), bytes);
    let presigner = S3Store::new(&server.url("t"), &S3Settings { presign: true, ..short.clone() }).unwrap();
    let presigned = presigner.upload(upload("old.bin", &bytes)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let e = fetch(&store, &first.url, 1000).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::DownloadFailed);
    assert!(e.message.contains("expired"), "{e}");
    assert_eq!(fetch(&store, &presigned.url, 1000).await.unwrap_err().code, ErrorCode::DownloadFailed);
    assert_eq!(server.keys().len(), 2);

    // A new store's first upload sweeps the prefix of what has expired, and keeps the new one.
    let sweeper = S3Store::new(&server.url("t"), &short).unwrap();
    let new = sweeper.upload(upload("new.bin", &bytes)).await.unwrap();
    let new_key = new.url.strip_prefix("s3://natsbridge/").unwrap().replace("%20", " ");
    for _ in 0..100 {
        if server.keys() == [new_key.clone()] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.keys(), [new_key]);
}

#[tokio::test]
async fn deleting_a_link_is_idempotent_and_wrong_credentials_are_refused() {
    let server = S3Server::start();
    let store = S3Store::new(&server.url("d"), &settings(&server)).unwrap();
    let stored = store.upload(upload("x", &Bytes::from_static(b"bytes"))).await.unwrap();
    assert_eq!(server.keys().len(), 1);
    assert!(store.delete(&stored.url).await.unwrap());
    assert!(server.keys().is_empty());
    assert!(store.delete(&stored.url).await.unwrap(), "a link already gone is deleted");

    let wrong = S3Settings { secret_access_key: Some("not-the-secret".into()), ..settings(&server) };
    let intruder = S3Store::new(&server.url("d"), &wrong).unwrap();
    let e = intruder.upload(upload("x", &Bytes::from_static(b"bytes"))).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UploadFailed, "{e}");
    let kept = store.upload(upload("y", &Bytes::from_static(b"bytes"))).await.unwrap();
    let e = fetch(&intruder, &kept.url, 5).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::DownloadFailed, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_send_and_receive_a_link_through_s3() {
    let (nats, s3) = (NatsServer::start(), S3Server::start());
    let connect = |fileserver: Option<String>| {
        let mut opts = ConnectOptions::with_server(&nats.url());
        opts.settings.object_store = false;
        opts.settings.fileserver_url = fileserver;
        opts.settings.s3 = settings(&s3);
        Client::connect(opts)
    };
    let sender = connect(Some(s3.url("bridge"))).await.unwrap();
    let receiver = connect(Some(s3.url("bridge"))).await.unwrap();
    let stranger = connect(None).await.unwrap();
    let bytes = pseudo_random(2_000_000, 11);
    let payload = Outgoing::new("big", Data::Bytes(bytes.clone()), PayloadType::Binary);
    let sent = sender.smartsend("t.s3", vec![payload], &SendOptions::default()).await.unwrap();
    let link = &sent.envelope.payloads[0];
    assert_eq!(link.transport, "link");
    assert!(link.data.as_str().is_some_and(|u| u.starts_with("s3://natsbridge/bridge/")), "{:?}", link.data);
    let received = bounded("receive", receiver.smartreceive(&sent.json)).await.unwrap();
    assert_eq!(received.payloads[0].data, Data::Bytes(bytes));
    let e = stranger.smartreceive(&sent.json).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UrlNotAllowed, "{e}");
}

/// Spec §11 (work-queue streams): an S3 link is deleted once its message is finally acked,
/// as an object-store link is; another message's link stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_work_queue_deletes_an_s3_link_after_the_final_ack() {
    use natsbridge::protocol::durable::{ConsumeOptions, Retention, StreamSettings};
    let (nats, s3) = (NatsServer::start(), S3Server::start());
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.jetstream = true;
    opts.settings.object_store = false;
    opts.settings.fileserver_url = Some(s3.url("wq"));
    opts.settings.s3 = settings(&s3);
    let c = Client::connect(opts).await.unwrap();
    let mut stream = StreamSettings::new("WQS3");
    stream.retention = Retention::WorkQueue;
    c.add_stream(&stream).await.unwrap();
    let linked = SendOptions { size_threshold: Some(1), ..SendOptions::default() };
    let text = |s: &str| vec![Outgoing::new("t", Data::Text(s.into()), PayloadType::Text)];
    c.smartsend("WQS3.x", text("first"), &linked).await.unwrap();
    c.smartsend("WQS3.x", text("second"), &linked).await.unwrap();
    assert_eq!(s3.keys().len(), 2, "{}", s3.log());

    let mut consumer = c.consume("WQS3", "w", ConsumeOptions::default()).await.unwrap();
    let first = bounded("delivery", consumer.next_timeout(Duration::from_secs(10))).await.unwrap().unwrap();
    assert_eq!(first.received.payloads[0].data, Data::Text("first".into()));
    let key =
        first.received.envelope.payloads[0].data.as_str().unwrap().strip_prefix("s3://natsbridge/").unwrap().to_owned();
    assert!(s3.keys().contains(&key), "{key} in {:?}", s3.keys());
    bounded("ack", first.ack.ack()).await.unwrap();
    let mut left = s3.keys();
    for _ in 0..100 {
        if !left.contains(&key) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = s3.keys();
    }
    assert!(!left.contains(&key), "deleted after the final ack: {left:?}");
    assert_eq!(left.len(), 1, "the unacked message's link stays: {left:?}");
}
