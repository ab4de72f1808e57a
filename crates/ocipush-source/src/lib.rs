//! Image sources: OCI layout directories, oci-archive tarballs and `docker save` tarballs
//! (plain or gzipped, legacy and Docker 25+ layouts), read in place.
//!
//! A [`Source`] lists the [`LocalImage`]s it holds and hands out re-openable readers for their
//! blobs through a [`BlobReader`], so the engine can stream, verify and retry without this crate
//! ever extracting an archive to disk or holding a layer in memory.
//!
//! A source argument is parsed into a [`SourceSpec`] first, without reading anything but
//! whether its path exists, then opened:
//!
//! ```
//! use std::path::PathBuf;
//! use ocipush_source::{open_path, SourceError, SourceKind, SourceSpec};
//!
//! // `TRANSPORT:PATH[:REF]`, as skopeo spells it.
//! let spec = SourceSpec::parse("oci:build/app:1.0").unwrap();
//! assert_eq!(spec.transport, Some(SourceKind::OciLayout));
//! assert_eq!(spec.path, PathBuf::from("build/app"));
//! assert_eq!(spec.reference.as_deref(), Some("1.0"));
//!
//! // A name that is no path means an image of the local Docker or Podman daemon.
//! let spec = SourceSpec::parse("myapp:dev").unwrap();
//! assert_eq!(spec.transport, Some(SourceKind::Daemon));
//! assert_eq!(spec.reference.as_deref(), Some("myapp:dev"));
//!
//! // Opening looks at what the path holds: a directory without index.json is no OCI layout.
//! let dir = tempfile::tempdir().unwrap();
//! let err = open_path(&format!("oci:{}", dir.path().display())).unwrap_err();
//! assert!(matches!(err, SourceError::NotAnImage { .. }));
//! ```

#![deny(missing_docs)]

pub mod daemon;
pub mod discover;
mod docker_archive;
mod error;
mod name;
mod oci_layout;
mod referrers;
mod spec;
mod store;
mod tar_guard;
mod tar_index;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use ocipush_oci::{Compression, Digest, Document};

pub use daemon::DaemonSettings;
pub use docker_archive::digest_in_name;
pub use error::SourceError;
pub use name::ImageName;
pub use referrers::{artifact_type, subject_of};
pub use spec::{SourceKind, SourceSpec};
pub use store::BlobReader;
pub use tar_index::read_up_to;

/// An opened source: its images and the way to read their blobs.
#[derive(Clone)]
pub struct Source {
    /// The argument it was opened from.
    pub spec: SourceSpec,
    /// The source's own name, its file or directory name without archive extensions
    /// (`build/app.tar.gz` -> `app`): what images the source leaves unnamed are called.
    pub name: String,
    /// What it turned out to be: the transport named, or what was detected.
    pub kind: SourceKind,
    /// Its images, in the order the source lists them.
    pub images: Vec<LocalImage>,
    /// Opens the files its images' blobs live in, by the paths in [`ImageContent`] and
    /// [`LayerFile`]. A daemon source has none: its bytes come from an export.
    pub blobs: Arc<dyn BlobReader>,
    /// For an image in a registry, where it lives there: blobs a destination on the same
    /// registry can mount instead of copying.
    pub origin: Option<RemoteOrigin>,
}

/// The registry repository a `docker://` source reads from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteOrigin {
    /// The registry host, `host[:port]` (`docker.io` for Docker Hub).
    pub registry: String,
    /// The repository path on it, e.g. `library/nginx`.
    pub repository: String,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("spec", &self.spec)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("origin", &self.origin)
            .field("images", &self.images.len())
            .finish()
    }
}

impl LocalImage {
    /// Bytes of its blobs as the source stores them (for a daemon image, what the daemon says).
    pub fn size(&self) -> u64 {
        match &self.content {
            ImageContent::Stored { root, children, .. } => {
                let docs: Vec<&Document> = if children.is_empty() {
                    vec![root]
                } else {
                    children.iter().collect()
                };
                docs.iter().flat_map(|d| d.blobs()).map(|b| b.size()).sum()
            }
            ImageContent::Assembled(a) => {
                a.layers.iter().map(|l| l.size).sum::<u64>() + a.config.len() as u64
            }
            ImageContent::Daemon(d) => d.size,
        }
    }
}

/// One image found in a source.
#[derive(Debug, Clone)]
pub struct LocalImage {
    /// Names and tags the source carries for it (RepoTags, ref.name annotations), most specific first.
    pub names: Vec<ImageName>,
    /// A short label for messages: `oci:build/app:1.0`, `docker-archive:app.tar:myapp:1.0`.
    pub label: String,
    /// What pushing it takes.
    pub content: ImageContent,
    /// Manifests that refer to it or to one of its manifests (`subject`): signatures, SBOMs,
    /// attestations, pushed by digest into the repositories it goes to.
    pub referrers: Vec<Referrer>,
}

/// A manifest whose `subject` is a manifest of an image, with what it needs pushed.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The manifest it refers to.
    pub subject: Digest,
    /// The referring manifest as a stored image (its own referrers included).
    pub image: LocalImage,
}

