//! The receive side of the claim-check rules as a sans-IO machine (spec/PROTOCOL.md §7.3, §9.2):
//! which link URL may be fetched and from which store, the download cap, the retry schedule,
//! what each kind of failure means, and the size and sha256 checks of what arrives.
//!
//! A driver (core's tokio client, the browser's JS) asks [`ReceivePlan::step`] what to fetch,
//! fetches it, and hands back the bytes or what went wrong; the plan never touches a socket.

use super::{Data, DecodedPayload, Envelope, PayloadSource, PayloadType, Transport, UrlScope, decode_message};
use crate::error::{Error, ErrorCode, Result};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

/// Link payloads whose declared size is larger are refused (PAYLOAD_TOO_LARGE) by default.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 4 << 30;

/// Download retry policy: `retries` attempts in all, sleeping `base_delay`, then doubling up to
/// `max_delay` between them (the seeds' defaults: 5, 100 ms, 5000 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_millis(5000) }
    }
}

impl RetryPolicy {
    /// The sleep after failed attempt `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Where a receive may fetch links from, and its limits.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiveRules {
    /// The URL scopes of each link source, indexed as the driver numbers its sources. A link
    /// goes to the first source whose scope matches it; a link no source serves is refused.
    pub sources: Vec<Vec<UrlScope>>,
    pub retry: RetryPolicy,
    pub max_download_bytes: u64,
    pub limits: ReceiveLimits,
}

impl Default for ReceiveRules {
    fn default() -> Self {
        ReceiveRules {
            sources: Vec::new(),
            retry: RetryPolicy::default(),
            max_download_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            limits: ReceiveLimits::default(),
        }
    }
}

/// What one received message may hold (spec/PROTOCOL.md §9.4), checked while it is decoded, so
/// a message from anyone who can publish on the subject cannot make the receiver build
/// unbounded values. Each has a safe default; a connection's settings change them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReceiveLimits {
    /// Payloads in one envelope; more is INVALID_ENVELOPE.
    pub max_payloads: usize,
    /// The declared sizes of all payloads together (direct and link); more is PAYLOAD_TOO_LARGE.
    pub max_message_bytes: u64,
    /// Nesting of arrays and objects in a dictionary or jsontable payload (at most
    /// [`MAX_JSON_DEPTH`]); deeper is PAYLOAD_TOO_LARGE.
    pub max_json_depth: usize,
    /// Columns of an arrowtable payload; more is PAYLOAD_TOO_LARGE.
    pub max_arrow_columns: usize,
    /// Record batches of an arrowtable payload; more is PAYLOAD_TOO_LARGE.
    pub max_arrow_batches: usize,
    /// Values (rows, and the values of every column) an arrowtable payload may hold beyond
    /// [`ARROW_VALUES_PER_BYTE`](super::arrow::ARROW_VALUES_PER_BYTE) per byte of its stream; more
    /// is PAYLOAD_TOO_LARGE. Bounds what a row view (JSON rows, a pandas frame) expands to.
    pub max_arrow_values: u64,
}

/// The deepest JSON nesting a receiver accepts at all: serde_json's recursion limit, which keeps
/// the parser's stack bounded.
pub const MAX_JSON_DEPTH: usize = 128;

impl Default for ReceiveLimits {
    fn default() -> Self {
        ReceiveLimits {
            max_payloads: 10_000,
            max_message_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            max_json_depth: MAX_JSON_DEPTH,
            max_arrow_columns: 10_000,
            max_arrow_batches: 100_000,
            max_arrow_values: 1_000_000,
        }
    }
}

/// What went wrong with one download attempt, as the driver saw it. The plan decides whether
/// it is worth another attempt and which error it is.
#[derive(Clone, Debug, PartialEq)]
pub enum FetchFailure {
    /// The server answered with a non-2xx status. `detail`: a 3xx's Location, else the start
    /// of the body.
    Status { status: u16, detail: String },
    /// The server announced a body length other than the envelope's size.
    Announced(u64),
    /// The connection failed or broke: refused, reset, timed out, a body cut off.
    Network(String),
    /// The object or file does not exist.
    NotFound(String),
    /// The store checked the bytes against its own digest and they differ.
    DigestMismatch(String),
    /// Nothing to retry: a host handler that retries on its own failed, a malformed link.
    Final(Error),
}

