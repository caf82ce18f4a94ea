//! Delivery to Mixpanel's `/import`: validation, batching, concurrent
//! sending with retries, dead letters, checkpoint and accounting.
//!
//! # Use
//!
//! ```no_run
//! use currents_mixpanel::{
//!     ClientConfig, Credentials, DeadLetterWriter, ExportConfig, Exporter, MapOptions, Preparer,
//!     Source,
//! };
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ClientConfig::new(Credentials::from_env()?);
//! let dead_letter = DeadLetterWriter::append("dead-letter.ndjson".as_ref())?;
//! let mut config = ExportConfig::new(client, dead_letter);
//! config.checkpoint = Some("checkpoint.json".into());
//! let mut exporter = Exporter::new(config)?;
//! let start = exporter.checkpoint_position("events.ndjson"); // records to skip
//! let mut preparer = Preparer::new(MapOptions::default());
//! # let events: Vec<currents_events::Event> = vec![];
//! for (i, event) in events.iter().enumerate().skip(start as usize) {
//!     let source = Source::new("events.ndjson", i as u64).with_line(i as u64 + 1);
//!     match preparer.prepare(event, source.clone(), true) {
//!         Ok(prepared) => exporter.submit(prepared)?, // Err only once stopped
//!         Err(skip) => exporter.skip(source, skip.reason()),
//!     }
//! }
//! let report = exporter.finish()?;
//! assert!(report.is_balanced());
//! # Ok(()) }
//! ```
//!
//! Every record handed to the exporter ends in exactly one bucket of the
//! [`DeliveryReport`]: `skipped` (via [`Exporter::skip`], outside
//! `submitted`), `imported`, `rejected` (pre-validation, never sent),
//! `dead_lettered` (refused or undeliverable), or — only after
//! [`CancelHandle::cancel`] or a fatal error — `unresolved` (not recorded in
//! the checkpoint, so resuming sends them again). Rejected and dead-lettered
//! events each get one dead-letter line.
//!
//! # Responses
//!
//! * 200: the batch is imported.
//! * 400 with `failed_records`: those records (by `index`, else by
//!   `insert_id`/`$insert_id`) are dead-lettered (`mixpanel_rejected_record`)
//!   with Mixpanel's field and message, the others count as imported. A 400
//!   without `failed_records` dead-letters the batch (`mixpanel_rejected_batch`).
//!   400s are never retried.
//! * 401/403: fatal — every worker stops, nothing is retried,
//!   [`Exporter::finish`] returns [`ExportError::Failed`].
//! * 413: the batch is split in half and both halves are sent; a single event
//!   that still gets 413 is dead-lettered (`payload_too_large`).
//! * 429, 408, 5xx and transport errors: retried with exponential backoff plus
//!   jitter ([`RetryPolicy`]); a 429 also pushes a shared "not before" instant
//!   so all workers slow down together. After `max_attempts` the batch is
//!   dead-lettered (`retries_exhausted`).
//! * Any other status dead-letters the batch (`unexpected_status`).
//!
//! # Checkpoint
//!
//! With [`ExportConfig::checkpoint`], the exporter tracks per input file the
//! contiguous prefix of resolved records (see [`crate::checkpoint`]) and saves
//! it after every resolved batch and at the end. Records are identified by
//! [`Source::file`] and [`Source::record`]; every record of a file must be
//! passed to [`Exporter::submit`] or [`Exporter::skip`] (also records that
//! could not be decoded), or the checkpoint cannot move past it.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::checkpoint::{Checkpoint, Progress};
use crate::client::{BodyFormat, Client, ClientConfig, ImportResponse};
use crate::deadletter::DeadLetterWriter;
use crate::prepare::{PreparedEvent, Source};
use crate::validate::{EventLimits, Validator, now_secs};

/// Per-request limits. Defaults: 2000 events, 10 MB (10^7 bytes) uncompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_events: usize,
    /// Uncompressed body bytes, separators included.
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_events: 2000,
            max_bytes: 10_000_000,
        }
    }
}

