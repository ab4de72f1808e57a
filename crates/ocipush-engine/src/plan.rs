//! The plan: every image of the sources, the references it goes to, and every blob it needs —
//! with its typed key, its label, and how it is produced from the source. Computed once, with
//! no I/O beyond the digest cache it is given; the probe and the decisions (`decide`) and then
//! the executor and every view (dry run, progress, summary, `--json`) read it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ocipush_oci::{Compression, Digest};
use ocipush_registry::Reference;
use ocipush_source::daemon::DaemonImage;
use ocipush_source::{ImageContent, LocalImage, Referrer, Source};

use crate::assemble::image_manifest;
use crate::cache::DigestCache;
use crate::compress::{Algorithm, CompressionSettings};
use crate::error::PushError;
use crate::job::BlobJob;
use crate::keys::{BlobKey, RepoKey};
use crate::naming::{destinations_for, Destination};
use crate::producer::Transform;

/// What a blob is to its image, for messages: `config` or `layer 2/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRole {
    /// The image configuration.
    Config,
    /// Layer `index` (from 1) of `count`, by place in its manifest.
    Layer {
        /// Its place, from 1.
        index: usize,
        /// The manifest's number of layers.
        count: usize,
    },
}

impl fmt::Display for BlobRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobRole::Config => f.write_str("config"),
            BlobRole::Layer { index, count } => write!(f, "layer {index}/{count}"),
        }
    }
}

/// A blob's label: its role and, once known, the digest the registry knows it by (never a
/// diffID): `layer 1/2 1d895bc1efba`. Every view prints blobs with this one function.
pub fn blob_label(role: BlobRole, digest: Option<&Digest>) -> String {
    match digest {
        Some(digest) => format!("{role} {}", short_hex(digest)),
        None => role.to_string(),
    }
}

/// The first 12 hex digits of a digest, as docker shows them.
pub fn short_hex(digest: &Digest) -> &str {
    let hex = digest.digest();
    &hex[..hex.len().min(12)]
}

/// One blob an image needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlannedBlob {
    /// What the run knows it by.
    pub key: BlobKey,
    /// Its place in the image.
    pub role: BlobRole,
    /// Its size in the registry when its digest is known; otherwise the bytes read from the
    /// source to produce it.
    pub size: u64,
    /// Bytes read from the source to produce it (what progress counts).
    pub source_bytes: u64,
    /// Compressed on the way by ocipush (a layer stored uncompressed).
    pub compress: Option<Algorithm>,
    pub(crate) production: Production,
}

impl PlannedBlob {
    /// The digest the registry knows it by, when known before it is produced.
    pub fn digest(&self) -> Option<&Digest> {
        self.key.digest()
    }

    /// `layer 1/2 1d895bc1efba`, or `layer 1/2` while its digest is not known.
    pub fn label(&self) -> String {
        blob_label(self.role, self.digest())
    }

    /// How it goes into the registry: as ocipush compresses it, or as stored.
    pub fn output_compression(&self) -> Compression {
        match (&self.compress, &self.production) {
            (Some(algorithm), _) => algorithm.compression(),
            (None, Production::File(job)) => job.transform.output_compression(),
            (None, _) => Compression::None,
        }
    }
}

/// How a blob's bytes come to be.
#[derive(Debug, Clone)]
pub(crate) enum Production {
    /// Read from a file of the source, and transformed on the way.
    File(BlobJob),
    /// Held in memory: a docker archive's config.
    Bytes(Bytes),
    /// Streamed by the daemon's export, pushed by the daemon's own path.
    Export,
}

/// One image and the references it goes to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlannedImage {
    /// Where it comes from.
    pub source: Arc<Source>,
    /// The image.
    pub image: LocalImage,
    /// Every reference it is written to (one repository may take several tags).
    pub references: Vec<Reference>,
    /// Every blob it needs, in manifest order (a docker archive's layers, then its config);
    /// for a stored index, each child's blobs in turn, each blob once.
    pub blobs: Vec<PlannedBlob>,
    /// The digest its manifest will have, when known before anything is read: a stored
    /// manifest's, or one assembled from layer digests the cache knows. A tag that already
    /// points at it needs nothing sent.
    pub manifest: Option<Digest>,
    /// For a referrer (signature, SBOM, attestation), the manifest it refers to: it goes by
    /// digest into the repositories of that manifest's image, and is listed under that
    /// manifest where the registry has no referrers API.
    pub subject: Option<Digest>,
}

impl PlannedImage {
    /// The repositories it goes to, in order, each with its references.
    pub fn repositories(&self) -> Vec<(RepoKey, Vec<&Reference>)> {
        let mut by_repository: Vec<(RepoKey, Vec<&Reference>)> = Vec::new();
        for reference in &self.references {
            let key = RepoKey::of(reference);
            match by_repository.iter_mut().find(|(r, _)| *r == key) {
                Some((_, refs)) => refs.push(reference),
                None => by_repository.push((key, vec![reference])),
            }
        }
        by_repository
    }
}

