//! The binary's [`Reporter`]s: progress bars on a terminal, timestamped lines in a pipe or CI.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ocipush_engine::{BlobId, BlobOutcome, BlobState, ImageReport, ImageStatus, Reporter};

/// One bar per blob in flight, on stderr.
pub struct BarReporter {
    multi: MultiProgress,
    bars: Mutex<HashMap<BlobId, ProgressBar>>,
    style: ProgressStyle,
}

impl BarReporter {
    pub fn new() -> Self {
        let style = ProgressStyle::with_template(
            "{prefix:>24.dim} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        BarReporter {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
            style,
        }
    }

    fn with_bar(&self, id: BlobId, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bars.lock().expect("bars lock").get(&id) {
            f(bar);
        }
    }
}

impl Reporter for BarReporter {
    fn image_started(&self, label: &str, destinations: &[String]) {
        let _ = self
            .multi
            .println(format!("pushing {label} -> {}", destinations.join(", ")));
    }

    fn blob_started(&self, id: BlobId, label: &str, total: u64) {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(self.style.clone());
        bar.set_prefix(label.to_string());
        bar.set_message("waiting");
        self.bars.lock().expect("bars lock").insert(id, bar);
    }

    fn blob_state(&self, id: BlobId, state: BlobState) {
        let text = match state {
            BlobState::Checking => "checking",
            BlobState::Compressing => "compressing+uploading",
            BlobState::Uploading => "uploading",
        };
        self.with_bar(id, |bar| bar.set_message(text));
    }

    fn blob_progress(&self, id: BlobId, bytes: u64) {
        self.with_bar(id, |bar| bar.inc(bytes));
    }

    fn blob_restarted(&self, id: BlobId, attempt: u32, reason: &str) {
        self.with_bar(id, |bar| {
            bar.set_position(0);
            bar.set_message(format!("retry {attempt}: {reason}"));
        });
    }

    fn blob_finished(&self, id: BlobId, outcome: BlobOutcome) {
        if let Some(bar) = self.bars.lock().expect("bars lock").remove(&id) {
            let text = match outcome {
                BlobOutcome::Existing => "exists",
                BlobOutcome::Mounted => "mounted",
                BlobOutcome::Uploaded => "done",
                BlobOutcome::Failed => "failed",
            };
            bar.finish_with_message(text);
            self.multi.remove(&bar);
        }
    }

    fn image_finished(&self, report: &ImageReport) {
        let _ = self.multi.println(crate::printer::image_line(report));
    }
}

/// Plain lines with the time since start, for logs and CI.
pub struct LineReporter {
    started: Instant,
    labels: Mutex<HashMap<BlobId, String>>,
}

impl LineReporter {
    pub fn new() -> Self {
        LineReporter {
            started: Instant::now(),
            labels: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: &str) {
        eprintln!("[{:>7}] {text}", format_elapsed(self.started.elapsed()));
    }
}

fn format_elapsed(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Reporter for LineReporter {
    fn image_started(&self, label: &str, destinations: &[String]) {
        self.line(&format!("pushing {label} -> {}", destinations.join(", ")));
    }

    fn blob_started(&self, id: BlobId, label: &str, _total: u64) {
        self.labels
            .lock()
            .expect("labels lock")
            .insert(id, label.to_string());
    }

    fn blob_restarted(&self, id: BlobId, attempt: u32, reason: &str) {
        let label = self
            .labels
            .lock()
            .expect("labels lock")
            .get(&id)
            .cloned()
            .unwrap_or_default();
        self.line(&format!("{label}: retry {attempt} after: {reason}"));
    }

    fn blob_finished(&self, id: BlobId, outcome: BlobOutcome) {
        let label = self
            .labels
            .lock()
            .expect("labels lock")
            .remove(&id)
            .unwrap_or_default();
        let text = match outcome {
            BlobOutcome::Existing => "exists",
            BlobOutcome::Mounted => "mounted",
            BlobOutcome::Uploaded => "uploaded",
            BlobOutcome::Failed => "failed",
        };
        self.line(&format!("{label}: {text}"));
    }

    fn image_finished(&self, report: &ImageReport) {
        if report.status != ImageStatus::Pushed {
            return;
        }
        self.line(&crate::printer::image_line(report));
    }
}