/// Backoff for 429, 5xx and transport errors: the n-th retry waits
/// `min(base_delay * 2^(n-1), max_delay)` plus a uniform jitter in
/// `jitter_min..=jitter_max`. Defaults follow Mixpanel's advice (2 s doubling
/// to 60 s, 1–5 s jitter), with 8 attempts in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub jitter_min: Duration,
    pub jitter_max: Duration,
    /// Attempts per batch, the first one included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            jitter_min: Duration::from_secs(1),
            jitter_max: Duration::from_secs(5),
            max_attempts: 8,
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
}

/// Everything the exporter needs.
#[derive(Debug)]
pub struct ExportConfig {
    pub client: ClientConfig,
    /// Worker threads, each with at most one request in flight (default 10).
    pub concurrency: usize,
    pub batch: BatchLimits,
    pub format: BodyFormat,
    /// Gzip request bodies (default on).
    pub gzip: bool,
    pub retry: RetryPolicy,
    pub limits: EventLimits,
    /// "Now" for the `time` rules, in epoch seconds; `None`: the system clock.
    pub now: Option<i64>,
    pub dead_letter: DeadLetterWriter,
    /// Checkpoint file to resume from and keep up to date.
    pub checkpoint: Option<PathBuf>,
    /// Least time between checkpoint saves while running (default 1 s); the
    /// final save in [`Exporter::finish`] always happens.
    pub checkpoint_interval: Duration,
}

impl ExportConfig {
    pub fn new(client: ClientConfig, dead_letter: DeadLetterWriter) -> Self {
        ExportConfig {
            client,
            concurrency: 10,
            batch: BatchLimits::default(),
            format: BodyFormat::Ndjson,
            gzip: true,
            retry: RetryPolicy::default(),
            limits: EventLimits::default(),
            now: None,
            dead_letter,
            checkpoint: None,
            checkpoint_interval: Duration::from_secs(1),
        }
    }
}

/// What happened to every submitted event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Events passed to [`Exporter::submit`].
    pub submitted: u64,
    pub imported: u64,
    /// Pre-validation failures by [`crate::Rejection::reason`].
    pub rejected: BTreeMap<String, u64>,
    /// Not imported after sending, by reason.
    pub dead_lettered: BTreeMap<String, u64>,
    /// Submitted but neither imported nor dead-lettered because the export
    /// was cancelled or stopped by a fatal error (0 on a complete run).
    pub unresolved: u64,
    /// Records passed to [`Exporter::skip`] (not part of `submitted`).
    pub skipped: BTreeMap<String, u64>,
    /// Batches formed from submitted events.
    pub batches: u64,
    /// HTTP requests made (retries and split halves included).
    pub requests: u64,
    pub retries: u64,
    /// 413 splits.
    pub splits: u64,
    /// Uncompressed body bytes of successful (200/400) requests.
    pub bytes_sent: u64,
    /// The export was cancelled or stopped before everything was resolved.
    pub interrupted: bool,
}

impl DeliveryReport {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
    /// Records handed to the exporter: `submitted + skipped`.
    pub fn read(&self) -> u64 {
        self.submitted + self.skipped_total()
    }
    /// `submitted == imported + rejected + dead_lettered + unresolved`.
    pub fn is_balanced(&self) -> bool {
        self.submitted
            == self.imported + self.rejected_total() + self.dead_lettered_total() + self.unresolved
    }
}

/// Why the export stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FatalError {
    #[error(
        "Mixpanel refused the credentials (HTTP {status}: {message}); stopped without retrying"
    )]
    Unauthorized { status: u16, message: String },
    #[error("cannot write the dead letter: {0}")]
    DeadLetter(String),
    #[error("cannot save the checkpoint: {0}")]
    Checkpoint(String),
}

/// Errors of the exporter.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// From [`Exporter::submit`] once the export has stopped (fatal error or
    /// cancel); call [`Exporter::finish`] for the report and the cause.
    #[error("export stopped")]
    Stopped,
    /// From [`Exporter::finish`]: the run stopped on a fatal error.
    #[error("{error}")]
    Failed {
        error: FatalError,
        report: Box<DeliveryReport>,
    },
    #[error("checkpoint {path}: {source}")]
    CheckpointLoad { path: PathBuf, source: io::Error },
    #[error("cannot start worker threads: {0}")]
    Spawn(io::Error),
}

