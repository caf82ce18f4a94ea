//! The worker side: opening a source once, decoding it (on one thread, or in
//! line-aligned chunks on several when it is NDJSON), mapping and
//! pre-validating every record into [`Chunk`]s of outcomes. Locations are
//! made absolute here, before anything leaves a source, so what the ledger,
//! the dead letter and the checkpoint see is always where the record is.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use currents_events::Event;
use currents_events::decode::{
    AvroPiece, AvroSplitter, DecodeOptions, DecodeStats, Decoded, ErrorKind, Format, Location,
    Reader, RecordError, Split, detect_format,
};
use currents_mixpanel::{DeliveryFailure, MapWarning, Mapped, OwnedMapped, Preparer, Rejection};
use flate2::bufread::MultiGzDecoder;
use serde_json::value::RawValue;

use crate::checkpoint::{Checkpoint, Fingerprint, fingerprint_stream};
use crate::deadletter::DeadLetterLine;
use crate::documents::{Work, next_buffer, read_documents, read_into};
use crate::options::{InvalidEvents, KeepInput, PipelineOptions, Records, UnknownTypes};
use crate::report::TypeKey;
use crate::run::StopCause;
use crate::source::Source;

/// Read buffer size; also the window format detection looks at.
pub(crate) const BUF: usize = 256 * 1024;
/// Target size of a parallel NDJSON chunk: ~250 Braze-sized events. Each
/// chunk costs thread wakeups (system time), so not smaller; an export
/// holds many chunks' output while it waits on the network, and 512 KiB
/// took its peak RSS from ~52 to 59-69 MB, so not larger.
const CHUNK_BYTES: usize = 256 * 1024;
/// Outcomes per chunk of a source read on one thread.
pub(crate) const CHUNK_RECORDS: usize = 256;

/// What became of one record on the worker.
pub(crate) enum Outcome {
    /// Mapped; its `len` bytes of JSON and a `\n` follow the previous ones
    /// in [`Chunk::json`].
    Mapped {
        len: usize,
        rejection: Option<Rejection>,
        warnings: Vec<MapWarning>,
        location: Location,
        key: TypeKey,
        input: Option<Box<RawValue>>,
    },
    Skipped {
        reason: &'static str,
        location: Location,
        key: TypeKey,
    },
    Failed(RecordError),
}

impl Outcome {
    fn location_mut(&mut self) -> &mut Location {
        match self {
            Outcome::Mapped { location, .. } | Outcome::Skipped { location, .. } => location,
            Outcome::Failed(error) => &mut error.location,
        }
    }
}

/// Outcomes of consecutive records of one source, with the JSON of their
/// mapped events one after the other, each ended by `\n` (NDJSON lines: an
/// NDJSON sink writes runs of them as they are).
#[derive(Default)]
pub(crate) struct Chunk {
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) json: Vec<u8>,
}

impl Chunk {
    pub(crate) fn clear(&mut self) {
        self.outcomes.clear();
        self.json.clear();
    }
}

