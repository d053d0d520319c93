//! Shared pieces of the NATSBridge benchmarks: the encode/decode pipeline that smartsend and
//! smartreceive run around their I/O, and the test payloads (binary blobs, an Arrow table).
//!
//! The criterion bench (`benches/codec.rs`) times these functions alone; the end-to-end binary
//! (`src/bin/e2e/`) uses them to pre-encode the envelope the raw-transport floor publishes and
//! for its diagnostic rows that run core's codec over raw async-nats.

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use natsbridge::error::Result;
use natsbridge::protocol::{
    self, Data, Envelope, Outgoing, PayloadSource, PayloadType, SendLimits, SendPlan, SendStep,
};
use std::sync::Arc;

/// The header fields smartsend fills from the client (`fill_header`): kept here so the encode
/// bench writes an envelope of the same size as the one smartsend publishes.
#[derive(Clone, Debug)]
pub struct SenderInfo {
    pub sender_id: String,
    pub sender_name: String,
    pub broker_url: String,
}

impl Default for SenderInfo {
    fn default() -> Self {
        SenderInfo {
            sender_id: protocol::new_id(),
            sender_name: String::new(),
            broker_url: "nats://127.0.0.1:4222".to_owned(),
        }
    }
}

/// What smartsend does for one direct payload, without I/O: `Envelope::new` (+ the client's
/// header fields) and core's `SendPlan` (serialize, plan, JSON with the base64 written in place).
/// `data` is cloned in: cheap for the cases here (`Bytes`), as a host hands smartsend its own.
pub fn encode(
    sender: &SenderInfo,
    subject: &str,
    dataname: &str,
    payload_type: PayloadType,
    data: &Data,
) -> Result<Bytes> {
    let mut env = Envelope::new(subject);
    env.sender_id.clone_from(&sender.sender_id);
    env.sender_name.clone_from(&sender.sender_name);
    env.broker_url.clone_from(&sender.broker_url);
    let limits = SendLimits { threshold: usize::MAX, max_payload: usize::MAX, can_upload: false };
    let mut plan = SendPlan::new(env, vec![Outgoing::new(dataname, data.clone(), payload_type)], limits)?;
    assert_eq!(plan.step()?, SendStep::Publish, "every payload goes direct");
    Ok(plan.finish().json)
}

/// What smartreceive does for an envelope of direct payloads, without I/O: `decode_message`
/// (parse, base64, size/sha256 checks) and `deserialize` of every payload, in order.
pub fn decode(message: &[u8]) -> Result<(Envelope, Vec<Data>)> {
    let limits = protocol::ReceiveLimits::default();
    let (env, decoded) = protocol::decode_message(message, &limits)?;
    let mut out = Vec::with_capacity(decoded.len());
    for p in decoded {
        let bytes = match p.source {
            PayloadSource::Inline(b) => b,
            PayloadSource::Link(url) => {
                return Err(natsbridge::error::Error::new(
                    natsbridge::error::ErrorCode::InvalidTransport,
                    format!("decode() handles direct payloads only; {url} needs a download"),
                ));
            }
        };
        out.push(protocol::deserialize(p.payload_type, bytes, &limits)?);
    }
    Ok((env, out))
}

/// Encode then decode, checking nothing was lost (the "together" bench).
pub fn round_trip(
    sender: &SenderInfo,
    subject: &str,
    dataname: &str,
    payload_type: PayloadType,
    data: &Data,
) -> Result<Data> {
    let json = encode(sender, subject, dataname, payload_type, data)?;
    let (_, mut values) = decode(&json)?;
    Ok(values.pop().expect("one payload"))
}

/// `len` bytes of a deterministic, not-too-compressible pattern.
pub fn binary_payload(len: usize) -> Bytes {
    let mut x: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            // xorshift32
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// A `rows` × 5 table (int64, float64, utf8, bool, timestamp[us, UTC]) as one record batch,
/// written as Arrow IPC **stream** bytes (the arrowtable wire format).
pub fn arrow_table_ipc(rows: usize) -> Bytes {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
    ]));
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|i| i * 7919)));
    let values: ArrayRef = Arc::new(Float64Array::from_iter(
        (0..rows).map(|i| if i % 97 == 0 { None } else { Some(i as f64 * 0.25 - 3.5) }),
    ));
    let names: ArrayRef = Arc::new(StringArray::from_iter(
        (0..rows).map(|i| if i % 101 == 0 { None } else { Some(format!("name-{i:06}")) }),
    ));
    let flags: ArrayRef = Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 3 == 0))));
    let base_us: i64 = 1_700_000_000_000_000;
    let ts: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from_iter_values((0..rows as i64).map(|i| base_us + i * 1_000)).with_timezone("UTC"),
    );
    let batch = RecordBatch::try_new(schema.clone(), vec![ids, values, names, flags, ts]).expect("valid batch");
    let mut out = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).expect("IPC writer");
        w.write(&batch).expect("IPC write");
        w.finish().expect("IPC finish");
    }
    Bytes::from(out)
}

/// The codec bench's cases: name, payload type, value.
pub fn codec_cases() -> Vec<(&'static str, PayloadType, Data)> {
    vec![
        ("binary_100B", PayloadType::Binary, Data::Bytes(binary_payload(100))),
        ("binary_10KB", PayloadType::Binary, Data::Bytes(binary_payload(10_000))),
        ("binary_1MB", PayloadType::Binary, Data::Bytes(binary_payload(1_000_000))),
        ("arrow_10000x5", PayloadType::ArrowTable, Data::Arrow(arrow_table_ipc(10_000))),
    ]
}

/// Serialized size of a case's payload (criterion's throughput figure).
pub fn serialized_len(payload_type: PayloadType, data: &Data) -> usize {
    protocol::serialize("p", payload_type, data).map(|b| b.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_round_trips() {
        let sender = SenderInfo::default();
        for (name, t, data) in codec_cases() {
            let back = round_trip(&sender, "bench.codec", name, t, &data).unwrap();
            assert_eq!(back, data, "{name}");
        }
        assert_eq!(natsbridge::protocol::arrow::num_rows(&arrow_table_ipc(10_000)).unwrap(), 10_000);
    }
}
