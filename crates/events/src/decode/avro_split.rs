//! Cutting one Avro object container into pieces that decode independently
//! (for decoding the blocks of one large file in parallel).
//!
//! A piece is the file's header followed by whole blocks, so it is an
//! object container itself. Only blocks the sequential reader would read as
//! they are go into pieces: a block header in range, all its bytes, its sync
//! marker. From the first block that is not like that (damage, a read
//! error, a truncated end), the rest of the input is read by one sequential
//! [`Reader`] ([`AvroSplitter::into_rest`]) that reports byte offsets of the
//! whole input, so its errors (and the resynchronisation they describe) are
//! those of reading the file from the start.

use std::io::{self, BufRead, Read};
use std::sync::Arc;

use currents_core::avro::{self, SYNC_LEN};

use super::avro::AvroDecoder;
use super::avro_schema::parse_schema;
use super::{DecodeOptions, Format, Reader};
use crate::avro_write::Codec;

/// An Avro input being cut into [`AvroPiece`]s.
pub struct AvroSplitter<'a> {
    input: Box<dyn BufRead + Send + 'a>,
    header: Vec<u8>,
    sync: [u8; SYNC_LEN],
    max: usize,
    /// Offset in the input of the next block.
    offset: u64,
    /// The bytes of a block read but not put in a piece.
    pending: Vec<u8>,
}

/// Whole blocks after the header: an object container by itself.
#[derive(Debug, Default)]
pub struct AvroPiece {
    /// The header, then the blocks.
    pub data: Vec<u8>,
    /// Offset in the input of the first block (`data[header_len..]`): an
    /// offset `o` within the piece is `o - header_len + offset` in the input.
    pub offset: u64,
    /// Records in the blocks (each advances the record index by one,
    /// whether it decodes or not).
    pub records: u64,
}

/// What [`AvroSplitter::next_piece`] read.
#[derive(Debug)]
pub enum Split {
    /// A piece of whole blocks.
    Piece(AvroPiece),
    /// A block that is not whole and well-formed: read the rest with
    /// [`AvroSplitter::into_rest`] (a piece read before it may come first).
    Rest(Option<AvroPiece>),
    /// The input ended after a whole block.
    End(Option<AvroPiece>),
}

/// Records the bytes read through it (to keep the header as it was).
struct Recording<'r, R> {
    inner: &'r mut R,
    seen: Vec<u8>,
}

impl<R: Read> Read for Recording<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

type Stream<'a> = Box<dyn BufRead + Send + 'a>;

impl<'a> AvroSplitter<'a> {
    /// Reads the header of `input`. When it is not usable (not Avro, a bad
    /// schema or codec, a read error) the input is not cut: `Err` gives it
    /// back, as it was, to be read sequentially from the start.
    pub fn new(mut input: Stream<'a>, options: &DecodeOptions) -> Result<Self, Stream<'a>> {
        let max = options.max_record_bytes;
        let mut recording = Recording {
            inner: &mut input,
            seen: Vec::new(),
        };
        let header = avro::read_header_with_limit(&mut recording, max);
        let seen = recording.seen;
        let usable = header.ok().filter(|h| {
            parse_schema(h.schema_json.as_bytes()).is_ok() && Codec::from_name(&h.codec).is_some()
        });
        match usable {
            Some(h) => Ok(AvroSplitter {
                input,
                offset: seen.len() as u64,
                header: seen,
                sync: h.sync_marker,
                max,
                pending: Vec::new(),
            }),
            None => Err(Box::new(io::Cursor::new(seen).chain(input))),
        }
    }

    /// Length of the header every piece starts with.
    pub fn header_len(&self) -> usize {
        self.header.len()
    }

    /// Reads whole blocks into a piece until it holds at least `target`
    /// bytes (at least one block); `data` is reused for it.
    pub fn next_piece(&mut self, mut data: Vec<u8>, target: usize) -> Split {
        data.clear();
        data.extend_from_slice(&self.header);
        let mut piece = AvroPiece {
            data,
            offset: self.offset,
            records: 0,
        };
        loop {
            let block = self.block();
            let some = |piece: AvroPiece| (piece.records > 0).then_some(piece);
            match block {
                Block::Whole(count) => {
                    piece.data.extend_from_slice(&self.pending);
                    piece.records += count;
                    self.offset += self.pending.len() as u64;
                    self.pending.clear();
                    if piece.data.len() >= target + self.header.len() {
                        return Split::Piece(piece);
                    }
                }
                Block::End => return Split::End(some(piece)),
                Block::Other => return Split::Rest(some(piece)),
            }
        }
    }

    /// One block into `pending`.
    fn block(&mut self) -> Block {
        self.pending.clear();
        let count = match self.varint() {
            Ok(Some(Some(count))) => count,
            Ok(None) => return Block::End,
            _ => return Block::Other,
        };
        let size = match self.varint() {
            Ok(Some(Some(size))) => size,
            _ => return Block::Other,
        };
        if count < 0 || size < 0 || size as u64 > self.max as u64 {
            return Block::Other;
        }
        let want = size as usize + SYNC_LEN;
        let start = self.pending.len();
        while self.pending.len() - start < want {
            let buf = match self.input.fill_buf() {
                Ok([]) | Err(_) => return Block::Other,
                Ok(buf) => buf,
            };
            let take = buf.len().min(want - (self.pending.len() - start));
            self.pending.extend_from_slice(&buf[..take]);
            self.input.consume(take);
        }
        if self.pending[self.pending.len() - SYNC_LEN..] != self.sync {
            return Block::Other;
        }
        Block::Whole(count as u64)
    }

    /// A varint as the reader reads block headers: `None` at a clean end
    /// before its first byte, `Some(None)` when it is cut short or too long.
    fn varint(&mut self) -> io::Result<Option<Option<i64>>> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = match self.input.fill_buf()?.first() {
                Some(&b) => b,
                None if shift == 0 => return Ok(None),
                None => return Ok(Some(None)),
            };
            self.input.consume(1);
            self.pending.push(byte);
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(Some(Some((value >> 1) as i64 ^ -((value & 1) as i64))));
            }
            shift += 7;
            if shift > 63 {
                return Ok(Some(None));
            }
        }
    }

    /// The rest of the input, from the block [`Split::Rest`] stopped at, as
    /// a reader whose byte offsets are those of the whole input and whose
    /// record indices start at 0.
    pub fn into_rest(self, source: &str, options: DecodeOptions) -> Reader<'a> {
        let base = self.offset - self.header.len() as u64;
        let stream: Stream<'a> = Box::new(
            io::Cursor::new(self.header)
                .chain(io::Cursor::new(self.pending))
                .chain(self.input),
        );
        let max = options.max_record_bytes;
        Reader::opened(source, options, |reader| {
            reader.stats.format = Some(Format::Avro);
            Ok(Box::new(AvroDecoder::starting_at(
                Arc::clone(&reader.source),
                stream,
                max,
                base,
            )))
        })
    }
}

enum Block {
    Whole(u64),
    End,
    Other,
}
