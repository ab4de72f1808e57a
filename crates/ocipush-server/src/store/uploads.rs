//! Upload sessions: bytes are appended to `uploads/<uuid>/data` as they stream in, hashed on the way, and
//! committed into `blobs/` by a rename once the client's digest is verified. Nothing is ever held in memory
//! beyond one body chunk and the running sha256 state.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{not_found_as_none, Store};
use crate::names::Digest;

/// Write buffer for appends: body chunks are small, and one write syscall per chunk would dominate.
const WRITE_BUFFER: usize = 256 * 1024;

/// Why an upload operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The session was committed or cancelled by another request while this one waited for it.
    #[error("upload session is gone")]
    Gone,
    /// A chunk did not start where the data so far ends; `size` is what the session holds.
    #[error("chunk starts at {start} but the upload holds {size} bytes")]
    RangeMismatch { start: u64, size: u64 },
    /// The body's length differed from what `Content-Range` announced; the chunk was discarded.
    #[error("chunk announced {expected} bytes but carried {got}")]
    SizeMismatch { expected: u64, got: u64 },
    /// The client's body stream failed (disconnect, framing error); the chunk was discarded.
    #[error("request body failed: {0}")]
    Body(String),
    /// The content's digest is not the one the client claimed; the session was discarded.
    #[error("content digest is {computed}")]
    DigestMismatch { computed: Digest },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One upload session. Requests on the same session are serialised by `state`.
#[derive(Debug)]
pub struct UploadSlot {
    uuid: String,
    name: String,
    dir: PathBuf,
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Running hash of the first `.1` bytes of the data file, if known. Unknown after a restart; the commit
    /// then re-reads the file (streaming) instead.
    hash: Option<(Sha256, u64)>,
    /// Set once the session was committed or cancelled.
    gone: bool,
}

impl UploadSlot {
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    fn data_path(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Bytes received so far.
    pub async fn size(&self) -> Result<u64, UploadError> {
        let state = self.state.lock().await;
        self.current_size(&state).await
    }

    async fn current_size(&self, state: &SlotState) -> Result<u64, UploadError> {
        if state.gone {
            return Err(UploadError::Gone);
        }
        match not_found_as_none(tokio::fs::metadata(self.data_path()).await)? {
            Some(meta) => Ok(meta.len()),
            None => Err(UploadError::Gone),
        }
    }

    /// Appends a request body. With `range = Some((start, len))` (from `Content-Range`) the chunk must start
    /// at the current size and carry exactly `len` bytes. On any failure the data file is cut back to its
    /// previous length, so the client can retry the chunk. Returns the new size.
    pub async fn append<S, E>(&self, body: S, range: Option<(u64, u64)>) -> Result<u64, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut state = self.state.lock().await;
        let size = self.current_size(&state).await?;
        if let Some((start, _)) = range {
            if start != size {
                return Err(UploadError::RangeMismatch { start, size });
            }
        }
        // Hash on a copy so a failed chunk leaves the session's hash matching the truncated file.
        let mut hash = match &state.hash {
            Some((hasher, hashed)) if *hashed == size => Some(hasher.clone()),
            None if size == 0 => Some(Sha256::new()),
            _ => None,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(self.data_path())
            .await?;
        file.seek(io::SeekFrom::Start(size)).await?;
        let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);

        let result = async {
            let mut written = 0u64;
            let mut body = std::pin::pin!(body);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                writer.write_all(&chunk).await?;
                if let Some(hasher) = hash.as_mut() {
                    hasher.update(&chunk);
                }
                written += chunk.len() as u64;
            }
            writer.flush().await?;
            if let Some((_, expected)) = range {
                if expected != written {
                    return Err(UploadError::SizeMismatch {
                        expected,
                        got: written,
                    });
                }
            }
            Ok(written)
        }
        .await;

        match result {
            Ok(written) => {
                let new_size = size + written;
                state.hash = hash.map(|h| (h, new_size));
                Ok(new_size)
            }
            Err(err) => {
                let file = writer.into_inner();
                if let Err(trunc) = file.set_len(size).await {
                    tracing::warn!(upload = %self.uuid, "cannot roll back failed chunk: {trunc}");
                    state.hash = None;
                }
                Err(err)
            }
        }
    }
}

