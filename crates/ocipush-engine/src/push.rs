//! The push pipeline: for each planned image, every blob into its repository (in parallel,
//! under one run-wide concurrency budget), then its manifests — children of an index first, by
//! digest — then the tags. Nothing is tagged unless every blob it needs was confirmed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use ocipush_oci::Document;
use ocipush_registry::retry_count::{counting_retries, in_current_count};
use ocipush_registry::{ClientOptions, Reference, RegistryClient, Repository};
use ocipush_source::{ImageContent, LocalImage, Source};
use tokio_util::sync::CancellationToken;

use crate::assemble::image_manifest;
use crate::blob::{push_blob, BlobContext};
use crate::cache::DigestCache;
use crate::compress::CompressionSettings;
use crate::daemon::push_daemon_image;
use crate::error::PushError;
use crate::job::{BlobJob, PushedBlob};
use crate::naming::{destinations_for, Destination};
use crate::report::{BlobCounts, Failure, ImageReport, ImageStatus, PushReport};
use crate::reporter::{BlobOutcome, BlobState, Reporter};
use crate::run_state::RunState;
use crate::totals::run_totals;

/// Settings of a push run, resolved by the caller from flags, environment and config.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs in flight at once, across all images (`-j`).
    pub jobs: usize,
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
    /// Stored blobs streaming at once into a registry on this machine: its cores (see
    /// `send_turns`).
    pub local_sends: usize,
}

/// One image and the references it goes to.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    pub source: Arc<Source>,
    pub image: LocalImage,
    pub references: Vec<Reference>,
}

/// Decides where every image of the sources goes.
pub fn plan(
    sources: &[Arc<Source>],
    destination: &Destination,
    extra_tags: &[String],
) -> Result<Plan, PushError> {
    let total: usize = sources.iter().map(|s| s.images.len()).sum();
    if let Destination::Reference(reference) = destination {
        if total != 1 {
            return Err(PushError::OneDestinationForMany {
                count: total,
                labels: sources
                    .iter()
                    .flat_map(|s| s.images.iter().map(|i| i.label.clone()))
                    .collect(),
                reference: reference.to_string(),
            });
        }
    }
    let mut planned = Vec::with_capacity(total);
    for source in sources {
        for image in &source.images {
            planned.push(PlannedImage {
                source: source.clone(),
                image: image.clone(),
                references: destinations_for(image, &source.name, destination, extra_tags)?,
            });
        }
    }
    settle_shared_references(planned)
}

/// An image left out of the plan because an identical one goes to every one of its references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedImage {
    pub label: String,
    /// The image that goes there instead.
    pub same_as: String,
}

/// What a run will push, and what it leaves out as a repeat.
#[derive(Debug, Clone)]
pub struct Plan {
    pub images: Vec<PlannedImage>,
    pub repeats: Vec<RepeatedImage>,
}

/// Settles references that several images are bound for. Two different images bound for one
/// tag would both be reported pushed while the tag keeps only the last: refused before anything
/// is sent. The same image named twice (one source given twice, two copies of one tarball) is
/// not a conflict: it goes once, and a repeat whose every reference is taken is left out (it
/// would only print its reference twice), to be mentioned by the caller.
fn settle_shared_references(planned: Vec<PlannedImage>) -> Result<Plan, PushError> {
    // Reference -> (identity, label) of the image that goes there.
    let mut owners: HashMap<String, (String, String)> = HashMap::new();
    let mut plan = Plan {
        images: Vec::with_capacity(planned.len()),
        repeats: Vec::new(),
    };
    for mut image in planned {
        let identity = identity(&image.image);
        let mut same_as = None;
        let mut kept = Vec::with_capacity(image.references.len());
        for reference in std::mem::take(&mut image.references) {
            let key = reference.to_string();
            match owners.get(&key) {
                Some((first, label)) if *first != identity => {
                    return Err(PushError::SameDestination {
                        reference: key,
                        first: label.clone(),
                        second: image.image.label.clone(),
                    });
                }
                Some((_, label)) => {
                    same_as.get_or_insert_with(|| label.clone());
                }
                None => {
                    owners.insert(key, (identity.clone(), image.image.label.clone()));
                    kept.push(reference);
                }
            }
        }
        image.references = kept;
        match same_as {
            Some(same_as) if image.references.is_empty() => plan.repeats.push(RepeatedImage {
                label: image.image.label.clone(),
                same_as,
            }),
            _ => plan.images.push(image),
        }
    }
    Ok(plan)
}

