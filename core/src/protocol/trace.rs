//! Trace context in NATS headers (spec/PROTOCOL.md §13): W3C `traceparent`, `tracestate` and
//! `baggage`, and the span of each link payload's upload, so a receiver's download span can link
//! to it. Received headers are advisory: a malformed one is dropped, never an error.

use crate::error::{Error, Result};
use std::fmt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
pub const BAGGAGE: &str = "baggage";
pub const UPLOAD_SPANS: &str = "natsbridge-upload-spans";
/// Longer ones are dropped on receive: W3C asks vendors to propagate at least 512 bytes of
/// `tracestate`, and W3C Baggage allows 8192 bytes.
pub const MAX_TRACESTATE_BYTES: usize = 512;
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// A W3C `traceparent` of version 00: the trace, the parent span in it, and the flags (bit 0:
/// sampled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Traceparent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl Traceparent {
    /// None unless `text` is a version-00 traceparent, lower-case, with ids not all zeros.
    pub fn parse(text: &str) -> Option<Traceparent> {
        let b = text.as_bytes();
        if b.len() != 55 || &b[..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id = lower_hex::<16>(&b[3..35])?;
        let span_id = lower_hex::<8>(&b[36..52])?;
        let [flags] = lower_hex::<1>(&b[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Traceparent { trace_id, span_id, flags })
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }

    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", self.trace_id_hex(), self.span_id_hex(), self.flags)
    }
}

/// Exactly `N` bytes from `2 N` lower-case hex digits.
fn lower_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N || !digits.iter().all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

/// The trace context a message carries (§13.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: Traceparent,
    pub tracestate: Option<String>,
    pub baggage: Option<String>,
    /// Received only: per link payload (its index in the envelope), the span id of its upload,
    /// in the traceparent's trace.
    pub upload_spans: Vec<(usize, [u8; 8])>,
}

impl TraceContext {
    /// A host's trace context to send with (its current OpenTelemetry context, injected as W3C
    /// headers): INVALID_ARGUMENT when the traceparent is malformed or a value is too long or
    /// not one header line. Empty `tracestate` or `baggage` are none.
    pub fn from_host(traceparent: &str, tracestate: Option<&str>, baggage: Option<&str>) -> Result<TraceContext> {
        let parsed = Traceparent::parse(traceparent).ok_or_else(|| {
            Error::invalid_argument(format!(
                "traceparent {:?} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>, lower-case, ids not zero)",
                truncated(traceparent)
            ))
        })?;
        let checked = |name: &str, value: Option<&str>, max: usize| -> Result<Option<String>> {
            match value {
                None | Some("") => Ok(None),
                Some(v) if v.len() <= max && header_safe(v) => Ok(Some(v.to_owned())),
                Some(v) => Err(Error::invalid_argument(format!(
                    "{name} is {} bytes or not one header line (at most {max} bytes, no control characters)",
                    v.len()
                ))),
            }
        };
        Ok(TraceContext {
            traceparent: parsed,
            tracestate: checked(TRACESTATE, tracestate, MAX_TRACESTATE_BYTES)?,
            baggage: checked(BAGGAGE, baggage, MAX_BAGGAGE_BYTES)?,
            upload_spans: Vec::new(),
        })
    }

    /// The trace context of received headers (`header(name)` gives a header's value), or None
    /// when there is no well-formed traceparent. `is_link(i)`: payload `i` came by link.
    pub fn from_headers<'h>(
        header: impl Fn(&str) -> Option<&'h str>,
        is_link: impl Fn(usize) -> bool,
    ) -> Option<TraceContext> {
        let traceparent = Traceparent::parse(header(TRACEPARENT)?)?;
        let bounded = |name: &str, max: usize| {
            header(name).filter(|v| !v.is_empty() && v.len() <= max && header_safe(v)).map(str::to_owned)
        };
        let upload_spans = header(UPLOAD_SPANS).map(|v| parse_upload_spans(v, is_link)).unwrap_or_default();
        Some(TraceContext {
            traceparent,
            tracestate: bounded(TRACESTATE, MAX_TRACESTATE_BYTES),
            baggage: bounded(BAGGAGE, MAX_BAGGAGE_BYTES),
            upload_spans,
        })
    }

    /// The W3C headers alone: what a host's OpenTelemetry propagator extracts a context from.
    pub fn w3c_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![(TRACEPARENT, self.traceparent.to_string())];
        if let Some(v) = &self.tracestate {
            headers.push((TRACESTATE, v.clone()));
        }
        if let Some(v) = &self.baggage {
            headers.push((BAGGAGE, v.clone()));
        }
        headers
    }

    /// The W3C headers as a JSON object: the `trace_headers` a binding hands its host (a
    /// carrier for an OpenTelemetry propagator), and the shape the send option takes.
    pub fn w3c_carrier(&self) -> serde_json::Map<String, serde_json::Value> {
        self.w3c_headers()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
            .collect()
    }

    /// The headers to publish (§13.1), in order; `upload_spans` is written when not empty.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = self.w3c_headers();
        if !self.upload_spans.is_empty() {
            let entries: Vec<String> =
                self.upload_spans.iter().map(|(i, span)| format!("{i}:{}", hex::encode(span))).collect();
            headers.push((UPLOAD_SPANS, entries.join(",")));
        }
        headers
    }

    /// The upload span of payload `index`, if the sender named one.
    pub fn upload_span(&self, index: usize) -> Option<[u8; 8]> {
        self.upload_spans.iter().find(|(i, _)| *i == index).map(|(_, span)| *span)
    }
}

