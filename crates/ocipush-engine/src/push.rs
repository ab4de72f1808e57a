//! The push pipeline: connect, probe, decide (`decide`), then carry the decisions out — every
//! blob into its repository as a run-wide op (uploads under one concurrency budget; found
//! blobs and mounts at once), then each image's manifests — children of an index first, by
//! digest — then its tags, except tags already at that manifest. Nothing is tagged unless
//! every blob it needs was confirmed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use ocipush_oci::Document;
use ocipush_registry::retry_count::counting_retries;
use ocipush_registry::{ClientOptions, Reference, Repository};
use ocipush_source::ImageContent;
use tokio_util::sync::CancellationToken;

use crate::assemble::image_manifest;
use crate::cache::DigestCache;
use crate::compress::CompressionSettings;
use crate::context::BlobContext;
use crate::copies::settle_copies;
use crate::daemon::push_daemon_image;
use crate::decide::{decide, Decision, Holdings, ImageDecisions};
use crate::error::PushError;
use crate::job::PushedBlob;
use crate::keys::{BlobKey, RepoKey};
use crate::ops::{run_ops, BlobOp, Settled};
use crate::plan::{BlobRole, Plan, PlanSettings, PlannedBlob, PlannedImage, Production};
use crate::probe::{client_for, connect_all, probe, Clients, ConnectCost, Probed};
use crate::recorder::Recorder;
use crate::referrers_link::{link_referrer, ReferrersApi};
use crate::report::{Failure, ImageReport, ImageStatus, PushReport};
use crate::reporter::{BlobOutcome, Reporter};
use crate::run_state::RunState;
use crate::tally::Tally;
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
    /// Blobs whose source is at most this big are produced into memory and sent as POST + one
    /// PUT with the body (two round trips instead of a streamed upload's three), outside the
    /// `jobs` limit; 0 streams every blob. Default [`SMALL_BLOB`].
    pub small_blob: u64,
}

