//! Pushing an image straight from a Docker or Podman daemon.
//!
//! Warm first: the image's diffIDs (from inspect) and the digest cache give the compressed
//! digest of every layer; if the repository holds them all and the config, the manifest is
//! written without exporting anything. Otherwise the daemon exports the image (`docker save`
//! as a stream), read once front to back: each layer is compressed and uploaded while it
//! streams by, layers the repository is known to hold are skipped unread, and the manifest is
//! assembled from manifest.json and the config, which docker writes after the layers. A layer
//! lost to a transient failure is fetched again by another export, up to `--retries` times.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use bytes::Bytes;
use ocipush_oci::{Compression, Digest, Document, Sha256Writer};
use ocipush_registry::retry_count::{in_current_count, note_retry};
use ocipush_source::daemon::{walk_export, DaemonImage, ExportIndex, LargeEntry};
use ocipush_source::{digest_in_name, SourceError};
use tokio::sync::mpsc;

mod handoff;

use handoff::{pump, ChunkReader, OneShot};

use crate::assemble::image_manifest;
use crate::blob::{push_blob, push_config, run_jobs};
use crate::context::BlobContext;
use crate::error::PushError;
use crate::job::{BlobJob, PushedBlob};
use crate::plan::{BlobRole, PlannedBlob};
use crate::producer::CHANNEL_DEPTH;
use crate::reporter::BlobOutcome;
use crate::tally::Tally;

/// A blob the repository holds, found for a layer's diffID.
#[derive(Debug, Clone)]
struct Held {
    digest: Digest,
    size: u64,
    compression: Compression,
}

