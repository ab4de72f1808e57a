//! What a push did, per image and in sum: the numbers behind the summary and `--json`.

use std::time::Duration;

use serde::Serialize;

use crate::error::FailureKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
/// How an image went.
pub enum ImageStatus {
    /// Every reference was written.
    Pushed,
    /// It could not be pushed; see its error.
    Failed,
    /// Left out: a broken file of a build directory, or a damaged copy of an image.
    Skipped,
}

#[derive(Debug, Clone, Default, Serialize)]
/// Blobs by what happened to them.
pub struct BlobCounts {
    /// Sent to the registry.
    pub uploaded: u64,
    /// Already there (or put there by an earlier image of the run).
    pub existing: u64,
    /// Mounted from another repository of the registry.
    pub mounted: u64,
}

/// A failure, rendered: the message, a hint, and its kind.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The one-line error.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Its class, for the exit code.
    pub kind: FailureKind,
}

/// The outcome for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// The image's label.
    pub source: String,
    /// The first reference pushed (repository with its first tag).
    pub destination: String,
    /// Every reference written (each tag), `host/repo:tag`.
    pub references: Vec<String>,
    /// The manifest's digest, once pushed.
    pub digest: Option<String>,
    /// How it went.
    pub status: ImageStatus,
    /// Bytes sent (as they went over the wire).
    pub bytes_uploaded: u64,
    /// Bytes not sent because the registry had them or mounted them.
    pub bytes_skipped: u64,
    /// Bytes read from a source registry for it (a `docker://` source; 0 for files and
    /// daemons), every read counted.
    pub bytes_read: u64,
    /// Its blobs by outcome.
    pub blobs: BlobCounts,
    /// Requests sent again, uploads started over or resumed.
    pub retries: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// For a referrer (a signature, SBOM or attestation pushed with `--referrers` or from a
    /// layout), the manifest it refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Sums over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Images in the report.
    pub images: u64,
    /// Images pushed.
    pub pushed: u64,
    /// Images that failed.
    pub failed: u64,
    /// Images left out.
    pub skipped: u64,
    /// Bytes sent.
    pub bytes_uploaded: u64,
    /// Bytes found in the registry or mounted.
    pub bytes_skipped: u64,
    /// Bytes read from source registries.
    pub bytes_read: u64,
    /// Blobs by outcome.
    pub blobs: BlobCounts,
    /// Retries in all.
    pub retries: u64,
    /// Source bytes read for blobs that then failed or were stopped: sent, perhaps, but not in
    /// the registry (so not in `bytes_uploaded`).
    pub bytes_abandoned: u64,
    /// The run's duration.
    pub duration_ms: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// One report per image, in plan order (skipped ones last).
    pub images: Vec<ImageReport>,
    /// Their sums.
    pub summary: Summary,
}

impl From<&crate::error::PushError> for Failure {
    fn from(error: &crate::error::PushError) -> Failure {
        Failure {
            message: error.to_string(),
            hint: error.hint(),
            kind: error.kind(),
        }
    }
}

impl ImageReport {
    /// An image left out before anything was sent for it (a broken file of a build directory,
    /// a damaged copy), with why.
    pub fn skipped(source: String, failure: Failure) -> ImageReport {
        ImageReport {
            source,
            destination: String::new(),
            references: Vec::new(),
            digest: None,
            status: ImageStatus::Skipped,
            bytes_uploaded: 0,
            bytes_skipped: 0,
            bytes_read: 0,
            blobs: BlobCounts::default(),
            retries: 0,
            duration_ms: 0,
            error: Some(failure),
            subject: None,
        }
    }
}

impl PushReport {
    /// A report of `images`, summed, for a run that took `elapsed`.
    pub fn new(images: Vec<ImageReport>, elapsed: Duration) -> PushReport {
        let mut summary = Summary {
            images: images.len() as u64,
            duration_ms: elapsed.as_millis() as u64,
            ..Summary::default()
        };
        for image in &images {
            match image.status {
                ImageStatus::Pushed => summary.pushed += 1,
                ImageStatus::Failed => summary.failed += 1,
                ImageStatus::Skipped => summary.skipped += 1,
            }
            summary.bytes_uploaded += image.bytes_uploaded;
            summary.bytes_skipped += image.bytes_skipped;
            summary.bytes_read += image.bytes_read;
            summary.blobs.uploaded += image.blobs.uploaded;
            summary.blobs.existing += image.blobs.existing;
            summary.blobs.mounted += image.blobs.mounted;
            summary.retries += image.retries;
        }
        PushReport { images, summary }
    }

    /// The failure of the first failed image, if any.
    pub fn first_failure(&self) -> Option<&Failure> {
        self.images.iter().find_map(|i| i.error.as_ref())
    }
}
