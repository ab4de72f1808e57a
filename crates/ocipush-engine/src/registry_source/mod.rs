//! A registry as a source (`docker://HOST/REPO[:TAG|@DIGEST]`): its manifest (and an index's
//! manifests) read once when it is opened, its blobs streamed from the registry when the push
//! needs them. The image becomes a stored image like an OCI layout's, so the plan, the
//! `--platform` subset, the warm path (a tag already at the manifest's digest costs one HEAD)
//! and every view treat it as any other: manifests are copied byte for byte, digests unchanged.
//!
//! Nothing is trusted that was not checked: a manifest asked for by digest must hash to it, one
//! whose registry names its digest must hash to that, and every blob streams through the same
//! verifying reader as a file's.

mod reader;
mod referrers;

use std::sync::Arc;

use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use ocipush_oci::{media_type, Digest, Document, DocumentError, DocumentKind};
use ocipush_registry::{Reference, RegistryClient, RegistryError, Repository};
use ocipush_source::{
    ImageContent, ImageName, LocalImage, RemoteOrigin, Source, SourceKind, SourceSpec,
};

pub use reader::RegistryBlobs;

/// Manifests of an index fetched at once.
const CHILD_FETCHES: usize = 8;

/// Why a registry source could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrySourceError {
    /// The registry has no such manifest.
    #[error("docker://{reference}: no such image (the registry has no manifest {wanted})")]
    NotFound {
        /// The reference as opened.
        reference: String,
        /// The tag or digest asked for.
        wanted: String,
    },
    /// A manifest's bytes are not what was asked for or announced.
    #[error("docker://{reference}: the manifest {what} hashes to {actual}")]
    WrongDigest {
        /// The reference as opened.
        reference: String,
        /// Which digest it should have had, and who said so.
        what: String,
        /// What its bytes hash to.
        actual: Digest,
    },
    /// A manifest could not be understood.
    #[error("docker://{reference}: {source}")]
    Document {
        /// The reference as opened.
        reference: String,
        /// Why it could not be parsed.
        #[source]
        source: DocumentError,
    },
    /// An index inside an index: not copied.
    #[error("docker://{reference}: an index names another index ({digest}); nested indexes are not copied")]
    NestedIndex {
        /// The reference as opened.
        reference: String,
        /// The inner index.
        digest: Digest,
    },
    /// The registry failed or refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl RegistrySourceError {
    /// The registry error underneath, when there is one.
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            RegistrySourceError::Registry(e) => Some(e),
            _ => None,
        }
    }
}

/// How to open a registry source.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Read each single-platform image's config when opening (one GET each), for `--platform`
    /// and `list` to learn its platform; a plain copy does without.
    pub read_configs: bool,
    /// Find what refers to the image's manifests (`--referrers`): through the referrers API,
    /// else the `sha256-HEX` fallback tag.
    pub referrers: bool,
    /// Copy foreign (non-distributable) layers too, where the source registry serves them
    /// (`--foreign-layers`); by default they stay where their URLs point.
    pub foreign_layers: bool,
}

impl OpenOptions {
    /// Reads configs as well ([`OpenOptions::read_configs`]).
    pub fn with_configs(mut self, read: bool) -> Self {
        self.read_configs = read;
        self
    }

    /// Copies foreign layers as well ([`OpenOptions::foreign_layers`]).
    pub fn with_foreign_layers(mut self, copy: bool) -> Self {
        self.foreign_layers = copy;
        self
    }

    /// Finds referrers as well ([`OpenOptions::referrers`]).
    pub fn with_referrers(mut self, find: bool) -> Self {
        self.referrers = find;
        self
    }
}

/// Opens the image `reference` names on the registry `client` is connected to.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use ocipush_engine::registry_source::{open, OpenOptions};
/// use ocipush_registry::{ClientOptions, Reference, RegistryClient};
///
/// let reference = Reference::parse("ghcr.io/org/app:1.2")?;
/// let client = RegistryClient::connect(&reference.registry, &ClientOptions::default()).await?;
/// let source = open(client, &reference, &OpenOptions::default()).await?;
/// assert_eq!(source.images.len(), 1);
/// # Ok(()) }
/// ```
pub async fn open(
    client: Arc<RegistryClient>,
    reference: &Reference,
    options: &OpenOptions,
) -> Result<Source, RegistrySourceError> {
    let repository = Repository::for_pull(client, &reference.repository);
    let wanted = reference
        .api_reference()
        .unwrap_or_else(|| crate::DEFAULT_TAG.to_string());
    let shown = reference.to_string();
    let root = fetch_document(
        &repository,
        &shown,
        &wanted,
        reference.digest.as_ref(),
        None,
    )
    .await?
    .ok_or_else(|| RegistrySourceError::NotFound {
        reference: shown.clone(),
        wanted: wanted.clone(),
    })?;
    let children = fetch_children(&repository, &shown, &root).await?;

    let blobs = RegistryBlobs::new(repository.clone());
    let blob_paths = known_blobs(
        &blobs,
        std::iter::once(&root).chain(&children),
        options.foreign_layers,
    );
    if options.read_configs {
        if let DocumentKind::Manifest(manifest) = root.kind() {
            blobs.prefetch(manifest.config()).await?;
        }
    }
    let label = format!("docker://{shown}");
    let referrers = if options.referrers {
        let subjects = std::iter::once(&root)
            .chain(&children)
            .map(|doc| doc.digest().clone())
            .collect();
        referrers::discover(&repository, &shown, &label, subjects, &blobs, options).await?
    } else {
        Vec::new()
    };

    let name = ImageName {
        repository: format!("{}/{}", reference.registry, reference.repository),
        tag: reference.tag.clone(),
    };
    let image = LocalImage {
        names: vec![name.clone()],
        label,
        content: ImageContent::Stored {
            root,
            children,
            blob_paths,
        },
        referrers,
    };
    Ok(Source {
        spec: SourceSpec {
            original: format!("docker://{shown}"),
            transport: Some(SourceKind::Registry),
            path: Default::default(),
            reference: Some(shown.clone()),
        },
        name: name.short_name().to_string(),
        kind: SourceKind::Registry,
        images: vec![image],
        blobs: Arc::new(blobs),
        origin: Some(RemoteOrigin {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
        }),
    })
}

