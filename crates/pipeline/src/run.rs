//! One run: sources read in order (in parallel where it pays), every
//! record's outcome settled in the ledger, the checkpoint and the dead
//! letter, mapped events handed to the sink.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use currents_events::decode::RecordError;
use currents_mixpanel::{Delivery, FatalError, Resolved};
use serde_json::value::RawValue;

use crate::checkpoint::{Checkpoint, CheckpointError, Progress as Watermarks};
use crate::deadletter::{DeadLetter, Entry, RecordSource, mask_quoted};
use crate::decode::{Chunk, Ctx, Mapper, Msg, Outcome, read_source};
use crate::observer::{Observer, Progress, Quiet};
use crate::options::{InvalidEvents, PipelineOptions};
use crate::report::{Bucket, Ledger, Report, TypeKey};
use crate::sink::{Accepted, RecordRef, Resolver, Sink, SinkError};
use crate::source::{Source, Sources};

/// Why a run stopped before the end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StopCause {
    #[error("cannot open {name}: {error}")]
    Open { name: String, error: io::Error },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot write the dead letter: {0}")]
    DeadLetter(io::Error),
    #[error("the dead letter is the input {0}: write it elsewhere")]
    DeadLetterIsInput(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Delivery(#[from] FatalError),
}

/// A run that stopped early, with the report of what it did until then
/// (every record it read is in one bucket; `unresolved` holds those whose
/// outcome was not known).
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub struct RunError {
    pub cause: StopCause,
    pub report: Box<Report>,
}

/// Stops a run from another thread (a signal handler). Cheap to clone; one
/// token can be shared by several runs one after the other
/// ([`Pipeline::with_cancel_token`]), and a run given a token that is
/// already cancelled starts no source.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    /// Stop now: sources in hand are finished up to the chunk being read.
    cut: AtomicBool,
    /// Start no new source; those in hand are read to their end.
    drain: AtomicBool,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sources in hand are finished up to the chunk being read, nothing new
    /// is started, and what was handed to the sink is delivered.
    pub fn cancel(&self) {
        self.0.cut.store(true, Ordering::SeqCst);
    }

    /// Starts no new source, but reads the sources in hand to their end (so
    /// each one can still be fully accounted for, e.g. a bucket object
    /// recorded done), then delivers what was handed to the sink.
    pub fn finish_sources(&self) {
        self.0.drain.store(true, Ordering::SeqCst);
    }

    /// [`CancelToken::cancel`] or [`CancelToken::finish_sources`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cut.load(Ordering::SeqCst) || self.0.drain.load(Ordering::SeqCst)
    }

    /// Installs the process's SIGTERM/SIGINT handler (one per process):
    /// the first signal finishes the sources in hand, the second cancels at
    /// the next chunk, the third exits at once (status 130).
    pub fn stop_on_signals(&self) -> io::Result<()> {
        let (token, signals) = (self.clone(), AtomicU64::new(0));
        ctrlc::set_handler(move || match signals.fetch_add(1, Ordering::SeqCst) {
            0 => token.finish_sources(),
            1 => token.cancel(),
            _ => std::process::exit(130),
        })
        .map_err(io::Error::other)
    }
}

/// Decode → map → validate → sink, with one ledger. See the crate docs.
pub struct Pipeline {
    options: PipelineOptions,
    dead_letter: Option<DeadLetter>,
    checkpoint: Option<PathBuf>,
    observer: Arc<dyn Observer>,
    cancel: CancelToken,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("options", &self.options)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub fn new(options: PipelineOptions) -> Self {
        Pipeline {
            options,
            dead_letter: None,
            checkpoint: None,
            observer: Arc::new(Quiet),
            cancel: CancelToken::default(),
        }
    }

    /// Writes a line for every record that does not reach Mixpanel (`None`:
    /// no dead letter, as without this call).
    pub fn dead_letter(mut self, dead_letter: impl Into<Option<DeadLetter>>) -> Self {
        self.dead_letter = dead_letter.into();
        self
    }

