//! Link payloads read as streams (spec/PROTOCOL.md §8.3.2): one link's attempts, resumes and the
//! size and sha256 check of its bytes as they arrive, which js/natsbridge.js's `LinkStream`
//! drives. The rules are core's: the check is `LinkCheck`, what a failed attempt means is
//! `retry_after`, what an HTTP answer's head means is `HttpHead` (as core's own link streams use
//! them, core/src/io/link_stream.rs).

use crate::options::*;
use crate::send::*;
use crate::*;
use natsbridge::protocol::ContentRange;
use std::time::Duration;

/// One link payload's bytes on their way to the page. The host asks `open()` where to read
/// from, reports the answer's head (`httpHead` / `objectHead`), hands every chunk of the body to
/// `chunk` (which says how many of its first bytes were already delivered), and calls `end()`
/// when the body ended, or `failed(fact)` when the attempt broke. Each of these throws the
/// stream's error when it is final (DOWNLOAD_FAILED once the retries are spent, CHECKSUM_MISMATCH
/// for other bytes, URL_NOT_ALLOWED for a redirect out of the allowed origins), with the
/// message's correlation id; after it, or after `end()`, the reading is over.
#[wasm_bindgen]
pub struct LinkReading {
    dataname: String,
    payload_type: PayloadType,
    store: Store,
    rules: ReceiveRules,
    fetch: LinkFetch,
    correlation_id: String,
    /// None once the stream ended or failed.
    check: Option<LinkCheck>,
    /// Bytes at the start of the current body that were already delivered (a store that cannot
    /// start where the last attempt stopped sends them again).
    skip: u64,
    /// The object store's own digest of the bytes, as hex.
    store_sha256: Option<String>,
    sha256: Option<String>,
}

impl LinkReading {
    pub(crate) fn new(
        dataname: String,
        payload_type: PayloadType,
        fetch: LinkFetch,
        check: LinkCheck,
        config: &Config,
        correlation_id: &str,
    ) -> LinkReading {
        LinkReading {
            dataname,
            payload_type,
            store: config.stores[fetch.source],
            rules: config.rules.clone(),
            fetch,
            correlation_id: correlation_id.to_owned(),
            check: Some(check),
            skip: 0,
            store_sha256: None,
            sha256: None,
        }
    }

    fn check(&self) -> JsResult<&LinkCheck> {
        self.check.as_ref().ok_or_else(|| {
            let e = Error::invalid_argument(format!("the stream of {:?} is over", self.dataname));
            to_js(e.with_correlation_id(&self.correlation_id))
        })
    }

    /// The stream fails with `e`.
    fn end_with(&mut self, e: Error) -> JsValue {
        self.check = None;
        to_js(e.with_correlation_id(&self.correlation_id))
    }

    /// A failed attempt: Ok when another is due (after `open()`'s delay), else the stream's error.
    fn attempt_failed(&mut self, failure: FetchFailure) -> JsResult<()> {
        match retry_after(&self.fetch, failure, &self.rules) {
            Ok(delay) => {
                self.fetch.attempt += 1;
                self.fetch.delay = delay;
                Ok(())
            }
            Err(e) => Err(self.end_with(e)),
        }
    }
}

#[wasm_bindgen]
impl LinkReading {
    #[wasm_bindgen(getter)]
    pub fn dataname(&self) -> String {
        self.dataname.clone()
    }

    #[wasm_bindgen(getter, js_name = payloadType)]
    pub fn payload_type(&self) -> String {
        self.payload_type.as_str().to_owned()
    }

