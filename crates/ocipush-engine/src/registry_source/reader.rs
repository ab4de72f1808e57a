//! A registry source's blobs as the producers read them: a blocking `Read` over a blob's GET,
//! run on a producer's blocking thread, that resumes a cut-off body with `Range` from where it
//! stopped (or skips what it already had when the registry ignores ranges), so a flaky source
//! costs the bytes lost, not the blob. Every open starts the blob over, as a retried upload
//! needs; the producer verifies digest and size as for any other source.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ocipush_oci::{parse_sha256, Descriptor, Digest};
use ocipush_registry::retry_count::note_retry;
use ocipush_registry::{BlobBody, RegistryError, Repository};
use ocipush_source::{BlobReader, SourceError};
use tokio::runtime::Handle;

/// The largest blob read whole into memory (an image config).
const SMALL_LIMIT: u64 = 8 * 1024 * 1024;

/// The blobs of one registry repository, by digest.
pub struct RegistryBlobs {
    repository: Repository,
    runtime: Handle,
    /// Sizes the manifests give: what `size` and `exists` answer.
    sizes: Mutex<HashMap<Digest, u64>>,
    /// Small blobs already read (configs fetched when the source was opened).
    small: Mutex<HashMap<Digest, Bytes>>,
    /// Bytes fetched per blob, every read counted (what the report says was read).
    fetched: Mutex<HashMap<Digest, Arc<AtomicU64>>>,
}

impl std::fmt::Debug for RegistryBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryBlobs")
            .field("repository", &self.repository.name())
            .finish()
    }
}

impl RegistryBlobs {
    /// Blobs of `repository`. Must be called inside the Tokio runtime its reads will use.
    pub(crate) fn new(repository: Repository) -> Self {
        RegistryBlobs {
            repository,
            runtime: Handle::current(),
            sizes: Mutex::default(),
            small: Mutex::default(),
            fetched: Mutex::default(),
        }
    }

    /// Records a blob a manifest names, with the size it gives.
    pub(crate) fn know(&self, digest: &Digest, size: u64) {
        lock(&self.sizes).insert(digest.clone(), size);
    }

    /// Reads a small blob now (while opening), verified, for later [`BlobReader::read_small`].
    pub(crate) async fn prefetch(&self, blob: &Descriptor) -> Result<(), RegistryError> {
        if blob.size() > SMALL_LIMIT {
            return Ok(());
        }
        let mut body = self.repository.get_blob(blob.digest(), 0).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size()).unwrap_or(0));
        while let Some(chunk) = body.chunk().await? {
            if bytes.len() as u64 + chunk.len() as u64 > blob.size() {
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        // A config that does not match is simply not kept: the push reads it again, verified.
        self.counter(blob.digest())
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if ocipush_oci::sha256_of(&bytes) == *blob.digest() {
            lock(&self.small).insert(blob.digest().clone(), Bytes::from(bytes));
        }
        Ok(())
    }

    fn digest_of(&self, path: &str) -> Result<Digest, SourceError> {
        parse_sha256(path).map_err(|e| SourceError::Unsupported {
            what: format!("reading `{path}` from {}: {e}", self.repository.name()),
        })
    }

    fn counter(&self, digest: &Digest) -> Arc<AtomicU64> {
        lock(&self.fetched)
            .entry(digest.clone())
            .or_default()
            .clone()
    }

    fn reader(&self, digest: Digest) -> Result<BlobRead, SourceError> {
        let size = lock(&self.sizes).get(&digest).copied();
        let Some(size) = size else {
            return Err(SourceError::Unsupported {
                what: format!(
                    "reading {digest} from {}: no manifest of the source names it",
                    self.repository.name()
                ),
            });
        };
        Ok(BlobRead {
            fetched: self.counter(&digest),
            repository: self.repository.clone(),
            runtime: self.runtime.clone(),
            digest,
            size,
            position: 0,
            skip: 0,
            body: None,
            current: Bytes::new(),
            failures: 0,
            failed_at: None,
        })
    }

    /// Reading blocks on the runtime: never from one of its own tasks.
    fn may_block(&self, path: &str) -> Result<(), SourceError> {
        match Handle::try_current() {
            Err(_) => Ok(()),
            Ok(_) => Err(SourceError::Unsupported {
                what: format!(
                    "reading {path} of a registry source from async code (open it with its config read)"
                ),
            }),
        }
    }
}

