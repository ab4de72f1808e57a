//! What a run will move, read off the decisions before anything starts, for an overall
//! progress figure: every blob once per repository (an entry an earlier one of the run puts
//! there is not counted again), in source bytes. Blobs decided present still count: the
//! views take them out as they are confirmed.

use ocipush_source::ImageContent;

use crate::decide::{Decision, ImageDecisions};
use crate::plan::PlannedImage;
use crate::reporter::RunTotals;

pub(crate) fn run_totals(images: &[PlannedImage], decisions: &[ImageDecisions]) -> RunTotals {
    let mut totals = RunTotals {
        images: images.len(),
        ..RunTotals::default()
    };
    for (image, decided) in images.iter().zip(decisions) {
        for (_, blob_decisions) in decided {
            let mut bytes = 0;
            for (blob, decision) in image.blobs.iter().zip(blob_decisions) {
                if *decision != Decision::EarlierInRun {
                    totals.blobs += 1;
                    bytes += blob.source_bytes;
                }
            }
            // A daemon's layer sizes are known only once its export streams (or from the
            // cache): when the image is exported, its uncompressed size is what the export
            // will be read for. When every blob is found, nothing is read.
            if let ImageContent::Daemon(daemon) = &image.image.content {
                let exported = blob_decisions
                    .iter()
                    .any(|d| matches!(d, Decision::Upload | Decision::MountAfterUpload { .. }));
                if exported {
                    bytes = bytes.max(daemon.size);
                }
            }
            totals.bytes += bytes;
        }
    }
    totals
}