/// An image left out of the plan because an identical one goes to every one of its references.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RepeatedImage {
    /// Its label.
    pub label: String,
    /// The label of the image that goes there instead.
    pub same_as: String,
    /// The repeat itself, verified before the push so that a damaged copy is reported and an
    /// intact one takes the place of a damaged first.
    pub(crate) copy: PlannedImage,
}

/// What a run will push, and what it leaves out as a repeat.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Plan {
    /// The images to push, in the order the sources gave them.
    pub images: Vec<PlannedImage>,
    /// Copies of planned images, bound for the same references.
    pub repeats: Vec<RepeatedImage>,
}

/// How layers are compressed and what the digest cache remembers: what the plan needs to
/// know each blob's key.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// How layers stored uncompressed are compressed.
    pub compression: CompressionSettings,
    /// Compressed digests remembered between runs.
    pub cache: DigestCache,
}

/// Decides where every image of the sources goes and what each needs.
pub fn plan(
    sources: &[Arc<Source>],
    destination: &Destination,
    extra_tags: &[String],
    settings: &PlanSettings,
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
            let blobs = blobs_of(image, settings)?;
            let references = destinations_for(image, &source.name, destination, extra_tags)?;
            planned.push(PlannedImage {
                source: source.clone(),
                image: image.clone(),
                references: references.clone(),
                manifest: known_manifest(image, &blobs, settings),
                blobs,
                subject: None,
            });
            plan_referrers(
                source,
                &image.referrers,
                &references,
                settings,
                &mut planned,
            )?;
        }
    }
    settle_shared_references(planned)
}

/// Each referrer of an image (and of its referrers), by digest into every repository the
/// image goes to, after it in the plan.
fn plan_referrers(
    source: &Arc<Source>,
    referrers: &[Referrer],
    subject_references: &[Reference],
    settings: &PlanSettings,
    planned: &mut Vec<PlannedImage>,
) -> Result<(), PushError> {
    for referrer in referrers {
        let ImageContent::Stored { root, .. } = &referrer.image.content else {
            continue;
        };
        let mut references: Vec<Reference> = Vec::new();
        for subject in subject_references {
            let by_digest = Reference {
                tag: None,
                digest: Some(root.digest().clone()),
                ..subject.clone()
            };
            if !references.contains(&by_digest) {
                references.push(by_digest);
            }
        }
        let blobs = blobs_of(&referrer.image, settings)?;
        planned.push(PlannedImage {
            source: source.clone(),
            image: referrer.image.clone(),
            references: references.clone(),
            manifest: Some(root.digest().clone()),
            blobs,
            subject: Some(referrer.subject.clone()),
        });
        plan_referrers(
            source,
            &referrer.image.referrers,
            &references,
            settings,
            planned,
        )?;
    }
    Ok(())
}

/// The digest of the manifest the push will write, when it can be known now.
fn known_manifest(
    image: &LocalImage,
    blobs: &[PlannedBlob],
    settings: &PlanSettings,
) -> Option<Digest> {
    let (config, config_size) = match &image.content {
        ImageContent::Stored { root, .. } => return Some(root.digest().clone()),
        ImageContent::Assembled(assembled) => (
            assembled.config_digest.clone(),
            assembled.config.len() as u64,
        ),
        // Its config's size is learnt from the export (or the registry), and remembered in
        // the cache by the image ID from the first push on.
        ImageContent::Daemon(daemon) => {
            let config = daemon.config_digest()?;
            let size = settings.cache.config_size(&config)?;
            (config, size)
        }
    };
    let mut layers = Vec::new();
    for blob in blobs.iter().filter(|b| b.role != BlobRole::Config) {
        layers.push((blob.digest()?.clone(), blob.size, blob.output_compression()));
    }
    image_manifest(&config, config_size, &layers)
        .ok()
        .map(|doc| doc.digest().clone())
}

/// Every blob an image needs, keyed and labelled.
fn blobs_of(image: &LocalImage, settings: &PlanSettings) -> Result<Vec<PlannedBlob>, PushError> {
    match &image.content {
        ImageContent::Stored {
            root,
            children,
            blob_paths,
        } => {
            let paths: HashMap<&Digest, &String> = blob_paths.iter().map(|(d, p)| (d, p)).collect();
            let mut blobs: Vec<PlannedBlob> = Vec::new();
            for doc in std::iter::once(root).chain(children) {
                let descriptors = doc.blobs();
                // A manifest's blobs are its config, then its layers.
                let count = descriptors.len().saturating_sub(1);
                for (place, blob) in descriptors.into_iter().enumerate() {
                    let digest = blob.digest();
                    if blobs.iter().any(|b| b.digest() == Some(digest)) {
                        continue;
                    }
                    // A foreign layer the source does not hold stays where its URLs point.
                    if !paths.contains_key(digest)
                        && ocipush_oci::media_type::is_non_distributable(blob.media_type().as_ref())
                    {
                        continue;
                    }
                    let path = paths.get(digest).ok_or_else(|| {
                        PushError::Internal(format!("no path for {digest} in {}", image.label))
                    })?;
                    let role = match place {
                        0 => BlobRole::Config,
                        index => BlobRole::Layer { index, count },
                    };
                    blobs.push(PlannedBlob {
                        key: BlobKey::Digest(digest.clone()),
                        role,
                        size: blob.size(),
                        source_bytes: blob.size(),
                        compress: None,
                        production: Production::File(BlobJob::verbatim(
                            blob_label(role, Some(digest)),
                            path.to_string(),
                            digest.clone(),
                            blob.size(),
                        )),
                    });
                }
            }
            Ok(blobs)
        }
        ImageContent::Assembled(assembled) => {
            let count = assembled.layers.len();
            let mut blobs: Vec<PlannedBlob> = assembled
                .layers
                .iter()
                .enumerate()
                .map(|(i, layer)| {
                    let role = BlobRole::Layer {
                        index: i + 1,
                        count,
                    };
                    let job = BlobJob::layer(role.to_string(), layer, &settings.compression);
                    layer_blob(role, &layer.diff_id, layer.size, job, settings)
                })
                .collect();
            blobs.push(config_blob(
                &assembled.config_digest,
                assembled.config.len() as u64,
                Production::Bytes(Bytes::from(assembled.config.clone())),
            ));
            Ok(blobs)
        }
        ImageContent::Daemon(daemon) => Ok(daemon_blobs(daemon, settings)),
    }
}

