//! Claim-check link stores (spec/PROTOCOL.md §8): where link payloads' bytes go and come back from.
//! One trait; the client picks a store for uploads and routes each download by the stores' URL
//! scopes, through the receive plan of `protocol`.

pub mod handler;
pub mod http;
pub mod objstore;
pub mod plik;
pub mod s3;

pub use handler::{DownloadCall, DownloadHandler, HandlerStore, UploadCall, UploadHandler, UploadReply};

use crate::error::Result;
use crate::protocol::{FetchFailure, UrlScope};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Called with the number of bytes a link upload or download just moved (for progress bars).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// What a store is asked to keep.
pub struct Upload<'a> {
    pub dataname: &'a str,
    pub body: Body,
    pub correlation_id: &'a str,
    pub progress: Option<Progress>,
    /// In JetStream mode, the stream the message goes to: a store that can keep metadata tags the
    /// object with it and the msg_id, so a sweep finds objects whose message never arrived.
    pub stream: Option<&'a str>,
    pub msg_id: &'a str,
}

/// An upload's bytes: in memory, or read while they are sent (a payload from a file or a reader,
/// [`crate::io::ByteSource`]), so a store never needs them whole.
pub enum Body {
    Bytes(Bytes),
    /// Exactly `size` bytes; the stream fails, so the upload fails, when its source does not give them.
    Chunks {
        size: u64,
        chunks: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
    },
}

impl Body {
    pub fn size(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Chunks { size, .. } => *size,
        }
    }

    /// The bytes as chunks of `chunk_size` (the last one shorter): in-memory bytes are sliced,
    /// a stream's chunks are regrouped.
    pub fn into_chunks(self, chunk_size: usize) -> futures::stream::BoxStream<'static, std::io::Result<Bytes>> {
        use futures::StreamExt;
        match self {
            Body::Bytes(bytes) => {
                let slices = (0..bytes.len())
                    .step_by(chunk_size)
                    .map(move |start| Ok(bytes.slice(start..(start + chunk_size).min(bytes.len()))));
                futures::stream::iter(slices).boxed()
            }
            Body::Chunks { chunks, .. } => {
                let state = (chunks, bytes::BytesMut::new(), false);
                futures::stream::unfold(state, move |(mut chunks, mut pending, mut ended)| async move {
                    while !ended && pending.len() < chunk_size {
                        match chunks.next().await {
                            Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                            Some(Err(e)) => return Some((Err(e), (chunks, bytes::BytesMut::new(), true))),
                            None => ended = true,
                        }
                    }
                    if pending.is_empty() {
                        return None;
                    }
                    let chunk = pending.split_to(chunk_size.min(pending.len())).freeze();
                    Some((Ok(chunk), (chunks, pending, ended)))
                })
                .boxed()
            }
        }
    }

    /// Every byte in memory, for a store that needs them whole (a host's upload handler).
    pub async fn collect(self) -> std::io::Result<Bytes> {
        use futures::TryStreamExt;
        match self {
            Body::Bytes(bytes) => Ok(bytes),
            Body::Chunks { size, chunks } => {
                let mut all = bytes::BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
                let mut chunks = chunks;
                while let Some(chunk) = chunks.try_next().await? {
                    all.extend_from_slice(&chunk);
                }
                Ok(all.freeze())
            }
        }
    }
}

/// Where an upload went.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub url: String,
    /// Lowercase hex SHA-256 of the bytes, from stores that hash while uploading.
    pub sha256: Option<String>,
}

impl From<String> for Stored {
    fn from(url: String) -> Self {
        Stored { url, sha256: None }
    }
}

/// One download: the link and what the envelope says the bytes are.
#[derive(Clone, Copy)]
pub struct Fetch<'a> {
    pub url: &'a str,
    /// The envelope's `size`: a store reads at most one byte more.
    pub size: u64,
    /// The message's, for logs and for host handlers (the seeds' download handler takes it).
    pub correlation_id: &'a str,
    pub progress: Option<&'a Progress>,
}

impl<'a> Fetch<'a> {
    pub fn new(url: &'a str, size: u64) -> Self {
        Fetch { url, size, correlation_id: "", progress: None }
    }
}

/// What a download brought.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    pub bytes: Bytes,
    /// The bytes' hex SHA-256, from stores that checked them against a digest of their own.
    pub sha256: Option<String>,
}

impl From<Bytes> for Fetched {
    fn from(bytes: Bytes) -> Self {
        Fetched { bytes, sha256: None }
    }
}

/// A download's body as it arrives.
pub type Chunks = futures::stream::BoxStream<'static, std::result::Result<Bytes, FetchFailure>>;

/// A download under way ([`LinkStore::open`]).
pub struct Opened {
    pub chunks: Chunks,
    /// Where the first chunk is in the object: the offset asked for, or 0 from a store that
    /// cannot start elsewhere (the reader then skips what it already has).
    pub offset: u64,
    /// The bytes' hex SHA-256 as the store keeps it (the object store's digest), checked at the end.
    pub sha256: Option<String>,
}

impl Opened {
    /// The whole of `bytes`, from offset 0.
    pub fn whole(fetched: Fetched) -> Opened {
        Opened {
            chunks: Box::pin(futures::stream::once(async { Ok(fetched.bytes) })),
            offset: 0,
            sha256: fetched.sha256,
        }
    }
}

/// A claim-check backend. Implemented in core for Plik, plain HTTP, S3, the JetStream object
/// store and the host's handlers ([`HandlerStore`]).
pub trait LinkStore: Send + Sync {
    /// Stores the bytes and returns the URL a receiver fetches them from (and their sha256 when
    /// `checks_sha256`).
    fn upload<'a>(&'a self, upload: Upload<'a>) -> BoxFuture<'a, Result<Stored>>;

    /// One attempt to fetch `fetch.url`, reading at most `fetch.size + 1` bytes so a lying server
    /// cannot make the receiver buffer without bound. What went wrong is reported as it was seen;
    /// the receive plan decides what it means.
    fn download<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<Fetched, FetchFailure>>;

    /// One attempt to stream `fetch.url` from byte `offset`, for a receiver that does not hold
    /// the whole payload (and resumes a broken download where it stopped). The HTTP stores and S3
    /// ask for a range; the default downloads the whole object and streams it from 0.
    fn open<'a>(&'a self, fetch: Fetch<'a>, offset: u64) -> BoxFuture<'a, Result<Opened, FetchFailure>> {
        let _ = offset;
        Box::pin(async move { self.download(fetch).await.map(Opened::whole) })
    }

    /// True when `upload` returns the bytes' sha256: the client then makes no hash pass of its own.
    fn checks_sha256(&self) -> bool {
        false
    }

    /// False for a store that only downloads (a host's download handler without an upload
    /// handler): uploads then go to the next store that takes them.
    fn takes_uploads(&self) -> bool {
        true
    }

    /// The URLs this store serves. A link no store serves is refused with URL_NOT_ALLOWED before
    /// any request is made.
    fn scopes(&self) -> Vec<UrlScope>;

    /// Removes a link's object once no delivery can need it. Ok(false) from a store that cannot
    /// delete; a link already gone is Ok(true) (deleting is idempotent).
    fn delete<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<bool>> {
        let _ = url;
        Box::pin(async { Ok(false) })
    }
}