/// Stops an export from another thread (e.g. on Ctrl-C): workers finish the
/// request in flight, nothing new is sent, unsent events stay unresolved.
#[derive(Debug, Clone)]
pub struct CancelHandle(Arc<Shared>);

impl CancelHandle {
    pub fn cancel(&self) {
        tracing::info!("export cancelled");
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

struct State {
    report: DeliveryReport,
    dead_letter: DeadLetterWriter,
    progress: Progress,
    checkpoint: Option<(PathBuf, Checkpoint)>,
    checkpoint_dirty: bool,
    checkpoint_interval: Duration,
    last_save: Instant,
    fatal: Option<FatalError>,
}

struct Shared {
    client: Client,
    format: BodyFormat,
    gzip: bool,
    retry: RetryPolicy,
    stop: AtomicBool,
    cancelled: AtomicBool,
    not_before: Mutex<Instant>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

type Batch = Vec<PreparedEvent>;

/// The `/import` exporter. See the [module docs](self).
pub struct Exporter {
    shared: Arc<Shared>,
    sender: Option<SyncSender<Batch>>,
    workers: Vec<JoinHandle<()>>,
    validator: Validator,
    now: Option<i64>,
    limits: BatchLimits,
    current: Batch,
    current_bytes: usize,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("shared", &self.shared)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Exporter {
    /// Loads the checkpoint (if configured) and starts the workers.
    pub fn new(config: ExportConfig) -> Result<Self, ExportError> {
        let checkpoint = match &config.checkpoint {
            Some(path) => Some((
                path.clone(),
                Checkpoint::load(path).map_err(|source| ExportError::CheckpointLoad {
                    path: path.clone(),
                    source,
                })?,
            )),
            None => None,
        };
        let progress = checkpoint
            .as_ref()
            .map(|(_, c)| Progress::from_checkpoint(c))
            .unwrap_or_default();
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
            stop: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            not_before: Mutex::new(Instant::now()),
            state: Mutex::new(State {
                report: DeliveryReport::default(),
                dead_letter: config.dead_letter,
                progress,
                checkpoint,
                checkpoint_dirty: false,
                checkpoint_interval: config.checkpoint_interval,
                last_save: Instant::now(),
                fatal: None,
            }),
        });
        // One batch waits while every worker has one in flight: enough to keep
        // the workers busy, and memory stays at about (concurrency + 2) batches.
        let (sender, receiver) = sync_channel::<Batch>(1);
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
            validator: Validator::new(config.limits),
            now: config.now,
            limits: config.batch,
            current: Vec::new(),
            current_bytes: 0,
        })
    }