impl BlobReader for RegistryBlobs {
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        let digest = self.digest_of(path)?;
        Ok(Box::new(self.reader(digest)?))
    }

    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let digest = self.digest_of(path)?;
        if let Some(bytes) = lock(&self.small).get(&digest) {
            return Ok(bytes.to_vec());
        }
        self.may_block(path)?;
        let mut reader = self.reader(digest)?;
        let mut bytes = Vec::new();
        (&mut reader)
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| SourceError::Unsupported {
                what: format!("reading {path}: {e}"),
            })?;
        if bytes.len() as u64 > limit {
            return Err(SourceError::Unsupported {
                what: format!("reading {path}: over {limit} bytes"),
            });
        }
        Ok(bytes)
    }

    fn exists(&self, path: &str) -> bool {
        self.size(path).is_some()
    }

    fn size(&self, path: &str) -> Option<u64> {
        let digest = parse_sha256(path).ok()?;
        lock(&self.sizes).get(&digest).copied()
    }

    fn fetched(&self, path: &str) -> u64 {
        match parse_sha256(path) {
            Ok(digest) => lock(&self.fetched)
                .get(&digest)
                .map_or(0, |n| n.load(Ordering::Relaxed)),
            Err(_) => 0,
        }
    }

    fn head(&self, path: &str) -> Result<[u8; 4], SourceError> {
        let mut head = [0u8; 4];
        let small = self.read_small(path, SMALL_LIMIT).ok();
        match small {
            Some(bytes) => {
                let n = bytes.len().min(4);
                head[..n].copy_from_slice(&bytes[..n]);
            }
            None => {
                self.may_block(path)?;
                let mut reader = self.open(path)?;
                let _ = reader.read(&mut head);
            }
        }
        Ok(head)
    }
}

/// One blob's bytes, read from a blocking thread.
struct BlobRead {
    fetched: Arc<AtomicU64>,
    repository: Repository,
    runtime: Handle,
    digest: Digest,
    size: u64,
    /// Bytes handed out so far.
    position: u64,
    /// Bytes of the current body to drop: it started before `position` (the registry sent the
    /// whole blob again instead of the range).
    skip: u64,
    body: Option<BlobBody>,
    current: Bytes,
    /// Failures in a row without a byte of progress between them.
    failures: u32,
    failed_at: Option<u64>,
}

impl BlobRead {
    /// Makes `current` hold the next bytes; leaves it empty at the blob's end.
    fn fill(&mut self) -> io::Result<()> {
        loop {
            let body = match &mut self.body {
                Some(body) => body,
                None => match self
                    .runtime
                    .block_on(self.repository.get_blob(&self.digest, self.position))
                {
                    Ok(body) => {
                        self.skip = self.position - body.start.min(self.position);
                        self.body.insert(body)
                    }
                    Err(e) => {
                        self.failed(e)?;
                        continue;
                    }
                },
            };
            match self.runtime.block_on(body.chunk()) {
                Ok(Some(mut chunk)) => {
                    self.fetched
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if self.skip > 0 {
                        let dropped = self.skip.min(chunk.len() as u64);
                        let _ = chunk.split_to(dropped as usize);
                        self.skip -= dropped;
                    }
                    if !chunk.is_empty() {
                        self.current = chunk;
                        return Ok(());
                    }
                }
                Ok(None) => {
                    self.body = None;
                    // Past the size, the verifying reader refuses the blob; short of it, the
                    // body was cut off without an error and the rest is asked for again.
                    if self.position >= self.size {
                        return Ok(());
                    }
                    self.failed_without_error()?;
                }
                Err(e) => {
                    self.body = None;
                    self.failed(e)?;
                }
            }
        }
    }

    /// A read failed: waits and lets the caller try again from `position`, or gives up.
    fn failed(&mut self, error: RegistryError) -> io::Result<()> {
        if self.failed_at != Some(self.position) {
            // Progress since the last failure: a long blob from a flaky source gets its
            // retries per stretch, not for the whole blob.
            self.failures = 0;
            self.failed_at = Some(self.position);
        }
        let policy = self.repository.client().retry_policy().clone();
        if !error.is_transient() || self.failures >= policy.retries {
            return Err(io::Error::other(error));
        }
        self.failures += 1;
        note_retry();
        let delay = policy.delay(self.failures, None);
        tracing::warn!(
            "reading {} from {}: {error}; resuming at byte {} (retry {} of {}) in {:.1}s",
            self.digest,
            self.repository.client().registry(),
            self.position,
            self.failures,
            policy.retries,
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
        Ok(())
    }

    fn failed_without_error(&mut self) -> io::Result<()> {
        let error = RegistryError::Transfer {
            registry: self.repository.client().registry().to_string(),
            action: format!("GET blob {}", self.digest),
            detail: format!(
                "the body ended after {} of {} bytes",
                self.position, self.size
            ),
        };
        self.failed(error)
    }
}

impl Read for BlobRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.current.is_empty() {
            self.fill()?;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        self.position += n as u64;
        Ok(n)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
