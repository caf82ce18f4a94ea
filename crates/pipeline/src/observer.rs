//! Progress reported while a run goes on, for a progress bar or logs: the
//! pipeline itself never prints.

use std::time::Duration;

use currents_events::decode::RecordError;

/// How far a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    pub sources: usize,
    pub sources_done: usize,
    /// Records accounted for so far.
    pub records: u64,
    /// Bytes read from the sources (as stored).
    pub bytes_read: u64,
    /// Their total size, when every size is known.
    pub bytes_total: Option<u64>,
    pub elapsed: Duration,
}

/// Receives progress from the run's calling thread (keep it cheap).
pub trait Observer: Send + Sync {
    /// About every 8192 records, and when a source is done.
    fn progress(&self, _progress: &Progress) {}
    /// A record (or a damaged region) that could not be decoded.
    fn input_error(&self, _error: &RecordError) {}
    /// Every record of source `index` (in the run's [`crate::Sources`]) has
    /// its final outcome: the source is fully accounted for (a bucket
    /// object can be marked done, a queued batch deleted). Not called for a
    /// source whose records are left unresolved by a stop. May come from a
    /// delivery thread.
    fn source_resolved(&self, _index: usize, _name: &str) {}
}

/// Observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Observer for Quiet {}
