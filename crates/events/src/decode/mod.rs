//! Streaming decoders for real Currents exports: Avro object container files
//! (as written to S3/GCS/Azure), Custom HTTP JSON bodies and NDJSON.
//!
//! ```no_run
//! use currents_events::decode::{DecodeOptions, open_path};
//!
//! let mut reader = open_path("export.avro", DecodeOptions::default())?;
//! for item in &mut reader {
//!     match item {
//!         Ok(decoded) => { let _ = decoded.event.event_type(); }
//!         Err(error) => { let _ = error.to_string(); } // names source, location, reason
//!     }
//! }
//! let stats = reader.stats();
//! assert_eq!(stats.records(), stats.decoded + stats.skipped_unknown + stats.failed_records);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `reader.try_for_each_borrowed(|item| …)` reads the same items without
//! copying each event's text out of the read buffer (NDJSON; Avro and Custom
//! HTTP events are owned either way).
//!
//! Memory stays bounded: Avro is read one block at a time, NDJSON one line at
//! a time and Custom HTTP batches one event at a time, each at most
//! [`DecodeOptions::max_record_bytes`].

mod avro;
pub(crate) mod avro_schema;
mod avro_split;
mod detect;
mod error;
mod fast_json;
mod json;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

pub use avro_split::{AvroPiece, AvroSplitter, Split};
pub use detect::detect_format;
pub use error::{ErrorKind, Location, RecordError};

use crate::Event;

/// Size of the read buffer; also the window format detection looks at.
const BUF_SIZE: usize = 256 * 1024;

/// The input formats the reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Avro object container file (Currents storage exports).
    Avro,
    /// One JSON event per line, flat (`{"event_type":…,"id":…}`) or Custom
    /// HTTP shaped (`{"event_type":…,"user":{…},"properties":{…}}`).
    Ndjson,
    /// One Custom HTTP body: `{"events":[…]}`, `[…]` or a single event object
    /// (several concatenated documents are accepted too).
    HttpJson,
}

/// What to do with events whose type the glossary does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownTypes {
    /// Yield them as [`Event::Unknown`] (every field kept).
    #[default]
    Map,
    /// Do not yield them; count them in [`DecodeStats::unknown_types`].
    Skip,
}

/// Reader options.
///
/// ```
/// use currents_events::decode::{DecodeOptions, Format};
/// let options = DecodeOptions::default().with_format(Some(Format::Ndjson));
/// assert_eq!(options.max_record_bytes, 64 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Force a format instead of detecting it from the content.
    pub format: Option<Format>,
    pub unknown_types: UnknownTypes,
    /// Largest NDJSON line, Custom HTTP event or (decompressed) Avro block
    /// accepted; bigger ones are per-record errors and skipped.
    pub max_record_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            format: None,
            unknown_types: UnknownTypes::Map,
            max_record_bytes: 64 * 1024 * 1024,
        }
    }
}

impl DecodeOptions {
    pub fn with_format(mut self, format: Option<Format>) -> Self {
        self.format = format;
        self
    }

    pub fn with_unknown_types(mut self, unknown_types: UnknownTypes) -> Self {
        self.unknown_types = unknown_types;
        self
    }

    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }
}

/// One decoded event and where it came from. [`Reader::try_for_each_borrowed`]
/// lends events whose text points into the reader's buffer; the iterator
/// yields owned ones (`Decoded<'static>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    /// Boxed: an `Event` is ~830 bytes, moved from the decoder to the caller.
    pub event: Box<Event<'a>>,
    pub location: Location,
}

impl Decoded<'_> {
    pub fn into_owned(self) -> Decoded<'static> {
        Decoded {
            event: Box::new(self.event.into_owned()),
            location: self.location,
        }
    }
}

