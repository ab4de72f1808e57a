//! Errors raised while opening and reading local images, with the context a user needs to act.

use std::io;
use std::path::PathBuf;

use ocipush_oci::{DigestError, DocumentError, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} does not exist")]
    NotFound { path: PathBuf },
    #[error("{path} is not an image: {reason}")]
    NotAnImage { path: PathBuf, reason: String },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} has no entry `{entry}`")]
    MissingEntry { path: PathBuf, entry: String },
    #[error("{path}: {source}")]
    Document {
        path: PathBuf,
        #[source]
        source: DocumentError,
    },
    #[error("{path}: {source}")]
    Digest {
        path: PathBuf,
        #[source]
        source: DigestError,
    },
    #[error("{path}: {source}")]
    Verify {
        path: PathBuf,
        #[source]
        source: Box<VerifyError>,
    },
    #[error("{path} has no image named `{wanted}`")]
    UnknownRef {
        path: PathBuf,
        wanted: String,
        available: Vec<String>,
    },
    #[error("invalid source `{arg}`: {reason}")]
    InvalidSpec { arg: String, reason: String },
    #[error("{what} is not supported yet")]
    Unsupported { what: String },
    /// `DOCKER_HOST` (or `CONTAINER_HOST`) names an endpoint ocipush does not speak to.
    #[error("daemon host `{host}`: {reason}")]
    DaemonHost { host: String, reason: String },
    #[error("no Docker or Podman daemon is reachable (tried {})", tried.join(", "))]
    NoDaemon { tried: Vec<String> },
    /// `message` is the engine's own words (kept for debugging; it repeats the name).
    #[error("{engine} has no image `{name}`")]
    DaemonImageUnknown {
        name: String,
        engine: String,
        message: String,
    },
    #[error("{engine} speaks Engine API {api}; ocipush needs {minimum} or newer")]
    DaemonTooOld {
        engine: String,
        api: String,
        minimum: String,
    },
    #[error("{detail}")]
    Daemon { detail: String },
    /// A file of a stream (a daemon's export) was wanted again after it went by.
    #[error("`{path}` of the daemon's export cannot be read twice")]
    Reread { path: String },
}

impl SourceError {
    /// A suggestion for the user, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            SourceError::NotFound { .. } => Some(
                "give a path to an OCI layout directory, an oci-archive or a `docker save` tarball"
                    .into(),
            ),
            SourceError::NotAnImage { .. } => Some(
                "ocipush reads OCI layouts (index.json + oci-layout), oci-archives and `docker save` tarballs".into(),
            ),
            SourceError::Corrupt { .. } | SourceError::Verify { .. } => {
                Some("the file was probably truncated or modified; export the image again".into())
            }
            SourceError::UnknownRef { available, .. } if available.is_empty() => {
                Some("the source names none of its images; drop the `:REF` suffix".into())
            }
            SourceError::UnknownRef { available, .. } => {
                Some(format!("available: {}", available.join(", ")))
            }
            SourceError::NoDaemon { .. } => Some(
                "start Docker or Podman (`systemctl start docker`, `systemctl --user start podman.socket`), or set DOCKER_HOST=unix:///path/to/socket or tcp://HOST:PORT; a name that is no existing path is read as a daemon image"
                    .into(),
            ),
            SourceError::DaemonHost { .. } => Some(
                "DOCKER_HOST takes unix:///path/to/socket or tcp://HOST[:PORT]; for an engine behind TLS or ssh, forward its socket (`ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST`) and set DOCKER_HOST=unix:///tmp/docker.sock, or `docker save` the image and push the tarball"
                    .into(),
            ),
            SourceError::DaemonImageUnknown { .. } => Some(
                "`docker images` (or `ocipush list daemon:`) shows what the daemon has; a name that is no existing path is read as a daemon image".into(),
            ),
            SourceError::Daemon { .. } => Some(
                "the daemon did not deliver the image; check it is healthy (`docker info`, its log) and push again".into(),
            ),
            SourceError::DaemonTooOld { .. } => Some(
                "upgrade the engine, or export the image with `docker save NAME -o image.tar` and push image.tar".into(),
            ),
            SourceError::InvalidSpec { .. } => Some(
                "use a path, or TRANSPORT:PATH[:REF] with oci, oci-archive or docker-archive".into(),
            ),
            _ => None,
        }
    }

    /// Is this a verification failure (bad digest or size) of a blob's content?
    pub fn is_verify(&self) -> bool {
        matches!(self, SourceError::Verify { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        SourceError::Io {
            path: path.into(),
            source,
        }
    }
}
