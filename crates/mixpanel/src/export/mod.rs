//! Delivery to Mixpanel's `/import` (see [`Exporter`]).

mod batch;
mod pace;
mod request;
mod retry;

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use batch::{BatchLimits, Batcher};
pub use pace::MIXPANEL_BYTES_PER_MINUTE;
pub use retry::RetryPolicy;

use crate::client::{BodyFormat, Client, ClientConfig};
use crate::prepare::Mapped;

/// Everything the exporter needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportConfig {
    pub client: ClientConfig,
    /// Worker threads, each with at most one request in flight (default 10).
    pub concurrency: usize,
    pub batch: BatchLimits,
    pub format: BodyFormat,
    /// Gzip request bodies (default on).
    pub gzip: bool,
    pub retry: RetryPolicy,
    /// Most uncompressed bytes sent per minute (`None`: no cap). Default:
    /// Mixpanel's documented per-project rate, [`MIXPANEL_BYTES_PER_MINUTE`].
    pub max_bytes_per_minute: Option<u64>,
    /// Stops the exporter built from this config (clones share it).
    pub cancel: CancelHandle,
}

impl ExportConfig {
    pub fn new(client: ClientConfig) -> Self {
        ExportConfig {
            client,
            concurrency: 10,
            batch: BatchLimits::default(),
            format: BodyFormat::Ndjson,
            gzip: true,
            retry: RetryPolicy::default(),
            max_bytes_per_minute: Some(MIXPANEL_BYTES_PER_MINUTE),
            cancel: CancelHandle::default(),
        }
    }
}

/// Why an event was not imported after it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// A partial 400 named this record.
    MixpanelRejectedRecord,
    /// A 400 refused the whole batch.
    MixpanelRejectedBatch,
    /// 413 for this event alone.
    PayloadTooLarge,
    /// 429, 5xx or network errors until the attempts ran out.
    RetriesExhausted,
    /// Replies never confirmed the event (a 200 that does not count it, a
    /// 400 that cannot be placed) until the attempts ran out.
    Unconfirmed,
    /// A status `/import` does not document.
    UnexpectedStatus,
    EncodingFailed,
}

impl DeliveryFailure {
    /// A stable snake_case key.
    pub const fn reason(self) -> &'static str {
        match self {
            DeliveryFailure::MixpanelRejectedRecord => "mixpanel_rejected_record",
            DeliveryFailure::MixpanelRejectedBatch => "mixpanel_rejected_batch",
            DeliveryFailure::PayloadTooLarge => "payload_too_large",
            DeliveryFailure::RetriesExhausted => "retries_exhausted",
            DeliveryFailure::Unconfirmed => "unconfirmed",
            DeliveryFailure::UnexpectedStatus => "unexpected_status",
            DeliveryFailure::EncodingFailed => "encoding_failed",
        }
    }

    /// Whether sending the event again later can succeed (Mixpanel did not
    /// refuse the event itself). The dead letter replay sends these.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            DeliveryFailure::RetriesExhausted
                | DeliveryFailure::Unconfirmed
                | DeliveryFailure::UnexpectedStatus
                | DeliveryFailure::EncodingFailed
        )
    }

    pub const ALL: [DeliveryFailure; 7] = [
        DeliveryFailure::MixpanelRejectedRecord,
        DeliveryFailure::MixpanelRejectedBatch,
        DeliveryFailure::PayloadTooLarge,
        DeliveryFailure::RetriesExhausted,
        DeliveryFailure::Unconfirmed,
        DeliveryFailure::UnexpectedStatus,
        DeliveryFailure::EncodingFailed,
    ];

    /// The failure of a reason key.
    pub fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.reason() == reason)
    }
}

/// The final outcome of one submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Mixpanel confirmed it.
    Imported,
    /// Not imported, for good (this run): belongs in the dead letter.
    Failed {
        failure: DeliveryFailure,
        detail: String,
    },
    /// The export stopped (fatal error or cancel) before it was resolved.
    Unresolved,
}

impl Delivery {
    fn failed(failure: DeliveryFailure, detail: &str) -> Self {
        Delivery::Failed {
            failure,
            detail: detail.to_owned(),
        }
    }
}

/// One event's final outcome, with the tag it was submitted with and its
/// JSON (as sent) for a dead letter; `json` is empty for an imported event.
#[derive(Debug)]
pub struct Resolved<'a, T> {
    pub tag: &'a T,
    pub delivery: &'a Delivery,
    pub json: &'a [u8],
}

