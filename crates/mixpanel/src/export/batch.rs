//! Batching by Mixpanel's per-request limits: one rule for the exporter and
//! the dry run, so a dry run's request count is the export's.

use crate::client::BodyFormat;

/// Per-request limits. Defaults: 2000 events, 10 MB (10^7 bytes) uncompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchLimits {
    pub max_events: usize,
    /// Uncompressed body bytes, separators included.
    pub max_bytes: usize,
}

impl BatchLimits {
    /// Mixpanel's documented caps.
    pub const MIXPANEL: BatchLimits = BatchLimits {
        max_events: 2000,
        max_bytes: 10_000_000,
    };

    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        BatchLimits {
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(1),
        }
    }
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self::MIXPANEL
    }
}

/// Where batch boundaries fall for a stream of events, by their JSON sizes.
///
/// ```
/// use currents_mixpanel::{BatchLimits, Batcher, BodyFormat};
/// let mut batcher = Batcher::new(BatchLimits::new(2, 1000), BodyFormat::Ndjson);
/// assert!(batcher.push(10)); // the first event opens a batch
/// assert!(!batcher.push(10));
/// assert!(batcher.push(10)); // a third event does not fit: a new batch
/// assert_eq!(batcher.batches(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Batcher {
    limits: BatchLimits,
    format: BodyFormat,
    events: usize,
    bytes: usize,
    batches: u64,
}

impl Batcher {
    pub fn new(limits: BatchLimits, format: BodyFormat) -> Self {
        Batcher {
            limits,
            format,
            events: 0,
            bytes: 0,
            batches: 0,
        }
    }

    /// The body length of the open batch with one more event of `len` bytes.
    fn with(&self, len: usize) -> usize {
        match (self.format, self.events) {
            (BodyFormat::Ndjson, _) => self.bytes + len + 1,
            (BodyFormat::JsonArray, 0) => len + 2,
            (BodyFormat::JsonArray, _) => self.bytes + len + 1,
        }
    }

    /// Adds an event of `len` bytes of JSON. True when it opens a new batch
    /// (the batch before it, if any, is complete).
    pub fn push(&mut self, len: usize) -> bool {
        let opens = self.events == 0
            || self.events >= self.limits.max_events
            || self.with(len) > self.limits.max_bytes;
        if opens {
            self.events = 0;
            self.bytes = 0;
            self.batches += 1;
        }
        self.bytes = self.with(len);
        self.events += 1;
        opens
    }

    /// Tightens the limits for the batches still to come (a learned 413).
    pub fn set_limits(&mut self, limits: BatchLimits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Events in the open batch.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Uncompressed body bytes of the open batch.
    pub fn body_len(&self) -> usize {
        self.bytes
    }

    /// Batches opened so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_lengths_are_exact() {
        for format in [BodyFormat::Ndjson, BodyFormat::JsonArray] {
            let mut batcher = Batcher::new(BatchLimits::default(), format);
            let events = ["{\"a\":1}", "{}", "{\"event\":\"x\"}"];
            for e in events {
                batcher.push(e.len());
            }
            let body = match format {
                BodyFormat::Ndjson => events.iter().map(|e| format!("{e}\n")).collect::<String>(),
                BodyFormat::JsonArray => format!("[{}]", events.join(",")),
            };
            assert_eq!(batcher.body_len(), body.len(), "{format:?}");
        }
    }

    #[test]
    fn the_byte_limit_is_inclusive() {
        let mut batcher = Batcher::new(BatchLimits::new(100, 22), BodyFormat::Ndjson);
        assert!(batcher.push(10));
        assert!(!batcher.push(10)); // 22 bytes: fits exactly
        assert!(batcher.push(0));
        assert_eq!(batcher.batches(), 2);
    }
}