impl Store {
    /// Opens a new upload session for repository `name`.
    pub async fn start_upload(&self, name: &str) -> io::Result<Arc<UploadSlot>> {
        let uuid = uuid::Uuid::new_v4().to_string();
        let dir = self.root.join("uploads").join(&uuid);
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("repo"), name).await?;
        tokio::fs::File::create(dir.join("data")).await?;
        let slot = Arc::new(UploadSlot {
            uuid: uuid.clone(),
            name: name.to_owned(),
            dir,
            state: tokio::sync::Mutex::new(SlotState::default()),
        });
        self.sessions().insert(uuid, Arc::clone(&slot));
        Ok(slot)
    }

    /// Finds the session `uuid` of repository `name`; sessions survive restarts through `uploads/`.
    pub async fn upload(&self, name: &str, uuid: &str) -> io::Result<Option<Arc<UploadSlot>>> {
        // Only our own UUIDs name sessions; anything else (e.g. `..`) must not reach the filesystem.
        let Ok(parsed) = uuid::Uuid::parse_str(uuid) else {
            return Ok(None);
        };
        let uuid = parsed.hyphenated().to_string();
        if let Some(slot) = self.sessions().get(&uuid) {
            return Ok((slot.name == name).then(|| Arc::clone(slot)));
        }
        let dir = self.root.join("uploads").join(&uuid);
        let Some(owner) = not_found_as_none(tokio::fs::read_to_string(dir.join("repo")).await)?
        else {
            return Ok(None);
        };
        if owner != name {
            return Ok(None);
        }
        let slot = Arc::new(UploadSlot {
            uuid: uuid.clone(),
            name: name.to_owned(),
            dir,
            state: tokio::sync::Mutex::new(SlotState::default()),
        });
        // Another request may have registered the session meanwhile: keep the first so both share a lock.
        let mut sessions = self.sessions();
        Ok(Some(Arc::clone(sessions.entry(uuid).or_insert(slot))))
    }

    /// Verifies the session's content against `expected` and, if it matches, makes it the blob `expected`
    /// of the session's repository. On a mismatch the session is discarded, as the reference registry does.
    /// Returns the blob's size.
    pub async fn finish_upload(
        &self,
        slot: &UploadSlot,
        expected: &Digest,
    ) -> Result<u64, UploadError> {
        let mut state = slot.state.lock().await;
        let size = slot.current_size(&state).await?;
        let computed = match state.hash.take() {
            Some((hasher, hashed)) if hashed == size => Digest::from_sha256(&hasher.finalize()),
            _ => hash_file(&slot.data_path()).await?,
        };
        if &computed != expected {
            self.discard(slot, &mut state).await?;
            return Err(UploadError::DigestMismatch { computed });
        }
        let blob = self.blob_path(expected);
        if not_found_as_none(tokio::fs::metadata(&blob).await)?.is_none() {
            // The rename publishes the content, so it must be on disk first.
            tokio::fs::File::open(slot.data_path())
                .await?
                .sync_all()
                .await?;
            super::rename_creating_parent(&slot.data_path(), &blob).await?;
        }
        self.link_blob(&slot.name, expected).await?;
        self.discard(slot, &mut state).await?;
        Ok(size)
    }

    /// Cancels the session, deleting what it received.
    pub async fn cancel_upload(&self, slot: &UploadSlot) -> Result<(), UploadError> {
        let mut state = slot.state.lock().await;
        if state.gone {
            return Err(UploadError::Gone);
        }
        self.discard(slot, &mut state).await
    }

    async fn discard(&self, slot: &UploadSlot, state: &mut SlotState) -> Result<(), UploadError> {
        state.gone = true;
        self.sessions().remove(&slot.uuid);
        match tokio::fs::remove_dir_all(&slot.dir).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    fn sessions(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<UploadSlot>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single insert/remove calls).
        self.uploads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// sha256 of a file, read in bounded chunks.
async fn hash_file(path: &std::path::Path) -> io::Result<Digest> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; WRITE_BUFFER];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_sha256(&hasher.finalize()))
}
