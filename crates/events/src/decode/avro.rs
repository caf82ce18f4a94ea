//! Streaming reader of Avro object container files (Avro 1.x spec, "Object
//! Container Files"): header, then blocks of `count, size, data, sync`.
//!
//! One block is held in memory at a time. Each writer field is planned once
//! per file ([`AvroStep`]): text fields are read from the block straight into
//! the event's builder, the rest through the builder's readers
//! ([`RecordAccess`]), so nothing goes through an intermediate value; a type
//! the glossary does not know goes to [`Event::from_fields`]. Damage is
//! reported per block and reading resumes at the next sync marker.

use std::io::{self, BufRead, Read};
use std::sync::Arc;

use currents_core::avro::{self, HeaderError, SYNC_LEN};

use super::avro_schema::{
    AvroStep, Cursor, PlannedAccess, RecordAccess, RecordType, avro_steps, parse_schema,
};
use super::error::message_kind;
use super::{Decode, ErrorKind, Location, RecordError, Step};
use crate::Event;
use crate::avro_write::Codec;
use crate::record::FieldPlan;

/// Input with a byte position and a push-back buffer (for resynchronising).
struct Src<'a> {
    inner: Box<dyn BufRead + Send + 'a>,
    pushback: Vec<u8>,
    pos: u64,
}

/// Result of reading a varint: a value, a clean end of input before its
/// first byte, or an end in the middle.
enum Varint {
    Value(i64),
    End,
    Truncated,
}

impl<'a> Src<'a> {
    fn read_byte(&mut self) -> io::Result<Option<u8>> {
        if let Some(b) = self.pushback.pop() {
            self.pos += 1;
            return Ok(Some(b));
        }
        let buf = self.inner.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.inner.consume(1);
        self.pos += 1;
        Ok(Some(b))
    }

    /// Appends up to `n` bytes to `out`; returns how many were available.
    fn read_into(&mut self, out: &mut Vec<u8>, n: usize) -> io::Result<usize> {
        let mut got = 0;
        while got < n && !self.pushback.is_empty() {
            if let Some(b) = self.pushback.pop() {
                out.push(b);
                got += 1;
            }
        }
        while got < n {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min(n - got);
            out.extend_from_slice(&buf[..take]);
            self.inner.consume(take);
            got += take;
        }
        self.pos += got as u64;
        Ok(got)
    }

    /// Puts `bytes` back in front of the input.
    fn unread(&mut self, bytes: &[u8]) {
        self.pushback.extend(bytes.iter().rev());
        self.pos -= bytes.len() as u64;
    }

    fn varint(&mut self) -> io::Result<Varint> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(byte) = self.read_byte()? else {
                return Ok(if shift == 0 {
                    Varint::End
                } else {
                    Varint::Truncated
                });
            };
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(Varint::Value((value >> 1) as i64 ^ -((value & 1) as i64)));
            }
            shift += 7;
            if shift > 63 {
                // Not a varint: let the caller treat it as a bad block header.
                return Ok(Varint::Value(-1));
            }
        }
    }
}

/// The header is read through this, by the reader `currents_core::avro`
/// shares with the tools; blocks are read with the methods above.
impl Read for Src<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.pushback.pop() {
            buf[0] = b;
            self.pos += 1;
            return Ok(1);
        }
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

struct Header {
    record: Arc<RecordType>,
    event_type: String,
    /// The writer's fields resolved to builder slots; `None` for an event
    /// type the glossary does not know.
    plan: Option<FieldPlan>,
    /// How each writer field is read (empty without a plan).
    steps: Box<[AvroStep]>,
    codec: Codec,
    sync: [u8; SYNC_LEN],
    min_size: usize,
}

pub(crate) struct AvroDecoder<'a> {
    source: Arc<str>,
    src: Src<'a>,
    max: usize,
    header: Option<Header>,
    done: bool,
    raw: Vec<u8>,
    data: Vec<u8>,
    /// Kept across blocks: a new inflate state per block is an allocation
    /// of its tables each time.
    inflate: Option<Inflater>,
    pos: usize,
    left: u64,
    block_offset: u64,
    index: u64,
}

