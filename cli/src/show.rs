//! How the CLI prints messages: a readable listing, or one JSON object per message (`--json`)
//! whose payload values follow spec/vectors' decoded-value form.

use indicatif::{ProgressBar, ProgressStyle};
use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{Incoming, Received, Sent, StreamedMessage, StreamedPayload};
use natsbridge::protocol::{
    Data, Envelope, PayloadType, ReceiveLimits, TraceContext, Transport, arrow, deserialize, sha256_hex,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const SHOW_PROGRESS_FROM: u64 = 4 << 20;

pub fn sent_summary(sent: &Sent) {
    let env = &sent.envelope;
    eprintln!("sent {} to {} ({} bytes, correlation {})", env.msg_id, env.send_to, sent.json.len(), env.correlation_id);
    if let Some(ack) = &sent.pub_ack {
        let dup = if ack.duplicate { ", a duplicate: stored once" } else { "" };
        eprintln!("  stored in stream {} as #{}{dup}", ack.stream, ack.sequence);
    }
    for p in &env.payloads {
        eprintln!("  {:<12} {:<11} {:<6} {:>10} B", p.dataname, p.payload_type, p.transport, p.size);
    }
}

pub fn received(r: &Received, out_dir: Option<&Path>, as_json: bool) -> Result<(), Error> {
    if as_json {
        println!("{}", to_json(r));
        return Ok(());
    }
    print_header(&r.envelope);
    for (p, wire) in r.payloads.iter().zip(&r.envelope.payloads) {
        print_payload(p, wire.size, out_dir)?;
    }
    Ok(())
}

fn print_header(env: &Envelope) {
    println!(
        "message {} on {} from {:?} (purpose {}, correlation {})",
        env.msg_id, env.send_to, env.sender_name, env.msg_purpose, env.correlation_id
    );
}

fn head(dataname: &str, payload_type: PayloadType, transport: Transport, size: u64) -> String {
    format!("  {:<12} {:<11} {:<6} {:>10} B", dataname, payload_type.as_str(), transport.as_str(), size)
}

/// One payload's lines; a bytes or Arrow payload is also written under `out_dir`.
fn print_payload(p: &Incoming, size: u64, out_dir: Option<&Path>) -> Result<(), Error> {
    let saved = match out_dir {
        Some(dir) if matches!(p.data, Data::Bytes(_) | Data::Arrow(_)) => Some(save(dir, p)?),
        _ => None,
    };
    let head = head(&p.dataname, p.payload_type, p.transport, size);
    if let Some(rows) = table_rows(p) {
        println!("{head}  {} rows", rows.len());
        for row in rows.iter().take(10) {
            println!("{:>16}{row}", "");
        }
        if rows.len() > 10 {
            println!("{:>16}… {} more", "", rows.len() - 10);
        }
    } else {
        match &p.data {
            Data::Text(t) => println!("{head}  {}", t.escape_debug()),
            Data::Json(v) => println!("{head}  {v}"),
            Data::JsonBytes(b) => println!("{head}  {}", String::from_utf8_lossy(b)),
            Data::Arrow(_) => println!("{head}  (Arrow table)"),
            Data::Bytes(b) => println!("{head}  sha256 {}", sha256_hex(b)),
        }
    }
    if let Some(path) = saved {
        println!("{:>16}written to {}", "", path.display());
    }
    Ok(())
}

/// A message that could not be decoded: a JSON line on stdout with `--json`, else a line on stderr.
pub fn receive_error(e: &Error, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"error": {"code": e.code.as_str(), "message": e.message, "correlation_id": e.correlation_id}})
        );
    } else {
        eprintln!("error: {e}");
    }
}

/// Rows of a jsontable or arrowtable payload, for display.
fn table_rows(p: &Incoming) -> Option<Vec<Value>> {
    match &p.data {
        Data::Json(Value::Array(rows)) if p.payload_type == natsbridge::protocol::PayloadType::JsonTable => {
            Some(rows.clone())
        }
        Data::Arrow(ipc) => match arrow::to_json_rows(ipc) {
            Ok(Value::Array(rows)) => Some(rows),
            _ => None,
        },
        _ => None,
    }
}

fn save(dir: &Path, p: &Incoming) -> Result<PathBuf, Error> {
    let path = file_for(dir, &p.dataname, p.payload_type)?;
    let bytes = match &p.data {
        Data::Arrow(b) | Data::Bytes(b) => b,
        _ => unreachable!("only bytes and arrow payloads are saved"),
    };
    std::fs::write(&path, bytes).map_err(|e| write_error(&path, e))?;
    Ok(path)
}

/// Whether payloads of this type are written to files under `--out-dir`.
fn saved_to_file(payload_type: PayloadType) -> bool {
    payload_type == PayloadType::ArrowTable || payload_type.is_bytes()
}

/// `dir/<dataname made safe>.bin` (`.arrows` for an Arrow stream), `dir` created if missing.
fn file_for(dir: &Path, dataname: &str, payload_type: PayloadType) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let safe: String =
        dataname.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let ext = if payload_type == PayloadType::ArrowTable { ".arrows" } else { ".bin" };
    Ok(dir.join(format!("{safe}{ext}")))
}

