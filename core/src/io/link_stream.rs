//! Link payloads received as streams (spec/PROTOCOL.md §8.3.2): a payload of any size goes to a
//! file or a socket in chunks, never whole in memory. The bytes are checked as they arrive
//! ([`LinkCheck`]), and a broken download resumes where it stopped (a range request where the
//! store has them), under the same retry policy as a buffered receive.

use super::metrics::Counters;
use super::store::{Chunks, Fetch, LinkStore, Progress};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{Envelope, Incoming, LinkCheck, LinkFetch, PayloadType, ReceiveRules, retry_after};
use bytes::Bytes;
use futures::StreamExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// A message whose link payloads are streamed: nothing is fetched until a link is read.
pub struct StreamedMessage {
    pub envelope: Envelope,
    pub payloads: Vec<StreamedPayload>,
    /// The subject the message arrived on (None when decoded from bytes).
    pub subject: Option<String>,
    pub reply: Option<String>,
    /// The sender's trace context from the message's headers (spec/PROTOCOL.md §13.1).
    pub trace: Option<crate::protocol::TraceContext>,
}

/// One payload of a [`StreamedMessage`], in the envelope's order.
pub enum StreamedPayload {
    /// A direct payload, decoded and verified.
    Value(Incoming),
    /// A link payload, to be read.
    Link(Box<LinkStream>),
}

/// Where a message's links are read from: the client's store for each, its rules, and who hears
/// of the bytes.
pub(super) struct Source {
    pub store: Arc<dyn LinkStore>,
    pub rules: Arc<ReceiveRules>,
    pub correlation_id: String,
    pub progress: Option<Progress>,
    pub metrics: Arc<Counters>,
}

/// A link payload's bytes as they arrive. Read it with [`next_chunk`](Self::next_chunk), as a
/// `futures::Stream` ([`into_stream`](Self::into_stream)) or a `tokio::io::AsyncRead`
/// ([`into_async_read`](Self::into_async_read)), or write it to a file ([`save`](Self::save)).
/// Its last read checks the size and sha256: a stream that ends without error delivered exactly
/// the bytes the sender sent.
pub struct LinkStream {
    dataname: String,
    payload_type: PayloadType,
    store: Arc<dyn LinkStore>,
    rules: Arc<ReceiveRules>,
    fetch: LinkFetch,
    correlation_id: String,
    progress: Option<Progress>,
    /// None once the stream ended or failed.
    check: Option<LinkCheck>,
    body: Option<Chunks>,
    /// Bytes at the start of the current body that were already read (a store that cannot
    /// start where the last attempt stopped sends them again).
    skip: u64,
    store_sha256: Option<String>,
    /// The bytes' sha256, once they all arrived and were checked.
    sha256: Option<String>,
    /// The receiving client's counts (spec/PROTOCOL.md §13.3), and when the first request went.
    metrics: Arc<Counters>,
    started: Option<Instant>,
}

impl LinkStream {
    /// The link `fetch` names, read from `store` (the one its URL's scope matched).
    pub(super) fn new(
        dataname: String,
        payload_type: PayloadType,
        fetch: LinkFetch,
        check: LinkCheck,
        from: Source,
    ) -> Self {
        let Source { store, rules, correlation_id, progress, metrics } = from;
        LinkStream {
            metrics,
            started: None,
            dataname,
            payload_type,
            store,
            rules,
            fetch,
            correlation_id,
            progress,
            check: Some(check),
            body: None,
            skip: 0,
            store_sha256: None,
            sha256: None,
        }
    }

    pub fn dataname(&self) -> &str {
        &self.dataname
    }

    pub fn payload_type(&self) -> PayloadType {
        self.payload_type
    }

    /// The link URL.
    pub fn url(&self) -> &str {
        &self.fetch.url
    }

    /// The envelope's size of the payload.
    pub fn size(&self) -> u64 {
        self.fetch.size
    }

