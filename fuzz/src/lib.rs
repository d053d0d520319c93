//! What the fuzz targets share: the panic rule and a JSON comparison that allows for float
//! parsing.

use serde_json::Value;
use std::sync::Once;

/// libFuzzer's panic hook aborts on every panic, even one the code under test catches. Core
/// catches panics of the arrow crates on purpose (`protocol::arrow::read_stream`: arrow-ipc
/// panics on some malformed layouts, and those bytes are bad input), so panics located in an
/// arrow crate are left to unwind; if nothing catches one, libfuzzer-sys still aborts on it (and
/// the C ABI reports it as INTERNAL_ERROR, which `c_abi` treats as a failure). Every other panic
/// aborts at once.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| in_arrow_crate(l.file())) {
                abort_hook(info);
            }
        }));
    });
}

/// A source path in one of the arrow-* crates (`.../arrow-ipc-59.3.2/src/reader.rs`).
fn in_arrow_crate(file: &str) -> bool {
    file.split(['/', '\\']).any(|part| part.starts_with("arrow-"))
}

/// Equal JSON values, where two floats may differ in their last bits: serde_json's default
/// float parsing is not exactly round-trip (no `float_roundtrip` feature), so text written from
/// a parsed float may read back one unit off.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                        (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
                    }
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same_json(vx, vy))
        }
        _ => a == b,
    }
}
