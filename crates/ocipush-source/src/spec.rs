//! Source arguments as users type them — a path, or `TRANSPORT:PATH[:REF]` in skopeo's style —
//! parsed into a [`SourceSpec`], and opened by detecting what the path holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::docker_archive::read_docker_archive;
use crate::error::SourceError;
use crate::oci_layout::read_layout;
use crate::store::{ArchiveStore, BlobReader, DirStore};
use crate::tar_index::TarIndex;
use crate::{stem_of, Source};

/// What a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An OCI image layout directory (`oci:`).
    OciLayout,
    /// An OCI image layout in a tarball (`oci-archive:`).
    OciArchive,
    /// A `docker save` tarball, plain or gzipped (`docker-archive:`).
    DockerArchive,
    /// An image of a local Docker or Podman daemon (`daemon:`).
    Daemon,
    /// An image in a registry (`docker://HOST/REPO[:TAG|@DIGEST]`, skopeo's transport name):
    /// opened over the network by the engine, not by this crate.
    Registry,
}

impl SourceKind {
    /// The transport that names this kind, without its colon: `oci`, `oci-archive`,
    /// `docker-archive`, `daemon`. Also the first part of image labels.
    pub fn transport(self) -> &'static str {
        match self {
            SourceKind::OciLayout => "oci",
            SourceKind::OciArchive => "oci-archive",
            SourceKind::DockerArchive => "docker-archive",
            SourceKind::Daemon => "daemon",
            SourceKind::Registry => "docker",
        }
    }
}

/// A parsed source argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The argument as given.
    pub original: String,
    /// The transport the user named, if any; otherwise detected on open.
    pub transport: Option<SourceKind>,
    /// The file or directory; empty for a daemon image.
    pub path: PathBuf,
    /// Which image inside the source (`:REF`), if the user said.
    pub reference: Option<String>,
}

const TRANSPORTS: [(&str, SourceKind); 5] = [
    ("oci-archive:", SourceKind::OciArchive),
    ("oci:", SourceKind::OciLayout),
    ("docker-archive:", SourceKind::DockerArchive),
    ("docker-daemon:", SourceKind::Daemon),
    ("daemon:", SourceKind::Daemon),
];

impl SourceSpec {
    /// Parses a source argument; reads nothing, but checks which paths exist. A transport
    /// prefix decides the kind; without one, a path that exists (whole, or before a `:REF`) or
    /// looks like one (`./`, `/`, `~`, a `.tar`, `.tar.gz` or `.tgz` name) is left for
    /// [`Source::open`] to detect, and anything else names a daemon image, as `docker push NAME`
    /// does. `daemon:` alone means every tagged image of the daemon. Fails only on a blank
    /// argument or a file transport with nothing after it.
    pub fn parse(arg: &str) -> Result<SourceSpec, SourceError> {
        let invalid = |reason: &str| SourceError::InvalidSpec {
            arg: arg.to_string(),
            reason: reason.to_string(),
        };
        if arg.trim().is_empty() {
            return Err(invalid("empty"));
        }
        if let Some(rest) = arg.strip_prefix("docker://") {
            if rest.is_empty() {
                return Err(invalid("nothing after docker://"));
            }
            return Ok(SourceSpec {
                original: arg.to_string(),
                transport: Some(SourceKind::Registry),
                path: PathBuf::new(),
                reference: Some(rest.to_string()),
            });
        }
        for (prefix, kind) in TRANSPORTS {
            if let Some(rest) = arg.strip_prefix(prefix) {
                // `daemon:` alone means every tagged image of the daemon.
                if kind == SourceKind::Daemon {
                    return Ok(SourceSpec {
                        original: arg.to_string(),
                        transport: Some(kind),
                        path: PathBuf::new(),
                        reference: Some(rest.to_string()),
                    });
                }
                if rest.is_empty() {
                    return Err(invalid("nothing after the transport"));
                }
                let (path, reference) = split_path_ref(rest);
                return Ok(SourceSpec {
                    original: arg.to_string(),
                    transport: Some(kind),
                    path,
                    reference,
                });
            }
        }
        if Path::new(arg).exists() {
            return Ok(SourceSpec {
                original: arg.to_string(),
                transport: None,
                path: PathBuf::from(arg),
                reference: None,
            });
        }
        // `build/app.tar:myapp:1.0`: a path that exists, then a ref.
        for (i, _) in arg.match_indices(':') {
            if Path::new(&arg[..i]).exists() {
                return Ok(SourceSpec {
                    original: arg.to_string(),
                    transport: None,
                    path: PathBuf::from(&arg[..i]),
                    reference: Some(arg[i + 1..].to_string()).filter(|r| !r.is_empty()),
                });
            }
        }
        if looks_like_path(arg) {
            return Ok(SourceSpec {
                original: arg.to_string(),
                transport: None,
                path: PathBuf::from(arg),
                reference: None,
            });
        }
        // Not a path: an image name in a local daemon, as `docker push NAME` means.
        Ok(SourceSpec {
            original: arg.to_string(),
            transport: Some(SourceKind::Daemon),
            path: PathBuf::new(),
            reference: Some(arg.to_string()),
        })
    }
}