/// What reading one source produces, in order: `Start`, chunks, `End`; or
/// `Ignored`; or `Stop`.
pub(crate) enum Msg {
    Start {
        fingerprint: Option<Fingerprint>,
        position: u64,
    },
    Chunk(Chunk),
    End(Box<DecodeStats>),
    /// A walked file that is not Currents data (nothing read from it counts).
    Ignored(&'static str),
    Stop(StopCause),
}

/// What every worker of one run shares.
pub(crate) struct Ctx<'a> {
    pub(crate) options: &'a PipelineOptions,
    pub(crate) sources: &'a [Source],
    pub(crate) checkpoint: Option<&'a Checkpoint>,
    /// Bytes read from the sources, as stored.
    pub(crate) bytes: Arc<AtomicU64>,
    pub(crate) cancel: &'a AtomicBool,
    spare: Mutex<Vec<Chunk>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        options: &'a PipelineOptions,
        sources: &'a [Source],
        checkpoint: Option<&'a Checkpoint>,
        cancel: &'a AtomicBool,
    ) -> Self {
        Ctx {
            options,
            sources,
            checkpoint,
            bytes: Arc::new(AtomicU64::new(0)),
            cancel,
            spare: Mutex::new(Vec::new()),
        }
    }

    /// An empty chunk, recycled when one is spare (no fresh, page-faulting
    /// buffers per chunk).
    pub(crate) fn chunk(&self) -> Chunk {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        spare.pop().unwrap_or_default()
    }

    /// Gives a drained chunk back for reuse.
    pub(crate) fn recycle(&self, mut chunk: Chunk) {
        chunk.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < 64 {
            spare.push(chunk);
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Maps decoded records into chunks (one per worker thread).
pub(crate) struct Mapper<'a> {
    options: &'a PipelineOptions,
    preparer: Preparer,
    now: i64,
}

impl<'a> Mapper<'a> {
    pub(crate) fn new(options: &'a PipelineOptions) -> Self {
        Mapper {
            options,
            preparer: Preparer::new(options.map.clone()),
            now: options.validator.now(),
        }
    }

    /// Re-reads the clock (once per chunk: it is a system call).
    pub(crate) fn tick(&mut self) {
        self.now = self.options.validator.now();
    }

    /// Maps one decoded record (or keeps its error) at the end of `chunk`;
    /// records before `first` are only counted as such.
    pub(crate) fn push(
        &mut self,
        chunk: &mut Chunk,
        item: Result<Decoded<'_>, RecordError>,
        first: u64,
    ) {
        // Borrowed, not moved out: the event is ~830 bytes.
        let decoded = match item {
            Ok(ref decoded) => decoded,
            Err(error) => {
                chunk.outcomes.push(Outcome::Failed(error));
                return;
            }
        };
        let location = decoded.location;
        let key = TypeKey::of(&decoded.event);
        if location.index < first {
            chunk.outcomes.push(Outcome::Skipped {
                reason: "before_checkpoint",
                location,
                key,
            });
            return;
        }
        if self.options.unknown_types == UnknownTypes::Skip && decoded.event.info().is_none() {
            chunk.outcomes.push(Outcome::Skipped {
                reason: "unknown_event_type",
                location,
                key,
            });
            return;
        }
        // The event is mapped straight onto the end of the chunk's JSON.
        self.preparer.resume_kept(&mut chunk.json);
        let outcome = self.map_kept(&decoded.event, location, key);
        self.preparer.take_kept(&mut chunk.json);
        if matches!(outcome, Outcome::Mapped { .. }) {
            chunk.json.push(b'\n');
        }
        chunk.outcomes.push(outcome);
    }

    /// Maps `event` with the preparer, keeping its JSON when it maps.
    fn map_kept(&mut self, event: &Event, location: Location, key: TypeKey) -> Outcome {
        let rejection = match self.preparer.map(event) {
            Ok(mapped) => self.options.validator.validate(&mapped, self.now).err(),
            Err(skip) => {
                return Outcome::Skipped {
                    reason: skip.reason(),
                    location,
                    key,
                };
            }
        };
        let input = self
            .keeps_input(rejection)
            .then(|| self.preparer.input_record(event))
            .flatten();
        let outcome = mapped_outcome(&self.preparer.last(), rejection, location, key, input);
        self.preparer.keep_last();
        outcome
    }

    fn keeps_input(&self, rejection: Option<Rejection>) -> bool {
        match self.options.keep_input {
            KeepInput::All => true,
            KeepInput::Rejected => {
                rejection.is_some() && self.options.invalid == InvalidEvents::Reject
            }
            KeepInput::None => false,
        }
    }

    /// One line of a dead letter: its event again when the reason is
    /// retryable, else a `not_retryable` skip.
    fn push_dead_letter(
        &mut self,
        chunk: &mut Chunk,
        line: &[u8],
        location: Location,
        name: &Arc<str>,
        first: u64,
    ) {
        let parsed: DeadLetterLine = match serde_json::from_slice(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                chunk.outcomes.push(Outcome::Failed(RecordError {
                    source_name: Arc::clone(name),
                    location,
                    kind: ErrorKind::NotAnEvent,
                    message: format!("not a dead-letter line: {e}"),
                    records: 1,
                }));
                return;
            }
        };
        let key = TypeKey::named(&parsed.event_type);
        let retryable =
            DeliveryFailure::from_reason(&parsed.reason).is_some_and(DeliveryFailure::is_retryable);
        let event = match parsed.mixpanel {
            Some(event) if retryable && location.index >= first => event,
            _ => {
                let reason = if location.index < first {
                    "before_checkpoint"
                } else {
                    "not_retryable"
                };
                chunk.outcomes.push(Outcome::Skipped {
                    reason,
                    location,
                    key,
                });
                return;
            }
        };
        let owned = OwnedMapped::from_value(&event);
        let mapped = owned.as_mapped();
        let rejection = self.options.validator.validate(&mapped, self.now).err();
        let input = parsed
            .input
            .filter(|_| self.keeps_input(rejection))
            .and_then(|v| serde_json::value::to_raw_value(&v).ok());
        push_mapped(chunk, &mapped, rejection, location, key, input);
    }
}

