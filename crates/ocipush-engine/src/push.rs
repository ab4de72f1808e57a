//! The push pipeline: for each planned image, every blob into its repository (in parallel,
//! under one run-wide concurrency budget), then its manifests — children of an index first, by
//! digest — then the tags. Nothing is tagged unless every blob it needs was confirmed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use ocipush_oci::{Compression, Document};
use ocipush_registry::retry_count::{counting_retries, in_current_count};
use ocipush_registry::{ClientOptions, Reference, Repository};
use ocipush_source::ImageContent;
use tokio_util::sync::CancellationToken;

use crate::assemble::image_manifest;
use crate::blob::{push_blob, BlobContext};
use crate::cache::DigestCache;
use crate::compress::CompressionSettings;
use crate::copies::settle_copies;
use crate::daemon::push_daemon_image;
use crate::decide::{decide, Decision, Holdings, ImageDecisions};
use crate::error::PushError;
use crate::job::{BlobJob, PushedBlob};
use crate::keys::{BlobKey, RepoKey};
use crate::ops::{run_ops, BlobOp, Settled};
use crate::plan::{BlobRole, Plan, PlanSettings, PlannedBlob, PlannedImage, Production};
use crate::probe::{client_for, connect_all, probe, Clients, ConnectCost};
use crate::report::{BlobCounts, Failure, ImageReport, ImageStatus, PushReport};
use crate::reporter::{BlobOutcome, BlobState, Reporter};
use crate::run_state::RunState;
use crate::totals::run_totals;

/// Settings of a push run, resolved by the caller from flags, environment and config.
///
/// `Default` gives what the CLI does without flags: four blobs at once, gzip level 1, no
/// digest cache, no rate limit, TLS verified.
///
/// ```
/// use ocipush_engine::{DigestCache, PushOptions};
///
/// let options = PushOptions::default()
///     .with_jobs(8)
///     .with_cache(DigestCache::disabled());
/// assert_eq!(options.jobs, 8);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushOptions {
    /// Blobs in flight at once, across all images (`-j`).
    pub jobs: usize,
    /// How registries are reached: TLS, credentials, retries, timeouts.
    pub client: ClientOptions,
    /// How layers stored uncompressed are compressed.
    pub compression: CompressionSettings,
    /// Compressed digests remembered between runs.
    pub cache: DigestCache,
    /// Cancelled by the caller on Ctrl-C: open uploads are cancelled (DELETE) and no manifest
    /// is written; the images report [`PushError::Interrupted`].
    pub cancel: CancellationToken,
    /// Upload bytes per second across the run (`--limit-rate`); none for no limit.
    pub limit_rate: Option<u64>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: DEFAULT_JOBS,
            client: ClientOptions::default(),
            compression: CompressionSettings::default(),
            cache: DigestCache::disabled(),
            cancel: CancellationToken::new(),
            limit_rate: None,
        }
    }
}

/// Blobs in flight at once when the caller does not say (`-j`'s default).
pub const DEFAULT_JOBS: usize = 4;

impl PushOptions {
    /// Blobs in flight at once, across all images.
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// How registries are reached.
    pub fn with_client(mut self, client: ClientOptions) -> Self {
        self.client = client;
        self
    }

    /// How layers stored uncompressed are compressed.
    pub fn with_compression(mut self, compression: CompressionSettings) -> Self {
        self.compression = compression;
        self
    }

    /// Where compressed digests are remembered between runs.
    pub fn with_cache(mut self, cache: DigestCache) -> Self {
        self.cache = cache;
        self
    }

    /// A token the caller cancels to stop the run (Ctrl-C).
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// At most `bytes_per_second` uploaded across the run.
    pub fn with_limit_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.limit_rate = bytes_per_second;
        self
    }

    /// What the plan needs of these options.
    pub fn plan_settings(&self) -> PlanSettings {
        PlanSettings {
            compression: self.compression,
            cache: self.cache.clone(),
        }
    }
}

