//! Where logs go and how they are stamped: stderr, except while progress bars are drawn, when
//! each log line is printed through the bars' [`MultiProgress`] (above them) so bars and logs do
//! not overwrite each other; each stamped with the run's time, as progress lines are. The tracing
//! subscriber is set up before any bar exists, so the bars register themselves here.

use std::io::Write;
use std::sync::Mutex;

use indicatif::MultiProgress;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;

use super::{run_start, stamp};

static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Send log lines through these bars until [`detach`].
pub fn attach(multi: MultiProgress) {
    *BARS.lock().unwrap_or_else(|p| p.into_inner()) = Some(multi);
}

/// Back to plain stderr.
pub fn detach() {
    *BARS.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Log lines' time: `[   1.2s]` since the run started, the progress lines' stamp, rather than a
/// wall-clock date that no other line of the run shows.
#[derive(Clone, Copy, Default)]
pub struct RunTime;

impl FormatTime for RunTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", stamp(run_start().elapsed()))
    }
}

/// The tracing writer: one buffer per event, written out whole when the event ends.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

pub struct EventBuffer(Vec<u8>);

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer(Vec::new())
    }
}

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let bars = BARS.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bars {
            Some(multi) => {
                let text = String::from_utf8_lossy(&self.0);
                let _ = multi.println(text.trim_end_matches('\n'));
            }
            None => {
                let _ = std::io::stderr().write_all(&self.0);
            }
        }
    }
}