/// Appends a mapped event's outcome and its JSON to `chunk`.
fn push_mapped(
    chunk: &mut Chunk,
    mapped: &Mapped<'_>,
    rejection: Option<Rejection>,
    location: Location,
    key: TypeKey,
    input: Option<Box<RawValue>>,
) {
    chunk.json.extend_from_slice(mapped.json);
    chunk.json.push(b'\n');
    let outcome = mapped_outcome(mapped, rejection, location, key, input);
    chunk.outcomes.push(outcome);
}

/// The outcome of a mapped event whose JSON is (or goes) at the end of its
/// chunk's.
fn mapped_outcome(
    mapped: &Mapped<'_>,
    rejection: Option<Rejection>,
    location: Location,
    key: TypeKey,
    input: Option<Box<RawValue>>,
) -> Outcome {
    Outcome::Mapped {
        len: mapped.json.len(),
        rejection,
        warnings: mapped.warnings.to_vec(),
        location,
        key,
        input,
    }
}

/// Reads a dead letter (NDJSON, one record per non-blank line).
fn read_dead_letter(
    ctx: &Ctx<'_>,
    name: &Arc<str>,
    mut stream: Stream,
    first: u64,
    mapper: &mut Mapper<'_>,
    emit: &mut dyn FnMut(Msg) -> bool,
) {
    let mut chunk = ctx.chunk();
    let mut stats = DecodeStats::default();
    let (mut index, mut line_no) = (0u64, 0u64);
    let mut line = Vec::new();
    mapper.tick();
    loop {
        line.clear();
        match stream.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                chunk.outcomes.push(Outcome::Failed(RecordError {
                    source_name: Arc::clone(name),
                    location: Location::at_line(line_no + 1, index),
                    kind: ErrorKind::Io,
                    message: format!("read error: {e}"),
                    records: 0,
                }));
                *stats.errors.entry(ErrorKind::Io).or_default() += 1;
                break;
            }
        }
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = Location::at_line(line_no, index);
        index += 1;
        mapper.push_dead_letter(&mut chunk, &line, location, name, first);
        if let Some(Outcome::Failed(e)) = chunk.outcomes.last() {
            *stats.errors.entry(e.kind).or_default() += 1;
            stats.failed_records += 1;
        } else {
            stats.decoded += 1;
        }
        if chunk.outcomes.len() >= CHUNK_RECORDS {
            let full = std::mem::replace(&mut chunk, ctx.chunk());
            if !emit(Msg::Chunk(full)) || ctx.cancelled() {
                return;
            }
            mapper.tick();
        }
    }
    if (chunk.outcomes.is_empty() || emit(Msg::Chunk(chunk))) && !ctx.cancelled() {
        emit(Msg::End(Box::new(stats)));
    }
}

/// Counts the bytes read from a source, for progress.
struct Counted<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Stream = Box<dyn BufRead + Send>;