/// A decoder's block buffers and inflate state.
#[derive(Default)]
struct Buffers {
    raw: Vec<u8>,
    data: Vec<u8>,
    inflate: Option<Inflater>,
}

/// Buffers larger than this are freed with their decoder, not kept.
const KEEP_BYTES: usize = 16 << 20;

thread_local! {
    /// The last dropped decoder's buffers, for the next decoder on this
    /// thread. A storage connector's export is thousands of small files: a
    /// fresh multi-megabyte block buffer per file is fresh pages the kernel
    /// must fault in and zero, which cost more than the decoding.
    static SPARE: std::cell::Cell<Option<Buffers>> = const { std::cell::Cell::new(None) };
}

impl Drop for AvroDecoder<'_> {
    fn drop(&mut self) {
        let mut raw = std::mem::take(&mut self.raw);
        let mut data = std::mem::take(&mut self.data);
        if raw.capacity() > KEEP_BYTES || data.capacity() > KEEP_BYTES {
            return;
        }
        raw.clear();
        data.clear();
        let inflate = self.inflate.take();
        // `try_with`: a decoder dropped while its thread exits keeps nothing.
        let _ = SPARE.try_with(|spare| spare.set(Some(Buffers { raw, data, inflate })));
    }
}

impl<'a> AvroDecoder<'a> {
    pub fn new(source: Arc<str>, input: Box<dyn BufRead + Send + 'a>, max: usize) -> Self {
        Self::starting_at(source, input, max, 0)
    }

    /// A decoder whose input starts at byte `offset` of the source: the
    /// offsets it reports are the source's (see `AvroSplitter::into_rest`).
    pub fn starting_at(
        source: Arc<str>,
        input: Box<dyn BufRead + Send + 'a>,
        max: usize,
        offset: u64,
    ) -> Self {
        let Buffers { raw, data, inflate } = SPARE.take().unwrap_or_default();
        Self {
            source,
            src: Src {
                inner: input,
                pushback: Vec::new(),
                pos: offset,
            },
            max,
            header: None,
            done: false,
            raw,
            data,
            inflate,
            pos: 0,
            left: 0,
            block_offset: 0,
            index: 0,
        }
    }