fn write_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorCode::DeserializationError, format!("cannot write to {}: {e}", path.display()))
}

/// A message received with its links streamed (`sub --out-dir`): binary and arrowtable links go
/// from the store to their file in chunks, never whole in memory; the other links are read and
/// decoded. Shown as [`received`] shows one, a streamed file as its size, sha256 and path.
pub async fn streamed(m: StreamedMessage, out_dir: &Path, limits: &ReceiveLimits, as_json: bool) -> Result<(), Error> {
    let mut shown = Vec::with_capacity(m.payloads.len());
    for payload in m.payloads {
        shown.push(match payload {
            StreamedPayload::Value(p) => Shown::Value(p),
            StreamedPayload::Link(mut link) if saved_to_file(link.payload_type()) => {
                let path = file_for(out_dir, link.dataname(), link.payload_type())?;
                let size = link.save(&path).await?;
                let sha256 = link.sha256().unwrap_or_default().to_owned();
                Shown::File {
                    dataname: link.dataname().to_owned(),
                    payload_type: link.payload_type(),
                    size,
                    sha256,
                    path,
                }
            }
            StreamedPayload::Link(link) => {
                let (dataname, payload_type) = (link.dataname().to_owned(), link.payload_type());
                let data = deserialize(payload_type, link.bytes().await?, limits)?;
                Shown::Value(Incoming { dataname, payload_type, data, transport: Transport::Link })
            }
        });
    }
    let env = &m.envelope;
    if as_json {
        let payloads: Vec<Value> = shown
            .iter()
            .map(|s| match s {
                Shown::Value(p) => payload_json(p),
                Shown::File { dataname, payload_type, size, sha256, path } => json!({
                    "dataname": dataname, "payload_type": payload_type.as_str(), "transport": "link",
                    "value": {"size": size, "sha256": sha256}, "file": path,
                }),
            })
            .collect();
        println!("{}", message_json(env, m.subject.as_deref(), m.trace.as_ref(), payloads));
        return Ok(());
    }
    print_header(env);
    for (s, wire) in shown.iter().zip(&env.payloads) {
        match s {
            Shown::Value(p) => print_payload(p, wire.size, Some(out_dir))?,
            Shown::File { dataname, payload_type, size, sha256, path } => {
                println!("{}  sha256 {sha256}", head(dataname, *payload_type, Transport::Link, *size));
                println!("{:>16}written to {}", "", path.display());
            }
        }
    }
    Ok(())
}

enum Shown {
    Value(Incoming),
    File { dataname: String, payload_type: PayloadType, size: u64, sha256: String, path: PathBuf },
}

/// The machine-readable form: envelope header fields plus decoded payload values.
pub fn to_json(r: &Received) -> Value {
    message_json(&r.envelope, r.subject.as_deref(), r.trace.as_ref(), r.payloads.iter().map(payload_json).collect())
}

fn payload_json(p: &Incoming) -> Value {
    let value = match &p.data {
        Data::Text(t) => json!(t),
        Data::Json(v) => v.clone(),
        Data::JsonBytes(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        Data::Arrow(ipc) => json!({"rows": arrow::to_json_rows(ipc).unwrap_or(Value::Null)}),
        Data::Bytes(b) => json!({"size": b.len(), "sha256": sha256_hex(b)}),
    };
    json!({"dataname": p.dataname, "payload_type": p.payload_type.as_str(), "transport": p.transport.as_str(), "value": value})
}

/// The message's JSON line; `trace_headers` (the sender's W3C trace context) only when it had one.
fn message_json(env: &Envelope, subject: Option<&str>, trace: Option<&TraceContext>, payloads: Vec<Value>) -> Value {
    let mut line = json!({
        "correlation_id": env.correlation_id, "msg_id": env.msg_id, "timestamp": env.timestamp,
        "subject": subject, "send_to": env.send_to, "msg_purpose": env.msg_purpose, "sender_name": env.sender_name,
        "sender_id": env.sender_id, "receiver_name": env.receiver_name, "reply_to": env.reply_to,
        "reply_to_msg_id": env.reply_to_msg_id, "metadata": env.metadata, "payloads": payloads,
    });
    if let Some(trace) = trace {
        line["trace_headers"] = Value::Object(trace.w3c_carrier());
    }
    line
}

/// A progress bar for link uploads and downloads, drawn only on a terminal once a transfer
/// passes a few MB. The client reports bytes through `transfer_progress`.
#[derive(Clone)]
pub struct TransferProgress(ProgressBar);

impl TransferProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg} {bytes} [{elapsed}]").expect("valid template"));
        bar.set_message("link transfer");
        TransferProgress(bar)
    }

    /// The callback for `BridgeOptions::transfer_progress`.
    pub fn callback(&self) -> natsbridge::io::store::Progress {
        let bar = self.0.clone();
        std::sync::Arc::new(move |n| {
            bar.inc(n);
            if bar.is_hidden()
                && bar.position() >= SHOW_PROGRESS_FROM
                && std::io::IsTerminal::is_terminal(&std::io::stderr())
            {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
        })
    }

    /// Clears the bar after one message's transfers.
    pub fn finish(&self) {
        if !self.0.is_hidden() {
            self.0.finish_and_clear();
        }
        self.0.reset();
    }
}
