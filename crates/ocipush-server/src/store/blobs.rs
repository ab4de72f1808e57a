//! Blob content and per-repository membership: a blob is readable through a repository only after it was
//! uploaded or mounted there, even though its bytes are stored once for all repositories.

use std::io;

use super::{not_found_as_none, remove_if_exists, Store};
use crate::names::Digest;

impl Store {
    /// Size of the blob if `name` has it, `None` if the repository never had it (or it was deleted).
    pub async fn blob_size(&self, name: &str, digest: &Digest) -> io::Result<Option<u64>> {
        if not_found_as_none(tokio::fs::metadata(self.layer_marker(name, digest)).await)?.is_none()
        {
            return Ok(None);
        }
        let meta = not_found_as_none(tokio::fs::metadata(self.blob_path(digest)).await)?;
        Ok(meta.map(|m| m.len()))
    }

    /// Opens the blob's content for reading, if `name` has it.
    pub async fn open_blob(
        &self,
        name: &str,
        digest: &Digest,
    ) -> io::Result<Option<(tokio::fs::File, u64)>> {
        if self.blob_size(name, digest).await?.is_none() {
            return Ok(None);
        }
        let Some(file) = not_found_as_none(tokio::fs::File::open(self.blob_path(digest)).await)?
        else {
            return Ok(None);
        };
        let size = file.metadata().await?.len();
        Ok(Some((file, size)))
    }

    /// Records that `name` has the blob; the content must already be in place.
    pub async fn link_blob(&self, name: &str, digest: &Digest) -> io::Result<()> {
        self.write_atomic(&self.layer_marker(name, digest), b"")
            .await
    }

    /// Cross-repository mount: links the blob into `name` if `from` has it. Returns whether it did.
    pub async fn mount_blob(&self, name: &str, from: &str, digest: &Digest) -> io::Result<bool> {
        if self.blob_size(from, digest).await?.is_none() {
            return Ok(false);
        }
        self.link_blob(name, digest).await?;
        Ok(true)
    }

    /// Removes the blob from `name`; the shared content stays (no garbage collection).
    pub async fn unlink_blob(&self, name: &str, digest: &Digest) -> io::Result<bool> {
        remove_if_exists(&self.layer_marker(name, digest)).await
    }
}
