//! Decode → map, shared by `map`, `validate` and `export`: reads every input,
//! maps each event through the PII policy into a reusable JSON writer, and
//! accounts for every record in the [`Summary`].

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use currents_events::decode::{DecodeOptions, DecodeStats, Decoded, Location, Reader, RecordError};
use currents_mixpanel::validate::now_secs;
use currents_mixpanel::{
    MapOptions, MapWarning, Mapped, PreparedEvent, Preparer, Rejection, SkipReason, Source,
    Validator,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::inputs::Input;
use crate::summary::{Summary, bump, human_bytes};

/// How many input errors are printed one per line before they are only counted.
const PRINTED_ERRORS: u64 = 20;

pub struct Pipeline {
    pub decode: DecodeOptions,
    pub map: MapOptions,
    pub quiet: bool,
    /// How mapped events reach `on_item`.
    pub emit: Emit,
    /// Skip events of unknown types instead of mapping them by convention.
    /// (Decided here rather than in the reader, so skipped records still
    /// reach the checkpoint.)
    pub skip_unknown_types: bool,
}

/// How mapped events are handed on.
#[derive(Debug, Clone, Copy)]
pub enum Emit {
    /// As owned [`PreparedEvent`]s, which the exporter batches and
    /// dead-letters; `keep_input` says which carry their input JSON.
    Prepared { keep_input: KeepInput },
    /// As JSON bytes checked against `/import` rules on the thread that mapped
    /// them (`map`, `validate`): nothing is allocated per event, and only one
    /// buffer per chunk of input travels between threads.
    Validated(Validator),
}

/// Which mapped events carry their input JSON (for the dead letter).
#[derive(Debug, Clone, Copy)]
pub enum KeepInput {
    All,
    /// Only those failing pre-validation against `validator` (the ones the
    /// exporter dead-letters before sending).
    Rejected(Validator),
    None,
}

/// One mapped event, pre-validated where it was mapped ([`Emit::Validated`]).
pub struct Validated<'a> {
    pub json: &'a [u8],
    pub rejection: Option<Rejection>,
    pub file: &'a str,
    pub record: u64,
}

