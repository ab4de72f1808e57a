//! Carrying out one decision: one blob into one repository, as `decide` said — nothing (it is
//! there), a mount, a mount once an earlier upload ended, or an upload. Each op runs once per
//! run; every entry of the plan that needs its blob there waits on its result, so an image is
//! never tagged before the blobs it names are confirmed. (A daemon's blob that must be
//! exported has no op: the daemon's path pushes it; one that was to be mounted and could not
//! be is handed back to that path the same way.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ocipush_oci::Digest;
use ocipush_registry::retry_count::counting_retries;
use ocipush_registry::{MountOutcome, RegistryError};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::context::BlobContext;
use crate::decide::Decision;
use crate::error::PushError;
use crate::job::PushedBlob;
use crate::keys::{BlobKey, RepoKey};
use crate::plan::{blob_label, PlannedBlob, Production};
use crate::producer::Transform;
use crate::reporter::{BlobId, BlobOutcome, BlobState};
use crate::small_upload::{goes_in_memory, send_from_memory, upload_in_memory};
use crate::upload::{switch_to_chunks, upload_with_retries};

/// What an op came to: the blob in the repository, or `None` for a daemon's blob the registry
/// would not mount, left to the daemon's export.
pub(crate) type OpResult = Result<Option<PushedBlob>, Arc<PushError>>;

/// Requests that need no turn of the budget (mounts, a config held in memory) in flight at
/// once: many, since each is small, but bounded so a big run does not flood the registry.
const REQUESTS_AT_ONCE: usize = 32;

/// The result of an op, for whoever waits on it.
#[derive(Clone)]
pub(crate) struct Settled {
    result: watch::Receiver<Option<OpResult>>,
    retries: Arc<AtomicU64>,
}

impl Settled {
    /// Retries the op made so far (all of them, once it ended).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Waits for the op to end. An op dropped without a result (its task panicked) reads as
    /// an internal error rather than a wait forever.
    pub async fn wait(&mut self) -> OpResult {
        match self.result.wait_for(Option::is_some).await {
            Ok(result) => result.clone().expect("waited for Some"),
            Err(_) => Err(Arc::new(PushError::Internal(
                "a blob's push ended without a result".into(),
            ))),
        }
    }
}

/// One blob into one repository, as decided.
pub(crate) struct BlobOp {
    pub ctx: BlobContext,
    pub blob: PlannedBlob,
    pub decision: Decision,
    /// For `MountAfterUpload`: the upload it mounts from.
    pub after: Option<Settled>,
    /// Retries made for this op, counted for the image that owns it.
    pub retries: Arc<AtomicU64>,
    result: watch::Sender<Option<OpResult>>,
}

impl BlobOp {
    pub fn new(
        ctx: BlobContext,
        blob: PlannedBlob,
        decision: Decision,
        after: Option<Settled>,
    ) -> (BlobOp, Settled) {
        let (result, receiver) = watch::channel(None);
        let retries = Arc::new(AtomicU64::new(0));
        let settled = Settled {
            result: receiver,
            retries: retries.clone(),
        };
        let op = BlobOp {
            ctx,
            blob,
            decision,
            after,
            retries,
            result,
        };
        (op, settled)
    }

    /// Whether it takes a turn of the run's budget before it starts: uploads of big blobs read
    /// from a file do, in plan order. A config held in memory, or a small blob produced into
    /// memory first, is a couple of small requests: it never waits behind big layers.
    fn takes_a_turn_first(&self) -> bool {
        self.decision == Decision::Upload
            && matches!(&self.blob.production, Production::File(job) if !goes_in_memory(&self.ctx, job))
    }

    fn settle(&self, result: OpResult) {
        self.result.send_replace(Some(result));
    }
}

/// Runs the ops. Those that need no turn of the run-wide budget (blobs found, mounts, a
/// config held in memory) start at once, so no small request waits behind a big blob; then
/// uploads take their turns in plan order (the budget is a fair queue: with `-j 1`, layer 1
/// goes first). After a stop, ops not yet started end as interrupted.
///
/// Returns once every op has ended, so nothing runs on after the push that started them.
pub(crate) async fn run_ops(ops: Vec<BlobOp>) {
    let (turn_takers, at_once): (Vec<BlobOp>, Vec<BlobOp>) =
        ops.into_iter().partition(BlobOp::takes_a_turn_first);
    let requests = Arc::new(Semaphore::new(REQUESTS_AT_ONCE));
    let mut running = Vec::new();
    for op in at_once {
        let retries = op.retries.clone();
        let requests = requests.clone();
        running.push(tokio::spawn(counting_retries(
            retries,
            run_op(op, Start::Request(requests)),
        )));
    }
    for op in turn_takers {
        let state = op.ctx.state.clone();
        let permit = tokio::select! {
            permit = state.budget.clone().acquire_owned() => {
                Some(permit.expect("the budget is never closed"))
            }
            _ = state.cancel.cancelled() => None,
        };
        if state.cancel.is_cancelled() {
            op.settle(Err(Arc::new(PushError::Interrupted)));
            continue;
        }
        let retries = op.retries.clone();
        running.push(tokio::spawn(counting_retries(
            retries,
            run_op(op, Start::Turn(permit)),
        )));
    }
    for op in running {
        let _ = op.await;
    }
}

