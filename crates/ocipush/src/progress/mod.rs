//! The binary's [`ocipush_engine::Reporter`]s: progress bars on a terminal ([`BarReporter`]),
//! timestamped lines in a pipe or CI ([`LineReporter`]). Neither keeps counts of its own:
//! both read the engine's ledger of the run (`ocipush_engine::RunLedger`), so the overall
//! figures agree whichever one runs, and with the summary; `-v` logs go through
//! [`log_writer`] so they do not tear the bars.

mod bars;
mod lines;
pub mod log_writer;

pub use bars::BarReporter;
pub use lines::LineReporter;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ocipush_engine::{BlobOutcome, BlobState};

/// When the run started: the origin of every progress line's and log line's time.
pub fn run_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// `[   1.2s]`: how progress lines and log lines are stamped, so a log reads as one timeline.
pub fn stamp(elapsed: Duration) -> String {
    format!("[{:>7}]", format!("{:.1}s", elapsed.as_secs_f64()))
}

/// The word a blob's state is shown as.
pub fn state_word(state: BlobState) -> &'static str {
    match state {
        BlobState::Checking => "checking",
        BlobState::Mounting => "mounting",
        BlobState::Compressing => "compressing",
        BlobState::Uploading => "uploading",
        BlobState::Waiting => "waiting for a turn",
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
