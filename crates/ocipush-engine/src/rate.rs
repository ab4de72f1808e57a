//! `--limit-rate`: one budget of bytes per second for every upload body of the run, so a push
//! over a shared link leaves room for the rest. Each chunk reserves its time on a virtual clock
//! and waits (asynchronously) until then; a short burst is allowed so an idle limit does not
//! hold back the first chunks.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use ocipush_registry::BodyChunk;

/// How far ahead of the clock sending may run after an idle spell.
const BURST: Duration = Duration::from_millis(100);

/// A run-wide upload rate.
#[derive(Debug)]
pub(crate) struct RateLimit {
    bytes_per_second: f64,
    /// When the bytes reserved so far will have been sent at the limit.
    next: Mutex<Instant>,
}

impl RateLimit {
    pub fn new(bytes_per_second: u64) -> RateLimit {
        RateLimit {
            bytes_per_second: bytes_per_second.max(1) as f64,
            // Idle since forever: the first burst goes at once.
            next: Mutex::new(
                Instant::now()
                    .checked_sub(BURST)
                    .unwrap_or_else(Instant::now),
            ),
        }
    }

    /// Reserves `bytes` and says how long to wait before sending them.
    fn reserve(&self, bytes: usize, now: Instant) -> Duration {
        let mut next = self.next.lock().expect("not poisoned");
        let earliest = now.checked_sub(BURST).unwrap_or(now);
        if *next < earliest {
            *next = earliest;
        }
        let start = *next;
        *next += Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        start.saturating_duration_since(now)
    }
}

/// The body, each chunk let through no faster than `limit` allows (all of it, without one).
pub(crate) fn throttled(
    body: impl Stream<Item = BodyChunk> + Send + 'static,
    limit: Option<std::sync::Arc<RateLimit>>,
) -> impl Stream<Item = BodyChunk> + Send + 'static {
    body.then(move |chunk| {
        let limit = limit.clone();
        async move {
            if let (Some(limit), Ok(bytes)) = (&limit, &chunk) {
                let wait = limit.reserve(bytes.len(), Instant::now());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            chunk
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_follow_the_rate_after_a_burst() {
        let limit = RateLimit::new(1000);
        let now = Instant::now();
        // The first 100 ms worth go at once (burst), then each 100 bytes costs 100 ms.
        assert_eq!(limit.reserve(100, now), Duration::ZERO);
        let second = limit.reserve(100, now);
        assert!(second <= Duration::from_millis(1), "{second:?}");
        let third = limit.reserve(100, now);
        assert!(
            third >= Duration::from_millis(99) && third <= Duration::from_millis(101),
            "{third:?}"
        );
        // After an idle second, only the burst is forgiven, not the whole second.
        let later = now + Duration::from_secs(2);
        assert_eq!(limit.reserve(100, later), Duration::ZERO);
        let after = limit.reserve(100, later);
        assert!(after <= Duration::from_millis(1), "{after:?}");
        assert!(limit.reserve(100, later) >= Duration::from_millis(99));
    }
}
