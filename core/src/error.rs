//! The one error type of NATSBridge. Every binding maps [`ErrorCode`] with an exhaustive match,
//! so adding a code breaks the build of each binding until it is mapped.

use std::fmt;

/// Stable error codes (spec/PROTOCOL.md §9). The string form is part of the public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
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
    /// A caller mistake or bad configuration: an unknown option, a bad threshold or duration,
    /// NULL from C. Never borrowed from another code.
    InvalidArgument,
}

impl ErrorCode {
    /// Every code, in this order (the C status enum numbers them from 1 in the same order).
    pub const ALL: &'static [ErrorCode] = <ErrorCode as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<ErrorCode> {
        s.parse().ok()
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

    /// An INVALID_ARGUMENT error: a caller mistake or bad configuration.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidArgument, message)
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

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_have_their_contract_strings() {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "INVALID_PAYLOAD_TYPE",
                "UPLOAD_FAILED",
                "DOWNLOAD_FAILED",
                "INVALID_TRANSPORT",
                "NATS_CONNECTION_FAILED",
                "DESERIALIZATION_ERROR",
                "INVALID_ENVELOPE",
                "CHECKSUM_MISMATCH",
                "PAYLOAD_TOO_LARGE",
                "URL_NOT_ALLOWED",
                "TIMEOUT",
                "INVALID_ARGUMENT",
            ]
        );
        assert!(ErrorCode::ALL.iter().all(|c| ErrorCode::parse(c.as_str()) == Some(*c)));
        assert_eq!(ErrorCode::parse("invalid_argument"), None);
    }
}
