//! The one place the run decides what happens to each blob in each repository: from the plan
//! and what the probe found there, in the plan's order. The executor carries the decisions
//! out and the dry run prints them; neither decides again — except a daemon's layers that
//! must be exported, whose digests the export reveals only as it streams (`blob.rs`).

use std::collections::{BTreeSet, HashMap, HashSet};

use ocipush_oci::Digest;
use serde::Serialize;

use crate::keys::{BlobKey, RepoKey};
use crate::plan::{PlannedImage, Production};
use crate::reporter::BlobOutcome;

/// What the run does with one blob in one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Decision {
    /// The repository holds it already: nothing is sent.
    Exists,
    /// An earlier entry of this run (an earlier image, or the same layer earlier in this
    /// image) puts it into this repository: nothing more is sent.
    EarlierInRun,
    /// Another repository of the registry holds it: mounted from there, no bytes sent.
    Mount {
        /// The repository it is mounted from.
        from: RepoKey,
    },
    /// An earlier image of this run uploads it into another repository of the registry: once
    /// that upload ends, it is mounted from there.
    MountAfterUpload {
        /// The repository the earlier image uploads it into.
        from: RepoKey,
    },
    /// Sent (compressed on the way when the blob is a layer ocipush compresses).
    Upload,
}

impl Decision {
    /// The outcome the push reports when it goes as decided.
    pub fn outcome(&self) -> BlobOutcome {
        match self {
            Decision::Exists | Decision::EarlierInRun => BlobOutcome::Existing,
            Decision::Mount { .. } | Decision::MountAfterUpload { .. } => BlobOutcome::Mounted,
            Decision::Upload => BlobOutcome::Uploaded,
        }
    }

    /// The action word every view prints: `exists`, `mount` or `upload`.
    pub fn action(&self) -> &'static str {
        match self.outcome() {
            BlobOutcome::Existing => "exists",
            BlobOutcome::Mounted => "mount",
            _ => "upload",
        }
    }
}

/// What the registries hold that the plan asked about: `(repository, digest)` pairs found.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    held: HashMap<(RepoKey, Digest), u64>,
}

impl Holdings {
    /// Records that `repository` holds `digest`, `size` bytes long.
    pub fn insert(&mut self, repository: RepoKey, digest: Digest, size: u64) {
        self.held.insert((repository, digest), size);
    }

    /// Whether `repository` was found to hold `digest`.
    pub fn holds(&self, repository: &RepoKey, digest: &Digest) -> bool {
        self.held
            .contains_key(&(repository.clone(), digest.clone()))
    }

    /// The size `repository` gave for `digest`, when found there.
    pub fn size(&self, repository: &RepoKey, digest: &Digest) -> Option<u64> {
        self.held
            .get(&(repository.clone(), digest.clone()))
            .copied()
    }
}

/// Decisions for one image: per repository (in `PlannedImage::repositories` order), one per
/// blob (in `PlannedImage::blobs` order). Empty for an image left out (it failed before).
pub type ImageDecisions = Vec<(RepoKey, Vec<Decision>)>;

/// Decides every blob of every image in `included`, in plan order.
///
/// A blob is: in the repository already (`Exists`); put there by an earlier entry of the run
/// (`EarlierInRun`); in another repository of the registry (`Mount`, the first such by name);
/// uploaded by an earlier image into another repository (`MountAfterUpload`); else uploaded,
/// once per registry. A daemon image's blobs come from its export, which pushes them on its
/// own path: they are matched with each other, never with a file's blob (nothing waits on an
/// export it cannot see).
pub fn decide(
    images: &[PlannedImage],
    included: &[bool],
    holdings: &Holdings,
) -> Vec<ImageDecisions> {
    // (registry, digest) -> repositories found holding it, sorted for a stable choice.
    let mut holders: HashMap<(&str, &Digest), BTreeSet<&RepoKey>> = HashMap::new();
    for (repository, digest) in holdings.held.keys() {
        holders
            .entry((repository.registry.as_str(), digest))
            .or_default()
            .insert(repository);
    }
    let mut in_repository: HashSet<(RepoKey, BlobKey, bool)> = HashSet::new();
    let mut uploaded_into: HashMap<(String, BlobKey, bool), RepoKey> = HashMap::new();
    let mut all = Vec::with_capacity(images.len());
    for (image, included) in images.iter().zip(included) {
        if !included {
            all.push(Vec::new());
            continue;
        }
        let mut decided = Vec::new();
        for (repository, _) in image.repositories() {
            let mut decisions = Vec::with_capacity(image.blobs.len());
            for blob in &image.blobs {
                let export = matches!(blob.production, Production::Export);
                let digest = blob.key.digest();
                let first_here =
                    in_repository.insert((repository.clone(), blob.key.clone(), export));
                let elsewhere = digest.and_then(|d| {
                    holders
                        .get(&(repository.registry.as_str(), d))
                        .and_then(|set| set.iter().find(|r| ***r != repository))
                });
                let uploads_key = (repository.registry.clone(), blob.key.clone(), export);
                let decision = if !first_here {
                    Decision::EarlierInRun
                } else if digest.is_some_and(|d| holdings.holds(&repository, d)) {
                    Decision::Exists
                } else if let Some(from) = elsewhere {
                    Decision::Mount {
                        from: (*from).clone(),
                    }
                } else if let Some(from) = uploaded_into.get(&uploads_key) {
                    Decision::MountAfterUpload { from: from.clone() }
                } else {
                    uploaded_into.insert(uploads_key, repository.clone());
                    Decision::Upload
                };
                decisions.push(decision);
            }
            decided.push((repository, decisions));
        }
        all.push(decided);
    }
    all
}
