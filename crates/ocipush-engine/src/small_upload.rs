//! Small blobs read from a file: produced whole into memory (verified, compressed, hashed), then
//! sent with the body and its digest in one request where the registry stores a single POST,
//! else as a POST and one PUT carrying them (`Repository::upload_bytes` decides) — one or two
//! round trips where a streamed upload takes three (POST, PATCH, PUT). Against a registry tens
//! of milliseconds away those round trips, not the bytes, are what a small layer costs.
//!
//! They take no turn of `-j` (which is for big blobs, whose bytes are the cost) but a share of a
//! run-wide memory budget, so at most [`IN_MEMORY_MIB`] MiB of them are held at once; and they
//! are produced (compressed) one per core at a time, in plan order, so that the first ones —
//! a base layer other images mount — are not slowed by all the others at once.

use std::sync::Arc;

use bytes::BytesMut;
use ocipush_registry::retry_count::note_retry;
use tokio::sync::mpsc;

use crate::context::BlobContext;
use crate::error::PushError;
use crate::job::BlobJob;
use crate::producer::{produce_failure, spawn_producer, Produced, CHANNEL_DEPTH};
use crate::reporter::{BlobId, BlobState};
use crate::sent_progress::SourceMarks;

/// A blob whose source is at most this big is produced into memory first, unless the caller
/// says otherwise (`PushOptions::small_blob`). Also bounded by the memory budget below.
pub(crate) const SMALL_BLOB: u64 = 16 << 20;
/// Memory the small blobs held at once may take, in MiB (the budget's unit).
pub(crate) const IN_MEMORY_MIB: u32 = 48;

/// Whether the blob goes the small way. Not when bytes must pass the `--limit-rate` throttle
/// or go in chunks (`--chunk-size`, or after a 413): those are the streamed path's.
pub(crate) fn goes_in_memory(ctx: &BlobContext, job: &BlobJob) -> bool {
    job.input_size <= ctx.state.small_blob.min(u64::from(IN_MEMORY_MIB - 1) << 20)
        && ctx.state.rate.is_none()
        && ctx.repository.client().chunk_size().is_none()
}

/// Produces the blob into memory and sends it (single POST, or POST + PUT), retrying transient
/// failures (the bytes are at hand, so a retry reads nothing again).
pub(crate) async fn upload_in_memory(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<Produced, PushError> {
    let share = u32::try_from((job.input_size >> 20) + 1)
        .unwrap_or(IN_MEMORY_MIB)
        .min(IN_MEMORY_MIB);
    let _memory = tokio::select! {
        permit = ctx.state.in_memory.clone().acquire_many_owned(share) => {
            permit.expect("the memory budget is never closed")
        }
        _ = ctx.state.cancel.cancelled() => return Err(PushError::Interrupted),
    };
    let (bytes, produced) = tokio::select! {
        made = async {
            let _core = ctx.state.producing.acquire().await;
            produce_in_memory(ctx, job, id).await
        } => made?,
        _ = ctx.state.cancel.cancelled() => return Err(PushError::Interrupted),
    };
    send_from_memory(ctx, &produced.digest, bytes.freeze(), id).await?;
    ctx.reporter.blob_progress(id, job.input_size);
    ctx.now_holds(&produced.digest);
    Ok(produced)
}

/// Sends a blob held in memory (single POST, or POST + PUT), retrying transient failures and
/// lost sessions (the bytes are at hand, so a retry reads nothing again).
pub(crate) async fn send_from_memory(
    ctx: &BlobContext,
    digest: &ocipush_oci::Digest,
    bytes: bytes::Bytes,
    id: BlobId,
) -> Result<(), PushError> {
    ctx.reporter.blob_state(id, BlobState::Uploading);
    let mut attempt = 0u32;
    loop {
        // A stop ends it before a session opens; once one is open, its two requests finish (a
        // small body), so no session is left behind for the registry to keep.
        if ctx.state.cancel.is_cancelled() {
            return Err(PushError::Interrupted);
        }
        match ctx.repository.upload_bytes(digest, bytes.clone()).await {
            Ok(()) => return Ok(()),
            // A session lost with its cut-off request (distribution drops it) is replaced by a
            // new one, like a transient failure.
            Err(e) if (e.is_transient() || e.is_lost_upload()) && attempt < ctx.retries => {
                attempt += 1;
                note_retry();
                ctx.reporter.blob_restarted(id, attempt, &e.to_string());
                let delay = ctx.repository.client().retry_policy().delay(attempt, None);
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs the producer on a blocking thread and gathers what it makes.
async fn produce_in_memory(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<(BytesMut, Produced), PushError> {
    ctx.reporter.blob_state(
        id,
        if job.transform.compresses() {
            BlobState::Compressing
        } else {
            BlobState::Uploading
        },
    );
    let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
    let producer = spawn_producer(ctx.blobs.clone(), job, tx, Arc::new(SourceMarks::default()));
    let mut bytes = BytesMut::with_capacity(usize::try_from(job.input_size).unwrap_or(0));
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            // The producer's own result says what went wrong.
            Err(_) => break,
        }
    }
    drop(rx);
    let produced = producer
        .await
        .map_err(|e| PushError::Internal(format!("blob producer panicked: {e}")))?;
    produced
        .map(|produced| (bytes, produced))
        .map_err(|failure| produce_failure(&job.label, failure))
}