/// What must be pushed for an image.
#[derive(Debug, Clone)]
pub enum ImageContent {
    /// The source stores manifests (OCI layout, oci-archive): they are pushed byte for byte, so the
    /// pushed digest equals the source's. `children` are the manifests of an index, in index order.
    Stored {
        /// The document the source names: a manifest, or an index.
        root: Document,
        /// For an index, its manifests; empty for a manifest.
        children: Vec<Document>,
        /// Where each blob lives in the source, keyed by digest.
        blob_paths: Vec<(Digest, String)>,
    },
    /// A `docker save` image: config and layers; the manifest is written after the layers are
    /// compressed, since their compressed digests are only known then.
    Assembled(AssembledImage),
    /// An image in a Docker or Podman daemon: exported by the engine only when a blob is missing.
    Daemon(daemon::DaemonImage),
}

/// A docker-archive image, before its manifest exists.
#[derive(Debug, Clone)]
pub struct AssembledImage {
    /// The image config's exact bytes.
    pub config: Vec<u8>,
    /// The sha256 of `config`.
    pub config_digest: Digest,
    /// Its layers, bottom first, in the order of the config's diffIDs.
    pub layers: Vec<LayerFile>,
}

/// One layer file of a docker archive.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// The entry inside the archive.
    pub path: String,
    /// The digest of the uncompressed tar, from the image config.
    pub diff_id: Digest,
    /// How the file is stored, sniffed from its first bytes.
    pub compression: Compression,
    /// Size of the stored file.
    pub size: u64,
}

impl Source {
    /// Opens a file source named on the command line (`oci:DIR:REF`, a path, …); daemon
    /// sources need [`Source::open_any`].
    pub fn open(spec: &SourceSpec) -> Result<Source, SourceError> {
        spec::open(spec)
    }

    /// Opens any source: files on a blocking thread, daemon images over the daemon's API.
    pub async fn open_any(
        spec: &SourceSpec,
        daemon: &DaemonSettings,
    ) -> Result<Source, SourceError> {
        if spec.transport == Some(SourceKind::Registry) {
            return Err(spec::registry_needs_the_engine(spec));
        }
        if spec.transport != Some(SourceKind::Daemon) {
            let spec = spec.clone();
            return tokio::task::spawn_blocking(move || spec::open(&spec))
                .await
                .map_err(|e| SourceError::Unsupported {
                    what: format!("opening the source panicked: {e}"),
                })?;
        }
        let reference = spec.reference.clone().unwrap_or_default();
        let client = daemon::Daemon::connect(daemon).await?;
        let images = client.local_images(&reference).await?;
        // What an image without a name is pushed as: the name it was asked for by, unless
        // that was an ID or `daemon:` (then `image`).
        let name = images
            .first()
            .and_then(|i| i.names.first())
            .map(|n| n.short_name().to_string())
            .unwrap_or_else(|| "image".into());
        Ok(Source {
            spec: spec.clone(),
            name,
            kind: SourceKind::Daemon,
            images,
            blobs: Arc::new(store::NoFiles),
            origin: None,
        })
    }

    /// Opens a blob of this source for reading, from its start.
    pub fn open_blob(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        self.blobs.open(path)
    }
}

/// Convenience: parse and open a file source argument.
pub fn open_path(arg: &str) -> Result<Source, SourceError> {
    Source::open(&SourceSpec::parse(arg)?)
}

/// What a source argument opened to: one source, or for a build directory every image found
/// under it and the ones that were broken.
#[derive(Debug, Default)]
pub struct Opened {
    /// The one source, or every source under the build directory that opened.
    pub sources: Vec<Source>,
    /// Images under the build directory that could not be opened, with why.
    pub broken: Vec<discover::Broken>,
}

/// Parses and opens any source argument: a file, a layout, a daemon image, or a directory to
/// search for images.
pub async fn open_source(arg: &str, daemon: &DaemonSettings) -> Result<Opened, SourceError> {
    let spec = SourceSpec::parse(arg)?;
    if spec.transport.is_none() && spec.path.is_dir() && !discover::is_layout(&spec.path) {
        let root = spec.path.clone();
        let found = tokio::task::spawn_blocking(move || discover::discover(&root))
            .await
            .map_err(|e| SourceError::Unsupported {
                what: format!("searching the directory panicked: {e}"),
            })??;
        if found.sources.is_empty() && found.broken.is_empty() {
            let mut reason =
                "no image under it (looked for OCI layouts, *.tar, *.tar.gz, *.tgz)".to_owned();
            if !found.passed_over.is_empty() {
                let names: Vec<String> = found
                    .passed_over
                    .iter()
                    .take(3)
                    .map(|p| {
                        p.strip_prefix(&spec.path)
                            .unwrap_or(p)
                            .display()
                            .to_string()
                    })
                    .collect();
                let more = found.passed_over.len().saturating_sub(names.len());
                reason.push_str(&format!(
                    "; {} tarball(s) there hold no image: {}{}",
                    found.passed_over.len(),
                    names.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
            return Err(SourceError::NotAnImage {
                path: spec.path,
                reason,
            });
        }
        return Ok(Opened {
            sources: found.sources,
            broken: found.broken,
        });
    }
    Ok(Opened {
        sources: vec![Source::open_any(&spec, daemon).await?],
        broken: Vec::new(),
    })
}

/// The file name of a path without archive extensions: `build/app.tar.gz` -> `app`.
pub(crate) fn stem_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for ext in [".tar.gz", ".tgz", ".tar", ".oci", ".gz"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s;
            break;
        }
    }
    stem.to_string()
}