/// What happened to one input record.
pub enum Item<'a> {
    /// Mapped ([`Emit::Prepared`]); `warnings` are the mapper's findings for it.
    Mapped(PreparedEvent, &'a [MapWarning]),
    /// Mapped and pre-validated ([`Emit::Validated`]); the mapper's warnings
    /// are already counted in the summary.
    Validated(Validated<'a>),
    /// Not mapped, for a reason (already counted in the summary).
    Skipped(Source, &'static str),
    /// Could not be decoded (already counted in the summary).
    Failed(Source, &'a RecordError),
}

/// A snake_case reason key for a decode error.
pub fn error_reason(error: &RecordError) -> String {
    error.kind.as_str().replace(' ', "_")
}

fn source_of(name: &Arc<str>, location: &Location) -> Source {
    let mut source = Source::new(name.clone(), location.index);
    source.line = location.line;
    source.offset = location.offset;
    source
}

impl Pipeline {
    /// Runs every input through decode and map, handing each record's outcome
    /// to `on_item`. Records before `start(file)` (a resume checkpoint) are
    /// read but skipped as `before_checkpoint`.
    ///
    /// With several cores, several inputs are decoded and mapped a file per
    /// worker (see [`files`]), and a single NDJSON file by several workers
    /// (see [`parallel`]); outcomes still reach `on_item` in input order, one
    /// at a time, with the same locations and accounting as a sequential read.
    pub fn run(
        &self,
        inputs: &[Input],
        summary: &mut Summary,
        start: impl Fn(&str) -> u64,
        on_item: impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
    ) -> Result<()> {
        self.run_with_threads(inputs, summary, start, on_item, parallel::threads())
    }

    /// [`Pipeline::run`] for [`Emit::Validated`] from the start of every
    /// input: `on_event` gets each mapped event; other records are only
    /// counted. Returns the summary.
    pub fn run_validated(
        &self,
        inputs: &[Input],
        mut on_event: impl FnMut(Validated<'_>, &mut Summary) -> Result<()>,
    ) -> Result<Summary> {
        let mut summary = Summary::default();
        self.run(
            inputs,
            &mut summary,
            |_| 0,
            |item, summary| match item {
                Item::Validated(event) => on_event(event, summary),
                _ => Ok(()),
            },
        )?;
        Ok(summary)
    }

    fn run_with_threads(
        &self,
        inputs: &[Input],
        summary: &mut Summary,
        start: impl Fn(&str) -> u64,
        mut on_item: impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
        threads: usize,
    ) -> Result<()> {
        let total_bytes = inputs.iter().filter_map(Input::len).sum();
        let progress = Progress::new(self.quiet, inputs.len(), total_bytes);
        if threads > 1 && inputs.len() > 1 {
            files::run(
                self,
                inputs,
                summary,
                &start,
                &mut on_item,
                threads,
                &progress,
            )?;
            progress.finish();
            return Ok(());
        }
        let mut preparer = Preparer::new(self.map.clone());
        let mut out = Vec::new();
        let mut printed_errors = 0;
        for input in inputs {
            let name: Arc<str> = Arc::from(input.name());
            let first = start(&name);
            summary.files += 1;
            summary.bytes += input.len().unwrap_or(0);
            let mut ctx = Ctx {
                pipeline: self,
                name: &name,
                first,
                progress: &progress,
                printed_errors: &mut printed_errors,
            };
            if threads > 1
                && let Input::File(path) = input
                && let Some(stream) =
                    parallel::open_ndjson(path, &self.decode, progress.bytes.clone())
            {
                let stats = parallel::run(&mut ctx, stream, threads, summary, &mut on_item)?;
                merge_stats(summary, &stats);
                progress.file_done();
                continue;
            }
            let mut reader = self.open(input, &name, &progress.bytes)?;
            reader.try_for_each_borrowed(|item| {
                out.clear();
                let outcome = match item {
                    Ok(decoded) => ctx.prepare(&mut preparer, decoded, &mut out, now_secs()),
                    Err(error) => Outcome::Failed(error),
                };
                ctx.deliver(outcome, &out, summary, &mut on_item)
            })?;
            merge_stats(summary, reader.stats());
            progress.file_done();
        }
        progress.finish();
        Ok(())
    }
}

impl Pipeline {
    /// A reader over one input, counting the bytes read for progress.
    fn open(&self, input: &Input, name: &str, bytes: &Arc<AtomicU64>) -> Result<Reader<'static>> {
        Ok(match input {
            Input::Stdin => Reader::new(
                "<stdin>",
                Counted::new(std::io::stdin(), bytes.clone()),
                self.decode.clone(),
            ),
            Input::File(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
                Reader::new(name, Counted::new(file, bytes.clone()), self.decode.clone())
            }
        })
    }
}

/// Several inputs: each worker decodes and maps whole files (any format),
/// in chunks of [`files::CHUNK_RECORDS`] outcomes sent through a small
/// bounded channel per file. The calling thread takes the files in input
/// order, so `on_item` sees what a sequential run gives; memory stays a few
/// chunks per worker however big the files are.
mod files {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
    use std::sync::{Arc, Mutex};

    use anyhow::{Result, anyhow};
    use currents_events::decode::DecodeStats;
    use currents_mixpanel::Preparer;
    use currents_mixpanel::validate::now_secs;

    use super::{Chunk, Ctx, Emit, Input, Item, Outcome, Pipeline, Progress, merge_stats};
    use crate::summary::Summary;

    /// Outcomes per message.
    pub const CHUNK_RECORDS: usize = 256;
    /// Chunks a worker may get ahead of the calling thread in its file: a
    /// worker on a later file runs ahead by this much and then waits, so
    /// files up to that size decode fully in parallel and bigger ones overlap
    /// by that much. ~8k events (~10 MB of mapped JSON) for `map`; fewer for
    /// `export`, whose events are bigger and whose batches hold memory too.
    fn ahead(emit: Emit) -> usize {
        match emit {
            Emit::Validated(_) => 32,
            Emit::Prepared { .. } => 8,
        }
    }

    enum Msg {
        Chunk(Chunk),
        /// The file is read; its reader's accounting.
        Done(DecodeStats),
        /// It could not be opened (stops the run, as a sequential read does).
        Failed(String),
    }

    pub fn run(
        pipeline: &Pipeline,
        inputs: &[Input],
        summary: &mut Summary,
        start: &impl Fn(&str) -> u64,
        on_item: &mut impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
        threads: usize,
        progress: &Progress,
    ) -> Result<()> {
        let names: Vec<Arc<str>> = inputs.iter().map(|i| Arc::from(i.name())).collect();
        let firsts: Vec<u64> = names.iter().map(|n| start(n)).collect();
        let (senders, receivers): (Vec<SyncSender<Msg>>, Vec<Receiver<Msg>>) = inputs
            .iter()
            .map(|_| sync_channel(ahead(pipeline.emit)))
            .unzip();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        // Drained chunks go back to the workers: no fresh (page-faulting)
        // buffers per chunk.
        let (spare_tx, spare_rx) = sync_channel::<Chunk>(threads * 4);
        let spare_rx = Mutex::new(spare_rx);
        std::thread::scope(|scope| {
            for _ in 0..threads.min(inputs.len()) {
                let (names, firsts, senders) = (&names, &firsts, &senders);
                let (next, stop, bytes, spare) = (&next, &stop, &progress.bytes, &spare_rx);
                scope.spawn(move || {
                    let mut preparer = Preparer::new(pipeline.map.clone());
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= inputs.len() || stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let worker = Worker {
                            pipeline,
                            bytes,
                            spare,
                        };
                        let sent = worker.read_file(
                            &inputs[i],
                            &names[i],
                            firsts[i],
                            &mut preparer,
                            &senders[i],
                        );
                        if sent.is_err() {
                            break; // the calling thread stopped listening
                        }
                    }
                });
            }
            let mut printed_errors = 0;
            let result = (|| -> Result<()> {
                for (i, receiver) in receivers.iter().enumerate() {
                    summary.files += 1;
                    summary.bytes += inputs[i].len().unwrap_or(0);
                    let mut ctx = Ctx {
                        pipeline,
                        name: &names[i],
                        first: firsts[i],
                        progress,
                        printed_errors: &mut printed_errors,
                    };
                    loop {
                        match receiver.recv() {
                            Ok(Msg::Chunk(mut chunk)) => {
                                chunk.deliver(&mut ctx, summary, on_item, |_| {})?;
                                let _ = spare_tx.try_send(chunk);
                            }
                            Ok(Msg::Done(stats)) => {
                                merge_stats(summary, &stats);
                                progress.file_done();
                                break;
                            }
                            Ok(Msg::Failed(message)) => return Err(anyhow!(message)),
                            Err(_) => return Err(anyhow!("a decoding thread stopped")),
                        }
                    }
                }
                Ok(())
            })();
            // Unblock and stop the workers (their sends fail from now on).
            stop.store(true, Ordering::SeqCst);
            drop(receivers);
            result
        })
    }

    /// What every worker shares.
    struct Worker<'a> {
        pipeline: &'a Pipeline,
        /// Bytes read, for progress.
        bytes: &'a Arc<AtomicU64>,
        /// Drained chunks, for reuse.
        spare: &'a Mutex<Receiver<Chunk>>,
    }

    impl Worker<'_> {
        /// Decodes and maps one file into `sender`; `Err` once nobody listens.
        fn read_file(
            &self,
            input: &Input,
            name: &Arc<str>,
            first: u64,
            preparer: &mut Preparer,
            sender: &SyncSender<Msg>,
        ) -> Result<(), ()> {
            let (pipeline, spare) = (self.pipeline, self.spare);
            let mut reader = match pipeline.open(input, name, self.bytes) {
                Ok(reader) => reader,
                Err(e) => return sender.send(Msg::Failed(e.to_string())).map_err(drop),
            };
            let new_chunk = || {
                let recycled = spare.lock().ok().and_then(|rx| rx.try_recv().ok());
                recycled.unwrap_or_default()
            };
            let mut chunk = new_chunk();
            let mut now = now_secs();
            reader.try_for_each_borrowed(|item| {
                match item {
                    Ok(decoded) if decoded.location.index < first => {
                        chunk.outcomes.push(Outcome::BeforeCheckpoint)
                    }
                    item => chunk.push(pipeline, name, preparer, item, now),
                }
                if chunk.outcomes.len() >= CHUNK_RECORDS {
                    let full = std::mem::replace(&mut chunk, new_chunk());
                    sender.send(Msg::Chunk(full)).map_err(drop)?;
                    now = now_secs();
                }
                Ok(())
            })?;
            if !chunk.outcomes.is_empty() {
                sender.send(Msg::Chunk(chunk)).map_err(drop)?;
            }
            sender.send(Msg::Done(reader.stats().clone())).map_err(drop)
        }
    }
}

