//! The push engine: plans where each local image goes, moves its blobs into the registry in
//! parallel (verifying, compressing and hashing as they stream), then writes manifests and tags
//! only once everything they reference is confirmed. It never prints: progress goes to a
//! [`Reporter`], results come back as a [`PushReport`].

mod assemble;
mod blob;
mod cache;
mod compress;
mod copies;
mod daemon;
mod decide;
mod dry_run;
mod error;
mod job;
mod keys;
mod naming;
mod ops;
mod plan;
mod platform;
mod probe;
mod producer;
mod push;
mod rate;
mod report;
mod reporter;
mod run_state;
mod send_turns;
mod sent_progress;
mod totals;
mod upload;

pub use cache::DigestCache;
pub use compress::{Algorithm, CompressionSettings};
pub use decide::{decide, Decision, Holdings, ImageDecisions};
pub use dry_run::{dry_run, BlobAction, ImagePlan};
pub use error::{FailureKind, PushError};
pub use keys::{BlobKey, RepoKey};
pub use naming::{destinations_for, Destination, DEFAULT_TAG};
pub use plan::{
    blob_label, plan, short_hex, BlobRole, Plan, PlanSettings, PlannedBlob, PlannedImage,
    RepeatedImage,
};
pub use platform::{image_platforms, select_platforms, SkippedImage};
pub use push::{push, PushOptions, DEFAULT_JOBS};
pub use report::{BlobCounts, Failure, ImageReport, ImageStatus, PushReport, Summary};
pub use reporter::{BlobId, BlobOutcome, BlobState, Reporter, RunTotals, SilentReporter};