/// What makes two local images the same image: the manifest an OCI source stores, or the config
/// ocipush assembles a manifest around (a daemon's image ID is its config's digest).
fn identity(image: &LocalImage) -> String {
    match &image.content {
        ImageContent::Stored { root, .. } => format!("manifest {}", root.digest()),
        ImageContent::Assembled(assembled) => format!("config {}", assembled.config_digest),
        ImageContent::Daemon(daemon) => format!("config {}", daemon.id),
    }
}

/// Pushes every planned image and reports what happened to each. Images fail independently.
pub async fn push(
    plan: Vec<PlannedImage>,
    options: &PushOptions,
    reporter: Arc<dyn Reporter>,
) -> PushReport {
    let started = Instant::now();
    let state = Arc::new(RunState::new(
        options.jobs,
        options.cache.clone(),
        options.compression,
        options.cancel.clone(),
        options.limit_rate,
        options.local_sends,
    ));
    // Said first: connecting to a registry that does not answer takes its retries.
    reporter.run_started(&run_totals(&plan));
    let (clients, mut connect_costs) = connect_all(&plan, options).await;
    let run = Run {
        clients,
        reporter,
        state,
        retries: options.client.retry.retries,
    };
    let runs = plan.into_iter().map(|planned| {
        let run = &run;
        let reporter = &run.reporter;
        // Connecting to a registry is charged to the first image bound there: each retry is
        // counted once, and the images' retries add up to the run's.
        let connect = planned
            .references
            .iter()
            .filter_map(|r| connect_costs.remove(&r.registry))
            .fold(ConnectCost::default(), ConnectCost::add);
        async move {
            let image_started = Instant::now();
            let destinations: Vec<String> =
                planned.references.iter().map(|r| r.to_string()).collect();
            reporter.image_started(&planned.image.label, &destinations);
            let mut tally = Tally::default();
            let retries = Arc::new(AtomicU64::new(connect.retries));
            let result =
                counting_retries(retries.clone(), push_image(&planned, run, &mut tally)).await;
            tally.retries = retries.load(Ordering::Relaxed);
            let took = connect.took + image_started.elapsed();
            let report = image_report(&planned, result, tally, took);
            reporter.image_finished(&report);
            report
        }
    });
    let reports = join_all(runs).await;
    run.reporter.run_finished();
    PushReport::new(reports, started.elapsed())
}

/// The registries of the plan, each connected once; a registry that cannot be reached fails
/// only the images going there.
pub(crate) type Clients = HashMap<String, Result<Arc<RegistryClient>, Arc<PushError>>>;

/// What connecting to a registry cost: the `GET /v2/` ping, with its retries.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectCost {
    retries: u64,
    took: Duration,
}

impl ConnectCost {
    fn add(self, other: ConnectCost) -> ConnectCost {
        ConnectCost {
            retries: self.retries + other.retries,
            took: self.took + other.took,
        }
    }
}