/// Pushes a daemon image's blobs into the context's repository and returns its manifest.
/// `blobs` are the plan's entries for the image and `found` what the ops gave for those the
/// plan decided present (existing or mountable): with all of them and the config, nothing is
/// exported.
pub(crate) async fn push_daemon_image(
    image: &DaemonImage,
    ctx: &BlobContext,
    tally: &mut Tally,
    blobs: &[PlannedBlob],
    found: &[Option<PushedBlob>],
) -> Result<Document, Arc<PushError>> {
    let output = ctx.state.compression.algorithm.compression();
    let mut held = HashMap::new();
    let mut config = None;
    for (blob, pushed) in blobs.iter().zip(found) {
        let Some(pushed) = pushed else { continue };
        match blob.role {
            BlobRole::Config => config = Some(pushed),
            BlobRole::Layer { index, .. } => {
                if let Some(diff_id) = image.diff_ids.get(index - 1) {
                    hold(&mut held, diff_id.clone(), pushed, output);
                }
            }
        }
    }
    let config_found = config.is_some();
    if let Some(config) = config {
        if image.diff_ids.iter().all(|d| held.contains_key(d)) {
            ctx.state.cache.put_config_size(&config.digest, config.size);
            return manifest(&config.digest, config.size, &image.diff_ids, &held);
        }
    }
    let mut pass = 0u32;
    let mut force = HashSet::new();
    loop {
        let outcome = export_pass(image, ctx, &held, &force, pass).await;
        let mut transient = None;
        let mut fatal = None;
        for streamed in outcome.streamed {
            match &streamed.result {
                Ok(pushed) => {
                    tally.add(pushed);
                    remember(ctx, &streamed, pushed, &mut held);
                }
                Err(e) if is_transient(e) => {
                    transient.get_or_insert(e.clone());
                }
                Err(e) => {
                    fatal.get_or_insert(e.clone());
                }
            }
        }
        // Stopped: whatever the pass ran into, the story is the interruption.
        if ctx.state.cancel.is_cancelled() {
            return Err(Arc::new(PushError::Interrupted));
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        let index = match outcome.index {
            Ok(index) => index,
            Err(e) if matches!(e, SourceError::Daemon { .. }) => {
                transient.get_or_insert(Arc::new(PushError::Source(e)));
                ExportIndex::default()
            }
            Err(e) => return Err(Arc::new(PushError::Source(e))),
        };
        if transient.is_none() && outcome.lost.is_empty() {
            return finish(image, ctx, Arc::new(index), &mut held, tally, config_found).await;
        }
        // A layer skipped on a wrong guess is pushed by the next export; that costs no retry,
        // and cannot repeat (it is never guessed again).
        force.extend(outcome.lost);
        if let Some(error) = transient {
            if pass >= ctx.retries {
                return Err(error);
            }
            pass += 1;
            note_retry();
        }
        tracing::info!(image = %image.reference, pass, "exporting again for the layers still missing");
        ctx.state.forget_failures();
    }
}

/// A layer that streamed by in an export, and what pushing it gave.
struct Streamed {
    /// Its size as stored in the export.
    size: u64,
    /// The diffID its name promised (`blobs/sha256/<diffID>`, podman's `<diffID>.tar`).
    named: Option<Digest>,
    /// How the daemon stored it, and how it was pushed.
    stored: Compression,
    pushed_as: Compression,
    result: Result<PushedBlob, Arc<PushError>>,
}

struct PassOutcome {
    /// What the export held; an error if the stream broke.
    index: Result<ExportIndex, SourceError>,
    streamed: Vec<Streamed>,
    /// Entries skipped as a held layer of the same size that hashed to something else.
    lost: Vec<String>,
}

/// A large entry announced by the walking thread, with the reader its bytes arrive on.
struct Arrival {
    path: String,
    size: u64,
    head: [u8; 4],
    named: Option<Digest>,
    reader: ChunkReader,
}

/// One export of the image, every layer not yet held pushed as it streams by.
///
/// Entries named by diffID are skipped when held. A legacy save names layers by v1 IDs, so an
/// unnamed entry as big as exactly one held layer is taken for it — and hashed as it streams
/// past: if the guess was wrong, the entry is reported lost and pushed by the next export
/// (`force`).
async fn export_pass(
    image: &DaemonImage,
    ctx: &BlobContext,
    held: &HashMap<Digest, Held>,
    force: &HashSet<String>,
    pass: u32,
) -> PassOutcome {
    // The daemon may take a while before its first byte (docker before 25 writes the image to
    // a temporary directory first): a Ctrl-C must not wait for it.
    let started = tokio::select! {
        started = image.export() => started,
        _ = ctx.state.cancel.cancelled() => Err(SourceError::Interrupted),
    };
    let reader = match started {
        Ok(reader) => reader,
        Err(e) => {
            return PassOutcome {
                index: Err(e),
                streamed: Vec::new(),
                lost: Vec::new(),
            }
        }
    };
    let mut by_size: HashMap<u64, Vec<Digest>> = HashMap::new();
    for diff_id in held.keys() {
        if let Some(size) = ctx.state.cache.layer_size(diff_id) {
            by_size.entry(size).or_default().push(diff_id.clone());
        }
    }
    let force = force.clone();
    let what = format!("daemon:{}", image.reference);
    let diff_ids: HashSet<Digest> = image.diff_ids.iter().cloned().collect();
    let skip: HashSet<Digest> = held.keys().cloned().collect();
    let cancel = ctx.state.cancel.clone();
    let (arrivals_tx, mut arrivals) = mpsc::channel::<Arrival>(1);
    let walker = tokio::task::spawn_blocking(move || {
        let mut lost = Vec::new();
        let index = walk_export(reader, &what, |entry: LargeEntry<'_>| {
            if cancel.is_cancelled() {
                return Err(SourceError::Interrupted);
            }
            let named = digest_in_name(&entry.path).filter(|d| diff_ids.contains(d));
            if named.as_ref().is_some_and(|d| skip.contains(d)) {
                return Ok(());
            }
            if named.is_none() && !force.contains(&entry.path) {
                if let Some([guess]) = by_size.get(&entry.size).map(Vec::as_slice) {
                    let actual = hash_all(entry.reader).map_err(|e| SourceError::Daemon {
                        detail: format!("{what}: reading the export stream: {e}"),
                    })?;
                    if &actual != guess && !skip.contains(&actual) {
                        lost.push(entry.path.clone());
                    }
                    return Ok(());
                }
            }
            let (chunks, receiver) = sync_channel(CHANNEL_DEPTH);
            let arrival = Arrival {
                path: entry.path.clone(),
                size: entry.size,
                head: entry.head,
                named,
                reader: ChunkReader::new(receiver),
            };
            if arrivals_tx.blocking_send(arrival).is_ok() {
                pump(entry.reader, &chunks);
            }
            // Stopped: hang up now rather than read the rest of a big layer.
            if cancel.is_cancelled() {
                return Err(SourceError::Interrupted);
            }
            Ok(())
        });
        (index, lost)
    });
    let mut tasks = Vec::new();
    while let Some(arrival) = arrivals.recv().await {
        let stored = Compression::sniff(&arrival.head);
        // Named by its place in the image, as every other source's layers; the digest the
        // registry knows it by is added once the push learns it.
        let label = match arrival
            .named
            .as_ref()
            .and_then(|d| image.diff_ids.iter().position(|x| x == d))
        {
            Some(place) => BlobRole::Layer {
                index: place + 1,
                count: image.diff_ids.len(),
            }
            .to_string(),
            None => format!("layer {}", short_path(&arrival.path)),
        };
        // The path names this one reading of the entry: a layer whose diffID is not yet known
        // is keyed by it, and a later export must not find this attempt's outcome.
        let job = BlobJob::layer_at(
            label,
            format!("{}#{pass}/{}", image.id, arrival.path),
            arrival.named.clone(),
            stored,
            arrival.size,
            &ctx.state.compression,
        );
        let pushed_as = job.transform.output_compression();
        let stream_ctx = BlobContext {
            blobs: Arc::new(OneShot::new(arrival.reader)),
            ..ctx.clone()
        };
        let id = ctx.state.next_blob_id();
        let budget = ctx.state.budget.clone();
        let task = tokio::spawn(in_current_count(async move {
            let _permit = budget
                .acquire_owned()
                .await
                .expect("the budget is never closed");
            push_blob(&stream_ctx, &job, id).await
        }));
        tasks.push((arrival.named, arrival.size, stored, pushed_as, task));
    }
    let (index, lost) = walker.await.unwrap_or_else(|e| {
        let error = SourceError::Daemon {
            detail: format!("reading the export panicked: {e}"),
        };
        (Err(error), Vec::new())
    });
    let mut streamed = Vec::with_capacity(tasks.len());
    for (named, size, stored, pushed_as, task) in tasks {
        let result = task
            .await
            .unwrap_or_else(|e| {
                Err(Arc::new(PushError::Internal(format!(
                    "blob task failed: {e}"
                ))))
            })
            .map_err(stream_broke);
        streamed.push(Streamed {
            size,
            named,
            stored,
            pushed_as,
            result,
        });
    }
    PassOutcome {
        index,
        streamed,
        lost,
    }
}

