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

/// `sources 1/4 · 12.00 MiB read of 40.00 MiB · 52000 records · 91000 records/s`
impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::text::human_bytes;
        let (done, all) = (self.sources_done, self.sources);
        write!(
            f,
            "sources {done}/{all} · {} read",
            human_bytes(self.bytes_read)
        )?;
        if let Some(total) = self.bytes_total {
            write!(f, " of {}", human_bytes(total))?;
        }
        let rate = self.records as f64 / self.elapsed.as_secs_f64().max(1e-9);
        write!(f, " · {} records · {rate:.0} records/s", self.records)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_one_line() {
        let mut progress = Progress {
            sources: 4,
            sources_done: 1,
            records: 50_000,
            bytes_read: 3 << 20,
            bytes_total: Some(12 << 20),
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(
            progress.to_string(),
            "sources 1/4 · 3.00 MiB read of 12.00 MiB · 50000 records · 25000 records/s"
        );
        progress.bytes_total = None;
        assert!(
            progress
                .to_string()
                .starts_with("sources 1/4 · 3.00 MiB read · ")
        );
    }
}