    /// Records of `file` the checkpoint says are done: skip them on resume.
    pub fn checkpoint_position(&self, file: &str) -> u64 {
        lock(&self.shared.state).progress.position(file)
    }

    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(Arc::clone(&self.shared))
    }

    /// Validates and queues one event. A rejected event is counted and
    /// dead-lettered at once. Blocks while all workers are busy. Fails only
    /// once the export has stopped.
    pub fn submit(&mut self, event: PreparedEvent) -> Result<(), ExportError> {
        if self.shared.stop.load(Ordering::SeqCst) {
            // Counted, so `read = submitted + skipped` holds; not resolved.
            let mut state = lock(&self.shared.state);
            state.report.submitted += 1;
            state.report.unresolved += 1;
            drop(event);
            return Err(ExportError::Stopped);
        }
        let now = self.now.unwrap_or_else(now_secs);
        if let Err(rejection) = self.validator.validate_at(&event, now) {
            let mut state = lock(&self.shared.state);
            state.report.submitted += 1;
            let detail = format!("pre-validation failed on {}", rejection.field());
            if dead_letter(
                &self.shared,
                &mut state,
                &event,
                rejection.reason(),
                &detail,
            ) {
                *state
                    .report
                    .rejected
                    .entry(rejection.reason().to_owned())
                    .or_default() += 1;
            }
            return Ok(());
        }
        // Counted with its batch (in `flush`): no lock per event.
        let size = event.json().len() + 1;
        if !self.current.is_empty()
            && (self.current.len() + 1 > self.limits.max_events
                || self.current_bytes + size + 1 > self.limits.max_bytes)
        {
            self.flush()?;
        }
        self.current.push(event);
        self.current_bytes += size;
        Ok(())
    }

    /// Counts a record that is not sent (not mapped, not decodable…) and
    /// lets the checkpoint move past it.
    pub fn skip(&mut self, source: Source, reason: &str) {
        let mut state = lock(&self.shared.state);
        *state.report.skipped.entry(reason.to_owned()).or_default() += 1;
        state.progress.resolve(&source.file, source.record);
        state.checkpoint_dirty = true;
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if self.current.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.current);
        self.current_bytes = 0;
        {
            let mut state = lock(&self.shared.state);
            state.report.batches += 1;
            state.report.submitted += batch.len() as u64;
        }
        let Some(sender) = &self.sender else {
            lock(&self.shared.state).report.unresolved += batch.len() as u64;
            return Err(ExportError::Stopped);
        };
        if let Err(e) = sender.send(batch) {
            let mut state = lock(&self.shared.state);
            state.report.unresolved += e.0.len() as u64;
            return Err(ExportError::Stopped);
        }
        Ok(())
    }

    /// A snapshot of the report so far (events of the batch still being
    /// filled are counted once it is sent).
    pub fn report(&self) -> DeliveryReport {
        lock(&self.shared.state).report.clone()
    }

    /// Sends what is left, waits for every worker and returns the report.
    pub fn finish(mut self) -> Result<DeliveryReport, ExportError> {
        if self.shared.stop.load(Ordering::SeqCst) {
            let n = self.current.len() as u64;
            self.current.clear();
            let mut state = lock(&self.shared.state);
            state.report.submitted += n;
            state.report.unresolved += n;
        } else {
            let _ = self.flush();
        }
        self.shutdown();
        let mut state = lock(&self.shared.state);
        if let Err(e) = state.dead_letter.flush() {
            state
                .fatal
                .get_or_insert(FatalError::DeadLetter(e.to_string()));
        }
        save_checkpoint(&mut state, true);
        state.report.interrupted = self.shared.stop.load(Ordering::SeqCst);
        let report = state.report.clone();
        tracing::info!(
            submitted = report.submitted,
            imported = report.imported,
            rejected = report.rejected_total(),
            dead_lettered = report.dead_lettered_total(),
            unresolved = report.unresolved,
            requests = report.requests,
            retries = report.retries,
            "Mixpanel export finished"
        );
        match state.fatal.clone() {
            Some(error) => Err(ExportError::Failed {
                error,
                report: Box::new(report),
            }),
            None => Ok(report),
        }
    }

    fn shutdown(&mut self) {
        self.sender = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            // Dropped without finish(): stop sending, leave the rest unresolved.
            self.shared.stop.store(true, Ordering::SeqCst);
            self.shutdown();
            let mut state = lock(&self.shared.state);
            let _ = state.dead_letter.flush();
            save_checkpoint(&mut state, true);
        }
    }
}

/// Writes one dead-letter line and resolves the record; false when the
/// write failed (the export then stops and the record stays unresolved).
fn dead_letter(
    shared: &Shared,
    state: &mut State,
    event: &PreparedEvent,
    reason: &str,
    detail: &str,
) -> bool {
    match state.dead_letter.write(event, reason, detail) {
        Ok(()) => {
            let source = event.source();
            state.progress.resolve(&source.file, source.record);
            state.checkpoint_dirty = true;
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write the dead letter; stopping");
            state.report.unresolved += 1;
            state
                .fatal
                .get_or_insert(FatalError::DeadLetter(e.to_string()));
            shared.stop.store(true, Ordering::SeqCst);
            false
        }
    }
}

