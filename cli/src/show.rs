//! How the CLI prints messages: a readable listing, or one JSON object per message (`--json`)
//! whose payload values follow spec/vectors' decoded-value form.

use indicatif::{ProgressBar, ProgressStyle};
use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{Incoming, Received, Sent};
use natsbridge::protocol::{Data, arrow, sha256_hex};
use serde_json::{Value, json};
use std::path::Path;

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
    let env = &r.envelope;
    println!(
        "message {} on {} from {:?} (purpose {}, correlation {})",
        env.msg_id, env.send_to, env.sender_name, env.msg_purpose, env.correlation_id
    );
    for (p, wire) in r.payloads.iter().zip(&env.payloads) {
        let saved = match out_dir {
            Some(dir) if matches!(p.data, Data::Bytes(_) | Data::Arrow(_)) => Some(save(dir, p)?),
            _ => None,
        };
        let head = format!(
            "  {:<12} {:<11} {:<6} {:>10} B",
            p.dataname,
            p.payload_type.as_str(),
            p.transport.as_str(),
            wire.size
        );
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

fn save(dir: &Path, p: &Incoming) -> Result<std::path::PathBuf, Error> {
    let io = |e: std::io::Error| {
        Error::new(ErrorCode::DeserializationError, format!("cannot write to {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let safe: String =
        p.dataname.chars().map(|c| if c.is_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let (bytes, ext) = match &p.data {
        Data::Arrow(b) => (b, ".arrows"),
        Data::Bytes(b) => (b, ".bin"),
        _ => unreachable!("only bytes and arrow payloads are saved"),
    };
    let path = dir.join(format!("{safe}{ext}"));
    std::fs::write(&path, bytes).map_err(io)?;
    Ok(path)
}

/// The machine-readable form: envelope header fields plus decoded payload values.
pub fn to_json(r: &Received) -> Value {
    let env = &r.envelope;
    let payloads: Vec<Value> = r
        .payloads
        .iter()
        .map(|p| {
            let value = match &p.data {
                Data::Text(t) => json!(t),
                Data::Json(v) => v.clone(),
                Data::JsonBytes(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
                Data::Arrow(ipc) => json!({"rows": arrow::to_json_rows(ipc).unwrap_or(Value::Null)}),
                Data::Bytes(b) => json!({"size": b.len(), "sha256": sha256_hex(b)}),
            };
            json!({"dataname": p.dataname, "payload_type": p.payload_type.as_str(), "transport": p.transport.as_str(), "value": value})
        })
        .collect();
    json!({
        "correlation_id": env.correlation_id, "msg_id": env.msg_id, "timestamp": env.timestamp,
        "subject": r.subject, "send_to": env.send_to, "msg_purpose": env.msg_purpose, "sender_name": env.sender_name,
        "sender_id": env.sender_id, "receiver_name": env.receiver_name, "reply_to": env.reply_to,
        "reply_to_msg_id": env.reply_to_msg_id, "metadata": env.metadata, "payloads": payloads,
    })
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
