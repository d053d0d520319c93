//! Link payloads received as streams against the real stores (the JetStream object store, Plik,
//! s3s-fs): the exact bytes to a file and through an AsyncRead, a broken download resumed where
//! it stopped, and what is not the sender's bytes refused with the partial file removed.

mod common;

use bytes::Bytes;
use common::cut_proxy::CutProxy;
use common::links::{bounded, pseudo_random};
use natsbridge::error::ErrorCode;
use natsbridge::io::{Client, ConnectOptions, LinkStream, Outgoing, StreamedPayload};
use natsbridge::protocol::{Data, PayloadType, S3Settings, SendOptions};
use natsbridge_servers::{NatsServer, Plik, S3Server};
use std::net::SocketAddr;
use tokio::io::AsyncReadExt;

/// A client whose links go to `fileserver` (None: the object store).
async fn client(nats: &NatsServer, fileserver: Option<String>, s3_endpoint: Option<&str>) -> Client {
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.object_store = fileserver.is_none();
    opts.settings.fileserver_url = fileserver;
    opts.settings.s3 = S3Settings {
        endpoint: s3_endpoint.map(str::to_owned),
        access_key_id: Some(S3Server::ACCESS_KEY.into()),
        secret_access_key: Some(S3Server::SECRET_KEY.into()),
        ..S3Settings::default()
    };
    Client::connect(opts).await.unwrap()
}

/// Sends `bytes` as one binary link payload and returns the envelope's JSON.
async fn send(sender: &Client, bytes: &Bytes) -> Vec<u8> {
    let payload = Outgoing::new("big.bin", Data::Bytes(bytes.clone()), PayloadType::Binary);
    let opts = SendOptions { size_threshold: Some(0), ..SendOptions::default() };
    let sent = bounded("send", sender.smartsend("t.stream", vec![payload], &opts)).await.unwrap();
    assert_eq!(sent.envelope.payloads[0].transport, "link");
    sent.json.to_vec()
}