/// Records a streamed layer under the diffID it was verified or learnt to have.
fn remember(
    ctx: &BlobContext,
    streamed: &Streamed,
    pushed: &PushedBlob,
    held: &mut HashMap<Digest, Held>,
) {
    let Some(diff_id) = pushed.diff_id.clone().or_else(|| streamed.named.clone()) else {
        return;
    };
    // Layers named by diffID were cached by the blob push; learnt ones are cached here.
    if streamed.named.is_none() && streamed.stored == Compression::None {
        ctx.state
            .remember_layer(&diff_id, &pushed.digest, pushed.size, streamed.size);
    }
    held.insert(
        diff_id,
        Held {
            digest: pushed.digest.clone(),
            size: pushed.size,
            compression: streamed.pushed_as,
        },
    );
}

/// After a complete export: small layers (kept whole) and the config are pushed, and the
/// manifest is assembled in the order the export's manifest.json gives.
async fn finish(
    image: &DaemonImage,
    ctx: &BlobContext,
    index: Arc<ExportIndex>,
    held: &mut HashMap<Digest, Held>,
    tally: &mut Tally,
    config_found: bool,
) -> Result<Document, Arc<PushError>> {
    let what = format!("daemon:{}", image.reference);
    let assembled = index
        .image(&what)
        .map_err(|e| Arc::new(PushError::Source(e)))?;
    let settings = ctx.state.compression;
    let mut jobs = Vec::new();
    let mut job_diff_ids = Vec::new();
    let count = assembled.layers.len();
    for (place, layer) in assembled.layers.iter().enumerate() {
        if held.contains_key(&layer.diff_id) || job_diff_ids.contains(&layer.diff_id) {
            continue;
        }
        if index.is_large(&layer.path) {
            return Err(Arc::new(PushError::Source(SourceError::Daemon {
                detail: format!(
                    "{what}: the export's `{}` is not layer {} its config names",
                    layer.path, layer.diff_id
                ),
            })));
        }
        let role = BlobRole::Layer {
            index: place + 1,
            count,
        };
        jobs.push(BlobJob::layer(role.to_string(), layer, &settings));
        job_diff_ids.push(layer.diff_id.clone());
    }
    let small_ctx = BlobContext {
        blobs: index.clone(),
        ..ctx.clone()
    };
    let kinds: Vec<_> = jobs
        .iter()
        .map(|j| j.transform.output_compression())
        .collect();
    let config_bytes = Bytes::from(assembled.config.clone());
    // A config the plan found present was counted by its op.
    let config_upload = async {
        match config_found {
            true => Ok(BlobOutcome::Existing),
            false => push_config(ctx, &assembled.config_digest, config_bytes).await,
        }
    };
    let (pushed, config) = tokio::join!(run_jobs(&small_ctx, jobs, tally), config_upload);
    let config_size = assembled.config.len() as u64;
    if !config_found {
        tally.add_config(&assembled.config_digest, config_size, &config);
    }
    let pushed = pushed?;
    config?;
    for ((pushed, diff_id), compression) in pushed.into_iter().zip(job_diff_ids).zip(kinds) {
        hold(held, diff_id, &pushed, compression);
    }
    let diff_ids: Vec<Digest> = assembled.layers.iter().map(|l| l.diff_id.clone()).collect();
    ctx.state
        .cache
        .put_config_size(&assembled.config_digest, config_size);
    manifest(&assembled.config_digest, config_size, &diff_ids, held)
}

