//! What-if measurements behind the proposals in bench/RESULTS.md: the current pipeline next to
//! prototypes of the proposed changes (bench/src/whatif.rs), on the 100 B and 10 KB cases.
//! Run: `cargo bench -p natsbridge-bench --bench whatif`.

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};
use natsbridge::protocol::{Data, Envelope, PayloadType};
use natsbridge_bench::whatif::{
    B64, b64_decode, b64_encode, decode_borrowed, encode_fast_json, encode_fused, parse_from_str, to_json_fast,
};
use natsbridge_bench::{SenderInfo, binary_payload, decode, encode};
use std::time::Duration;

const SUBJECT: &str = "bench.codec";

fn whatif(c: &mut Criterion) {
    let sender = SenderInfo::default();
    let cases = [("binary_100B", binary_payload(100)), ("binary_10KB", binary_payload(10_000))];

    let mut g = c.benchmark_group("whatif_encode");
    for (name, bytes) in &cases {
        let data = Data::Bytes(bytes.clone());
        let t = PayloadType::Binary;
        g.bench_with_input(BenchmarkId::new("core", name), &data, |b, d| {
            b.iter(|| encode(&sender, SUBJECT, name, t, black_box(d)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("fast_to_json", name), &data, |b, d| {
            b.iter(|| encode_fast_json(&sender, SUBJECT, name, t, black_box(d)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("fused_b64crate", name), &data, |b, d| {
            b.iter(|| encode_fused(&sender, SUBJECT, name, t, black_box(d), B64::Crate).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("fused_b64simd", name), &data, |b, d| {
            b.iter(|| encode_fused(&sender, SUBJECT, name, t, black_box(d), B64::Simd).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("whatif_to_json");
    for (name, bytes) in &cases {
        let json = encode(&sender, SUBJECT, name, PayloadType::Binary, &Data::Bytes(bytes.clone())).unwrap();
        let env = Envelope::parse(json.as_bytes()).unwrap();
        g.bench_with_input(BenchmarkId::new("core_to_json", name), &env, |b, e| b.iter(|| black_box(e).to_json()));
        g.bench_with_input(BenchmarkId::new("to_json_fast", name), &env, |b, e| b.iter(|| to_json_fast(black_box(e))));
    }
    g.finish();

    let mut g = c.benchmark_group("whatif_decode");
    for (name, bytes) in &cases {
        let json = encode(&sender, SUBJECT, name, PayloadType::Binary, &Data::Bytes(bytes.clone())).unwrap();
        g.bench_with_input(BenchmarkId::new("core", name), &json, |b, j| {
            b.iter(|| decode(black_box(j.as_bytes())).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("parse_only", name), &json, |b, j| {
            b.iter(|| Envelope::parse(black_box(j.as_bytes())).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("parse_from_str", name), &json, |b, j| {
            b.iter(|| parse_from_str(black_box(j.as_bytes())).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("borrowed_b64crate", name), &json, |b, j| {
            b.iter(|| decode_borrowed(black_box(j.as_bytes()), B64::Crate).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("borrowed_b64simd", name), &json, |b, j| {
            b.iter(|| decode_borrowed(black_box(j.as_bytes()), B64::Simd).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("whatif_roundtrip");
    for (name, bytes) in &cases {
        let data = Data::Bytes(bytes.clone());
        let t = PayloadType::Binary;
        g.bench_with_input(BenchmarkId::new("core", name), &data, |b, d| {
            b.iter(|| decode(encode(&sender, SUBJECT, name, t, black_box(d)).unwrap().as_bytes()).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("fused+borrowed_b64crate", name), &data, |b, d| {
            b.iter(|| {
                let j = encode_fused(&sender, SUBJECT, name, t, black_box(d), B64::Crate).unwrap();
                decode_borrowed(j.as_bytes(), B64::Crate).unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("fused+borrowed_b64simd", name), &data, |b, d| {
            b.iter(|| {
                let j = encode_fused(&sender, SUBJECT, name, t, black_box(d), B64::Simd).unwrap();
                decode_borrowed(j.as_bytes(), B64::Simd).unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("whatif_base64_10KB");
    let raw = binary_payload(10_000);
    let text = b64_encode(&raw, B64::Crate);
    for (label, b64) in [("crate", B64::Crate), ("simd", B64::Simd)] {
        g.bench_function(BenchmarkId::new("encode", label), |b| b.iter(|| b64_encode(black_box(&raw), b64)));
        g.bench_function(BenchmarkId::new("decode", label), |b| b.iter(|| b64_decode(black_box(&text), b64)));
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = whatif
}
criterion_main!(benches);