/// Reads source `index` from its start, emitting its messages in order.
/// `threads > 1` lets a single NDJSON source be decoded in parallel chunks.
/// `emit` returns false when nobody listens any more.
pub(crate) fn read_source(
    ctx: &Ctx<'_>,
    index: usize,
    threads: usize,
    mapper: &mut Mapper<'_>,
    emit: &mut dyn FnMut(Msg) -> bool,
) {
    let source = &ctx.sources[index];
    let name = source.shared_name();
    let reader = match source.open() {
        Ok(reader) => reader,
        Err(error) => {
            emit(Msg::Stop(StopCause::Open {
                name: name.to_string(),
                error,
            }));
            return;
        }
    };
    let (fingerprint, reader) = match ctx.checkpoint {
        Some(_) => match fingerprint_stream(source.size(), reader) {
            Ok((fingerprint, reader)) => (Some(fingerprint), reader),
            Err(error) => {
                emit(Msg::Stop(StopCause::Open {
                    name: name.to_string(),
                    error,
                }));
                return;
            }
        },
        None => (None, reader),
    };
    let counted = Counted {
        inner: reader,
        bytes: Arc::clone(&ctx.bytes),
    };
    let mut options = ctx.options.decode.clone();
    let opened = open_stream(counted, options.format);
    if let Err((kind, _)) = &opened
        && source.walked()
        && matches!(kind, ErrorKind::Empty | ErrorKind::UnknownFormat)
    {
        emit(Msg::Ignored(match kind {
            ErrorKind::Empty => "empty_file",
            _ => "not_currents_data",
        }));
        return;
    }
    let position = match (ctx.checkpoint, &fingerprint) {
        (Some(checkpoint), Some(fingerprint)) => match checkpoint.position(name, fingerprint) {
            Ok(position) => position,
            Err(error) => {
                emit(Msg::Stop(StopCause::Checkpoint(error)));
                return;
            }
        },
        _ => 0,
    };
    if !emit(Msg::Start {
        fingerprint,
        position,
    }) {
        return;
    }
    let (stream, format) = match opened {
        Ok(opened) => opened,
        Err((kind, message)) => {
            let error = RecordError {
                source_name: Arc::clone(name),
                location: Location::at_offset(0, 0),
                kind,
                message,
                records: 0,
            };
            let mut stats = DecodeStats::default();
            stats.errors.insert(kind, 1);
            let mut chunk = ctx.chunk();
            chunk.outcomes.push(Outcome::Failed(error));
            if emit(Msg::Chunk(chunk)) {
                emit(Msg::End(Box::new(stats)));
            }
            return;
        }
    };
    options.format = Some(format);
    if ctx.options.records == Records::DeadLetter {
        read_dead_letter(ctx, name, stream, position, mapper, emit);
        return;
    }
    if threads > 1 && format == Format::Ndjson {
        let stats = parallel_ndjson(ctx, name, stream, &options, threads, position, emit);
        if let Some(stats) = stats {
            emit(Msg::End(Box::new(stats)));
        }
        return;
    }
    if threads > 1 && format == Format::HttpJson {
        let stats = parallel_http(ctx, name, stream, &options, threads, position, emit);
        if let Some(stats) = stats {
            emit(Msg::End(Box::new(stats)));
        }
        return;
    }
    let stream = if threads > 1 && format == Format::Avro {
        match AvroSplitter::new(stream, &options) {
            Ok(splitter) => {
                let stats = parallel_avro(ctx, name, splitter, &options, threads, position, emit);
                if let Some(stats) = stats {
                    emit(Msg::End(Box::new(stats)));
                }
                return;
            }
            // No usable header: read sequentially, which reports why.
            Err(stream) => stream,
        }
    } else {
        stream
    };
    let mut reader = Reader::detected(name, stream, format, options);
    let mut chunk = ctx.chunk();
    mapper.tick();
    let read = reader.try_for_each_borrowed(|item| {
        mapper.push(&mut chunk, item, position);
        if chunk.outcomes.len() >= CHUNK_RECORDS {
            let full = std::mem::replace(&mut chunk, ctx.chunk());
            if !emit(Msg::Chunk(full)) || ctx.cancelled() {
                return Err(());
            }
            mapper.tick();
        }
        Ok(())
    });
    if read.is_err() {
        return;
    }
    if !chunk.outcomes.is_empty() && !emit(Msg::Chunk(chunk)) {
        return;
    }
    emit(Msg::End(Box::new(reader.stats().clone())));
}

/// The source's decompressed bytes and their format (forced, or detected
/// from the head of the same stream: a source is never opened twice).
fn open_stream(
    input: impl Read + Send + 'static,
    forced: Option<Format>,
) -> Result<(Stream, Format), (ErrorKind, String)> {
    let mut raw = BufReader::with_capacity(BUF, input);
    let head = raw
        .fill_buf()
        .map_err(|e| (ErrorKind::Io, format!("read error: {e}")))?;
    let mut stream: Stream = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let format = match forced {
        Some(format) => format,
        None => {
            let head = stream
                .fill_buf()
                .map_err(|e| (ErrorKind::Io, format!("read error: {e}")))?;
            detect_format(head, head.is_empty())?
        }
    };
    Ok((stream, format))
}

/// A piece of an NDJSON stream, in order (`seq`); `lines`: lines before it.
struct Job {
    seq: u64,
    lines: u64,
    what: Piece,
}

enum Piece {
    /// Whole lines. `shifted`: a newline was put in front (so the chunk
    /// cannot look gzip-compressed); its line numbers are one too high.
    /// `data[..len]`; the rest of `data` is spare room (see [`next_buffer`]).
    Lines {
        data: Vec<u8>,
        len: usize,
        shifted: bool,
    },
    /// A line over the record limit, skipped while reading (its length).
    TooLong(u64),
    /// Reading failed; nothing follows.
    ReadError(String),
}

struct Done {
    seq: u64,
    lines: u64,
    what: Result<(Chunk, DecodeStats, Place), Piece>,
    /// Decoding gave up in it (see `Reader::gave_up`): as when reading
    /// sequentially, nothing after it counts.
    last: bool,
}

/// How a decoded piece's locations become the source's.
#[derive(Clone, Copy, Default)]
struct Place {
    /// Its line numbers are one too high (see [`Piece::Lines`]).
    shifted: bool,
    /// An offset `o` in it is `o - skipped + base` in the source, for
    /// `Some((skipped, base))` (an Avro piece: its copied header is
    /// skipped; a Custom HTTP piece: nothing is).
    offsets: Option<(u64, u64)>,
}