/// One download to make.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkFetch {
    /// The payload's index in the envelope.
    pub payload: usize,
    /// Which of the driver's sources serves the URL.
    pub source: usize,
    pub url: String,
    /// The envelope's `size`: read at most one byte more.
    pub size: u64,
    /// The envelope's `metadata.sha256`, when it has one.
    pub sha256: Option<String>,
    /// 1 for the first try.
    pub attempt: u32,
    /// Sleep this long before the attempt (zero for the first).
    pub delay: Duration,
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiveStep {
    /// Fetch a link and answer with [`ReceivePlan::fetched`] or [`ReceivePlan::fetch_failed`].
    /// Every fetch handed out before a `Wait` may run at the same time.
    Fetch(LinkFetch),
    /// Fetches are running: hand back the next result.
    Wait,
    /// Every payload is here: call [`ReceivePlan::finish`].
    Done,
}

/// A received payload: the seeds' `(dataname, data, payload_type)`, plus how it travelled.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub dataname: String,
    pub payload_type: PayloadType,
    pub data: Data,
    pub transport: Transport,
}

/// A decoded message. `envelope.payloads` keeps the wire payloads (ids, metadata, URLs);
/// `payloads` holds the decoded values in the same order.
#[derive(Clone, Debug)]
pub struct Received {
    pub envelope: Envelope,
    pub payloads: Vec<Incoming>,
    /// The subject the message arrived on (None when decoded from bytes).
    pub subject: Option<String>,
    /// The NATS reply subject of the message, if it had one.
    pub reply: Option<String>,
    /// The sender's trace context from the message's headers (spec/PROTOCOL.md §13.1).
    pub trace: Option<super::TraceContext>,
}

/// One received message on its way to the host: direct payloads are decoded and verified, link
/// payloads wait for their bytes.
pub struct ReceivePlan {
    envelope: Envelope,
    limits: ReceiveLimits,
    decoded: Vec<DecodedPayload>,
    fetched: Vec<Option<Bytes>>,
    queue: VecDeque<LinkFetch>,
    running: usize,
    planned: bool,
    failed: Option<Error>,
}

impl ReceivePlan {
    /// Parses the message and checks every payload (spec/PROTOCOL.md §9.2 steps 1 and 2) within
    /// `limits`, which also bound what [`finish`](Self::finish) builds.
    pub fn new(message: &[u8], limits: &ReceiveLimits) -> Result<ReceivePlan> {
        let (envelope, decoded) = decode_message(message, limits)?;
        let fetched = vec![None; decoded.len()];
        let limits = *limits;
        let plan = ReceivePlan {
            envelope,
            limits,
            decoded,
            fetched,
            queue: VecDeque::new(),
            running: 0,
            planned: false,
            failed: None,
        };
        Ok(plan)
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    pub fn correlation_id(&self) -> &str {
        &self.envelope.correlation_id
    }

    /// Whether any payload is a link (a direct-only message needs no rules and no driver).
    pub fn has_links(&self) -> bool {
        self.decoded.iter().any(|p| matches!(p.source, PayloadSource::Link(_)))
    }

    /// The error that ends this receive, once there is one.
    pub fn failure(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Whether payload `i` is a link.
    pub fn is_link(&self, i: usize) -> bool {
        self.decoded.get(i).is_some_and(|p| matches!(p.source, PayloadSource::Link(_)))
    }

    /// Payload `i`'s name, type and declared size.
    pub fn payload(&self, i: usize) -> (&str, PayloadType, u64) {
        let p = &self.decoded[i];
        (&p.dataname, p.payload_type, p.size)
    }

    /// The next thing to do. Before the first fetch every link is checked against the sources
    /// and the download cap, so a message with one refused link makes no request at all.
    pub fn step(&mut self, rules: &ReceiveRules) -> Result<ReceiveStep> {
        if !self.planned {
            self.planned = true;
            if let Err(e) = self.plan(rules) {
                self.fail(e);
            }
        }
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(fetch) = self.queue.pop_front() {
            self.running += 1;
            return Ok(ReceiveStep::Fetch(fetch));
        }
        Ok(if self.running > 0 { ReceiveStep::Wait } else { ReceiveStep::Done })
    }

    fn plan(&mut self, rules: &ReceiveRules) -> Result<()> {
        for (i, p) in self.decoded.iter().enumerate() {
            let PayloadSource::Link(url) = &p.source else { continue };
            let Some(source) = rules.sources.iter().position(|scopes| scopes.iter().any(|s| s.matches(url))) else {
                return Err(Error::new(
                    ErrorCode::UrlNotAllowed,
                    format!(
                        "payload {:?} links to {}, which is not an allowed origin; no request was made",
                        p.dataname,
                        display_url(url)
                    ),
                ));
            };
            if p.size > rules.max_download_bytes {
                return Err(Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "payload {:?} is {} bytes, over the download limit of {}",
                        p.dataname, p.size, rules.max_download_bytes
                    ),
                ));
            }
            self.queue.push_back(LinkFetch {
                payload: i,
                source,
                url: url.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
                attempt: 1,
                delay: Duration::ZERO,
            });
        }
        Ok(())
    }

