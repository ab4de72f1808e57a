//! The push of a blob only a daemon's export can produce: a layer streaming by in the export,
//! or a small layer and the config read after it. Their digests are learnt from the stream,
//! so no plan settles them beforehand: nothing if the repository has it (HEAD), a mount if
//! another repository of the run holds it, else an upload. A layer ocipush compresses is
//! looked up by its diffID in the digest cache first; within a run, each is compressed once
//! and uploaded once per repository. Every other blob goes through `ops`, as decided.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use ocipush_oci::Digest;
use ocipush_registry::retry_count::in_current_count;
use ocipush_registry::MountOutcome;

use crate::context::BlobContext;
use crate::error::PushError;
use crate::job::{BlobJob, PushedBlob};
use crate::plan::{blob_label, BlobRole};
use crate::producer::Transform;
use crate::reporter::{BlobId, BlobOutcome, BlobState};
use crate::tally::Tally;
use crate::upload::upload_with_retries;

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
            ctx.state
                .remember_layer(diff_id, &digest, size, job.input_size);
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

/// An image config: small, so sent in one request unless the repository has it. It is a blob
/// like the others to the reporter, so progress counts it as the summary does, and like a
/// blob it goes into each repository once per run, however many images share it.
pub(crate) async fn push_config(
    ctx: &BlobContext,
    digest: &ocipush_oci::Digest,
    bytes: Bytes,
) -> Result<BlobOutcome, Arc<PushError>> {
    let cell = ctx.state.push_cell(&ctx.repository_key(), digest.as_ref());
    let did_work = AtomicBool::new(false);
    let pushed = cell
        .get_or_init(|| async {
            did_work.store(true, Ordering::Relaxed);
            let size = bytes.len() as u64;
            send_config(ctx, digest, bytes)
                .await
                .map(|outcome| PushedBlob {
                    digest: digest.clone(),
                    size,
                    outcome,
                    diff_id: None,
                })
                .map_err(Arc::new)
        })
        .await
        .clone()?;
    // Another image of this run put it there: for this one it already existed.
    Ok(match did_work.load(Ordering::Relaxed) {
        true => pushed.outcome,
        false => BlobOutcome::Existing,
    })
}

/// HEAD, then one POST + PUT if the repository lacks it, told to the reporter as a blob.
async fn send_config(
    ctx: &BlobContext,
    digest: &ocipush_oci::Digest,
    bytes: Bytes,
) -> Result<BlobOutcome, PushError> {
    let id = ctx.state.next_blob_id();
    let size = bytes.len() as u64;
    ctx.reporter
        .blob_started(id, &blob_label(BlobRole::Config, Some(digest)), size);
    ctx.reporter.blob_state(id, BlobState::Checking);
    let result = async {
        if ctx.repository.blob_exists(digest).await?.is_some() {
            return Ok(BlobOutcome::Existing);
        }
        crate::small_upload::send_from_memory(ctx, digest, bytes, id).await?;
        Ok(BlobOutcome::Uploaded)
    }
    .await;
    let outcome = match &result {
        Ok(outcome) => {
            ctx.now_holds(digest);
            *outcome
        }
        Err(_) if ctx.state.cancel.is_cancelled() => BlobOutcome::Interrupted,
        Err(_) => BlobOutcome::Failed,
    };
    if outcome == BlobOutcome::Uploaded {
        ctx.reporter.blob_progress(id, size);
    }
    ctx.reporter.blob_finished(id, outcome);
    result
}

/// Runs blob jobs in parallel within the run-wide budget; the first failure wins, but every
/// job is let finish (or fail) so no upload is left dangling. Every blob that got into the
/// repository is counted in `tally`, even when another failed: the report says what was sent.
pub(crate) async fn run_jobs(
    ctx: &BlobContext,
    jobs: Vec<BlobJob>,
    tally: &mut Tally,
) -> Result<Vec<PushedBlob>, Arc<PushError>> {
    // Turns are taken here, in the image's order (the budget is a fair queue), so with
    // `-j 1` layer 1 goes first; spawned tasks would race for them.
    let mut tasks = Vec::new();
    let mut first_error = None;
    for job in jobs {
        let permit = ctx
            .state
            .budget
            .clone()
            .acquire_owned()
            .await
            .expect("the budget is never closed");
        // Stopped while these blobs waited their turn: take no more turns (`push_blob` keeps
        // a blob that gets one after a stop from starting).
        if ctx.state.cancel.is_cancelled() {
            first_error = Some(Arc::new(PushError::Interrupted));
            break;
        }
        let ctx = ctx.clone();
        let id = ctx.state.next_blob_id();
        tasks.push(tokio::spawn(in_current_count(async move {
            let _permit = permit;
            push_blob(&ctx, &job, id).await
        })));
    }
    let mut pushed = Vec::new();
    for result in join_all(tasks).await {
        match result {
            Ok(Ok(blob)) => {
                tally.add(&blob);
                pushed.push(blob);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Arc::new(PushError::Internal(format!(
                    "blob task failed: {e}"
                ))));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(pushed),
    }
}