/// Parallel NDJSON: a reader thread cuts the stream into line-aligned
/// chunks, workers decode and map whole chunks, and this thread puts them
/// back in order with absolute locations. Channels are bounded, so memory is
/// a few chunks per thread however big the input. `None` when the listener
/// stopped.
fn parallel_ndjson(
    ctx: &Ctx<'_>,
    name: &Arc<str>,
    stream: Stream,
    options: &DecodeOptions,
    threads: usize,
    first: u64,
    emit: &mut dyn FnMut(Msg) -> bool,
) -> Option<DecodeStats> {
    let max = options.max_record_bytes;
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<Job>(threads * 2);
        let (done_tx, done_rx) = sync_channel::<Done>(threads * 2);
        // Buffers go round instead of being freed.
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(threads * 4);
        scope.spawn(move || read_chunks(stream, max, &work_tx, &free_rx));
        // The workers hold the channels' other ends: when they stop, the
        // reader does, and the results end.
        spawn_workers(scope, threads, ctx.options, work_rx, move |mapper, job| {
            let what = match job.what {
                Piece::Lines { data, len, shifted } => {
                    let mut reader = Reader::from_bytes(name, &data[..len], options.clone());
                    let chunk = decode_piece(ctx, mapper, &mut reader);
                    let stats = reader.stats().clone();
                    drop(reader);
                    let _ = free_tx.try_send(data);
                    let place = Place {
                        shifted,
                        offsets: None,
                    };
                    Ok((chunk, stats, place))
                }
                other => Err(other),
            };
            let done = Done {
                seq: job.seq,
                lines: job.lines,
                what,
                last: false,
            };
            done_tx.send(done).is_ok()
        });
        Sequence::new(name, first, max).emit_in_order(ctx, &done_rx, emit)
    })
}

/// Parallel Custom HTTP, one source: a reader thread cuts the input into
/// pieces of whole top-level documents (see [`crate::documents`]), workers
/// decode and map whole pieces, and this thread puts them back in order with
/// the source's lines, offsets and indices. `None` when the listener
/// stopped.
fn parallel_http(
    ctx: &Ctx<'_>,
    name: &Arc<str>,
    stream: Stream,
    options: &DecodeOptions,
    threads: usize,
    first: u64,
    emit: &mut dyn FnMut(Msg) -> bool,
) -> Option<DecodeStats> {
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<(u64, Work)>(threads * 2);
        let (done_tx, done_rx) = sync_channel::<Done>(threads * 2);
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(threads * 4);
        scope.spawn(move || read_documents(stream, &work_tx, &free_rx));
        // The workers hold the channels' other ends: when they stop, the
        // reader does, and the results end.
        spawn_workers(
            scope,
            threads,
            ctx.options,
            work_rx,
            move |mapper, (seq, work)| match work {
                Work::Piece {
                    data,
                    len,
                    offset,
                    lines,
                } => {
                    let mut reader =
                        Reader::detected(name, &data[..len], Format::HttpJson, options.clone());
                    let chunk = decode_piece(ctx, mapper, &mut reader);
                    let (stats, last) = (reader.stats().clone(), reader.gave_up());
                    drop(reader);
                    let _ = free_tx.try_send(data);
                    let place = Place {
                        shifted: false,
                        offsets: Some((0, offset)),
                    };
                    done_tx
                        .send(Done {
                            seq,
                            lines,
                            what: Ok((chunk, stats, place)),
                            last,
                        })
                        .is_ok()
                }
                Work::Rest {
                    stream,
                    offset,
                    lines,
                } => {
                    let mut reader =
                        Reader::detected(name, stream, Format::HttpJson, options.clone());
                    let place = Place {
                        shifted: false,
                        offsets: Some((0, offset)),
                    };
                    decode_rest(ctx, mapper, &mut reader, (seq, lines, place), &done_tx)
                }
            },
        );
        Sequence::new(name, first, options.max_record_bytes).emit_in_order(ctx, &done_rx, emit)
    })
}