/// Pushes every planned image and reports what happened to each. Images fail independently.
///
/// The run connects to each registry, probes what they hold, decides once what happens to
/// every blob (`decide`), then carries the decisions out: blobs as run-wide ops, each image
/// waiting for its own before writing its manifests and tags.
pub async fn push(plan: Plan, options: &PushOptions, reporter: Arc<dyn Reporter>) -> PushReport {
    let started = Instant::now();
    let state = Arc::new(RunState::new(
        options.jobs,
        options.cache.clone(),
        options.compression,
        options.cancel.clone(),
        options.limit_rate,
    ));
    let settled = settle_copies(plan.images, plan.repeats).await;
    let images = settled.images;
    let (clients, mut connect_costs) = connect_all(&images, &options.client, &options.cancel).await;
    let prechecked = images.iter().map(precheck).collect();
    let probed = probe(&images, &clients, prechecked, &options.cancel).await;
    let included: Vec<bool> = probed.failures.iter().map(Option::is_none).collect();
    let decisions = decide(&images, &included, &probed.holdings);
    reporter.run_started(&run_totals(&images, &decisions));

    let run = Run {
        clients,
        reporter,
        state,
        retries: options.client.retry.retries,
    };
    let (ops, settled_blobs) = build_ops(&images, &decisions, &probed.holdings, &run);
    let scheduler = tokio::spawn(run_ops(ops));
    let runs = images
        .iter()
        .zip(decisions)
        .zip(probed.failures)
        .enumerate()
        .map(|(index, ((planned, decided), failure))| {
            let run = &run;
            let settled_blobs = &settled_blobs;
            // Connecting to a registry is charged to the first image bound there: each retry
            // is counted once, and the images' retries add up to the run's.
            let connect = planned
                .references
                .iter()
                .filter_map(|r| connect_costs.remove(&r.registry))
                .fold(ConnectCost::default(), ConnectCost::add);
            async move {
                let image_started = Instant::now();
                let destinations: Vec<String> =
                    planned.references.iter().map(|r| r.to_string()).collect();
                run.reporter
                    .image_started(&planned.image.label, &destinations);
                let mut tally = Tally::default();
                let retries = Arc::new(AtomicU64::new(connect.retries));
                let result = match failure {
                    Some(e) => Err(e),
                    None => {
                        let work =
                            push_image(index, planned, &decided, settled_blobs, run, &mut tally);
                        counting_retries(retries.clone(), work).await
                    }
                };
                tally.retries += retries.load(Ordering::Relaxed);
                let took = connect.took + image_started.elapsed();
                let report = image_report(planned, result, tally, took);
                run.reporter.image_finished(&report);
                report
            }
        });
    let mut reports = join_all(runs).await;
    let _ = scheduler.await;
    run.reporter.run_finished();
    reports.extend(settled.damaged);
    PushReport::new(reports, started.elapsed())
}

/// What fails an image before anything is sent: a destination naming a digest that is not the
/// stored manifest's.
pub(crate) fn precheck(image: &PlannedImage) -> Option<Arc<PushError>> {
    let ImageContent::Stored { root, .. } = &image.image.content else {
        return None;
    };
    let references: Vec<&Reference> = image.references.iter().collect();
    check_named_digests(&references, root).err()
}

/// Where each blob entry of the plan gets its result: the op that carries out its decision.
type SettledBlobs = HashMap<(RepoKey, BlobKey), Settled>;

/// One op per blob and repository, in plan order, from the decisions. A daemon image's blobs
/// that are not simply there (or mountable) are left to its export.
fn build_ops(
    images: &[PlannedImage],
    decisions: &[ImageDecisions],
    holdings: &Holdings,
    run: &Run,
) -> (Vec<BlobOp>, SettledBlobs) {
    let mut ops = Vec::new();
    let mut settled = SettledBlobs::new();
    for (planned, decided) in images.iter().zip(decisions) {
        for (repository, blob_decisions) in decided {
            let Ok(client) = client_for(&run.clients, &repository.registry) else {
                continue;
            };
            let ctx = BlobContext {
                repository: Repository::new(client, &repository.repository),
                blobs: planned.source.blobs.clone(),
                reporter: run.reporter.clone(),
                retries: run.retries,
                state: run.state.clone(),
            };
            for (blob, decision) in planned.blobs.iter().zip(blob_decisions) {
                let by_export = matches!(blob.production, Production::Export)
                    && !matches!(decision, Decision::Exists | Decision::Mount { .. });
                if *decision == Decision::EarlierInRun || by_export {
                    continue;
                }
                let after = match decision {
                    Decision::MountAfterUpload { from } => {
                        settled.get(&(from.clone(), blob.key.clone())).cloned()
                    }
                    _ => None,
                };
                let mut blob = blob.clone();
                // A daemon's config size is learnt from the registry that holds it.
                let holder = match decision {
                    Decision::Mount { from } => from,
                    _ => repository,
                };
                if let Some(size) = blob.digest().and_then(|d| holdings.size(holder, d)) {
                    if blob.size == 0 {
                        blob.size = size;
                    }
                }
                let key = (repository.clone(), blob.key.clone());
                let (op, result) = BlobOp::new(ctx.clone(), blob, decision.clone(), after);
                settled.insert(key, result);
                ops.push(op);
            }
        }
    }
    (ops, settled)
}

