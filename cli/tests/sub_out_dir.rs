//! `natsbridge sub --out-dir`: link payloads are streamed from the store to their files (binary
//! and arrowtable), the others decoded and printed; a link whose bytes are not the sender's
//! leaves no file behind and the earlier file of that name as it was.

use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType, sha256_hex};
use natsbridge_servers::NatsServer;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `natsbridge sub <subject> --out-dir <dir> --count <n> --json --ready`, once it is subscribed.
fn sub(url: &str, subject: &str, dir: &std::path::Path, count: u32) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natsbridge"))
        .args(["--servers", url, "sub", subject, "--json", "--ready", "--timeout", "60"])
        .args(["--count", &count.to_string(), "--out-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run natsbridge sub");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "natsbridge sub said {line:?}");
    child
}

/// The child's stdout lines once it exited (within 60 s), each one JSON object.
fn lines_of(mut child: Child) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "natsbridge sub did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn link_payloads_are_streamed_to_their_files() {
    let server = NatsServer::start();
    let client = Client::connect(ConnectOptions::with_server(&server.url())).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = sub(&server.url(), "cli.out", dir.path(), 2);

    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let payloads = vec![
        Outgoing::new("scan 1", Data::Bytes(big.clone().into()), PayloadType::Binary),
        Outgoing::new("note", Data::Text("x".repeat(2000)), PayloadType::Text),
    ];
    let opts = SendOptions { size_threshold: Some(1000), ..SendOptions::default() };
    let sent = client.smartsend("cli.out", payloads, &opts).await.unwrap();
    assert!(sent.envelope.payloads.iter().all(|p| p.transport == "link"));
    // The same message with the sha256 of other bytes.
    let forged = sent.json_str().replace(&sha256_hex(&big), &sha256_hex(b"other"));
    client.nats().publish("cli.out", forged.into_bytes().into()).await.unwrap();
    client.flush().await.unwrap();

    let lines = lines_of(child);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let file = dir.path().join("scan_1.bin");
    let got = &lines[0]["payloads"];
    assert_eq!(got[0]["value"], serde_json::json!({"size": 3_000_000, "sha256": sha256_hex(&big)}));
    assert_eq!(got[0]["file"], serde_json::json!(file));
    assert_eq!(got[1]["value"], serde_json::json!("x".repeat(2000)), "a text link is decoded, not saved");
    assert!(std::fs::read(&file).unwrap() == big, "the file holds other bytes");

    // The forged message: CHECKSUM_MISMATCH; its partial file is removed and the file the first
    // message wrote under that name is kept.
    assert_eq!(lines[1]["error"]["code"], "CHECKSUM_MISMATCH", "{}", lines[1]);
    assert!(std::fs::read(&file).unwrap() == big, "the first message's file was changed");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["scan_1.bin"], "a partial file was left behind");
}

#[test]
fn a_timeout_that_is_not_a_number_of_seconds_is_invalid_argument() {
    let server = NatsServer::start();
    for bad in ["-1", "NaN", "inf"] {
        let out = Command::new(env!("CARGO_BIN_EXE_natsbridge"))
            .args(["--servers", &server.url(), "sub", "cli.timeout", &format!("--timeout={bad}")])
            .stdin(Stdio::null())
            .output()
            .expect("run natsbridge sub");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--timeout {bad}: {stderr}");
        assert!(stderr.contains("INVALID_ARGUMENT") && stderr.contains(&format!("--timeout {bad}")), "{stderr}");
    }
}
