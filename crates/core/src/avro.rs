//! The header of Avro object container files (Avro 1.x spec, "Object
//! Container Files"): magic `Obj\x01`, the metadata map (`map<bytes>` with
//! `avro.schema` and `avro.codec`), then the 16-byte sync marker that also
//! ends every block. Read and written here for every crate that needs it:
//! the runtime decoder, `cargo xtask schema sync` and the tests.
//!
//! Lengths come from the input, so each is bounded before anything is
//! allocated, and damaged input is an error, never a panic.

use std::fmt;
use std::io::{self, Read};

/// The four bytes every Avro object container file starts with.
pub const MAGIC: [u8; 4] = *b"Obj\x01";

/// Length of the sync marker after the header and after every block.
pub const SYNC_LEN: usize = 16;

/// Namespace prefix of every Braze Currents writer schema: the event type is
/// the namespace without it, `.`, the record name.
pub const NAMESPACE_PREFIX: &str = "dataexport.S3.inner.";

/// Longest metadata key accepted (the spec's keys are a few bytes).
pub const MAX_KEY_LEN: usize = 4096;

/// Longest metadata value [`read_header`] accepts: far above any writer
/// schema, low enough that a corrupt length cannot allocate gigabytes.
pub const DEFAULT_MAX_VALUE_LEN: usize = 64 << 20;

/// What an Avro object container header holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroHeader {
    /// The writer schema (`avro.schema`), JSON text.
    pub schema_json: String,
    /// The block codec (`avro.codec`) as written: `null` when absent, as the
    /// spec says; codecs the reader does not know are left to its caller.
    pub codec: String,
    /// The marker that follows the header and every block.
    pub sync_marker: [u8; SYNC_LEN],
}

impl AvroHeader {
    /// The header as bytes: magic, the metadata map (`avro.schema`, then
    /// `avro.codec`, in one block), the sync marker.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.schema_json.len() + 64);
        out.extend_from_slice(&MAGIC);
        write_long(&mut out, 2);
        for (key, value) in [
            ("avro.schema", self.schema_json.as_bytes()),
            ("avro.codec", self.codec.as_bytes()),
        ] {
            write_bytes(&mut out, key.as_bytes());
            write_bytes(&mut out, value);
        }
        write_long(&mut out, 0);
        out.extend_from_slice(&self.sync_marker);
        out
    }
}

/// Why a header could not be read.
#[derive(Debug)]
pub enum HeaderError {
    /// The reader failed.
    Io(io::Error),
    /// The input does not start with [`MAGIC`] (shorter inputs included).
    BadMagic,
    /// The input ends inside the header; `offset` is where it ended.
    Truncated { offset: u64 },
    /// The header is damaged at `offset`: a bad length or varint, a schema
    /// that is not UTF-8.
    Malformed { offset: u64, message: String },
    /// The metadata has no `avro.schema`.
    NoSchema,
}

impl HeaderError {
    /// Byte offset of the problem in the input (0 when it is the whole header).
    pub fn offset(&self) -> u64 {
        match self {
            HeaderError::Truncated { offset } | HeaderError::Malformed { offset, .. } => *offset,
            HeaderError::Io(_) | HeaderError::BadMagic | HeaderError::NoSchema => 0,
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Io(e) => write!(f, "read error: {e}"),
            HeaderError::BadMagic => f.write_str("not an Avro object container file (bad magic)"),
            HeaderError::Truncated { .. } => f.write_str("file ends inside the Avro header"),
            HeaderError::Malformed { message, .. } => f.write_str(message),
            HeaderError::NoSchema => f.write_str("header has no `avro.schema`"),
        }
    }
}

impl std::error::Error for HeaderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeaderError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads an Avro object container header from the start of `reader`,
/// leaving it at the first block. Metadata values may be up to
/// [`DEFAULT_MAX_VALUE_LEN`] bytes.
pub fn read_header(reader: impl Read) -> Result<AvroHeader, HeaderError> {
    read_header_with_limit(reader, DEFAULT_MAX_VALUE_LEN)
}

