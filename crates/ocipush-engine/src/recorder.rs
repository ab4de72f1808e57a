//! The engine's side of every reporter: each event is written into the run's ledger first,
//! then handed on, so whatever shows progress reads books kept in one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{BlobId, BlobOutcome, BlobState, RunTotals};
use crate::ledger::RunLedger;
use crate::report::ImageReport;
use crate::reporter::Reporter;

/// Time since the run started.
pub type Clock = Box<dyn Fn() -> Duration + Send + Sync>;

/// Records every event into the run's ledger, then hands it to the reporter: the engine wraps
/// whatever reporter it is given in one, so every view reads books kept in one place.
pub struct Recorder {
    ledger: Arc<RunLedger>,
    inner: Arc<dyn Reporter>,
    clock: Clock,
}

impl Recorder {
    /// Records for `inner`, timing from now.
    pub fn new(inner: Arc<dyn Reporter>) -> Recorder {
        let started = Instant::now();
        Recorder::with_clock(inner, Box::new(move || started.elapsed()))
    }

    /// Records for `inner`, timing by `clock` (tests set it).
    pub fn with_clock(inner: Arc<dyn Reporter>, clock: Clock) -> Recorder {
        Recorder {
            ledger: Arc::default(),
            inner,
            clock,
        }
    }

    /// The ledger it keeps.
    pub fn ledger(&self) -> &Arc<RunLedger> {
        &self.ledger
    }
}

impl Reporter for Recorder {
    fn run_started(&self, totals: &RunTotals, _ledger: &Arc<RunLedger>) {
        self.ledger.write(|l| l.run_started(totals));
        self.inner.run_started(totals, &self.ledger);
    }

    fn run_finished(&self) {
        self.inner.run_finished();
    }

    fn image_started(&self, label: &str, destinations: &[String]) {
        self.inner.image_started(label, destinations);
    }

    fn blob_started(&self, id: BlobId, label: &str, total: u64) {
        let now = (self.clock)();
        self.ledger.write(|l| l.blob_started(id, label, total, now));
        self.inner.blob_started(id, label, total);
    }

    fn blob_state(&self, id: BlobId, state: BlobState) {
        let now = (self.clock)();
        // A step may announce the state its predecessor already set (a blob read into memory
        // and then sent is "uploading" throughout): the views hear of changes only.
        let repeated = self.ledger.write(|l| {
            let repeated = l.state_of(id) == Some(state);
            l.state(id, state, now);
            repeated
        });
        if !repeated {
            self.inner.blob_state(id, state);
        }
    }

    fn blob_named(&self, id: BlobId, label: &str) {
        self.ledger.write(|l| l.rename(id, label));
        self.inner.blob_named(id, label);
    }

    fn blob_progress(&self, id: BlobId, bytes: u64) {
        self.ledger.write(|l| l.progress(id, bytes));
        self.inner.blob_progress(id, bytes);
    }

    fn blob_restarted(&self, id: BlobId, attempt: u32, reason: &str) {
        self.ledger.write(|l| {
            l.restarted(id);
        });
        self.inner.blob_restarted(id, attempt, reason);
    }

    fn blob_finished(&self, id: BlobId, outcome: BlobOutcome) {
        let now = (self.clock)();
        self.ledger.write(|l| {
            l.end(id, outcome, now);
        });
        self.inner.blob_finished(id, outcome);
    }

    fn image_finished(&self, report: &ImageReport) {
        self.inner.image_finished(report);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct States(Mutex<Vec<(BlobId, BlobState)>>);

    impl Reporter for States {
        fn blob_state(&self, id: BlobId, state: BlobState) {
            self.0.lock().unwrap().push((id, state));
        }
    }

    #[test]
    fn views_hear_of_state_changes_not_repeats() {
        let views = Arc::new(States::default());
        let recorder = Recorder::with_clock(views.clone(), Box::new(|| Duration::ZERO));
        recorder.blob_started(7, "layer 1/1", 100);
        recorder.blob_state(7, BlobState::Checking);
        recorder.blob_state(7, BlobState::Uploading);
        recorder.blob_state(7, BlobState::Uploading);
        recorder.blob_state(7, BlobState::Waiting);
        assert_eq!(
            *views.0.lock().unwrap(),
            [
                (7, BlobState::Checking),
                (7, BlobState::Uploading),
                (7, BlobState::Waiting)
            ]
        );
    }
}