    /// Resumes from the checkpoint at `path` and keeps it up to date.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Receives progress and input errors.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Stops the run from another thread.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Uses `token` (shared with other runs, a signal handler …) instead
    /// of a token of its own.
    pub fn with_cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = token;
        self
    }

    /// Reads every source, settling each record in exactly one bucket, and
    /// hands mapped events to `sink`. Returns the report, or why the run
    /// stopped early together with the report so far.
    pub fn run(self, sources: &Sources, sink: &mut dyn Sink) -> Result<Report, RunError> {
        let run_started = Instant::now();
        let Pipeline {
            options,
            dead_letter,
            checkpoint,
            observer,
            cancel,
        } = self;
        let run_id = dead_letter.as_ref().map(|d| d.run_id().to_owned());
        let fail = |cause: StopCause, ledger: &Ledger| RunError {
            cause,
            report: Box::new(ledger.snapshot()),
        };
        let mut ledger = Ledger::default();
        for (reason, n) in sources.ignored() {
            ledger.ignored(reason, *n);
        }
        ledger.report.run_id = run_id.unwrap_or_default();
        let checkpoint = match checkpoint.as_deref().map(Checkpoint::open).transpose() {
            Ok(checkpoint) => checkpoint.map(Arc::new),
            Err(e) => return Err(fail(e.into(), &ledger)),
        };
        if let Some(checkpoint) = &checkpoint
            && let Err(e) = verify_files(checkpoint, sources.as_slice())
        {
            return Err(fail(e, &ledger));
        }
        if let Some(dead_letter) = &dead_letter
            && let Some(input) = sources
                .iter()
                .find(|s| s.path().is_some_and(|p| dead_letter.is_file(p)))
        {
            let cause = StopCause::DeadLetterIsInput(input.name().to_owned());
            return Err(fail(cause, &ledger));
        }
        let tracker = Arc::new(Tracker {
            state: Mutex::new(TrackState {
                ledger,
                watermarks: checkpoint.as_ref().map(|_| Watermarks::default()),
                checkpoint: checkpoint.clone(),
                dirty: false,
                last_save: Instant::now(),
                dead_letter,
                failure: None,
                mask: !options.map.pii.is_keep(),
                open: Default::default(),
                observer: Arc::clone(&observer),
            }),
        });
        if let Err(e) = sink.start(Resolver(Arc::clone(&tracker))) {
            let state = tracker.lock();
            return Err(fail(e.into(), &state.ledger));
        }
        let ctx = Ctx::new(
            &options,
            sources.as_slice(),
            checkpoint.as_deref(),
            &cancel.0.cut,
        );
        let mut sequencer = Sequencer {
            ctx: &ctx,
            tracker: &tracker,
            sink,
            observer: observer.as_ref(),
            stop: None,
            stopped: false,
            started: Instant::now(),
            records: 0,
            sources_done: 0,
            bytes_total: sources.iter().map(Source::size).sum(),
            source: 0,
        };
        let threads = options.worker_threads();
        if threads > 1 && sources.len() > 1 {
            read_in_parallel(&ctx, threads, &cancel, &mut sequencer);
        } else {
            let mut mapper = Mapper::new(&options);
            for index in 0..sources.len() {
                if sequencer.stopped || cancel.is_cancelled() {
                    break;
                }
                sequencer.source = index;
                read_source(&ctx, index, threads, &mut mapper, &mut |msg| {
                    sequencer.handle(msg)
                });
            }
        }
        let Sequencer {
            stop,
            sink,
            bytes_total: _,
            ..
        } = sequencer;
        let mut stop = stop;
        if stop.is_some() {
            sink.cancel();
        }
        let sink_report = match sink.finish() {
            Ok(report) => Some(report),
            Err(e) => {
                stop.get_or_insert(e.into());
                None
            }
        };
        let mut state = tracker.lock();
        if let Err(e) = state.finish() {
            stop.get_or_insert(e);
        }
        if let Some(cause) = state.failure.take() {
            stop.get_or_insert(cause);
        }
        let mut report = state.ledger.snapshot();
        report.bytes = ctx.bytes.load(Ordering::Relaxed);
        report.elapsed = run_started.elapsed();
        if let Some(sink_report) = sink_report {
            if let Some(fatal) = sink_report.fatal {
                stop.get_or_insert(fatal.into());
            }
            report.delivery = sink_report.delivery;
            report.dry_run = sink_report.dry_run;
        }
        match stop {
            None => Ok(report),
            Some(cause) => Err(RunError {
                cause,
                report: Box::new(report),
            }),
        }
    }
}