/// `PATH[:REF]`: the whole string when it exists; else the first colon whose left side exists
/// (a REF such as `org/app:1.0` has colons of its own); else the last colon.
fn split_path_ref(rest: &str) -> (PathBuf, Option<String>) {
    if Path::new(rest).exists() {
        return (PathBuf::from(rest), None);
    }
    for (i, _) in rest.match_indices(':') {
        if i > 0 && Path::new(&rest[..i]).exists() {
            return (
                PathBuf::from(&rest[..i]),
                Some(rest[i + 1..].to_string()).filter(|r| !r.is_empty()),
            );
        }
    }
    match rest.rsplit_once(':') {
        Some((path, reference)) if !path.is_empty() && !reference.contains('/') => (
            PathBuf::from(path),
            Some(reference.to_string()).filter(|r| !r.is_empty()),
        ),
        _ => (PathBuf::from(rest), None),
    }
}

fn looks_like_path(arg: &str) -> bool {
    arg.starts_with('/')
        || arg.starts_with("./")
        || arg.starts_with("../")
        || arg.starts_with('~')
        || [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|ext| arg.ends_with(ext))
}

pub(crate) fn open(spec: &SourceSpec) -> Result<Source, SourceError> {
    match spec.transport {
        Some(SourceKind::Daemon) => {
            return Err(SourceError::Unsupported {
                what: format!("`{}` names a daemon image: opening it", spec.original),
            })
        }
        Some(SourceKind::Registry) => return Err(registry_needs_the_engine(spec)),
        _ => {}
    }
    let path = &spec.path;
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SourceError::NotFound { path: path.clone() },
        _ => SourceError::io(path, e),
    })?;
    let name = stem_of(&std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
    let reference = spec.reference.as_deref();
    if meta.is_dir() {
        if matches!(
            spec.transport,
            Some(SourceKind::OciArchive | SourceKind::DockerArchive)
        ) {
            return Err(SourceError::NotAnImage {
                path: path.clone(),
                reason: "is a directory, not an archive".into(),
            });
        }
        let store = DirStore::new(path);
        if !store.exists("index.json") {
            return Err(SourceError::NotAnImage {
                path: path.clone(),
                reason: "directory has no index.json (not an OCI layout)".into(),
            });
        }
        let label = format!("oci:{}", path.display());
        let images = read_layout(&store, path, reference, &name, &label)?;
        return Ok(Source {
            spec: spec.clone(),
            name,
            kind: SourceKind::OciLayout,
            images,
            blobs: Arc::new(store),
            origin: None,
        });
    }
    if spec.transport == Some(SourceKind::OciLayout) {
        return Err(SourceError::NotAnImage {
            path: path.clone(),
            reason: "oci: needs a layout directory; use oci-archive: for a tarball".into(),
        });
    }
    let index = TarIndex::build(path)?;
    let store = ArchiveStore::new(index);
    let has_docker_manifest = store.exists("manifest.json");
    let has_oci_index = store.exists("index.json");
    let kind = match spec.transport {
        Some(SourceKind::DockerArchive) if has_docker_manifest => SourceKind::DockerArchive,
        Some(SourceKind::OciArchive) if has_oci_index => SourceKind::OciArchive,
        Some(SourceKind::DockerArchive) => {
            return Err(SourceError::NotAnImage {
                path: path.clone(),
                reason: "no manifest.json (not a `docker save` tarball)".into(),
            })
        }
        Some(_) => {
            return Err(SourceError::NotAnImage {
                path: path.clone(),
                reason: "no index.json (not an oci-archive)".into(),
            })
        }
        // Docker 25+ writes both: manifest.json keeps the layers uncompressed-and-compressible
        // view docker push uses, so it wins.
        None if has_docker_manifest => SourceKind::DockerArchive,
        None if has_oci_index => SourceKind::OciArchive,
        None => {
            return Err(SourceError::NotAnImage {
                path: path.clone(),
                reason: "a tar archive with neither manifest.json nor index.json".into(),
            })
        }
    };
    let label = format!("{}:{}", kind.transport(), path.display());
    let images = match kind {
        SourceKind::DockerArchive => read_docker_archive(&store, path, reference, &label)?,
        _ => read_layout(&store, path, reference, &name, &label)?,
    };
    let blobs: Arc<dyn BlobReader> = Arc::new(store);
    Ok(Source {
        spec: spec.clone(),
        name,
        kind,
        images,
        blobs,
        origin: None,
    })
}