/// Receives the final outcome of every submitted event, a batch at a time,
/// from the exporter's worker threads.
pub trait DeliveryObserver<T>: Send + Sync {
    fn resolved(&self, events: &[Resolved<'_, T>]);
}

/// What the exporter did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// Events passed to [`Exporter::submit`].
    pub submitted: u64,
    pub imported: u64,
    /// Not imported after sending, by [`DeliveryFailure::reason`].
    pub dead_lettered: BTreeMap<String, u64>,
    /// Submitted but neither imported nor dead-lettered because the export
    /// was cancelled or stopped by a fatal error (0 on a complete run).
    pub unresolved: u64,
    /// Batches formed from submitted events.
    pub batches: u64,
    /// HTTP requests made (retries and split halves included).
    pub requests: u64,
    pub retries: u64,
    /// 413 splits.
    pub splits: u64,
    /// Uncompressed body bytes of answered (200/400) requests.
    pub bytes_sent: u64,
    /// Replies by HTTP status.
    pub responses: BTreeMap<u16, u64>,
    /// The export was cancelled or stopped before everything was resolved.
    pub interrupted: bool,
}

impl DeliveryReport {
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    /// `submitted == imported + dead_lettered + unresolved`.
    pub fn is_balanced(&self) -> bool {
        self.submitted == self.imported + self.dead_lettered_total() + self.unresolved
    }

    fn record_status(&mut self, status: u16) {
        *self.responses.entry(status).or_default() += 1;
    }

    fn record(&mut self, delivery: &Delivery) {
        match delivery {
            Delivery::Imported => self.imported += 1,
            Delivery::Failed { failure, .. } => {
                *self
                    .dead_lettered
                    .entry(failure.reason().to_owned())
                    .or_default() += 1;
            }
            Delivery::Unresolved => self.unresolved += 1,
        }
    }
}

/// Why the export stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FatalError {
    #[error(
        "Mixpanel refused the credentials (HTTP {status}: {message}); stopped without retrying"
    )]
    Unauthorized { status: u16, message: String },
}

/// Errors of the exporter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// From [`Exporter::finish`]: the run stopped on a fatal error.
    #[error("{error}")]
    Failed {
        error: FatalError,
        report: Box<DeliveryReport>,
    },
    #[error("cannot start worker threads: {0}")]
    Spawn(io::Error),
}

/// [`Exporter::submit`] after the export stopped (a fatal error or a
/// cancel): the event was not taken. [`Exporter::finish`] says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the export has stopped")]
pub struct Stopped;

/// Stops an export from another thread (e.g. on Ctrl-C): workers finish the
/// request in flight, nothing new is sent, unsent events stay unresolved.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    pub fn cancel(&self) {
        tracing::info!("export cancelled");
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Events going out together: their JSON end to end, where each one is, and
/// the caller's tags.
///
/// Once the whole batch is encoded as a gzipped body, that body is kept
/// (for retries) and the uncompressed JSON dropped: ten requests in flight
/// would otherwise hold ten uncompressed batches. The JSON is read back from
/// the body only when an outcome needs it (a split, a partial retry, a dead
/// letter).
struct Batch<T> {
    json: Vec<u8>,
    ends: Vec<usize>,
    tags: Vec<T>,
    packed: Option<request::Packed>,
    unpacked: std::sync::OnceLock<Vec<u8>>,
}

impl<T> Batch<T> {
    fn new() -> Self {
        Self::with_json(Vec::new())
    }

    /// A batch writing its JSON into `json` (emptied).
    fn with_json(mut json: Vec<u8>) -> Self {
        json.clear();
        Batch {
            json,
            ends: Vec::new(),
            tags: Vec::new(),
            packed: None,
            unpacked: std::sync::OnceLock::new(),
        }
    }

    fn len(&self) -> usize {
        self.tags.len()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }

    /// The length of event `i`'s JSON (without reading a packed batch back).
    fn event_len(&self, i: usize) -> usize {
        self.ends[i] - self.start(i)
    }

    fn json(&self, i: usize) -> &[u8] {
        let all = match &self.packed {
            None => &self.json,
            Some(packed) => self.unpacked.get_or_init(|| packed.unpack(&self.ends)),
        };
        all.get(self.start(i)..self.ends[i]).unwrap_or_default()
    }