/// `threads` workers, each with its own mapper, taking work from `work_rx`
/// in turn until it closes or `handle` returns false (the receiver of
/// their results is gone). Each worker gets a clone of `handle`, so the
/// channel ends it holds close when the last worker stops.
fn spawn_workers<'scope, 'env, W, H>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    threads: usize,
    options: &'env PipelineOptions,
    work_rx: Receiver<W>,
    handle: H,
) where
    W: Send + 'scope,
    H: FnMut(&mut Mapper<'env>, W) -> bool + Clone + Send + 'scope,
{
    let work_rx = Arc::new(Mutex::new(work_rx));
    for _ in 0..threads {
        let (work_rx, mut handle) = (Arc::clone(&work_rx), handle.clone());
        scope.spawn(move || {
            let mut mapper = Mapper::new(options);
            loop {
                let work = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(work) = work else { break };
                if !handle(&mut mapper, work) {
                    break;
                }
            }
        });
    }
}

/// Decodes and maps all of a piece into one chunk. Its indices are
/// piece-relative here: the checkpoint is applied once they are not.
fn decode_piece(ctx: &Ctx<'_>, mapper: &mut Mapper<'_>, reader: &mut Reader<'_>) -> Chunk {
    let mut chunk = ctx.chunk();
    mapper.tick();
    let read = reader.try_for_each_borrowed(|item| {
        mapper.push(&mut chunk, item, 0);
        Ok::<(), std::convert::Infallible>(())
    });
    let Ok(()) = read;
    chunk
}

/// Decodes and maps the rest of a source read in order, sending chunks as
/// they fill, numbered from `seq` and placed at `lines`/`place` of `at`
/// (indices count from the rest's start). The decode stats come with the
/// last chunk, which ends the source. False when the receiver is gone.
fn decode_rest(
    ctx: &Ctx<'_>,
    mapper: &mut Mapper<'_>,
    reader: &mut Reader<'_>,
    at: (u64, u64, Place),
    done_tx: &SyncSender<Done>,
) -> bool {
    let (mut seq, lines, place) = at;
    let mut chunk = ctx.chunk();
    mapper.tick();
    let read = reader.try_for_each_borrowed(|item| {
        mapper.push(&mut chunk, item, 0);
        if chunk.outcomes.len() >= CHUNK_RECORDS {
            let full = std::mem::replace(&mut chunk, ctx.chunk());
            let done = Done {
                seq,
                lines,
                what: Ok((full, DecodeStats::default(), place)),
                last: false,
            };
            seq += 1;
            done_tx.send(done).map_err(drop)?;
            mapper.tick();
        }
        Ok::<(), ()>(())
    });
    read.is_ok()
        && done_tx
            .send(Done {
                seq,
                lines,
                what: Ok((chunk, reader.stats().clone(), place)),
                last: true,
            })
            .is_ok()
}

/// Compressed bytes of whole blocks per parallel Avro piece (at least one
/// block).
const AVRO_PIECE_BYTES: usize = 128 * 1024;

/// What the Avro reader thread hands out, in order (`seq`).
enum AvroWork {
    Piece(AvroPiece),
    /// The rest of the input from a block that is not whole and
    /// well-formed, read sequentially; its chunks take `seq`, `seq + 1`, …
    Rest(Box<Reader<'static>>),
}

/// Parallel Avro, one file: a reader thread cuts the container into pieces
/// of whole blocks (each decodes by itself: header + blocks), workers
/// decode and map whole pieces, and this thread puts them back in order
/// with the source's offsets and indices. Damage stops the cutting: the rest
/// is read sequentially (by one worker), so it is reported as reading the
/// file from the start reports it. `None` when the listener stopped.
fn parallel_avro(
    ctx: &Ctx<'_>,
    name: &Arc<str>,
    mut splitter: AvroSplitter<'static>,
    options: &DecodeOptions,
    threads: usize,
    first: u64,
    emit: &mut dyn FnMut(Msg) -> bool,
) -> Option<DecodeStats> {
    let header_len = splitter.header_len() as u64;
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<(u64, AvroWork)>(threads);
        let (done_tx, done_rx) = sync_channel::<Done>(threads);
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(threads * 2);
        let rest_options = options.clone();
        scope.spawn(move || {
            let mut seq = 0u64;
            loop {
                let data = free_rx.try_recv().unwrap_or_default();
                let (piece, more, rest) = match splitter.next_piece(data, AVRO_PIECE_BYTES) {
                    Split::Piece(piece) => (Some(piece), true, false),
                    Split::End(piece) => (piece, false, false),
                    Split::Rest(piece) => (piece, false, true),
                };
                if let Some(piece) = piece {
                    if work_tx.send((seq, AvroWork::Piece(piece))).is_err() {
                        return;
                    }
                    seq += 1;
                }
                if rest {
                    let reader = splitter.into_rest(name, rest_options);
                    let _ = work_tx.send((seq, AvroWork::Rest(Box::new(reader))));
                    return;
                }
                if !more {
                    return;
                }
            }
        });
        // The workers hold the channels' other ends: when they stop, the
        // reader does, and the results end.
        spawn_workers(
            scope,
            threads,
            ctx.options,
            work_rx,
            move |mapper, (seq, work)| {
                match work {
                    AvroWork::Piece(piece) => {
                        let mut reader = Reader::detected(
                            name,
                            piece.data.as_slice(),
                            Format::Avro,
                            options.clone(),
                        );
                        let chunk = decode_piece(ctx, mapper, &mut reader);
                        let stats = reader.stats().clone();
                        drop(reader);
                        let _ = free_tx.try_send(piece.data);
                        let place = Place {
                            shifted: false,
                            offsets: Some((header_len, piece.offset)),
                        };
                        done_tx
                            .send(Done {
                                seq,
                                lines: 0,
                                what: Ok((chunk, stats, place)),
                                last: false,
                            })
                            .is_ok()
                    }
                    AvroWork::Rest(mut reader) => {
                        // Offsets are the source's already; indices
                        // count from the rest's start.
                        let at = (seq, 0, Place::default());
                        decode_rest(ctx, mapper, &mut reader, at, &done_tx)
                    }
                }
            },
        );
        let mut order = Sequence::new(name, first, options.max_record_bytes);
        order.stats.format = Some(Format::Avro);
        order.emit_in_order(ctx, &done_rx, emit)
    })
}

