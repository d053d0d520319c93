//! The seeds' handler contracts (README "One vocabulary") over JS functions: core's
//! `UploadHandler` / `DownloadHandler` closures that call the JS function and convert its answer.
//! What the answer means, which URLs a download handler serves and the error codes are core's.
//!
//! `index.js` wraps the user's (plain or async) function so each returns a Promise: of the JSON
//! text of the upload handler's return value, of the download handler's bytes. They run on the
//! JS thread through unref'd (weak) threadsafe functions, which never keep the process alive.

use bytes::Bytes;
use napi::Status;
use napi::bindgen_prelude::{Buffer, FnArgs, Promise, Uint8Array};
use napi::threadsafe_function::ThreadsafeFunction;
use natsbridge::io::store::{DownloadCall, DownloadHandler, UploadCall, UploadHandler, UploadReply};
use std::sync::Arc;

type UploadArgs = FnArgs<(String, String, Buffer)>;
type DownloadArgs = FnArgs<(String, u32, f64, f64, String)>;
/// `(fileserver_url, dataname, data) => Promise<JSON text of the answer>`; errors not passed in.
pub type UploadFn = ThreadsafeFunction<UploadArgs, Promise<String>, UploadArgs, Status, false, true>;
/// `(url, max_retries, base_delay_ms, max_delay_ms, correlation_id) => Promise<Uint8Array>`.
pub type DownloadFn = ThreadsafeFunction<DownloadArgs, Promise<Uint8Array>, DownloadArgs, Status, false, true>;

pub fn upload(f: UploadFn) -> UploadHandler {
    let f = Arc::new(f);
    Arc::new(move |call: UploadCall| {
        let f = f.clone();
        Box::pin(async move {
            let args = (call.fileserver_url, call.dataname, Buffer::from(call.data.to_vec())).into();
            let answer = f.call_async(args).await.map_err(|e| e.reason)?.await.map_err(|e| e.reason)?;
            let value = serde_json::from_str(&answer).map_err(|e| format!("returned no JSON value: {e}"))?;
            UploadReply::from_json(&value)
        })
    })
}

pub fn download(f: DownloadFn) -> DownloadHandler {
    let f = Arc::new(f);
    Arc::new(move |call: DownloadCall| {
        let f = f.clone();
        Box::pin(async move {
            // Delays are whole milliseconds, far below 2^53: exact as JS numbers.
            let args =
                (call.url, call.max_retries, call.base_delay_ms as f64, call.max_delay_ms as f64, call.correlation_id)
                    .into();
            let bytes = f.call_async(args).await.map_err(|e| e.reason)?.await.map_err(|e| e.reason)?;
            Ok(Bytes::from_owner(bytes))
        })
    })
}
