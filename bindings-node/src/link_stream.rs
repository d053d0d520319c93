//! Link payloads received as streams (spec/PROTOCOL.md §8.3.2): chunks as they arrive, or saved
//! to a file, never whole in memory; `index.js` makes each one a `Readable`.

use crate::runtime;
use napi::bindgen_prelude::{Buffer, Null, ToNapiValue, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use std::sync::Arc;

type Shared = Arc<tokio::sync::Mutex<natsbridge::io::LinkStream>>;

/// One link payload's bytes as they arrive. The last read checks the size and sha256.
#[napi]
pub struct LinkStream {
    dataname: String,
    payload_type: &'static str,
    size: u64,
    stream: Shared,
}

impl LinkStream {
    pub(crate) fn new(stream: natsbridge::io::LinkStream) -> LinkStream {
        LinkStream {
            dataname: stream.dataname().to_owned(),
            payload_type: stream.payload_type().as_str(),
            size: stream.size(),
            stream: Arc::new(tokio::sync::Mutex::new(stream)),
        }
    }
}

#[napi]
impl LinkStream {
    #[napi(getter)]
    pub fn dataname(&self) -> String {
        self.dataname.clone()
    }

    #[napi(getter)]
    pub fn payload_type(&self) -> &'static str {
        self.payload_type
    }

    /// The envelope's size in bytes.
    #[napi(getter)]
    pub fn size(&self) -> f64 {
        self.size as f64
    }

    /// The bytes' sha256 (hex) once every byte was read and checked; null before.
    #[napi(getter)]
    pub fn sha256(&self) -> Option<String> {
        self.stream.try_lock().ok().and_then(|s| s.sha256().map(str::to_owned))
    }

    /// The next chunk, or null at the end (after the size and sha256 were checked).
    #[napi(ts_return_type = "Promise<Buffer | null | Error>")]
    pub fn next_chunk<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        let stream = self.stream.clone();
        runtime::spawn(env, async move { stream.lock().await.next_chunk().await }, |env, chunk| match chunk {
            Some(chunk) => Buffer::from(Vec::from(chunk)).into_unknown(env),
            None => Null.into_unknown(env),
        })
    }

    /// Writes the bytes to `path` through `<path>.partial`, renamed once they are checked; the
    /// number of bytes written.
    #[napi(ts_return_type = "Promise<number | Error>")]
    pub fn save<'env>(&self, env: &'env Env, path: String) -> Result<Unknown<'env>> {
        let stream = self.stream.clone();
        runtime::spawn(env, async move { stream.lock().await.save(std::path::Path::new(&path)).await }, |env, n| {
            (n as f64).into_unknown(env)
        })
    }
}
