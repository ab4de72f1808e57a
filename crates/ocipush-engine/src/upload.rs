//! Streaming one blob's bytes into a repository: POST a session, one PATCH fed by the producer
//! on a blocking thread (or chunks of it, with `--chunk-size` or after a 413), PUT the digest
//! learnt while streaming.
//!
//! When a request fails, the upload's status (GET on the session, `Range`) says how much the
//! registry kept. If it kept something, the next attempt resumes there in the same session:
//! the source is read again (it is verified and hashed whole) but only the rest is sent, in
//! chunks with `Content-Range`. Otherwise — or where the registry cannot tell, as CNCF
//! distribution after a cut-off request — the session is cancelled and a transient failure
//! starts over from a re-opened source.

use std::sync::Arc;

use ocipush_oci::Digest;
use ocipush_registry::retry_count::note_retry;
use ocipush_registry::{BodyChunk, RegistryError, UploadSession, FALLBACK_CHUNK};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use crate::context::BlobContext;
use crate::error::PushError;
use crate::job::BlobJob;
use crate::producer::{
    produce_failure, spawn_producer, ProduceError, Produced, Transform, CHANNEL_DEPTH,
};
use crate::rate::throttled;
use crate::reporter::{BlobId, BlobState};
use crate::send_turns::{holding_turn, Turn, TURN_MIN_SIZE};
use crate::sent_progress::{report_as_sent, SourceMarks};

