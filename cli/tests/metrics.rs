//! `natsbridge --metrics` prints, when the command ends, what its connection sent and received
//! (spec/PROTOCOL.md §13.3) as JSON on stderr: a sender's and a receiver's view of one message
//! with a link payload (the object store) and a direct one.

mod common;

use common::{natsbridge, wait_ready};
use natsbridge_servers::NatsServer;
use serde_json::Value;
use std::io::Read;

fn metrics_of(stderr: &[u8]) -> Value {
    let stderr = String::from_utf8_lossy(stderr);
    let line = stderr.lines().find_map(|l| l.strip_prefix("metrics: "));
    serde_json::from_str(line.unwrap_or_else(|| panic!("no metrics line in {stderr}"))).unwrap()
}

#[test]
fn metrics_count_what_the_command_sent_and_received() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 2_000_000]).unwrap();
    let mut sub =
        natsbridge(&server.url(), &["--metrics", "sub", "cli.metrics", "--ready", "--count", "1", "--timeout", "30"]);
    let mut sub_stderr = wait_ready(&mut sub);

    let payload = format!("binary:big=@{}", big.display());
    let args = ["--metrics", "send", "cli.metrics", "-p", &payload, "-p", "text:note=hi"];
    let send = natsbridge(&server.url(), &args).wait_with_output().unwrap();
    assert!(send.status.success(), "send: {}", String::from_utf8_lossy(&send.stderr));
    let sent = metrics_of(&send.stderr);
    assert_eq!(sent["messages_sent"], 1);
    assert_eq!(sent["payloads_sent"], serde_json::json!({"direct": 1, "link": 1}));
    assert_eq!(sent["bytes_sent"]["link"], 2_000_000);
    assert_eq!(sent["messages_received"], 0);

    let mut rest = Vec::new();
    sub_stderr.read_to_end(&mut rest).unwrap();
    assert!(sub.wait().unwrap().success(), "sub failed: {}", String::from_utf8_lossy(&rest));
    let got = metrics_of(&rest);
    assert_eq!(got["messages_received"], 1);
    assert_eq!(got["payloads_received"], serde_json::json!({"direct": 1, "link": 1}));
    assert_eq!(got["bytes_received"]["link"], 2_000_000);
    assert_eq!((got["downloads"].as_u64(), got["checksum_failures"].as_u64()), (Some(1), Some(0)));
    assert!(got["download_time_ms"].as_f64().unwrap() > 0.0);

    // Without the flag nothing is printed.
    let quiet = natsbridge(&server.url(), &["send", "cli.metrics", "-p", "text:n=x"]).wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("metrics:"));
}
