//! Why pushing an image failed, by layer (source, registry, naming), with a class the binary
//! turns into an exit code and a hint it prints under the message.

use ocipush_oci::VerifyError;
use ocipush_registry::{ErrorClass, ReferenceError, RegistryError};
use ocipush_source::SourceError;

/// The kind of failure, for exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Anything else (exit 1).
    General,
    /// Credentials refused or missing (exit 2).
    Auth,
    /// The registry could not be reached (exit 3).
    Network,
    /// The image is missing, damaged or not an image (exit 4).
    InvalidImage,
    /// The registry refused or does not support what was asked (exit 5).
    Registry,
    /// The whole operation ran out of time (exit 6).
    Timeout,
    /// The request itself is wrong (exit 64).
    Usage,
    /// Stopped by the user (exit 130).
    Interrupted,
}

/// Why an image (or the whole run) could not be pushed. The cause is kept as a source;
/// [`PushError::kind`] classifies it for exit codes and [`PushError::hint`] says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Reading the local source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The registry refused, failed or could not be reached.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A registry source (`docker://…`) could not be opened.
    #[error(transparent)]
    RegistrySource(#[from] crate::registry_source::RegistrySourceError),
    /// A destination reference does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// `source` already names the blob (it is verified under the blob's label), so the
    /// message is its alone.
    #[error("{source}")]
    Verify {
        /// The blob's label.
        blob: String,
        /// What did not match.
        #[source]
        source: Box<VerifyError>,
    },
    /// A blob of the source could not be read.
    #[error("cannot read {blob}: {source}")]
    Read {
        /// The blob's label.
        blob: String,
        /// What the read said.
        #[source]
        source: std::io::Error,
    },
    /// No destination can be named for an image.
    #[error("{0}")]
    Naming(String),
    /// A destination names a digest that is not the manifest the push writes.
    #[error("{repository}@{wanted} is not this image: its manifest is {actual}")]
    WrongDigest {
        /// `registry/repository`.
        repository: String,
        /// The digest the destination names.
        wanted: String,
        /// The manifest's digest.
        actual: String,
    },
    /// Several images for one explicit destination.
    #[error(
        "{count} images found ({}) for the single destination {reference}",
        some_of(labels)
    )]
    OneDestinationForMany {
        /// How many images the sources hold.
        count: usize,
        /// Their labels.
        labels: Vec<String>,
        /// The one destination.
        reference: String,
    },
    /// Two different images bound for one reference.
    #[error("{first} and {second} would both be pushed to {reference}")]
    SameDestination {
        /// The reference both are bound for.
        reference: String,
        /// The first image's label.
        first: String,
        /// The second image's label.
        second: String,
    },
    /// `--platform` matches none of the sources' images.
    #[error("--platform {} matches no image; the sources hold {}", wanted.join(", "), list_or_none(available))]
    NoPlatform {
        /// The platforms asked for.
        wanted: Vec<String>,
        /// The platforms the sources hold.
        available: Vec<String>,
    },
    /// Stopped by the caller (Ctrl-C): no manifest was written.
    #[error("interrupted")]
    Interrupted,
    /// A bug: something the engine should never see.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PushError {
    /// The kind of failure, for the exit code.
    pub fn kind(&self) -> FailureKind {
        match self {
            PushError::Source(SourceError::InvalidSpec { .. } | SourceError::DaemonHost { .. }) => {
                FailureKind::Usage
            }
            PushError::Source(SourceError::Interrupted) => FailureKind::Interrupted,
            // A blob read from a source registry fails as that registry did.
            PushError::Read { source, .. } => {
                registry_cause(source).map_or(FailureKind::InvalidImage, registry_kind)
            }
            PushError::Source(_) | PushError::Verify { .. } => FailureKind::InvalidImage,
            PushError::Registry(e) => registry_kind(e),
            PushError::RegistrySource(e) => match e.registry() {
                Some(e) => registry_kind(e),
                None => FailureKind::InvalidImage,
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

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            PushError::Source(e) => e.hint(),
            PushError::Registry(e) => e.hint(),

            PushError::RegistrySource(e) => match e {
                crate::registry_source::RegistrySourceError::Registry(e) => e.hint(),
                crate::registry_source::RegistrySourceError::NotFound { .. } => Some(
                    "check the name and tag (`skopeo list-tags docker://HOST/REPO` lists the tags)"
                        .into(),
                ),
                _ => Some("the source registry served a damaged manifest; try again, or report it to its operators".into()),
            },
            PushError::Reference(_) => Some(
                "references look like HOST[:PORT]/NAMESPACE/NAME[:TAG], lowercase, e.g. localhost:5000/team/app:1.0"
                    .into(),
            ),
            PushError::Read { source, .. } => match registry_cause(source) {
                Some(e) => e.hint(),
                None => Some(DAMAGED_HINT.into()),
            },
            PushError::Verify { .. } => Some(DAMAGED_HINT.into()),
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

/// What to do about a source file that does not read back as it should.
const DAMAGED_HINT: &str =
    "the image file is damaged or was changed while pushing; export it again";

/// The exit-code kind of a registry failure.
fn registry_kind(error: &RegistryError) -> FailureKind {
    match error.class() {
        ErrorClass::Auth => FailureKind::Auth,
        ErrorClass::Network => FailureKind::Network,
        ErrorClass::NotFound | ErrorClass::Registry => FailureKind::Registry,
        ErrorClass::Usage => FailureKind::Usage,
    }
}

/// The registry failure a read error carries: a registry source's blob could not be read.
fn registry_cause(error: &std::io::Error) -> Option<&RegistryError> {
    error.get_ref()?.downcast_ref::<RegistryError>()
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