/// How an op may start: with its turn of the budget (taken in plan order), or once one of
/// the run's small-request slots is free.
enum Start {
    Turn(Option<OwnedSemaphorePermit>),
    Request(Arc<Semaphore>),
}

async fn run_op(mut op: BlobOp, start: Start) {
    let first = match op.after.as_mut() {
        Some(after) => Some(after.wait().await),
        None => None,
    };
    // A request slot is taken once what the op waits for has ended, never while waiting.
    let (permit, _request) = match start {
        Start::Turn(permit) => (permit, None),
        Start::Request(_) if op.decision == Decision::Exists => (None, None),
        Start::Request(slots) => (None, slots.acquire_owned().await.ok()),
    };
    if op.ctx.state.cancel.is_cancelled() {
        op.settle(Err(Arc::new(PushError::Interrupted)));
        return;
    }
    // A daemon's blob the registry would not mount is pushed by the export: it is heard of
    // only once it is in.
    if matches!(op.blob.production, Production::Export) {
        let result = mount_exported(&op, first).await;
        op.settle(result.map_err(Arc::new));
        return;
    }
    let ctx = &op.ctx;
    let id = ctx.state.next_blob_id();
    ctx.reporter
        .blob_started(id, &op.blob.label(), op.blob.source_bytes);
    let result = match (&op.decision, first) {
        (Decision::Exists | Decision::EarlierInRun, _) => {
            Ok(found(&op.blob, BlobOutcome::Existing))
        }
        (Decision::Mount { from }, _) => mount_or_upload(ctx, &op.blob, id, from, None).await,
        (Decision::MountAfterUpload { from }, Some(Ok(Some(first)))) => {
            let blob = mounted_as(&op.blob, &first);
            mount_or_upload(ctx, &blob, id, from, None).await
        }
        // The upload to mount from failed: this repository gets its own.
        (Decision::MountAfterUpload { .. }, _) => upload(ctx, &op.blob, id, None).await,
        (Decision::Upload, _) => upload(ctx, &op.blob, id, permit).await,
    };
    let outcome = match &result {
        Ok(pushed) => {
            ctx.now_holds(&pushed.digest);
            // A layer compressed on the way is named by the digest it turned out to have.
            if op.blob.digest().is_none() {
                ctx.reporter
                    .blob_named(id, &blob_label(op.blob.role, Some(&pushed.digest)));
            }
            pushed.outcome
        }
        Err(_) if ctx.state.cancel.is_cancelled() => BlobOutcome::Interrupted,
        Err(PushError::Interrupted) => BlobOutcome::Interrupted,
        Err(_) => BlobOutcome::Failed,
    };
    ctx.reporter.blob_finished(id, outcome);
    op.settle(result.map(Some).map_err(Arc::new));
}

/// The blob as an earlier upload made it: a layer compressed on the way is known by the
/// digest that upload learnt.
fn mounted_as(blob: &PlannedBlob, first: &PushedBlob) -> PlannedBlob {
    PlannedBlob {
        key: BlobKey::Digest(first.digest.clone()),
        size: first.size,
        ..blob.clone()
    }
}

/// A daemon's blob decided present or mountable: found, or mounted; `None` when the registry
/// will not mount it (the export then pushes it).
async fn mount_exported(
    op: &BlobOp,
    first: Option<OpResult>,
) -> Result<Option<PushedBlob>, PushError> {
    let ctx = &op.ctx;
    let (blob, from) = match (&op.decision, first) {
        (Decision::Exists | Decision::EarlierInRun, _) => {
            let pushed = found(&op.blob, BlobOutcome::Existing);
            report_found(ctx, &op.blob, BlobOutcome::Existing);
            return Ok(Some(pushed));
        }
        (Decision::Mount { from }, _) => (op.blob.clone(), from),
        (Decision::MountAfterUpload { from }, Some(Ok(Some(first)))) => {
            (mounted_as(&op.blob, &first), from)
        }
        _ => return Ok(None),
    };
    let Some(digest) = blob.digest() else {
        return Ok(None);
    };
    match ctx.repository.mount_blob(digest, &from.repository).await? {
        MountOutcome::Mounted => {
            ctx.now_holds(digest);
            report_found(ctx, &blob, BlobOutcome::Mounted);
            Ok(Some(found(&blob, BlobOutcome::Mounted)))
        }
        MountOutcome::Upload(session) => {
            ctx.repository.cancel_upload(session).await;
            Ok(None)
        }
        MountOutcome::Refused => Ok(None),
    }
}