    fn error(
        &mut self,
        offset: u64,
        kind: ErrorKind,
        records: u64,
        message: String,
    ) -> Step<'static> {
        record_error(
            &self.source,
            &mut self.index,
            offset,
            kind,
            records,
            message,
        )
    }

    fn fatal(
        &mut self,
        offset: u64,
        kind: ErrorKind,
        records: u64,
        message: String,
    ) -> Step<'static> {
        self.done = true;
        self.error(offset, kind, records, message)
    }

    fn read_header(&mut self) -> Result<Header, (u64, ErrorKind, String)> {
        // Metadata values may be as large as a block: the writer schema of a
        // very wide record is still read.
        let header = avro::read_header_with_limit(&mut self.src, self.max).map_err(|e| {
            let kind = match e {
                HeaderError::Io(_) => ErrorKind::Io,
                HeaderError::Truncated { .. } => ErrorKind::Truncated,
                _ => ErrorKind::BadHeader,
            };
            (e.offset(), kind, e.to_string())
        })?;
        let bad = |m: String| (0, ErrorKind::BadHeader, m);
        let record = parse_schema(header.schema_json.as_bytes())
            .map_err(|e| bad(format!("bad writer schema: {e}")))?;
        let codec = Codec::from_name(&header.codec)
            .ok_or_else(|| bad(format!("unsupported codec `{}`", header.codec)))?;
        let event_type = record.event_type();
        let plan = Event::plan_fields(&event_type, record.fields.iter().map(|f| f.name.as_str()));
        let steps = plan
            .as_ref()
            .map_or_else(Default::default, |plan| avro_steps(&record, &plan.fields));
        Ok(Header {
            event_type,
            plan,
            steps,
            min_size: record.min_size(),
            record,
            codec,
            sync: header.sync_marker,
        })
    }

    /// Reads the next block into `self.data`; `None` when a record-less step
    /// (error or end) is to be returned instead.
    fn next_block(&mut self) -> Option<Step<'static>> {
        let Some(header) = &self.header else {
            return Some(Step::Done);
        };
        let sync = header.sync;
        let codec = header.codec;
        let min_size = header.min_size;
        let offset = self.src.pos;
        self.block_offset = offset;
        self.data.clear();
        self.pos = 0;
        macro_rules! io_try {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(e) => {
                        return Some(self.fatal(
                            self.src.pos,
                            ErrorKind::Io,
                            0,
                            format!("read error: {e}"),
                        ))
                    }
                }
            };
        }
        let count = match io_try!(self.src.varint()) {
            Varint::Value(n) => n,
            Varint::End => {
                self.done = true;
                return Some(Step::Done);
            }
            Varint::Truncated => {
                return Some(self.fatal(
                    offset,
                    ErrorKind::Truncated,
                    0,
                    "file ends inside a block header".into(),
                ));
            }
        };
        let size = match io_try!(self.src.varint()) {
            Varint::Value(n) => n,
            _ => {
                let records = count.max(0) as u64;
                return Some(self.fatal(
                    offset,
                    ErrorKind::Truncated,
                    records,
                    "file ends inside a block header".into(),
                ));
            }
        };
        if count < 0 || size < 0 || size as u64 > self.max as u64 {
            let resumed = io_try!(self.resync(Vec::new(), &sync));
            return Some(self.error(
                offset,
                ErrorKind::BadBlock,
                0,
                format!("bad block header (count {count}, size {size}); {resumed}"),
            ));
        }
        let (count, size) = (count as u64, size as usize);
        self.raw.clear();
        let got = io_try!(self.src.read_into(&mut self.raw, size + SYNC_LEN));
        if got < size + SYNC_LEN {
            return Some(self.fatal(
                offset,
                ErrorKind::Truncated,
                count,
                format!(
                    "file ends inside a block of {count} records ({got} of {} bytes)",
                    size + SYNC_LEN
                ),
            ));
        }
        if self.raw[size..] != sync {
            let buf = std::mem::take(&mut self.raw);
            let resumed = if io_try!(self.probe_block(&sync)) {
                // Only the marker is damaged: a valid block follows right after it.
                format!("resuming at the next block at byte {}", self.src.pos)
            } else {
                io_try!(self.resync(buf, &sync))
            };
            return Some(self.error(
                offset,
                ErrorKind::BadSync,
                count,
                format!("block of {count} records is not followed by the sync marker; {resumed}"),
            ));
        }
        self.raw.truncate(size);
        if let Err((kind, message)) = self.decompress(codec) {
            self.data.clear();
            return Some(self.error(
                offset,
                kind,
                count,
                format!("block of {count} records: {message}"),
            ));
        }
        // A record takes at least one byte in any schema that can hold an
        // event (`id` is a string), so a block cannot claim more records than
        // bytes: this also stops a zero-size schema from looping "forever".
        if count > (self.data.len() / min_size.max(1)).max(1) as u64 {
            self.data.clear();
            return Some(self.error(
                offset,
                ErrorKind::BadBlock,
                count,
                format!("block claims {count} records in {} bytes", self.data.len()),
            ));
        }
        self.pos = 0;
        self.left = count;
        None
    }

    fn decompress(&mut self, codec: Codec) -> Result<(), (ErrorKind, String)> {
        let limit = self.max as u64;
        self.data.clear();
        match codec {
            Codec::Null => std::mem::swap(&mut self.raw, &mut self.data),
            Codec::Deflate => {
                let inflate = self.inflate.get_or_insert_with(Inflater::new);
                inflate_block(inflate, &self.raw, &mut self.data, self.max)?;
            }
            Codec::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(self.raw.as_slice())
                    .map_err(|e| (ErrorKind::BadCompression, format!("bad zstd data: {e}")))?;
                decoder
                    .take(limit + 1)
                    .read_to_end(&mut self.data)
                    .map_err(|e| (ErrorKind::BadCompression, format!("bad zstd data: {e}")))?;
                if self.data.len() as u64 > limit {
                    return Err(too_large(self.max));
                }
            }
            Codec::Snappy => {
                let n = self.raw.len();
                if n < 4 {
                    return Err((
                        ErrorKind::BadCompression,
                        "snappy block shorter than its CRC".into(),
                    ));
                }
                let (body, crc) = self.raw.split_at(n - 4);
                let expected = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
                let len = snap::raw::decompress_len(body)
                    .map_err(|e| (ErrorKind::BadCompression, format!("bad snappy data: {e}")))?;
                if len as u64 > limit {
                    return Err(too_large(self.max));
                }
                self.data.resize(len, 0);
                snap::raw::Decoder::new()
                    .decompress(body, &mut self.data)
                    .map_err(|e| (ErrorKind::BadCompression, format!("bad snappy data: {e}")))?;
                let actual = crc32fast::hash(&self.data);
                if actual != expected {
                    return Err((
                        ErrorKind::BadChecksum,
                        format!(
                            "snappy CRC32 mismatch (stored {expected:08x}, computed {actual:08x})"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Tells whether a complete block ending in the sync marker starts at
    /// the current position (without consuming anything).
    fn probe_block(&mut self, sync: &[u8; SYNC_LEN]) -> io::Result<bool> {
        let mut look = Vec::new();
        let mut sizes = [0i64; 2];
        let mut ok = true;
        for slot in &mut sizes {
            let mut value: u64 = 0;
            let mut shift = 0;
            loop {
                let start = look.len();
                if self.src.read_into(&mut look, 1)? == 0 || shift > 63 {
                    ok = false;
                    break;
                }
                let byte = look[start];
                value |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            *slot = (value >> 1) as i64 ^ -((value & 1) as i64);
        }
        let [count, size] = sizes;
        ok = ok && count >= 0 && size >= 0 && size as u64 <= self.max as u64;
        if ok {
            let size = size as usize;
            let got = self.src.read_into(&mut look, size + SYNC_LEN)?;
            ok = got == size + SYNC_LEN && look[look.len() - SYNC_LEN..] == sync[..];
        }
        self.src.unread(&look);
        Ok(ok)
    }

    /// Scans for the next sync marker, starting with the bytes in `buf`
    /// (already read), then the input; leaves the input just after it.
    /// Returns a description of where reading resumes.
    fn resync(&mut self, mut buf: Vec<u8>, sync: &[u8; SYNC_LEN]) -> io::Result<String> {
        let finder = memchr::memmem::Finder::new(sync);
        // Position in the input of buf[0].
        let mut base = self.src.pos - buf.len() as u64;
        loop {
            if let Some(i) = finder.find(&buf) {
                let after = i + SYNC_LEN;
                self.src.unread(&buf[after..]);
                return Ok(format!(
                    "resuming after the sync marker at byte {}",
                    base + i as u64
                ));
            }
            // Keep the last SYNC_LEN-1 bytes: a marker may straddle chunks.
            let keep = buf.len().min(SYNC_LEN - 1);
            let drop_n = buf.len() - keep;
            buf.drain(..drop_n);
            base += drop_n as u64;
            if self.src.read_into(&mut buf, 64 * 1024)? == 0 {
                self.done = true;
                return Ok("no further sync marker in the file".into());
            }
        }
    }

    /// The next record of the block; its text borrows the block buffer
    /// until the next step.
    fn next_record(&mut self) -> Step<'_> {
        let Some(header) = &self.header else {
            return Step::Done;
        };
        let start = self.pos;
        let mut cursor = Cursor::new(&self.data[start..]);
        let fields = RecordAccess::new(&header.record, &mut cursor);
        let result: Result<Box<Event<'_>>, _> = match &header.plan {
            Some(plan) => Event::from_planned(
                plan,
                PlannedAccess {
                    steps: &header.steps,
                    fields,
                },
            ),
            None => Event::from_fields(&header.event_type, fields).map(Box::new),
        };
        #[cfg(feature = "fuzzing")]
        if header.plan.is_some() {
            check_planned(&header.record, &self.data[start..], &result, cursor.pos);
        }
        let location = Location::at_offset(self.block_offset, self.index);
        match result {
            Ok(event) => {
                self.pos += cursor.pos;
                self.left -= 1;
                self.index += 1;
                Step::Event(event, location)
            }
            Err(error) => {
                // Step over the record with the schema alone; if even that
                // fails the rest of the block is unreadable.
                let mut cursor = Cursor::new(&self.data[start..]);
                let skipped = header
                    .record
                    .fields
                    .iter()
                    .try_for_each(|f| cursor.skip(&f.ty));
                let offset = self.block_offset;
                match skipped {
                    Ok(()) => {
                        self.pos += cursor.pos;
                        self.left -= 1;
                        let kind = message_kind(&error.0);
                        record_error(&self.source, &mut self.index, offset, kind, 1, error.0)
                    }
                    Err(skip_error) => {
                        let records = self.left;
                        self.left = 0;
                        self.pos = self.data.len();
                        record_error(
                            &self.source,
                            &mut self.index,
                            offset,
                            ErrorKind::BadAvroData,
                            records,
                            format!(
                                "{}; the block's remaining {records} records are lost",
                                skip_error.0
                            ),
                        )
                    }
                }
            }
        }
    }
}

/// For the fuzz targets: a planned record (`PlannedAccess`) reads what the
/// same bytes read through serde do: the same event from the same bytes,
/// or the same error.
#[cfg(feature = "fuzzing")]
fn check_planned(
    record: &RecordType,
    data: &[u8],
    planned: &Result<Box<Event<'_>>, super::avro_schema::DeError>,
    used: usize,
) {
    let mut cursor = Cursor::new(data);
    let fields = crate::SerdeMap(RecordAccess::new(record, &mut cursor));
    let serde = Event::from_map(&record.event_type(), fields);
    match (planned, &serde) {
        (Ok(planned), Ok(serde)) => {
            assert_eq!(**planned, *serde, "a planned record reads another event");
            assert_eq!(used, cursor.pos, "a planned record reads other bytes");
        }
        (Err(planned), Err(serde)) => {
            assert_eq!(planned.0, serde.0, "a planned record fails otherwise");
        }
        _ => panic!("a planned record and serde disagree: {planned:?} against {serde:?}"),
    }
}

/// A libdeflate decompressor: whole-buffer inflate, ~1.5× zlib-rs's speed
/// on Avro blocks (which arrive whole, so streaming buys nothing).
struct Inflater(std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>);

// SAFETY: a libdeflate decompressor is plain memory with no tie to the
// thread that allocated it; `&mut self` keeps its use exclusive.
unsafe impl Send for Inflater {}

impl Inflater {
    fn new() -> Self {
        // SAFETY: no preconditions; null only when out of memory.
        let raw = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        Self(std::ptr::NonNull::new(raw).unwrap_or_else(|| {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 32 << 10]>())
        }))
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// Inflates one block's raw deflate stream into `out`, at most `max` bytes.
///
/// libdeflate needs room for the whole output up front, which an Avro block
/// does not state: the first guess is the buffer's room from the last block
/// or 16× the input (Currents blocks inflate 8–13×), doubled and retried
/// while too small. Room that is never written is never faulted in, so a
/// generous guess is cheap and a retry (a second inflate) is not. It writes
/// into `out`'s spare capacity: zeroing the room first would cost a pass
/// over every block.
fn inflate_block(
    inflater: &mut Inflater,
    raw: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), (ErrorKind, String)> {
    // One byte past `max`, so that going over is seen.
    let ceiling = max.saturating_add(1);
    let mut room = out
        .capacity()
        .max(raw.len().saturating_mul(16))
        .max(1 << 12)
        .min(ceiling);
    loop {
        out.clear();
        out.reserve(room);
        let mut written = 0;
        // SAFETY: `out` has room for `room` bytes past its (empty) contents;
        // libdeflate writes at most that many there and reports how many.
        let result = unsafe {
            libdeflate_sys::libdeflate_deflate_decompress(
                inflater.0.as_ptr(),
                raw.as_ptr().cast(),
                raw.len(),
                out.as_mut_ptr().cast(),
                room,
                &mut written,
            )
        };
        match result {
            libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS => {
                // SAFETY: libdeflate initialised the first `written` bytes.
                unsafe { out.set_len(written) };
                return if written > max {
                    Err(too_large(max))
                } else {
                    Ok(())
                };
            }
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE if room < ceiling => {
                room = room.saturating_mul(2).min(ceiling);
            }
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => {
                return Err(too_large(max));
            }
            _ => {
                return Err((
                    ErrorKind::BadCompression,
                    "bad deflate data: corrupt, or cut short before the stream's end".into(),
                ));
            }
        }
    }
}

fn too_large(max: usize) -> (ErrorKind, String) {
    (
        ErrorKind::TooLarge,
        format!("decompresses to more than {max} bytes"),
    )
}

/// A per-record error at `offset`, counting `records` lost from `index`.
fn record_error(
    source: &Arc<str>,
    index: &mut u64,
    offset: u64,
    kind: ErrorKind,
    records: u64,
    message: String,
) -> Step<'static> {
    let location = Location::at_offset(offset, *index);
    *index += records;
    Step::Error(RecordError {
        source_name: source.clone(),
        location,
        kind,
        message,
        records,
    })
}

impl Decode for AvroDecoder<'_> {
    fn step(&mut self) -> Step<'_> {
        loop {
            if self.done {
                return Step::Done;
            }
            if self.header.is_none() {
                match self.read_header() {
                    Ok(header) => self.header = Some(header),
                    Err((offset, kind, message)) => return self.fatal(offset, kind, 0, message),
                }
                continue;
            }
            if self.left > 0 {
                return self.next_record();
            }
            if self.pos < self.data.len() {
                let extra = self.data.len() - self.pos;
                self.pos = self.data.len();
                let offset = self.block_offset;
                return self.error(
                    offset,
                    ErrorKind::BadAvroData,
                    0,
                    format!("{extra} bytes left over after the block's last record"),
                );
            }
            if let Some(step) = self.next_block() {
                return step;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn deflated(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn inflate(raw: &[u8], max: usize) -> Result<Vec<u8>, (ErrorKind, String)> {
        let mut out = b"left over from the last block".to_vec();
        inflate_block(&mut Inflater::new(), raw, &mut out, max).map(|()| out)
    }

    #[test]
    fn inflates_blocks_far_above_the_first_estimate() {
        // 1 MiB of one byte deflates ~1000:1, far past the 8x first guess.
        let data = vec![b'x'; 1 << 20];
        assert_eq!(inflate(&deflated(&data), usize::MAX).unwrap(), data);
        assert_eq!(inflate(&deflated(b""), usize::MAX).unwrap(), b"");
    }

    #[test]
    fn a_block_may_inflate_to_exactly_the_limit_and_no_more() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let raw = deflated(&data);
        assert_eq!(inflate(&raw, data.len()).unwrap(), data);
        let (kind, message) = inflate(&raw, data.len() - 1).unwrap_err();
        assert_eq!(kind, ErrorKind::TooLarge);
        assert!(message.contains("more than 9999 bytes"), "{message}");
    }

    #[test]
    fn a_deflate_stream_cut_short_is_bad_compression() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let raw = deflated(&data);
        let (kind, message) = inflate(&raw[..raw.len() / 2], usize::MAX).unwrap_err();
        assert_eq!(kind, ErrorKind::BadCompression);
        assert!(message.contains("cut short"), "{message}");
    }

    #[test]
    fn one_inflate_state_serves_block_after_block() {
        let mut state = Inflater::new();
        let mut out = Vec::new();
        for block in [&b"first block"[..], b"second", b"and a third, longer block"] {
            inflate_block(&mut state, &deflated(block), &mut out, usize::MAX).unwrap();
            assert_eq!(out, block);
        }
    }

    #[test]
    fn a_dropped_decoder_leaves_its_buffers_to_the_next_one_on_its_thread() {
        let input = || -> Box<dyn BufRead + Send> { Box::new(&b""[..]) };
        let mut first = AvroDecoder::new("a".into(), input(), usize::MAX);
        first.data.reserve(1 << 20);
        let kept = first.data.capacity();
        drop(first);
        let second = AvroDecoder::new("b".into(), input(), usize::MAX);
        assert_eq!(second.data.capacity(), kept);
        assert!(second.data.is_empty());
        // Another thread starts from nothing.
        std::thread::spawn(move || {
            let other = AvroDecoder::new("c".into(), input(), usize::MAX);
            assert_eq!(other.data.capacity(), 0);
        })
        .join()
        .unwrap();
    }
}
