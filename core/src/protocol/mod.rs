//! Wire protocol v1: the envelope and payload model, payload codecs, transport planning and
//! validation. No I/O here: this module builds for `wasm32-unknown-unknown` and is the one
//! codec every binding (and the browser build) uses. spec/PROTOCOL.md is its prose twin.

pub mod arrow;
mod codec;
mod envelope;
mod json;
mod time;

pub use codec::{Data, deserialize, serialize};
pub use envelope::{
    DecodedPayload, Envelope, ErrorBody, PayloadSource, WirePayload, decode_inline, decode_message, direct_payload,
    link_payload,
};
pub use time::timestamp_from_unix_ms;
#[cfg(not(target_arch = "wasm32"))]
pub use time::timestamp_now;

use crate::error::{ErrorCode, Result, err};
use sha2::Digest as _;

/// Default size threshold in bytes: a payload is sent direct iff its serialized size is below it
/// (DESIGN §2 **D**: 500,000, not the seeds' env-table 1,000,000).
pub const DEFAULT_SIZE_THRESHOLD: usize = 500_000;

/// The eight payload types of the seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    pub const ALL: [PayloadType; 8] = [
        PayloadType::Text,
        PayloadType::Dictionary,
        PayloadType::ArrowTable,
        PayloadType::JsonTable,
        PayloadType::Image,
        PayloadType::Audio,
        PayloadType::Video,
        PayloadType::Binary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayloadType::Text => "text",
            PayloadType::Dictionary => "dictionary",
            PayloadType::ArrowTable => "arrowtable",
            PayloadType::JsonTable => "jsontable",
            PayloadType::Image => "image",
            PayloadType::Audio => "audio",
            PayloadType::Video => "video",
            PayloadType::Binary => "binary",
        }
    }

    pub fn parse(s: &str) -> Result<PayloadType> {
        match PayloadType::ALL.into_iter().find(|t| t.as_str() == s) {
            Some(t) => Ok(t),
            None => err(
                ErrorCode::InvalidPayloadType,
                format!(
                    "unknown payload_type {s:?}; expected one of text, dictionary, arrowtable, \
                     jsontable, image, audio, video, binary"
                ),
            ),
        }
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

/// When an envelope is over the server's max_payload, the largest direct payload moves to link
/// next. Returns its index, or None when every payload is already a link.
pub fn largest_direct(plan: &[Transport], sizes: &[usize]) -> Option<usize> {
    plan.iter()
        .zip(sizes)
        .enumerate()
        .filter(|(_, (t, _))| **t == Transport::Direct)
        .max_by_key(|(_, (_, size))| **size)
        .map(|(i, _)| i)
}

/// Standard alphabet, padded. SIMD where the CPU has it: base64 was most of a 10 KB codec pass.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
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
