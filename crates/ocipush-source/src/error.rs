//! Errors raised while opening and reading local images, with the context a user needs to act.

use std::io;
use std::path::PathBuf;

use ocipush_oci::{DigestError, DocumentError, VerifyError};

/// Why a source could not be opened or read, naming what is at fault; [`SourceError::hint`]
/// adds what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file, or the archive holding it.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// The source's path does not exist.
    #[error("{path} does not exist")]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The path exists but holds no image ocipush reads.
    #[error("{path} is not an image: {reason}")]
    NotAnImage {
        /// The path as given.
        path: PathBuf,
        /// What it is instead, or what it lacks.
        reason: String,
    },
    /// An image, but damaged: truncated, malformed, or with paths that leave it.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The source, or the file in it at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file the image refers to is not in the source.
    #[error("{path} has no entry `{entry}`")]
    MissingEntry {
        /// The source.
        path: PathBuf,
        /// The missing file, relative to the source's root.
        entry: String,
    },
    /// A manifest or index of the source cannot be understood.
    #[error("{path}: {source}")]
    Document {
        /// The source.
        path: PathBuf,
        /// Why.
        #[source]
        source: DocumentError,
    },
    /// A digest the source gives is malformed or not sha256.
    #[error("{path}: {source}")]
    Digest {
        /// The source.
        path: PathBuf,
        /// Why.
        #[source]
        source: DigestError,
    },
    /// A file's content does not match the digest or size it is known by.
    #[error("{path}: {source}")]
    Verify {
        /// The source.
        path: PathBuf,
        /// The mismatch, naming the file.
        #[source]
        source: Box<VerifyError>,
    },
    /// The argument's `:REF` names no image of the source.
    #[error("{path} has no image named `{wanted}`")]
    UnknownRef {
        /// The source.
        path: PathBuf,
        /// The reference as given.
        wanted: String,
        /// The names the source does give its images, for the hint.
        available: Vec<String>,
    },
    /// The source argument cannot be parsed.
    #[error("invalid source `{arg}`: {reason}")]
    InvalidSpec {
        /// The argument as given.
        arg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Something ocipush does not handle, such as an index nested in an index.
    #[error("{what} is not supported yet")]
    Unsupported {
        /// What it is, phrased to go before "is not supported yet".
        what: String,
    },
    /// `DOCKER_HOST` (or `CONTAINER_HOST`) names an endpoint ocipush does not speak to.
    #[error("daemon host `{host}`: {reason}")]
    DaemonHost {
        /// The host as given, with any `user:password@` masked.
        host: String,
        /// Why it is refused.
        reason: String,
    },
    /// No daemon answered: not at the endpoint named, nor at any usual socket.
    #[error("no Docker or Podman daemon is reachable (tried {})", tried.join(", "))]
    NoDaemon {
        /// Each endpoint tried, with why it failed.
        tried: Vec<String>,
    },
    /// The daemon has no image by that name or ID.
    /// `message` is the engine's own words (kept for debugging; it repeats the name).
    #[error("{engine} has no image `{name}`")]
    DaemonImageUnknown {
        /// The name or ID asked for.
        name: String,
        /// The engine and its version.
        engine: String,
        /// The engine's error message.
        message: String,
    },
    /// The daemon's Engine API is older than ocipush needs.
    #[error("{engine} speaks Engine API {api}; ocipush needs {minimum} or newer")]
    DaemonTooOld {
        /// The engine and its version.
        engine: String,
        /// The API version it reports.
        api: String,
        /// The oldest API version ocipush works with.
        minimum: String,
    },
    /// A daemon request failed, or the daemon sent something malformed (an export stream, an
    /// inspect answer).
    #[error("{detail}")]
    Daemon {
        /// The whole message, naming what was asked.
        detail: String,
    },
    /// The caller stopped the read (Ctrl-C) while it was under way.
    #[error("interrupted")]
    Interrupted,
    /// A file of a stream (a daemon's export) was wanted again after it went by.
    #[error("`{path}` of the daemon's export cannot be read twice")]
    Reread {
        /// The file, as the export names it.
        path: String,
    },
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
