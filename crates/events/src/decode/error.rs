//! Per-record decode errors and where they happened.

use std::fmt;
use std::sync::Arc;

/// Where a record (or a damaged region) sits in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1-based line (JSON inputs).
    pub line: Option<u64>,
    /// Byte offset in the (decompressed) input: the start of the Avro block,
    /// or of the JSON event in a Custom HTTP body.
    pub offset: Option<u64>,
    /// 0-based index of the record in the source (counting failed ones).
    pub index: u64,
}

impl Location {
    pub fn at_line(line: u64, index: u64) -> Self {
        Self {
            line: Some(line),
            offset: None,
            index,
        }
    }

    pub fn at_offset(offset: u64, index: u64) -> Self {
        Self {
            line: None,
            offset: Some(offset),
            index,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}, ")?;
        }
        if let Some(offset) = self.offset {
            write!(f, "byte {offset}, ")?;
        }
        write!(f, "record {}", self.index)
    }
}

/// Why a record could not be decoded (the key of [`super::DecodeStats::errors`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading the input failed (including corrupt gzip).
    Io,
    /// The input is empty (or only whitespace).
    Empty,
    /// The input is neither Avro nor JSON.
    UnknownFormat,
    /// The Avro header (magic, metadata, schema, codec) is unusable.
    BadHeader,
    /// The input ends in the middle of an Avro block.
    Truncated,
    /// An Avro block is not followed by the file's sync marker.
    BadSync,
    /// An Avro block header (count, size) is out of range.
    BadBlock,
    /// An Avro block's compressed data does not decompress.
    BadCompression,
    /// An Avro snappy block's CRC32 does not match.
    BadChecksum,
    /// Avro record bytes do not follow the writer schema.
    BadAvroData,
    /// Malformed JSON.
    BadJson,
    /// A JSON value is not an event object (or has no `event_type`).
    NotAnEvent,
    /// A required field is missing.
    MissingField,
    /// A field has a value of the wrong type (or a duplicate).
    InvalidField,
    /// A line, event or block exceeds `max_record_bytes`.
    TooLarge,
}

impl ErrorKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Empty => "empty input",
            ErrorKind::UnknownFormat => "unknown format",
            ErrorKind::BadHeader => "bad avro header",
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadSync => "bad sync marker",
            ErrorKind::BadBlock => "bad block header",
            ErrorKind::BadCompression => "bad compressed data",
            ErrorKind::BadChecksum => "bad checksum",
            ErrorKind::BadAvroData => "bad avro data",
            ErrorKind::BadJson => "malformed json",
            ErrorKind::NotAnEvent => "not an event",
            ErrorKind::MissingField => "missing field",
            ErrorKind::InvalidField => "invalid field",
            ErrorKind::TooLarge => "too large",
        }
    }
}

impl ErrorKind {
    /// A stable snake_case key (`malformed_json`, `truncated` …) for counts
    /// and dead letters.
    pub const fn reason(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Empty => "empty_input",
            ErrorKind::UnknownFormat => "unknown_format",
            ErrorKind::BadHeader => "bad_avro_header",
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadSync => "bad_sync_marker",
            ErrorKind::BadBlock => "bad_block_header",
            ErrorKind::BadCompression => "bad_compressed_data",
            ErrorKind::BadChecksum => "bad_checksum",
            ErrorKind::BadAvroData => "bad_avro_data",
            ErrorKind::BadJson => "malformed_json",
            ErrorKind::NotAnEvent => "not_an_event",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::InvalidField => "invalid_field",
            ErrorKind::TooLarge => "too_large",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record (or damaged region) that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {location}: {kind}: {message}")]
pub struct RecordError {
    /// File path or `<stdin>`.
    pub source_name: Arc<str>,
    pub location: Location,
    pub kind: ErrorKind,
    pub message: String,
    /// Records lost with this error: 1 for one bad record or line, the
    /// record count of a damaged Avro block when known, 0 when unknown (a
    /// damaged header, an unreadable input).
    pub records: u64,
}

/// Classifies a serde_json error raised while building an event.
pub(crate) fn json_error_kind(error: &serde_json::Error) -> ErrorKind {
    use serde_json::error::Category;
    match error.classify() {
        Category::Io => ErrorKind::Io,
        Category::Syntax | Category::Eof => ErrorKind::BadJson,
        Category::Data => message_kind(&error.to_string()),
    }
}

/// Classifies a data error by its message (serde's `missing_field` text).
pub(crate) fn message_kind(message: &str) -> ErrorKind {
    if message.starts_with("missing field") {
        ErrorKind::MissingField
    } else {
        ErrorKind::InvalidField
    }
}
