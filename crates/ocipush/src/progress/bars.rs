//! Progress bars on a terminal: one bar per blob in flight (bytes, rate, state) above one
//! overall bar for the run. A blob's bar leaves when it is done; the overall bar counts bytes
//! read and sent against what remains to send (blobs found in the registry leave the total).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ocipush_engine::{BlobId, BlobOutcome, BlobState, ImageReport, Reporter, RunLedger, RunTotals};

use super::{log_writer, outcome_word, state_word};
use crate::printer::human_bytes;

pub struct BarReporter {
    multi: MultiProgress,
    overall: ProgressBar,
    books: Mutex<Books>,
    blob_style: ProgressStyle,
}

struct Books {
    /// The engine's ledger of the run, read for every figure shown.
    ledger: Arc<RunLedger>,
    bars: HashMap<BlobId, ProgressBar>,
}

impl BarReporter {
    /// Bars on stderr, redrawn at most 10 times a second.
    pub fn new() -> Self {
        Self::with_target(ProgressDrawTarget::stderr_with_hz(10))
    }

    /// Bars drawn to `target` (tests draw to a hidden one and read the bars back).
    pub fn with_target(target: ProgressDrawTarget) -> Self {
        let blob_style = ProgressStyle::with_template(
            "{prefix:>24.dim} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        let overall_style = ProgressStyle::with_template(
            "{prefix:>24.bold} [{bar:30.green/blue}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(overall_style);
        overall.set_prefix("total");
        overall.enable_steady_tick(Duration::from_millis(200));
        // `-v` logs written while bars are drawn go above them instead of through them.
        log_writer::attach(multi.clone());
        BarReporter {
            multi,
            overall,
            books: Mutex::new(Books {
                ledger: Arc::default(),
                bars: HashMap::new(),
            }),
            blob_style,
        }
    }

    fn with_books<T>(&self, f: impl FnOnce(&mut Books) -> T) -> T {
        let mut books = self.books.lock().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut books);
        let o = books.ledger.read(|l| l.overall());
        self.overall.set_length(o.to_send);
        self.overall.set_position(o.sent);
        self.overall.set_message(format!(
            "{}, {} in flight, {} already there",
            o.blob_count(),
            o.in_flight,
            human_bytes(o.skipped)
        ));
        result
    }
}

impl Reporter for BarReporter {
    fn run_started(&self, totals: &RunTotals, ledger: &Arc<RunLedger>) {
        let _ = totals;
        self.with_books(|b| b.ledger = ledger.clone());
    }

    fn run_finished(&self) {
        self.with_books(|_| ());
        // Left as the books have it: `finish` would fill the bar, which after a failure or
        // Ctrl-C shows bytes that never went.
        self.overall.abandon();
        log_writer::detach();
    }

    fn image_started(&self, label: &str, destinations: &[String]) {
        let _ = self
            .multi
            .println(format!("pushing {label} -> {}", destinations.join(", ")));
    }

    fn blob_started(&self, id: BlobId, label: &str, total: u64) {
        self.with_books(|b| {
            let bar = self
                .multi
                .insert_before(&self.overall, ProgressBar::new(total));
            bar.set_style(self.blob_style.clone());
            bar.set_prefix(label.to_string());
            bar.set_message("waiting");
            b.bars.insert(id, bar);
        });
    }

    fn blob_named(&self, id: BlobId, label: &str) {
        self.with_books(|b| {
            if let Some(bar) = b.bars.get(&id) {
                bar.set_prefix(label.to_string());
            }
        });
    }

    fn blob_state(&self, id: BlobId, state: BlobState) {
        self.with_books(|b| {
            if let Some(bar) = b.bars.get(&id) {
                bar.set_message(state_word(state));
            }
        });
    }

    fn blob_progress(&self, id: BlobId, bytes: u64) {
        self.with_books(|b| {
            if let Some(bar) = b.bars.get(&id) {
                bar.inc(bytes);
            }
        });
    }

    fn blob_restarted(&self, id: BlobId, attempt: u32, reason: &str) {
        self.with_books(|b| {
            if let Some(bar) = b.bars.get(&id) {
                bar.set_position(0);
                bar.set_message(format!("retry {attempt}: {reason}"));
            }
        });
    }

    fn blob_finished(&self, id: BlobId, outcome: BlobOutcome) {
        self.with_books(|b| {
            if let Some(bar) = b.bars.remove(&id) {
                // Only an upload fills its bar: a blob found in the registry moved no bytes.
                match outcome {
                    BlobOutcome::Uploaded => bar.finish_with_message(outcome_word(outcome)),
                    _ => bar.abandon_with_message(outcome_word(outcome)),
                }
                self.multi.remove(&bar);
            }
        });
    }

    fn image_finished(&self, report: &ImageReport) {
        let _ = self.multi.println(crate::printer::image_line(report));
    }
}

impl Drop for BarReporter {
    fn drop(&mut self) {
        log_writer::detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: &BarReporter, id: BlobId) -> Option<(String, u64, Option<u64>)> {
        let books = r.books.lock().unwrap();
        books
            .bars
            .get(&id)
            .map(|b| (b.message().to_string(), b.position(), b.length()))
    }

    #[test]
    fn blob_bars_show_each_state_and_the_overall_bar_what_remains() {
        let bars = Arc::new(BarReporter::with_target(ProgressDrawTarget::hidden()));
        // The engine records into its ledger, then tells the bars.
        let r = ocipush_engine::Recorder::new(bars.clone());
        r.run_started(
            &RunTotals {
                images: 1,
                blobs: 3,
                bytes: 1000,
            },
            &Arc::default(),
        );
        r.blob_started(1, "config", 100);
        assert_eq!(message(&bars, 1), Some(("waiting".into(), 0, Some(100))));
        r.blob_state(1, BlobState::Checking);
        assert_eq!(message(&bars, 1).unwrap().0, "checking");
        r.blob_finished(1, BlobOutcome::Existing);
        assert_eq!(message(&bars, 1), None, "a finished blob's bar leaves");

        r.blob_started(2, "layer 1", 300);
        r.blob_state(2, BlobState::Mounting);
        assert_eq!(message(&bars, 2).unwrap().0, "mounting");
        r.blob_finished(2, BlobOutcome::Mounted);

        r.blob_started(3, "layer 2", 600);
        r.blob_state(3, BlobState::Compressing);
        r.blob_progress(3, 250);
        assert_eq!(
            message(&bars, 3),
            Some(("compressing".into(), 250, Some(600)))
        );
        r.blob_restarted(3, 1, "503");
        assert_eq!(
            message(&bars, 3),
            Some(("retry 1: 503".into(), 0, Some(600)))
        );
        r.blob_state(3, BlobState::Uploading);
        r.blob_progress(3, 600);
        assert_eq!(message(&bars, 3).unwrap().0, "uploading");
        // Existing and mounted blobs left the total: 600 bytes remain, all of them sent.
        assert_eq!(
            (bars.overall.position(), bars.overall.length()),
            (600, Some(600))
        );
        r.blob_finished(3, BlobOutcome::Uploaded);
        r.run_finished();
        assert!(bars.overall.is_finished());
        assert_eq!(
            bars.overall.message(),
            "3/3 blobs, 0 in flight, 400 B already there"
        );
    }
}
