//! Link stores against real servers: Plik (the real plikd, built by scripts/install-plik.sh) and a
//! small flaky HTTP server for the backoff, redirect and size rules of the shared GET.

mod common;

use bytes::Bytes;
use common::flaky_http::{Failure, FlakyHttp, Serve};
use common::links::{bounded, download_with_retry, pseudo_random};
use natsbridge::error::ErrorCode;
use natsbridge::io::store::http::HttpStore;
use natsbridge::io::store::plik::{PlikOptions, PlikStore};
use natsbridge::io::store::{Body, Fetch, LinkStore, Upload};
use natsbridge::protocol::{FetchFailure, RetryPolicy};
use natsbridge_servers::{Plik, PlikConfig};
use std::time::{Duration, Instant};

fn upload<'a>(dataname: &'a str, bytes: &Bytes) -> Upload<'a> {
    // The stores do not check the hash (the receiver does); any hex string will do here.
    Upload {
        dataname,
        body: Body::Bytes(bytes.clone()),
        correlation_id: "cid-linkstores",
        progress: None,
        stream: None,
        msg_id: "",
    }
}

fn fast_policy(retries: u32) -> RetryPolicy {
    RetryPolicy { retries, base_delay: Duration::from_millis(20), max_delay: Duration::from_millis(60) }
}