/// The blobs `documents` name, as `(digest, path)` for the plan, made known to `blobs`. A
/// foreign layer lives where its `urls` say, not in the registry: left out unless `foreign`,
/// as registries take manifests naming it without having it.
fn known_blobs<'a>(
    blobs: &RegistryBlobs,
    documents: impl Iterator<Item = &'a Document>,
    foreign: bool,
) -> Vec<(Digest, String)> {
    let mut paths: Vec<(Digest, String)> = Vec::new();
    for doc in documents {
        for blob in doc.blobs() {
            if !foreign && media_type::is_non_distributable(blob.media_type().as_ref()) {
                continue;
            }
            if !paths.iter().any(|(d, _)| d == blob.digest()) {
                blobs.know(blob.digest(), blob.size());
                paths.push((blob.digest().clone(), blob.digest().to_string()));
            }
        }
    }
    paths
}

/// The manifests an index names, fetched a few at once, in index order; none may be an index
/// itself. Empty for a manifest.
async fn fetch_children(
    repository: &Repository,
    shown: &str,
    root: &Document,
) -> Result<Vec<Document>, RegistrySourceError> {
    // Owned descriptors: a future that borrows the stream's items cannot be boxed as `Send`
    // where referrers are searched.
    stream::iter(
        root.children()
            .to_vec()
            .into_iter()
            .map(|child| async move {
                let doc = fetch_by_digest(repository, shown, &child).await?;
                if matches!(doc.kind(), DocumentKind::Index(_)) {
                    return Err(RegistrySourceError::NestedIndex {
                        reference: shown.to_string(),
                        digest: child.digest().clone(),
                    });
                }
                Ok(doc)
            }),
    )
    .buffered(CHILD_FETCHES)
    .try_collect()
    .await
}

/// GETs the manifest a descriptor names, by its digest; its absence is an error.
async fn fetch_by_digest(
    repository: &Repository,
    shown: &str,
    descriptor: &ocipush_oci::Descriptor,
) -> Result<Document, RegistrySourceError> {
    let digest = descriptor.digest();
    fetch_document(
        repository,
        shown,
        digest.as_ref(),
        Some(digest),
        Some(descriptor.media_type().as_ref()),
    )
    .await?
    .ok_or_else(|| RegistrySourceError::NotFound {
        reference: shown.to_string(),
        wanted: digest.to_string(),
    })
}

/// GETs one manifest and checks it: by `expected` digest when it was asked for by one, else
/// by the digest the registry says it has.
async fn fetch_document(
    repository: &Repository,
    shown: &str,
    wanted: &str,
    expected: Option<&Digest>,
    declared: Option<&str>,
) -> Result<Option<Document>, RegistrySourceError> {
    let Some(pulled) = repository.get_manifest(wanted).await? else {
        return Ok(None);
    };
    let actual = ocipush_oci::sha256_of(&pulled.bytes);
    let promised = match expected {
        Some(expected) => Some((expected.to_string(), "asked for")),
        None => pulled
            .digest_header
            .clone()
            .filter(|d| d.starts_with("sha256:"))
            .map(|d| (d, "the registry announced")),
    };
    if let Some((promised, who)) = promised {
        if promised != actual.as_ref() {
            return Err(RegistrySourceError::WrongDigest {
                reference: shown.to_string(),
                what: format!("{promised} ({who})"),
                actual,
            });
        }
    }
    let declared = pulled.media_type.as_deref().or(declared);
    Document::parse(pulled.bytes.to_vec(), declared, wanted)
        .map(Some)
        .map_err(|source| RegistrySourceError::Document {
            reference: shown.to_string(),
            source,
        })
}