fn save_checkpoint(state: &mut State, force: bool) {
    if !force && (!state.checkpoint_dirty || state.last_save.elapsed() < state.checkpoint_interval)
    {
        return;
    }
    let Some((path, checkpoint)) = &mut state.checkpoint else {
        return;
    };
    // Dead letters first, so the checkpoint never passes an unwritten line.
    if let Err(e) = state.dead_letter.flush() {
        state
            .fatal
            .get_or_insert(FatalError::DeadLetter(e.to_string()));
        return;
    }
    state.progress.apply(checkpoint);
    if let Err(e) = checkpoint.save(path) {
        tracing::error!(error = %e, "cannot save the checkpoint");
        state
            .fatal
            .get_or_insert(FatalError::Checkpoint(e.to_string()));
        return;
    }
    state.checkpoint_dirty = false;
    state.last_save = Instant::now();
}

fn worker(shared: &Shared, receiver: &Mutex<Receiver<Batch>>) {
    loop {
        let batch = match lock(receiver).recv() {
            Ok(batch) => batch,
            Err(_) => return,
        };
        if shared.stop.load(Ordering::SeqCst) {
            lock(&shared.state).report.unresolved += batch.len() as u64;
            continue;
        }
        deliver(shared, batch);
        let mut state = lock(&shared.state);
        save_checkpoint(&mut state, false);
    }
}

/// Outcome of one event of a request.
enum Outcome {
    Imported,
    Dead {
        reason: &'static str,
        detail: String,
    },
    Unresolved,
}

/// Writes the request body of `events` to `out`, taking each event's JSON
/// out as it goes (so a batch is never held twice). Returns the body's
/// uncompressed length and the length of each event's JSON.
fn write_body(
    events: &mut [PreparedEvent],
    format: BodyFormat,
    out: &mut impl Write,
) -> io::Result<(usize, Vec<usize>)> {
    let mut lens = Vec::with_capacity(events.len());
    let mut total = 0;
    let mut put = |bytes: &[u8]| {
        total += bytes.len();
        out.write_all(bytes)
    };
    if format == BodyFormat::JsonArray {
        put(b"[")?;
    }
    for (i, event) in events.iter_mut().enumerate() {
        let json = event.take_json();
        lens.push(json.len());
        match format {
            BodyFormat::Ndjson => {
                put(&json)?;
                put(b"\n")?;
            }
            BodyFormat::JsonArray => {
                if i > 0 {
                    put(b",")?;
                }
                put(&json)?;
            }
        }
    }
    if format == BodyFormat::JsonArray {
        put(b"]")?;
    }
    Ok((total, lens))
}

/// The request body of `events` (gzipped with `gzip`), its uncompressed
/// length and the length of each event's JSON. Compressing while writing
/// means the uncompressed body never exists as a whole.
fn encode(
    events: &mut [PreparedEvent],
    format: BodyFormat,
    gzip: bool,
) -> io::Result<(Vec<u8>, usize, Vec<usize>)> {
    let estimate: usize = events.iter().map(|e| e.json().len() + 1).sum::<usize>() + 2;
    if !gzip {
        let mut out = Vec::with_capacity(estimate);
        let (len, lens) = write_body(events, format, &mut out)?;
        return Ok((out, len, lens));
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(estimate / 6),
        flate2::Compression::fast(),
    );
    let (len, lens) = write_body(events, format, &mut encoder)?;
    Ok((encoder.finish()?, len, lens))
}