/// Checks every file source the checkpoint knows against it before anything
/// is sent (other sources are checked when they are opened).
fn verify_files(checkpoint: &Checkpoint, sources: &[Source]) -> Result<(), StopCause> {
    for source in sources {
        if source.path().is_none() || !checkpoint.knows(source.name()) {
            continue;
        }
        let open_error = |error| StopCause::Open {
            name: source.name().to_owned(),
            error,
        };
        let reader = source.open().map_err(open_error)?;
        let (fingerprint, _) =
            crate::checkpoint::fingerprint_stream(source.size(), reader).map_err(open_error)?;
        checkpoint.position(source.name(), &fingerprint)?;
    }
    Ok(())
}

/// Several sources: each worker reads whole sources, sending their messages
/// through a small bounded channel per source; the calling thread takes the
/// sources in order, so the outcomes are what one thread gives.
fn read_in_parallel(
    ctx: &Ctx<'_>,
    threads: usize,
    cancel: &CancelToken,
    sequencer: &mut Sequencer<'_, '_>,
) {
    /// Chunks a worker may get ahead in its source.
    const AHEAD: usize = 16;
    let sources = ctx.sources.len();
    // A worker takes the sender of the source it claims, so the channel
    // closes when that source is done or abandoned (a cancelled run): the
    // calling thread never waits on a source nobody reads.
    type Slot = Mutex<Option<SyncSender<Msg>>>;
    let (senders, receivers): (Vec<Slot>, Vec<Receiver<Msg>>) = (0..sources)
        .map(|_| {
            let (tx, rx) = sync_channel(AHEAD);
            (Mutex::new(Some(tx)), rx)
        })
        .unzip();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(sources) {
            let (senders, next, stop) = (&senders, &next, &stop);
            scope.spawn(move || {
                let mut mapper = Mapper::new(ctx.options);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= sources {
                        break;
                    }
                    let sender = senders[i].lock().unwrap_or_else(|e| e.into_inner()).take();
                    let Some(sender) = sender else { break };
                    if stop.load(Ordering::SeqCst) || cancel.is_cancelled() {
                        break;
                    }
                    let mut listening = true;
                    read_source(ctx, i, 1, &mut mapper, &mut |msg| {
                        listening = sender.send(msg).is_ok();
                        listening
                    });
                    if !listening {
                        break;
                    }
                }
            });
        }
        'sources: for (i, receiver) in receivers.iter().enumerate() {
            sequencer.source = i;
            loop {
                match receiver.recv() {
                    Ok(msg) => {
                        let end = matches!(msg, Msg::End(_) | Msg::Ignored(_) | Msg::Stop(_));
                        if !sequencer.handle(msg) {
                            break 'sources;
                        }
                        if end {
                            break;
                        }
                    }
                    // Its worker gave up (the run was cancelled): stop here.
                    Err(_) => break 'sources,
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        drop(receivers);
    });
}

/// The calling thread's side of a run: settles outcomes in input order.
struct Sequencer<'c, 'r> {
    ctx: &'c Ctx<'r>,
    tracker: &'c Arc<Tracker>,
    sink: &'c mut dyn Sink,
    observer: &'c dyn Observer,
    stop: Option<StopCause>,
    /// The sink stopped taking events: mapped records are unresolved.
    stopped: bool,
    started: Instant,
    records: u64,
    sources_done: usize,
    bytes_total: Option<u64>,
    /// The source being settled.
    source: usize,
}

/// A sink's answer for one record of a chunk.
enum Answer {
    None,
    Accepted(Accepted),
    Unresolved,
}

