//! What a run will move, worked out from the plan before anything starts, for an overall
//! progress figure: each blob counted once per repository, as the run pushes it (a blob two
//! images share in one repository goes up once; in another repository it is mounted, which
//! still completes a share of the work).

use std::collections::HashSet;

use ocipush_source::ImageContent;

use crate::push::PlannedImage;
use crate::reporter::RunTotals;

pub(crate) fn run_totals(plan: &[PlannedImage]) -> RunTotals {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut totals = RunTotals {
        images: plan.len(),
        ..RunTotals::default()
    };
    for planned in plan {
        let repositories: HashSet<String> = planned.references.iter().map(|r| r.name()).collect();
        for repository in repositories {
            let mut add = |key: String, blobs: usize, bytes: u64| {
                if seen.insert((repository.clone(), key)) {
                    totals.blobs += blobs;
                    totals.bytes += bytes;
                }
            };
            match &planned.image.content {
                ImageContent::Stored { root, children, .. } => {
                    for doc in std::iter::once(root).chain(children) {
                        for blob in doc.blobs() {
                            add(blob.digest().to_string(), 1, blob.size());
                        }
                    }
                }
                ImageContent::Assembled(image) => {
                    for layer in &image.layers {
                        add(layer.diff_id.to_string(), 1, layer.size);
                    }
                    add(
                        image.config_digest.to_string(),
                        1,
                        image.config.len() as u64,
                    );
                }
                // Per-layer sizes are only known once the export streams; the daemon's total
                // uncompressed size is what its export will be read for. Plus the config.
                ImageContent::Daemon(image) => {
                    add(image.id.clone(), image.diff_ids.len() + 1, image.size);
                }
            }
        }
    }
    totals
}
