//! The run's one ledger: every blob the run has started (its label, size, bytes read so far,
//! state, when it started), how each ended, and the overall figures. The engine records every
//! event into it before any reporter hears of it ([`Recorder`]), so the bars, the plain lines
//! and the summary read the same books and cannot drift apart.
//!
//! The overall total is what remains to be moved: it starts at the plan's estimate and loses
//! what turns out to be in the registry already (existing or mounted), so its bytes and rate
//! are bytes really read and sent; a blob that fails takes its bytes back out, since they did
//! not land (a failed push never ends on "100%" with a blob missing), and they are kept as
//! abandoned instead. Bytes are source bytes: a layer compressed on the way counts its
//! uncompressed size (what takes the time), not the smaller size that goes over the wire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::events::{BlobId, BlobOutcome, BlobState, RunTotals};

/// One blob the run has started.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Entry {
    /// `layer 1/2 1d895bc1efba` (the digest added once learnt).
    pub label: String,
    /// Source bytes it will read (0 when not known).
    pub total: u64,
    /// Source bytes read so far (after the last restart).
    pub position: u64,
    /// Times it started over or resumed.
    pub retries: u32,
    /// What it is doing now.
    pub state: Option<BlobState>,
    /// It was compressed on its way (it was in [`BlobState::Compressing`] at some point: a
    /// small blob is compressed whole and then uploaded, a big one compressed as it streams).
    pub compressed: bool,
    /// Run time at which it started, or stopped waiting for its turn to stream: what its
    /// time and rate are counted from.
    pub started: Duration,
}

/// How a finished blob went.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Finished {
    /// The blob as it was when it ended.
    pub entry: Entry,
    /// How it ended.
    pub outcome: BlobOutcome,
    /// Source bytes it was read for (its size, for an upload that completed).
    pub bytes: u64,
    /// From its start (or its turn) to its end.
    pub took: Duration,
}

/// The overall figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overall {
    /// Bytes read and sent so far.
    pub sent: u64,
    /// Bytes to send in all: the estimate, less what was found in the registry.
    pub to_send: u64,
    /// Bytes found in the registry already (existing or mounted).
    pub skipped: u64,
    /// Blobs done (in the registry).
    pub blobs_done: usize,
    /// Blobs in all.
    pub blobs: usize,
    /// Blobs under way.
    pub in_flight: usize,
    /// Blobs that failed or were interrupted.
    pub failed: usize,
    /// Bytes read for blobs that then failed or were interrupted: sent, perhaps, but not in
    /// the registry.
    pub abandoned: u64,
}

impl Overall {
    /// `2/3 blobs`, and `, 1 failed` when some did.
    pub fn blob_count(&self) -> String {
        match self.failed {
            0 => format!("{}/{} blobs", self.blobs_done, self.blobs),
            failed => format!("{}/{} blobs, {failed} failed", self.blobs_done, self.blobs),
        }
    }
}

/// The books. Read through [`RunLedger::read`]; written by the engine's
/// [`Recorder`](crate::Recorder).
#[derive(Debug, Default)]
pub struct Ledger {
    planned: RunTotals,
    started_bytes: u64,
    started_blobs: usize,
    sent: u64,
    skipped: u64,
    abandoned: u64,
    done: usize,
    failed: usize,
    in_flight: HashMap<BlobId, Entry>,
    finished: HashMap<BlobId, Finished>,
}

impl Ledger {
    /// What the run said it would move.
    pub fn planned(&self) -> RunTotals {
        self.planned
    }

    /// A blob under way.
    pub fn entry(&self, id: BlobId) -> Option<&Entry> {
        self.in_flight.get(&id)
    }

    /// How a blob ended, once it has.
    pub fn finished(&self, id: BlobId) -> Option<&Finished> {
        self.finished.get(&id)
    }

    /// The overall figures now.
    pub fn overall(&self) -> Overall {
        // The plan's figures are estimates for daemon images: never show less than started.
        let expected = self.planned.bytes.max(self.started_bytes);
        Overall {
            sent: self.sent,
            to_send: expected.saturating_sub(self.skipped).max(self.sent),
            skipped: self.skipped,
            blobs_done: self.done,
            blobs: self.planned.blobs.max(self.started_blobs),
            in_flight: self.in_flight.len(),
            failed: self.failed,
            abandoned: self.abandoned,
        }
    }

    pub(crate) fn run_started(&mut self, totals: &RunTotals) {
        self.planned = *totals;
    }

    pub(crate) fn rename(&mut self, id: BlobId, label: &str) {
        if let Some(entry) = self.in_flight.get_mut(&id) {
            entry.label = label.to_string();
        }
    }

    pub(crate) fn blob_started(&mut self, id: BlobId, label: &str, total: u64, now: Duration) {
        self.started_bytes += total;
        self.started_blobs += 1;
        self.in_flight.insert(
            id,
            Entry {
                label: label.to_string(),
                total,
                position: 0,
                retries: 0,
                state: None,
                compressed: false,
                started: now,
            },
        );
    }

    /// The state a blob in flight is in, if it has announced one.
    pub(crate) fn state_of(&self, id: BlobId) -> Option<BlobState> {
        self.in_flight.get(&id).and_then(|entry| entry.state)
    }

    pub(crate) fn state(&mut self, id: BlobId, state: BlobState, now: Duration) -> Option<&Entry> {
        let entry = self.in_flight.get_mut(&id)?;
        // Its turn to stream came: the wait for it is no part of its transfer.
        if entry.state == Some(BlobState::Waiting) {
            entry.started = now;
        }
        entry.compressed |= state == BlobState::Compressing;
        entry.state = Some(state);
        Some(entry)
    }

