//! The registry's filesystem store. Layout under the root directory:
//!
//! ```text
//! blobs/sha256/<hex>                                   content of every blob and manifest, shared by all
//!                                                      repositories (content-addressed, written once)
//! uploads/<uuid>/data                                  bytes received so far by an upload session
//! uploads/<uuid>/repo                                  the repository the session was opened for
//! repositories/<name>/_layers/sha256/<hex>             empty marker: the blob belongs to <name>
//! repositories/<name>/_manifests/revisions/sha256/<hex>  marker holding the manifest's media type
//! repositories/<name>/_manifests/tags/<tag>            the digest (`sha256:<hex>`) the tag points at
//! repositories/<name>/_referrers/sha256/<subject-hex>/<hex>  descriptor (JSON) of a manifest whose
//!                                                      `subject` is <subject-hex>
//! tmp/                                                 staging for atomic writes; stale files are
//!                                                      removed at startup
//! ```
//!
//! Crash safety: every visible file is complete. New content is written to `tmp/` (or `uploads/`), flushed
//! with `fsync`, then renamed into place; `tmp/`, `uploads/` and `blobs/` share the root so rename is
//! atomic. Content lands before the markers that reference it, so a marker never names missing content.
//!
//! Concurrency: content files are immutable and content-addressed, so two clients committing the same blob
//! or manifest rename identical bytes over each other, which is harmless; markers and tags are replaced
//! atomically (last writer wins for a tag). Appends to one upload session are serialised by a per-session
//! lock (see `uploads`). Several server processes may share one root (say `ocipush serve` and a push to
//! the local default at the same time): nothing relies on state held by a single process except that lock,
//! and one session is only ever driven by one client through one server.
//!
//! Upload sessions are bounded by [`UploadLimits`] (see `upload_ledger`) and purged once abandoned.
//! Not done: garbage collection. Deleting a blob or manifest removes the repository's marker, never the
//! shared content.

mod blobs;
mod manifests;
mod upload_ledger;
mod uploads;

pub use manifests::NewManifest;
pub use upload_ledger::UploadLimit;
pub use uploads::{UploadError, UploadSlot};

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;

use crate::config::UploadLimits;
use crate::names::Digest;
use upload_ledger::UploadLedger;

/// Handle on the store; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// Live upload sessions, so requests on the same session share one lock and one running hash.
    uploads: Mutex<HashMap<String, Arc<UploadSlot>>>,
    /// Open sessions and their bytes, against the limits.
    ledger: UploadLedger,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, clears old leftovers of interrupted writes,
    /// removes abandoned upload sessions and counts the others against `limits`.
    pub async fn open(root: &Path, limits: UploadLimits) -> io::Result<Store> {
        for dir in ["blobs/sha256", "uploads", "repositories"] {
            tokio::fs::create_dir_all(root.join(dir)).await?;
        }
        let tmp = root.join("tmp");
        tokio::fs::create_dir_all(&tmp).await?;
        remove_stale(&tmp).await?;
        let store = Store {
            root: root.to_path_buf(),
            uploads: Mutex::new(HashMap::new()),
            ledger: UploadLedger::new(limits),
        };
        store.purge_abandoned_uploads().await?;
        store.count_open_uploads().await?;
        Ok(store)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        // Names were validated against the spec grammar: only [a-z0-9._-] components joined by '/', none
        // starting with '.', so they cannot escape `repositories/` nor collide with the `_` directories.
        self.root.join("repositories").join(name)
    }

    fn layer_marker(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers/sha256")
            .join(digest.hex())
    }

    /// Writes `contents` to `dest` so that readers see either the old file or the complete new one.
    async fn write_atomic(&self, dest: &Path, contents: &[u8]) -> io::Result<()> {
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            file.write_all(contents).await?;
            file.sync_all().await?;
            drop(file);
            rename_creating_parent(&tmp, dest).await
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

/// Staging files older than this are leftovers of an interrupted write; younger ones may belong to another
/// server process using the same root right now.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes leftovers of interrupted atomic writes. Nothing references staging files, so removing them is
/// always safe once no writer can still rename them.
async fn remove_stale(tmp: &Path) -> io::Result<()> {
    for entry in list_dir(tmp).await? {
        let path = tmp.join(entry);
        let Some(meta) = not_found_as_none(tokio::fs::metadata(&path).await)? else {
            continue;
        };
        let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
        if age.is_some_and(|age| age > STALE_TMP) {
            remove_if_exists(&path).await?;
        }
    }
    Ok(())
}

/// `rename`, creating the destination's directory first if needed.
async fn rename_creating_parent(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::rename(from, to).await
}

/// Treats "not found" as `None`/`false` so callers only see real failures as errors.
fn not_found_as_none<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Removes a file, reporting whether it existed.
async fn remove_if_exists(path: &Path) -> io::Result<bool> {
    Ok(not_found_as_none(tokio::fs::remove_file(path).await)?.is_some())
}

/// Lists the entries of a directory that may not exist yet.
async fn list_dir(path: &Path) -> io::Result<Vec<String>> {
    let Some(mut entries) = not_found_as_none(tokio::fs::read_dir(path).await)? else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}