/// Accounting over everything a [`Reader`] has read so far. Every record is
/// either decoded, skipped as an unknown type, or part of an error:
/// `records() == decoded + skipped_unknown + failed_records`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Events yielded (including [`Event::Unknown`] ones with [`UnknownTypes::Map`]).
    pub decoded: u64,
    /// Events of unknown types not yielded ([`UnknownTypes::Skip`]).
    pub skipped_unknown: u64,
    /// Errors yielded, by reason.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Records lost with errors (see [`RecordError::records`]).
    pub failed_records: u64,
    /// Events of types the glossary does not know, by type (mapped or skipped).
    pub unknown_types: BTreeMap<String, u64>,
    /// Fields the glossary does not know, by `event_type.field`.
    pub unknown_fields: BTreeMap<String, u64>,
    /// Fields the writer schema requires that the input left out (only fields
    /// the Braze profile does not use may be missing), by `event_type.field`.
    pub missing_fields: BTreeMap<String, u64>,
    /// The detected (or forced) format, once known.
    pub format: Option<Format>,
}

impl DecodeStats {
    /// Number of errors yielded.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Every record seen, however it ended.
    pub fn records(&self) -> u64 {
        self.decoded + self.skipped_unknown + self.failed_records
    }

    fn count_error(&mut self, error: &RecordError) {
        *self.errors.entry(error.kind).or_default() += 1;
        self.failed_records += error.records;
    }
}

/// What a format decoder produces per step.
pub(crate) enum Step<'a> {
    /// Boxed from where it is built to where the caller gets it: moving the
    /// ~830-byte value through each result and step on the way cost more
    /// than the allocation.
    Event(Box<Event<'a>>, Location),
    Error(RecordError),
    /// Nothing this time (an empty batch): step again.
    Again,
    Done,
}

/// The per-format decoder behind a [`Reader`]. Events may borrow the
/// decoder's buffer until the next step.
pub(crate) trait Decode {
    fn step(&mut self) -> Step<'_>;

    /// See [`Reader::gave_up`].
    fn gave_up(&self) -> bool {
        false
    }
}

/// One step of a [`Reader`].
enum Advance<'a> {
    /// Boxed as in [`Step`].
    Event(Box<Event<'a>>, Location),
    Error(RecordError),
    /// A record that is not handed out (an unknown type being skipped).
    Again,
}

/// A streaming reader of one source (file or stream) of Currents events.
///
/// Iterates over `Result<Decoded, RecordError>`; errors are per record (or
/// per damaged region) and reading continues after them where possible.
pub struct Reader<'a> {
    source: Arc<str>,
    options: DecodeOptions,
    inner: Option<Box<dyn Decode + Send + 'a>>,
    pending: Option<RecordError>,
    done: bool,
    stats: DecodeStats,
    scratch: String,
}

impl<'a> Reader<'a> {
    /// A reader over `input`, named `source` in errors (a path, or `<stdin>`).
    /// Gzip input is decompressed transparently; the format is detected from
    /// the content unless `options.format` forces it. Problems with the
    /// input itself are reported as the first (and only) item.
    pub fn new(source: &str, input: impl Read + Send + 'a, options: DecodeOptions) -> Self {
        Self::opened(source, options, |reader| {
            reader.open_buffered(BufReader::with_capacity(BUF_SIZE, input))
        })
    }

    /// A reader over bytes already in memory: like [`Reader::new`], but
    /// NDJSON lines are parsed where they are, without a read buffer.
    pub fn from_bytes(source: &str, input: &'a [u8], options: DecodeOptions) -> Self {
        Self::opened(source, options, |reader| reader.open_buffered(input))
    }

    /// A reader over a stream the caller has already decompressed and whose
    /// format it has detected (say, to choose between reading it on one
    /// thread or in parallel chunks): no second detection, no second buffer.
    pub fn detected(
        source: &str,
        input: impl BufRead + Send + 'a,
        format: Format,
        options: DecodeOptions,
    ) -> Self {
        Self::opened(source, options, |reader| {
            reader.stats.format = Some(format);
            Ok(reader.decoder(format, Box::new(input)))
        })
    }

