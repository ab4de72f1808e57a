//! When and how long to wait before trying a request again: exponential backoff with jitter,
//! bounded, and `Retry-After` honoured when a registry sends it.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How many times to retry, and the backoff bounds.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// How many times a failed request is tried again; 0 sends each once.
    pub retries: u32,
    /// The wait before the first retry, doubled for each later one up to `max_delay`.
    pub base_delay: Duration,
    /// The longest backoff between retries; a registry's `Retry-After` may ask for more, within
    /// a wider bound.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based): the registry's `Retry-After` if it gave
    /// one (capped), else `base * 2^(attempt-1)` with ±50% jitter so parallel uploads spread out.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay * 6);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(0.5 + unit_jitter())
    }
}

/// A number in `[0, 1)` that differs between calls and processes: enough to spread parallel
/// retries apart, which is all jitter is for. std's `RandomState` draws fresh random keys for
/// each instance (from the OS once per thread, then incremented), so hashing nothing with it
/// gives such a number without a random-number crate.
fn unit_jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Reads `Retry-After` in its seconds form (the HTTP-date form is rare from registries).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let d1 = p.delay(1, None);
        assert!(
            d1 >= Duration::from_millis(125) && d1 <= Duration::from_millis(375),
            "{d1:?}"
        );
        let d10 = p.delay(10, None);
        assert!(d10 <= Duration::from_secs(15), "{d10:?}");
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn jitter_spreads_within_its_range() {
        let draws: Vec<f64> = (0..200).map(|_| unit_jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)), "{draws:?}");
        let low = draws.iter().filter(|j| **j < 0.5).count();
        assert!((40..=160).contains(&low), "{low} of 200 below 0.5");
        let mut distinct = draws.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert!(distinct.len() > 190, "{} distinct of 200", distinct.len());
    }

    #[test]
    fn reads_retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
