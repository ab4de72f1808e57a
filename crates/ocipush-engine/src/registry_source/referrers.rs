//! What refers to a registry image's manifests (`--referrers`): signatures, SBOMs and
//! attestations, found through the referrers API or, where the registry has none, the
//! `sha256-HEX` fallback tag, each read by digest (and checked against it) with what refers to
//! it in turn, a few levels deep.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use ocipush_oci::{Descriptor, Digest, Document, DocumentKind};
use ocipush_registry::{referrers_tag, Repository};
use ocipush_source::{ImageContent, LocalImage, Referrer};

use super::reader::RegistryBlobs;
use super::{fetch_by_digest, fetch_children, OpenOptions, RegistrySourceError};
use crate::plan::short_hex;

/// Referrers of referrers are followed this deep (a signature of an SBOM of an image is 2).
const DEPTH: usize = 4;
/// Requests for referrers in flight at once.
const AT_ONCE: usize = 8;

/// The referrers of `subjects` (manifest digests of one image) in `repository`, each with its
/// own referrers. Their blobs are made known to `blobs`.
pub(super) async fn discover(
    repository: &Repository,
    shown: &str,
    label: &str,
    subjects: Vec<Digest>,
    blobs: &RegistryBlobs,
    options: &OpenOptions,
) -> Result<Vec<Referrer>, RegistrySourceError> {
    let mut seen: HashSet<Digest> = subjects.iter().cloned().collect();
    let found = Found {
        repository,
        shown,
        label,
        blobs,
        foreign: options.foreign_layers,
    };
    discover_level(&found, subjects, &mut seen, DEPTH).await
}

/// What every level of the search shares.
struct Found<'a> {
    repository: &'a Repository,
    shown: &'a str,
    label: &'a str,
    blobs: &'a RegistryBlobs,
    foreign: bool,
}

fn discover_level<'a>(
    found: &'a Found<'a>,
    subjects: Vec<Digest>,
    seen: &'a mut HashSet<Digest>,
    depth: usize,
) -> futures_util::future::BoxFuture<'a, Result<Vec<Referrer>, RegistrySourceError>> {
    let Found {
        repository,
        shown,
        label,
        blobs,
        foreign,
    } = *found;
    Box::pin(async move {
        if depth == 0 || subjects.is_empty() {
            return Ok(Vec::new());
        }
        // Each subject's referrer descriptors, asked for all at once.
        let listed: Vec<(Digest, Vec<Descriptor>)> =
            stream::iter(subjects.into_iter().map(|subject| async move {
                let found = list(repository, &subject).await?;
                Ok::<_, RegistrySourceError>((subject, found))
            }))
            .buffered(AT_ONCE)
            .try_collect()
            .await?;
        let mut wanted: Vec<(Digest, Descriptor)> = Vec::new();
        for (subject, descriptors) in listed {
            for descriptor in descriptors {
                if seen.insert(descriptor.digest().clone()) {
                    wanted.push((subject.clone(), descriptor));
                }
            }
        }
        let fetched: Vec<(Digest, Document, Vec<Document>)> =
            stream::iter(wanted.into_iter().map(|(subject, descriptor)| async move {
                let (root, children) = fetch_tree(repository, shown, &descriptor).await?;
                Ok::<_, RegistrySourceError>((subject, root, children))
            }))
            .buffered(AT_ONCE)
            .try_collect()
            .await?;
        let mut referrers = Vec::with_capacity(fetched.len());
        let next_subjects = fetched
            .iter()
            .map(|(_, root, _)| root.digest().clone())
            .collect();
        // What refers to these referrers, by the one it refers to.
        let mut deeper: HashMap<Digest, Vec<Referrer>> = HashMap::new();
        for referrer in discover_level(found, next_subjects, seen, depth - 1).await? {
            deeper
                .entry(referrer.subject.clone())
                .or_default()
                .push(referrer);
        }
        for (subject, root, children) in fetched {
            let blob_paths =
                super::known_blobs(blobs, std::iter::once(&root).chain(&children), foreign);
            let own = deeper.remove(root.digest()).unwrap_or_default();
            let label = format!("{label} referrer {}", short_hex(root.digest()));
            referrers.push(Referrer {
                subject,
                image: LocalImage {
                    names: Vec::new(),
                    label,
                    content: ImageContent::Stored {
                        root,
                        children,
                        blob_paths,
                    },
                    referrers: own,
                },
            });
        }
        Ok(referrers)
    })
}

/// The referrer descriptors of `subject`: from the API, else from the fallback tag.
async fn list(
    repository: &Repository,
    subject: &Digest,
) -> Result<Vec<Descriptor>, RegistrySourceError> {
    if let Some(found) = repository.get_referrers(subject).await? {
        return Ok(found);
    }
    let Some(pulled) = repository.get_manifest(&referrers_tag(subject)).await? else {
        return Ok(Vec::new());
    };
    match Document::parse(
        pulled.bytes.to_vec(),
        pulled.media_type.as_deref(),
        "referrers",
    ) {
        Ok(doc) if matches!(doc.kind(), DocumentKind::Index(_)) => Ok(doc.children().to_vec()),
        // Something else under that tag is not a referrers list.
        _ => Ok(Vec::new()),
    }
}

/// A referrer's manifest by digest, and an index's manifests.
async fn fetch_tree(
    repository: &Repository,
    shown: &str,
    descriptor: &Descriptor,
) -> Result<(Document, Vec<Document>), RegistrySourceError> {
    let root = fetch_by_digest(repository, shown, descriptor).await?;
    let children = fetch_children(repository, shown, &root).await?;
    Ok((root, children))
}