/// Tells of a blob that needed no bytes moved.
fn report_found(ctx: &BlobContext, blob: &PlannedBlob, outcome: BlobOutcome) {
    let id = ctx.state.next_blob_id();
    ctx.reporter
        .blob_started(id, &blob.label(), blob.source_bytes);
    ctx.reporter.blob_finished(id, outcome);
}

/// A blob whose digest the decision knows, found where it was decided to be.
fn found(blob: &PlannedBlob, outcome: BlobOutcome) -> PushedBlob {
    PushedBlob {
        digest: blob
            .digest()
            .cloned()
            .expect("decided present, so its digest is known"),
        size: blob.size,
        outcome,
        diff_id: None,
    }
}

/// Mounts from `from`; uploads when the registry refuses (or offers a session instead).
async fn mount_or_upload(
    ctx: &BlobContext,
    blob: &PlannedBlob,
    id: BlobId,
    from: &RepoKey,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<PushedBlob, PushError> {
    let digest: &Digest = blob
        .digest()
        .ok_or_else(|| PushError::Internal("a mount without a digest".into()))?;
    ctx.reporter.blob_state(id, BlobState::Mounting);
    match ctx.repository.mount_blob(digest, &from.repository).await? {
        MountOutcome::Mounted => return Ok(found(blob, BlobOutcome::Mounted)),
        MountOutcome::Upload(session) => ctx.repository.cancel_upload(session).await,
        MountOutcome::Refused => {}
    }
    upload(ctx, blob, id, permit).await
}

/// Sends the blob; one read from a file first takes a turn of the run's budget if it has
/// none yet.
async fn upload(
    ctx: &BlobContext,
    blob: &PlannedBlob,
    id: BlobId,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<PushedBlob, PushError> {
    match &blob.production {
        Production::File(job) if goes_in_memory(ctx, job) => {
            drop(permit);
            let produced = match upload_in_memory(ctx, job, id).await {
                // Something in front of the registry refuses a body this big in one request
                // (nginx's default limit is 1 MiB): this blob and every later one to this
                // registry go in chunks, at once, spending no retry.
                Err(PushError::Registry(RegistryError::Status { status, .. }))
                    if status.as_u16() == 413 =>
                {
                    switch_to_chunks(ctx, id, 0);
                    return upload_streamed(ctx, job, blob, id, None).await;
                }
                other => other?,
            };
            Ok(uploaded(ctx, job, blob, produced))
        }
        Production::File(job) => upload_streamed(ctx, job, blob, id, permit).await,
        Production::Bytes(bytes) => {
            let digest = blob
                .digest()
                .ok_or_else(|| PushError::Internal("in-memory blob without a digest".into()))?;
            send_from_memory(ctx, digest, bytes.clone(), id).await?;
            ctx.reporter.blob_progress(id, blob.source_bytes);
            Ok(found(blob, BlobOutcome::Uploaded))
        }
        Production::Export => Err(PushError::Internal(
            "a daemon's blob is pushed by its export".into(),
        )),
    }
}

/// Streams the blob (POST, PATCH, PUT), with a turn of the run's budget taken first if it has
/// none yet.
async fn upload_streamed(
    ctx: &BlobContext,
    job: &crate::job::BlobJob,
    blob: &PlannedBlob,
    id: BlobId,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<PushedBlob, PushError> {
    let _permit = match permit {
        Some(permit) => permit,
        None => tokio::select! {
            permit = ctx.state.budget.clone().acquire_owned() => {
                permit.expect("the budget is never closed")
            }
            _ = ctx.state.cancel.cancelled() => return Err(PushError::Interrupted),
        },
    };
    let produced = upload_with_retries(ctx, job, id).await?;
    Ok(uploaded(ctx, job, blob, produced))
}

/// A blob read from a file and sent: remembered in the digest cache when ocipush compressed it.
fn uploaded(
    ctx: &BlobContext,
    job: &crate::job::BlobJob,
    blob: &PlannedBlob,
    produced: crate::producer::Produced,
) -> PushedBlob {
    remember_compressed(ctx, job, blob, &produced.digest, produced.size);
    PushedBlob {
        digest: produced.digest,
        size: produced.size,
        outcome: BlobOutcome::Uploaded,
        diff_id: produced.diff_id,
    }
}

/// Tells the digest cache what a layer ocipush compressed turned out to be, so the next run
/// knows its digest before reading it.
fn remember_compressed(
    ctx: &BlobContext,
    job: &crate::job::BlobJob,
    blob: &PlannedBlob,
    digest: &Digest,
    size: u64,
) {
    let diff_id = match &job.transform {
        Transform::Gzip {
            diff_id: Some(d), ..
        }
        | Transform::Zstd {
            diff_id: Some(d), ..
        } => d,
        _ => return,
    };
    if blob.digest() == Some(digest) {
        return;
    }
    ctx.state
        .remember_layer(diff_id, digest, size, job.input_size);
}
