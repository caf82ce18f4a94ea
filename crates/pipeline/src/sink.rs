//! Where mapped events go: NDJSON output, Mixpanel's `/import`, a dry run,
//! or nowhere (validation). A sink says of each event whether it is done
//! with it at once ([`Accepted::Written`]) or will report its outcome later
//! through the [`Resolver`] ([`Accepted::Pending`]).

use std::io::{self, Write};
use std::sync::Arc;

use currents_events::decode::Location;
use currents_mixpanel::{
    Batcher, CancelHandle, Client, DeliveryObserver, DeliveryReport, ExportConfig, ExportError,
    Exporter, FatalError, Resolved,
};
use serde_json::value::RawValue;

use crate::report::{DryRun, TypeKey};
use crate::run::Tracker;

/// One record handed to a sink: where it came from and, when kept, its
/// input. Opaque; a sink that reports outcomes later gives it back to the
/// [`Resolver`].
#[derive(Debug)]
pub struct RecordRef {
    /// The source's position in the run's [`crate::Sources`].
    pub(crate) index: usize,
    pub(crate) source: Arc<str>,
    pub(crate) location: Location,
    pub(crate) key: TypeKey,
    pub(crate) input: Option<Box<RawValue>>,
}

impl RecordRef {
    /// The source's position in the run's [`crate::Sources`].
    pub fn source_index(&self) -> usize {
        self.index
    }

    /// The source's name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The record's index in its source.
    pub fn record(&self) -> u64 {
        self.location.index
    }

    /// The Currents event type.
    pub fn event_type(&self) -> &str {
        self.key.name()
    }
}

/// What a sink did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accepted {
    /// Done with it (counted `written`).
    Written,
    /// Its outcome comes later, through the [`Resolver`].
    Pending,
}

/// Why a sink cannot take an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("cannot write the output: {0}")]
    Io(#[from] io::Error),
    /// The sink stopped (a fatal delivery error): [`Sink::finish`] says why.
    #[error("the sink has stopped")]
    Stopped,
    #[error("cannot start the export: {0}")]
    Start(String),
}

/// What a sink reports at the end.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SinkReport {
    pub delivery: Option<DeliveryReport>,
    /// What a dry run would have sent.
    pub dry_run: Option<DryRun>,
    /// Why delivery stopped early.
    pub fatal: Option<FatalError>,
}