/// Counts the GETs of `path_fragment` in Plik's request log.
fn plik_gets(plik: &Plik, path_fragment: &str) -> usize {
    plik.log().lines().filter(|l| l.contains(&format!("GET {path_fragment}"))).count()
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn url_path(url: &str) -> String {
    url::Url::parse(url).unwrap().path().to_owned()
}

// ---------------------------------------------------------------- Plik

#[tokio::test]
async fn plik_ttl_upload_serves_two_downloads_with_exact_bytes() {
    let plik = Plik::start();
    let store = PlikStore::new(&plik.url, PlikOptions::default()).unwrap();
    let data = pseudo_random(300 * 1024 + 7, 42);
    let url = bounded("upload", store.upload(upload("table.arrow", &data))).await.unwrap().url;
    assert!(url.starts_with(&format!("{}/file/", plik.url)), "{url}");
    assert!(url.ends_with("/table.arrow"), "{url}");
    assert!(store.scopes()[0].matches(&url));

    for round in 1..=2 {
        let got =
            bounded("download", download_with_retry(&store, Fetch::new(&url, data.len() as u64), fast_policy(3))).await;
        let got = got.unwrap_or_else(|e| panic!("download {round}: {e}"));
        assert!(got == data, "download {round}: bytes differ ({} vs {} bytes)", got.len(), data.len());
    }
    assert_eq!(plik_gets(&plik, &url_path(&url)), 2, "{}", plik.log());

    // The TTL is sent (the fixture's server default is 1 h, so ask for 2 h) and read back from
    // Plik's upload metadata.
    let store2 =
        PlikStore::new(&plik.url, PlikOptions { ttl: Duration::from_secs(7200), ..Default::default() }).unwrap();
    let url2 = bounded("upload", store2.upload(upload("x.bin", &data.slice(..10)))).await.unwrap().url;
    let upload_id = url_path(&url2).split('/').nth(2).unwrap().to_owned();
    let meta = upload_metadata(&plik, &upload_id).await;
    assert_eq!(meta["ttl"], 7200, "{meta}");
    assert_eq!(meta["oneShot"], false, "{meta}");
}

/// GET /upload/{id} with a plain socket (anonymous uploads are readable by anyone).
async fn upload_metadata(plik: &Plik, id: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", plik.port)).await.unwrap();
    let req = format!("GET /upload/{id} HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    bounded("metadata", s.read_to_end(&mut buf)).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{text}");
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn plik_accepts_and_serves_a_zero_byte_file() {
    let plik = Plik::start();
    let store = PlikStore::new(&plik.url, PlikOptions::default()).unwrap();
    let url = bounded("upload", store.upload(upload("empty.bin", &Bytes::new()))).await.unwrap().url;
    let got = bounded("download", download_with_retry(&store, Fetch::new(&url, 0), fast_policy(3))).await.unwrap();
    assert!(got.is_empty());
    // And the size rule holds for it too: a 0-byte file is not a 1-byte payload.
    let err = bounded("download", download_with_retry(&store, Fetch::new(&url, 1), fast_policy(3))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{err}");
}

#[tokio::test]
async fn plik_oneshot_first_download_wins_and_the_second_fails_without_retries() {
    let plik = Plik::start();
    let store = PlikStore::new(&plik.url, PlikOptions { oneshot: true, ..Default::default() }).unwrap();
    let data = pseudo_random(200 * 1024, 7);
    let url = bounded("upload", store.upload(upload("reply.bin", &data))).await.unwrap().url;

    let policy = RetryPolicy { retries: 5, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) };
    let got = bounded("first download", download_with_retry(&store, Fetch::new(&url, data.len() as u64), policy))
        .await
        .unwrap();
    assert!(got == data, "first download: bytes differ");

    let started = Instant::now();
    let err = bounded("second download", download_with_retry(&store, Fetch::new(&url, data.len() as u64), policy))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code, ErrorCode::DownloadFailed, "{err}");
    // Plik (this build) answers with a 301 to its web UI; the store decodes it back into the 404.
    assert!(err.message.contains("HTTP 404: file reply.bin") && err.message.contains("removed"), "{err}");
    assert!(took < Duration::from_millis(500), "a consumed one-shot link must fail at once, took {took:?}");
    // Exactly two GETs reached Plik: the second failure was not retried.
    assert_eq!(plik_gets(&plik, &url_path(&url)), 2, "{}", plik.log());

    // One attempt, seen directly: the 404 behind Plik's redirect.
    match bounded("third download", store.download(Fetch::new(&url, data.len() as u64))).await {
        Err(FetchFailure::Status { status: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn plik_user_token_is_sent_when_the_server_requires_one() {
    let plik = Plik::start_with(PlikConfig { require_token: true, ..Default::default() });
    let token = plik.token.clone().expect("fixture created a token");
    let data = pseudo_random(1000, 3);

    let anonymous = PlikStore::new(&plik.url, PlikOptions::default()).unwrap();
    let err = bounded("anonymous upload", anonymous.upload(upload("a.bin", &data))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UploadFailed);
    assert!(err.message.contains("400") && err.message.contains("anonymous uploads are disabled"), "{err}");
    assert_eq!(err.correlation_id.as_deref(), Some("cid-linkstores"));

    let wrong = PlikStore::new(&plik.url, PlikOptions { user_token: Some("not-a-token".into()), ..Default::default() })
        .unwrap();
    let err = bounded("bad-token upload", wrong.upload(upload("a.bin", &data))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UploadFailed);
    assert!(err.message.contains("403") && err.message.contains("invalid token"), "{err}");

    let store = PlikStore::new(&plik.url, PlikOptions { user_token: Some(token), ..Default::default() }).unwrap();
    let url = bounded("token upload", store.upload(upload("a.bin", &data))).await.unwrap().url;
    // Downloads need no token.
    let got = bounded("download", download_with_retry(&store, Fetch::new(&url, data.len() as u64), fast_policy(2)))
        .await
        .unwrap();
    assert!(got == data);
}

#[tokio::test]
async fn plik_ttl_above_the_server_maximum_is_an_upload_failure_with_plik_message() {
    let plik = Plik::start(); // MaxTTL 1 day
    let store =
        PlikStore::new(&plik.url, PlikOptions { ttl: Duration::from_secs(2 * 86400), ..Default::default() }).unwrap();
    let err = bounded("upload", store.upload(upload("a.bin", &Bytes::from_static(b"abc")))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UploadFailed);
    assert!(err.message.contains("400") && err.message.contains("maximum allowed is : 86400"), "{err}");
}

#[tokio::test]
async fn plik_that_is_down_is_an_upload_failure() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = PlikStore::new(&format!("http://127.0.0.1:{port}"), PlikOptions::default()).unwrap();
    let started = Instant::now();
    let err = bounded("upload", store.upload(upload("a.bin", &Bytes::from_static(b"abc")))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UploadFailed, "{err}");
    assert!(err.message.contains(&format!("127.0.0.1:{port}/upload")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "connection refused should fail fast");
}

#[tokio::test]
async fn plik_datanames_with_spaces_unicode_and_url_characters_round_trip() {
    let plik = Plik::start();
    let store = PlikStore::new(&plik.url, PlikOptions::default()).unwrap();
    let cases = [
        ("données du capteur ✓ 2024.csv", "données du capteur ✓ 2024.csv"),
        ("50% off? #1 & more+.bin", "50% off? #1 & more+.bin"),
        ("dir/sub\\name", "dir_sub_name"),
        ("", "data"),
        ("..", "_.."),
    ];
    for (i, (dataname, stored)) in cases.into_iter().enumerate() {
        let data = pseudo_random(5000 + i, i as u64 + 11);
        let url = bounded("upload", store.upload(upload(dataname, &data)))
            .await
            .unwrap_or_else(|e| panic!("{dataname:?}: {e}"))
            .url;
        assert!(store.scopes()[0].matches(&url), "{url}");
        let last = url.rsplit('/').next().unwrap();
        let decoded = percent_decode(last);
        assert_eq!(decoded, stored, "URL {url}");
        let got =
            bounded("download", download_with_retry(&store, Fetch::new(&url, data.len() as u64), fast_policy(2))).await;
        let got = got.unwrap_or_else(|e| panic!("{dataname:?} ({url}): {e}"));
        assert!(got == data, "{dataname:?}: bytes differ");
    }
}

#[tokio::test]
async fn plik_wrong_file_name_in_the_link_is_fatal() {
    let plik = Plik::start();
    let store = PlikStore::new(&plik.url, PlikOptions::default()).unwrap();
    let url = bounded("upload", store.upload(upload("right.bin", &Bytes::from_static(b"abc")))).await.unwrap().url;
    let wrong = url.replace("/right.bin", "/wrong.bin");
    let err =
        bounded("download", download_with_retry(&store, Fetch::new(&wrong, 3), fast_policy(5))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DownloadFailed);
    assert!(err.message.contains("HTTP 400: invalid file name"), "{err}");
    assert_eq!(plik_gets(&plik, &url_path(&wrong)), 1, "{}", plik.log());
}

// ---------------------------------------------------------------- shared GET, against flaky_http

#[tokio::test]
async fn backoff_doubles_up_to_the_cap_then_succeeds() {
    let data = pseudo_random(10_000, 5);
    // Sleeps after attempts 1, 2, 3: 20 ms, 40 ms, then 60 ms (80 capped at 60).
    let expected = [20u64, 40, 60].map(Duration::from_millis);
    // Scheduling noise only ever lengthens a gap, never shortens it. So every run must respect the
    // lower bounds, and for the upper bound it is enough to see each gap come out short once: a
    // wrong formula (no cap: 80 ms; off by one: 40/80/160) never can, a busy machine sometimes
    // needs a few runs. At most 20 runs of about 150 ms.
    let slack = Duration::from_millis(15);
    let mut shortest = [Duration::MAX; 3];
    let mut runs = 0;
    while runs < 20 && shortest.iter().zip(&expected).any(|(s, want)| *s >= *want + slack) {
        runs += 1;
        let server = FlakyHttp::start_flaky(3, Failure::Status(503), Serve::Body(data.to_vec())).await;
        let store = HttpStore::new(&server.url("/")).unwrap();
        let got = bounded(
            "download",
            download_with_retry(&store, Fetch::new(&server.url("/obj"), data.len() as u64), fast_policy(5)),
        )
        .await;
        assert!(got.unwrap() == data);

        let gets = server.gets();
        assert_eq!(gets.len(), 4, "3 failures then 1 success");
        let ua = gets[0].user_agent.clone().unwrap_or_default();
        assert!(ua.starts_with("plik_client/natsbridge-"), "User-Agent {ua:?}");
        for (n, want) in expected.iter().enumerate() {
            let gap = gets[n + 1].at - gets[n].at;
            assert!(gap >= *want, "run {runs}: gap {} = {gap:?}, want ≥ {want:?}", n + 1);
            shortest[n] = shortest[n].min(gap);
        }
    }
    for (n, want) in expected.iter().enumerate() {
        assert!(
            shortest[n] < *want + slack,
            "gap {}: shortest of {runs} runs {:?}, want about {want:?}",
            n + 1,
            shortest[n]
        );
    }
}

#[tokio::test]
async fn dropped_connections_and_429_are_retried() {
    let data = pseudo_random(1000, 9);
    let server = FlakyHttp::start_flaky(2, Failure::Close, Serve::Body(data.to_vec())).await;
    let store = HttpStore::new(&server.url("/")).unwrap();
    let got = bounded(
        "download",
        download_with_retry(&store, Fetch::new(&server.url("/obj"), data.len() as u64), fast_policy(5)),
    )
    .await
    .unwrap();
    assert!(got == data);
    assert_eq!(server.gets().len(), 3);

    let server = FlakyHttp::start_flaky(1, Failure::Status(429), Serve::Body(data.to_vec())).await;
    let store = HttpStore::new(&server.url("/")).unwrap();
    let got = bounded(
        "download",
        download_with_retry(&store, Fetch::new(&server.url("/obj"), data.len() as u64), fast_policy(5)),
    )
    .await
    .unwrap();
    assert!(got == data);
    assert_eq!(server.gets().len(), 2);
}

#[tokio::test]
async fn gives_up_after_exactly_retries_attempts() {
    let server = FlakyHttp::start_flaky(100, Failure::Status(503), Serve::Body(b"never".to_vec())).await;
    let store = HttpStore::new(&server.url("/")).unwrap();
    let err = bounded("download", download_with_retry(&store, Fetch::new(&server.url("/obj"), 5), fast_policy(3)))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DownloadFailed);
    assert!(err.message.contains("3 attempts") && err.message.contains("503"), "{err}");
    assert_eq!(server.gets().len(), 3);
}

/// A redirect to another origin (another port) is URL_NOT_ALLOWED; one within the store's own
/// origin is DOWNLOAD_FAILED. Neither is followed or retried.
#[tokio::test]
async fn a_redirect_is_fatal_and_not_followed() {
    let target = FlakyHttp::start(Serve::Body(b"<html>web ui</html>".to_vec())).await;
    let away = FlakyHttp::start(Serve::Redirect { status: 302, location: target.url("/ui") }).await;
    let within = FlakyHttp::start(Serve::Redirect { status: 301, location: "/moved".into() }).await;
    for (server, code, status) in
        [(&away, ErrorCode::UrlNotAllowed, "302"), (&within, ErrorCode::DownloadFailed, "301")]
    {
        let store = HttpStore::new(&server.url("/")).unwrap();
        let url = server.url("/obj");
        let err =
            bounded("download", download_with_retry(&store, Fetch::new(&url, 19), fast_policy(5))).await.unwrap_err();
        assert_eq!(err.code, code, "{err}");
        assert!(err.message.contains(status) && err.message.contains("redirected"), "{err}");
        assert_eq!(server.gets().len(), 1, "not retried");
    }
    assert_eq!(target.requests().len(), 0, "the redirect must not be followed");
}

#[tokio::test]
async fn not_found_is_fatal_with_the_server_text() {
    let server = FlakyHttp::start(Serve::NotFound).await;
    let store = HttpStore::new(&server.url("/")).unwrap();
    let err = bounded("download", download_with_retry(&store, Fetch::new(&server.url("/obj"), 5), fast_policy(5)))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DownloadFailed);
    assert!(err.message.contains("404") && err.message.contains("no such object"), "{err}");
    assert_eq!(server.gets().len(), 1);
}

#[tokio::test]
async fn a_body_longer_than_expected_is_a_checksum_mismatch() {
    let expected = 1000u64;
    // Announced by Content-Length: refused before reading the body.
    let server = FlakyHttp::start(Serve::Body(pseudo_random(1001, 1).to_vec())).await;
    let store = HttpStore::new(&server.url("/")).unwrap();
    let err =
        bounded("download", download_with_retry(&store, Fetch::new(&server.url("/obj"), expected), fast_policy(5)))
            .await
            .unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{err}");
    assert_eq!(server.gets().len(), 1);

    // No Content-Length, and the server keeps the connection open after the extra bytes: the
    // reader must stop at byte expected+1 on its own instead of waiting for the end.
    let server = FlakyHttp::start(Serve::BodyNoLength {
        body: pseudo_random(300_000, 2).to_vec(),
        hold: Duration::from_secs(20),
    })
    .await;
    let store = HttpStore::new(&server.url("/")).unwrap();
    let started = Instant::now();
    let err =
        bounded("download", download_with_retry(&store, Fetch::new(&server.url("/obj"), expected), fast_policy(5)))
            .await
            .unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "kept reading an oversized body: {:?}", started.elapsed());
    assert_eq!(server.gets().len(), 1);
}

#[tokio::test]
async fn a_content_length_other_than_expected_fails_before_the_body_is_read() {
    // Announces 5000 bytes, sends 10 and stalls: only a check of the header fails fast.
    let server =
        FlakyHttp::start(Serve::Declared { declared: 5000, body: vec![7; 10], hold: Duration::from_secs(20) }).await;
    let store = HttpStore::new(&server.url("/")).unwrap();
    let started = Instant::now();
    let err = bounded("download", download_with_retry(&store, Fetch::new(&server.url("/obj"), 1000), fast_policy(5)))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{err}");
    assert!(err.message.contains("5000"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "waited for the body: {:?}", started.elapsed());
    assert_eq!(server.gets().len(), 1);
}

#[tokio::test]
async fn a_body_shorter_than_expected_is_a_checksum_mismatch() {
    for serve in [
        Serve::Body(pseudo_random(999, 1).to_vec()),
        Serve::BodyNoLength { body: pseudo_random(999, 1).to_vec(), hold: Duration::ZERO },
    ] {
        let server = FlakyHttp::start(serve.clone()).await;
        let store = HttpStore::new(&server.url("/")).unwrap();
        let err =
            bounded("download", download_with_retry(&store, Fetch::new(&server.url("/obj"), 1000), fast_policy(5)))
                .await
                .unwrap_err();
        assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{serve:?}: {err}");
        assert_eq!(server.gets().len(), 1);
    }
}

// ---------------------------------------------------------------- HttpStore

#[tokio::test]
async fn http_store_put_then_get_round_trips() {
    let server = FlakyHttp::start(Serve::NotFound).await;
    let store = HttpStore::new(&server.url("/store/")).unwrap();
    let data = pseudo_random(250_000, 77);
    let url = bounded("upload", store.upload(upload("mesures été.bin", &data))).await.unwrap().url;
    assert!(url.starts_with(&server.url("/store/")), "{url}");
    assert!(url.ends_with("/mesures%20%C3%A9t%C3%A9.bin"), "{url}");
    assert!(store.scopes()[0].matches(&url));

    let path = url_path(&url);
    let puts: Vec<_> = server.requests().into_iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].path, path);
    assert!(server.stored(&path).as_deref() == Some(&data[..]), "the server got other bytes");

    let got = bounded("download", download_with_retry(&store, Fetch::new(&url, data.len() as u64), fast_policy(2)))
        .await
        .unwrap();
    assert!(got == data);

    // Two uploads of the same name get different URLs.
    let url2 = bounded("upload", store.upload(upload("mesures été.bin", &data))).await.unwrap().url;
    assert_ne!(url, url2);
}

#[tokio::test]
async fn http_store_that_is_down_is_an_upload_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = HttpStore::new(&format!("http://127.0.0.1:{port}/store")).unwrap();
    let err = bounded("upload", store.upload(upload("a.bin", &Bytes::from_static(b"abc")))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UploadFailed, "{err}");
    assert_eq!(err.correlation_id.as_deref(), Some("cid-linkstores"));
}

