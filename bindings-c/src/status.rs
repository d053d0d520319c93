//! The status every export returns, the thread-local last error, and the guard that keeps
//! panics and bad arguments from crossing the boundary.

use bridge::error::{Error, ErrorCode};
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

/// Result of every call. 0 is success; 1 to 12 are the core's stable error codes, in the core's
/// order (spec/PROTOCOL.md); 12, INVALID_ARGUMENT, is a mistake of the calling program: a NULL
/// or malformed argument, an unknown option or bad value, an index out of range, or a blocking
/// call from inside a handler. INTERNAL_ERROR is a bug caught at the boundary.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    InvalidPayloadType = 1,
    UploadFailed = 2,
    DownloadFailed = 3,
    InvalidTransport = 4,
    NatsConnectionFailed = 5,
    DeserializationError = 6,
    InvalidEnvelope = 7,
    ChecksumMismatch = 8,
    PayloadTooLarge = 9,
    UrlNotAllowed = 10,
    Timeout = 11,
    InvalidArgument = 12,
    /// A panic inside the library, caught before it reached C. Always a bug in NATSBridge.
    InternalError = 101,
}

impl Status {
    /// No `_ =>` arm: a new core code breaks this build until it has a status.
    pub const fn of(code: ErrorCode) -> Status {
        match code {
            ErrorCode::InvalidPayloadType => Status::InvalidPayloadType,
            ErrorCode::UploadFailed => Status::UploadFailed,
            ErrorCode::DownloadFailed => Status::DownloadFailed,
            ErrorCode::InvalidTransport => Status::InvalidTransport,
            ErrorCode::NatsConnectionFailed => Status::NatsConnectionFailed,
            ErrorCode::DeserializationError => Status::DeserializationError,
            ErrorCode::InvalidEnvelope => Status::InvalidEnvelope,
            ErrorCode::ChecksumMismatch => Status::ChecksumMismatch,
            ErrorCode::PayloadTooLarge => Status::PayloadTooLarge,
            ErrorCode::UrlNotAllowed => Status::UrlNotAllowed,
            ErrorCode::Timeout => Status::Timeout,
            ErrorCode::InvalidArgument => Status::InvalidArgument,
        }
    }

    /// The core code of statuses 1 to 12 (C passes them to reply_error).
    pub fn code(value: i32) -> Option<ErrorCode> {
        let index = usize::try_from(value).ok()?.checked_sub(1)?;
        ErrorCode::ALL.get(index).copied()
    }
}

// Status n is core code n of `ErrorCode::ALL`: checked when this crate compiles.
const _: () = {
    let mut i = 0;
    while i < ErrorCode::ALL.len() {
        assert!(Status::of(ErrorCode::ALL[i]) as usize == i + 1, "status numbers follow ErrorCode::ALL");
        i += 1;
    }
};

/// Why a call failed: a status and its message (and the message's correlation id, if known).
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub message: String,
    pub correlation_id: Option<String>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure { status: Status::of(e.code), message: e.to_string(), correlation_id: e.correlation_id }
    }
}

pub fn invalid(message: impl Into<String>) -> Failure {
    Error::invalid_argument(message).into()
}

pub type Outcome<T = ()> = Result<T, Failure>;

struct LastError {
    message: CString,
    correlation_id: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> =
        RefCell::new(LastError { message: CString::default(), correlation_id: CString::default() });
}

pub fn c_string_lossy(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|&b| b != 0);
        CString::new(bytes).expect("NULs removed")
    })
}

// `try_with`: during thread teardown the thread-local is gone; the record is then dropped
// rather than panicking.
fn record(message: String, correlation_id: Option<String>) {
    let _ = LAST_ERROR.try_with(|last| {
        let mut last = last.borrow_mut();
        last.message = c_string_lossy(message);
        last.correlation_id = c_string_lossy(correlation_id.unwrap_or_default());
    });
}

/// Runs an export's body: records the outcome for `natsbridge_last_error` and turns a panic into
/// INTERNAL_ERROR instead of unwinding into C.
pub fn guard(body: impl FnOnce() -> Outcome) -> Status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            record(String::new(), None);
            Status::Ok
        }
        Ok(Err(f)) => {
            record(f.message, f.correlation_id);
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            record(format!("INTERNAL_ERROR: a bug in natsbridge was caught at the C boundary: {what}"), None);
            Status::InternalError
        }
    }
}

/// The message of the last failed call on this thread ("" after a successful call).
///
/// Ownership: borrowed; valid until the next natsbridge call on this thread. Never NULL.
/// Thread safety: per thread (each thread sees its own last error).
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_last_error() -> *const c_char {
    LAST_ERROR.try_with(|last| last.borrow().message.as_ptr()).unwrap_or(c"".as_ptr())
}

/// The correlation id of the message the last failed call on this thread was about, or "" when
/// none is known.
///
/// Ownership: borrowed; valid until the next natsbridge call on this thread. Never NULL.
/// Thread safety: per thread.
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_last_error_correlation_id() -> *const c_char {
    LAST_ERROR.try_with(|last| last.borrow().correlation_id.as_ptr()).unwrap_or(c"".as_ptr())
}

/// The stable name of a status: "OK", the core's code for 1 to 12 ("INVALID_PAYLOAD_TYPE" ...
/// "TIMEOUT", "INVALID_ARGUMENT"), "INTERNAL_ERROR"; "UNKNOWN" for a value that is not a status.
///
/// Ownership: static string, never freed. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn natsbridge_status_name(status: i32) -> *const c_char {
    // The core's names, as C strings made once.
    static CODE_NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    let name = |s: &CStr| s.as_ptr();
    match status {
        0 => name(c"OK"),
        s if s == Status::InternalError as i32 => name(c"INTERNAL_ERROR"),
        s if Status::code(s).is_some() => {
            let names = CODE_NAMES.get_or_init(|| {
                ErrorCode::ALL.iter().map(|c| CString::new(c.as_str()).expect("no NUL in a code")).collect()
            });
            names[s as usize - 1].as_ptr()
        }
        _ => name(c"UNKNOWN"),
    }
}