    fn fail(&mut self, e: Error) {
        if self.failed.is_none() {
            self.failed = Some(e.with_correlation_id(&self.envelope.correlation_id));
        }
    }

    /// The bytes of a fetch. `sha256`: their hex digest when the store already has it (a store
    /// that checked the bytes against its own digest, or the host's faster hash); else they are
    /// hashed here. Checks the declared size and sha256 (CHECKSUM_MISMATCH).
    pub fn fetched(&mut self, fetch: &LinkFetch, bytes: Bytes, sha256: Option<&str>) {
        self.running -= 1;
        let p = &self.decoded[fetch.payload];
        let checked = match (sha256, &p.sha256) {
            (Some(actual), Some(expected)) if !actual.eq_ignore_ascii_case(expected) => Err(Error::new(
                ErrorCode::ChecksumMismatch,
                format!("payload {:?} sha256 is {actual}, metadata says {expected}", p.dataname),
            )),
            (Some(_), _) => p.verify_size(&bytes),
            (None, _) => p.verify(&bytes),
        };
        match checked {
            Ok(()) => self.fetched[fetch.payload] = Some(bytes),
            Err(e) => self.fail(e),
        }
    }

    /// A fetch failed: it is tried again after the policy's delay while that can help and
    /// attempts remain; otherwise the receive fails.
    pub fn fetch_failed(&mut self, fetch: &LinkFetch, failure: FetchFailure, rules: &ReceiveRules) {
        self.running -= 1;
        match retry_after(fetch, failure, rules) {
            Ok(delay) => self.queue.push_back(LinkFetch { attempt: fetch.attempt + 1, delay, ..fetch.clone() }),
            Err(e) => self.fail(e),
        }
    }

    /// For a receiver that streams its links: every link is checked against `rules` as
    /// [`step`](Self::step) checks them (a refused one fails the whole message before any
    /// request), then each payload is either decoded (direct) or the first fetch of its link
    /// with the [`LinkCheck`] its bytes go through.
    pub fn into_streams(mut self, rules: &ReceiveRules) -> Result<(Envelope, Vec<StreamPart>)> {
        let cid = self.envelope.correlation_id.clone();
        self.plan(rules).map_err(|e| e.with_correlation_id(&cid))?;
        let mut fetches = self.queue.into_iter().peekable();
        let mut parts = Vec::with_capacity(self.decoded.len());
        for (i, p) in self.decoded.into_iter().enumerate() {
            if fetches.peek().is_some_and(|f| f.payload == i) {
                let fetch = fetches.next().expect("peeked");
                let check = LinkCheck::new(&p.dataname, p.size, p.sha256.clone());
                parts.push(StreamPart::Link { dataname: p.dataname, payload_type: p.payload_type, fetch, check });
            } else {
                parts.push(StreamPart::Value(
                    p.into_incoming(None, &self.limits).map_err(|e| e.with_correlation_id(&cid))?,
                ));
            }
        }
        Ok((self.envelope, parts))
    }

    /// The decoded payloads in envelope order (DESERIALIZATION_ERROR for bytes that do not match
    /// their type), once `step` said `Done`.
    pub fn finish(self) -> Result<Received> {
        let cid = self.envelope.correlation_id.clone();
        let mut payloads = Vec::with_capacity(self.decoded.len());
        for (p, fetched) in self.decoded.into_iter().zip(self.fetched) {
            payloads.push(p.into_incoming(fetched, &self.limits).map_err(|e| e.with_correlation_id(&cid))?);
        }
        Ok(Received { envelope: self.envelope, payloads, subject: None, reply: None, trace: None })
    }
}

/// One payload of a message received for streaming ([`ReceivePlan::into_streams`]).
#[derive(Debug)]
pub enum StreamPart {
    /// A direct payload, decoded and verified.
    Value(Incoming),
    /// A link payload: its first fetch, and the check its bytes go through as they arrive.
    Link { dataname: String, payload_type: PayloadType, fetch: LinkFetch, check: LinkCheck },
}