/// Uploads the job's bytes, resuming where the registry kept them or retrying transient
/// registry failures from the start.
pub(crate) async fn upload_with_retries(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<Produced, PushError> {
    let mut attempt = 0u32;
    let mut resume: Option<Resume> = None;
    loop {
        // Decided per attempt: another blob's 413 may switch the registry to chunks meanwhile.
        let chunked = ctx.repository.client().chunk_size().is_some();
        let resumed_from = resume.as_ref().map_or(0, |r| r.offset);
        let failed = match upload_once(ctx, job, id, chunked, resume.take()).await {
            Ok(produced) => {
                ctx.now_holds(&produced.digest);
                return Ok(produced);
            }
            Err(failed) => failed,
        };
        // Resuming spends no retry while the registry keeps more each time: progress is
        // bounded by the blob's size.
        if let Some(point) = failed.resume {
            if point.offset > resumed_from {
                note_retry();
                ctx.reporter.blob_restarted(
                    id,
                    attempt,
                    &format!(
                        "{}; resuming at byte {} the registry kept",
                        failed.error, point.offset
                    ),
                );
                resume = Some(point);
                continue;
            }
            ctx.repository.cancel_upload(point.session).await;
        }
        match failed.error {
            PushError::Registry(RegistryError::Status { status, .. })
                if status.as_u16() == 413 && !chunked =>
            {
                // A chunked attempt that still meets 413 fails: the chunks were already halved
                // down to the smallest.
                switch_to_chunks(ctx, id, attempt);
            }
            // A lost session (its request cut off, its answer lost) cannot be repaired, but
            // the blob can start over in a new one, like after a transient failure. So can a
            // resume the registry refused (Gitea takes one PATCH per upload): starting over
            // is what worked before resuming was tried.
            PushError::Registry(e)
                if (e.is_transient() || e.is_lost_upload() || resumed_from > 0)
                    && attempt < ctx.retries =>
            {
                attempt += 1;
                note_retry();
                ctx.reporter.blob_restarted(id, attempt, &e.to_string());
                let delay = ctx.repository.client().retry_policy().delay(attempt, None);
                tokio::time::sleep(delay).await;
            }
            e => return Err(e),
        }
    }
}

/// After a 413: something in front of the registry refuses the blob in one request, so it (and
/// every later blob to this registry) goes in chunks, at once, spending no retry.
pub(crate) fn switch_to_chunks(ctx: &BlobContext, id: BlobId, attempt: u32) {
    ctx.repository.client().limit_chunk_size(FALLBACK_CHUNK);
    note_retry();
    ctx.reporter
        .blob_restarted(id, attempt, "413 Payload Too Large: uploading in chunks");
}

/// Where a failed upload can go on: its session and the bytes the registry holds.
struct Resume {
    session: UploadSession,
    offset: u64,
}

/// A failed attempt; with `resume`, its session is still open (the caller resumes or cancels).
struct Failed {
    error: PushError,
    resume: Option<Resume>,
}

impl From<PushError> for Failed {
    fn from(error: PushError) -> Self {
        Failed {
            error,
            resume: None,
        }
    }
}

async fn upload_once(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
    chunked: bool,
    resume: Option<Resume>,
) -> Result<Produced, Failed> {
    let turn = take_turn(ctx, job, id).await?;
    let (session, offset) = match resume {
        Some(Resume { session, offset }) => (session, offset),
        None => (
            ctx.repository
                .start_upload()
                .await
                .map_err(PushError::from)?,
            0,
        ),
    };
    ctx.reporter.blob_state(
        id,
        if job.transform.compresses() {
            BlobState::Compressing
        } else {
            BlobState::Uploading
        },
    );
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let reporter = ctx.reporter.clone();
    let marks = Arc::new(SourceMarks::default());
    let producer = spawn_producer(ctx.blobs.clone(), job, tx, Arc::clone(&marks));
    let length = match &job.transform {
        Transform::Verbatim { size, .. } => Some(*size),
        _ => None,
    };
    // Bytes after an offset need Content-Range, which only chunked PATCHes carry.
    let chunks = chunked || offset > 0;
    // A chunked upload takes a whole chunk from the body before sending it: its turn is kept
    // until the last chunk has gone, not handed back as that chunk is taken.
    let (body_turn, upload_turn) = if chunks { (None, turn) } else { (turn, None) };
    // Progress is counted as the request takes the bytes, after the rate limit.
    let body = report_as_sent(
        throttled(
            holding_turn(skip_bytes(ReceiverStream::new(rx), offset), body_turn),
            ctx.state.rate.clone(),
        ),
        marks,
        offset,
        move |n| reporter.blob_progress(id, n),
    );
    // The session as the registry last acknowledged it: what to ask for the upload's status
    // after a failure.
    let mut latest = session.clone();
    let upload = async {
        if chunks {
            ctx.repository
                .upload_chunked(&mut latest, body, offset)
                .await
                .map(|()| latest.clone())
        } else {
            ctx.repository
                .upload_stream(session.clone(), body, length)
                .await
        }
    };
    let uploaded = tokio::select! {
        uploaded = upload => uploaded,
        _ = ctx.state.cancel.cancelled() => {
            // Dropping the request closed its body, so the producer stops at its next chunk.
            ctx.repository.cancel_upload(session).await;
            return Err(PushError::Interrupted.into());
        }
    };
    drop(upload_turn);
    let produced = producer
        .await
        .map_err(|e| PushError::Internal(format!("blob producer panicked: {e}")))?;
    match (produced, uploaded) {
        (Ok(produced), Ok(next)) => {
            commit(ctx, next, &produced.digest).await?;
            Ok(produced)
        }
        // The request failed (and closed the body, or the body was all sent): that failure is
        // the story, and the registry may have kept part of the blob.
        (Ok(_), Err(e)) | (Err(Ok(ProduceError::Closed)), Err(e)) => {
            Err(resumable(ctx, latest, PushError::Registry(e)).await)
        }
        // The source itself failed (or the body closed under a request that went well):
        // nothing to resume.
        (Err(failure), uploaded) => {
            cancel(ctx, session, uploaded).await;
            Err(produce_failure(&job.label, failure).into())
        }
    }
}

/// Waits, when the registry runs on this machine, for this blob's turn to stream (see
/// `send_turns`): before a new session opens, so none idles meanwhile (a resumed upload's
/// session is already open).
async fn take_turn(ctx: &BlobContext, job: &BlobJob, id: BlobId) -> Result<Option<Turn>, Failed> {
    let big_and_stored =
        matches!(job.transform, Transform::Verbatim { size, .. } if size >= TURN_MIN_SIZE);
    if !big_and_stored || !ctx.repository.client().runs_on_this_machine() {
        return Ok(None);
    }
    if let Some(turn) = ctx.state.send_turns.try_take() {
        return Ok(Some(turn));
    }
    ctx.reporter.blob_state(id, BlobState::Waiting);
    tokio::select! {
        turn = ctx.state.send_turns.take() => Ok(Some(turn)),
        _ = ctx.state.cancel.cancelled() => Err(PushError::Interrupted.into()),
    }
}

/// Cancels the session of an attempt whose source failed.
async fn cancel(
    ctx: &BlobContext,
    session: UploadSession,
    uploaded: Result<UploadSession, RegistryError>,
) {
    ctx.repository
        .cancel_upload(uploaded.unwrap_or(session))
        .await;
}

/// After a failed request: asks the registry how much of the blob it holds. Something kept
/// leaves the session open to resume; nothing (or no answer) cancels it.
async fn resumable(ctx: &BlobContext, session: UploadSession, error: PushError) -> Failed {
    let kept = match &error {
        PushError::Registry(e) if e.is_transient() => ctx.repository.upload_status(&session).await,
        _ => {
            ctx.repository.cancel_upload(session).await;
            return error.into();
        }
    };
    match kept {
        Ok((session, offset)) if offset > 0 => Failed {
            error,
            resume: Some(Resume { session, offset }),
        },
        Ok((session, _)) => {
            ctx.repository.cancel_upload(session).await;
            error.into()
        }
        Err(_) => {
            ctx.repository.cancel_upload(session).await;
            error.into()
        }
    }
}

/// The body without its first `offset` bytes (the ones the registry already holds); the
/// producer still reads, verifies and hashes them.
fn skip_bytes(body: impl Stream<Item = BodyChunk>, offset: u64) -> impl Stream<Item = BodyChunk> {
    let mut left = offset;
    body.filter_map(move |item| match item {
        Ok(bytes) if left >= bytes.len() as u64 => {
            left -= bytes.len() as u64;
            None
        }
        Ok(bytes) => {
            let from = left as usize;
            left = 0;
            Some(Ok(bytes.slice(from..)))
        }
        Err(e) => Some(Err(e)),
    })
}

async fn commit(
    ctx: &BlobContext,
    session: UploadSession,
    digest: &Digest,
) -> Result<(), PushError> {
    ctx.repository
        .commit_upload(session, digest)
        .await
        .map_err(PushError::Registry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn skips_the_bytes_the_registry_holds() {
        for (offset, expected) in [(0, "abcdefgh"), (3, "defgh"), (5, "fgh"), (8, "")] {
            let chunks: Vec<BodyChunk> = ["abc", "defg", "h"]
                .into_iter()
                .map(|s| Ok(Bytes::from_static(s.as_bytes())))
                .collect();
            let rest: Vec<BodyChunk> = skip_bytes(tokio_stream::iter(chunks), offset)
                .collect()
                .await;
            let text: String = rest
                .into_iter()
                .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
                .collect();
            assert_eq!(text, expected, "from byte {offset}");
        }
    }
}
