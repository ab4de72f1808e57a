//! What a blob push needs from its surroundings (`BlobContext`), and the push of a layer that
//! streams by in a daemon's export, whose digest no plan can know before the stream: nothing
//! if the repository has it (HEAD), a mount if another repository of the run holds it, else
//! an upload. A layer ocipush compresses is looked up by its diffID in the digest cache first;
//! within a run, each is compressed once and uploaded once per repository. Blobs the plan
//! knows go through `ops` instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ocipush_oci::Digest;
use ocipush_registry::{MountOutcome, Repository};
use ocipush_source::BlobReader;

use crate::error::PushError;
use crate::job::{BlobJob, PushedBlob};
use crate::producer::Transform;
use crate::reporter::{BlobId, BlobOutcome, BlobState, Reporter};
use crate::run_state::RunState;
use crate::upload::upload_with_retries;

/// Everything a blob push needs from its surroundings.
#[derive(Clone)]
pub(crate) struct BlobContext {
    pub repository: Repository,
    pub blobs: Arc<dyn BlobReader>,
    pub reporter: Arc<dyn Reporter>,
    pub retries: u32,
    pub state: Arc<RunState>,
}

impl BlobContext {
    fn registry(&self) -> &str {
        self.repository.client().registry()
    }

    /// Records that this repository now holds `digest`, for other repositories to mount from.
    /// Called the moment the blob is confirmed — before a waiting image can learn its digest —
    /// so that image finds a repository to mount from.
    pub(crate) fn now_holds(&self, digest: &Digest) {
        self.state
            .add_holder(self.registry(), self.repository.name(), digest);
    }

    pub(crate) fn repository_key(&self) -> String {
        format!("{}/{}", self.registry(), self.repository.name())
    }
}

/// Pushes a blob into the context's repository, sharing the work with every other image of
/// the run that needs the same blob there.
pub(crate) async fn push_blob(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<PushedBlob, Arc<PushError>> {
    let cell = ctx.state.push_cell(&ctx.repository_key(), &job.key());
    let did_work = AtomicBool::new(false);
    let result = cell
        .get_or_init(|| async {
            did_work.store(true, Ordering::Relaxed);
            // Stopped before this blob's turn came: it never starts, so it is not reported as
            // a blob that failed.
            if ctx.state.cancel.is_cancelled() {
                return Err(Arc::new(PushError::Interrupted));
            }
            ctx.reporter.blob_started(id, &job.label, job.input_size);
            let result = push_blob_once(ctx, job, id).await;
            ctx.reporter.blob_finished(
                id,
                match &result {
                    Ok(p) => p.outcome,
                    Err(PushError::Interrupted) => BlobOutcome::Interrupted,
                    Err(_) => BlobOutcome::Failed,
                },
            );
            result.map_err(Arc::new)
        })
        .await
        .clone();
    match result {
        // Another image of this run put it there: for this image it already existed.
        Ok(pushed) if !did_work.load(Ordering::Relaxed) => Ok(PushedBlob {
            outcome: BlobOutcome::Existing,
            ..pushed
        }),
        other => other,
    }
}

async fn push_blob_once(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
) -> Result<PushedBlob, PushError> {
    match &job.transform {
        Transform::Verbatim { digest, size } => {
            if let Some(skipped) = skip_if_present(ctx, digest, *size, id).await? {
                return Ok(skipped);
            }
            Ok(uploaded(upload_with_retries(ctx, job, id).await?))
        }
        Transform::Gzip { diff_id, .. } | Transform::Zstd { diff_id, .. } => {
            push_compressed_layer(ctx, job, id, diff_id.as_ref()).await
        }
        Transform::GzipPassthrough { .. } | Transform::ZstdPassthrough { .. } => {
            push_compressed_layer(ctx, job, id, None).await
        }
    }
}

/// A layer whose digest is learnt by producing it. `cached_by` is the diffID under which the
/// digest cache remembers it (for layers ocipush compresses itself).
async fn push_compressed_layer(
    ctx: &BlobContext,
    job: &BlobJob,
    id: BlobId,
    cached_by: Option<&Digest>,
) -> Result<PushedBlob, PushError> {
    let settings = ctx.state.compression;
    let digest_cell = ctx.state.digest_cell(&job.key());
    let known = digest_cell
        .get()
        .cloned()
        .or_else(|| cached_by.and_then(|d| ctx.state.cache.get(d, &settings)));
    if let Some((digest, size)) = &known {
        if let Some(skipped) = skip_if_present(ctx, digest, *size, id).await? {
            return Ok(skipped);
        }
    }
    // Compress once per run: the first repository to get here uploads while producing the
    // digest; any other waits for that digest and then mounts or uploads.
    let produced_here = AtomicBool::new(false);
    let learnt = std::sync::Mutex::new(None);
    let (digest, size) = digest_cell
        .get_or_try_init(|| async {
            produced_here.store(true, Ordering::Relaxed);
            let produced = upload_with_retries(ctx, job, id).await?;
            *learnt.lock().expect("not poisoned") = produced.diff_id;
            Ok::<_, PushError>((produced.digest, produced.size))
        })
        .await?
        .clone();
    if let Some(diff_id) = cached_by {
        if known.as_ref().map(|(d, _)| d) != Some(&digest) {
            ctx.state.cache.put(diff_id, &settings, &digest, size);
            ctx.state.cache.put_layer_size(diff_id, job.input_size);
        }
    }
    if produced_here.load(Ordering::Relaxed) {
        return Ok(PushedBlob {
            digest,
            size,
            outcome: BlobOutcome::Uploaded,
            diff_id: learnt.into_inner().expect("not poisoned"),
        });
    }
    if let Some(skipped) = skip_if_present(ctx, &digest, size, id).await? {
        return Ok(skipped);
    }
    let produced = upload_with_retries(ctx, job, id).await?;
    Ok(uploaded(produced))
}

fn uploaded(produced: crate::producer::Produced) -> PushedBlob {
    PushedBlob {
        digest: produced.digest,
        size: produced.size,
        outcome: BlobOutcome::Uploaded,
        diff_id: produced.diff_id,
    }
}

/// HEAD, then a mount from another repository of the run: `Some` when no upload is needed.
pub(crate) async fn skip_if_present(
    ctx: &BlobContext,
    digest: &Digest,
    size: u64,
    id: BlobId,
) -> Result<Option<PushedBlob>, PushError> {
    ctx.reporter.blob_state(id, BlobState::Checking);
    let found = |outcome| {
        ctx.now_holds(digest);
        Some(PushedBlob {
            digest: digest.clone(),
            size,
            outcome,
            diff_id: None,
        })
    };
    if ctx.repository.blob_exists(digest).await?.is_some() {
        return Ok(found(BlobOutcome::Existing));
    }
    let Some(from) = ctx
        .state
        .holder_other_than(ctx.registry(), ctx.repository.name(), digest)
    else {
        return Ok(None);
    };
    ctx.reporter.blob_state(id, BlobState::Mounting);
    match ctx.repository.mount_blob(digest, &from).await? {
        MountOutcome::Mounted => Ok(found(BlobOutcome::Mounted)),
        MountOutcome::Upload(session) => {
            // The registry offered a fresh session instead; ours are opened per attempt.
            ctx.repository.cancel_upload(session).await;
            Ok(None)
        }
        MountOutcome::Refused => Ok(None),
    }
}