/// The size and sha256 check of a link payload's bytes as they arrive, for a receiver that does
/// not hold them all (spec/PROTOCOL.md §9.2): more bytes than the declared size fail at once,
/// fewer or other bytes fail at the end, with CHECKSUM_MISMATCH either way.
#[derive(Clone, Debug)]
pub struct LinkCheck {
    dataname: String,
    size: u64,
    sha256: Option<String>,
    hasher: sha2::Sha256,
    received: u64,
}

impl LinkCheck {
    pub fn new(dataname: &str, size: u64, sha256: Option<String>) -> LinkCheck {
        LinkCheck { dataname: dataname.to_owned(), size, sha256, hasher: sha2::Sha256::default(), received: 0 }
    }

    /// The bytes checked so far: where a resumed download starts.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The envelope's `size`.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn update(&mut self, chunk: &[u8]) -> Result<()> {
        use sha2::Digest;
        let received = self.received + chunk.len() as u64;
        if received > self.size {
            return Err(self.size_error(received, "at least "));
        }
        self.hasher.update(chunk);
        self.received = received;
        Ok(())
    }

    /// Once the body ended: its size, and its sha256 against the envelope's and against
    /// `store_sha256`, the digest a store keeps of its own (the object store's). Returns the
    /// bytes' hex sha256.
    pub fn finish(self, store_sha256: Option<&str>) -> Result<String> {
        use sha2::Digest;
        if self.received != self.size {
            return Err(self.size_error(self.received, ""));
        }
        let actual = hex::encode(self.hasher.finalize());
        for (expected, whose) in [(self.sha256.as_deref(), "metadata says"), (store_sha256, "the store says")] {
            if let Some(expected) = expected.filter(|e| !e.eq_ignore_ascii_case(&actual)) {
                return Err(Error::new(
                    ErrorCode::ChecksumMismatch,
                    format!("payload {:?} sha256 is {actual}, {whose} {expected}", self.dataname),
                ));
            }
        }
        Ok(actual)
    }

    fn size_error(&self, received: u64, at_least: &str) -> Error {
        Error::new(
            ErrorCode::ChecksumMismatch,
            format!("payload {:?} declares size {} but has {at_least}{received} bytes", self.dataname, self.size),
        )
    }
}

/// What a failed attempt at `fetch` means (spec/PROTOCOL.md §7.3): Ok(the delay) to try again
/// after, while that can help and attempts remain; else the receive's error.
pub fn retry_after(fetch: &LinkFetch, failure: FetchFailure, rules: &ReceiveRules) -> Result<Duration> {
    let url = display_url(&fetch.url);
    let fatal = |code, what: String| Error::new(code, format!("GET {url}: {what}"));
    let retryable = match failure {
        // Redirects are never followed; one that leaves every allowed origin says so.
        FetchFailure::Status { status, detail } if (300..400).contains(&status) => {
            let target = url::Url::parse(&fetch.url).and_then(|base| base.join(&detail));
            let allowed = target.is_ok_and(|t| rules.sources.iter().flatten().any(|s| s.matches(t.as_str())));
            let (code, why) = if allowed {
                (ErrorCode::DownloadFailed, "redirects are not followed")
            } else {
                (ErrorCode::UrlNotAllowed, "not an allowed origin, not followed")
            };
            return Err(fatal(code, format!("HTTP {status}, redirected to {detail:?}: {why}")));
        }
        FetchFailure::Status { status, detail } => {
            let what = if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
            if status >= 500 || status == 429 {
                what
            } else {
                return Err(fatal(ErrorCode::DownloadFailed, what));
            }
        }
        FetchFailure::Network(what) => what,
        FetchFailure::Announced(n) => {
            let what = format!("the server announces {n} bytes, the envelope says {}", fetch.size);
            return Err(fatal(ErrorCode::ChecksumMismatch, what));
        }
        FetchFailure::NotFound(what) => return Err(fatal(ErrorCode::DownloadFailed, what)),
        FetchFailure::DigestMismatch(what) => return Err(fatal(ErrorCode::ChecksumMismatch, what)),
        FetchFailure::Final(e) => return Err(e),
    };
    let attempts = rules.retry.retries.max(1);
    if fetch.attempt >= attempts {
        return Err(Error::new(
            ErrorCode::DownloadFailed,
            format!("failed to fetch {url} after {attempts} attempts: {retryable}"),
        ));
    }
    Ok(rules.retry.delay_after(fetch.attempt))
}

