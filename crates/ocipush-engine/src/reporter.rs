//! Events the engine emits while pushing, for whoever shows progress. The engine never prints;
//! the binary implements [`Reporter`] with progress bars or plain lines.

use std::sync::Arc;

pub use crate::events::{BlobId, BlobOutcome, BlobState, RunTotals};
use crate::ledger::RunLedger;
use crate::report::ImageReport;

/// Receives push events. Every method has an empty default so reporters implement what they show.
pub trait Reporter: Send + Sync {
    /// The run begins: what it will move at most, and the ledger the engine keeps of it. A
    /// reporter reads its figures there (see [`Recorder`](crate::Recorder)) rather than
    /// keeping counts of its own.
    fn run_started(&self, _totals: &RunTotals, _ledger: &Arc<RunLedger>) {}
    /// Every image has finished (pushed or failed).
    fn run_finished(&self) {}
    /// An image begins, bound for `destinations`.
    fn image_started(&self, _label: &str, _destinations: &[String]) {}
    /// A blob transfer began; `total` is the number of source bytes it will read (0 when not
    /// known: a daemon layer found through the digest cache).
    fn blob_started(&self, _id: BlobId, _label: &str, _total: u64) {}
    /// What the blob is doing now.
    fn blob_state(&self, _id: BlobId, _state: BlobState) {}
    /// The blob's full label, once the digest the registry knows it by is learnt (a layer
    /// compressed on the way): `layer 1/2 1d895bc1efba` where it started as `layer 1/2`.
    fn blob_named(&self, _id: BlobId, _label: &str) {}
    /// `bytes` more source bytes were processed.
    fn blob_progress(&self, _id: BlobId, _bytes: u64) {}
    /// A retry starts the blob over: progress goes back to zero.
    fn blob_restarted(&self, _id: BlobId, _attempt: u32, _reason: &str) {}
    /// The blob is done: how it went.
    fn blob_finished(&self, _id: BlobId, _outcome: BlobOutcome) {}
    /// The image is done: what came of it.
    fn image_finished(&self, _report: &ImageReport) {}
}

/// A reporter that shows nothing (`-q`, library use).
pub struct SilentReporter;

impl Reporter for SilentReporter {}