/// [`read_header`] with metadata values limited to `max_value_len` bytes.
pub fn read_header_with_limit(
    reader: impl Read,
    max_value_len: usize,
) -> Result<AvroHeader, HeaderError> {
    let mut src = Counting {
        inner: reader,
        pos: 0,
    };
    let mut magic = [0u8; 4];
    if src.fill(&mut magic)? < magic.len() || magic != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let mut schema = None;
    let mut codec = None;
    loop {
        let count = src.long()?;
        if count == 0 {
            break;
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes,
            // which a reader going entry by entry does not need.
            src.long()?;
        }
        for _ in 0..count.unsigned_abs() {
            let key = src.bytes(MAX_KEY_LEN)?;
            let at = src.pos;
            let value = src.bytes(max_value_len)?;
            // Later entries win, as they would in a map.
            match key.as_slice() {
                b"avro.schema" => {
                    schema =
                        Some(
                            String::from_utf8(value).map_err(|_| HeaderError::Malformed {
                                offset: at,
                                message: "`avro.schema` is not UTF-8".into(),
                            })?,
                        );
                }
                b"avro.codec" => codec = Some(String::from_utf8_lossy(&value).into_owned()),
                _ => {}
            }
        }
    }
    let mut sync_marker = [0u8; SYNC_LEN];
    if src.fill(&mut sync_marker)? < SYNC_LEN {
        return Err(HeaderError::Truncated { offset: src.pos });
    }
    Ok(AvroHeader {
        schema_json: schema.ok_or(HeaderError::NoSchema)?,
        codec: codec.unwrap_or_else(|| "null".into()),
        sync_marker,
    })
}

/// A reader that knows how far it got, for error offsets.
struct Counting<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Counting<R> {
    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, HeaderError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(HeaderError::Io(e)),
            }
        }
        self.pos += got as u64;
        Ok(got)
    }

    fn long(&mut self) -> Result<i64, HeaderError> {
        let at = self.pos;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8; 1];
            if self.fill(&mut byte)? == 0 {
                return Err(HeaderError::Truncated { offset: self.pos });
            }
            value |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                return Ok(unzigzag(value));
            }
        }
        Err(HeaderError::Malformed {
            offset: at,
            message: "varint longer than 10 bytes in the Avro header".into(),
        })
    }

    /// A length-prefixed byte string of at most `limit` bytes.
    fn bytes(&mut self, limit: usize) -> Result<Vec<u8>, HeaderError> {
        let at = self.pos;
        let len = self.long()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= limit)
            .ok_or_else(|| HeaderError::Malformed {
                offset: at,
                message: format!("bad metadata length {len}"),
            })?;
        // Grown as bytes arrive: a length near the limit on a short input
        // costs no more memory than the input.
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut buf)
            .map_err(HeaderError::Io)?;
        self.pos += buf.len() as u64;
        if buf.len() < len {
            return Err(HeaderError::Truncated { offset: self.pos });
        }
        Ok(buf)
    }
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