    /// The envelope's size of the payload.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> f64 {
        self.fetch.size as f64
    }

    /// The hex sha256 of the bytes once `end()` checked them; undefined before.
    #[wasm_bindgen(getter)]
    pub fn sha256(&self) -> Option<String> {
        self.sha256.clone()
    }

    /// Where to read next: `{store: "object", bucket, name, delayMs, attempt}` (the object store
    /// has no ranges: it is read from the start) or `{store: "http", url, range, delayMs,
    /// attempt}` (`range`: the `Range` header asking for the bytes not delivered yet, or
    /// undefined). Sleep `delayMs` first.
    #[wasm_bindgen(
        unchecked_return_type = "{ store: string; bucket?: string; name?: string; url?: string; range?: string; delayMs: number; attempt: number }"
    )]
    pub fn open(&mut self) -> JsResult<JsValue> {
        loop {
            let received = self.check()?.received();
            let o = js_sys::Object::new();
            if self.store == Store::Object {
                match ObjectLink::parse(&self.fetch.url) {
                    Ok(link) => {
                        set(&o, "store", &"object".into());
                        set(&o, "bucket", &link.bucket.into());
                        set(&o, "name", &link.name.into());
                    }
                    Err(failure) => {
                        self.attempt_failed(failure)?;
                        continue;
                    }
                }
            } else {
                set(&o, "store", &"http".into());
                set(&o, "url", &self.fetch.url.as_str().into());
                if received > 0 && received < self.fetch.size {
                    set(&o, "range", &format!("bytes={received}-").into());
                }
            }
            set(&o, "delayMs", &(self.fetch.delay.as_secs_f64() * 1000.0).into());
            set(&o, "attempt", &self.fetch.attempt.into());
            return Ok(o.into());
        }
    }

    /// The head of the HTTP answer (`status` undefined for an opaque redirect; `content_range`
    /// undefined when the server does not expose it to the page). Returns `{payload: true}`: read
    /// the body, each chunk through `chunk`; `{detail: n}`: an error answer, read at most `n` bytes
    /// of it and report `failed({status, detail})`; or null: the attempt failed, `open()` again.
    /// A `206` answers the range asked for: it starts where its `Content-Range` says (where it was
    /// asked to when the page cannot read that header), never past the bytes delivered.
    #[wasm_bindgen(js_name = httpHead, unchecked_return_type = "{ payload: true } | { detail: number } | null")]
    pub fn http_head(
        &mut self,
        status: Option<u16>,
        location: Option<String>,
        content_length: Option<f64>,
        content_range: Option<String>,
    ) -> JsResult<JsValue> {
        let offset = self.check()?.received();
        // A page sees no Content-Range the server does not expose: taken as hidden, not absent.
        let range = content_range.as_deref().map_or(ContentRange::Hidden, |r| ContentRange::Header(Some(r)));
        let start = match protocol::body_start(&self.fetch.url, status, range, offset) {
            Ok(start) => start,
            Err(failure) => {
                self.attempt_failed(failure)?;
                return Ok(JsValue::NULL);
            }
        };
        let announced = content_length.filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u64);
        let rest = self.fetch.size - start.min(self.fetch.size);
        let o = js_sys::Object::new();
        match HttpHead::of(&self.fetch.url, status, location.as_deref(), announced, rest) {
            HttpHead::Payload => {
                self.skip = offset - start;
                self.store_sha256 = None;
                set(&o, "payload", &true.into());
            }
            HttpHead::Detail => set(&o, "detail", &(protocol::HTTP_ERROR_DETAIL_BYTES as f64).into()),
            HttpHead::Fail(failure) => {
                self.attempt_failed(failure)?;
                return Ok(JsValue::NULL);
            }
        }
        Ok(o.into())
    }

    /// The object's info: its `size` (against the envelope's: CHECKSUM_MISMATCH before a byte is
    /// read) and `digest` (`SHA-256=<base64url>`, checked at the end). True: read its data from
    /// the start, each chunk through `chunk`; false: the attempt failed, `open()` again.
    #[wasm_bindgen(js_name = objectHead)]
    pub fn object_head(&mut self, size: f64, digest: Option<String>) -> JsResult<bool> {
        let received = self.check()?.received();
        if let Some(failure) = FetchFailure::announced(Some(size as u64), self.fetch.size) {
            self.attempt_failed(failure)?;
            return Ok(false);
        }
        self.skip = received;
        self.store_sha256 = digest.as_deref().and_then(protocol::object_digest_hex);
        Ok(true)
    }

    /// A chunk of the body, checked as it arrives (CHECKSUM_MISMATCH once there are more bytes
    /// than the size). Returns how many of its first bytes were already delivered by an earlier
    /// attempt: deliver the rest.
    pub fn chunk(&mut self, bytes: &[u8]) -> JsResult<u32> {
        self.check()?;
        let skipped = self.skip.min(bytes.len() as u64);
        self.skip -= skipped;
        let rest = &bytes[skipped as usize..];
        if !rest.is_empty() {
            let check = self.check.as_mut().expect("checked above");
            if let Err(e) = check.update(rest) {
                return Err(self.end_with(e));
            }
            // Bytes arrived: a later break starts a fresh count of attempts.
            self.fetch.attempt = 1;
            self.fetch.delay = Duration::ZERO;
        }
        Ok(skipped as u32)
    }

    /// The attempt broke (`fact` as `Receiving.fetchFailed` takes it: `{network}` for a failed
    /// request or a body cut off, `{digestMismatch}`, `{notFound}`, `{status, detail}`). Returns
    /// when another attempt is due (`open()` again); throws the stream's error otherwise.
    pub fn failed(&mut self, fact: &JsValue) -> JsResult<()> {
        self.check()?;
        self.attempt_failed(failure_of(fact))
    }

    /// The body ended: checks the size and the sha256 (the metadata's, and the object store's
    /// own digest). Returns the bytes' hex sha256; CHECKSUM_MISMATCH otherwise.
    pub fn end(&mut self) -> JsResult<String> {
        self.check()?;
        let check = self.check.take().expect("checked above");
        match check.finish(self.store_sha256.as_deref()) {
            Ok(sha256) => {
                self.sha256 = Some(sha256.clone());
                Ok(sha256)
            }
            Err(e) => Err(self.end_with(e)),
        }
    }
}
