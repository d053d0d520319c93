//! What a driver that makes its own link requests needs besides the machines (the browser's JS
//! fetches and talks to the object store itself): the object store's link URLs and digests, and
//! what the head of an HTTP answer means (spec/PROTOCOL.md §7.2, §7.3). Core's own stores follow
//! the same rules.

use super::{FetchFailure, display_url};
use crate::error::{Error, ErrorCode};

/// The scheme of JetStream object store links: `nats-obj://<bucket>/<object>`.
pub const OBJECT_STORE_SCHEME: &str = "nats-obj://";

/// The chunk size of object store uploads.
pub const OBJECT_STORE_CHUNK_SIZE: usize = 128 * 1024;

/// The most of an error answer's body a driver reads for the failure's detail.
pub const HTTP_ERROR_DETAIL_BYTES: usize = 512;

/// An object in a JetStream object store bucket, as a link names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLink {
    pub bucket: String,
    pub name: String,
}

impl ObjectLink {
    /// A new object in `bucket`, named by a fresh UUID.
    pub fn new(bucket: &str) -> ObjectLink {
        ObjectLink { bucket: bucket.to_owned(), name: super::new_id() }
    }

    /// The object a link names; a URL that names none is a failure not worth another attempt.
    pub fn parse(url: &str) -> Result<ObjectLink, FetchFailure> {
        match url.strip_prefix(OBJECT_STORE_SCHEME).and_then(|rest| rest.split_once('/')) {
            Some((bucket, name)) if !bucket.is_empty() && !name.is_empty() => {
                Ok(ObjectLink { bucket: bucket.to_owned(), name: name.to_owned() })
            }
            _ => Err(FetchFailure::Final(Error::new(
                ErrorCode::DownloadFailed,
                format!("not an object store URL: {}", display_url(url)),
            ))),
        }
    }

    pub fn url(&self) -> String {
        format!("{OBJECT_STORE_SCHEME}{}/{}", self.bucket, self.name)
    }
}

/// An object store digest (`SHA-256=<base64url>`, padded or not) as lowercase hex; None when it
/// is not one.
pub fn object_digest_hex(digest: &str) -> Option<String> {
    let b64 = digest.strip_prefix("SHA-256=")?.trim_end_matches('=');
    let bytes = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(b64).ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

/// What the head of an answer to a link GET means: redirects are never followed, the status is
/// read before the body, and a body announced at another length than the envelope's is not read.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpHead {
    /// Read at most `size + 1` bytes of the body and hand them to `ReceivePlan::fetched`.
    Payload,
    /// An error status: read at most [`HTTP_ERROR_DETAIL_BYTES`] of the body and report
    /// [`FetchFailure::http_status`] with them.
    Detail,
    /// Read nothing more; report this failure.
    Fail(FetchFailure),
}

impl HttpHead {
    /// `status`: None for a redirect whose status and target the driver cannot see (a browser's
    /// `redirect: "manual"` answer). `location`: a 3xx's Location header. `content_length`: the
    /// announced length. `size`: the envelope's.
    pub fn of(url: &str, status: Option<u16>, location: Option<&str>, content_length: Option<u64>, size: u64) -> Self {
        let Some(status) = status else {
            let refused = format!("GET {}: redirected, refusing", display_url(url));
            return HttpHead::Fail(FetchFailure::Final(Error::new(ErrorCode::DownloadFailed, refused)));
        };
        if (300..400).contains(&status) {
            return HttpHead::Fail(FetchFailure::Status { status, detail: location.unwrap_or_default().to_owned() });
        }
        if !(200..300).contains(&status) {
            return HttpHead::Detail;
        }
        match FetchFailure::announced(content_length, size) {
            Some(failure) => HttpHead::Fail(failure),
            None => HttpHead::Payload,
        }
    }
}

/// A GET answer's `Content-Range` header as the driver sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ContentRange<'a> {
    /// Its value, or None when the answer has none.
    Header(Option<&'a str>),
    /// The driver cannot read it: a browser's cross-origin answer that does not expose it.
    Hidden,
}

/// Where the body of an answer to a GET for the bytes from `offset` on starts in the object
/// (a retry resumes with `Range: bytes=<offset>-`): a 206 where its `Content-Range: bytes
/// <first>-<last>/<total>` says (where it was asked to when the header is hidden), any other
/// answer at 0. DOWNLOAD_FAILED for a 206 without a usable range, or one starting past `offset`
/// (the bytes between would be missing). The bytes before `offset` in the body were delivered
/// already: the driver skips them.
pub fn body_start(url: &str, status: Option<u16>, range: ContentRange<'_>, offset: u64) -> Result<u64, FetchFailure> {
    let start = match (status, range) {
        (Some(206), ContentRange::Header(header)) => header.and_then(content_range_start),
        (Some(206), ContentRange::Hidden) => Some(offset),
        _ => Some(0),
    };
    start.filter(|&start| start <= offset).ok_or_else(|| {
        let what = format!("GET {}: a partial answer without a usable Content-Range", display_url(url));
        FetchFailure::Final(Error::new(ErrorCode::DownloadFailed, what))
    })
}

/// The first byte of `bytes <first>-<last>/<total>`.
fn content_range_start(range: &str) -> Option<u64> {
    range.strip_prefix("bytes ")?.split_once('-')?.0.trim().parse().ok()
}