    pub(crate) fn progress(&mut self, id: BlobId, bytes: u64) {
        if let Some(entry) = self.in_flight.get_mut(&id) {
            entry.position += bytes;
            self.sent += bytes;
        }
    }

    /// A retry starts the blob over: what it had read is not sent after all.
    pub(crate) fn restarted(&mut self, id: BlobId) -> Option<&Entry> {
        let entry = self.in_flight.get_mut(&id)?;
        self.sent = self.sent.saturating_sub(entry.position);
        entry.position = 0;
        entry.retries += 1;
        Some(entry)
    }

    pub(crate) fn end(
        &mut self,
        id: BlobId,
        outcome: BlobOutcome,
        now: Duration,
    ) -> Option<&Finished> {
        let entry = self.in_flight.remove(&id)?;
        let rest = entry.total.saturating_sub(entry.position);
        let bytes = match outcome {
            BlobOutcome::Existing | BlobOutcome::Mounted => {
                self.skipped += rest;
                entry.position
            }
            // Every source byte was read, even if some progress went unreported.
            BlobOutcome::Uploaded => {
                self.sent += rest;
                entry.total.max(entry.position)
            }
            // Read, perhaps sent, but not in the registry: no longer counted as sent.
            BlobOutcome::Failed | BlobOutcome::Interrupted => {
                self.sent = self.sent.saturating_sub(entry.position);
                self.abandoned += entry.position;
                entry.position
            }
        };
        // A blob that failed or was stopped is no longer in flight, but not done either.
        if matches!(outcome, BlobOutcome::Failed | BlobOutcome::Interrupted) {
            self.failed += 1;
        } else {
            self.done += 1;
        }
        let took = now.saturating_sub(entry.started);
        self.finished.insert(
            id,
            Finished {
                entry,
                outcome,
                bytes,
                took,
            },
        );
        self.finished.get(&id)
    }
}

/// The ledger of a run, shared by the engine (which writes it) and the reporters (which read
/// it).
#[derive(Debug, Default)]
pub struct RunLedger {
    books: Mutex<Ledger>,
}

impl RunLedger {
    /// Reads the books.
    pub fn read<T>(&self, f: impl FnOnce(&Ledger) -> T) -> T {
        // A poisoned lock only means a reporter panicked mid-event; the books are still whole.
        f(&self.books.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        f(&mut self.books.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// A run of 1000 bytes in three blobs (100, 300, 600), all started.
    fn three_blobs_started() -> Ledger {
        let mut ledger = Ledger::default();
        ledger.run_started(&RunTotals {
            images: 1,
            blobs: 3,
            bytes: 1000,
        });
        ledger.blob_started(1, "config", 100, at(0));
        ledger.blob_started(2, "layer 1", 300, at(0));
        ledger.blob_started(3, "layer 2", 600, at(0));
        ledger
    }

    #[test]
    fn a_blob_that_waited_its_turn_is_timed_from_its_turn() {
        let mut ledger = three_blobs_started();
        ledger.state(2, BlobState::Checking, at(10));
        ledger.state(2, BlobState::Waiting, at(20));
        let entry = ledger.state(2, BlobState::Uploading, at(900)).unwrap();
        assert_eq!(entry.started, at(900));
        // One that never waited keeps the time it started at.
        ledger.state(3, BlobState::Checking, at(10));
        let entry = ledger.state(3, BlobState::Uploading, at(30)).unwrap();
        assert_eq!(entry.started, at(0));
    }

    #[test]
    fn skipped_blobs_leave_the_total_and_retries_take_back_their_bytes() {
        let mut ledger = three_blobs_started();
        assert!(ledger.end(1, BlobOutcome::Existing, at(0)).is_some());
        ledger.progress(2, 200);
        ledger.restarted(2);
        ledger.progress(2, 300);
        let f = ledger.end(2, BlobOutcome::Uploaded, at(0)).unwrap();
        assert_eq!(f.bytes, 300);
        ledger.progress(3, 100);
        assert_eq!(
            ledger.overall(),
            Overall {
                sent: 400,
                to_send: 900,
                skipped: 100,
                blobs_done: 2,
                blobs: 3,
                in_flight: 1,
                failed: 0,
                abandoned: 0,
            }
        );
        ledger.end(3, BlobOutcome::Mounted, at(0));
        let o = ledger.overall();
        assert_eq!((o.sent, o.to_send, o.skipped), (400, 400, 600));
    }

    #[test]
    fn more_than_the_estimate_grows_the_total() {
        let mut ledger = Ledger::default();
        ledger.run_started(&RunTotals {
            images: 1,
            blobs: 1,
            bytes: 10,
        });
        ledger.blob_started(7, "layer", 50, at(0));
        ledger.blob_started(8, "layer", 0, at(0));
        ledger.progress(8, 70);
        let o = ledger.overall();
        assert_eq!((o.to_send, o.blobs), (70, 2));
    }

    #[test]
    fn a_failed_blob_takes_its_bytes_back_and_is_counted_failed() {
        let mut ledger = three_blobs_started();
        ledger.progress(1, 100);
        ledger.end(1, BlobOutcome::Uploaded, at(0));
        ledger.progress(2, 300);
        ledger.end(2, BlobOutcome::Uploaded, at(0));
        // Every byte read and sent, then the registry refused the blob.
        ledger.progress(3, 600);
        let f = ledger.end(3, BlobOutcome::Failed, at(0)).unwrap();
        assert_eq!(f.bytes, 600);
        let o = ledger.overall();
        assert_eq!(
            (
                o.sent,
                o.to_send,
                o.blobs_done,
                o.blobs,
                o.failed,
                o.abandoned
            ),
            (400, 1000, 2, 3, 1, 600)
        );
    }
}
