//! `natsbridge send --trace-headers JSON` publishes the caller's W3C trace context as NATS
//! headers (spec/PROTOCOL.md §13) and `sub --json` prints what a message carried as
//! `trace_headers`, so a trace begun in another language can be followed through the CLI.

mod common;

use common::{natsbridge, wait_ready};
use natsbridge_servers::NatsServer;
use serde_json::{Value, json};

#[test]
fn trace_headers_go_out_with_send_and_come_back_from_sub_json() {
    let server = NatsServer::start();
    let mut sub =
        natsbridge(&server.url(), &["sub", "cli.trace", "--json", "--ready", "--count", "2", "--timeout", "30"]);
    wait_ready(&mut sub);

    let given = json!({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "baggage": "k=v"});
    let traced = ["send", "cli.trace", "-p", "text:n=a", "--trace-headers", &given.to_string()];
    let send = natsbridge(&server.url(), &traced).wait_with_output().unwrap();
    assert!(send.status.success(), "send: {}", String::from_utf8_lossy(&send.stderr));
    let plain = natsbridge(&server.url(), &["send", "cli.trace", "-p", "text:n=b"]).wait_with_output().unwrap();
    assert!(plain.status.success());

    let out = sub.wait_with_output().unwrap();
    assert!(out.status.success(), "sub failed");
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["trace_headers"], given);
    assert_eq!(lines[1].get("trace_headers"), None, "an untraced message has none");

    for bad in ["not json", r#"{"traceparent": "00-zz"}"#] {
        let refused = natsbridge(&server.url(), &["send", "cli.trace", "-p", "text:n=c", "--trace-headers", bad])
            .wait_with_output();
        let refused = refused.unwrap();
        assert_eq!(refused.status.code(), Some(1), "{bad}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("INVALID_ARGUMENT") && stderr.contains("trace"), "{bad}: {stderr}");
    }
}
