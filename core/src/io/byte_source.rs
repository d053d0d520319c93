//! Byte payloads sent from a file or a reader (spec/PROTOCOL.md §7.5): one too large to ever go
//! direct is read chunk by chunk while it is uploaded, so it is never held whole; a smaller one
//! is read into memory and sent like any other bytes.

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{Data, Outgoing, SendLimits, streams_source};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use sha2::Digest;
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much a source is read at a time, and how many chunks are read ahead of the upload.
const READ_CHUNK: usize = 256 * 1024;
const READ_AHEAD: usize = 4;

/// A source's SHA-256, there once its chunks have all been read: the envelope's `sha256`, and the
/// digest a store that keeps one (the object store) takes instead of hashing the bytes again.
pub type SourceDigest = Arc<Mutex<Option<[u8; 32]>>>;

/// The bytes of an image, audio, video or binary payload, left where they are until the send
/// reads them: a file, or a reader of a stated size. A file can be sent any number of times; a
/// reader once.
#[derive(Clone)]
pub struct ByteSource {
    size: u64,
    from: Arc<From>,
}

enum From {
    File(PathBuf),
    /// Taken by the first send.
    Reader(Mutex<Option<Pin<Box<dyn AsyncRead + Send>>>>),
}

impl ByteSource {
    /// The file at `path`, whose size is read now: INVALID_ARGUMENT when it is not a readable
    /// regular file. It must keep that size until it is sent.
    pub fn file(path: impl AsRef<Path>) -> Result<ByteSource> {
        let path = path.as_ref();
        let invalid = |why: String| Error::new(ErrorCode::InvalidArgument, format!("{}: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| invalid(e.to_string()))?;
        if !meta.is_file() {
            return Err(invalid("not a regular file".into()));
        }
        Ok(ByteSource { size: meta.len(), from: Arc::new(From::File(path.to_owned())) })
    }

    /// `size` bytes from `reader`, which must give exactly that many: fewer or more fails the
    /// send with UPLOAD_FAILED, and nothing is published.
    pub fn reader(reader: impl AsyncRead + Send + 'static, size: u64) -> ByteSource {
        ByteSource { size, from: Arc::new(From::Reader(Mutex::new(Some(Box::pin(reader))))) }
    }

    /// `size` bytes from `read`, a blocking read (a host's file object, a C callback): it fills
    /// the buffer it is given and returns how many bytes it put there, 0 at the end. It is called
    /// on the runtime's blocking threads, one call at a time, while the send reads the source.
    pub fn blocking_reader<F>(read: F, size: u64) -> ByteSource
    where
        F: FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
    {
        // Ok(None) ends the stream: the state is never asked for again.
        let chunks = futures::stream::try_unfold(read, |mut read| async move {
            let (read, chunk) = tokio::task::spawn_blocking(move || {
                let mut chunk = vec![0; READ_CHUNK];
                let n = read(&mut chunk)?;
                if n > chunk.len() {
                    return Err(std::io::Error::other(format!(
                        "the reader said it read {n} bytes into {}",
                        chunk.len()
                    )));
                }
                chunk.truncate(n);
                Ok((read, chunk))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok::<_, std::io::Error>((!chunk.is_empty()).then(|| (Bytes::from(chunk), read)))
        });
        ByteSource::from_chunks(chunks, size)
    }

    /// `size` bytes in the chunks `chunks` gives: a host's asynchronous source (a Node
    /// `Readable`). An error ends it and fails the send.
    pub fn from_chunks<S>(chunks: S, size: u64) -> ByteSource
    where
        S: futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        ByteSource::reader(tokio_util::io::StreamReader::new(chunks), size)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's path, for a file source.
    pub fn path(&self) -> Option<&Path> {
        match &*self.from {
            From::File(path) => Some(path),
            From::Reader(_) => None,
        }
    }

    /// The reader, opened: a file from its start, a reader the first time only.
    async fn open(&self) -> Result<Pin<Box<dyn AsyncRead + Send>>> {
        let failed = |why: String| Error::new(ErrorCode::UploadFailed, why);
        match &*self.from {
            From::File(path) => match tokio::fs::File::open(path).await {
                Ok(file) => Ok(Box::pin(file)),
                Err(e) => Err(failed(format!("{}: {e}", path.display()))),
            },
            From::Reader(slot) => {
                let taken = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
                taken.ok_or_else(|| failed("the payload's reader was already read by an earlier send".into()))
            }
        }
    }

    /// Every byte, for a payload small enough to go direct (at most `size`; checked).
    pub(super) async fn read_all(&self) -> Result<Bytes> {
        let size = usize::try_from(self.size)
            .map_err(|_| Error::new(ErrorCode::PayloadTooLarge, "the payload does not fit in memory"))?;
        let mut reader = self.open().await?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(size)
            .map_err(|_| Error::new(ErrorCode::PayloadTooLarge, format!("cannot allocate {size} bytes")))?;
        // One byte past the size tells a source that grew from one of the right size.
        (&mut reader).take(self.size + 1).read_to_end(&mut buf).await.map_err(|e| read_failed(&e))?;
        check_length(buf.len() as u64, self.size)?;
        Ok(Bytes::from(buf))
    }

    /// The bytes in chunks as they are read, each one counted and hashed; the stream fails
    /// (so the upload fails) when the source gives more or fewer than `size` bytes. The digest
    /// is in `digest` once the stream has ended without error. A task reads and hashes up to
    /// [`READ_AHEAD`] chunks ahead, so both overlap the upload instead of adding to its time.
    /// Call it in the runtime's context.
    pub(super) fn chunks(&self, digest: SourceDigest) -> BoxStream<'static, std::io::Result<Bytes>> {
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let mut reading = Reading { source: self.clone(), reader: None, read: 0, hasher: sha2::Sha256::new(), digest };
        tokio::spawn(async move {
            loop {
                let next = reading.next().await.transpose();
                let last = !matches!(next, Some(Ok(_)));
                // A closed channel: the upload stopped, and nothing more is read.
                if let Some(item) = next
                    && tx.send(item).await.is_err()
                {
                    return;
                }
                if last {
                    return;
                }
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
    }
}

/// The payloads with every file or reader small enough to ever go direct read into memory
/// ([`streams_source`]): the plan then treats them as any bytes. The rest stay sources.
pub(super) async fn read_unstreamed(payloads: Vec<Outgoing>, limits: &SendLimits) -> Result<Vec<Outgoing>> {
    let mut read = Vec::with_capacity(payloads.len());
    for mut payload in payloads {
        if let Some(source) = payload.source.take_if(|source| !streams_source(source.size, limits)) {
            payload.data = Data::Bytes(source.read_all().await?);
        }
        read.push(payload);
    }
    Ok(read)
}

struct Reading {
    source: ByteSource,
    reader: Option<Pin<Box<dyn AsyncRead + Send>>>,
    read: u64,
    hasher: sha2::Sha256,
    digest: SourceDigest,
}

impl Reading {
    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        let as_io = |e: Error| std::io::Error::other(e.message);
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => self.reader.insert(self.source.open().await.map_err(as_io)?),
        };
        // One byte past the size is enough to see a source that grew.
        let left = (self.source.size - self.read + 1).min(READ_CHUNK as u64) as usize;
        let mut chunk = BytesMut::with_capacity(left);
        while chunk.len() < left {
            if reader.read_buf(&mut chunk).await? == 0 {
                break;
            }
        }
        self.read += chunk.len() as u64;
        if chunk.is_empty() || self.read > self.source.size {
            check_length(self.read, self.source.size).map_err(as_io)?;
            let digest = std::mem::take(&mut self.hasher).finalize();
            *self.digest.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(digest.into());
            return Ok(None);
        }
        self.hasher.update(&chunk);
        Ok(Some(chunk.freeze()))
    }
}

fn check_length(read: u64, size: u64) -> Result<()> {
    if read == size {
        return Ok(());
    }
    let what = if read > size { "more" } else { "fewer" };
    Err(Error::new(ErrorCode::UploadFailed, format!("the payload's source gave {what} bytes than its size of {size}")))
}

fn read_failed(e: &std::io::Error) -> Error {
    Error::new(ErrorCode::UploadFailed, format!("reading the payload's source: {e}"))
}

impl fmt::Debug for ByteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.from {
            From::File(path) => write!(f, "ByteSource(file {}, {} bytes)", path.display(), self.size),
            From::Reader(_) => write!(f, "ByteSource(reader, {} bytes)", self.size),
        }
    }
}

/// The same source (a clone of it), not equal contents.
impl PartialEq for ByteSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.from, &other.from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(source: &ByteSource) -> (std::io::Result<Vec<u8>>, Option<String>) {
        let hex = |digest: &SourceDigest| digest.lock().unwrap().map(hex::encode);
        let digest = Arc::new(Mutex::new(None));
        let mut chunks = source.chunks(digest.clone());
        let mut all = Vec::new();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(c) => all.extend_from_slice(&c),
                Err(e) => return (Err(e), hex(&digest)),
            }
        }
        (Ok(all), hex(&digest))
    }

    #[tokio::test]
    async fn a_file_is_read_in_chunks_and_hashed_any_number_of_times() {
        let bytes: Vec<u8> = (0..READ_CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        let source = ByteSource::file(file.path()).unwrap();
        assert_eq!(source.size(), bytes.len() as u64);
        for _ in 0..2 {
            let (read, digest) = collect(&source).await;
            assert_eq!(read.unwrap(), bytes);
            assert_eq!(digest.unwrap(), crate::protocol::sha256_hex(&bytes));
        }
        assert_eq!(source.read_all().await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_reader_of_the_wrong_size_fails_and_is_read_once() {
        let (read, digest) = collect(&ByteSource::reader(&b"12345"[..], 4)).await;
        assert!(read.unwrap_err().to_string().contains("more bytes than its size of 4"));
        assert_eq!(digest, None);
        let (read, _) = collect(&ByteSource::reader(&b"123"[..], 4)).await;
        assert!(read.unwrap_err().to_string().contains("fewer bytes than its size of 4"));
        let e = ByteSource::reader(&b"123"[..], 4).read_all().await.unwrap_err();
        assert_eq!(e.code, ErrorCode::UploadFailed);

        let source = ByteSource::reader(&b"1234"[..], 4);
        let (read, digest) = collect(&source).await;
        assert_eq!(read.unwrap(), b"1234");
        assert_eq!(digest.unwrap(), crate::protocol::sha256_hex(b"1234"));
        let (read, _) = collect(&source).await;
        assert!(read.unwrap_err().to_string().contains("already read"));
    }

    /// A host's read as the bindings pass it: short reads, then 0; an error or an impossible
    /// count fails the send.
    #[tokio::test]
    async fn a_blocking_reader_is_read_off_the_runtime_in_short_reads_to_its_end() {
        let bytes: Vec<u8> = (0..READ_CHUNK + 1000).map(|i| (i % 253) as u8).collect();
        let (mut at, all, calls) = (0, bytes.clone(), Arc::new(Mutex::new(Vec::new())));
        let seen = calls.clone();
        let source = ByteSource::blocking_reader(
            move |buf: &mut [u8]| {
                seen.lock().unwrap().push(buf.len());
                let n = buf.len().min(7000).min(all.len() - at);
                buf[..n].copy_from_slice(&all[at..at + n]);
                at += n;
                Ok(n)
            },
            bytes.len() as u64,
        );
        let (read, digest) = collect(&source).await;
        assert_eq!(read.unwrap(), bytes);
        assert_eq!(digest.unwrap(), crate::protocol::sha256_hex(&bytes));
        assert_eq!(calls.lock().unwrap().len(), bytes.len().div_ceil(7000) + 1, "short reads, then one 0");

        let failing = ByteSource::blocking_reader(|_: &mut [u8]| Err(std::io::Error::other("disk on fire")), 10);
        let e = failing.read_all().await.unwrap_err();
        assert_eq!(e.code, ErrorCode::UploadFailed);
        assert!(e.message.contains("disk on fire"), "{e}");
        let lying = ByteSource::blocking_reader(|buf: &mut [u8]| Ok(buf.len() + 1), 10);
        assert!(lying.read_all().await.unwrap_err().message.contains("said it read"));
        let short = ByteSource::blocking_reader(|_: &mut [u8]| Ok(0), 10);
        assert!(short.read_all().await.unwrap_err().message.contains("fewer bytes than its size of 10"));
    }

    #[test]
    fn a_missing_file_or_a_directory_is_invalid_argument() {
        let dir = tempfile::tempdir().unwrap();
        for path in [dir.path().join("missing"), dir.path().to_owned()] {
            assert_eq!(ByteSource::file(&path).unwrap_err().code, ErrorCode::InvalidArgument);
        }
    }
}