impl Sequencer<'_, '_> {
    /// Settles one message; false: stop reading.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Start {
                fingerprint,
                position,
            } => {
                let source = &self.ctx.sources[self.source];
                let mut state = self.tracker.lock();
                state.ledger.report.files += 1;
                if let (Some(watermarks), Some(fingerprint)) = (&mut state.watermarks, fingerprint)
                {
                    watermarks.start(source.name(), fingerprint, position);
                }
            }
            Msg::Chunk(chunk) => {
                self.settle(chunk);
            }
            Msg::End(stats) => {
                let name = self.ctx.sources[self.source].name();
                let mut state = self.tracker.lock();
                state.ledger.drift(&stats);
                state.ended(self.source, name);
                drop(state);
                self.sources_done += 1;
                self.progress();
            }
            Msg::Ignored(reason) => {
                let name = self.ctx.sources[self.source].name();
                let mut state = self.tracker.lock();
                state.ledger.ignored(reason, 1);
                state.ended(self.source, name);
                drop(state);
                self.sources_done += 1;
            }
            Msg::Stop(cause) => {
                self.stop.get_or_insert(cause);
                self.stopped = true;
            }
        }
        if self.stop.is_none()
            && let Some(cause) = self.tracker.lock().failure.take()
        {
            self.stop = Some(cause);
        }
        if self.stop.is_some() {
            self.stopped = true;
        }
        !self.stopped
    }

    fn progress(&self) {
        self.observer.progress(&Progress {
            sources: self.ctx.sources.len(),
            sources_done: self.sources_done,
            records: self.records,
            bytes_read: self.ctx.bytes.load(Ordering::Relaxed),
            bytes_total: self.bytes_total,
            elapsed: self.started.elapsed(),
        });
    }

    /// Hands a chunk's mapped events to the sink, then settles every record
    /// under one lock (never held while the sink may block).
    fn settle(&mut self, mut chunk: Chunk) {
        let index = self.source;
        let name = Arc::clone(self.ctx.sources[index].shared_name());
        let reject_invalid = self.ctx.options.invalid == InvalidEvents::Reject;
        let mask = !self.ctx.options.map.pii.is_keep();
        let mut answers = Vec::with_capacity(chunk.outcomes.len());
        // The events for the sink go a run at a time: a run's lines lie back
        // to back in the chunk's JSON, between the events it does not get.
        let mut run = Run::default();
        let mut at = 0;
        for position in 0..chunk.outcomes.len() {
            let answer = match &mut chunk.outcomes[position] {
                Outcome::Mapped { len, rejection, .. } => {
                    let line_start = at;
                    at += *len + 1;
                    if rejection.is_some() && reject_invalid {
                        self.hand_over(&mut chunk, &mut run, line_start, &name, &mut answers);
                        run.start = at;
                    } else {
                        run.events.push(position);
                    }
                    // Set by `hand_over` for the run's events.
                    Answer::None
                }
                Outcome::Failed(error) => {
                    if mask {
                        error.message = mask_quoted(&error.message);
                    }
                    self.observer.input_error(error);
                    Answer::None
                }
                Outcome::Skipped { .. } => Answer::None,
            };
            answers.push(answer);
        }
        self.hand_over(&mut chunk, &mut run, at, &name, &mut answers);
        let before = self.records / 8192;
        let mut state = self.tracker.lock();
        let mut at = 0;
        for (outcome, answer) in chunk.outcomes.iter().zip(answers) {
            match outcome {
                Outcome::Mapped {
                    len,
                    rejection,
                    warnings,
                    location,
                    key,
                    input,
                } => {
                    let json = &chunk.json[at..at + *len];
                    at += *len + 1;
                    state.ledger.read(key, 1);
                    state.read(index, 1);
                    self.records += 1;
                    for warning in warnings {
                        state.ledger.warning(warning.reason(), 1);
                    }
                    match (rejection, answer) {
                        (Some(rejection), Answer::None) => {
                            state
                                .ledger
                                .settle(key, Bucket::Rejected(rejection.reason()), 1);
                            state.ledger.example(rejection.reason(), &name, location);
                            state.log(&Entry {
                                reason: rejection.reason(),
                                detail: "refused by the /import pre-validation",
                                field: Some(rejection.field()),
                                source: &record_source(&name, location),
                                event_type: key.name(),
                                input: input.as_deref(),
                                mixpanel: raw(json),
                            });
                            state.resolve(index, &name, location.index);
                        }
                        (rejection, answer) => {
                            if let Some(rejection) = rejection {
                                state.ledger.warning(rejection.reason(), 1);
                            }
                            state.ledger.mapped(key);
                            match answer {
                                Answer::Accepted(Accepted::Written) => {
                                    state.ledger.settle(key, Bucket::Written, 1);
                                    state.resolve(index, &name, location.index);
                                }
                                Answer::Accepted(Accepted::Pending) => {}
                                Answer::Unresolved | Answer::None => {
                                    state.ledger.settle(key, Bucket::Unresolved, 1);
                                }
                            }
                        }
                    }
                }
                Outcome::Skipped {
                    reason,
                    location,
                    key,
                } => {
                    state.ledger.read(key, 1);
                    state.read(index, 1);
                    self.records += 1;
                    state.ledger.settle(key, Bucket::Skipped(reason), 1);
                    state.ledger.example(reason, &name, location);
                    if state
                        .dead_letter
                        .as_ref()
                        .is_some_and(DeadLetter::wants_skipped)
                    {
                        state.log(&Entry {
                            reason,
                            detail: "skipped",
                            field: None,
                            source: &record_source(&name, location),
                            event_type: key.name(),
                            input: None,
                            mixpanel: None,
                        });
                    }
                    state.resolve(index, &name, location.index);
                }
                Outcome::Failed(error) => state.failed(index, &name, error, &mut self.records),
            }
        }
        state.maybe_save();
        drop(state);
        self.ctx.recycle(chunk);
        if self.records / 8192 != before {
            self.progress();
        }
    }

    /// Gives the sink the events of `run`, whose lines end at `end` of the
    /// chunk's JSON, and sets their answers; starts the next run there.
    fn hand_over(
        &mut self,
        chunk: &mut Chunk,
        run: &mut Run,
        end: usize,
        name: &Arc<str>,
        answers: &mut [Answer],
    ) {
        let start = std::mem::replace(&mut run.start, end);
        if run.events.is_empty() {
            return;
        }
        let mut accepted = Vec::with_capacity(run.events.len());
        if !self.stopped {
            let index = self.source;
            let Chunk { outcomes, json } = chunk;
            let mut events = run.events.iter().filter_map(|&position| {
                let Outcome::Mapped {
                    len,
                    location,
                    key,
                    input,
                    ..
                } = &mut outcomes[position]
                else {
                    return None;
                };
                let record = RecordRef {
                    index,
                    source: Arc::clone(name),
                    location: *location,
                    key: key.clone(),
                    input: input.take(),
                };
                Some((*len, record))
            });
            let lines = json.get(start..end).unwrap_or_default();
            if let Err(e) = self.sink.accept_lines(lines, &mut events, &mut accepted) {
                if !matches!(e, SinkError::Stopped) {
                    self.stop.get_or_insert(e.into());
                }
                self.stopped = true;
            }
        }
        for (k, &position) in run.events.iter().enumerate() {
            answers[position] = match accepted.get(k) {
                Some(&accepted) => Answer::Accepted(accepted),
                None => Answer::Unresolved,
            };
        }
        run.events.clear();
    }
}

