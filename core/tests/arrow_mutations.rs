//! Untrusted Arrow IPC bytes must give DESERIALIZATION_ERROR, never a panic: a bounded sweep of
//! byte flips and truncations over a real stream.

use bytes::Bytes;
use natsbridge::error::ErrorCode;
use natsbridge::protocol::{PayloadType, arrow, deserialize};
use serde_json::json;

#[test]
fn mutated_ipc_streams_never_panic() {
    let rows: Vec<_> =
        (0..50).map(|i| json!({"id": i, "name": format!("n{i}"), "x": i as f64 * 0.5, "ok": i % 2 == 0})).collect();
    let good = arrow::from_json_rows(&json!(rows)).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let mut bytes = good.to_vec();
        match round % 3 {
            0 => bytes.truncate((next() as usize) % good.len()),
            _ => {
                for _ in 0..(1 + next() % 4) {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
            }
        }
        let result = std::panic::catch_unwind(|| {
            deserialize(PayloadType::ArrowTable, Bytes::from(bytes.clone()), &Default::default())
        });
        match result {
            Ok(Ok(natsbridge::protocol::Data::Arrow(ipc))) => {
                // A stream that still validates must also render as JSON rows without panicking.
                let rows = std::panic::catch_unwind(|| arrow::to_json_rows(&ipc));
                assert!(rows.is_ok(), "round {round}: to_json_rows panicked");
            }
            Ok(Ok(other)) => panic!("round {round}: arrowtable decoded to {other:?}"),
            Ok(Err(e)) => assert_eq!(e.code, ErrorCode::DeserializationError),
            Err(_) => panic!("round {round}: arrow decoding panicked on {} mutated bytes", bytes.len()),
        }
    }
}