/// Outcomes of consecutive records, made on a worker, with the JSON of their
/// [`Outcome::Validated`] events one after the other.
#[derive(Default)]
struct Chunk {
    outcomes: Vec<Outcome>,
    json: Vec<u8>,
}

impl Chunk {
    /// Maps one decoded record (or keeps its error) at the end of the chunk.
    fn push(
        &mut self,
        pipeline: &Pipeline,
        name: &Arc<str>,
        preparer: &mut Preparer,
        item: Result<Decoded<'_>, RecordError>,
        now: i64,
    ) {
        let outcome = match item {
            Ok(decoded) => prepare(pipeline, name, preparer, decoded, &mut self.json, now),
            Err(error) => Outcome::Failed(error),
        };
        self.outcomes.push(outcome);
    }

    /// Hands every outcome to `ctx`, in order, after `adjust` (leaving the
    /// chunk empty, for reuse).
    fn deliver(
        &mut self,
        ctx: &mut Ctx<'_>,
        summary: &mut Summary,
        on_item: &mut impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
        mut adjust: impl FnMut(&mut Outcome),
    ) -> Result<()> {
        let mut at = 0;
        for mut outcome in self.outcomes.drain(..) {
            adjust(&mut outcome);
            let mut json: &[u8] = &[];
            if let Outcome::Validated { len, .. } = &outcome {
                json = &self.json[at..at + *len];
                at += *len;
            }
            ctx.deliver(outcome, json, summary, on_item)?;
        }
        self.json.clear();
        Ok(())
    }
}

/// What decode + map made of one record, before it is accounted for.
enum Outcome {
    Mapped(PreparedEvent, Vec<MapWarning>, Location),
    /// [`Emit::Validated`]: the event's `len` bytes of JSON were appended to
    /// the output buffer.
    Validated {
        len: usize,
        rejection: Option<Rejection>,
        warnings: Vec<MapWarning>,
        location: Location,
    },
    /// The mapper skipped it.
    NotMapped(SkipReason, Location),
    /// Of an unknown type, left alone (`skip_unknown_types`).
    UnknownType(Location),
    Failed(RecordError),
    /// Before the resume checkpoint (known to be, without mapping it).
    BeforeCheckpoint,
}

/// One input being run: what accounting of an [`Outcome`] needs.
struct Ctx<'a> {
    pipeline: &'a Pipeline,
    name: &'a Arc<str>,
    first: u64,
    progress: &'a Progress,
    printed_errors: &'a mut u64,
}