/// Appends `v` as an Avro `long`: a zigzag varint.
#[inline]
pub fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends `bytes` as Avro `bytes`: the length as a `long`, then the bytes.
#[inline]
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Reads an Avro `long` (zigzag varint) from `reader`: `UnexpectedEof` when
/// the input ends inside it, `InvalidData` when it runs past 10 bytes.
pub fn read_long(reader: &mut impl Read) -> io::Result<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(unzigzag(value));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "varint longer than 10 bytes",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(schema: &str, codec: &str) -> AvroHeader {
        AvroHeader {
            schema_json: schema.into(),
            codec: codec.into(),
            sync_marker: [7; SYNC_LEN],
        }
    }

    /// Header bytes with the given metadata entries, in one block (negative
    /// count and byte size when `negative_count`).
    fn raw(entries: &[(&[u8], &[u8])], negative_count: bool) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in entries {
            write_bytes(&mut body, k);
            write_bytes(&mut body, v);
        }
        let mut out = MAGIC.to_vec();
        if negative_count {
            write_long(&mut out, -(entries.len() as i64));
            write_long(&mut out, body.len() as i64);
        } else {
            write_long(&mut out, entries.len() as i64);
        }
        out.extend(body);
        write_long(&mut out, 0);
        out.extend([9u8; SYNC_LEN]);
        out
    }

    #[test]
    fn longs_round_trip() {
        for v in [0, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_long(&mut out, v);
            assert!(out.len() <= 10);
            assert_eq!(read_long(&mut out.as_slice()).unwrap(), v, "{v}");
        }
        let mut out = Vec::new();
        write_long(&mut out, -3);
        assert_eq!(out, [5]);
        assert_eq!(
            read_long(&mut &[0x80u8][..]).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            read_long(&mut &[0xffu8; 11][..]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn headers_round_trip() {
        let h = header(r#"{"type":"record"}"#, "deflate");
        let mut bytes = h.to_bytes();
        bytes.extend_from_slice(b"first block");
        let mut rest = bytes.as_slice();
        assert_eq!(read_header(&mut rest).unwrap(), h);
        assert_eq!(
            rest, b"first block",
            "the reader is left at the first block"
        );
    }

    #[test]
    fn reads_other_writers_headers() {
        let schema: &[u8] = br#"{"type":"record"}"#;
        for negative in [false, true] {
            let bytes = raw(
                &[
                    (b"avro.codec", b"snappy"),
                    (b"x.other", b""),
                    (b"avro.schema", schema),
                ],
                negative,
            );
            let h = read_header(bytes.as_slice()).unwrap();
            assert_eq!(h.schema_json.as_bytes(), schema);
            assert_eq!(h.codec, "snappy");
            assert_eq!(h.sync_marker, [9; SYNC_LEN]);
        }
        // No codec: `null`, as the spec says.
        let h = read_header(raw(&[(b"avro.schema", schema)], false).as_slice()).unwrap();
        assert_eq!(h.codec, "null");
        // Metadata in two blocks.
        let mut bytes = MAGIC.to_vec();
        for (k, v) in [(&b"avro.codec"[..], &b"null"[..]), (b"avro.schema", schema)] {
            write_long(&mut bytes, 1);
            write_bytes(&mut bytes, k);
            write_bytes(&mut bytes, v);
        }
        write_long(&mut bytes, 0);
        bytes.extend([1; SYNC_LEN]);
        assert_eq!(read_header(bytes.as_slice()).unwrap().sync_marker, [1; 16]);
    }

    #[test]
    fn damage_is_an_error() {
        let good = header("{}", "null").to_bytes();
        assert!(matches!(
            read_header(&b"Obj\x02"[..]),
            Err(HeaderError::BadMagic)
        ));
        assert!(matches!(
            read_header(&b"Ob"[..]),
            Err(HeaderError::BadMagic)
        ));
        assert!(matches!(read_header(&b""[..]), Err(HeaderError::BadMagic)));
        // Every cut inside the header is reported as truncated, where it ends.
        for cut in 4..good.len() {
            match read_header(&good[..cut]) {
                Err(HeaderError::Truncated { offset }) => assert_eq!(offset, cut as u64),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let no_schema = raw(&[(b"avro.codec", b"null")], false);
        let err = read_header(no_schema.as_slice()).unwrap_err();
        assert_eq!(err.to_string(), "header has no `avro.schema`");
        let not_utf8 = raw(&[(b"avro.schema", b"\xff")], false);
        assert!(matches!(
            read_header(not_utf8.as_slice()),
            Err(HeaderError::Malformed { offset: 17, .. })
        ));
    }

    #[test]
    fn lengths_are_bounded() {
        // A value length of 2^40 is refused before anything is allocated.
        let mut bytes = MAGIC.to_vec();
        write_long(&mut bytes, 1);
        write_bytes(&mut bytes, b"avro.schema");
        write_long(&mut bytes, 1 << 40);
        let err = read_header(bytes.as_slice()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("bad metadata length {}", 1u64 << 40)
        );
        assert_eq!(err.offset(), 17);
        // Negative lengths and over-long keys too.
        let mut bytes = MAGIC.to_vec();
        write_long(&mut bytes, 1);
        write_long(&mut bytes, -5);
        assert!(matches!(
            read_header(bytes.as_slice()),
            Err(HeaderError::Malformed { offset: 5, .. })
        ));
        let long_key = vec![b'k'; MAX_KEY_LEN + 1];
        let bytes = raw(&[(&long_key, b"")], false);
        assert!(matches!(
            read_header(bytes.as_slice()),
            Err(HeaderError::Malformed { .. })
        ));
        // The caller's limit.
        let bytes = header("{\"type\":\"record\"}", "null").to_bytes();
        assert!(read_header_with_limit(bytes.as_slice(), 17).is_ok());
        assert!(read_header_with_limit(bytes.as_slice(), 16).is_err());
        // A count of i64::MIN entries ends with the input, not a hang.
        let mut bytes = MAGIC.to_vec();
        write_long(&mut bytes, i64::MIN);
        write_long(&mut bytes, 0);
        assert!(matches!(
            read_header(bytes.as_slice()),
            Err(HeaderError::Truncated { .. })
        ));
        // Varints past 10 bytes.
        let mut bytes = MAGIC.to_vec();
        bytes.extend([0xff; 11]);
        assert!(matches!(
            read_header(bytes.as_slice()),
            Err(HeaderError::Malformed { offset: 4, .. })
        ));
    }
}
