//! What a push did, per image and in sum: the numbers behind the summary and `--json`.

use std::time::Duration;

use serde::Serialize;

use crate::error::FailureKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    Pushed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobCounts {
    pub uploaded: u64,
    pub existing: u64,
    pub mounted: u64,
}

/// A failure, rendered: the message, a hint, and its kind.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
    pub kind: FailureKind,
}

/// The outcome for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub source: String,
    /// The first reference pushed (repository with its first tag).
    pub destination: String,
    /// Every reference written (each tag), `host/repo:tag`.
    pub references: Vec<String>,
    pub digest: Option<String>,
    pub status: ImageStatus,
    pub bytes_uploaded: u64,
    pub bytes_skipped: u64,
    pub blobs: BlobCounts,
    pub retries: u64,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// Sums over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub images: u64,
    pub pushed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub bytes_uploaded: u64,
    pub bytes_skipped: u64,
    pub blobs: BlobCounts,
    pub retries: u64,
    pub duration_ms: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub images: Vec<ImageReport>,
    pub summary: Summary,
}

impl PushReport {
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