/// Events of a chunk going to the sink together (see `Sequencer::settle`).
#[derive(Default)]
struct Run {
    /// Where the first one's line starts in the chunk's JSON.
    start: usize,
    /// Their positions among the chunk's outcomes.
    events: Vec<usize>,
}

fn record_source(name: &str, location: &currents_events::decode::Location) -> RecordSource {
    RecordSource {
        file: name.to_owned(),
        record: location.index,
        line: location.line,
        offset: location.offset,
    }
}

/// The mapped JSON as a raw value (it is one object, written by the mapper).
fn raw(json: &[u8]) -> Option<&RawValue> {
    std::str::from_utf8(json)
        .ok()
        .and_then(|text| serde_json::from_str::<&RawValue>(text).ok())
}

/// The run's shared books: ledger, watermarks, dead letter. Locked per
/// chunk by the calling thread and per batch by delivery workers.
pub(crate) struct Tracker {
    state: Mutex<TrackState>,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, TrackState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Outcomes of events a delivery sink resolved.
    pub(crate) fn delivered(&self, events: &[Resolved<'_, RecordRef>]) {
        let mut state = self.lock();
        for event in events {
            let record = event.tag;
            match event.delivery {
                Delivery::Imported => {
                    state.ledger.settle(&record.key, Bucket::Imported, 1);
                    state.resolve(record.index, &record.source, record.location.index);
                }
                Delivery::Failed { failure, detail } => {
                    state
                        .ledger
                        .settle(&record.key, Bucket::DeadLettered(failure.reason()), 1);
                    state
                        .ledger
                        .example(failure.reason(), &record.source, &record.location);
                    let detail = if state.mask {
                        mask_quoted(detail)
                    } else {
                        detail.clone()
                    };
                    state.log(&Entry {
                        reason: failure.reason(),
                        detail: &detail,
                        field: None,
                        source: &record_source(&record.source, &record.location),
                        event_type: record.key.name(),
                        input: record.input.as_deref(),
                        mixpanel: raw(event.json),
                    });
                    state.resolve(record.index, &record.source, record.location.index);
                }
                _ => state.ledger.settle(&record.key, Bucket::Unresolved, 1),
            }
        }
        state.maybe_save();
    }
}

struct TrackState {
    ledger: Ledger,
    watermarks: Option<Watermarks>,
    checkpoint: Option<Arc<Checkpoint>>,
    dirty: bool,
    last_save: Instant,
    dead_letter: Option<DeadLetter>,
    /// A write failed: the run stops.
    failure: Option<StopCause>,
    mask: bool,
    /// Per source (by index): read to its end, and records without an
    /// outcome yet. A source leaves when both are done.
    open: rustc_hash::FxHashMap<usize, (bool, u64)>,
    observer: Arc<dyn Observer>,
}

/// Least time between checkpoint saves while running.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

impl TrackState {
    /// A record of source `index` was read; its outcome comes later or now.
    fn read(&mut self, index: usize, n: u64) {
        self.open.entry(index).or_default().1 += n;
    }

