//! Why pushing an image failed, by layer (source, registry, naming), with a class the binary
//! turns into an exit code and a hint it prints under the message.

use ocipush_oci::VerifyError;
use ocipush_registry::{ErrorClass, ReferenceError, RegistryError};
use ocipush_source::SourceError;

/// The kind of failure, for exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    General,
    Auth,
    Network,
    InvalidImage,
    Registry,
    Timeout,
    Usage,
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// `source` already names the blob (it is verified under the blob's label), so the
    /// message is its alone.
    #[error("{source}")]
    Verify {
        blob: String,
        #[source]
        source: Box<VerifyError>,
    },
    #[error("cannot read {blob}: {detail}")]
    Read { blob: String, detail: String },
    #[error("{0}")]
    Naming(String),
    #[error("{repository}@{wanted} is not this image: its manifest is {actual}")]
    WrongDigest {
        repository: String,
        wanted: String,
        actual: String,
    },
    #[error(
        "{count} images found ({}) for the single destination {reference}",
        some_of(labels)
    )]
    OneDestinationForMany {
        count: usize,
        labels: Vec<String>,
        reference: String,
    },
    #[error("{first} and {second} would both be pushed to {reference}")]
    SameDestination {
        reference: String,
        first: String,
        second: String,
    },
    #[error("--platform {} matches no image; the sources hold {}", wanted.join(", "), list_or_none(available))]
    NoPlatform {
        wanted: Vec<String>,
        available: Vec<String>,
    },
    #[error("interrupted")]
    Interrupted,
    #[error("internal error: {0}")]
    Internal(String),
}

impl PushError {
    pub fn kind(&self) -> FailureKind {
        match self {
            PushError::Source(SourceError::InvalidSpec { .. } | SourceError::DaemonHost { .. }) => {
                FailureKind::Usage
            }
            PushError::Source(_) | PushError::Verify { .. } | PushError::Read { .. } => {
                FailureKind::InvalidImage
            }
            PushError::Registry(e) => match e.class() {
                ErrorClass::Auth => FailureKind::Auth,
                ErrorClass::Network => FailureKind::Network,
                ErrorClass::NotFound | ErrorClass::Registry => FailureKind::Registry,
                ErrorClass::Usage => FailureKind::Usage,
            },
            PushError::Reference(_)
            | PushError::Naming(_)
            | PushError::WrongDigest { .. }
            | PushError::OneDestinationForMany { .. }
            | PushError::SameDestination { .. }
            | PushError::NoPlatform { .. } => FailureKind::Usage,
            PushError::Interrupted => FailureKind::Interrupted,
            PushError::Internal(_) => FailureKind::General,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            PushError::Source(e) => e.hint(),
            PushError::Registry(e) => e.hint(),
            PushError::Reference(_) => Some(
                "references look like HOST[:PORT]/NAMESPACE/NAME[:TAG], lowercase, e.g. localhost:5000/team/app:1.0"
                    .into(),
            ),
            PushError::Verify { .. } | PushError::Read { .. } => {
                Some("the image file is damaged or was changed while pushing; export it again".into())
            }
            PushError::Naming(_) => Some(
                "give a full destination (HOST/REPO:TAG) or tags with -t".into(),
            ),
            PushError::WrongDigest { .. } => Some(
                "a destination's @DIGEST must be the manifest the push writes: leave it out (or push by tag) to push this image"
                    .into(),
            ),
            PushError::OneDestinationForMany { .. } => Some(
                "pick one image with TRANSPORT:PATH:REF (`ocipush list SOURCE` shows them), or push them all with -r REGISTRY[/NAMESPACE]"
                    .into(),
            ),
            PushError::SameDestination { .. } => Some(
                "a tag points at one image: push them in separate runs with their own tags (-t), or leave one out"
                    .into(),
            ),
            PushError::NoPlatform { .. } => Some(
                "pick platforms the sources hold (`ocipush list SOURCE` shows them), or leave out --platform to push every platform"
                    .into(),
            ),
            PushError::Interrupted => Some(
                "run the same push again: blobs the registry already got are skipped".into(),
            ),
            _ => None,
        }
    }
}

/// The first few of a list, then how many more: an error stays one readable line.
fn some_of(items: &[String]) -> String {
    const SHOWN: usize = 3;
    if items.len() <= SHOWN + 1 {
        return items.join(", ");
    }
    format!(
        "{}, and {} more",
        items[..SHOWN].join(", "),
        items.len() - SHOWN
    )
}

fn list_or_none(platforms: &[String]) -> String {
    if platforms.is_empty() {
        "no platform information".into()
    } else {
        platforms.join(", ")
    }
}
