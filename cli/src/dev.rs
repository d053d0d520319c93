//! A local nats-server with JetStream for development (started by the `servers` crate, as every
//! Rust test and bench starts it), and the demo that uses one.

use bytes::Bytes;
use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType, arrow};
use natsbridge_servers::{NatsConfig, NatsServer};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn failed(m: String) -> Error {
    Error::new(ErrorCode::NatsConnectionFailed, m)
}

fn start(port: Option<u16>, websocket_port: Option<u16>) -> Result<NatsServer, Error> {
    NatsServer::launch(NatsConfig { port, websocket_port, ..Default::default() }).map_err(failed)
}

pub async fn run_foreground(port: u16, websocket_port: Option<u16>) -> Result<(), Error> {
    let server = start(Some(port), websocket_port)?;
    let client = Client::connect(ConnectOptions::with_server(&server.url())).await?;
    let stream = client.add_stream(&crate::durable::dev_stream()).await?;
    client.drain().await?;
    eprintln!("nats-server with JetStream on {} (Ctrl-C stops it)", server.url());
    eprintln!(
        "stream {} captures {} (natsbridge --jetstream send {}.x ...; natsbridge consume {} worker)",
        stream.name,
        stream.subjects.join(", "),
        stream.name,
        stream.name
    );
    if let Some(ws) = server.websocket_url() {
        eprintln!("websocket clients: {ws}");
    }
    let _ = tokio::signal::ctrl_c().await;
    drop(server);
    Ok(())
}

/// Starts a server, receives in a second process (`natsbridge sub`), sends five payload types
/// from this one, prints what arrived, and stops the server.
/// `receiver`: the receiving program's argv with `{server}` and `{subject}` filled in; empty for
/// this CLI's own `sub`.
pub async fn demo(receiver: Vec<String>) -> Result<(), Error> {
    let server = start(None, None)?;
    let url = server.url();
    eprintln!("started nats-server with JetStream on {url}");
    let subject = "natsbridge.demo";
    let exe = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
    let argv: Vec<String> = if receiver.is_empty() {
        let exe = exe.to_string_lossy();
        let own = [&exe, "--servers", &url, "sub", subject, "--count", "1", "--timeout", "30", "--ready"];
        own.iter().map(|s| s.to_string()).collect()
    } else {
        receiver.iter().map(|a| a.replace("{server}", &url).replace("{subject}", subject)).collect()
    };
    let mut receiver = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot start the receiver process {:?}: {e}", argv[0])))?;
    let mut lines = BufReader::new(receiver.stderr.take().expect("piped stderr")).lines();
    loop {
        match tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await {
            Ok(Ok(Some(line))) if line.starts_with("ready:") => break,
            Ok(Ok(Some(line))) => eprintln!("{line}"),
            _ => return Err(failed("the receiver process did not subscribe".into())),
        }
    }
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{line}");
        }
    });

    let client = Client::connect(ConnectOptions::with_server(&url)).await?;
    let rows = json!([
        {"station": "north", "temp_c": 21.5, "ok": true},
        {"station": "south", "temp_c": 19.0, "ok": false},
        {"station": "east", "temp_c": null, "ok": true},
    ]);
    let blob: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let payloads = vec![
        Outgoing::new("greeting", Data::Text("Hello from natsbridge ✓".into()), PayloadType::Text),
        Outgoing::new(
            "config",
            Data::Json(json!({"units": "metric", "stations": 3, "tags": ["demo"]})),
            PayloadType::Dictionary,
        ),
        Outgoing::new("readings", Data::Json(rows.clone()), PayloadType::JsonTable),
        Outgoing::new("table", Data::Arrow(arrow::from_json_rows(&rows)?), PayloadType::ArrowTable),
        Outgoing::new("blob", Data::Bytes(Bytes::from(blob)), PayloadType::Binary),
    ];
    let opts = SendOptions { sender_name: Some("natsbridge-demo".into()), ..Default::default() };
    let sent = client.smartsend(subject, payloads, &opts).await?;
    client.flush().await?;
    crate::show::sent_summary(&sent);
    let status = tokio::time::timeout(Duration::from_secs(30), receiver.wait()).await;
    drop(server);
    match status {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(failed(format!("the receiver process failed ({s})"))),
        _ => Err(failed("the receiver process did not finish".into())),
    }
}