impl Ctx<'_> {
    /// Maps a decoded event (no accounting yet: that is [`Ctx::deliver`]).
    fn prepare(
        &self,
        preparer: &mut Preparer,
        decoded: Decoded<'_>,
        out: &mut Vec<u8>,
        now: i64,
    ) -> Outcome {
        if decoded.location.index < self.first {
            return Outcome::BeforeCheckpoint;
        }
        prepare(self.pipeline, self.name, preparer, decoded, out, now)
    }

    /// Accounts for one outcome and hands it to `on_item`; `json` is an
    /// [`Outcome::Validated`]'s JSON.
    fn deliver(
        &mut self,
        outcome: Outcome,
        json: &[u8],
        summary: &mut Summary,
        on_item: &mut impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
    ) -> Result<()> {
        let name = self.name;
        match outcome {
            Outcome::Mapped(_, _, location)
            | Outcome::Validated { location, .. }
            | Outcome::NotMapped(_, location)
            | Outcome::UnknownType(location)
                if location.index < self.first =>
            {
                bump(&mut summary.skipped, "before_checkpoint", 1);
            }
            Outcome::BeforeCheckpoint => bump(&mut summary.skipped, "before_checkpoint", 1),
            Outcome::UnknownType(location) => {
                bump(&mut summary.skipped, "unknown_event_type", 1);
                on_item(
                    Item::Skipped(source_of(name, &location), "unknown_event_type"),
                    summary,
                )?;
            }
            Outcome::Mapped(prepared, warnings, _) => {
                for warning in &warnings {
                    bump(&mut summary.warnings, warning.reason(), 1);
                }
                on_item(Item::Mapped(prepared, &warnings), summary)?;
                self.progress.event();
            }
            Outcome::Validated {
                rejection,
                warnings,
                location,
                ..
            } => {
                for warning in &warnings {
                    bump(&mut summary.warnings, warning.reason(), 1);
                }
                let item = Item::Validated(Validated {
                    json,
                    rejection,
                    file: name,
                    record: location.index,
                });
                on_item(item, summary)?;
                self.progress.event();
            }
            Outcome::NotMapped(skip, location) => {
                bump(&mut summary.skipped, skip.reason(), 1);
                on_item(
                    Item::Skipped(source_of(name, &location), skip.reason()),
                    summary,
                )?;
                self.progress.event();
            }
            Outcome::Failed(error) => {
                let reason = error_reason(&error);
                bump(&mut summary.errors, &reason, 1);
                bump(&mut summary.rejected, &reason, error.records);
                *self.printed_errors += 1;
                if *self.printed_errors <= PRINTED_ERRORS {
                    self.progress.println(&format!("error: {error}"));
                } else if *self.printed_errors == PRINTED_ERRORS + 1 {
                    self.progress
                        .println("error: further input errors are only counted (see the summary)");
                }
                on_item(
                    Item::Failed(source_of(name, &error.location), &error),
                    summary,
                )?;
            }
        }
        Ok(())
    }
}

/// Maps one decoded event; [`Emit::Validated`] JSON goes to the end of `out`.
fn prepare(
    pipeline: &Pipeline,
    name: &Arc<str>,
    preparer: &mut Preparer,
    decoded: Decoded<'_>,
    out: &mut Vec<u8>,
    now: i64,
) -> Outcome {
    let location = decoded.location;
    if pipeline.skip_unknown_types && decoded.event.info().is_none() {
        return Outcome::UnknownType(location);
    }
    match pipeline.emit {
        Emit::Prepared { keep_input } => {
            let source = source_of(name, &location);
            let keep = |mapped: &Mapped<'_>| match keep_input {
                KeepInput::All => true,
                KeepInput::Rejected(validator) => mapped.validate(&validator, now).is_err(),
                KeepInput::None => false,
            };
            match preparer.prepare_keeping(&decoded.event, source, keep) {
                Ok(prepared) => Outcome::Mapped(prepared, preparer.warnings().to_vec(), location),
                Err(skip) => Outcome::NotMapped(skip, location),
            }
        }
        Emit::Validated(validator) => match preparer.map(&decoded.event) {
            Ok(mapped) => {
                out.extend_from_slice(mapped.json);
                Outcome::Validated {
                    len: mapped.json.len(),
                    rejection: mapped.validate(&validator, now).err(),
                    warnings: mapped.warnings.to_vec(),
                    location,
                }
            }
            Err(skip) => Outcome::NotMapped(skip, location),
        },
    }
}

fn merge_stats(summary: &mut Summary, stats: &DecodeStats) {
    summary.read += stats.records();
    for (event_type, n) in &stats.unknown_types {
        bump(&mut summary.unknown_event_types, event_type, *n);
    }
    for (field, n) in &stats.unknown_fields {
        bump(&mut summary.unknown_fields, field, *n);
    }
}

/// A progress line on a terminal; nothing otherwise.
/// Counts the bytes read from an input, for the progress line.
pub(crate) struct Counted<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    pub(crate) fn new(inner: R, bytes: Arc<AtomicU64>) -> Self {
        Counted { inner, bytes }
    }
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    events: std::cell::Cell<u64>,
    /// Bytes read from the inputs so far (as stored, before decompression).
    bytes: Arc<AtomicU64>,
    total_bytes: u64,
}