/// Puts parallel chunks back in order: absolute indices and lines, the
/// checkpoint applied.
struct Sequence<'n> {
    name: &'n Arc<str>,
    first: u64,
    max: usize,
    /// Records before the next chunk.
    index: u64,
    stats: DecodeStats,
}

impl<'n> Sequence<'n> {
    fn new(name: &'n Arc<str>, first: u64, max: usize) -> Self {
        Sequence {
            name,
            first,
            max,
            index: 0,
            stats: DecodeStats::default(),
        }
    }

    /// Emits the workers' chunks in input order (they finish out of order);
    /// `None` when the run stopped first.
    fn emit_in_order(
        mut self,
        ctx: &Ctx<'_>,
        done_rx: &std::sync::mpsc::Receiver<Done>,
        emit: &mut dyn FnMut(Msg) -> bool,
    ) -> Option<DecodeStats> {
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for done in done_rx {
            pending.insert(done.seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                let last = done.last;
                let chunk = self.place(ctx, done);
                if !emit(Msg::Chunk(chunk)) || ctx.cancelled() {
                    return None;
                }
                if last {
                    // The reader and workers stop when their channels close.
                    return Some(self.stats);
                }
            }
        }
        Some(self.stats)
    }

    fn place(&mut self, ctx: &Ctx<'_>, done: Done) -> Chunk {
        let lines = done.lines;
        let error = |location, kind, message: String, records| RecordError {
            source_name: Arc::clone(self.name),
            location,
            kind,
            message,
            records,
        };
        match done.what {
            Ok((mut chunk, chunk_stats, place)) => {
                for outcome in &mut chunk.outcomes {
                    let location = outcome.location_mut();
                    if let Some(line) = &mut location.line {
                        *line = *line + lines - u64::from(place.shifted);
                    }
                    if let (Some(offset), Some((skipped, base))) =
                        (&mut location.offset, place.offsets)
                    {
                        *offset = *offset - skipped + base;
                    }
                    location.index += self.index;
                }
                if self.first > self.index {
                    before_checkpoint(&mut chunk, self.first);
                }
                self.index += chunk_stats.records();
                add(&mut self.stats, chunk_stats);
                chunk
            }
            Err(piece) => {
                let mut chunk = ctx.chunk();
                let (e, counted) = match piece {
                    Piece::TooLong(len) => (
                        error(
                            Location::at_line(lines + 1, self.index),
                            ErrorKind::TooLarge,
                            format!(
                                "line of {len} bytes exceeds the limit of {} bytes",
                                self.max
                            ),
                            1,
                        ),
                        1,
                    ),
                    Piece::ReadError(message) => (
                        error(
                            Location::at_line(lines + 1, self.index),
                            ErrorKind::Io,
                            format!("read error: {message}"),
                            0,
                        ),
                        0,
                    ),
                    Piece::Lines { .. } => unreachable!("workers decode lines"),
                };
                self.index += counted;
                *self.stats.errors.entry(e.kind).or_default() += 1;
                self.stats.failed_records += counted;
                chunk.outcomes.push(Outcome::Failed(e));
                chunk
            }
        }
    }
}