#[test]
fn serves_only_its_own_origin_and_path() {
    let http = HttpStore::new("http://127.0.0.1:9000/store").unwrap();
    assert!(http.scopes()[0].matches("http://127.0.0.1:9000/store/u/a.bin"));
    assert!(http.scopes()[0].matches("http://127.0.0.1:9000/store/u/a%20b.bin?x=1"));
    assert!(!http.scopes()[0].matches("http://127.0.0.1:9000/store"));
    assert!(!http.scopes()[0].matches("http://127.0.0.1:9000/storage/u/a.bin"));
    assert!(!http.scopes()[0].matches("http://127.0.0.1:9000/other/u/a.bin"));
    assert!(!http.scopes()[0].matches("http://127.0.0.1:9000/store/../etc/passwd"));
    assert!(!http.scopes()[0].matches("http://127.0.0.1:9001/store/u/a.bin"));
    assert!(!http.scopes()[0].matches("https://127.0.0.1:9000/store/u/a.bin"));
    assert!(!http.scopes()[0].matches("http://localhost:9000/store/u/a.bin"));
    assert!(!http.scopes()[0].matches("not a url"));

    let plik = PlikStore::new("http://127.0.0.1:8080", PlikOptions::default()).unwrap();
    assert!(plik.scopes()[0].matches("http://127.0.0.1:8080/file/UPLOAD/FILE/name.bin"));
    assert!(!plik.scopes()[0].matches("http://127.0.0.1:8080/upload/UPLOAD"));
    assert!(!plik.scopes()[0].matches("http://127.0.0.1:8080/stream/U/F/n"));
    assert!(!plik.scopes()[0].matches("http://127.0.0.1:8081/file/U/F/n"));
    assert!(!plik.scopes()[0].matches("http://evil.example/file/U/F/n"));

    let plik_with_path = PlikStore::new("http://127.0.0.1:8080/plik/", PlikOptions::default()).unwrap();
    assert!(plik_with_path.scopes()[0].matches("http://127.0.0.1:8080/plik/file/U/F/n"));
    assert!(!plik_with_path.scopes()[0].matches("http://127.0.0.1:8080/file/U/F/n"));

    assert!(HttpStore::new("ftp://127.0.0.1/x").is_err());
    assert!(PlikStore::new("http://127.0.0.1:8080/?q=1", PlikOptions::default()).is_err());
}