/// A `docker://` source is read over the network, with the credentials and TLS settings of
/// its registry: the engine opens it (`ocipush_engine::registry_source`), not this crate.
pub(crate) fn registry_needs_the_engine(spec: &SourceSpec) -> SourceError {
    SourceError::Unsupported {
        what: format!(
            "`{}` names an image in a registry: opening it without a registry connection",
            spec.original
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports_paths_and_refs() {
        let s = SourceSpec::parse("oci:/nonexistent/layout:1.0").unwrap();
        assert_eq!(s.transport, Some(SourceKind::OciLayout));
        assert_eq!(s.path, PathBuf::from("/nonexistent/layout"));
        assert_eq!(s.reference.as_deref(), Some("1.0"));

        let s = SourceSpec::parse("docker-archive:/x/app.tar").unwrap();
        assert_eq!(s.transport, Some(SourceKind::DockerArchive));
        assert_eq!(s.reference, None);

        let s = SourceSpec::parse("./build/app.tar").unwrap();
        assert_eq!(s.transport, None);

        let s = SourceSpec::parse("myapp:dev").unwrap();
        assert_eq!(s.transport, Some(SourceKind::Daemon));
        assert_eq!(s.reference.as_deref(), Some("myapp:dev"));

        let s = SourceSpec::parse("docker://ghcr.io/org/app:1.2").unwrap();
        assert_eq!(s.transport, Some(SourceKind::Registry));
        assert_eq!(s.reference.as_deref(), Some("ghcr.io/org/app:1.2"));
        assert!(SourceSpec::parse("docker://").is_err());

        assert!(SourceSpec::parse("oci:").is_err());
        assert!(SourceSpec::parse("").is_err());
    }

    #[test]
    fn path_then_ref_when_the_path_exists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.tar");
        std::fs::write(&file, b"").unwrap();
        let arg = format!("{}:myapp:1.0", file.display());
        let s = SourceSpec::parse(&arg).unwrap();
        assert_eq!(s.path, file);
        assert_eq!(s.reference.as_deref(), Some("myapp:1.0"));
    }
}
