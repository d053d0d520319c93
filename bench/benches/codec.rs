//! Codec benchmarks: what smartsend / smartreceive cost without I/O, per envelope.
//!
//! * `encode/<case>`: serialize + Envelope::new + direct_payload + to_json
//! * `decode/<case>`: decode_message (borrowing parse, base64, size/sha256 checks) + deserialize
//! * `decode_view/<case>`: decode_direct, the same without an owned Envelope (what hosts use)
//! * `roundtrip/<case>`: both, one after the other
//!
//! Cases: one direct payload of 100 B, 10 KB (10,000 B) and 1 MB (1,000,000 B) binary, and a
//! 10,000-row × 5-column Arrow table (IPC stream bytes); and that table's JSON-rows view
//! (`arrow_rows_10000x5/{value_to_string,text}`). Run:
//! `cargo bench -p natsbridge-bench --bench codec` (2 s measurement, 20 samples per case).

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use natsbridge_bench::{SenderInfo, codec_cases, decode, encode, round_trip, serialized_len};
use std::time::Duration;

const SUBJECT: &str = "bench.codec";

fn codec(c: &mut Criterion) {
    let sender = SenderInfo::default();
    let cases = codec_cases();

    let mut g = c.benchmark_group("encode");
    for (name, t, data) in &cases {
        g.throughput(Throughput::Bytes(serialized_len(*t, data) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), data, |b, data| {
            b.iter(|| encode(&sender, SUBJECT, name, *t, black_box(data)).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("decode");
    for (name, t, data) in &cases {
        let json = encode(&sender, SUBJECT, name, *t, data).unwrap();
        g.throughput(Throughput::Bytes(serialized_len(*t, data) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &json, |b, json| {
            b.iter(|| decode(black_box(json)).unwrap())
        });
    }
    g.finish();

    // The view hosts build their objects from (`decode_direct`): no owned Envelope.
    let mut g = c.benchmark_group("decode_view");
    for (name, t, data) in &cases {
        let json = encode(&sender, SUBJECT, name, *t, data).unwrap();
        g.throughput(Throughput::Bytes(serialized_len(*t, data) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &json, |b, json| {
            b.iter(|| {
                natsbridge::protocol::decode_direct(black_box(json), &natsbridge::protocol::ReceiveLimits::default())
                    .unwrap()
                    .unwrap()
                    .payloads
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("roundtrip");
    for (name, t, data) in &cases {
        g.throughput(Throughput::Bytes(serialized_len(*t, data) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), data, |b, data| {
            b.iter(|| round_trip(&sender, SUBJECT, name, *t, black_box(data)).unwrap())
        });
    }
    g.finish();

    // The JSON-rows view hosts without Arrow use (Node's default, the browser, C): through a
    // serde `Value`, and as text straight from arrow-json.
    let ipc = natsbridge_bench::arrow_table_ipc(10_000);
    let mut g = c.benchmark_group("arrow_rows_10000x5");
    g.bench_function("value_to_string", |b| {
        b.iter(|| natsbridge::protocol::arrow::to_json_rows(black_box(&ipc)).unwrap().to_string())
    });
    g.bench_function("text", |b| b.iter(|| natsbridge::protocol::arrow::to_json_rows_text(black_box(&ipc)).unwrap()));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = codec
}
criterion_main!(benches);
