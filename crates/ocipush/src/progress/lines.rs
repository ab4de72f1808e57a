//! Progress as plain timestamped lines, for pipes, log files and CI: one line when an image
//! starts, when a blob starts moving bytes, when a blob ends (how, how much, how fast), on a
//! retry, an overall line at most every few seconds while bytes move, and one when an image ends.
//! Nothing is redrawn, so a log reads top to bottom.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocipush_engine::{
    BlobId, BlobOutcome, BlobState, Finished, ImageReport, ImageStatus, Reporter, RunLedger,
    RunTotals,
};

use super::{outcome_word, run_start, stamp, state_word};
use crate::printer::human_bytes;

/// How often, at most, an overall progress line is written while bytes move.
pub const OVERALL_EVERY: Duration = Duration::from_secs(5);

type Clock = Box<dyn Fn() -> Duration + Send + Sync>;

pub struct LineReporter {
    /// Time since the run started.
    clock: Clock,
    books: Mutex<Books>,
}

struct Books {
    out: Box<dyn Write + Send>,
    /// The engine's ledger of the run, read for every figure shown.
    ledger: Arc<RunLedger>,
    last_overall: Duration,
    /// When the push itself began (after the source was opened and the plan made): the
    /// overall rate is over the time since, not since the process started.
    began: Duration,
}

impl LineReporter {
    /// Lines on stderr, timed from the run's start (as log lines are).
    pub fn new() -> Self {
        let started = run_start();
        Self::with_output(
            Box::new(std::io::stderr()),
            Box::new(move || started.elapsed()),
        )
    }

    /// Lines into `out`, timed by `clock` (tests give both).
    pub fn with_output(out: Box<dyn Write + Send>, clock: Clock) -> Self {
        LineReporter {
            clock,
            books: Mutex::new(Books {
                out,
                ledger: Arc::default(),
                last_overall: Duration::ZERO,
                began: Duration::ZERO,
            }),
        }
    }

    fn with_books<T>(&self, f: impl FnOnce(&mut Books, Duration) -> T) -> T {
        let now = (self.clock)();
        // A poisoned lock only means another reporter call panicked; the books are still usable.
        let mut books = self.books.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut books, now)
    }
}

impl Books {
    fn line(&mut self, now: Duration, text: &str) {
        // Progress must never fail a push: a closed stderr just loses the line.
        let _ = writeln!(self.out, "{} {text}", stamp(now));
    }

    fn overall_line(&mut self, now: Duration) {
        let o = self.ledger.read(|l| l.overall());
        let percent = (o.sent * 100).checked_div(o.to_send).unwrap_or(100);
        let text = format!(
            "overall: {percent}%, {} of {}, {}/s; {}, {} in flight, {} already there",
            human_bytes(o.sent),
            human_bytes(o.to_send),
            human_bytes(rate(o.sent, now.saturating_sub(self.began))),
            o.blob_count(),
            o.in_flight,
            human_bytes(o.skipped),
        );
        self.line(now, &text);
        self.last_overall = now;
    }
}

/// Bytes per second over `elapsed` (0 for no time).
fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0;
    }
    (bytes as f64 / secs) as u64
}

fn finished_text(f: &Finished) -> String {
    let label = &f.entry.label;
    let took = f.took;
    match f.outcome {
        BlobOutcome::Uploaded => {
            let verb = if f.entry.compressed {
                "compressed and uploaded"
            } else {
                "uploaded"
            };
            format!(
                "{label}: {verb} {} in {:.1}s ({}/s)",
                human_bytes(f.bytes),
                took.as_secs_f64(),
                human_bytes(rate(f.bytes, took))
            )
        }
        BlobOutcome::Interrupted => format!(
            "{label}: {} after {} of {}",
            outcome_word(f.outcome),
            human_bytes(f.bytes),
            human_bytes(f.entry.total)
        ),
        BlobOutcome::Existing | BlobOutcome::Mounted | BlobOutcome::Failed => {
            format!("{label}: {}", outcome_word(f.outcome))
        }
    }
}

impl Reporter for LineReporter {
    fn run_started(&self, totals: &RunTotals, ledger: &Arc<RunLedger>) {
        self.with_books(|b, now| {
            b.ledger = ledger.clone();
            b.last_overall = now;
            b.began = now;
            let text = format!(
                "{} image(s), {} blob(s), {} at most (what the registry already has is skipped)",
                totals.images,
                totals.blobs,
                human_bytes(totals.bytes)
            );
            b.line(now, &text);
        });
    }

    fn run_finished(&self) {
        self.with_books(|b, now| b.overall_line(now));
    }

    fn image_started(&self, label: &str, destinations: &[String]) {
        self.with_books(|b, now| {
            b.line(
                now,
                &format!("pushing {label} -> {}", destinations.join(", ")),
            )
        });
    }

    fn blob_state(&self, id: BlobId, state: BlobState) {
        // Checking and mounting take a request each; only moving bytes deserves a line.
        if !matches!(state, BlobState::Compressing | BlobState::Uploading) {
            return;
        }
        self.with_books(|b, now| {
            let Some(text) = b.ledger.read(|l| {
                l.entry(id).map(|entry| {
                    format!(
                        "{}: {} {}",
                        entry.label,
                        state_word(state),
                        human_bytes(entry.total)
                    )
                })
            }) else {
                return;
            };
            b.line(now, &text);
        });
    }

    fn blob_progress(&self, _id: BlobId, _bytes: u64) {
        self.with_books(|b, now| {
            if now.saturating_sub(b.last_overall) >= OVERALL_EVERY {
                b.overall_line(now);
            }
        });
    }