/// Reports outcomes decided after [`Sink::accept`] returned.
#[derive(Clone)]
pub struct Resolver(pub(crate) Arc<Tracker>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl DeliveryObserver<RecordRef> for Resolver {
    fn resolved(&self, events: &[Resolved<'_, RecordRef>]) {
        self.0.delivered(events);
    }
}

/// A destination for mapped events, in input order.
pub trait Sink {
    /// Before the first event.
    fn start(&mut self, _resolver: Resolver) -> Result<(), SinkError> {
        Ok(())
    }

    /// One mapped event (`json`: `{"event":…,"properties":{…}}`).
    fn accept(&mut self, json: &[u8], record: RecordRef) -> Result<Accepted, SinkError>;

    /// Consecutive mapped events at once: `lines` holds them back to back,
    /// each event's JSON followed by `\n`, and `events` yields each one's
    /// JSON length and record, in order. Pushes onto `answers` what
    /// [`Sink::accept`] answers for each, up to the first error, which it
    /// returns (the events after it were not taken).
    ///
    /// By default [`Sink::accept`] for each event. A sink that writes the
    /// lines as they are ([`NdjsonSink`]) writes them in one piece instead
    /// of copying event by event.
    fn accept_lines(
        &mut self,
        lines: &[u8],
        events: &mut dyn Iterator<Item = (usize, RecordRef)>,
        answers: &mut Vec<Accepted>,
    ) -> Result<(), SinkError> {
        let mut at = 0;
        for (len, record) in events {
            let json = lines.get(at..at + len).unwrap_or_default();
            answers.push(self.accept(json, record)?);
            at += len + 1;
        }
        Ok(())
    }

    /// Stops early: pending events stay unresolved (the run failed).
    fn cancel(&mut self) {}

    /// After the last event: waits for pending outcomes.
    fn finish(&mut self) -> Result<SinkReport, SinkError>;
}

/// Mixpanel NDJSON, one event per line.
pub struct NdjsonSink<W: Write> {
    out: W,
}

impl<W: Write> NdjsonSink<W> {
    /// Writes to `out` (buffer it: events arrive one at a time).
    pub fn new(out: W) -> Self {
        NdjsonSink { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Sink for NdjsonSink<W> {
    fn accept(&mut self, json: &[u8], _record: RecordRef) -> Result<Accepted, SinkError> {
        self.out.write_all(json)?;
        self.out.write_all(b"\n")?;
        Ok(Accepted::Written)
    }

    /// The lines are written as they are: a worker mapped them on another
    /// core, and copying them event by event into the writer's buffer cost
    /// two workers ~13% of their CPU (BENCHMARKS.md).
    fn accept_lines(
        &mut self,
        lines: &[u8],
        events: &mut dyn Iterator<Item = (usize, RecordRef)>,
        answers: &mut Vec<Accepted>,
    ) -> Result<(), SinkError> {
        self.out.write_all(lines)?;
        answers.extend(events.map(|_| Accepted::Written));
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkReport, SinkError> {
        self.out.flush()?;
        Ok(SinkReport::default())
    }
}

/// Takes every event and keeps none (validation: the counts are the result).
#[derive(Debug, Default)]
pub struct DiscardSink;

impl Sink for DiscardSink {
    fn accept(&mut self, _json: &[u8], _record: RecordRef) -> Result<Accepted, SinkError> {
        Ok(Accepted::Written)
    }

    fn finish(&mut self) -> Result<SinkReport, SinkError> {
        Ok(SinkReport::default())
    }
}

/// Batches as an export would, sends nothing: the request count is the
/// export's (one [`Batcher`] for both).
#[derive(Debug)]
pub struct DryRunSink {
    batcher: Batcher,
    plan: DryRun,
}

impl DryRunSink {
    /// Batches as `config` would, reporting its endpoint, region and kind
    /// of credentials.
    pub fn new(config: &ExportConfig) -> Self {
        let plan = DryRun {
            endpoint: Client::new(&config.client).url().to_owned(),
            region: config.client.region.name(),
            credentials: config.client.credentials.kind(),
            ..DryRun::default()
        };
        DryRunSink {
            batcher: Batcher::new(config.batch, config.format),
            plan,
        }
    }

    /// Uncompressed bytes the requests would carry.
    pub fn bytes(&self) -> u64 {
        self.plan.batch_bytes
    }
}

impl Sink for DryRunSink {
    fn accept(&mut self, json: &[u8], _record: RecordRef) -> Result<Accepted, SinkError> {
        self.batcher.push(json.len());
        // The body length the batcher counts: the event and its separator.
        self.plan.batch_bytes += json.len() as u64 + 1;
        Ok(Accepted::Written)
    }

    fn finish(&mut self) -> Result<SinkReport, SinkError> {
        self.plan.batches = self.batcher.batches();
        Ok(SinkReport {
            dry_run: Some(self.plan.clone()),
            ..SinkReport::default()
        })
    }
}

/// Delivers to Mixpanel's `/import` through an [`Exporter`].
pub struct ImportSink {
    config: ExportConfig,
    exporter: Option<Exporter<RecordRef>>,
}

impl std::fmt::Debug for ImportSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ImportSink {
    pub fn new(config: ExportConfig) -> Self {
        ImportSink {
            config,
            exporter: None,
        }
    }

    /// Stops the delivery from another thread: requests in flight finish,
    /// nothing new is sent, unsent events stay unresolved.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.config.cancel.clone()
    }
}

impl Sink for ImportSink {
    fn start(&mut self, resolver: Resolver) -> Result<(), SinkError> {
        let exporter = Exporter::new(self.config.clone(), Arc::new(resolver))
            .map_err(|e| SinkError::Start(e.to_string()))?;
        self.exporter = Some(exporter);
        Ok(())
    }

    fn accept(&mut self, json: &[u8], record: RecordRef) -> Result<Accepted, SinkError> {
        let exporter = self.exporter.as_mut().ok_or(SinkError::Stopped)?;
        exporter
            .submit_json(json, record)
            .map_err(|_| SinkError::Stopped)?;
        Ok(Accepted::Pending)
    }

    fn cancel(&mut self) {
        self.config.cancel.cancel();
    }

    fn finish(&mut self) -> Result<SinkReport, SinkError> {
        let Some(exporter) = self.exporter.take() else {
            return Ok(SinkReport::default());
        };
        match exporter.finish() {
            Ok(report) => Ok(SinkReport {
                delivery: Some(report),
                ..SinkReport::default()
            }),
            Err(ExportError::Failed { error, report }) => Ok(SinkReport {
                delivery: Some(*report),
                fatal: Some(error),
                ..SinkReport::default()
            }),
            Err(e) => Err(SinkError::Start(e.to_string())),
        }
    }
}
