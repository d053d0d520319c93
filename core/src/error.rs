//! The one error type of NATSBridge. Every binding maps [`ErrorCode`] with an exhaustive match,
//! so adding a code breaks the build of each binding until it is mapped.

use std::fmt;

/// Stable error codes (DESIGN §4). The string form is part of the public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidPayloadType,
    UploadFailed,
    DownloadFailed,
    InvalidTransport,
    NatsConnectionFailed,
    DeserializationError,
    InvalidEnvelope,
    ChecksumMismatch,
    PayloadTooLarge,
    UrlNotAllowed,
    Timeout,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::InvalidPayloadType,
        ErrorCode::UploadFailed,
        ErrorCode::DownloadFailed,
        ErrorCode::InvalidTransport,
        ErrorCode::NatsConnectionFailed,
        ErrorCode::DeserializationError,
        ErrorCode::InvalidEnvelope,
        ErrorCode::ChecksumMismatch,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UrlNotAllowed,
        ErrorCode::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidPayloadType => "INVALID_PAYLOAD_TYPE",
            ErrorCode::UploadFailed => "UPLOAD_FAILED",
            ErrorCode::DownloadFailed => "DOWNLOAD_FAILED",
            ErrorCode::InvalidTransport => "INVALID_TRANSPORT",
            ErrorCode::NatsConnectionFailed => "NATS_CONNECTION_FAILED",
            ErrorCode::DeserializationError => "DESERIALIZATION_ERROR",
            ErrorCode::InvalidEnvelope => "INVALID_ENVELOPE",
            ErrorCode::ChecksumMismatch => "CHECKSUM_MISMATCH",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UrlNotAllowed => "URL_NOT_ALLOWED",
            ErrorCode::Timeout => "TIMEOUT",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code, a human message and, when known, the message's correlation id.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub correlation_id: Option<String>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), correlation_id: None }
    }

    /// Attach a correlation id unless one is already set (the innermost one wins).
    pub fn with_correlation_id(mut self, id: &str) -> Self {
        if self.correlation_id.is_none() && !id.is_empty() {
            self.correlation_id = Some(id.to_owned());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(id) = &self.correlation_id {
            write!(f, " (correlation_id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand used throughout core: `err(ErrorCode::X, format!(..))`.
pub(crate) fn err<T>(code: ErrorCode, message: impl Into<String>) -> Result<T> {
    Err(Error::new(code, message))
}