    /// The hex sha256 of the bytes, once the last read checked them (None before).
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.as_deref()
    }

    /// Nothing read yet: the whole payload is still to come.
    fn unread(&self, what: &str) -> Result<()> {
        match self.started {
            None => Ok(()),
            Some(_) => Err(Error::invalid_argument(format!(
                "{what}: bytes of {:?} were already read; only a link not yet read can be saved whole",
                self.dataname
            ))
            .with_correlation_id(&self.correlation_id)),
        }
    }

    /// The next chunk; None once every byte arrived and was checked. Errors as a buffered
    /// receive's: DOWNLOAD_FAILED once the retries are spent, CHECKSUM_MISMATCH for other bytes.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let Some(check) = &mut self.check else { return Ok(None) };
            let body = match &mut self.body {
                Some(body) => body,
                None => {
                    if !self.fetch.delay.is_zero() {
                        tokio::time::sleep(self.fetch.delay).await;
                    }
                    self.started.get_or_insert_with(Instant::now);
                    let fetch = Fetch::new(&self.fetch.url, self.fetch.size);
                    let fetch = Fetch { correlation_id: &self.correlation_id, ..fetch };
                    match self.store.open(fetch, check.received()).await {
                        Ok(opened) => {
                            self.skip = check.received().saturating_sub(opened.offset);
                            self.store_sha256 = opened.sha256;
                            self.body.insert(opened.chunks)
                        }
                        Err(failure) => {
                            let retry = retry_after(&self.fetch, failure, &self.rules);
                            self.retry(retry)?;
                            continue;
                        }
                    }
                }
            };
            match body.next().await {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let n = self.skip.min(chunk.len() as u64) as usize;
                        chunk = chunk.slice(n..);
                        self.skip -= n as u64;
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    if let Err(e) = check.update(&chunk) {
                        return Err(self.end(e));
                    }
                    // Bytes arrived: a later break starts a fresh count of attempts.
                    self.fetch.attempt = 1;
                    self.fetch.delay = Duration::ZERO;
                    if let Some(report) = &self.progress {
                        report(chunk.len() as u64);
                    }
                    return Ok(Some(chunk));
                }
                Some(Err(failure)) => {
                    self.body = None;
                    let retry = retry_after(&self.fetch, failure, &self.rules);
                    self.retry(retry)?;
                }
                None => {
                    self.body = None;
                    let check = self.check.take().expect("checked above");
                    let size = check.size();
                    self.sha256 = Some(check.finish(self.store_sha256.as_deref()).map_err(|e| self.end(e))?);
                    let took = self.started.map_or(Duration::ZERO, |t| t.elapsed());
                    self.metrics.downloaded(size, took);
                    return Ok(None);
                }
            }
        }
    }

    /// After a failed attempt: the next one is due after `retry`'s delay, or the stream fails.
    fn retry(&mut self, retry: Result<Duration>) -> Result<()> {
        match retry {
            Ok(delay) => {
                self.metrics.download_retried();
                tracing::debug!(correlation_id = %self.correlation_id, attempt = self.fetch.attempt, "link stream broke; resuming");
                self.fetch.attempt += 1;
                self.fetch.delay = delay;
                Ok(())
            }
            Err(e) => Err(self.end(e)),
        }
    }

    fn end(&mut self, e: Error) -> Error {
        if e.code == ErrorCode::ChecksumMismatch {
            self.metrics.checksum_failed();
        }
        self.check = None;
        self.body = None;
        e.with_correlation_id(&self.correlation_id)
    }

    /// The chunks as a `futures::Stream`; it ends after the first error.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes>> + Send + 'static {
        futures::stream::try_unfold(
            self,
            |mut link| async move { Ok(link.next_chunk().await?.map(|chunk| (chunk, link))) },
        )
    }

    /// The bytes as a `tokio::io::AsyncRead`. Errors are `std::io::Error`s whose inner error is
    /// the [`Error`] with its code.
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + 'static {
        let chunks = self.into_stream().map(|chunk| chunk.map_err(std::io::Error::other));
        tokio_util::io::StreamReader::new(Box::pin(chunks))
    }

    /// Writes the bytes to `path` and returns how many there were. They go to `<path>.partial`
    /// first, renamed to `path` once every byte is checked; on any error the partial file is
    /// removed and `path` is left as it was. So a file at `path` holds exactly the bytes a sender
    /// sent.
    ///
    /// INVALID_ARGUMENT once bytes were read: the file would miss them, yet the check (which
    /// covers every byte received) would pass.
    pub async fn save(&mut self, path: &Path) -> Result<u64> {
        self.unread("save")?;
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let io_error = |e: std::io::Error| Error::new(ErrorCode::DownloadFailed, format!("{}: {e}", path.display()));
        let written = async {
            let mut file = tokio::fs::File::create(&partial).await.map_err(io_error)?;
            let mut total = 0u64;
            while let Some(chunk) = self.next_chunk().await? {
                file.write_all(&chunk).await.map_err(io_error)?;
                total += chunk.len() as u64;
            }
            file.flush().await.map_err(io_error)?;
            tokio::fs::rename(&partial, path).await.map_err(io_error)?;
            Ok(total)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        written.map_err(|e: Error| e.with_correlation_id(&self.correlation_id))
    }

    /// Every byte in memory, checked; INVALID_ARGUMENT once bytes were read, as for `save`.
    pub async fn bytes(mut self) -> Result<Bytes> {
        self.unread("bytes")?;
        let mut bytes = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(bytes))
    }
}
