//! The binary's [`ocipush_engine::Reporter`]s: progress bars on a terminal ([`BarReporter`]),
//! timestamped lines in a pipe or CI ([`LineReporter`]). Both keep the same books
//! ([`ledger`]), so the overall figures agree whichever one runs; `-v` logs go through
//! [`log_writer`] so they do not tear the bars.

mod bars;
mod ledger;
mod lines;
pub mod log_writer;

pub use bars::BarReporter;
pub use lines::LineReporter;

use ocipush_engine::{BlobOutcome, BlobState};

/// The word a blob's state is shown as.
pub fn state_word(state: BlobState) -> &'static str {
    match state {
        BlobState::Checking => "checking",
        BlobState::Mounting => "mounting",
        BlobState::Compressing => "compressing",
        BlobState::Uploading => "uploading",
    }
}

/// The word a blob's end is shown as.
pub fn outcome_word(outcome: BlobOutcome) -> &'static str {
    match outcome {
        BlobOutcome::Existing => "exists",
        BlobOutcome::Mounted => "mounted",
        BlobOutcome::Uploaded => "done",
        BlobOutcome::Failed => "failed",
        BlobOutcome::Interrupted => "stopped",
    }
}
