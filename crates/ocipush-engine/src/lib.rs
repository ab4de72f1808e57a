//! The push engine: plans where each local image goes, moves its blobs into the registry in
//! parallel (verifying, compressing and hashing as they stream), then writes manifests and tags
//! only once everything they reference is confirmed. It never prints: progress goes to a
//! [`Reporter`], results come back as a [`PushReport`].
//!
//! A push is one model, computed once and then read by everything:
//! 1. [`plan`] (pure): every image of the sources, the references it goes to, and every blob
//!    it needs, with a typed key ([`BlobKey`]), a label (`layer 2/3 1d895bc1efba`, the digest
//!    the registry knows it by) and how it is produced.
//! 2. A probe asks each registry what it holds: what each tag points at when the manifest's
//!    digest is known (a tag already there settles the image's blobs), then each remaining
//!    known digest once per repository; [`decide`] then settles what happens to each blob in
//!    each repository ([`Decision`]).
//! 3. [`push`] carries the decisions out and returns a [`PushReport`]; [`dry_run`] stops
//!    after step 2 and returns them, so a dry run says what the push will do.
//!
//! [`Push`] wraps the three steps as one request:
//!
//! ```no_run
//! use ocipush_engine::{Destination, Push, PushOptions};
//! use ocipush_registry::Reference;
//! use ocipush_source::{open_source, DaemonSettings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let opened = open_source("build/app.tar", &DaemonSettings::default()).await?;
//! let destination = Destination::Reference(Reference::parse("localhost:5000/team/app:1.0")?);
//! let report = Push::to(destination)
//!     .sources_from(opened.sources)
//!     .options(PushOptions::default().with_jobs(8))
//!     .run()
//!     .await?;
//! assert_eq!(report.summary.failed, 0);
//! # Ok(())
//! # }
//! ```
//!
//! Decisions are plain data, so what a run would do can be worked out without a registry:
//!
//! ```
//! use ocipush_engine::{decide, Decision, Holdings};
//!
//! // No images, nothing held: nothing to decide.
//! assert!(decide(&[], &[], &Holdings::default()).is_empty());
//! assert_eq!(Decision::Upload.action(), "upload");
//! ```
#![deny(missing_docs)]

mod assemble;
mod blob;
mod cache;
mod compress;
mod context;
mod copies;
mod daemon;
mod decide;
mod dry_run;
mod error;
mod events;
mod job;
mod keys;
mod ledger;
mod naming;
mod ops;
mod plan;
mod platform;
mod probe;
mod producer;
mod push;
mod rate;
mod recorder;
mod referrers_link;
pub mod registry_source;
mod report;
mod reporter;
mod request;
mod run_state;
mod send_turns;
mod sent_progress;
mod small_upload;
mod tally;
mod totals;
mod upload;

pub use cache::DigestCache;
pub use compress::{Algorithm, CompressionSettings};
pub use decide::{decide, Decision, Holdings, ImageDecisions};
pub use dry_run::{dry_run, BlobAction, ImagePlan};
pub use error::{FailureKind, PushError};
pub use keys::{BlobKey, RepoKey};
pub use ledger::{Entry, Finished, Ledger, Overall, RunLedger};
pub use naming::{destinations_for, Destination, DEFAULT_TAG};
pub use plan::{
    blob_label, plan, short_hex, BlobRole, Plan, PlanSettings, PlannedBlob, PlannedImage,
    RepeatedImage,
};
pub use platform::{image_platforms, select_platforms, SkippedImage};
pub use push::{push, PushOptions, DEFAULT_JOBS, SMALL_BLOB};
pub use recorder::{Clock, Recorder};
pub use report::{BlobCounts, Failure, ImageReport, ImageStatus, PushReport, Summary};
pub use reporter::{BlobId, BlobOutcome, BlobState, Reporter, RunTotals, SilentReporter};
pub use request::Push;
