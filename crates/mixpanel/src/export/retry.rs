//! When to send: backoff after failures, `Retry-After`, and a "not before"
//! instant all workers share after a 429.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Backoff for 429, 5xx, transport errors and unconfirmed replies: the n-th
/// retry waits `min(base_delay * 2^(n-1), max_delay)` plus a uniform jitter
/// in `jitter_min..=jitter_max`, or the server's `Retry-After` when that is
/// longer. Defaults follow Mixpanel's advice (2 s doubling to 60 s, 1–5 s
/// jitter), with 8 attempts in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub jitter_min: Duration,
    pub jitter_max: Duration,
    /// Attempts per batch, the first one included.
    pub max_attempts: u32,
    /// Longest `Retry-After` honoured (a server asking for an hour is
    /// believed only this far).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            jitter_min: Duration::from_secs(1),
            jitter_max: Duration::from_secs(5),
            max_attempts: 8,
            max_retry_after: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(
            1u32.checked_shl(retry.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let backoff = exp.min(self.max_delay);
        let (lo, hi) = (
            self.jitter_min.as_micros() as u64,
            self.jitter_max.as_micros() as u64,
        );
        let jitter = if hi > lo { fastrand::u64(lo..=hi) } else { lo };
        backoff + Duration::from_micros(jitter)
    }

    /// The wait before retry `retry`, honouring the server's `Retry-After`.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.delay(retry);
        match retry_after {
            Some(asked) => backoff.max(asked.min(self.max_retry_after)),
            None => backoff,
        }
    }
}

/// The instant before which no worker sends (pushed forward by 429s).
#[derive(Debug)]
pub(crate) struct Gate(Mutex<Instant>);

impl Gate {
    pub(crate) fn new() -> Self {
        Gate(Mutex::new(Instant::now()))
    }

    pub(crate) fn not_before(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn hold_until(&self, until: Instant) {
        let mut at = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *at = (*at).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            jitter_min: Duration::ZERO,
            jitter_max: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(1), Duration::from_secs(2));
        assert_eq!(p.delay(2), Duration::from_secs(4));
        assert_eq!(p.delay(5), Duration::from_secs(32));
        assert_eq!(p.delay(6), Duration::from_secs(60));
        assert_eq!(p.delay(40), Duration::from_secs(60));
        let d = RetryPolicy::default().delay(1);
        assert!(d >= Duration::from_secs(3) && d <= Duration::from_secs(7));
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = RetryPolicy {
            jitter_min: Duration::ZERO,
            jitter_max: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(9))),
            Duration::from_secs(9)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(1))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(600)
        );
    }
}
