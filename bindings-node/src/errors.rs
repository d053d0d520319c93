//! Core errors as JS `Error` objects with `code` (core's stable code) and `correlationId`.
//! Calls hand them back as values (never a napi rejection, whose `code` would be napi's status);
//! `index.js` throws them.

use napi::bindgen_prelude::{ToNapiValue, Unknown};
use napi::{Env, Result, Status};
use natsbridge::error::{Error, ErrorCode};

/// The JS `code` of a core code: core's string. No `_ =>` arm: a new code in core breaks this
/// build until `index.d.ts` knows it too (the test suite compares its `ErrorCode` union with
/// `ERROR_CODES`, which comes from here).
pub fn code_name(code: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match code {
        InvalidPayloadType | UploadFailed | DownloadFailed | InvalidTransport | NatsConnectionFailed
        | DeserializationError | InvalidEnvelope | ChecksumMismatch | PayloadTooLarge | UrlNotAllowed | Timeout
        | InvalidArgument => code.as_str(),
    }
}

/// `new Error("CODE: message (correlation_id …)")` with `.code` and `.correlationId` (or null).
pub fn to_js<'env>(env: &'env Env, e: &Error) -> Result<Unknown<'env>> {
    let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, e.to_string()))?;
    obj.set("code", code_name(e.code))?;
    obj.set("correlationId", e.correlation_id.as_deref())?;
    obj.into_unknown(env)
}

/// A result as JS: the value, or the error object (returned, not thrown).
pub fn settle<'env, T>(
    env: &'env Env,
    r: natsbridge::error::Result<T>,
    convert: impl FnOnce(&'env Env, T) -> Result<Unknown<'env>>,
) -> Result<Unknown<'env>> {
    match r {
        Ok(v) => convert(env, v),
        Err(e) => to_js(env, &e),
    }
}
