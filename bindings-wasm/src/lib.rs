//! The browser build of the NATSBridge core: thin wasm-bindgen wrappers over `natsbridge::protocol`
//! (the options, the send and receive machines, replies, payload conversion, JetStream mode's rules). js/natsbridge.js
//! drives the machines with what a browser has (the NATS WebSocket, the object store, fetch): it
//! reports what happened and does what the machine says next; every rule is core's.
//!
//! This module is private to the package; js/natsbridge.js is the public API.

use bytes::Bytes;
use natsbridge::error::{Error, ErrorCode};
use natsbridge::protocol::{
    self, Data, Envelope, FetchFailure, HostValue, HttpHead, Incoming, LinkCheck, LinkFetch, ObjectLink, OptionName,
    Outgoing, PayloadType, ReceiveLimits, ReceivePlan, ReceiveRules, ReceiveStep, Received, ReplyTo, SendLimits,
    SendOptionName, SendOptions, SendPlan, SendStep, Sender, Sent, Settings, StreamPart, TimeUnit, TraceContext,
    Transport, UrlScope, arrow, retry_after,
};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

mod durable;
mod options;
mod receive;
mod send;
mod streamed;

pub use durable::*;
pub use options::*;
pub use receive::*;
pub use send::*;
pub use streamed::*;

thread_local! {
    /// The host's error class (js/errors.js `NATSBridgeError`), so errors made here and in JS
    /// are instances of one class.
    static ERROR_CLASS: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Called once by js/natsbridge.js with `NATSBridgeError` (constructor `(code, message, correlationId)`).
#[wasm_bindgen(js_name = setErrorClass)]
pub fn set_error_class(class: js_sys::Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(class));
}

pub(crate) fn to_js(e: Error) -> JsValue {
    let message = JsValue::from_str(&e.message);
    let code = JsValue::from_str(e.code.as_str());
    let cid = e.correlation_id.as_deref().map_or(JsValue::NULL, JsValue::from_str);
    let constructed = ERROR_CLASS.with(|c| {
        let class = c.borrow();
        let class = class.as_ref()?;
        js_sys::Reflect::construct(class, &js_sys::Array::of3(&code, &message, &cid)).ok()
    });
    constructed.unwrap_or_else(|| {
        // Not initialised through js/natsbridge.js: still an Error that carries the code.
        let plain = js_sys::Error::new(&format!("{}: {}", e.code, e.message));
        let _ = js_sys::Reflect::set(&plain, &"code".into(), &code);
        let _ = js_sys::Reflect::set(&plain, &"correlation_id".into(), &cid);
        plain.into()
    })
}

pub(crate) type JsResult<T> = Result<T, JsValue>;

/// Core's error codes, in core's order.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}

/// The `msg_purpose` values the seeds name.
#[wasm_bindgen(js_name = msgPurposes)]
pub fn msg_purposes() -> Vec<String> {
    protocol::msg_purpose::ALL.iter().map(|p| (*p).to_owned()).collect()
}

/// Every connection option by its canonical name (README "One vocabulary").
#[wasm_bindgen(js_name = optionNames)]
pub fn option_names() -> Vec<String> {
    OptionName::ALL.iter().map(|o| o.as_str().to_owned()).collect()
}

/// Every per-message option by its canonical name.
#[wasm_bindgen(js_name = sendOptionNames)]
pub fn send_option_names() -> Vec<String> {
    SendOptionName::ALL.iter().map(|o| o.as_str().to_owned()).collect()
}

/// The connection options a page cannot use (INVALID_ARGUMENT when given).
#[wasm_bindgen(js_name = unavailableOptions)]
pub fn unavailable_options() -> Vec<String> {
    OptionName::ALL.iter().filter(|o| not_in_browsers(**o).is_some()).map(|o| o.as_str().to_owned()).collect()
}

pub(crate) fn not_in_browsers(option: OptionName) -> Option<&'static str> {
    use OptionName::*;
    match option {
        Nkey | CredentialsFile => Some("a page signs in with user and password or a token"),
        TlsCaFile | TlsCertFile | TlsKeyFile | TlsRequired => Some("TLS is the browser's: name a wss:// server"),
        PendingMsgsLimit => Some("the browser's NATS client has no such limit"),
        FileserverUrl | FileserverKind | PlikOneshot | PlikTtl | PlikToken => {
            Some("a page uploads links to the object store only (Plik sends no CORS headers)")
        }
        S3Endpoint | S3Region | S3Profile | S3AddressingStyle | S3AccessKeyId | S3SecretAccessKey | S3SessionToken
        | S3Presign | S3Ttl => {
            Some("a page signs no S3 requests: it fetches presigned S3 links from an allowed origin")
        }
        _ => None,
    }
}

#[wasm_bindgen(js_name = defaultSizeThreshold)]
pub fn default_size_threshold() -> usize {
    protocol::DEFAULT_SIZE_THRESHOLD
}

/// Lowercase hex SHA-256.
#[wasm_bindgen(js_name = sha256Hex)]
pub fn sha256_hex(bytes: &[u8]) -> String {
    protocol::sha256_hex(bytes)
}

/// A message re-serialized as `Envelope::to_json` writes it (nulls and missing fields filled in).
#[wasm_bindgen(js_name = canonicalEnvelopeJson)]
pub fn canonical_envelope_json(message: &[u8]) -> JsResult<String> {
    Ok(Envelope::parse(message).map_err(to_js)?.to_json())
}