/// A docker archive's or daemon's layer: known by its compressed digest when the cache
/// remembers it, else by what produces it.
fn layer_blob(
    role: BlobRole,
    diff_id: &Digest,
    stored_size: u64,
    job: BlobJob,
    settings: &PlanSettings,
) -> PlannedBlob {
    let compress = match job.transform {
        Transform::Gzip { .. } => Some(Algorithm::Gzip),
        Transform::Zstd { .. } => Some(Algorithm::Zstd),
        _ => None,
    };
    let cached = match compress {
        Some(_) => settings.cache.get(diff_id, &settings.compression),
        None => None,
    };
    let (key, size) = match (cached, compress) {
        (Some((digest, size)), _) => (BlobKey::Digest(digest), size),
        (None, Some(algorithm)) => (
            BlobKey::Compressed {
                diff_id: diff_id.clone(),
                algorithm,
                level: settings.compression.level,
            },
            stored_size,
        ),
        (None, None) => (
            BlobKey::StoredCompressed {
                diff_id: diff_id.clone(),
                compression: job.transform.output_compression(),
                size: stored_size,
            },
            stored_size,
        ),
    };
    let production = match job.path.is_empty() {
        true => Production::Export,
        false => Production::File(job),
    };
    PlannedBlob {
        key,
        role,
        size,
        source_bytes: stored_size,
        compress,
        production,
    }
}

fn config_blob(digest: &Digest, size: u64, production: Production) -> PlannedBlob {
    PlannedBlob {
        key: BlobKey::Digest(digest.clone()),
        role: BlobRole::Config,
        size,
        source_bytes: size,
        compress: None,
        production,
    }
}

/// A daemon image's layers (by diffID, as inspect lists them; the export stores them
/// uncompressed) and its config, all produced by the export.
fn daemon_blobs(daemon: &DaemonImage, settings: &PlanSettings) -> Vec<PlannedBlob> {
    let count = daemon.diff_ids.len();
    let mut blobs: Vec<PlannedBlob> = daemon
        .diff_ids
        .iter()
        .enumerate()
        .map(|(i, diff_id)| {
            let role = BlobRole::Layer {
                index: i + 1,
                count,
            };
            let stored_size = settings.cache.layer_size(diff_id).unwrap_or(0);
            let job = BlobJob::layer_at(
                role.to_string(),
                String::new(),
                Some(diff_id.clone()),
                ocipush_oci::Compression::None,
                stored_size,
                &settings.compression,
            );
            layer_blob(role, diff_id, stored_size, job, settings)
        })
        .collect();
    if let Some(config) = daemon.config_digest() {
        let size = settings.cache.config_size(&config).unwrap_or(0);
        blobs.push(config_blob(&config, size, Production::Export));
    }
    blobs
}

/// Settles references that several images are bound for. Two different images bound for one
/// tag would both be reported pushed while the tag keeps only the last: refused before anything
/// is sent. The same image named twice (one source given twice, two copies of one tarball) is
/// not a conflict: it goes once, and a repeat whose every reference is taken is left out, kept
/// as a copy to verify.
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
        match same_as {
            Some(same_as) if kept.is_empty() => plan.repeats.push(RepeatedImage {
                label: image.image.label.clone(),
                same_as,
                copy: image,
            }),
            _ => {
                image.references = kept;
                plan.images.push(image);
            }
        }
    }
    Ok(plan)
}

/// What makes two local images claim to be the same image: the manifest an OCI source stores,
/// or the config ocipush assembles a manifest around (a daemon's image ID is its config's
/// digest). A claim only: a damaged copy claims the same (see `copies`).
fn identity(image: &LocalImage) -> String {
    match &image.content {
        ImageContent::Stored { root, .. } => format!("manifest {}", root.digest()),
        ImageContent::Assembled(assembled) => format!("config {}", assembled.config_digest),
        ImageContent::Daemon(daemon) => format!("config {}", daemon.id),
    }
}