/// The well-formed entries of a `natsbridge-upload-spans` value: `<index>:<16 hex>` naming a link
/// payload, the first for an index; the rest are dropped.
fn parse_upload_spans(value: &str, is_link: impl Fn(usize) -> bool) -> Vec<(usize, [u8; 8])> {
    let mut spans: Vec<(usize, [u8; 8])> = Vec::new();
    for entry in value.split(',') {
        let Some((index, span)) = entry.trim().split_once(':') else { continue };
        let (Ok(index), Some(span)) = (index.parse::<usize>(), lower_hex::<8>(span.as_bytes())) else { continue };
        if span != [0; 8] && is_link(index) && !spans.iter().any(|(i, _)| *i == index) {
            spans.push((index, span));
        }
    }
    spans
}

/// Printable ASCII and spaces: what a NATS header value can carry on one line.
fn header_safe(value: &str) -> bool {
    value.bytes().all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
}

fn truncated(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_round_trips_and_malformed_ones_are_none() {
        let tp = Traceparent::parse(PARENT).unwrap();
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.span_id_hex(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        assert_eq!(tp.to_string(), PARENT);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
        ] {
            assert_eq!(Traceparent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_host_context_is_checked_and_written_as_headers() {
        let cx = TraceContext::from_host(PARENT, Some("congo=t61rcWkgMzE"), Some("")).unwrap();
        assert_eq!(cx.headers(), [(TRACEPARENT, PARENT.to_owned()), (TRACESTATE, "congo=t61rcWkgMzE".to_owned())]);
        let e = TraceContext::from_host("00-zz", None, None).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidArgument);
        assert!(e.message.contains("00-zz"), "{e}");
        let long = "k=".to_owned() + &"v".repeat(MAX_TRACESTATE_BYTES);
        assert_eq!(TraceContext::from_host(PARENT, Some(&long), None).unwrap_err().code, e.code);
        assert_eq!(TraceContext::from_host(PARENT, None, Some("a=1\r\nb: 2")).unwrap_err().code, e.code);
    }

    #[test]
    fn received_headers_keep_only_what_is_well_formed() {
        let long_baggage = "k=".to_owned() + &"v".repeat(MAX_BAGGAGE_BYTES);
        let headers = |name: &str| match name {
            TRACEPARENT => Some(PARENT),
            TRACESTATE => Some("a=b"),
            BAGGAGE => Some(long_baggage.as_str()),
            UPLOAD_SPANS => Some(
                "1:53995c3f42cd8ad8, 2:00f067aa0ba902b7,1:1111111111111111,x:1,3:0000000000000000,9:53995c3f42cd8ad8,3:ABCDEF0123456789",
            ),
            _ => None,
        };
        let cx = TraceContext::from_headers(headers, |i| i < 4).unwrap();
        assert_eq!(cx.traceparent, Traceparent::parse(PARENT).unwrap());
        assert_eq!(cx.tracestate.as_deref(), Some("a=b"));
        assert_eq!(cx.baggage, None, "baggage over 8192 bytes is dropped");
        assert_eq!(
            cx.upload_spans,
            [
                (1, [0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8]),
                (2, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
            ]
        );
        assert_eq!(cx.upload_span(2), Some(cx.upload_spans[1].1));
        assert_eq!(cx.upload_span(3), None);
        assert_eq!(TraceContext::from_headers(|_| Some("nonsense"), |_| true), None);
        assert_eq!(TraceContext::from_headers(|_| None, |_| true), None);
    }

    #[test]
    fn upload_spans_are_written_as_index_and_span_id() {
        let mut cx = TraceContext::from_host(PARENT, None, None).unwrap();
        cx.upload_spans = vec![(0, [1; 8]), (2, [0xab; 8])];
        assert_eq!(cx.headers()[1], (UPLOAD_SPANS, "0:0101010101010101,2:abababababababab".to_owned()));
    }
}
