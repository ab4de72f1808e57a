//! `--dry-run`: the run up to its decisions and no further — copies verified, registries
//! connected, what they hold probed (tags, then blobs), every blob decided by `decide` — then
//! the decisions are handed back to be printed. A push of the same sources against the same
//! registries carries out these decisions; it departs from them only where the registry
//! answers otherwise (a mount refused, a failure), or for a daemon's layers, which its export
//! names only as they stream by.

use serde::Serialize;

use crate::copies::settle_copies;
use crate::decide::{decide, Decision};
use crate::plan::{Plan, PlannedBlob};
use crate::probe::{connect_all, probe};
use crate::push::{precheck, PushOptions};
use crate::report::Failure;

/// What would happen to one blob in one repository.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BlobAction {
    /// `layer 1/2 1d895bc1efba`: the digest is the registry's, shown when known now.
    pub label: String,
    /// Known before pushing, or learnt only while compressing.
    pub digest: Option<String>,
    /// Bytes it has (known digest) or bytes read from the source (to be compressed).
    pub size: u64,
    /// `exists`, `mount` or `upload`: what `push --json` then counts it as (`existing`,
    /// `mounted`, `uploaded`).
    pub action: &'static str,
    /// The repository a mount takes it from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `gzip` or `zstd` when ocipush compresses it on the way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compress: Option<&'static str>,
    /// Why, when it is the run itself that puts it there first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<&'static str>,
    /// The decision itself.
    #[serde(skip)]
    pub decision: Decision,
}

impl BlobAction {
    fn new(blob: &PlannedBlob, decision: Decision) -> BlobAction {
        let (from, because) = match &decision {
            Decision::Mount { from } => (Some(from.to_string()), None),
            Decision::MountAfterUpload { from } => (
                Some(from.to_string()),
                Some("an earlier image of this run uploads it there"),
            ),
            Decision::EarlierInRun => (None, Some("an earlier blob of this run puts it there")),
            _ => (None, None),
        };
        BlobAction {
            label: blob.label(),
            digest: blob.digest().map(|d| d.to_string()),
            size: blob.size,
            action: decision.action(),
            from,
            compress: match decision {
                Decision::Upload => blob.compress.map(|a| a.name()),
                _ => None,
            },
            because,
            decision,
        }
    }
}

/// What would happen to one image.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ImagePlan {
    /// The image's label.
    pub source: String,
    /// Where it would go.
    pub references: Vec<String>,
    /// Every blob, per repository in turn.
    pub blobs: Vec<BlobAction>,
    /// References that already point at the image's manifest: nothing is written for them.
    pub current: Vec<String>,
    /// Set when the registry could not be asked, or the image is a damaged copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// Plans every image without writing to any registry.
pub async fn dry_run(plan: Plan, options: &PushOptions) -> Vec<ImagePlan> {
    let settled = settle_copies(plan.images, plan.repeats).await;
    let images = settled.images;
    let (clients, _) = connect_all(&images, &options.client, &options.cancel).await;
    let prechecked = images.iter().map(precheck).collect();
    let probed = probe(&images, &clients, prechecked, &options.cancel).await;
    let current = &probed.current;
    let included: Vec<bool> = probed.failures.iter().map(Option::is_none).collect();
    let decisions = decide(&images, &included, &probed.holdings);
    let mut plans: Vec<ImagePlan> = images
        .iter()
        .zip(decisions)
        .zip(probed.failures)
        .map(|((image, decided), failure)| ImagePlan {
            source: image.image.label.clone(),
            references: image.references.iter().map(|r| r.to_string()).collect(),
            blobs: decided
                .into_iter()
                .flat_map(|(_, decisions)| {
                    image
                        .blobs
                        .iter()
                        .zip(decisions)
                        .map(|(blob, decision)| BlobAction::new(blob, decision))
                        .collect::<Vec<_>>()
                })
                .collect(),
            current: image
                .references
                .iter()
                .filter(|r| current.contains(*r))
                .map(|r| r.to_string())
                .collect(),
            error: failure.map(|e| Failure::from(&*e)),
        })
        .collect();
    plans.extend(settled.damaged.into_iter().map(|report| ImagePlan {
        source: report.source,
        references: report.references,
        blobs: Vec::new(),
        current: Vec::new(),
        error: report.error,
    }));
    plans
}
