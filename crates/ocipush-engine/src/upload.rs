//! Streaming one blob's bytes into a repository: POST a session, one PATCH fed by the producer
//! on a blocking thread (or chunks of it, with `--chunk-size` or after a 413), PUT the digest
//! learnt while streaming. A failed attempt cancels its session; a transient failure starts
//! over from a re-opened source.

use ocipush_oci::Digest;
use ocipush_registry::{RegistryError, UploadSession, FALLBACK_CHUNK};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::blob::BlobContext;
use crate::error::PushError;
use crate::job::BlobJob;
use crate::producer::{produce, ProduceError, Produced, Transform, CHANNEL_DEPTH};
use crate::reporter::{BlobId, BlobState};

/// Uploads the job's bytes, retrying transient registry failures from the start.
pub(crate) async fn upload_with_retries(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<Produced, PushError> {
    let mut attempt = 0u32;
    loop {
        // Decided per attempt: another blob's 413 may switch the registry to chunks meanwhile.
        let chunked = ctx.repository.client().chunk_size().is_some();
        match upload_once(ctx, job, id, chunked).await {
            Ok(produced) => {
                ctx.now_holds(&produced.digest);
                return Ok(produced);
            }
            Err(PushError::Registry(RegistryError::Status { status, .. }))
                if status.as_u16() == 413 && !chunked =>
            {
                // Something in front of the registry refuses the blob in one request: send it
                // (and every later blob to this registry) in chunks, at once, spending no retry.
                // A chunked attempt that still meets 413 fails: the chunks were already halved
                // down to the smallest.
                ctx.repository.client().limit_chunk_size(FALLBACK_CHUNK);
                ctx.reporter.blob_restarted(
                    id,
                    attempt,
                    "413 Payload Too Large: uploading in chunks",
                );
            }
            // A lost session (its request cut off, its answer lost) cannot be repaired, but
            // the blob can start over in a new one, like after a transient failure.
            Err(PushError::Registry(e))
                if (e.is_transient() || e.is_lost_upload()) && attempt < ctx.retries =>
            {
                attempt += 1;
                ctx.reporter.blob_restarted(id, attempt, &e.to_string());
                let delay = ctx.repository.client().retry_policy().delay(attempt, None);
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn upload_once(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
    chunked: bool,
) -> Result<Produced, PushError> {
    let session = ctx.repository.start_upload().await?;
    ctx.reporter.blob_state(
        id,
        match job.transform {
            Transform::Gzip { .. } | Transform::Zstd { .. } => BlobState::Compressing,
            _ => BlobState::Uploading,
        },
    );
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let blobs = ctx.blobs.clone();
    let reporter = ctx.reporter.clone();
    let path = job.path.clone();
    let transform = job.transform.clone();
    let what = job.label.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let reader = match blobs.open(&path) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return Err(Err(e));
            }
        };
        produce(reader, &transform, &what, tx, &|n| {
            reporter.blob_progress(id, n)
        })
        .map_err(Ok)
    });
    let length = match &job.transform {
        Transform::Verbatim { size, .. } => Some(*size),
        _ => None,
    };
    let body = ReceiverStream::new(rx);
    let upload = async {
        if chunked {
            ctx.repository.upload_chunked(session.clone(), body).await
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
            return Err(PushError::Interrupted);
        }
    };
    let produced = producer
        .await
        .map_err(|e| PushError::Internal(format!("blob producer panicked: {e}")))?;
    match (produced, uploaded) {
        (Ok(produced), Ok(next)) => {
            commit(ctx, next, &produced.digest).await?;
            Ok(produced)
        }
        (Err(failure), uploaded) => {
            let (session, request_error) = match uploaded {
                Ok(next) => (next, None),
                Err(e) => (session, Some(e)),
            };
            ctx.repository.cancel_upload(session).await;
            Err(match failure {
                Err(source_error) => PushError::Source(source_error),
                Ok(ProduceError::Verify(source)) => PushError::Verify {
                    blob: job.label.clone(),
                    source: Box::new(source),
                },
                Ok(ProduceError::Read(e)) => PushError::Read {
                    blob: job.label.clone(),
                    detail: e.to_string(),
                },
                // The body was closed because the request failed; that failure is the story.
                Ok(ProduceError::Closed) => match request_error {
                    Some(e) => PushError::Registry(e),
                    None => PushError::Internal("upload body closed early".into()),
                },
            })
        }
        (Ok(_), Err(e)) => {
            ctx.repository.cancel_upload(session).await;
            Err(PushError::Registry(e))
        }
    }
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