/// Sleeps until `deadline`, waking early when the export stops.
fn sleep_until(shared: &Shared, deadline: Instant) -> bool {
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Sends `events` (splitting on 413) and records every outcome.
fn deliver(shared: &Shared, mut events: Batch) {
    let outcomes = send(shared, &mut events);
    let mut state = lock(&shared.state);
    for (event, outcome) in events.iter().zip(outcomes) {
        match outcome {
            Outcome::Imported => {
                state.report.imported += 1;
                let source = event.source();
                state.progress.resolve(&source.file, source.record);
                state.checkpoint_dirty = true;
            }
            Outcome::Dead { reason, detail } => {
                if dead_letter(shared, &mut state, event, reason, &detail) {
                    *state
                        .report
                        .dead_lettered
                        .entry(reason.to_owned())
                        .or_default() += 1;
                }
            }
            Outcome::Unresolved => state.report.unresolved += 1,
        }
    }
}

fn all(n: usize, f: impl Fn() -> Outcome) -> Vec<Outcome> {
    (0..n).map(|_| f()).collect()
}

/// What a request made of its events.
enum Reply {
    Outcomes(Vec<Outcome>),
    /// 413 for more than one event: send each half on its own.
    Split,
}

/// One request (with retries) for `events`; recursion on 413.
///
/// While the request is out, the batch lives only in its (compressed) body:
/// the events' own copies of their JSON are dropped, and put back from the
/// body only when an outcome needs them (dead letters, a 413 split). This is
/// what keeps the exporter's memory at about one compressed body per worker.
fn send(shared: &Shared, events: &mut [PreparedEvent]) -> Vec<Outcome> {
    let (payload, raw_len, lens) = match encode(events, shared.format, shared.gzip) {
        Ok(encoded) => encoded,
        Err(e) => {
            // Writing to memory does not fail; were it to, the events are
            // dead-lettered without their JSON (it went into the encoder).
            let detail = format!("encoding the request body failed: {e}");
            return all(events.len(), || Outcome::Dead {
                reason: "encoding_failed",
                detail: detail.clone(),
            });
        }
    };
    let reply = request(shared, events, &payload, raw_len);
    let needs_events = match &reply {
        Reply::Split => true,
        Reply::Outcomes(outcomes) => outcomes.iter().any(|o| matches!(o, Outcome::Dead { .. })),
    };
    if needs_events {
        restore_json(events, &lens, &payload, shared.gzip, shared.format);
    }
    drop(payload);
    match reply {
        Reply::Outcomes(outcomes) => outcomes,
        Reply::Split => {
            lock(&shared.state).report.splits += 1;
            let mid = events.len() / 2;
            let (head, tail) = events.split_at_mut(mid);
            let mut out = send(shared, head);
            out.extend(send(shared, tail));
            out
        }
    }
}

/// Gives each event its JSON back from the request body `payload` (events
/// were written one after the other, each followed by one separator byte).
fn restore_json(
    events: &mut [PreparedEvent],
    lens: &[usize],
    payload: &[u8],
    gzip: bool,
    format: BodyFormat,
) {
    let unzipped;
    let raw: &[u8] = if gzip {
        let mut out = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(payload);
        if let Err(e) = io::Read::read_to_end(&mut decoder, &mut out) {
            // Our own gzip output: cannot happen short of a bug.
            tracing::error!(error = %e, "cannot decompress a request body; its events' JSON is lost");
            return;
        }
        unzipped = out;
        &unzipped
    } else {
        payload
    };
    let mut at = match format {
        BodyFormat::Ndjson => 0,
        BodyFormat::JsonArray => 1,
    };
    for (event, &len) in events.iter_mut().zip(lens) {
        if let Some(json) = raw.get(at..at + len) {
            event.set_json(json.into());
        }
        at += len + 1;
    }
}

/// Posts `payload` (the body of `events`, `raw_len` bytes uncompressed)
/// with retries, and says what became of the events.
fn request(shared: &Shared, events: &[PreparedEvent], payload: &[u8], raw_len: usize) -> Reply {
    let policy = shared.retry;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let not_before = *lock(&shared.not_before);
        if !sleep_until(shared, not_before) {
            return Reply::Outcomes(all(events.len(), || Outcome::Unresolved));
        }
        lock(&shared.state).report.requests += 1;
        let started = Instant::now();
        let result = shared.client.post(payload, shared.format, shared.gzip);
        let failure = match result {
            Ok(response) => {
                tracing::debug!(
                    status = response.status,
                    events = events.len(),
                    bytes = raw_len,
                    compressed = payload.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "import request"
                );
                match response.status {
                    200 => {
                        record_bytes(shared, raw_len);
                        if let Some(n) = response.body.num_records_imported
                            && n != events.len() as u64
                        {
                            tracing::warn!(
                                sent = events.len(),
                                imported = n,
                                "200 with a different num_records_imported"
                            );
                        }
                        return Reply::Outcomes(all(events.len(), || Outcome::Imported));
                    }
                    400 => {
                        record_bytes(shared, raw_len);
                        return Reply::Outcomes(bad_request(events, &response));
                    }
                    401 | 403 => {
                        let message = response
                            .body
                            .error
                            .clone()
                            .unwrap_or_else(|| "unauthorized".to_owned());
                        tracing::error!(
                            status = response.status,
                            %message,
                            "Mixpanel refused the credentials; stopping"
                        );
                        shared.stop.store(true, Ordering::SeqCst);
                        lock(&shared.state)
                            .fatal
                            .get_or_insert(FatalError::Unauthorized {
                                status: response.status,
                                message,
                            });
                        return Reply::Outcomes(all(events.len(), || Outcome::Unresolved));
                    }
                    413 => {
                        if events.len() > 1 {
                            tracing::warn!(
                                events = events.len(),
                                bytes = raw_len,
                                "413: splitting the batch"
                            );
                            return Reply::Split;
                        }
                        let detail = format!("HTTP 413: {}", error_text(&response));
                        return Reply::Outcomes(all(1, || Outcome::Dead {
                            reason: "payload_too_large",
                            detail: detail.clone(),
                        }));
                    }
                    429 | 408 | 500..=599 => {
                        format!("HTTP {}: {}", response.status, error_text(&response))
                    }
                    status => {
                        let detail = format!("HTTP {status}: {}", error_text(&response));
                        tracing::error!(%detail, "unexpected status; dead-lettering the batch");
                        return Reply::Outcomes(all(events.len(), || Outcome::Dead {
                            reason: "unexpected_status",
                            detail: detail.clone(),
                        }));
                    }
                }
            }
            Err(e) => format!("transport: {e}"),
        };
        if attempt >= policy.max_attempts {
            tracing::error!(attempts = attempt, error = %failure, events = events.len(), "giving up on a batch");
            return Reply::Outcomes(all(events.len(), || Outcome::Dead {
                reason: "retries_exhausted",
                detail: format!("{attempt} attempts; last: {failure}"),
            }));
        }
        let delay = policy.delay(attempt);
        tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, error = %failure, "retrying");
        lock(&shared.state).report.retries += 1;
        let until = Instant::now() + delay;
        if failure.starts_with("HTTP 429") {
            // Everyone slows down: no worker sends before `until`.
            let mut nb = lock(&shared.not_before);
            *nb = (*nb).max(until);
        }
        if !sleep_until(shared, until) {
            return Reply::Outcomes(all(events.len(), || Outcome::Unresolved));
        }
    }
}

