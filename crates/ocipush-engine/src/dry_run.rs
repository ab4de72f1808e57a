//! `--dry-run`: what a push would do, found out without writing anything. Every blob whose
//! digest is known (stored blobs, configs, layers the digest cache knows) is asked about with a
//! HEAD in its destination repository — and, when missing there, in the other repositories of
//! the run on the same registry, which a push would mount from. Layers whose compressed digest
//! is not known yet would be compressed and uploaded; a daemon image the registry does not
//! fully hold would be exported.

use std::collections::HashMap;

use futures_util::future::join_all;
use ocipush_oci::Digest;
use ocipush_registry::Repository;
use ocipush_source::ImageContent;
use serde::Serialize;

use crate::error::PushError;
use crate::job::BlobJob;
use crate::producer::Transform;
use crate::push::{connect_all, kind_of, Clients, PlannedImage, PushOptions};
use crate::report::Failure;

/// What would happen to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlannedAction {
    /// The repository has it: skipped.
    Exists,
    /// Another repository of the run on the same registry has it: mounted, no bytes sent.
    Mount,
    /// Sent as it is.
    Upload,
    /// Compressed on the way, then sent (its digest is learnt then).
    CompressAndUpload,
    /// Sent as stored, its digest learnt on the way.
    UploadUnknown,
    /// A daemon image's blob the registry lacks: the daemon exports the image for it.
    Export,
}

/// One blob of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedBlob {
    pub label: String,
    /// Known before pushing, or learnt only while compressing.
    pub digest: Option<String>,
    /// Bytes it has (known digest) or bytes read from the source (to be compressed).
    pub size: u64,
    pub action: PlannedAction,
}

/// What would happen to one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePlan {
    pub source: String,
    pub references: Vec<String>,
    pub blobs: Vec<PlannedBlob>,
    /// Set when the registry could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

impl ImagePlan {
    /// Bytes that would be sent (as far as known: source bytes for layers to compress).
    pub fn bytes_to_send(&self) -> u64 {
        self.blobs
            .iter()
            .filter(|b| !matches!(b.action, PlannedAction::Exists | PlannedAction::Mount))
            .map(|b| b.size)
            .sum()
    }
}

/// Plans every image without writing to any registry.
pub async fn dry_run(plan: &[PlannedImage], options: &PushOptions) -> Vec<ImagePlan> {
    let (clients, _) = connect_all(plan, options).await;
    // Repositories of the run by registry, where a missing blob could be mounted from.
    let mut repositories: HashMap<String, Vec<String>> = HashMap::new();
    for image in plan {
        for reference in &image.references {
            let list = repositories.entry(reference.registry.clone()).or_default();
            if !list.contains(&reference.repository) {
                list.push(reference.repository.clone());
            }
        }
    }
    let mut plans = Vec::with_capacity(plan.len());
    // (registry, digest) -> repositories an earlier image of the run puts it into.
    let mut earlier: HashMap<(String, String), Vec<String>> = HashMap::new();
    for image in plan {
        let mut planned = plan_image(image, options, &clients, &repositories).await;
        if let Some(first) = image.references.first() {
            for blob in &mut planned.blobs {
                let Some(digest) = &blob.digest else { continue };
                let holders = earlier
                    .entry((first.registry.clone(), digest.clone()))
                    .or_default();
                blob.action = after_earlier_images(blob.action, holders, &first.repository);
                if !holders.contains(&first.repository) {
                    holders.push(first.repository.clone());
                }
            }
        }
        plans.push(planned);
    }
    plans
}

/// What a push does with a blob an earlier image of the run puts into `holders`: the push
/// uploads it once per registry, so here it exists (same repository) or is mounted.
fn after_earlier_images(
    action: PlannedAction,
    holders: &[String],
    repository: &String,
) -> PlannedAction {
    match action {
        PlannedAction::Upload if holders.contains(repository) => PlannedAction::Exists,
        PlannedAction::Upload if !holders.is_empty() => PlannedAction::Mount,
        other => other,
    }
}

