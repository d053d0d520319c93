//! Wire protocol v1: the envelope and payload model, payload codecs, validation, and the
//! claim-check rules as sans-IO machines ([`SendPlan`], [`ReceivePlan`]). No I/O here: this
//! module builds for `wasm32-unknown-unknown`; core's tokio client and the browser's JS both drive
//! the same machines. spec/PROTOCOL.md is its prose twin.

pub mod arrow;
mod codec;
mod driver;
pub mod durable;
mod envelope;
mod json;
mod options;
mod receive;
mod reply;
mod send;
mod time;
pub mod trace;
mod url_scope;

pub use codec::{Data, HostValue, deserialize, serialize};
pub use driver::{
    ContentRange, HTTP_ERROR_DETAIL_BYTES, HttpHead, OBJECT_STORE_CHUNK_SIZE, OBJECT_STORE_SCHEME, ObjectLink,
    body_start, object_digest_hex,
};
pub use envelope::{
    DecodedPayload, DirectMessage, Envelope, EnvelopeView, ErrorBody, HEADER_FIELDS, PayloadSource, ReceivedView,
    WirePayload, decode_direct, decode_inline, decode_message, direct_payload, direct_payload_header, link_payload,
};
pub use options::{
    DEFAULT_NATS_URL, FileServerKind, OptionName, S3Addressing, S3Settings, SendOptionName, Settings, TimeUnit,
};
pub use receive::{
    DEFAULT_MAX_DOWNLOAD_BYTES, FetchFailure, Incoming, LinkCheck, LinkFetch, MAX_JSON_DEPTH, ReceiveLimits,
    ReceivePlan, ReceiveRules, ReceiveStep, Received, RetryPolicy, StreamPart, display_url, retry_after,
};
pub use reply::ReplyTo;
pub use send::{Outgoing, SendLimits, SendOptions, SendPlan, SendStep, Sender, Sent, streams_source};
pub use time::timestamp_from_unix_ms;
#[cfg(not(target_arch = "wasm32"))]
pub use time::timestamp_now;
pub use trace::{TraceContext, Traceparent};
pub use url_scope::UrlScope;

use crate::error::{ErrorCode, Result, err};
use sha2::Digest as _;

/// Default size threshold in bytes: a payload is sent direct iff its serialized size is below it
/// (spec/PROTOCOL.md §7.1: 500,000, not the seeds' env-table 1,000,000).
pub const DEFAULT_SIZE_THRESHOLD: usize = 500_000;

/// The eight payload types of the seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum PayloadType {
    Text,
    Dictionary,
    ArrowTable,
    JsonTable,
    Image,
    Audio,
    Video,
    Binary,
}

impl PayloadType {
    pub const ALL: &'static [PayloadType] = <PayloadType as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Result<PayloadType> {
        s.parse().map_err(|_| {
            crate::error::Error::new(
                ErrorCode::InvalidPayloadType,
                format!(
                    "unknown payload_type {s:?}; expected one of text, dictionary, arrowtable, \
                     jsontable, image, audio, video, binary"
                ),
            )
        })
    }

    /// image, audio, video and binary carry raw bytes.
    pub fn is_bytes(self) -> bool {
        matches!(self, PayloadType::Image | PayloadType::Audio | PayloadType::Video | PayloadType::Binary)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Direct,
    Link,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Direct => "direct",
            Transport::Link => "link",
        }
    }

    pub fn parse(s: &str) -> Result<Transport> {
        match s {
            "direct" => Ok(Transport::Direct),
            "link" => Ok(Transport::Link),
            _ => err(ErrorCode::InvalidTransport, format!("unknown transport {s:?}; expected \"direct\" or \"link\"")),
        }
    }
}

/// `msg_purpose` values named by the seeds. Receivers accept any non-empty string.
pub mod msg_purpose {
    pub const ACK: &str = "ACK";
    pub const NACK: &str = "NACK";
    pub const UPDATE_STATUS: &str = "updateStatus";
    pub const SHUTDOWN: &str = "shutdown";
    pub const CHAT: &str = "chat";
    pub const COMMAND: &str = "command";
    pub const EVENT: &str = "event";
    pub const ALL: [&str; 7] = [ACK, NACK, UPDATE_STATUS, SHUTDOWN, CHAT, COMMAND, EVENT];
}

/// The threshold rule alone: direct iff `size < threshold`.
pub fn transport_for_size(size: usize, threshold: usize) -> Transport {
    if size < threshold { Transport::Direct } else { Transport::Link }
}

/// A NATS subject as every binding takes it: non-empty, no whitespace, no empty token (no leading,
/// trailing or doubled dot). A bad one is the caller's mistake: INVALID_ARGUMENT, before any I/O.
pub fn check_subject(subject: &str) -> Result<()> {
    let bad_token = subject.split('.').any(str::is_empty);
    if bad_token || subject.contains([' ', '\t', '\r', '\n']) {
        return Err(crate::error::Error::invalid_argument(format!(
            "{subject:?} is not a NATS subject: dot-separated tokens, none empty, no whitespace"
        )));
    }
    Ok(())
}

/// Standard alphabet, padded. SIMD where the CPU has it: base64 was most of a 10 KB codec pass.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// [`base64_encode`] appended to `out` (a direct payload's text written straight into the JSON).
pub fn base64_encode_into(bytes: &[u8], out: &mut String) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

pub fn base64_decode(text: &str) -> Result<Vec<u8>> {
    // Some senders drop the padding; the bytes are still unambiguous.
    let engine = if text.len().is_multiple_of(4) { base64_simd::STANDARD } else { base64_simd::STANDARD_NO_PAD };
    engine.decode_to_vec(text).map_err(|_| {
        crate::error::Error::new(
            ErrorCode::DeserializationError,
            format!("invalid base64 data ({} characters; standard alphabet expected)", text.len()),
        )
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A fresh UUID v4 string (formatted into a buffer: three per message, `Display` is slower).
pub fn new_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf).to_owned()
}

#[cfg(test)]
mod tests {
    use super::check_subject;
    use crate::error::ErrorCode;

    #[test]
    fn subjects_are_tokens_without_whitespace() {
        for good in ["a", "a.b", "sensors.*.temp", "a.>", "_INBOX.x.1"] {
            assert!(check_subject(good).is_ok(), "{good}");
        }
        for bad in ["", ".a", "a.", "a..b", "a b", "a\tb", "a\r\n"] {
            assert_eq!(check_subject(bad).unwrap_err().code, ErrorCode::InvalidArgument, "{bad:?}");
        }
    }
}