/// A URL as shown in messages and logs: without the query (pre-signed URLs carry secrets there).
pub fn display_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Data, PayloadType, link_payload, sha256_hex};

    fn message(links: &[(&str, &[u8])]) -> Vec<u8> {
        let mut env = Envelope::new("s");
        for (i, (url, bytes)) in links.iter().enumerate() {
            let p =
                link_payload(&format!("p{i}"), PayloadType::Binary, bytes.len(), url.to_string(), sha256_hex(bytes));
            env.payloads.push(p);
        }
        env.to_json().into_bytes()
    }

    fn rules(retries: u32) -> ReceiveRules {
        ReceiveRules {
            sources: vec![
                vec![UrlScope::scheme("nats-obj")],
                vec![UrlScope::parse("http://files.local/store").unwrap()],
            ],
            retry: RetryPolicy {
                retries,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(250),
            },
            ..ReceiveRules::default()
        }
    }

    fn fetch(step: ReceiveStep) -> LinkFetch {
        match step {
            ReceiveStep::Fetch(f) => f,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn delays_double_and_cap() {
        let p = RetryPolicy::default();
        let ms: Vec<u128> = (1..=8).map(|a| p.delay_after(a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        let p = RetryPolicy { retries: 3, base_delay: Duration::from_millis(7), max_delay: Duration::from_millis(10) };
        assert_eq!(p.delay_after(40), Duration::from_millis(10));
    }

    #[test]
    fn links_go_to_the_source_that_serves_them_and_are_verified() {
        let msg = message(&[("http://files.local/store/a/x.bin", b"abc"), ("nats-obj://b/o", b"de")]);
        let (rules, mut plan) = (rules(5), ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap());
        let first = fetch(plan.step(&rules).unwrap());
        assert_eq!((first.payload, first.source, first.size, first.delay), (0, 1, 3, Duration::ZERO));
        let second = fetch(plan.step(&rules).unwrap());
        assert_eq!((second.payload, second.source), (1, 0));
        assert_eq!(plan.step(&rules).unwrap(), ReceiveStep::Wait);
        plan.fetched(&second, Bytes::from_static(b"de"), Some(&sha256_hex(b"de")));
        plan.fetched(&first, Bytes::from_static(b"abc"), None);
        assert_eq!(plan.step(&rules).unwrap(), ReceiveStep::Done);
        let received = plan.finish().unwrap();
        assert_eq!(received.payloads[0].data, Data::Bytes(Bytes::from_static(b"abc")));
        assert_eq!(received.payloads[1].transport, Transport::Link);
    }

    #[test]
    fn a_link_nobody_serves_is_refused_before_any_request() {
        let msg = message(&[("nats-obj://b/o", b"ok"), ("http://evil.example/x", b"x")]);
        let mut plan = ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap();
        let e = plan.step(&rules(5)).unwrap_err();
        assert_eq!(e.code, ErrorCode::UrlNotAllowed);
        assert!(e.correlation_id.is_some());
        let limited = ReceiveRules { max_download_bytes: 1, ..rules(5) };
        let e = ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap().step(&limited).unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn retryable_failures_back_off_until_attempts_run_out() {
        let msg = message(&[("http://files.local/store/a/x.bin", b"abc")]);
        let (rules, mut plan) = (rules(3), ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap());
        let mut f = fetch(plan.step(&rules).unwrap());
        let mut delays = Vec::new();
        for failure in
            [FetchFailure::Network("refused".into()), FetchFailure::Status { status: 503, detail: String::new() }]
        {
            plan.fetch_failed(&f, failure, &rules);
            f = fetch(plan.step(&rules).unwrap());
            delays.push(f.delay.as_millis());
        }
        assert_eq!((delays, f.attempt), (vec![100, 200], 3));
        plan.fetch_failed(&f, FetchFailure::Status { status: 429, detail: "slow down".into() }, &rules);
        let e = plan.step(&rules).unwrap_err();
        assert_eq!(e.code, ErrorCode::DownloadFailed);
        assert!(e.message.contains("after 3 attempts: HTTP 429: slow down"), "{}", e.message);
    }

    #[test]
    fn fatal_failures_end_at_once_with_their_codes() {
        let msg = message(&[("http://files.local/store/a/x.bin?sig=secret", b"abc")]);
        let cases = [
            (FetchFailure::Status { status: 404, detail: "gone".into() }, ErrorCode::DownloadFailed),
            // Redirects are not followed: within the allowed scope, or out of it (a web UI, another host).
            (FetchFailure::Status { status: 302, detail: "/store/b/y.bin".into() }, ErrorCode::DownloadFailed),
            (FetchFailure::Status { status: 302, detail: "/#/err".into() }, ErrorCode::UrlNotAllowed),
            (
                FetchFailure::Status { status: 307, detail: "http://evil.local/store/a".into() },
                ErrorCode::UrlNotAllowed,
            ),
            (FetchFailure::NotFound("no such object".into()), ErrorCode::DownloadFailed),
            (FetchFailure::Announced(4), ErrorCode::ChecksumMismatch),
            (FetchFailure::DigestMismatch("digest".into()), ErrorCode::ChecksumMismatch),
            (FetchFailure::Final(Error::new(ErrorCode::DownloadFailed, "handler")), ErrorCode::DownloadFailed),
        ];
        for (failure, code) in cases {
            let (rules, mut plan) = (rules(5), ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap());
            let f = fetch(plan.step(&rules).unwrap());
            plan.fetch_failed(&f, failure, &rules);
            let e = plan.step(&rules).unwrap_err();
            assert_eq!(e.code, code, "{}", e.message);
            assert!(!e.message.contains("secret"), "{}", e.message);
        }
    }

    #[test]
    fn wrong_bytes_are_checksum_mismatches() {
        let msg = message(&[("nats-obj://b/o", b"abc")]);
        for (bytes, sha) in [(&b"abcd"[..], None), (b"abd", None), (b"abc", Some("00"))] {
            let (rules, mut plan) = (rules(5), ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap());
            let f = fetch(plan.step(&rules).unwrap());
            plan.fetched(&f, Bytes::copy_from_slice(bytes), sha);
            assert_eq!(plan.step(&rules).unwrap_err().code, ErrorCode::ChecksumMismatch);
        }
    }

    #[test]
    fn a_link_check_passes_the_exact_bytes_in_any_chunks_and_nothing_else() {
        let bytes = b"the sender's bytes";
        let sha = sha256_hex(bytes);
        let check = |chunks: &[&[u8]], store: Option<&str>| {
            let mut c = LinkCheck::new("p", bytes.len() as u64, Some(sha.clone()));
            for chunk in chunks {
                c.update(chunk)?;
            }
            c.finish(store)
        };
        assert_eq!(check(&[&bytes[..4], b"", &bytes[4..]], Some(&sha)).unwrap(), sha);
        // One byte too many fails as it arrives; one too few, or other bytes, at the end.
        let more = check(&[bytes, b"!"], None).unwrap_err();
        assert_eq!((more.code, more.message.contains("at least 19 bytes")), (ErrorCode::ChecksumMismatch, true));
        let fewer = check(&[&bytes[1..]], None).unwrap_err();
        assert_eq!((fewer.code, fewer.message.contains("has 17 bytes")), (ErrorCode::ChecksumMismatch, true));
        let other = check(&[b"the sender's bytez"], None).unwrap_err();
        assert!(other.code == ErrorCode::ChecksumMismatch && other.message.contains("metadata says"), "{other}");
        // The store's own digest is checked too (the object store's).
        let store = check(&[bytes], Some(&sha256_hex(b"x"))).unwrap_err();
        assert!(store.code == ErrorCode::ChecksumMismatch && store.message.contains("the store says"), "{store}");
    }

    #[test]
    fn streams_are_planned_as_the_buffered_receive_checks_links() {
        let msg = message(&[("http://files.local/store/a", b"aaaa"), ("nats-obj://b/x", b"bb")]);
        let (env, parts) = ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap().into_streams(&rules(5)).unwrap();
        assert_eq!(env.payloads.len(), 2);
        let fetches: Vec<_> = parts
            .iter()
            .map(|p| match p {
                StreamPart::Link { fetch, check, .. } => (fetch.source, fetch.url.as_str(), check.size()),
                StreamPart::Value(v) => panic!("a direct payload {v:?}"),
            })
            .collect();
        assert_eq!(fetches, [(1, "http://files.local/store/a", 4), (0, "nats-obj://b/x", 2)]);
        // A link no source serves refuses the whole message before any fetch.
        let msg = message(&[("http://files.local/store/a", b"aaaa"), ("http://elsewhere/x", b"bb")]);
        let e = ReceivePlan::new(&msg, &ReceiveLimits::default()).unwrap().into_streams(&rules(5)).err().unwrap();
        assert_eq!(e.code, ErrorCode::UrlNotAllowed);
        assert!(e.correlation_id.is_some());
    }
}