/// Counts gathered while pushing one image.
#[derive(Default)]
pub(crate) struct Tally {
    bytes_uploaded: u64,
    bytes_skipped: u64,
    blobs: BlobCounts,
    retries: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, blob: &PushedBlob) {
        match blob.outcome {
            BlobOutcome::Existing => {
                self.blobs.existing += 1;
                self.bytes_skipped += blob.size;
            }
            BlobOutcome::Mounted => {
                self.blobs.mounted += 1;
                self.bytes_skipped += blob.size;
            }
            BlobOutcome::Uploaded => {
                self.blobs.uploaded += 1;
                self.bytes_uploaded += blob.size;
            }
            BlobOutcome::Failed | BlobOutcome::Interrupted => {}
        }
    }

    /// Counts an image config, if it got into the repository.
    pub(crate) fn add_config(
        &mut self,
        digest: &ocipush_oci::Digest,
        size: u64,
        outcome: &Result<BlobOutcome, Arc<PushError>>,
    ) {
        if let Ok(outcome) = outcome {
            self.add(&PushedBlob {
                digest: digest.clone(),
                size,
                outcome: *outcome,
                diff_id: None,
            });
        }
    }
}

/// What every image of a run shares.
struct Run {
    clients: Clients,
    reporter: Arc<dyn Reporter>,
    state: Arc<RunState>,
    retries: u32,
}

/// Waits for the image's blobs in each of its repositories, then writes its manifests there.
async fn push_image(
    index: usize,
    planned: &PlannedImage,
    decided: &ImageDecisions,
    settled: &SettledBlobs,
    run: &Run,
    tally: &mut Tally,
) -> Result<String, Arc<PushError>> {
    let _ = index;
    let mut digest = None;
    for ((repository, references), (_, decisions)) in
        planned.repositories().into_iter().zip(decided)
    {
        let client = client_for(&run.clients, &repository.registry)?;
        let ctx = BlobContext {
            repository: Repository::new(client, &repository.repository),
            blobs: planned.source.blobs.clone(),
            reporter: run.reporter.clone(),
            retries: run.retries,
            state: run.state.clone(),
        };
        let blobs = blob_results(planned, &repository, decisions, settled, tally).await;
        let root = match &planned.image.content {
            ImageContent::Stored { root, children, .. } => {
                blobs.into_iter().collect::<Result<Vec<_>, _>>()?;
                for child in children {
                    put_manifest(&ctx, child, child.digest().as_ref()).await?;
                }
                root.clone()
            }
            ImageContent::Assembled(assembled) => {
                let pushed = blobs.into_iter().collect::<Result<Vec<_>, _>>()?;
                let layers: Vec<_> = planned
                    .blobs
                    .iter()
                    .zip(pushed.iter().flatten())
                    .filter(|(blob, _)| blob.role != BlobRole::Config)
                    .map(|(blob, pushed)| {
                        (pushed.digest.clone(), pushed.size, output_compression(blob))
                    })
                    .collect();
                image_manifest(
                    &assembled.config_digest,
                    assembled.config.len() as u64,
                    &layers,
                )?
            }
            ImageContent::Daemon(daemon_image) => {
                let held: Vec<Option<PushedBlob>> = blobs.into_iter().collect::<Result<_, _>>()?;
                push_daemon_image(daemon_image, &ctx, tally, &planned.blobs, &held).await?
            }
        };
        check_named_digests(&references, &root)?;
        for reference in &references {
            let target = reference
                .api_reference()
                .unwrap_or_else(|| root.digest().to_string());
            put_manifest(&ctx, &root, &target).await?;
        }
        digest = Some(root.digest().to_string());
    }
    digest.ok_or_else(|| Arc::new(PushError::Naming("no destination".into())))
}

