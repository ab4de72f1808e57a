//! Chunked uploads: the blob's bytes in PATCH requests of at most the chunk size, each with its
//! `Content-Range`, for `--chunk-size` and for proxies that refuse big bodies (413).
//!
//! A chunk is held in memory until the registry acknowledges it, so a chunk whose request
//! failed can be sent again: after a transient failure the upload's status (GET on the session,
//! its `Range` header) says how much of it the registry kept, and the rest is sent from there —
//! a resume, not a restart. Registries that cannot tell (CNCF distribution invalidates a session
//! whose request was cut off mid-body) make the status request fail, and the caller restarts
//! the blob from the beginning. A 413 for a chunk halves the chunk size, for this upload and
//! for the client's later ones, down to [`MIN_CHUNK`].

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};

use crate::blobs::{BodyChunk, UploadSession};
use crate::error::RegistryError;
use crate::repository::Repository;

/// Chunk size after a proxy refused a whole blob in one request (413): what nginx accepts by
/// default (`client_max_body_size 1m`).
pub const FALLBACK_CHUNK: u64 = 1024 * 1024;
/// Below this a 413 is not a size limit worth working around.
pub const MIN_CHUNK: u64 = 64 * 1024;

impl Repository {
    /// Sends `body` in PATCH chunks of the client's chunk size (or [`FALLBACK_CHUNK`]),
    /// starting at byte `start` of the blob (0, or where a resumed upload goes on), resuming a
    /// chunk from the registry's acknowledged offset after a transient failure. `session`
    /// follows every acknowledged chunk, so after a failure it is the one to ask for the
    /// upload's status (or to cancel); after success, the one to commit.
    pub async fn upload_chunked<S>(
        &self,
        session: &mut UploadSession,
        body: S,
        start: u64,
    ) -> Result<(), RegistryError>
    where
        S: Stream<Item = BodyChunk> + Send,
    {
        let mut body = std::pin::pin!(body);
        let mut offset = start;
        let mut pending = BytesMut::new();
        let mut finished = false;
        while !finished || !pending.is_empty() {
            let size = self.client.chunk_size().unwrap_or(FALLBACK_CHUNK) as usize;
            while !finished && pending.len() < size {
                match body.next().await {
                    Some(Ok(bytes)) => pending.extend_from_slice(&bytes),
                    Some(Err(e)) => {
                        return Err(RegistryError::Transfer {
                            registry: self.client.registry().to_string(),
                            action: format!("PATCH upload to {}", self.name),
                            detail: format!("request body failed: {e}"),
                        })
                    }
                    None => finished = true,
                }
            }
            let take = pending.len().min(size);
            if take == 0 {
                break;
            }
            let chunk = pending.split_to(take).freeze();
            self.send_chunk(session, offset, chunk.clone()).await?;
            offset += chunk.len() as u64;
        }
        Ok(())
    }

    /// Sends one in-memory chunk at `offset`, splitting it on 413 and resuming it from the
    /// registry's acknowledged offset after a failure the registry may have survived.
    async fn send_chunk(
        &self,
        session: &mut UploadSession,
        offset: u64,
        chunk: Bytes,
    ) -> Result<(), RegistryError> {
        let mut sent = 0usize;
        let mut resumed = false;
        while sent < chunk.len() {
            let size = self.client.chunk_size().unwrap_or(FALLBACK_CHUNK) as usize;
            let piece = chunk.slice(sent..chunk.len().min(sent + size));
            match self
                .patch_chunk(session, offset + sent as u64, piece.clone())
                .await
            {
                Ok(next) => {
                    *session = next;
                    sent += piece.len();
                }
                Err(RegistryError::Status { status, .. })
                    if status == StatusCode::PAYLOAD_TOO_LARGE
                        && piece.len() as u64 / 2 >= MIN_CHUNK =>
                {
                    self.client.limit_chunk_size(piece.len() as u64 / 2);
                }
                // One resume per chunk: a registry that keeps failing it is left to the
                // caller's restart and its backoff.
                Err(e) if e.is_transient() && !resumed => {
                    resumed = true;
                    let (next, acknowledged) = match self.upload_status(session).await {
                        Ok(status) => status,
                        Err(_) => return Err(e),
                    };
                    let start = offset + sent as u64;
                    let end = offset + chunk.len() as u64;
                    if acknowledged < start || acknowledged > end {
                        return Err(e);
                    }
                    tracing::debug!(
                        acknowledged,
                        "resuming an upload from the registry's offset"
                    );
                    *session = next;
                    sent = (acknowledged - offset) as usize;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// PATCH `bytes` at `offset` (`Content-Range: offset-last`). Transient answers are retried
    /// with the same bytes by the request loop.
    async fn patch_chunk(
        &self,
        session: &UploadSession,
        offset: u64,
        bytes: Bytes,
    ) -> Result<UploadSession, RegistryError> {
        let action = format!("PATCH upload to {}", self.name);
        let last = offset + bytes.len() as u64 - 1;
        let response = self
            .client
            .send(
                &action,
                self.scope(),
                Method::PATCH,
                &session.location,
                |r| {
                    r.header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{offset}-{last}"))
                        .header(CONTENT_LENGTH, bytes.len())
                        .body(bytes.clone())
                },
            )
            .await?;
        self.session_after_patch(&action, response).await
    }

    /// GET the upload's status: a fresh session URL and how many bytes the registry holds
    /// (`Range: 0-N` means N+1, `0-0` and no Range nothing yet).
    pub async fn upload_status(
        &self,
        session: &UploadSession,
    ) -> Result<(UploadSession, u64), RegistryError> {
        let action = format!("GET upload status in {}", self.name);
        let response = self
            .client
            .send(&action, self.scope(), Method::GET, &session.location, |r| r)
            .await?;
        if response.status() != StatusCode::NO_CONTENT && !response.status().is_success() {
            return Err(self.client.status_error(&action, response).await);
        }
        let acknowledged = match response.headers().get(RANGE) {
            None => 0,
            Some(value) => parse_range_end(value.to_str().unwrap_or(""))
                .ok_or_else(|| self.client.protocol(&action, "unreadable Range header"))?,
        };
        let location = match response.headers().get(reqwest::header::LOCATION) {
            Some(_) => self.client.resolve_location(&action, &response)?,
            None => session.location.clone(),
        };
        Ok((UploadSession { location }, acknowledged))
    }
}

/// `0-N` (or `bytes=0-N`) -> N+1 bytes held. CNCF distribution answers `0-0` for an upload
/// with nothing in it yet, so `0-0` is read as 0: were one byte really held, resending it gets
/// a 416 and the blob restarts, never a corrupt upload.
fn parse_range_end(value: &str) -> Option<u64> {
    let value = value.trim().trim_start_matches("bytes=");
    let (start, end) = value.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    match end.trim().parse::<u64>().ok()? {
        0 => Some(0),
        n => n.checked_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_upload_ranges() {
        assert_eq!(parse_range_end("0-99"), Some(100));
        assert_eq!(parse_range_end("bytes=0-0"), Some(0));
        assert_eq!(parse_range_end("bytes=0-1"), Some(2));
        assert_eq!(parse_range_end("5-9"), None);
        assert_eq!(parse_range_end("0-"), None);
        assert_eq!(parse_range_end("garbage"), None);
    }
}
