//! `natsbridge send -p binary:NAME=@FILE`: the file is streamed to the link store while it is
//! read, and arrives exact; a file small enough to go direct still does.

mod common;

use common::{natsbridge, wait_ready};
use natsbridge::protocol::sha256_hex;
use natsbridge_servers::NatsServer;

#[test]
fn a_file_is_sent_as_a_link_while_it_is_read_and_a_small_one_goes_direct() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (size, transport) in [(3_000_000usize, "link"), (1_000, "direct")] {
        let bytes: Vec<u8> = (0..size as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let path = dir.path().join(format!("{size}.bin"));
        std::fs::write(&path, &bytes).unwrap();
        let subject = format!("cli.file.{size}");
        let mut sub =
            natsbridge(&server.url(), &["sub", &subject, "--json", "--ready", "--count", "1", "--timeout", "60"]);
        wait_ready(&mut sub);

        let payload = format!("binary:scan=@{}", path.display());
        let send = natsbridge(&server.url(), &["send", &subject, "-p", &payload]).wait_with_output().unwrap();
        assert!(send.status.success(), "send: {}", String::from_utf8_lossy(&send.stderr));

        let out = sub.wait_with_output().unwrap();
        assert!(out.status.success(), "sub failed");
        let received: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let payload = &received["payloads"][0];
        assert_eq!(payload["transport"], transport, "{size} bytes");
        assert_eq!(payload["value"], serde_json::json!({"size": size, "sha256": sha256_hex(&bytes)}));
    }
}