    fn resolve(&mut self, index: usize, source: &str, record: u64) {
        if let Some(watermarks) = &mut self.watermarks {
            watermarks.resolve(source, record);
            self.dirty = true;
        }
        if let Some(open) = self.open.get_mut(&index) {
            open.1 = open.1.saturating_sub(1);
        }
        self.check_done(index, source);
    }

    /// Source `index` was read to its end.
    fn ended(&mut self, index: usize, source: &str) {
        self.open.entry(index).or_default().0 = true;
        self.check_done(index, source);
    }

    fn check_done(&mut self, index: usize, source: &str) {
        if self
            .open
            .get(&index)
            .is_some_and(|&(ended, left)| ended && left == 0)
        {
            self.open.remove(&index);
            self.observer.source_resolved(index, source);
        }
    }

    fn log(&mut self, entry: &Entry<'_>) {
        if let Some(dead_letter) = &mut self.dead_letter
            && let Err(e) = dead_letter.write(entry)
            && self.failure.is_none()
        {
            self.failure = Some(StopCause::DeadLetter(e));
        }
    }

    /// A record (or region) that could not be decoded: rejected, with a
    /// dead-letter line per lost record.
    fn failed(&mut self, index: usize, name: &str, error: &RecordError, records: &mut u64) {
        let reason = error.kind.reason();
        self.ledger.error(reason);
        let n = error.records;
        self.ledger.read(&TypeKey::Undecoded, n);
        self.read(index, n);
        *records += n;
        self.ledger
            .settle(&TypeKey::Undecoded, Bucket::Rejected(reason), n);
        self.ledger.example(reason, name, &error.location);
        for k in 0..n {
            let mut location = error.location;
            location.index += k;
            self.log(&Entry {
                reason,
                detail: &error.message,
                field: None,
                source: &record_source(name, &location),
                event_type: TypeKey::Undecoded.name(),
                input: None,
                mixpanel: None,
            });
            self.resolve(index, name, location.index);
        }
    }

    fn maybe_save(&mut self) {
        if self.dirty && self.last_save.elapsed() >= SAVE_INTERVAL {
            self.save_now();
        }
    }

    fn save_now(&mut self) {
        let (Some(checkpoint), Some(watermarks)) = (&self.checkpoint, &self.watermarks) else {
            return;
        };
        if let Err(e) = checkpoint.save(watermarks)
            && self.failure.is_none()
        {
            self.failure = Some(e.into());
        }
        self.dirty = false;
        self.last_save = Instant::now();
    }

    /// The final save and flush.
    fn finish(&mut self) -> Result<(), StopCause> {
        if let Some(dead_letter) = &mut self.dead_letter {
            dead_letter.flush().map_err(StopCause::DeadLetter)?;
        }
        if let (Some(checkpoint), Some(watermarks)) = (&self.checkpoint, &self.watermarks) {
            checkpoint.save(watermarks)?;
        }
        Ok(())
    }
}