/// [`PushOptions::small_blob`]'s default: 16 MiB.
pub const SMALL_BLOB: u64 = crate::small_upload::SMALL_BLOB;

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: DEFAULT_JOBS,
            client: ClientOptions::default(),
            compression: CompressionSettings::default(),
            cache: DigestCache::disabled(),
            cancel: CancellationToken::new(),
            limit_rate: None,
            small_blob: SMALL_BLOB,
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

    /// Blobs up to this size are sent from memory in two requests (0: every blob streamed).
    pub fn with_small_blob(mut self, bytes: u64) -> Self {
        self.small_blob = bytes;
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
    // Every event goes into the run's ledger before the reporter hears of it.
    let recorder = Arc::new(Recorder::new(reporter));
    let ledger = recorder.ledger().clone();
    let reporter: Arc<dyn Reporter> = recorder;
    let state = Arc::new(RunState::new(
        options.jobs,
        options.cache.clone(),
        options.compression,
        options.cancel.clone(),
        options.limit_rate,
        options.small_blob,
    ));
    let settled = settle_copies(plan.images, plan.repeats).await;
    let images = settled.images;
    let (clients, mut connect_costs) = connect_all(&images, &options.client, &options.cancel).await;
    let prechecked = images.iter().map(precheck).collect();
    let Probed {
        holdings,
        current,
        retries: probe_retries,
        failures,
    } = probe(&images, &clients, prechecked, &options.cancel).await;
    let included: Vec<bool> = failures.iter().map(Option::is_none).collect();
    let decisions = decide(&images, &included, &holdings);
    reporter.run_started(&run_totals(&images, &decisions), &ledger);

    let run = Run {
        clients,
        referrers_api: tokio::sync::Mutex::default(),
        reporter,
        state,
        retries: options.client.retry.retries,
        current,
    };
    let (ops, settled_blobs) = build_ops(&images, &decisions, &holdings, &run);
    // Every image is announced before its first blob is heard of.
    for planned in &images {
        let destinations: Vec<String> = planned.references.iter().map(|r| r.to_string()).collect();
        run.reporter
            .image_started(&planned.image.label, &destinations);
    }
    let scheduler = tokio::spawn(run_ops(ops));
    let runs = images
        .iter()
        .zip(decisions)
        .zip(failures)
        .zip(probe_retries)
        .map(|(((planned, decided), failure), probe_retries)| {
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
                let mut tally = Tally::default();
                let retries = Arc::new(AtomicU64::new(connect.retries + probe_retries));
                let result = match failure {
                    Some(e) => Err(e),
                    None => {
                        let work = push_image(planned, &decided, settled_blobs, run, &mut tally);
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
    let mut report = PushReport::new(reports, started.elapsed());
    report.summary.bytes_abandoned = ledger.read(|l| l.overall().abandoned);
    report
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
/// Keyed as `decide` matches entries: by repository, blob, and whether the blob comes from a
/// daemon's export (such entries are matched only with each other).
type SettledBlobs = HashMap<(RepoKey, BlobKey, bool), Settled>;

/// Whether an entry's blob comes from a daemon's export: `decide`'s lane for it.
fn export_lane(blob: &PlannedBlob) -> bool {
    matches!(blob.production, Production::Export)
}

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
            let Ok(ctx) = run.context(planned, repository) else {
                continue;
            };
            for (blob, decision) in planned.blobs.iter().zip(blob_decisions) {
                let lane = export_lane(blob);
                let by_export =
                    lane && !matches!(decision, Decision::Exists | Decision::Mount { .. });
                if *decision == Decision::EarlierInRun || by_export {
                    continue;
                }
                let after = match decision {
                    Decision::MountAfterUpload { from } => settled
                        .get(&(from.clone(), blob.key.clone(), lane))
                        .cloned(),
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
                let key = (repository.clone(), blob.key.clone(), lane);
                let (op, result) = BlobOp::new(ctx.clone(), blob, decision.clone(), after);
                settled.insert(key, result);
                ops.push(op);
            }
        }
    }
    (ops, settled)
}

impl Run {
    /// What a blob push into `repository` of `planned`'s needs.
    fn context(
        &self,
        planned: &PlannedImage,
        repository: &RepoKey,
    ) -> Result<BlobContext, Arc<PushError>> {
        let client = client_for(&self.clients, &repository.registry)?;
        Ok(BlobContext {
            repository: Repository::new(client, &repository.repository),
            blobs: planned.source.blobs.clone(),
            reporter: self.reporter.clone(),
            retries: self.retries,
            state: self.state.clone(),
        })
    }
}

/// What every image of a run shares.
struct Run {
    clients: Clients,
    /// Held while a referrer is listed under its subject (see `referrers_link`), with what
    /// the run learnt of the registries' referrers API.
    referrers_api: tokio::sync::Mutex<ReferrersApi>,
    reporter: Arc<dyn Reporter>,
    state: Arc<RunState>,
    retries: u32,
    /// References the probe found already at their image's manifest: not written again.
    current: HashSet<Reference>,
}

/// Waits for the image's blobs in each of its repositories, then writes its manifests there.
async fn push_image(
    planned: &PlannedImage,
    decided: &ImageDecisions,
    settled: &SettledBlobs,
    run: &Run,
    tally: &mut Tally,
) -> Result<String, Arc<PushError>> {
    let mut digest = None;
    for ((repository, references), (_, decisions)) in
        planned.repositories().into_iter().zip(decided)
    {
        let ctx = run.context(planned, &repository)?;
        let blobs = blob_results(planned, &repository, decisions, settled, tally).await;
        // A tag already at this manifest: the repository holds it, and its children.
        let current = references.iter().any(|r| run.current.contains(*r));
        let root = match &planned.image.content {
            ImageContent::Stored { root, children, .. } => {
                blobs.into_iter().collect::<Result<Vec<_>, _>>()?;
                for child in children.iter().filter(|_| !current) {
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
                        (
                            pushed.digest.clone(),
                            pushed.size,
                            blob.output_compression(),
                        )
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
                let root =
                    push_daemon_image(daemon_image, &ctx, tally, &planned.blobs, &held).await?;
                count_repeats_the_export_pushed(planned, decisions, &held, &root, tally);
                root
            }
        };
        check_named_digests(&references, &root)?;
        let mut written = false;
        for reference in references.iter().filter(|r| !run.current.contains(**r)) {
            let target = reference
                .api_reference()
                .unwrap_or_else(|| root.digest().to_string());
            put_manifest(&ctx, &root, &target).await?;
            written = true;
        }
        if let (Some(subject), true) = (&planned.subject, written) {
            // One at a time: two referrers of one manifest extend the same fallback tag.
            let mut api = run.referrers_api.lock().await;
            link_referrer(&ctx.repository, subject, &root, &mut api).await?;
        }
        digest = Some(root.digest().to_string());
    }
    digest.ok_or_else(|| Arc::new(PushError::Naming("no destination".into())))
}

/// A daemon image's layer that repeats an earlier one (the same empty layer twice) was put
/// there by the export with its twin: it counts as existing, as `decide` said, with the size
/// its manifest gives it.
fn count_repeats_the_export_pushed(
    planned: &PlannedImage,
    decisions: &[Decision],
    held: &[Option<PushedBlob>],
    root: &Document,
    tally: &mut Tally,
) {
    let descriptors = root.blobs();
    for (place, ((blob, decision), found)) in
        planned.blobs.iter().zip(decisions).zip(held).enumerate()
    {
        let BlobRole::Layer { index, .. } = blob.role else {
            continue;
        };
        // Only a repeat within this image: a layer another image's export put there was
        // counted by this image's own export as it streamed by.
        let repeat = planned.blobs[..place].iter().any(|b| b.key == blob.key);
        if *decision != Decision::EarlierInRun || found.is_some() || !repeat {
            continue;
        }
        // A manifest's blobs are its config, then its layers.
        if let Some(descriptor) = descriptors.get(index) {
            tally.add(&PushedBlob {
                digest: descriptor.digest().clone(),
                size: descriptor.size(),
                outcome: BlobOutcome::Existing,
                diff_id: None,
            });
        }
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
        let key = (repository.clone(), blob.key.clone(), export_lane(blob));
        let Some(mut waiting) = settled.get(&key).cloned() else {
            results.push(Ok(None));
            continue;
        };
        let result = match waiting.wait().await {
            Ok(Some(pushed)) if *decision == Decision::EarlierInRun => Ok(Some(PushedBlob {
                outcome: BlobOutcome::Existing,
                ..pushed
            })),
            other => other,
        };
        if let Ok(Some(pushed)) = &result {
            tally.add(pushed);
        }
        // Retries an op made count for the image whose decision it carried out.
        if *decision != Decision::EarlierInRun {
            tally.retries += waiting.retries();
        }
        results.push(result);
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

/// What was fetched from a source registry for the image's blobs.
fn bytes_read(planned: &PlannedImage) -> u64 {
    planned
        .blobs
        .iter()
        .filter_map(|blob| match &blob.production {
            Production::File(job) => Some(planned.source.blobs.fetched(&job.path)),
            _ => None,
        })
        .sum()
}

fn image_report(
    planned: &PlannedImage,
    result: Result<String, Arc<PushError>>,
    tally: Tally,
    elapsed: Duration,
) -> ImageReport {
    let (status, digest, error) = match result {
        Ok(digest) => (ImageStatus::Pushed, Some(digest), None),
        Err(e) => (ImageStatus::Failed, None, Some(Failure::from(&*e))),
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
        bytes_read: bytes_read(planned),
        blobs: tally.blobs,
        retries: tally.retries,
        duration_ms: elapsed.as_millis() as u64,
        error,
        subject: planned.subject.as_ref().map(|d| d.to_string()),
    }
}