    fn opened(
        source: &str,
        options: DecodeOptions,
        open: impl FnOnce(&mut Self) -> Result<Box<dyn Decode + Send + 'a>, RecordError>,
    ) -> Self {
        let mut reader = Reader {
            source: Arc::from(source),
            options,
            inner: None,
            pending: None,
            done: false,
            stats: DecodeStats::default(),
            scratch: String::new(),
        };
        match open(&mut reader) {
            Ok(inner) => reader.inner = Some(inner),
            Err(error) => reader.pending = Some(error),
        }
        reader
    }

    fn open_buffered(
        &mut self,
        mut buffered: impl BufRead + Send + 'a,
    ) -> Result<Box<dyn Decode + Send + 'a>, RecordError> {
        let at_start = |kind, message: String| RecordError {
            source_name: self.source.clone(),
            location: Location::at_offset(0, 0),
            kind,
            message,
            records: 0,
        };
        let head = buffered
            .fill_buf()
            .map_err(|e| at_start(ErrorKind::Io, format!("read error: {e}")))?;
        let input: Box<dyn BufRead + Send + 'a> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(BufReader::with_capacity(
                BUF_SIZE,
                flate2::bufread::MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        let mut input = input;
        let format = match self.options.format {
            Some(format) => format,
            None => {
                let (head, eof) = peek(&mut input)
                    .map_err(|e| at_start(ErrorKind::Io, format!("read error: {e}")))?;
                detect_format(head, eof).map_err(|(kind, message)| at_start(kind, message))?
            }
        };
        self.stats.format = Some(format);
        Ok(self.decoder(format, input))
    }

    fn decoder(
        &self,
        format: Format,
        input: Box<dyn BufRead + Send + 'a>,
    ) -> Box<dyn Decode + Send + 'a> {
        let source = self.source.clone();
        let max = self.options.max_record_bytes;
        match format {
            Format::Avro => Box::new(avro::AvroDecoder::new(source, input, max)),
            Format::Ndjson => Box::new(json::NdjsonDecoder::new(source, input, max)),
            Format::HttpJson => Box::new(json::HttpDecoder::new(source, input, max)),
        }
    }

    /// The source name errors carry.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Accounting so far (complete once the iterator returned `None`).
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Whether decoding stopped before the end of the input because what
    /// follows cannot be read as its format (a Custom HTTP document out of
    /// shape, or a read error inside one): nothing after that error was
    /// read. Custom HTTP input only; the other formats resynchronise.
    ///
    /// ```
    /// use currents_events::decode::{DecodeOptions, Format, Reader};
    /// let mut options = DecodeOptions::default();
    /// options.format = Some(Format::HttpJson);
    /// let mut reader = Reader::from_bytes("body", b"{\"events\":[1 2]} {\"events\":[]}", options);
    /// // `1` is not an event; the missing comma ends the input: the second
    /// // body is never read.
    /// assert_eq!(reader.by_ref().count(), 2);
    /// assert!(reader.gave_up());
    /// ```
    pub fn gave_up(&self) -> bool {
        self.inner.as_ref().is_some_and(|inner| inner.gave_up())
    }

    /// The format being read (`None` if the input could not be opened).
    pub fn format(&self) -> Option<Format> {
        self.stats.format
    }

    /// Calls `f` with every item, in order, lending each event (its text
    /// points into the reader's buffer where it can) instead of copying it
    /// as the iterator does. Stops at the first error `f` returns.
    pub fn try_for_each_borrowed<E>(
        &mut self,
        mut f: impl FnMut(Result<Decoded<'_>, RecordError>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            match self.advance() {
                None => return Ok(()),
                Some(Advance::Again) => {}
                Some(Advance::Event(event, location)) => f(Ok(Decoded { event, location }))?,
                Some(Advance::Error(error)) => f(Err(error))?,
            }
        }
    }

    /// One step of the decoder, accounted for.
    fn advance(&mut self) -> Option<Advance<'_>> {
        if let Some(error) = self.pending.take() {
            self.stats.count_error(&error);
            return Some(Advance::Error(error));
        }
        if self.done {
            return None;
        }
        let inner = self.inner.as_mut()?;
        match inner.step() {
            Step::Event(event, location) => {
                note_event(&mut self.stats, &mut self.scratch, &event);
                if matches!(*event, Event::Unknown(_))
                    && self.options.unknown_types == UnknownTypes::Skip
                {
                    self.stats.skipped_unknown += 1;
                    return Some(Advance::Again);
                }
                self.stats.decoded += 1;
                Some(Advance::Event(event, location))
            }
            Step::Error(error) => {
                self.stats.count_error(&error);
                Some(Advance::Error(error))
            }
            Step::Again => Some(Advance::Again),
            Step::Done => {
                self.done = true;
                None
            }
        }
    }
}