    /// Keeps `packed`, the whole batch's body, instead of the JSON, and
    /// returns the JSON's buffer.
    fn pack(&mut self, packed: request::Packed) -> Vec<u8> {
        self.packed = Some(packed);
        std::mem::take(&mut self.json)
    }

    /// The event's `$insert_id`, read back from its JSON (only a partial 400
    /// without indices needs it).
    fn insert_id(&self, i: usize) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Event {
            properties: Properties,
        }
        #[derive(serde::Deserialize)]
        struct Properties {
            #[serde(rename = "$insert_id")]
            insert_id: Option<String>,
        }
        serde_json::from_slice::<Event>(self.json(i))
            .ok()?
            .properties
            .insert_id
    }
}

struct State {
    report: DeliveryReport,
    fatal: Option<FatalError>,
}

struct Shared<T> {
    client: Client,
    format: BodyFormat,
    gzip: bool,
    retry: RetryPolicy,
    stop: Arc<AtomicBool>,
    gate: retry::Gate,
    /// Requests in flight, halved by 429s.
    limit: pace::Limit,
    rate: Option<pace::Rate>,
    /// Limits learned from 413s (never above the configured ones).
    max_events: AtomicUsize,
    max_bytes: AtomicUsize,
    state: Mutex<State>,
    observer: Arc<dyn DeliveryObserver<T>>,
    /// Batch JSON buffers given back once packed, for the next batches: a
    /// batch of megabytes is then written into pages already mapped, not
    /// faulted in afresh each time.
    spare_json: Mutex<Vec<Vec<u8>>>,
}

