//! What a client sent and received, counted (spec/PROTOCOL.md §13.3). Every client keeps its
//! counts, which a binding reads as a [`Metrics`] snapshot; with the `otel` feature they are also
//! recorded into OpenTelemetry instruments of the meter provider installed when the client
//! connected. A count is a relaxed atomic add: a few nanoseconds a message.

use crate::protocol::{Envelope, Transport};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Counts by where the bytes went: NATS itself (envelopes, with their direct payloads) or the
/// link store (link payloads).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByTransport {
    pub direct: u64,
    pub link: u64,
}

/// A client's counts since it connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    pub messages_sent: u64,
    pub messages_received: u64,
    pub payloads_sent: ByTransport,
    pub payloads_received: ByTransport,
    /// Envelope bytes published (`direct`) and link payload bytes uploaded (`link`).
    pub bytes_sent: ByTransport,
    /// Envelope bytes received (`direct`) and link payload bytes downloaded and verified (`link`).
    pub bytes_received: ByTransport,
    /// Download attempts after a first one failed.
    pub download_retries: u64,
    pub checksum_failures: u64,
    /// Link payloads downloaded and verified, and the time they took in all (first request to
    /// verified bytes).
    pub downloads: u64,
    pub download_time: Duration,
}

impl Metrics {
    /// As a JSON object with the spec's names (§13.3), durations in milliseconds:
    /// `messages_sent`, `messages_received`, `payloads_sent`, `payloads_received`, `bytes_sent`,
    /// `bytes_received` (each `{"direct": n, "link": n}`), `download_retries`,
    /// `checksum_failures`, `downloads`, `download_time_ms`.
    pub fn to_json(&self) -> serde_json::Value {
        let pair = |t: ByTransport| serde_json::json!({"direct": t.direct, "link": t.link});
        serde_json::json!({
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "payloads_sent": pair(self.payloads_sent),
            "payloads_received": pair(self.payloads_received),
            "bytes_sent": pair(self.bytes_sent),
            "bytes_received": pair(self.bytes_received),
            "download_retries": self.download_retries,
            "checksum_failures": self.checksum_failures,
            "downloads": self.downloads,
            "download_time_ms": self.download_time.as_secs_f64() * 1000.0,
        })
    }
}

#[derive(Default)]
struct Pair {
    direct: AtomicU64,
    link: AtomicU64,
}

impl Pair {
    fn add(&self, transport: Transport, n: u64) {
        match transport {
            Transport::Direct => self.direct.fetch_add(n, Relaxed),
            Transport::Link => self.link.fetch_add(n, Relaxed),
        };
    }

    fn get(&self) -> ByTransport {
        ByTransport { direct: self.direct.load(Relaxed), link: self.link.load(Relaxed) }
    }
}

/// The counters of one client (made when it connects: its instruments come from the meter
/// provider installed then).
#[derive(Default)]
pub(super) struct Counters {
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    payloads_sent: Pair,
    payloads_received: Pair,
    bytes_sent: Pair,
    bytes_received: Pair,
    download_retries: AtomicU64,
    checksum_failures: AtomicU64,
    downloads: AtomicU64,
    download_nanos: AtomicU64,
    #[cfg(feature = "otel")]
    instruments: otel::Instruments,
}

impl Counters {
    pub(super) fn snapshot(&self) -> Metrics {
        Metrics {
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            payloads_sent: self.payloads_sent.get(),
            payloads_received: self.payloads_received.get(),
            bytes_sent: self.bytes_sent.get(),
            bytes_received: self.bytes_received.get(),
            download_retries: self.download_retries.load(Relaxed),
            checksum_failures: self.checksum_failures.load(Relaxed),
            downloads: self.downloads.load(Relaxed),
            download_time: Duration::from_nanos(self.download_nanos.load(Relaxed)),
        }
    }

    /// A message published: `envelope` with its payloads' transports, `envelope_bytes` its JSON.
    pub(super) fn sent(&self, envelope: &Envelope, envelope_bytes: usize) {
        self.messages_sent.fetch_add(1, Relaxed);
        self.bytes_sent.add(Transport::Direct, envelope_bytes as u64);
        for p in &envelope.payloads {
            let transport = if p.transport == "link" { Transport::Link } else { Transport::Direct };
            self.payloads_sent.add(transport, 1);
            if transport == Transport::Link {
                self.bytes_sent.add(Transport::Link, p.size);
            }
        }
        #[cfg(feature = "otel")]
        self.instruments.sent(envelope, envelope_bytes);
    }