/// How a layer goes into the registry: as ocipush compresses it, or as stored.
fn output_compression(blob: &PlannedBlob) -> Compression {
    match (&blob.compress, &blob.production) {
        (Some(algorithm), _) => algorithm.compression(),
        (None, Production::File(job)) => job.transform.output_compression(),
        (None, _) => Compression::None,
    }
}

/// Waits for every blob of the image in one repository and counts each in `tally`: as the op
/// went for the entry that owns it, as existing for one an earlier entry of the run put there.
/// `None` for a daemon blob its export pushes. Every op is waited for, even after one failed,
/// so the report says what was sent.
async fn blob_results(
    planned: &PlannedImage,
    repository: &RepoKey,
    decisions: &[Decision],
    settled: &SettledBlobs,
    tally: &mut Tally,
) -> Vec<Result<Option<PushedBlob>, Arc<PushError>>> {
    let mut results = Vec::with_capacity(decisions.len());
    for (blob, decision) in planned.blobs.iter().zip(decisions) {
        let Some(mut waiting) = settled
            .get(&(repository.clone(), blob.key.clone()))
            .cloned()
        else {
            results.push(Ok(None));
            continue;
        };
        let result = match waiting.wait().await {
            Ok(pushed) if *decision == Decision::EarlierInRun => Ok(PushedBlob {
                outcome: BlobOutcome::Existing,
                ..pushed
            }),
            other => other,
        };
        if let Ok(pushed) = &result {
            tally.add(pushed);
        }
        // Retries an op made count for the image whose decision it carried out.
        if *decision != Decision::EarlierInRun {
            tally.retries += waiting.retries();
        }
        results.push(result.map(Some));
    }
    results
}

/// Every destination that names a digest names the manifest's own.
fn check_named_digests(references: &[&Reference], root: &Document) -> Result<(), Arc<PushError>> {
    for reference in references {
        if let Some(wanted) = &reference.digest {
            if wanted != root.digest() {
                return Err(Arc::new(PushError::WrongDigest {
                    repository: format!("{}/{}", reference.registry, reference.repository),
                    wanted: wanted.to_string(),
                    actual: root.digest().to_string(),
                }));
            }
        }
    }
    Ok(())
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
        .blob_started(id, &format!("config {}", short(digest.as_ref())), size);
    ctx.reporter.blob_state(id, BlobState::Checking);
    let result = async {
        if ctx.repository.blob_exists(digest).await?.is_some() {
            return Ok(BlobOutcome::Existing);
        }
        ctx.reporter.blob_state(id, BlobState::Uploading);
        ctx.repository.upload_bytes(digest, bytes).await?;
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

async fn put_manifest(ctx: &BlobContext, doc: &Document, reference: &str) -> Result<(), PushError> {
    // Every blob is in, but the user asked to stop: a stop means no new tag.
    if ctx.state.cancel.is_cancelled() {
        return Err(PushError::Interrupted);
    }
    ctx.repository
        .put_manifest(
            reference,
            doc.media_type(),
            Bytes::copy_from_slice(doc.bytes()),
            doc.digest(),
        )
        .await
        .map_err(PushError::from)
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

fn image_report(
    planned: &PlannedImage,
    result: Result<String, Arc<PushError>>,
    tally: Tally,
    elapsed: Duration,
) -> ImageReport {
    let (status, digest, error) = match result {
        Ok(digest) => (ImageStatus::Pushed, Some(digest), None),
        Err(e) => (
            ImageStatus::Failed,
            None,
            Some(Failure {
                message: e.to_string(),
                hint: e.hint(),
                kind: e.kind(),
            }),
        ),
    };
    ImageReport {
        source: planned.image.label.clone(),
        destination: planned
            .references
            .first()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        references: planned.references.iter().map(|r| r.to_string()).collect(),
        digest,
        status,
        bytes_uploaded: tally.bytes_uploaded,
        bytes_skipped: tally.bytes_skipped,
        blobs: tally.blobs,
        retries: tally.retries,
        duration_ms: elapsed.as_millis() as u64,
        error,
    }
}

pub(crate) fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}
