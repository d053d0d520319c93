//! d. Memory peak of one link transfer, measured in a child process.

use crate::Res;
use crate::clients::{binary, bridge_connect, envelope};
use natsbridge::io::SendOptions;
use natsbridge::protocol::{Data, Settings};
use natsbridge_bench::{SenderInfo, binary_payload};
use std::process::{Command, Stdio};

/// VmHWM (peak RSS) of this process in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `e2e mem-child send <url> <bytes>` or `e2e mem-child receive <url> <envelope-file>`: prints one
/// `MEM <baseline VmHWM KiB> <peak VmHWM KiB> <payload bytes>` line.
pub(crate) async fn mem_child(args: &[String]) -> Res<()> {
    let [mode, url, what] = args else {
        return Err("usage: e2e mem-child send <url> <bytes> | receive <url> <envelope-file>".into());
    };
    let client = bridge_connect(url, Settings::default()).await?;
    let opts = SendOptions::default();
    let (base, size) = match mode.as_str() {
        "send" => {
            let size: usize = what.parse()?;
            // Open the bucket first (a small link) so the baseline has every long-lived buffer.
            client.smartsend("bench.mem", binary("warm.bin", binary_payload(600_000)), &opts).await?;
            let base = vm_hwm_kib();
            let sent = client.smartsend("bench.mem", binary("blob.bin", binary_payload(size)), &opts).await?;
            assert_eq!(sent.envelope.payloads[0].transport, "link");
            (base, size)
        }
        "receive" => {
            let json = std::fs::read(what)?;
            // A small direct message first so the decode path is warm.
            let warm = envelope(&SenderInfo::default(), "bench.mem", &Data::Bytes(binary_payload(100)))?;
            client.smartreceive(&warm).await?;
            let base = vm_hwm_kib();
            let r = client.smartreceive(&json).await?;
            let Data::Bytes(b) = &r.payloads[0].data else { return Err("expected binary data".into()) };
            (base, b.len())
        }
        other => return Err(format!("unknown mem-child mode {other:?}").into()),
    };
    println!("MEM {base} {} {size}", vm_hwm_kib());
    client.drain().await.ok();
    Ok(())
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Mem {
    pub(crate) baseline_kib: u64,
    pub(crate) peak_kib: u64,
    pub(crate) payload_bytes: u64,
}

impl Mem {
    /// Growth of the peak over the baseline, in units of the payload (the payload buffer = 1x).
    pub(crate) fn ratio(&self) -> f64 {
        (self.peak_kib.saturating_sub(self.baseline_kib) * 1024) as f64 / self.payload_bytes as f64
    }
}

pub(crate) fn run_mem_child(args: &[&str]) -> Res<Mem> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).arg("mem-child").args(args).stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("mem-child {args:?} failed ({}): {stdout}", out.status).into());
    }
    let line =
        stdout.lines().find_map(|l| l.strip_prefix("MEM ")).ok_or_else(|| format!("no MEM line in: {stdout}"))?;
    let v = line.split_whitespace().map(str::parse).collect::<Result<Vec<u64>, _>>()?;
    let [baseline_kib, peak_kib, payload_bytes] = v[..] else { return Err(format!("bad MEM line: {line}").into()) };
    Ok(Mem { baseline_kib, peak_kib, payload_bytes })
}