/// Counts an event's unknown type or fields.
fn note_event(stats: &mut DecodeStats, scratch: &mut String, event: &Event<'_>) {
    let event_type = event.event_type();
    if let Event::Unknown(_) = event {
        match stats.unknown_types.get_mut(event_type) {
            Some(n) => *n += 1,
            None => {
                stats.unknown_types.insert(event_type.to_owned(), 1);
            }
        }
        return;
    }
    for name in event.unknown_fields().names() {
        count_field(&mut stats.unknown_fields, scratch, event_type, name);
    }
    event.for_each_missing_field(|name| {
        count_field(&mut stats.missing_fields, scratch, event_type, name);
    });
}

/// Counts `event_type.name` in `counts` (no allocation once it is there).
fn count_field(
    counts: &mut BTreeMap<String, u64>,
    scratch: &mut String,
    event_type: &str,
    name: &str,
) {
    scratch.clear();
    scratch.push_str(event_type);
    scratch.push('.');
    scratch.push_str(name);
    match counts.get_mut(scratch.as_str()) {
        Some(n) => *n += 1,
        None => {
            counts.insert(scratch.clone(), 1);
        }
    }
}

/// Fills the buffer as far as one read allows (at least a few bytes when the
/// input trickles in) and tells whether the input ends within it.
fn peek<R: BufRead + ?Sized>(input: &mut R) -> io::Result<(&[u8], bool)> {
    let head = input.fill_buf()?;
    let eof = head.is_empty();
    // A BufRead can't be asked for more than one read's worth without
    // consuming; one read is enough for detection.
    Ok((head, eof))
}

impl Iterator for Reader<'_> {
    type Item = Result<Decoded<'static>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.advance()? {
                Advance::Again => {}
                Advance::Event(event, location) => {
                    return Some(Ok(Decoded {
                        event: Box::new(event.into_owned()),
                        location,
                    }));
                }
                Advance::Error(error) => return Some(Err(error)),
            }
        }
    }
}

/// Opens a file for reading (`-` is standard input, named `<stdin>`).
pub fn open_path(path: impl AsRef<Path>, options: DecodeOptions) -> io::Result<Reader<'static>> {
    let path = path.as_ref();
    if path.as_os_str() == "-" {
        return Ok(Reader::new("<stdin>", io::stdin(), options));
    }
    let file = File::open(path)?;
    Ok(Reader::new(&path.display().to_string(), file, options))
}

/// Decodes a whole in-memory input, collecting events and errors (for tests
/// and small inputs).
pub fn decode_all(
    source: &str,
    input: &[u8],
    options: DecodeOptions,
) -> (Vec<Decoded<'static>>, Vec<RecordError>, DecodeStats) {
    let mut reader = Reader::new(source, input, options);
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for item in &mut reader {
        match item {
            Ok(decoded) => events.push(decoded),
            Err(error) => errors.push(error),
        }
    }
    (events, errors, reader.stats().clone())
}

/// Hooks for the fuzz targets (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Panics where the fast JSON path reads `bytes` differently from
    /// serde_json (as a value, and as events).
    pub fn check_fast_json(bytes: &[u8]) {
        super::json::check_fast_path(bytes);
    }
}