fn record_bytes(shared: &Shared, n: usize) {
    lock(&shared.state).report.bytes_sent += n as u64;
}

fn error_text(response: &ImportResponse) -> String {
    response
        .body
        .error
        .clone()
        .unwrap_or_else(|| response.text.clone())
}

fn bad_request(events: &[PreparedEvent], response: &ImportResponse) -> Vec<Outcome> {
    let failed = response.body.failed_records.as_deref().unwrap_or_default();
    if failed.is_empty() {
        let detail = format!("HTTP 400: {}", error_text(response));
        tracing::error!(%detail, events = events.len(), "batch rejected");
        return all(events.len(), || Outcome::Dead {
            reason: "mixpanel_rejected_batch",
            detail: detail.clone(),
        });
    }
    let mut outcomes = all(events.len(), || Outcome::Imported);
    let mut unmatched = 0;
    for record in failed {
        let index = record
            .index
            .filter(|&i| {
                i < events.len()
                    && (record.insert_id.is_none()
                        || events[i].insert_id() == record.insert_id.as_deref())
            })
            .or_else(|| {
                let id = record.insert_id.as_deref()?;
                events.iter().position(|e| e.insert_id() == Some(id))
            });
        let Some(index) = index else {
            unmatched += 1;
            continue;
        };
        let detail = format!(
            "{}: {}",
            record.field.as_deref().unwrap_or("?"),
            record.message.as_deref().unwrap_or("failed validation")
        );
        outcomes[index] = Outcome::Dead {
            reason: "mixpanel_rejected_record",
            detail,
        };
    }
    tracing::warn!(
        failed = failed.len(),
        unmatched,
        events = events.len(),
        "partial 400: failed records dead-lettered"
    );
    outcomes
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
}