async fn plan_image(
    image: &PlannedImage,
    options: &PushOptions,
    clients: &Clients,
    repositories: &HashMap<String, Vec<String>>,
) -> ImagePlan {
    let mut result = ImagePlan {
        source: image.image.label.clone(),
        references: image.references.iter().map(|r| r.to_string()).collect(),
        blobs: Vec::new(),
        error: None,
    };
    let Some(first) = image.references.first() else {
        return result;
    };
    let client = match clients.get(&first.registry) {
        Some(Ok(client)) => client.clone(),
        Some(Err(e)) => {
            result.error = Some(failure(e));
            return result;
        }
        None => return result,
    };
    let repository = Repository::new(client.clone(), &first.repository);
    let others: Vec<Repository> = repositories
        .get(&first.registry)
        .into_iter()
        .flatten()
        .filter(|r| **r != first.repository)
        .map(|r| Repository::new(client.clone(), r))
        .collect();
    let candidates = blobs_of(image, options);
    let checks = candidates.into_iter().map(|(label, known, size, unknown)| {
        let repository = &repository;
        let others = &others;
        async move {
            let action = match &known {
                None => unknown,
                Some(digest) => where_is(digest, repository, others, unknown).await?,
            };
            Ok::<_, PushError>(PlannedBlob {
                label,
                digest: known.map(|d| d.to_string()),
                size,
                action,
            })
        }
    });
    for checked in join_all(checks).await {
        match checked {
            Ok(blob) => result.blobs.push(blob),
            Err(e) => {
                result.error = Some(failure(&e));
                break;
            }
        }
    }
    result
}

/// HEAD in the destination, then in the run's other repositories.
async fn where_is(
    digest: &Digest,
    repository: &Repository,
    others: &[Repository],
    missing: PlannedAction,
) -> Result<PlannedAction, PushError> {
    if repository.blob_exists(digest).await?.is_some() {
        return Ok(PlannedAction::Exists);
    }
    for other in others {
        if other.blob_exists(digest).await?.is_some() {
            return Ok(PlannedAction::Mount);
        }
    }
    Ok(match missing {
        PlannedAction::CompressAndUpload | PlannedAction::UploadUnknown => PlannedAction::Upload,
        other => other,
    })
}

/// (label, digest if known now, size, what happens when it is missing) for every blob.
fn blobs_of(
    image: &PlannedImage,
    options: &PushOptions,
) -> Vec<(String, Option<Digest>, u64, PlannedAction)> {
    let settings = options.compression;
    let cached = |diff_id: &Digest| options.cache.get(diff_id, &settings);
    match &image.image.content {
        ImageContent::Stored { root, children, .. } => {
            let mut blobs: Vec<(String, Option<Digest>, u64, PlannedAction)> = Vec::new();
            for doc in std::iter::once(root).chain(children) {
                for blob in doc.blobs() {
                    if blobs.iter().any(|b| b.1.as_ref() == Some(blob.digest())) {
                        continue;
                    }
                    blobs.push((
                        kind_of(blob.media_type().as_ref()).to_string(),
                        Some(blob.digest().clone()),
                        blob.size(),
                        PlannedAction::Upload,
                    ));
                }
            }
            blobs
        }
        ImageContent::Assembled(assembled) => {
            let count = assembled.layers.len();
            let mut blobs: Vec<_> = assembled
                .layers
                .iter()
                .enumerate()
                .map(|(i, layer)| {
                    let label = format!("layer {}/{count}", i + 1);
                    let job = BlobJob::layer(label.clone(), layer, &settings);
                    let unknown = match job.transform {
                        Transform::Gzip { .. } | Transform::Zstd { .. } => {
                            PlannedAction::CompressAndUpload
                        }
                        _ => PlannedAction::UploadUnknown,
                    };
                    match cached(&layer.diff_id) {
                        Some((digest, size)) => (label, Some(digest), size, unknown),
                        None => (label, None, layer.size, unknown),
                    }
                })
                .collect();
            blobs.push((
                "config".into(),
                Some(assembled.config_digest.clone()),
                assembled.config.len() as u64,
                PlannedAction::Upload,
            ));
            blobs
        }
        ImageContent::Daemon(daemon) => {
            let count = daemon.diff_ids.len();
            let mut blobs: Vec<_> = daemon
                .diff_ids
                .iter()
                .enumerate()
                .map(|(i, diff_id)| {
                    let label = format!("layer {}/{count}", i + 1);
                    match cached(diff_id) {
                        Some((digest, size)) => (label, Some(digest), size, PlannedAction::Export),
                        None => (label, None, 0, PlannedAction::Export),
                    }
                })
                .collect();
            if let Some(config) = daemon.config_digest() {
                blobs.push(("config".into(), Some(config), 0, PlannedAction::Export));
            }
            blobs
        }
    }
}

fn failure(error: &PushError) -> Failure {
    Failure {
        message: error.to_string(),
        hint: error.hint(),
        kind: error.kind(),
    }
}