impl FetchFailure {
    /// A store announcing a length (an HTTP Content-Length, an object's info size) other than the
    /// envelope's `size`: no need to read the bytes.
    pub fn announced(announced: Option<u64>, size: u64) -> Option<FetchFailure> {
        announced.filter(|&n| n != size).map(FetchFailure::Announced)
    }

    /// A non-2xx status with the start of its body (up to [`HTTP_ERROR_DETAIL_BYTES`] read).
    pub fn http_status(status: u16, body: &[u8]) -> FetchFailure {
        let kept = &body[..body.len().min(HTTP_ERROR_DETAIL_BYTES)];
        let mut detail = String::from_utf8_lossy(kept).trim().to_owned();
        if body.len() >= HTTP_ERROR_DETAIL_BYTES {
            detail.push('…');
        }
        FetchFailure::Status { status, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_links_round_trip_and_refuse_other_urls() {
        let link = ObjectLink::new("natsbridge");
        assert_eq!(ObjectLink::parse(&link.url()).unwrap(), link);
        assert_eq!(ObjectLink::parse("nats-obj://b/dir/x").unwrap().name, "dir/x");
        for bad in ["nats-obj://b", "nats-obj:///x", "nats-obj://b/", "http://b/x?sig=secret"] {
            let Err(FetchFailure::Final(e)) = ObjectLink::parse(bad) else { panic!("{bad} parsed") };
            assert_eq!(e.code, ErrorCode::DownloadFailed);
            assert!(!e.message.contains("secret"), "{}", e.message);
        }
    }

    #[test]
    fn a_partial_answer_starts_where_its_content_range_says_never_past_the_bytes_delivered() {
        let header = |h: &'static str| ContentRange::Header(Some(h));
        let start = |status, range, offset| body_start("http://h/x", Some(status), range, offset).ok();
        assert_eq!(start(206, header("bytes 600000-1199999/1200000"), 600_000), Some(600_000));
        assert_eq!(start(206, header("bytes 500000-1199999/*"), 600_000), Some(500_000), "earlier: skip the overlap");
        assert_eq!(start(206, header("bytes 700000-1199999/1200000"), 600_000), None, "bytes would be missing");
        assert_eq!(start(206, ContentRange::Hidden, 600_000), Some(600_000));
        assert_eq!(start(200, ContentRange::Header(None), 600_000), Some(0), "the whole body again");
        for bad in ["bytes */1200", "items 1-2/3", "", "bytes x-1/2"] {
            let Err(FetchFailure::Final(e)) = body_start("http://h/x", Some(206), header(bad), 10) else {
                panic!("{bad}")
            };
            assert_eq!(e.code, ErrorCode::DownloadFailed);
        }
        assert!(body_start("http://h/x", Some(206), ContentRange::Header(None), 0).is_err());
    }

    #[test]
    fn object_digests_read_as_hex() {
        let sha = crate::protocol::sha256_hex(b"abc");
        let raw = hex::decode(&sha).unwrap();
        let padded = format!("SHA-256={}", base64_simd::URL_SAFE.encode_to_string(&raw));
        assert!(padded.ends_with('='));
        assert_eq!(object_digest_hex(&padded).as_deref(), Some(sha.as_str()));
        assert_eq!(object_digest_hex(padded.trim_end_matches('=')).as_deref(), Some(sha.as_str()));
        for bad in ["SHA-256=AAAA", "MD5=abc", "SHA-256=***", ""] {
            assert_eq!(object_digest_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_heads_follow_the_fetch_rules() {
        let head = |status, location, len| HttpHead::of("http://h/x?sig=s", status, location, len, 10);
        assert_eq!(head(Some(200), None, Some(10)), HttpHead::Payload);
        assert_eq!(head(Some(204), None, None), HttpHead::Payload);
        assert_eq!(head(Some(200), None, Some(11)), HttpHead::Fail(FetchFailure::Announced(11)));
        assert_eq!(head(Some(404), None, Some(3)), HttpHead::Detail);
        assert_eq!(head(Some(503), None, None), HttpHead::Detail);
        assert_eq!(
            head(Some(302), Some("/elsewhere"), None),
            HttpHead::Fail(FetchFailure::Status { status: 302, detail: "/elsewhere".into() })
        );
        let HttpHead::Fail(FetchFailure::Final(e)) = head(None, None, None) else { panic!("opaque redirect") };
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::DownloadFailed, "GET http://h/x: redirected, refusing"));
        assert_eq!(FetchFailure::announced(Some(10), 10), None);
        assert_eq!(FetchFailure::announced(None, 10), None);
    }

    #[test]
    fn error_details_are_the_trimmed_start_of_the_body() {
        let status = |body: &[u8]| match FetchFailure::http_status(503, body) {
            FetchFailure::Status { status: 503, detail } => detail,
            other => panic!("{other:?}"),
        };
        assert_eq!(status(b" try later\n"), "try later");
        assert_eq!(status(b""), "");
        let long = status(&[b'x'; 600]);
        assert_eq!((long.chars().count(), long.ends_with('…')), (HTTP_ERROR_DETAIL_BYTES + 1, true));
    }
}