    fn blob_restarted(&self, id: BlobId, attempt: u32, reason: &str) {
        self.with_books(|b, now| {
            let label = b
                .ledger
                .read(|l| l.entry(id).map(|e| e.label.clone()))
                .unwrap_or_default();
            b.line(now, &format!("{label}: retry {attempt}: {reason}"));
        });
    }

    fn blob_finished(&self, id: BlobId, outcome: BlobOutcome) {
        self.with_books(|b, now| {
            let _ = outcome;
            if let Some(text) = b.ledger.read(|l| l.finished(id).map(finished_text)) {
                b.line(now, &text);
            }
        });
    }

    fn image_finished(&self, report: &ImageReport) {
        if report.status != ImageStatus::Pushed {
            return;
        }
        self.with_books(|b, now| b.line(now, &crate::printer::image_line(report)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A reporter writing into a buffer, behind the engine's recorder, both timed by a clock
    /// the test sets (milliseconds).
    fn reporter() -> (ocipush_engine::Recorder, Shared, Arc<AtomicU64>) {
        let out = Shared::default();
        let ms = Arc::new(AtomicU64::new(0));
        let clock = ms.clone();
        let lines = LineReporter::with_output(
            Box::new(out.clone()),
            Box::new(move || Duration::from_millis(clock.load(Ordering::SeqCst))),
        );
        let clock = ms.clone();
        let r = ocipush_engine::Recorder::with_clock(
            Arc::new(lines),
            Box::new(move || Duration::from_millis(clock.load(Ordering::SeqCst))),
        );
        (r, out, ms)
    }

    fn text(out: &Shared) -> String {
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn a_blob_stopped_by_ctrl_c_says_how_far_it_got() {
        let (r, out, ms) = reporter();
        r.run_started(&RunTotals::default(), &Arc::default());
        r.blob_started(7, "layer 2/2 dddddddddddd", 10 * MIB);
        r.blob_state(7, BlobState::Compressing);
        r.blob_progress(7, 3 * MIB);
        ms.store(1_500, Ordering::SeqCst);
        r.blob_finished(7, BlobOutcome::Interrupted);
        assert_eq!(
            text(&out),
            "\
[   0.0s] 0 image(s), 0 blob(s), 0 B at most (what the registry already has is skipped)
[   0.0s] layer 2/2 dddddddddddd: compressing 10.0 MiB
[   1.5s] layer 2/2 dddddddddddd: stopped after 3.0 MiB of 10.0 MiB
"
        );
    }

    #[test]
    fn a_run_reads_as_timestamped_lines_with_every_state() {
        let (r, out, ms) = reporter();
        r.run_started(
            &RunTotals {
                images: 1,
                blobs: 4,
                bytes: 30 * MIB + 2048,
            },
            &Arc::default(),
        );
        r.image_started("oci:app:1.0", &["localhost:5000/app:1.0".into()]);
        r.blob_started(1, "config 0123456789ab", 2048);
        r.blob_state(1, BlobState::Checking);
        r.blob_finished(1, BlobOutcome::Existing);
        r.blob_started(2, "layer 1/3 aaaaaaaaaaaa", 10 * MIB);
        r.blob_state(2, BlobState::Checking);
        r.blob_state(2, BlobState::Mounting);
        ms.store(100, Ordering::SeqCst);
        r.blob_finished(2, BlobOutcome::Mounted);
        r.blob_started(3, "layer 2/3 bbbbbbbbbbbb", 10 * MIB);
        r.blob_state(3, BlobState::Checking);
        r.blob_state(3, BlobState::Compressing);
        r.blob_progress(3, 4 * MIB);
        ms.store(1_100, Ordering::SeqCst);
        r.blob_restarted(3, 1, "503 Service Unavailable");
        r.blob_progress(3, 10 * MIB);
        ms.store(2_100, Ordering::SeqCst);
        r.blob_finished(3, BlobOutcome::Uploaded);
        r.blob_started(4, "layer 3/3 cccccccccccc", 10 * MIB);
        r.blob_state(4, BlobState::Uploading);
        ms.store(5_100, Ordering::SeqCst);
        r.blob_progress(4, 5 * MIB);
        // Within 5 s of the last overall line: no new one.
        ms.store(6_100, Ordering::SeqCst);
        r.blob_progress(4, 4 * MIB);
        ms.store(10_100, Ordering::SeqCst);
        r.blob_progress(4, MIB);
        r.blob_finished(4, BlobOutcome::Failed);
        r.run_finished();
        let expected = "\
[   0.0s] 1 image(s), 4 blob(s), 30.0 MiB at most (what the registry already has is skipped)
[   0.0s] pushing oci:app:1.0 -> localhost:5000/app:1.0
[   0.0s] config 0123456789ab: exists
[   0.1s] layer 1/3 aaaaaaaaaaaa: mounted
[   0.1s] layer 2/3 bbbbbbbbbbbb: compressing 10.0 MiB
[   1.1s] layer 2/3 bbbbbbbbbbbb: retry 1: 503 Service Unavailable
[   2.1s] layer 2/3 bbbbbbbbbbbb: compressed and uploaded 10.0 MiB in 2.0s (5.0 MiB/s)
[   2.1s] layer 3/3 cccccccccccc: uploading 10.0 MiB
[   5.1s] overall: 75%, 15.0 MiB of 20.0 MiB, 2.9 MiB/s; 3/4 blobs, 1 in flight, 10.0 MiB already there
[  10.1s] overall: 100%, 20.0 MiB of 20.0 MiB, 2.0 MiB/s; 3/4 blobs, 1 in flight, 10.0 MiB already there
[  10.1s] layer 3/3 cccccccccccc: failed
[  10.1s] overall: 50%, 10.0 MiB of 20.0 MiB, 1013.9 KiB/s; 3/4 blobs, 1 failed, 0 in flight, 10.0 MiB already there
";
        assert_eq!(text(&out), expected);
    }
}