/// Records a blob as the repository's for its layer.
fn hold(
    held: &mut HashMap<Digest, Held>,
    diff_id: Digest,
    pushed: &PushedBlob,
    compression: Compression,
) {
    held.insert(
        diff_id,
        Held {
            digest: pushed.digest.clone(),
            size: pushed.size,
            compression,
        },
    );
}

fn manifest(
    config: &Digest,
    config_size: u64,
    diff_ids: &[Digest],
    held: &HashMap<Digest, Held>,
) -> Result<Document, Arc<PushError>> {
    let mut layers = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let held = held.get(diff_id).ok_or_else(|| {
            Arc::new(PushError::Internal(format!(
                "layer {diff_id} was not pushed"
            )))
        })?;
        layers.push((held.digest.clone(), held.size, held.compression));
    }
    image_manifest(config, config_size, &layers).map_err(Arc::new)
}

/// A layer that could not be read came from a broken export stream, not a damaged file.
fn stream_broke(error: Arc<PushError>) -> Arc<PushError> {
    match &*error {
        PushError::Read { blob, source } => Arc::new(PushError::Source(SourceError::Daemon {
            detail: format!("the daemon's export stream broke while reading {blob}: {source}"),
        })),
        _ => error,
    }
}

/// Failures another export may cure: the registry's transient ones, and a layer lost because
/// its stream could not be read again for a retry.
fn is_transient(error: &PushError) -> bool {
    match error {
        PushError::Registry(e) => e.is_transient(),
        PushError::Source(SourceError::Reread { .. } | SourceError::Daemon { .. }) => true,
        _ => false,
    }
}

fn short_path(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    first[..first.len().min(12)].to_string()
}

/// The sha256 of everything `reader` yields.
fn hash_all(reader: &mut dyn Read) -> io::Result<Digest> {
    let mut hasher = Sha256Writer::new();
    io::copy(reader, &mut hasher)?;
    Ok(hasher.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ids_are_read_from_docker25_and_podman_names_only() {
        let hex = "a".repeat(64);
        assert!(digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_name(&format!("{hex}.tar")).is_some());
        // Legacy names carry v1 IDs in the directory, which is not looked at.
        assert!(digest_in_name("abc/layer.tar").is_none());
        assert!(digest_in_name(&format!("blobs/sha256/{}", "A".repeat(64))).is_none());
    }
}
