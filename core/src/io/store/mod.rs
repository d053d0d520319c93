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
        sha256: crate::io::byte_source::SourceDigest,
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
                // `held`: what is read and not yet handed on. A chunk read while nothing is held
                // is kept as it is and sliced (a source's 256 KiB chunks are not copied); only
                // smaller pieces are joined.
                let state = (chunks, Bytes::new(), false);
                futures::stream::unfold(state, move |(mut chunks, mut held, mut ended)| async move {
                    let mut joined: Option<bytes::BytesMut> = None;
                    while !ended && joined.as_ref().map_or(held.len(), |j| j.len()) < chunk_size {
                        match chunks.next().await {
                            Some(Ok(chunk)) if held.is_empty() && joined.is_none() => held = chunk,
                            Some(Ok(chunk)) => {
                                let buf = joined.get_or_insert_with(|| {
                                    let mut buf = bytes::BytesMut::with_capacity(chunk_size.max(held.len()));
                                    buf.extend_from_slice(&held);
                                    buf
                                });
                                buf.extend_from_slice(&chunk);
                            }
                            Some(Err(e)) => return Some((Err(e), (chunks, Bytes::new(), true))),
                            None => ended = true,
                        }
                    }
                    if let Some(buf) = joined {
                        held = buf.freeze();
                    }
                    if held.is_empty() {
                        return None;
                    }
                    let chunk = held.split_to(chunk_size.min(held.len()));
                    Some((Ok(chunk), (chunks, held, ended)))
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
            Body::Chunks { size, mut chunks, .. } => {
                let mut all = bytes::BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn chunked(pieces: Vec<Bytes>) -> Body {
        let size = pieces.iter().map(|p| p.len() as u64).sum();
        Body::Chunks {
            size,
            chunks: futures::stream::iter(pieces.into_iter().map(Ok)).boxed(),
            sha256: Default::default(),
        }
    }

    #[tokio::test]
    async fn chunks_are_regrouped_to_the_size_asked_and_large_ones_are_sliced_not_copied() {
        let data: Vec<u8> = (0..=255).collect();
        let pieces = [3, 5, 1, 7, 0, 100, 140].iter().scan(0, |at, &n| {
            let piece = Bytes::copy_from_slice(&data[*at..*at + n]);
            *at += n;
            Some(piece)
        });
        let out: Vec<Bytes> = chunked(pieces.collect()).into_chunks(64).map(Result::unwrap).collect().await;
        assert_eq!(out.iter().map(Bytes::len).collect::<Vec<_>>(), [64, 64, 64, 64]);
        assert_eq!(out.concat(), data);

        let big = Bytes::from(data.clone());
        let out: Vec<Bytes> = chunked(vec![big.clone()]).into_chunks(128).map(Result::unwrap).collect().await;
        assert_eq!((out[0].as_ptr(), out[1].as_ptr()), (big.as_ptr(), big[128..].as_ptr()), "copied");
    }

    #[tokio::test]
    async fn a_failed_read_ends_the_chunks_with_its_error() {
        let chunks = futures::stream::iter([Ok(Bytes::from_static(b"ab")), Err(std::io::Error::other("gone"))]);
        let body = Body::Chunks { size: 10, chunks: chunks.boxed(), sha256: Default::default() };
        let out: Vec<_> = body.into_chunks(4).collect().await;
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap_err().to_string(), "gone");
    }
}
