//! Pacing to Mixpanel's per-project limits, so a large backfill does not
//! live in a 429 storm: a concurrency limit that halves on a 429 and grows
//! back by one after a window of successes (AIMD), and a cap on the
//! uncompressed bytes sent per second (Mixpanel documents about 2 GB of
//! JSON per minute per project).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Mixpanel's documented per-project ingestion rate: ~2 GB of uncompressed
/// JSON per minute.
pub const MIXPANEL_BYTES_PER_MINUTE: u64 = 2_000_000_000;

/// How many requests may be in flight: at most `max`, halved by a 429.
#[derive(Debug)]
pub(crate) struct Limit {
    max: usize,
    state: Mutex<LimitState>,
    freed: Condvar,
}

#[derive(Debug)]
struct LimitState {
    limit: usize,
    in_flight: usize,
    /// Successes since the limit last moved.
    successes: usize,
    /// Bumped by each decrease: a request sent before it says nothing about
    /// the new limit.
    generation: u64,
}

impl Limit {
    pub(crate) fn new(max: usize) -> Self {
        Limit {
            max: max.max(1),
            state: Mutex::new(LimitState {
                limit: max.max(1),
                in_flight: 0,
                successes: 0,
                generation: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot, returning its ticket; `None` when `stopped` says to
    /// give up.
    pub(crate) fn acquire(&self, stopped: impl Fn() -> bool) -> Option<u64> {
        let mut state = self.lock();
        while state.in_flight >= state.limit {
            if stopped() {
                return None;
            }
            state = self
                .freed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.in_flight += 1;
        Some(state.generation)
    }

    /// The request of `ticket` ended; `throttled` when it got a 429.
    pub(crate) fn release(&self, ticket: u64, throttled: bool) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if throttled {
            // Several 429s of one wave halve the limit once.
            if ticket == state.generation {
                state.limit = (state.limit / 2).max(1);
                state.generation += 1;
            }
            state.successes = 0;
            tracing::info!(limit = state.limit, "429: fewer requests in flight");
        } else if ticket == state.generation {
            state.successes += 1;
            // One more after a full window of successes: probe up slowly.
            if state.successes >= state.limit && state.limit < self.max {
                state.limit += 1;
                state.successes = 0;
            }
        }
        drop(state);
        self.freed.notify_all();
    }

    /// The limit now.
    #[cfg(test)]
    fn current(&self) -> usize {
        self.lock().limit
    }
}

/// A token bucket over uncompressed bytes.
#[derive(Debug)]
pub(crate) struct Rate {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl Rate {
    /// `per_minute` bytes a minute; `None`: no cap.
    pub(crate) fn new(per_minute: Option<u64>) -> Option<Self> {
        let per_minute = per_minute.filter(|&n| n > 0)? as f64;
        let per_second = per_minute / 60.0;
        Some(Rate {
            per_second,
            // Starts with one second's worth: no wait for the first request.
            state: Mutex::new((per_second, Instant::now())),
        })
    }

    /// Takes `bytes` tokens; how long to wait before sending them.
    pub(crate) fn take(&self, bytes: usize) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = *state;
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.per_second)
            .min(self.per_second);
        let left = refilled - bytes as f64;
        *state = (left, now);
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_halves_the_limit_and_successes_grow_it_back() {
        let limit = Limit::new(8);
        let (a, b) = (
            limit.acquire(|| false).unwrap(),
            limit.acquire(|| false).unwrap(),
        );
        limit.release(a, true);
        assert_eq!(limit.current(), 4);
        // A 429 and a success of the same wave: no second halving, no growth.
        limit.release(b, true);
        assert_eq!(limit.current(), 4);
        for _ in 0..4 {
            let t = limit.acquire(|| false).unwrap();
            limit.release(t, false);
        }
        assert_eq!(limit.current(), 5);
        for _ in 0..100 {
            let t = limit.acquire(|| false).unwrap();
            limit.release(t, false);
        }
        assert_eq!(limit.current(), 8, "never above the configured concurrency");
    }

    #[test]
    fn the_rate_cap_spaces_sends() {
        let rate = Rate::new(Some(60_000)).unwrap(); // 1,000 bytes a second
        assert_eq!(rate.take(1_000), Duration::ZERO);
        let wait = rate.take(500);
        assert!(
            wait >= Duration::from_millis(450) && wait <= Duration::from_millis(520),
            "{wait:?}"
        );
        assert!(Rate::new(None).is_none());
    }
}
