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

use super::{list_dir, not_found_as_none, Store, UploadLimit};
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
    /// A limit of the registry's `UploadLimits` was reached; a chunk that ran into it was discarded.
    #[error("upload limit reached: {0:?}")]
    Limit(UploadLimit),
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
}

impl Store {
    /// Appends a request body to the session. With `range = Some((start, len))` (from `Content-Range`)
    /// the chunk must start at the current size and carry exactly `len` bytes. Every chunk is counted
    /// against the upload limits before it is written. On any failure the data file is cut back to its
    /// previous length, so the client can retry the chunk. Returns the new size.
    pub async fn append<S, E>(
        &self,
        slot: &UploadSlot,
        body: S,
        range: Option<(u64, u64)>,
    ) -> Result<u64, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut state = slot.state.lock().await;
        let size = slot.current_size(&state).await?;
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
            .open(slot.data_path())
            .await?;
        file.seek(io::SeekFrom::Start(size)).await?;
        let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);

        // Bytes counted against the limits by this request, given back if the chunk is cut off.
        let mut counted = 0u64;
        let result = async {
            let mut written = 0u64;
            let mut body = std::pin::pin!(body);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                self.ledger
                    .grow(&slot.uuid, size + written, chunk.len() as u64)
                    .map_err(UploadError::Limit)?;
                counted += chunk.len() as u64;
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
                match file.set_len(size).await {
                    Ok(()) => self.ledger.shrink(&slot.uuid, counted),
                    Err(trunc) => {
                        tracing::warn!(upload = %slot.uuid, "cannot roll back failed chunk: {trunc}");
                        state.hash = None;
                    }
                }
                Err(err)
            }
        }
    }

    /// Opens a new upload session for repository `name`, unless that passes a session limit.
    pub async fn start_upload(&self, name: &str) -> Result<Arc<UploadSlot>, UploadError> {
        let uuid = uuid::Uuid::new_v4().to_string();
        self.ledger
            .open(&uuid, name, 0, false)
            .map_err(UploadError::Limit)?;
        let dir = self.root.join("uploads").join(&uuid);
        let created = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(dir.join("repo"), name).await?;
            tokio::fs::File::create(dir.join("data")).await?;
            io::Result::Ok(())
        }
        .await;
        if let Err(err) = created {
            self.ledger.close(&uuid);
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(err.into());
        }
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
        // A session this process has not counted yet (another process sharing the root opened it).
        let held = not_found_as_none(tokio::fs::metadata(dir.join("data")).await)?
            .map_or(0, |meta| meta.len());
        let _counted_whatever_the_limits = self.ledger.open(&uuid, name, held, true);
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
        self.ledger.close(&slot.uuid);
        match tokio::fs::remove_dir_all(&slot.dir).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Removes sessions that received nothing for `UploadLimits::purge_after`; a session a request is
    /// using right now is never removed. Returns how many were.
    pub async fn purge_abandoned_uploads(&self) -> io::Result<usize> {
        let max_age = self.ledger.limits().purge_after;
        let uploads = self.root.join("uploads");
        let mut purged = 0;
        for uuid in list_dir(&uploads).await? {
            let dir = uploads.join(&uuid);
            // The data file changes with every append; a session without one is judged by its directory.
            let meta = match not_found_as_none(tokio::fs::metadata(dir.join("data")).await)? {
                Some(meta) => meta,
                None => match not_found_as_none(tokio::fs::metadata(&dir).await)? {
                    Some(meta) => meta,
                    None => continue,
                },
            };
            let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
            if age.is_none_or(|age| age <= max_age) {
                continue;
            }
            let live = self.sessions().get(&uuid).cloned();
            match live {
                Some(slot) => {
                    let Ok(mut state) = slot.state.try_lock() else {
                        continue; // a request holds it: in use, not abandoned
                    };
                    if state.gone {
                        continue;
                    }
                    self.discard(&slot, &mut state)
                        .await
                        .map_err(|err| io::Error::other(err.to_string()))?;
                }
                None => {
                    match tokio::fs::remove_dir_all(&dir).await {
                        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                        _ => {}
                    }
                    self.ledger.close(&uuid);
                }
            }
            purged += 1;
        }
        if purged > 0 {
            tracing::info!(
                purged,
                older_than_s = max_age.as_secs(),
                "removed abandoned upload sessions"
            );
        }
        Ok(purged)
    }

    /// Counts the sessions in `uploads/` (at start-up, before any request).
    pub(super) async fn count_open_uploads(&self) -> io::Result<()> {
        let uploads = self.root.join("uploads");
        for uuid in list_dir(&uploads).await? {
            let dir = uploads.join(&uuid);
            let Some(repo) = not_found_as_none(tokio::fs::read_to_string(dir.join("repo")).await)?
            else {
                continue;
            };
            let held = not_found_as_none(tokio::fs::metadata(dir.join("data")).await)?
                .map_or(0, |meta| meta.len());
            let _counted_whatever_the_limits = self.ledger.open(&uuid, &repo, held, true);
        }
        let (sessions, bytes) = self.ledger.totals();
        if sessions > 0 {
            tracing::info!(sessions, bytes, "open upload sessions");
        }
        Ok(())
    }

    /// How often [`purge_abandoned_uploads`](Self::purge_abandoned_uploads) should run: often enough
    /// that a session is removed soon after it passes the age, at most hourly.
    pub fn purge_interval(&self) -> std::time::Duration {
        (self.ledger.limits().purge_after / 8).clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(3600),
        )
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