/// Turns the outcomes of records before `first` into `before_checkpoint`
/// skips (their mapping was wasted, not wrong), dropping their JSON.
/// Records that failed to decode stay failures: every run reports them.
fn before_checkpoint(chunk: &mut Chunk, first: u64) {
    let mut json = Vec::with_capacity(chunk.json.len());
    let mut at = 0;
    for outcome in &mut chunk.outcomes {
        let skip = match outcome {
            Outcome::Mapped {
                len, location, key, ..
            } => {
                // The event's line, its `\n` included.
                let line = &chunk.json[at..at + *len + 1];
                at += *len + 1;
                if location.index >= first {
                    json.extend_from_slice(line);
                    continue;
                }
                Outcome::Skipped {
                    reason: "before_checkpoint",
                    location: *location,
                    key: key.clone(),
                }
            }
            Outcome::Skipped {
                reason, location, ..
            } => {
                if location.index < first {
                    *reason = "before_checkpoint";
                }
                continue;
            }
            Outcome::Failed(_) => continue,
        };
        *outcome = skip;
    }
    chunk.json = json;
}

fn add(total: &mut DecodeStats, chunk: DecodeStats) {
    total.decoded += chunk.decoded;
    total.skipped_unknown += chunk.skipped_unknown;
    total.failed_records += chunk.failed_records;
    for (kind, n) in chunk.errors {
        *total.errors.entry(kind).or_default() += n;
    }
    for (from, to) in [
        (chunk.unknown_types, &mut total.unknown_types),
        (chunk.unknown_fields, &mut total.unknown_fields),
        (chunk.missing_fields, &mut total.missing_fields),
    ] {
        for (key, n) in from {
            *to.entry(key).or_default() += n;
        }
    }
    total.format = total.format.or(chunk.format);
}

/// The reader thread: whole lines in chunks of about [`CHUNK_BYTES`].
fn read_chunks(
    mut stream: Stream,
    max: usize,
    work: &SyncSender<Job>,
    free: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let mut seq = 0u64;
    let mut lines = 0u64;
    let mut send = |lines: &mut u64, what: Piece| {
        let before = *lines;
        if let Piece::Lines { data, len, shifted } = &what {
            // Counted before sending: the next chunk's base (a newline put
            // in front is not the input's).
            *lines +=
                memchr::memchr_iter(b'\n', &data[..*len]).count() as u64 - u64::from(*shifted);
        }
        let job = Job {
            seq,
            lines: before,
            what,
        };
        seq += 1;
        work.send(job).is_ok()
    };
    let lines_piece = |mut data: Vec<u8>, mut len: usize| {
        let shifted = data[..len].starts_with(&[0x1f, 0x8b]);
        if shifted {
            if data.len() == len {
                data.push(0);
            }
            data.copy_within(..len, 1);
            data[0] = b'\n';
            len += 1;
        }
        Piece::Lines { data, len, shifted }
    };
    let mut data = next_buffer(free, CHUNK_BYTES, &[]);
    // `data[..filled]` is read: the part of a line left after the last cut,
    // then what came after it.
    let mut filled = 0;
    loop {
        // Fill to CHUNK_BYTES, then on until a newline (or a line too long
        // to keep, or the end).
        let mut eof = false;
        let mut failed = None;
        let mut scanned = 0;
        let mut cut = None;
        loop {
            if filled >= CHUNK_BYTES {
                if let Some(i) = memchr::memrchr(b'\n', &data[scanned..filled]) {
                    cut = Some(scanned + i + 1);
                    break;
                }
                scanned = filled;
                if filled > max {
                    break; // a line over the limit (no newline in it yet)
                }
            }
            match read_into(&mut stream, &mut data, filled) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        if eof || failed.is_some() {
            // Whole lines first, then the rest (the last line at the end of
            // input; lost with a read error, as when reading sequentially).
            let cut = memchr::memrchr(b'\n', &data[..filled]).map_or(0, |i| i + 1);
            let rest = data[cut..filled].to_vec();
            if cut > 0 && !send(&mut lines, lines_piece(data, cut)) {
                return;
            }
            if let Some(message) = failed {
                send(&mut lines, Piece::ReadError(message));
                return;
            }
            if !rest.is_empty() {
                let len = rest.len();
                send(&mut lines, lines_piece(rest, len));
            }
            return;
        }
        let Some(cut) = cut else {
            // A line longer than `max`: skip to its end, counting.
            let mut len = filled as u64;
            filled = 0;
            loop {
                match stream.fill_buf() {
                    Ok([]) => break,
                    Ok(buf) => match memchr::memchr(b'\n', buf) {
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
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
        let next = next_buffer(free, CHUNK_BYTES, &data[cut..filled]);
        filled -= cut;
        if !send(
            &mut lines,
            lines_piece(std::mem::replace(&mut data, next), cut),
        ) {
            return;
        }
    }
}
