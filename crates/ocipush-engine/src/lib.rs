//! The push engine: plans where each local image goes, moves its blobs into the registry in
//! parallel (verifying, compressing and hashing as they stream), then writes manifests and tags
//! only once everything they reference is confirmed. It never prints: progress goes to a
//! [`Reporter`], results come back as a [`PushReport`].

mod assemble;
mod blob;
mod cache;
mod compress;
mod daemon;
mod dry_run;
mod error;
mod job;
mod naming;
mod platform;
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
pub use dry_run::{dry_run, ImagePlan, PlannedAction, PlannedBlob};
pub use error::{FailureKind, PushError};
pub use naming::{destinations_for, Destination, DEFAULT_TAG};
pub use platform::{image_platforms, select_platforms, SkippedImage};
pub use push::{plan, push, Plan, PlannedImage, PushOptions, RepeatedImage};
pub use report::{BlobCounts, Failure, ImageReport, ImageStatus, PushReport, Summary};
pub use reporter::{BlobId, BlobOutcome, BlobState, Reporter, RunTotals, SilentReporter};