impl Progress {
    fn new(quiet: bool, files: usize, total_bytes: u64) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(files as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] files {pos}/{len} · {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            events: 0.into(),
            bytes: Arc::new(AtomicU64::new(0)),
            total_bytes,
        }
    }

    fn event(&self) {
        let n = self.events.get() + 1;
        self.events.set(n);
        if n.is_multiple_of(8192)
            && let Some(bar) = &self.bar
        {
            let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
            let bytes = self.bytes.load(Ordering::Relaxed);
            let total = match self.total_bytes {
                0 => String::new(),
                total => format!(" of {}", human_bytes(total)),
            };
            bar.set_message(format!(
                "{} read{total} · {n} events · {:.0} events/s · {}/s",
                human_bytes(bytes),
                n as f64 / seconds,
                human_bytes((bytes as f64 / seconds) as u64)
            ));
        }
    }

    fn file_done(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Parallel NDJSON: a reader thread cuts the (decompressed) input into
/// line-aligned chunks, worker threads decode and map whole chunks, and the
/// calling thread puts the results back in input order and accounts for them
/// with the locations a sequential read gives (lines and record indices are
/// rebased per chunk). Channels are bounded, so memory is too: a few chunks
/// per thread, however big the input.
mod parallel {
    use std::collections::BTreeMap;
    use std::fs::File;
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::sync::atomic::AtomicU64;
    use std::sync::mpsc::{SyncSender, sync_channel};
    use std::sync::{Arc, Mutex};

    use anyhow::Result;
    use currents_events::decode::{
        DecodeOptions, DecodeStats, ErrorKind, Format, Location, Reader, RecordError, detect_format,
    };
    use currents_mixpanel::Preparer;
    use flate2::bufread::MultiGzDecoder;

    use currents_mixpanel::validate::now_secs;

    use super::{Chunk, Ctx, Item, Outcome};
    use crate::summary::Summary;

    /// Target chunk size: ~250 Braze-sized events (small enough that the
    /// chunks in flight stay a few MB).
    const CHUNK: usize = 256 * 1024;
    /// Read buffer (the same as the sequential reader's, so detection sees
    /// the same head).
    const BUF: usize = 256 * 1024;

    /// Worker threads: `CURRENTS_THREADS`, else one per core (`1`: read
    /// sequentially). Two workers use ~1.35× the CPU of one for ~1.5× the
    /// throughput on 2 free cores, and gain nothing when the cores are busy
    /// with other work (see BENCHMARKS.md).
    pub fn threads() -> usize {
        std::env::var("CURRENTS_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub type Stream = Box<dyn BufRead + Send>;

    /// The file's (decompressed) content when it is NDJSON. `None` (read it
    /// sequentially, which also reports any problem opening it) otherwise.
    pub fn open_ndjson(
        path: &Path,
        options: &DecodeOptions,
        bytes: Arc<AtomicU64>,
    ) -> Option<Stream> {
        let file = super::Counted::new(File::open(path).ok()?, bytes);
        let mut buffered = BufReader::with_capacity(BUF, file);
        let gzip = buffered.fill_buf().ok()?.starts_with(&[0x1f, 0x8b]);
        let mut stream: Stream = if gzip {
            Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(buffered)))
        } else {
            Box::new(buffered)
        };
        let format = match options.format {
            Some(format) => format,
            None => {
                let head = stream.fill_buf().ok()?;
                detect_format(head, head.is_empty()).ok()?
            }
        };
        (format == Format::Ndjson).then_some(stream)
    }

    /// A piece of the input, in order (`seq`); `lines`: lines before it.
    struct Job {
        seq: u64,
        lines: u64,
        what: Piece,
    }

    enum Piece {
        /// Whole lines. `shifted`: a newline was put in front (so the chunk
        /// cannot look gzip-compressed); its line numbers are one too high.
        Lines { data: Vec<u8>, shifted: bool },
        /// A line over the record limit, skipped while reading (its length).
        TooLong(u64),
        /// Reading failed; nothing follows.
        ReadError(String),
    }

    struct Done {
        seq: u64,
        lines: u64,
        what: Result<(Chunk, DecodeStats, bool), Piece>,
    }

    pub fn run(
        ctx: &mut Ctx<'_>,
        stream: Stream,
        threads: usize,
        summary: &mut Summary,
        on_item: &mut impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
    ) -> Result<DecodeStats> {
        let pipeline = ctx.pipeline;
        let name = ctx.name;
        let max = pipeline.decode.max_record_bytes;
        let options = DecodeOptions {
            format: Some(Format::Ndjson),
            ..pipeline.decode.clone()
        };
        std::thread::scope(|scope| {
            let (work_tx, work_rx) = sync_channel::<Job>(threads * 2);
            let (done_tx, done_rx) = sync_channel::<Done>(threads * 2);
            // Buffers go round instead of being freed: no fresh (page-faulting)
            // megabyte allocations per chunk.
            let (free_tx, free_rx) = sync_channel::<Vec<u8>>(threads * 4);
            let (spare_tx, spare_rx) = sync_channel::<Chunk>(threads * 4);
            let spare_rx = Arc::new(Mutex::new(spare_rx));
            scope.spawn(move || read_chunks(stream, max, &work_tx, &free_rx));
            let work_rx = Arc::new(Mutex::new(work_rx));
            for _ in 0..threads {
                let (work_rx, done_tx) = (Arc::clone(&work_rx), done_tx.clone());
                let (free_tx, spare_rx) = (free_tx.clone(), Arc::clone(&spare_rx));
                let options = &options;
                scope.spawn(move || {
                    let mut preparer = Preparer::new(pipeline.map.clone());
                    loop {
                        let job = match work_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok(job) = job else { break };
                        let what = match job.what {
                            Piece::Lines { data, shifted } => {
                                let mut reader = Reader::from_bytes(name, &data, options.clone());
                                let spare = spare_rx.lock().ok().and_then(|rx| rx.try_recv().ok());
                                let mut chunk = spare.unwrap_or_default();
                                let now = now_secs();
                                let read = reader.try_for_each_borrowed(|item| {
                                    chunk.push(pipeline, name, &mut preparer, item, now);
                                    Ok::<(), std::convert::Infallible>(())
                                });
                                let Ok(()) = read;
                                let stats = reader.stats().clone();
                                drop(reader);
                                let _ = free_tx.try_send(data);
                                Ok((chunk, stats, shifted))
                            }
                            other => Err(other),
                        };
                        let done = Done {
                            seq: job.seq,
                            lines: job.lines,
                            what,
                        };
                        if done_tx.send(done).is_err() {
                            break;
                        }
                    }
                });
            }
            // Workers hold the only handles now: when they stop, the reader
            // stops too.
            drop((work_rx, done_tx, free_tx, spare_rx));
            let mut stats = DecodeStats::default();
            let mut index = 0u64;
            let mut pending = BTreeMap::new();
            let mut next = 0u64;
            let result = (|| -> Result<()> {
                for done in &done_rx {
                    pending.insert(done.seq, done);
                    while let Some(done) = pending.remove(&next) {
                        next += 1;
                        deliver(
                            ctx, done, &mut index, &mut stats, summary, on_item, &spare_tx,
                        )?;
                    }
                }
                Ok(())
            })();
            drop(done_rx);
            result.map(|()| stats)
        })
    }

    fn rebase(location: &mut Location, lines: u64, shifted: bool, index: u64) {
        if let Some(line) = &mut location.line {
            *line = *line + lines - u64::from(shifted);
        }
        location.index += index;
    }

    fn deliver(
        ctx: &mut Ctx<'_>,
        done: Done,
        index: &mut u64,
        stats: &mut DecodeStats,
        summary: &mut Summary,
        on_item: &mut impl FnMut(Item<'_>, &mut Summary) -> Result<()>,
        spare: &SyncSender<Chunk>,
    ) -> Result<()> {
        let lines = done.lines;
        let error = |location, kind, message, records| RecordError {
            source_name: ctx.name.clone(),
            location,
            kind,
            message,
            records,
        };
        match done.what {
            Ok((mut chunk, chunk_stats, shifted)) => {
                let base = *index;
                chunk.deliver(ctx, summary, on_item, |outcome| match outcome {
                    Outcome::Mapped(prepared, _, location) => {
                        rebase(location, lines, shifted, base);
                        let source = prepared.source_mut();
                        source.record = location.index;
                        source.line = location.line;
                    }
                    Outcome::Validated { location, .. }
                    | Outcome::NotMapped(_, location)
                    | Outcome::UnknownType(location) => rebase(location, lines, shifted, base),
                    Outcome::Failed(error) => rebase(&mut error.location, lines, shifted, base),
                    Outcome::BeforeCheckpoint => {}
                })?;
                let _ = spare.try_send(chunk);
                *index += chunk_stats.records();
                add(stats, chunk_stats);
            }
            Err(Piece::TooLong(len)) => {
                let max = ctx.pipeline.decode.max_record_bytes;
                let e = error(
                    Location::at_line(lines + 1, *index),
                    ErrorKind::TooLarge,
                    format!("line of {len} bytes exceeds the limit of {max} bytes"),
                    1,
                );
                *index += 1;
                *stats.errors.entry(e.kind).or_default() += 1;
                stats.failed_records += 1;
                ctx.deliver(Outcome::Failed(e), &[], summary, on_item)?;
            }
            Err(Piece::ReadError(message)) => {
                let e = error(
                    Location::at_line(lines + 1, *index),
                    ErrorKind::Io,
                    format!("read error: {message}"),
                    0,
                );
                *stats.errors.entry(e.kind).or_default() += 1;
                ctx.deliver(Outcome::Failed(e), &[], summary, on_item)?;
            }
            Err(Piece::Lines { .. }) => unreachable!("workers decode lines"),
        }
        Ok(())
    }

    fn add(total: &mut DecodeStats, chunk: DecodeStats) {
        total.decoded += chunk.decoded;
        total.skipped_unknown += chunk.skipped_unknown;
        total.failed_records += chunk.failed_records;
        for (kind, n) in chunk.errors {
            *total.errors.entry(kind).or_default() += n;
        }
        for (key, n) in chunk.unknown_types {
            *total.unknown_types.entry(key).or_default() += n;
        }
        for (key, n) in chunk.unknown_fields {
            *total.unknown_fields.entry(key).or_default() += n;
        }
    }

    /// The reader thread: whole lines in chunks of about [`CHUNK`] bytes.
    fn read_chunks(
        mut stream: Stream,
        max: usize,
        work: &SyncSender<Job>,
        free: &std::sync::mpsc::Receiver<Vec<u8>>,
    ) {
        let mut seq = 0u64;
        let mut lines = 0u64;
        let mut send = |lines: &mut u64, what: Piece| {
            if let Piece::Lines { data, .. } = &what {
                // Counted before sending: the next chunk's base.
                let n = memchr::memchr_iter(b'\n', data).count() as u64;
                let job = Job {
                    seq,
                    lines: *lines,
                    what,
                };
                *lines += n;
                seq += 1;
                return work.send(job).is_ok();
            }
            let job = Job {
                seq,
                lines: *lines,
                what,
            };
            seq += 1;
            work.send(job).is_ok()
        };
        let lines_piece = |mut data: Vec<u8>| {
            let shifted = data.starts_with(&[0x1f, 0x8b]);
            if shifted {
                data.insert(0, b'\n');
            }
            Piece::Lines { data, shifted }
        };
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let mut data = free
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK + BUF));
            data.clear();
            data.extend_from_slice(&carry);
            carry.clear();
            // Fill to CHUNK bytes, then on until a newline (or a line too
            // long to keep, or the end).
            let mut eof = false;
            let mut failed = None;
            let mut scanned = 0;
            let mut cut = None;
            loop {
                if data.len() >= CHUNK {
                    if let Some(i) = data[scanned..].iter().rposition(|&b| b == b'\n') {
                        cut = Some(scanned + i + 1);
                        break;
                    }
                    scanned = data.len();
                    if data.len() > max {
                        break; // a line over the limit (no newline in it yet)
                    }
                }
                match stream.fill_buf() {
                    Ok([]) => {
                        eof = true;
                        break;
                    }
                    Ok(buf) => {
                        let n = buf.len();
                        data.extend_from_slice(buf);
                        stream.consume(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed = Some(e.to_string());
                        break;
                    }
                }
            }
            if eof || failed.is_some() {
                // Whole lines first, then the rest (the last line at the end
                // of input; lost with a read error, as when reading sequentially).
                let cut = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let rest = data.split_off(cut);
                if !data.is_empty() && !send(&mut lines, lines_piece(data)) {
                    return;
                }
                if let Some(message) = failed {
                    send(&mut lines, Piece::ReadError(message));
                    return;
                }
                if !rest.is_empty() {
                    send(&mut lines, lines_piece(rest));
                }
                return;
            }
            let Some(cut) = cut else {
                // A line longer than `max`: skip to its end, counting.
                let mut len = data.len() as u64;
                drop(data);
                loop {
                    match stream.fill_buf() {
                        Ok([]) => break,
                        Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                            Some(i) => {
                                len += i as u64;
                                stream.consume(i + 1);
                                break;
                            }
                            None => {
                                let n = buf.len();
                                len += n as u64;
                                stream.consume(n);
                            }
                        },
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // The long line counts as read, as sequentially it
                            // is reported only once complete.
                            send(&mut lines, Piece::ReadError(e.to_string()));
                            return;
                        }
                    }
                }
                if !send(&mut lines, Piece::TooLong(len)) {
                    return;
                }
                lines += 1;
                continue;
            };
            carry.extend_from_slice(&data[cut..]);
            data.truncate(cut);
            if !send(&mut lines, lines_piece(data)) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Everything `on_item` saw, as text, plus the summary.
    fn run(
        pipeline: &Pipeline,
        inputs: &[Input],
        first: u64,
        threads: usize,
    ) -> (Vec<String>, Summary) {
        let mut seen = Vec::new();
        let mut summary = Summary::default();
        pipeline
            .run_with_threads(
                inputs,
                &mut summary,
                |_| first,
                |item, _| {
                    seen.push(match item {
                        Item::Mapped(event, warnings) => format!(
                            "mapped {:?} {warnings:?} {}",
                            event.source(),
                            String::from_utf8_lossy(event.json())
                        ),
                        Item::Validated(Validated {
                            json,
                            rejection,
                            file,
                            record,
                        }) => format!(
                            "validated {file} {record} {rejection:?} {}",
                            String::from_utf8_lossy(json)
                        ),
                        Item::Skipped(source, reason) => format!("skipped {source:?} {reason}"),
                        Item::Failed(source, error) => {
                            format!("failed {source:?} {error} {error:?}")
                        }
                    });
                    Ok(())
                },
                threads,
            )
            .unwrap();
        summary.elapsed_s = 0.0;
        (seen, summary)
    }

    #[test]
    fn several_files_in_parallel_are_the_sequential_result() {
        let dir = tempfile::tempdir().unwrap();
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
        let mut inputs = crate::inputs::expand(&[sample]).unwrap();
        assert!(inputs.len() > 90);
        // A damaged file among them, and one whose records are mostly bad.
        let damaged = dir.path().join("damaged.ndjson");
        std::fs::write(&damaged, b"{not json\n\n{\"event_type\":\"users.new.Thing\",\"id\":\"x\",\"time\":1,\"external_user_id\":\"u\"}\n").unwrap();
        inputs.insert(40, Input::File(damaged));
        let truncated = dir.path().join("truncated.avro");
        let avro = inputs
            .iter()
            .find_map(|i| match i {
                Input::File(p) if p.extension().is_some_and(|e| e == "avro") => Some(p.clone()),
                _ => None,
            })
            .unwrap();
        let bytes = std::fs::read(avro).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
        inputs.insert(7, Input::File(truncated));
        for (emit, first) in [
            (Emit::Validated(Validator::default()), 0),
            (
                Emit::Prepared {
                    keep_input: KeepInput::All,
                },
                2,
            ),
        ] {
            let pipeline = Pipeline {
                decode: DecodeOptions::default(),
                map: MapOptions::default(),
                quiet: true,
                emit,
                skip_unknown_types: false,
            };
            let sequential = run(&pipeline, &inputs, first, 1);
            assert!(sequential.0.len() > 250, "{:?}", sequential.1);
            assert!(sequential.1.errors.len() >= 2, "{:?}", sequential.1);
            for threads in [2, 5] {
                let parallel = run(&pipeline, &inputs, first, threads);
                assert_eq!(parallel.1, sequential.1);
                assert_eq!(parallel.0, sequential.0);
            }
        }
    }

    #[test]
    fn a_missing_file_stops_a_parallel_run_too() {
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data");
        let mut inputs = crate::inputs::expand(&[sample]).unwrap();
        inputs.insert(3, Input::File("no/such/file.avro".into()));
        let pipeline = Pipeline {
            decode: DecodeOptions::default(),
            map: MapOptions::default(),
            quiet: true,
            emit: Emit::Validated(Validator::default()),
            skip_unknown_types: false,
        };
        for threads in [1, 2] {
            let mut summary = Summary::default();
            let mut seen = 0;
            let error = pipeline
                .run_with_threads(
                    &inputs,
                    &mut summary,
                    |_| 0,
                    |_, _| {
                        seen += 1;
                        Ok(())
                    },
                    threads,
                )
                .unwrap_err();
            assert!(
                error.to_string().contains("cannot open no/such/file.avro"),
                "{error}"
            );
            assert_eq!(summary.files, 4, "{threads} thread(s)");
            assert!(seen > 0);
        }
    }

    #[test]
    fn parallel_ndjson_is_the_sequential_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        let events: Vec<_> = currents_events::sample::sample_all(3).collect();
        let mut n = 0;
        while text.len() < 6_000_000 {
            for event in &events {
                n += 1;
                text.extend_from_slice(currents_events::to_flat_json(event).as_bytes());
                text.push(b'\n');
                match n % 997 {
                    0 => text.extend_from_slice(b"{not json\n"),
                    1 => text.extend_from_slice(b"\n   \n"),
                    2 => text.extend_from_slice(b"\x1f\x8b garbage\n"),
                    3 if n < 3000 => {
                        text.extend_from_slice(&vec![b'x'; 1_300_000]);
                        text.push(b'\n');
                    }
                    4 => text.extend_from_slice(b"{\"event_type\":\"users.new.Thing\",\"id\":\"a\",\"time\":1,\"external_user_id\":\"u\"}\n"),
                    5 => text.extend_from_slice(b"{\"events\":[{\"event_type\":\"users.new.Thing\",\"id\":\"b\",\"time\":2},{\"x\":1}]}\n"),
                    _ => {}
                }
            }
        }
        text.extend_from_slice(b"{\"last\":\"line without newline\"}");
        let plain = dir.path().join("events.ndjson");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.path().join("events.ndjson.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&text).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let inputs = [Input::File(plain), Input::File(gz)];
        let validated = Emit::Validated(Validator::default());
        for (skip_unknown_types, emit, max, first) in [
            (
                false,
                Emit::Prepared {
                    keep_input: KeepInput::None,
                },
                1 << 20,
                0,
            ),
            (
                true,
                Emit::Prepared {
                    keep_input: KeepInput::All,
                },
                1 << 20,
                0,
            ),
            (false, validated, 1 << 20, 0),
            (true, validated, 2_000_000, 1234),
            (
                false,
                Emit::Prepared {
                    keep_input: KeepInput::Rejected(Validator::default()),
                },
                2_000_000,
                1234,
            ),
        ] {
            let pipeline = Pipeline {
                decode: DecodeOptions {
                    max_record_bytes: max,
                    ..DecodeOptions::default()
                },
                map: MapOptions::default(),
                quiet: true,
                emit,
                skip_unknown_types,
            };
            let sequential = run(&pipeline, &inputs, first, 1);
            assert!(sequential.0.len() > 3000);
            assert!(sequential.1.errors.len() >= 2, "{:?}", sequential.1);
            for threads in [2, 3] {
                let parallel = run(&pipeline, &inputs, first, threads);
                assert_eq!(parallel.1, sequential.1);
                assert_eq!(parallel.0.len(), sequential.0.len());
                for (a, b) in parallel.0.iter().zip(&sequential.0) {
                    assert_eq!(a, b);
                }
            }
        }
    }
}