/// Spare batch buffers kept at most (each about a batch's bytes).
const SPARE_JSON: usize = 2;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Shared<T> {
    /// Sleeps until `deadline`; false when the export stopped meanwhile.
    fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// The batch limits as learned so far.
    fn limits(&self) -> BatchLimits {
        BatchLimits::new(
            self.max_events.load(Ordering::Relaxed),
            self.max_bytes.load(Ordering::Relaxed),
        )
    }

    fn fail(&self, error: FatalError) {
        self.stop.store(true, Ordering::SeqCst);
        lock(&self.state).fatal.get_or_insert(error);
    }

    /// Tightens the batch limits after a 413 for `events` events: to the
    /// limit the reply names, else to half of what was refused.
    fn learn_limit(&self, events: usize, note: &str) {
        let named = |unit: &str| -> Option<usize> {
            let at = note.find("max limit of ")? + "max limit of ".len();
            let rest = &note[at..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let number = digits.parse().ok()?;
            rest[digits.len()..]
                .trim_start()
                .starts_with(unit)
                .then_some(number)
        };
        if let Some(limit) = named("byte") {
            self.max_bytes.fetch_min(limit, Ordering::SeqCst);
        } else if let Some(limit) = named("event") {
            self.max_events.fetch_min(limit.max(1), Ordering::SeqCst);
        } else {
            self.max_events
                .fetch_min((events / 2).max(1), Ordering::SeqCst);
        }
    }
}

/// Delivery to Mixpanel's `/import`: batching, concurrent sending with
/// retries, and one final outcome per submitted event, reported to a
/// [`DeliveryObserver`].
///
/// Most programs use the exporter through `currents-pipeline`, which adds
/// sources, the dead letter and the checkpoint. Used alone:
///
/// ```no_run
/// use std::sync::{Arc, Mutex};
/// use currents_mixpanel::{
///     ClientConfig, Credentials, Delivery, DeliveryObserver, ExportConfig, Exporter, MapOptions,
///     Preparer, Resolved, Validator,
/// };
///
/// /// Counts what became of the events (a real observer would write a dead letter).
/// #[derive(Default)]
/// struct Count(Mutex<(u64, u64)>);
/// impl DeliveryObserver<u64> for Count {
///     fn resolved(&self, events: &[Resolved<'_, u64>]) {
///         let mut n = self.0.lock().unwrap();
///         for event in events {
///             match event.delivery {
///                 Delivery::Imported => n.0 += 1,
///                 _ => n.1 += 1,
///             }
///         }
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ExportConfig::new(ClientConfig::new(Credentials::from_env()?));
/// let count = Arc::new(Count::default());
/// let mut exporter = Exporter::new(config, count.clone())?;
/// let mut preparer = Preparer::new(MapOptions::default());
/// let validator = Validator::default();
/// let now = validator.now();
/// for (i, event) in currents_events::sample::sample_all(1).enumerate() {
///     if let Ok(mapped) = preparer.map(&event) {
///         if validator.validate(&mapped, now).is_ok() && exporter.submit(&mapped, i as u64).is_err() {
///             break; // stopped: finish() says why
///         }
///     }
/// }
/// let report = exporter.finish()?; // waits for every request
/// assert!(report.is_balanced());
/// # Ok(()) }
/// ```
///
/// # Responses
///
/// * 200: imported, but only when `num_records_imported` confirms every
///   event; otherwise the batch is sent again, and dead-lettered
///   `unconfirmed` once the attempts are spent.
/// * 400 with `failed_records`: the records it places (by `index`, checked
///   against `insert_id`, else by `insert_id`) are dead-lettered
///   (`mixpanel_rejected_record`). The others count as imported only when
///   the reply accounts for every event; if some refusals cannot be placed,
///   the rest is sent again (and dead-lettered `unconfirmed` in the end). A
///   400 without `failed_records` dead-letters the batch
///   (`mixpanel_rejected_batch`).
/// * 401/403: fatal — every worker stops, nothing is retried,
///   [`Exporter::finish`] returns [`ExportError::Failed`].
/// * 413: the batch is split in half and both halves are sent; the limit is
///   learned (from the reply's "max limit of N bytes/events", else half the
///   refused count) so later batches fit. A single event that still gets 413
///   is dead-lettered (`payload_too_large`).
/// * 429, 408, 5xx and transport errors: retried with exponential backoff plus
///   jitter ([`RetryPolicy`]), never sooner than a `Retry-After`; a 429 (or a
///   `Retry-After`) holds every worker back. After `max_attempts` the batch is
///   dead-lettered (`retries_exhausted`).
/// * Any other status dead-letters the batch (`unexpected_status`).
///
/// The `/import` exporter.
pub struct Exporter<T> {
    shared: Arc<Shared<T>>,
    sender: Option<SyncSender<Batch<T>>>,
    workers: Vec<JoinHandle<()>>,
    batcher: Batcher,
    current: Batch<T>,
    submitted: u64,
}

impl<T> std::fmt::Debug for Exporter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("client", &self.shared.client)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Exporter<T> {
    /// Starts the workers; every submitted event's outcome goes to `observer`.
    pub fn new(
        config: ExportConfig,
        observer: Arc<dyn DeliveryObserver<T>>,
    ) -> Result<Self, ExportError> {
        let client = Client::new(&config.client);
        let concurrency = config.concurrency.max(1);
        tracing::info!(
            url = client.url(),
            concurrency,
            max_events = config.batch.max_events,
            max_bytes = config.batch.max_bytes,
            gzip = config.gzip,
            "starting Mixpanel export"
        );
        let shared = Arc::new(Shared {
            client,
            format: config.format,
            gzip: config.gzip,
            retry: config.retry,
            stop: Arc::clone(&config.cancel.0),
            gate: retry::Gate::new(),
            limit: pace::Limit::new(concurrency),
            rate: pace::Rate::new(config.max_bytes_per_minute),
            max_events: AtomicUsize::new(config.batch.max_events),
            max_bytes: AtomicUsize::new(config.batch.max_bytes),
            state: Mutex::new(State {
                report: DeliveryReport::default(),
                fatal: None,
            }),
            observer,
            spare_json: Mutex::new(Vec::new()),
        });
        // One batch waits while every worker has one in flight: enough to keep
        // the workers busy, and memory stays at about (concurrency + 2) batches.
        let (sender, receiver) = sync_channel::<Batch<T>>(1);
        let receiver = Arc::new(Mutex::new(receiver));
        let mut workers = Vec::with_capacity(concurrency);
        for i in 0..concurrency {
            let worker_shared = Arc::clone(&shared);
            let receiver = Arc::clone(&receiver);
            let handle = std::thread::Builder::new()
                .name(format!("mixpanel-import-{i}"))
                .spawn(move || worker(&worker_shared, &receiver));
            match handle {
                Ok(h) => workers.push(h),
                Err(e) => {
                    shared.stop.store(true, Ordering::SeqCst);
                    drop(sender);
                    for w in workers {
                        let _ = w.join();
                    }
                    return Err(ExportError::Spawn(e));
                }
            }
        }
        Ok(Exporter {
            shared,
            sender: Some(sender),
            workers,
            batcher: Batcher::new(config.batch, config.format),
            current: Batch::new(),
            submitted: 0,
        })
    }

    /// Stops the export from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(Arc::clone(&self.shared.stop))
    }

    /// Queues one mapped, pre-validated event. Blocks while every worker is
    /// busy. `tag` comes back with its outcome.
    pub fn submit(&mut self, event: &Mapped<'_>, tag: T) -> Result<(), Stopped> {
        self.submit_json(event.json, tag)
    }

    /// [`Exporter::submit`] for an event already written as JSON.
    pub fn submit_json(&mut self, json: &[u8], tag: T) -> Result<(), Stopped> {
        if self.shared.stop.load(Ordering::SeqCst) {
            return Err(Stopped);
        }
        self.batcher.set_limits(self.shared.limits());
        if self.batcher.push(json.len()) && self.current.len() > 0 {
            self.flush()?;
        }
        self.current.json.extend_from_slice(json);
        self.current.ends.push(self.current.json.len());
        self.current.tags.push(tag);
        self.submitted += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Stopped> {
        let spare = lock(&self.shared.spare_json).pop().unwrap_or_default();
        let batch = std::mem::replace(&mut self.current, Batch::with_json(spare));
        let Some(sender) = &self.sender else {
            return Err(Stopped);
        };
        lock(&self.shared.state).report.batches += 1;
        // Fails only when every worker is gone: the batch stays unresolved.
        if let Err(failed) = sender.send(batch) {
            resolve_all(&self.shared, failed.0, Delivery::Unresolved);
            return Err(Stopped);
        }
        Ok(())
    }

    /// Sends what is left, waits for every request and returns the report
    /// (or the fatal error that stopped the run, with the report so far).
    pub fn finish(mut self) -> Result<DeliveryReport, ExportError> {
        if self.current.len() > 0 {
            if self.shared.stop.load(Ordering::SeqCst) {
                let batch = std::mem::replace(&mut self.current, Batch::new());
                resolve_all(&self.shared, batch, Delivery::Unresolved);
            } else {
                let _ = self.flush();
            }
        }
        drop(self.sender.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        let mut state = lock(&self.shared.state);
        state.report.submitted = self.submitted;
        state.report.interrupted = self.shared.stop.load(Ordering::SeqCst);
        let report = state.report.clone();
        match state.fatal.clone() {
            Some(error) => Err(ExportError::Failed {
                error,
                report: Box::new(report),
            }),
            None => Ok(report),
        }
    }
}

impl<T> Drop for Exporter<T> {
    fn drop(&mut self) {
        // Dropped without finish(): stop the workers rather than leak them.
        if !self.workers.is_empty() {
            self.shared.stop.store(true, Ordering::SeqCst);
            drop(self.sender.take());
            for worker in self.workers.drain(..) {
                let _ = worker.join();
            }
        }
    }
}

/// Reports one outcome for every event of `batch`.
fn resolve_all<T>(shared: &Shared<T>, batch: Batch<T>, delivery: Delivery) {
    let outcomes = vec![delivery; batch.len()];
    report(shared, &batch, &outcomes);
}

fn report<T>(shared: &Shared<T>, batch: &Batch<T>, outcomes: &[Delivery]) {
    {
        let mut state = lock(&shared.state);
        for delivery in outcomes {
            state.report.record(delivery);
        }
    }
    let resolved: Vec<Resolved<'_, T>> = outcomes
        .iter()
        .enumerate()
        .map(|(i, delivery)| Resolved {
            tag: &batch.tags[i],
            delivery,
            // Only a failure needs it; reading a packed batch back costs.
            json: match delivery {
                Delivery::Imported => &[],
                _ => batch.json(i),
            },
        })
        .collect();
    shared.observer.resolved(&resolved);
}

fn worker<T>(shared: &Shared<T>, receiver: &Mutex<Receiver<Batch<T>>>) {
    loop {
        let batch = match lock(receiver).recv() {
            Ok(batch) => batch,
            Err(_) => return,
        };
        if shared.stop.load(Ordering::SeqCst) {
            resolve_all(shared, batch, Delivery::Unresolved);
            continue;
        }
        let mut batch = batch;
        let outcomes = request::deliver(shared, &mut batch);
        report(shared, &batch, &outcomes);
    }
}
