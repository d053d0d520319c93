//! UTC ISO 8601 timestamps with milliseconds and `Z`, e.g. `2026-03-13T07:02:50.443Z`.

/// Formats milliseconds since the Unix epoch (the browser passes `Date.now()`).
pub fn timestamp_from_unix_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    // Digits written in place: this runs once per message, and `format!` showed in profiles.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, m.into());
    put(8, 2, d.into());
    put(11, 2, rem / 3600);
    put(14, 2, (rem % 3600) / 60);
    put(17, 2, rem % 60);
    put(20, 3, unix_ms % 1000);
    String::from_utf8(out.to_vec()).expect("ASCII digits")
}

/// Now, from the system clock. Not on wasm32, where the host passes the time in.
#[cfg(not(target_arch = "wasm32"))]
pub fn timestamp_now() -> String {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    timestamp_from_unix_ms(ms)
}

// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(timestamp_from_unix_ms(0), "1970-01-01T00:00:00.000Z");
        // 2026-03-13T07:02:50.443Z, the walkthrough's example.
        assert_eq!(timestamp_from_unix_ms(1_773_385_370_443), "2026-03-13T07:02:50.443Z");
        assert_eq!(timestamp_from_unix_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