    /// A message received and decoded: its payloads' transports, and its envelope's bytes.
    pub(super) fn received(&self, transports: impl Iterator<Item = Transport>, envelope_bytes: usize) {
        self.messages_received.fetch_add(1, Relaxed);
        self.bytes_received.add(Transport::Direct, envelope_bytes as u64);
        let (mut direct, mut link) = (0, 0);
        for t in transports {
            match t {
                Transport::Direct => direct += 1,
                Transport::Link => link += 1,
            }
        }
        self.payloads_received.add(Transport::Direct, direct);
        self.payloads_received.add(Transport::Link, link);
        #[cfg(feature = "otel")]
        self.instruments.received(direct, link, envelope_bytes);
    }

    /// A link payload downloaded and verified: `bytes` of it, in `took`.
    pub(super) fn downloaded(&self, bytes: u64, took: Duration) {
        self.bytes_received.add(Transport::Link, bytes);
        self.downloads.fetch_add(1, Relaxed);
        self.download_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        #[cfg(feature = "otel")]
        self.instruments.downloaded(bytes, took);
    }

    pub(super) fn download_retried(&self) {
        self.download_retries.fetch_add(1, Relaxed);
        #[cfg(feature = "otel")]
        self.instruments.download_retries.add(1, &[]);
    }

    pub(super) fn checksum_failed(&self) {
        self.checksum_failures.fetch_add(1, Relaxed);
        #[cfg(feature = "otel")]
        self.instruments.checksum_failures.add(1, &[]);
    }
}

#[cfg(feature = "otel")]
mod otel {
    use crate::protocol::Envelope;
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::{Counter, Histogram};
    use std::time::Duration;

    /// The instruments of spec/PROTOCOL.md §13.3, from the meter provider installed when the
    /// client connected (none installed: they record nothing).
    pub(super) struct Instruments {
        messages_sent: Counter<u64>,
        messages_received: Counter<u64>,
        payloads_sent: Counter<u64>,
        payloads_received: Counter<u64>,
        bytes_sent: Counter<u64>,
        bytes_received: Counter<u64>,
        pub(super) download_retries: Counter<u64>,
        pub(super) checksum_failures: Counter<u64>,
        download_duration: Histogram<f64>,
        direct: [KeyValue; 1],
        link: [KeyValue; 1],
    }

    impl Default for Instruments {
        fn default() -> Instruments {
            Instruments::new()
        }
    }

    impl Instruments {
        pub(super) fn new() -> Instruments {
            let meter = opentelemetry::global::meter("natsbridge");
            let counter = |name: &'static str, unit: &'static str, description: &'static str| {
                meter.u64_counter(name).with_unit(unit).with_description(description).build()
            };
            Instruments {
                messages_sent: counter("natsbridge.messages.sent", "{message}", "Messages published"),
                messages_received: counter(
                    "natsbridge.messages.received",
                    "{message}",
                    "Messages received and decoded",
                ),
                payloads_sent: counter("natsbridge.payloads.sent", "{payload}", "Payloads sent, by transport"),
                payloads_received: counter(
                    "natsbridge.payloads.received",
                    "{payload}",
                    "Payloads received, by transport",
                ),
                bytes_sent: counter("natsbridge.bytes.sent", "By", "Envelope bytes published and link bytes uploaded"),
                bytes_received: counter(
                    "natsbridge.bytes.received",
                    "By",
                    "Envelope bytes received and link bytes downloaded",
                ),
                download_retries: counter(
                    "natsbridge.download.retries",
                    "{retry}",
                    "Download attempts after a failure",
                ),
                checksum_failures: counter(
                    "natsbridge.checksum.failures",
                    "{failure}",
                    "Link payloads whose size or sha256 was not the sender's",
                ),
                download_duration: meter
                    .f64_histogram("natsbridge.download.duration")
                    .with_unit("s")
                    .with_description("One link payload, first request to verified bytes")
                    .build(),
                direct: [KeyValue::new("natsbridge.transport", "direct")],
                link: [KeyValue::new("natsbridge.transport", "link")],
            }
        }

        pub(super) fn sent(&self, envelope: &Envelope, envelope_bytes: usize) {
            self.messages_sent.add(1, &[]);
            self.bytes_sent.add(envelope_bytes as u64, &self.direct);
            for p in &envelope.payloads {
                if p.transport == "link" {
                    self.payloads_sent.add(1, &self.link);
                    self.bytes_sent.add(p.size, &self.link);
                } else {
                    self.payloads_sent.add(1, &self.direct);
                }
            }
        }

        pub(super) fn received(&self, direct: u64, link: u64, envelope_bytes: usize) {
            self.messages_received.add(1, &[]);
            self.bytes_received.add(envelope_bytes as u64, &self.direct);
            if direct > 0 {
                self.payloads_received.add(direct, &self.direct);
            }
            if link > 0 {
                self.payloads_received.add(link, &self.link);
            }
        }

        pub(super) fn downloaded(&self, bytes: u64, took: Duration) {
            self.bytes_received.add(bytes, &self.link);
            self.download_duration.record(took.as_secs_f64(), &[]);
        }
    }
}