/// The one link payload of a message received for streaming.
fn only_link(receiver: &Client, json: &[u8]) -> LinkStream {
    let mut message = receiver.smartreceive_streamed(json).unwrap();
    assert_eq!(message.payloads.len(), 1);
    match message.payloads.remove(0) {
        StreamedPayload::Link(link) => *link,
        StreamedPayload::Value(v) => panic!("a direct payload: {v:?}"),
    }
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_store_streams_the_exact_bytes_to_a_file_and_a_reader() {
    let (nats, plik, s3) = (NatsServer::start(), Plik::start(), S3Server::start());
    let bytes = pseudo_random(3_000_000, 21);
    let dir = tempfile::tempdir().unwrap();
    for (name, fileserver) in [("object store", None), ("Plik", Some(plik.url.clone())), ("S3", Some(s3.url("s")))] {
        let endpoint = Some(s3.endpoint.as_str());
        let (sender, receiver) =
            (client(&nats, fileserver.clone(), endpoint).await, client(&nats, fileserver, endpoint).await);
        let json = send(&sender, &bytes).await;
        let mut link = only_link(&receiver, &json);
        assert_eq!((link.dataname(), link.payload_type(), link.size()), ("big.bin", PayloadType::Binary, 3_000_000));
        let path = dir.path().join(format!("{name}.bin"));
        assert_eq!(bounded("save", link.save(&path)).await.unwrap(), 3_000_000, "{name}");
        assert!(std::fs::read(&path).unwrap() == bytes, "{name}: the file holds other bytes");

        // The same link again, through an AsyncRead (Plik's default upload is not one-shot).
        let mut read = Vec::new();
        let mut reader = only_link(&receiver, &json).into_async_read();
        bounded("read", reader.read_to_end(&mut read)).await.unwrap();
        assert!(read == bytes, "{name}: the reader gave other bytes");

        // Saved after a chunk was read, the file would miss that chunk yet pass the check.
        let mut link = only_link(&receiver, &json);
        assert!(!bounded("chunk", link.next_chunk()).await.unwrap().unwrap().is_empty());
        let half = dir.path().join(format!("{name}.half"));
        let e = bounded("save", link.save(&half)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{name}: {e}");
        assert!(!half.exists() && !dir.path().join(format!("{name}.half.partial")).exists());
        assert_eq!(bounded("bytes", link.bytes()).await.unwrap_err().code, ErrorCode::InvalidArgument);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_s3_download_resumes_with_a_range_request() {
    let (nats, s3) = (NatsServer::start(), S3Server::start());
    let bytes = pseudo_random(4_000_000, 8);
    let sender = client(&nats, Some(s3.url("r")), Some(&s3.endpoint)).await;
    let json = send(&sender, &bytes).await;
    // The receiver reaches s3s-fs through a proxy that drops the first GET after 1 MB.
    let proxy = CutProxy::start(addr_of(&s3.endpoint), 1, 1_000_000).await;
    let receiver = client(&nats, Some(s3.url("r")), Some(&proxy.url())).await;
    let path = tempfile::tempdir().unwrap().keep().join("resumed.bin");
    let mut link = only_link(&receiver, &json);
    assert_eq!(bounded("save", link.save(&path)).await.unwrap(), 4_000_000);
    assert_eq!(link.sha256(), Some(natsbridge::protocol::sha256_hex(&bytes).as_str()));
    assert!(std::fs::read(&path).unwrap() == bytes);
    let gets = proxy.gets();
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert!(!gets[0].to_ascii_lowercase().contains("range:"), "{}", gets[0]);
    // The second GET asks for the rest: from where the first one broke, not from byte 0.
    let range = gets[1].lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("range: bytes=").map(str::to_owned));
    let from: u64 = range.as_deref().and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(from > 0 && from <= 1_000_000, "second GET {:?}", gets[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_plik_download_resumes_and_delivers_the_exact_bytes() {
    let (nats, plik) = (NatsServer::start(), Plik::start());
    // Links name the proxy: the sender uploads through it too (only GETs are cut).
    let proxy = CutProxy::start(addr_of(&plik.url), 1, 700_000).await;
    let (sender, receiver) =
        (client(&nats, Some(proxy.url()), None).await, client(&nats, Some(proxy.url()), None).await);
    let bytes = pseudo_random(2_500_000, 3);
    let json = send(&sender, &bytes).await;
    let path = tempfile::tempdir().unwrap().keep().join("plik.bin");
    assert_eq!(bounded("save", only_link(&receiver, &json).save(&path)).await.unwrap(), 2_500_000);
    assert!(std::fs::read(&path).unwrap() == bytes);
    // Two GETs of the file: the cut one and the one that finished it (with a range or not:
    // what the reader already has is skipped when the server sends the whole file again).
    let file_gets = proxy.gets().into_iter().filter(|g| g.contains("/file/")).count();
    assert_eq!(file_gets, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn other_bytes_are_checksum_mismatch_and_the_partial_file_is_removed() {
    let nats = NatsServer::start();
    let (sender, receiver) = (client(&nats, None, None).await, client(&nats, None, None).await);
    let bytes = pseudo_random(1_500_000, 4);
    let json = String::from_utf8(send(&sender, &bytes).await).unwrap();
    let sha = natsbridge::protocol::sha256_hex(&bytes);
    let forged = json.replace(&sha, &natsbridge::protocol::sha256_hex(b"other"));
    assert_ne!(forged, json);
    let path = tempfile::tempdir().unwrap().keep().join("forged.bin");
    let e = bounded("save", only_link(&receiver, forged.as_bytes()).save(&path)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ChecksumMismatch, "{e}");
    assert!(e.correlation_id.is_some());
    let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert!(left.is_empty(), "a partial file was left behind: {left:?}");

    // A link the receiver's stores do not serve is refused before anything is fetched.
    let stranger = client(&nats, Some("http://127.0.0.1:9/elsewhere".into()), None).await;
    let e = stranger.smartreceive_streamed(json.as_bytes()).err().unwrap();
    assert_eq!(e.code, ErrorCode::UrlNotAllowed, "{e}");
}