pub(crate) async fn connect_all(
    plan: &[PlannedImage],
    options: &PushOptions,
) -> (Clients, HashMap<String, ConnectCost>) {
    let mut clients = Clients::new();
    let mut costs = HashMap::new();
    for image in plan {
        for reference in &image.references {
            if !clients.contains_key(&reference.registry) {
                let started = Instant::now();
                let retries = Arc::new(AtomicU64::new(0));
                let connect = counting_retries(
                    retries.clone(),
                    RegistryClient::connect(&reference.registry, &options.client),
                );
                // Ctrl-C while a registry keeps not answering: stop now, not after the retries.
                let client = tokio::select! {
                    client = connect => client.map_err(|e| Arc::new(PushError::Registry(e))),
                    _ = options.cancel.cancelled() => Err(Arc::new(PushError::Interrupted)),
                };
                clients.insert(reference.registry.clone(), client);
                let cost = ConnectCost {
                    retries: retries.load(Ordering::Relaxed),
                    took: started.elapsed(),
                };
                costs.insert(reference.registry.clone(), cost);
            }
        }
    }
    (clients, costs)
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

async fn push_image(
    planned: &PlannedImage,
    run: &Run,
    tally: &mut Tally,
) -> Result<String, Arc<PushError>> {
    // One repository may take several tags: blobs go up once, then one manifest PUT per tag.
    let mut by_repository: Vec<(String, Vec<&Reference>)> = Vec::new();
    for reference in &planned.references {
        let name = reference.name();
        match by_repository.iter_mut().find(|(r, _)| *r == name) {
            Some((_, refs)) => refs.push(reference),
            None => by_repository.push((name, vec![reference])),
        }
    }
    let mut digest = None;
    for (_, references) in by_repository {
        let first = references[0];
        let client = run
            .clients
            .get(&first.registry)
            .expect("every registry was connected")
            .clone()?;
        let ctx = BlobContext {
            repository: Repository::new(client.clone(), &first.repository),
            blobs: planned.source.blobs.clone(),
            reporter: run.reporter.clone(),
            retries: run.retries,
            state: run.state.clone(),
        };
        digest = Some(push_to_repository(&planned.image, &ctx, &references, tally).await?);
    }
    digest.ok_or_else(|| Arc::new(PushError::Naming("no destination".into())))
}

async fn push_to_repository(
    image: &LocalImage,
    ctx: &BlobContext,
    references: &[&Reference],
    tally: &mut Tally,
) -> Result<String, Arc<PushError>> {
    let root = match &image.content {
        ImageContent::Stored {
            root,
            children,
            blob_paths,
        } => {
            let mut jobs = Vec::new();
            for doc in std::iter::once(root).chain(children) {
                let blobs = doc.blobs();
                // Layers numbered as an archive's are (`layer 2/3`), by place in the manifest.
                let layer_count = blobs.len().saturating_sub(1);
                for (place, blob) in blobs.into_iter().enumerate() {
                    if jobs
                        .iter()
                        .any(|j: &BlobJob| j.path.ends_with(blob.digest().digest()))
                    {
                        continue;
                    }
                    let path = blob_paths
                        .iter()
                        .find(|(d, _)| d == blob.digest())
                        .map(|(_, p)| p.clone())
                        .ok_or_else(|| {
                            PushError::Internal(format!("no path for {}", blob.digest()))
                        })?;
                    // A manifest's blobs are its config, then its layers.
                    let label = match place {
                        0 => format!("config {}", short(blob.digest().as_ref())),
                        _ => format!(
                            "layer {place}/{layer_count} {}",
                            short(blob.digest().as_ref())
                        ),
                    };
                    jobs.push(BlobJob::verbatim(
                        label,
                        path,
                        blob.digest().clone(),
                        blob.size(),
                    ));
                }
            }
            // The manifest is known before any blob moves: a destination naming another digest
            // fails now, not after the upload.
            check_named_digests(references, root)?;
            run_jobs(ctx, jobs, tally).await?;
            for child in children {
                put_manifest(ctx, child, child.digest().as_ref()).await?;
            }
            root.clone()
        }
        ImageContent::Assembled(assembled) => {
            let count = assembled.layers.len();
            let jobs = assembled
                .layers
                .iter()
                .enumerate()
                .map(|(i, layer)| {
                    BlobJob::layer(
                        format!("layer {}/{count} {}", i + 1, short(layer.diff_id.as_ref())),
                        layer,
                        &ctx.state.compression,
                    )
                })
                .collect::<Vec<_>>();
            let config_size = assembled.config.len() as u64;
            let config_digest = assembled.config_digest.clone();
            let config_upload =
                push_config(ctx, &config_digest, Bytes::from(assembled.config.clone()));
            let kinds: Vec<_> = jobs
                .iter()
                .map(|j| j.transform.output_compression())
                .collect();
            let (layers, config) = tokio::join!(run_jobs(ctx, jobs, tally), config_upload);
            tally.add_config(&config_digest, config_size, &config);
            let layers = layers?;
            config?;
            let descriptors: Vec<_> = layers
                .iter()
                .zip(kinds)
                .map(|(l, kind)| (l.digest.clone(), l.size, kind))
                .collect();
            image_manifest(&config_digest, config_size, &descriptors)?
        }
        ImageContent::Daemon(daemon_image) => push_daemon_image(daemon_image, ctx, tally).await?,
    };
    check_named_digests(references, &root)?;
    for reference in references {
        let target = reference
            .api_reference()
            .unwrap_or_else(|| root.digest().to_string());
        put_manifest(ctx, &root, &target).await?;
    }
    Ok(root.digest().to_string())
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

pub(crate) fn kind_of(media_type: &str) -> &'static str {
    if media_type.contains("config") {
        "config"
    } else {
        "layer"
    }
}

pub(crate) fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}
