//! Reading C arguments and writing out-params, with NULL and UTF-8 checks that answer
//! INVALID_ARGUMENT instead of crashing.

use crate::status::{Outcome, invalid};
use std::ffi::{CStr, CString, c_char};

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the returned borrow.
pub unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Outcome<&'a str> {
    // SAFETY: caller contract.
    unsafe { optional_text(ptr, what) }?.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// An optional NUL-terminated UTF-8 string (NULL is None).
///
/// # Safety
/// As [`text`].
pub unsafe fn optional_text<'a>(ptr: *const c_char, what: &str) -> Outcome<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map(Some).map_err(|e| invalid(format!("{what} is not UTF-8: {e}")))
}

/// `len` bytes at `ptr`; NULL is allowed only with `len == 0`.
///
/// # Safety
/// `ptr` is NULL or valid for reading `len` bytes for the returned borrow's lifetime.
pub unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Outcome<&'a [u8]> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(invalid(format!("{what} is NULL but its length is {len}"))) };
    }
    // SAFETY: caller contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A shared reference to a handle.
///
/// # Safety
/// `ptr` is NULL or a live handle of type T made by this library.
pub unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Outcome<&'a T> {
    // SAFETY: caller contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// A mutable reference to a handle.
///
/// # Safety
/// As [`handle`], and no other reference to it is in use.
pub unsafe fn handle_mut<'a, T>(ptr: *mut T, what: &str) -> Outcome<&'a mut T> {
    // SAFETY: caller contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// Checks a required out-param before any work is done, so a NULL one fails without effects.
pub fn out_param<T>(ptr: *mut T, what: &str) -> Outcome<*mut T> {
    if ptr.is_null() { Err(invalid(format!("{what} (the out-param) is NULL"))) } else { Ok(ptr) }
}

/// Writes through a checked out-param.
///
/// # Safety
/// `ptr` came from [`out_param`] and is valid for writes.
pub unsafe fn write<T>(ptr: *mut T, value: T) {
    // SAFETY: caller contract.
    unsafe { ptr.write(value) }
}

/// An owned C string for the caller (freed with `natsbridge_string_free`).
pub fn owned_string(s: impl Into<Vec<u8>>) -> Outcome<*mut c_char> {
    CString::new(s)
        .map(CString::into_raw)
        .map_err(|_| invalid("the text holds a NUL byte and cannot be returned as a C string"))
}
