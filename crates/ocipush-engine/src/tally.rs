//! Counts gathered while pushing one image: blobs by outcome, bytes sent and skipped,
//! retries — what its report says.

use std::sync::Arc;

use crate::error::PushError;
use crate::job::PushedBlob;
use crate::report::BlobCounts;
use crate::reporter::BlobOutcome;

/// Counts gathered while pushing one image.
#[derive(Default)]
pub(crate) struct Tally {
    pub bytes_uploaded: u64,
    pub bytes_skipped: u64,
    pub blobs: BlobCounts,
    pub retries: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, blob: &PushedBlob) {
        match blob.outcome {
            BlobOutcome::Existing => {
                self.blobs.existing += 1;
                self.bytes_skipped += blob.size;
            }
            BlobOutcome::Mounted => {
                self.blobs.mounted += 1;
                self.bytes_skipped += blob.size;
            }
            BlobOutcome::Uploaded => {
                self.blobs.uploaded += 1;
                self.bytes_uploaded += blob.size;
            }
            BlobOutcome::Failed | BlobOutcome::Interrupted => {}
        }
    }

    /// Counts an image config, if it got into the repository.
    pub(crate) fn add_config(
        &mut self,
        digest: &ocipush_oci::Digest,
        size: u64,
        outcome: &Result<BlobOutcome, Arc<PushError>>,
    ) {
        if let Ok(outcome) = outcome {
            self.add(&PushedBlob {
                digest: digest.clone(),
                size,
                outcome: *outcome,
                diff_id: None,
            });
        }
    }
}
