//! Getting one blob into one repository: skip it when the repository has it, else stream it up
//! (POST, one PATCH, PUT with the digest learnt while streaming). A failed attempt cancels its
//! upload session and, when the failure is transient, starts over from a re-opened source.

use std::sync::Arc;

use ocipush_oci::{Compression, Digest};
use ocipush_registry::{Repository, UploadSession};
use ocipush_source::{BlobReader, LayerFile};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::PushError;
use crate::producer::{produce, ProduceError, Produced, Transform, CHANNEL_DEPTH};
use crate::reporter::{BlobId, BlobOutcome, BlobState, Reporter};

/// One blob to push, and how to produce it from the source.
#[derive(Debug, Clone)]
pub(crate) struct BlobJob {
    /// For messages: `layer 2/4 (sha256:…)`.
    pub label: String,
    /// The file inside the source.
    pub path: String,
    pub transform: Transform,
    /// Bytes read from the source (the progress total).
    pub input_size: u64,
}

impl BlobJob {
    /// A blob pushed byte for byte.
    pub fn verbatim(label: String, path: String, digest: Digest, size: u64) -> BlobJob {
        BlobJob {
            label,
            path,
            transform: Transform::Verbatim { digest, size },
            input_size: size,
        }
    }

    /// A docker-archive layer: compressed on the way unless it already is.
    pub fn layer(label: String, layer: &LayerFile) -> Result<BlobJob, PushError> {
        let transform = match layer.compression {
            Compression::None => Transform::Gzip {
                diff_id: layer.diff_id.clone(),
            },
            Compression::Gzip => Transform::GzipPassthrough {
                diff_id: layer.diff_id.clone(),
            },
            Compression::Zstd => {
                return Err(PushError::Unsupported {
                    what: format!("zstd-compressed layer `{}` in a docker archive", layer.path),
                })
            }
        };
        Ok(BlobJob {
            label,
            path: layer.path.clone(),
            transform,
            input_size: layer.size,
        })
    }
}

/// What happened to a pushed blob.
#[derive(Debug, Clone)]
pub(crate) struct PushedBlob {
    pub digest: Digest,
    pub size: u64,
    pub outcome: BlobOutcome,
}

/// Everything a blob push needs from its surroundings.
#[derive(Clone)]
pub(crate) struct BlobContext {
    pub repository: Repository,
    pub blobs: Arc<dyn BlobReader>,
    pub reporter: Arc<dyn Reporter>,
    pub retries: u32,
}

pub(crate) async fn push_blob(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<PushedBlob, PushError> {
    ctx.reporter.blob_started(id, &job.label, job.input_size);
    let result = push_blob_inner(ctx, job, id).await;
    let outcome = match &result {
        Ok(p) => p.outcome,
        Err(_) => BlobOutcome::Failed,
    };
    ctx.reporter.blob_finished(id, outcome);
    result
}

async fn push_blob_inner(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<PushedBlob, PushError> {
    if let Transform::Verbatim { digest, size } = &job.transform {
        ctx.reporter.blob_state(id, BlobState::Checking);
        if ctx.repository.blob_exists(digest).await?.is_some() {
            return Ok(PushedBlob {
                digest: digest.clone(),
                size: *size,
                outcome: BlobOutcome::Existing,
            });
        }
    }
    let mut attempt = 0u32;
    loop {
        match upload_once(ctx, job, id).await {
            Ok(produced) => {
                return Ok(PushedBlob {
                    digest: produced.digest,
                    size: produced.size,
                    outcome: BlobOutcome::Uploaded,
                })
            }
            Err(PushError::Registry(e)) if e.is_transient() && attempt < ctx.retries => {
                attempt += 1;
                ctx.reporter.blob_restarted(id, attempt, &e.to_string());
                let delay = ctx.repository.client().retry_policy().delay(attempt, None);
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn upload_once(ctx: &BlobContext, job: &BlobJob, id: BlobId) -> Result<Produced, PushError> {
    let session = ctx.repository.start_upload().await?;
    ctx.reporter.blob_state(
        id,
        match job.transform {
            Transform::Gzip { .. } => BlobState::Compressing,
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
    let uploaded = ctx
        .repository
        .upload_stream(session.clone(), ReceiverStream::new(rx), length)
        .await;
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
