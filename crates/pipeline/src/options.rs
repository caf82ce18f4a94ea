//! What a run does with what it reads.

use currents_events::decode::DecodeOptions;
use currents_mixpanel::{MapOptions, Validator};

/// Events that fail the `/import` pre-validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidEvents {
    /// Counted `rejected` (with a dead-letter line), never handed to the sink.
    #[default]
    Reject,
    /// Handed to the sink anyway, the finding counted as a warning (`map`
    /// writes what the mapping gives, valid or not).
    Keep,
}

/// Events of types the glossary does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownTypes {
    /// Mapped by the naming convention and the field library.
    #[default]
    Map,
    /// Skipped (`unknown_event_type`), still read and checkpointed.
    Skip,
}

/// Which records keep their input record for the dead letter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeepInput {
    /// Those rejected before sending (their input is what to fix).
    #[default]
    Rejected,
    /// Every record: events refused after sending carry it too, at the cost
    /// of one input record of memory per event in flight.
    All,
    None,
}

/// What the sources hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Records {
    /// Currents exports (Avro, Custom HTTP, NDJSON), decoded and mapped.
    #[default]
    Currents,
    /// Dead letters written by a run: the mapped events of lines whose
    /// reason is retryable are sent again (validated as any event); other
    /// lines are skipped (`not_retryable`).
    DeadLetter,
}

/// Options of a [`crate::Pipeline`].
///
/// ```
/// use currents_pipeline::{InvalidEvents, PipelineOptions};
/// let mut options = PipelineOptions::default();
/// options.invalid = InvalidEvents::Keep;
/// options.threads = 1;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PipelineOptions {
    pub records: Records,
    pub decode: DecodeOptions,
    pub map: MapOptions,
    /// The one validator (and clock) of the run.
    pub validator: Validator,
    pub invalid: InvalidEvents,
    pub unknown_types: UnknownTypes,
    pub keep_input: KeepInput,
    /// Worker threads for decoding and mapping; 0: one per core. Several
    /// sources are read a source per worker; a single source in parallel
    /// pieces (NDJSON: whole lines, Avro: whole blocks, Custom HTTP: whole
    /// documents). The outcomes are the same as on one thread.
    pub threads: usize,
}

impl PipelineOptions {
    pub(crate) fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}
