//! Byte payloads sent from a file or a reader against the real stores (the JetStream object
//! store, Plik, s3s-fs): the bytes are uploaded while they are read, arrive exact with the
//! envelope's size and sha256, and a source that does not give its stated size publishes nothing.

mod common;

use bytes::Bytes;
use common::links::{bounded, pseudo_random};
use natsbridge::error::ErrorCode;
use natsbridge::io::store::Progress;
use natsbridge::io::{ByteSource, Client, ConnectOptions, Outgoing};
use natsbridge::protocol::{Data, S3Settings, SendOptions, sha256_hex};
use natsbridge_servers::{NatsServer, Plik, S3Server};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};

/// A client whose links go to `fileserver` (None: the object store), telling `progress` what moved.
async fn client(nats: &NatsServer, fileserver: Option<String>, s3: &S3Server, progress: Option<Progress>) -> Client {
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.object_store = fileserver.is_none();
    opts.settings.fileserver_url = fileserver;
    opts.settings.s3 = S3Settings {
        endpoint: Some(s3.endpoint.clone()),
        access_key_id: Some(S3Server::ACCESS_KEY.into()),
        secret_access_key: Some(S3Server::SECRET_KEY.into()),
        ..S3Settings::default()
    };
    opts.transfer_progress = progress;
    Client::connect(opts).await.unwrap()
}

/// A reader over `bytes` that counts what it gave.
struct Counting {
    bytes: Bytes,
    given: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = buf.remaining().min(self.bytes.len());
        let chunk = self.bytes.split_to(n);
        buf.put_slice(&chunk);
        self.given.fetch_add(n as u64, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }
}

fn payload(source: ByteSource) -> Outgoing {
    Outgoing::from_source("big.bin", "binary", source).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_is_uploaded_while_it_is_read_and_arrives_exact_through_every_store() {
    let (nats, plik, s3) = (NatsServer::start(), Plik::start(), S3Server::start());
    // Over S3's 8 MiB part: a multipart upload of three parts.
    let bytes = pseudo_random(20_000_000, 5);
    for (name, fileserver) in [("object store", None), ("Plik", Some(plik.url.clone())), ("S3", Some(s3.url("src")))] {
        let given = Arc::new(AtomicU64::new(0));
        // What the reader had given when the store first reported bytes moved.
        let given_at_first_report = Arc::new(Mutex::new(None));
        let progress: Progress = {
            let (given, first) = (given.clone(), given_at_first_report.clone());
            Arc::new(move |_| {
                first.lock().unwrap().get_or_insert(given.load(Ordering::SeqCst));
            })
        };
        let sender = client(&nats, fileserver.clone(), &s3, Some(progress)).await;
        let receiver = client(&nats, fileserver, &s3, None).await;
        let source = ByteSource::reader(Counting { bytes: bytes.clone(), given: given.clone() }, bytes.len() as u64);
        let sent =
            bounded("send", sender.smartsend("t.src", vec![payload(source)], &SendOptions::default())).await.unwrap();
        let wire = &sent.envelope.payloads[0];
        assert_eq!((wire.transport.as_str(), wire.size), ("link", 20_000_000), "{name}");
        assert_eq!(wire.metadata["sha256"], sha256_hex(&bytes).as_str(), "{name}");
        let first = given_at_first_report.lock().unwrap().expect("the store reported progress");
        assert!(first < 20_000_000, "{name}: the reader was read whole ({first} bytes) before any byte was stored");

        let received = bounded("receive", receiver.smartreceive(&sent.json)).await.unwrap();
        assert!(received.payloads[0].data == Data::Bytes(bytes.clone()), "{name}: other bytes arrived");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_too_large_for_direct_is_a_link_and_a_small_one_goes_direct() {
    let (nats, s3) = (NatsServer::start(), S3Server::start());
    let sender = client(&nats, None, &s3, None).await;
    let dir = tempfile::tempdir().unwrap();
    for (size, transport) in [(3_000_000, "link"), (1_000, "direct")] {
        let bytes = pseudo_random(size, 9);
        let path = dir.path().join(format!("{size}.bin"));
        std::fs::write(&path, &bytes).unwrap();
        let source = ByteSource::file(&path).unwrap();
        // A file can be sent again: it is opened anew each time.
        for _ in 0..2 {
            let outgoing = payload(source.clone());
            let sent =
                bounded("send", sender.smartsend("t.file", vec![outgoing], &SendOptions::default())).await.unwrap();
            assert_eq!(sent.envelope.payloads[0].transport, transport, "{size} bytes");
            let received = bounded("receive", sender.smartreceive(&sent.json)).await.unwrap();
            assert!(received.payloads[0].data == Data::Bytes(bytes.clone()), "{size} bytes: other bytes arrived");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_is_not_its_size_fails_the_send_and_publishes_nothing() {
    let (nats, s3) = (NatsServer::start(), S3Server::start());
    let sender = client(&nats, None, &s3, None).await;
    let mut sub = sender.nats().subscribe("t.short").await.unwrap();
    sender.nats().flush().await.unwrap();
    let bytes = pseudo_random(2_000_000, 1);
    for claimed in [3_000_000, 1_500_000] {
        let given = Arc::new(AtomicU64::new(0));
        let source = ByteSource::reader(Counting { bytes: bytes.clone(), given }, claimed);
        let opts = SendOptions { correlation_id: Some(format!("cid-{claimed}")), ..SendOptions::default() };
        let e = bounded("send", sender.smartsend("t.short", vec![payload(source)], &opts)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::UploadFailed, "{claimed}: {e}");
        let what = if claimed > 2_000_000 { "fewer" } else { "more" };
        assert!(e.message.contains(&format!("gave {what} bytes than its size of {claimed}")), "{}", e.message);
        assert_eq!(e.correlation_id.as_deref(), Some(format!("cid-{claimed}").as_str()));
    }
    // Nowhere to upload: the same error as for held bytes that do not fit direct.
    let mut opts = ConnectOptions::with_server(&nats.url());
    opts.settings.object_store = false;
    let storeless = Client::connect(opts).await.unwrap();
    let source = ByteSource::reader(Counting { bytes: bytes.clone(), given: Arc::default() }, 2_000_000);
    let e = bounded("send", storeless.smartsend("t.short", vec![payload(source)], &SendOptions::default()))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::UploadFailed, "{e}");
    assert!(e.message.contains("no link store is configured; direct transport does not fit either"), "{e}");

    // A reader is read once: sending it again is an error, not an empty payload.
    let source = ByteSource::reader(Counting { bytes: bytes.clone(), given: Arc::default() }, 2_000_000);
    let opts = SendOptions::default();
    bounded("send", sender.smartsend("t.short", vec![payload(source.clone())], &opts)).await.unwrap();
    let e = bounded("send", sender.smartsend("t.short", vec![payload(source)], &opts)).await.unwrap_err();
    assert!((e.code, e.message.contains("already read")) == (ErrorCode::UploadFailed, true), "{e}");

    let first = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut sub)).await.unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&first.unwrap().payload).unwrap();
    assert_eq!(envelope["payloads"][0]["size"], 2_000_000, "the one good send is the first message");
    let more = tokio::time::timeout(Duration::from_millis(300), futures::StreamExt::next(&mut sub)).await;
    assert!(more.is_err(), "a failed send published a message");
}

#[test]
fn only_byte_payloads_take_a_source() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let source = ByteSource::file(file.path()).unwrap();
    let e = Outgoing::from_source("t", "text", source).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidPayloadType);
}
