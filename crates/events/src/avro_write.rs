//! Avro object container writer for test data, samples and benchmarks: the
//! writer schema of an event type is built from its [`EventTypeInfo`] the way
//! Currents writes it (namespace `dataexport.S3.inner.<prefix>`, nullable
//! fields as `["null", T]` with `default: null`, only `avro: true` fields).

use std::io::{self, Write};
use std::sync::Arc;

use currents_core::avro::{AvroHeader, write_bytes, write_long};
use serde_json::{Map, Value, json};

use crate::decode::avro_schema::{AvroType, NAMESPACE_PREFIX, RecordType, parse_schema};
use crate::{Event, EventTypeInfo};

/// Avro block compression codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Null,
    /// Raw deflate (RFC 1951).
    Deflate,
    /// Snappy, each block followed by the big-endian CRC32 of its data.
    Snappy,
    /// Zstandard (`zstandard` in the header).
    Zstd,
}

impl Codec {
    pub const ALL: [Codec; 4] = [Codec::Null, Codec::Deflate, Codec::Snappy, Codec::Zstd];

    /// The `avro.codec` header value.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Null => "null",
            Codec::Deflate => "deflate",
            Codec::Snappy => "snappy",
            Codec::Zstd => "zstandard",
        }
    }

    /// The codec an `avro.codec` header value names, if it is one of these.
    pub fn from_name(name: &str) -> Option<Codec> {
        Codec::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The Avro writer schema of an event type, as Currents writes it (for the
/// legacy types without a Currents Avro schema, `info.avro == false`, one
/// with every glossary field).
pub fn avro_schema(info: &EventTypeInfo) -> Value {
    let (prefix, name) = info
        .event_type
        .rsplit_once('.')
        .unwrap_or(("", info.event_type));
    let fields: Vec<Value> = info
        .fields
        .iter()
        .filter(|f| f.avro || !info.avro)
        .map(|f| {
            let ty = f.ty.avro_type(f.nullable);
            if f.nullable {
                json!({"name": f.name, "type": ty, "default": null, "doc": f.doc})
            } else {
                json!({"name": f.name, "type": ty, "doc": f.doc})
            }
        })
        .collect();
    json!({
        "type": "record",
        "name": name,
        "namespace": format!("{NAMESPACE_PREFIX}{prefix}"),
        "doc": info.doc,
        "fields": fields,
    })
}

/// Streaming writer of one Avro object container file.
pub struct AvroWriter<W: Write> {
    out: W,
    record: Arc<RecordType>,
    codec: Codec,
    sync: [u8; 16],
    records_per_block: usize,
    block: Vec<u8>,
    count: usize,
    compressed: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

impl<W: Write> AvroWriter<W> {
    /// Writes the header for `schema` (a record schema as JSON).
    pub fn new(
        mut out: W,
        schema: &Value,
        codec: Codec,
        records_per_block: usize,
    ) -> io::Result<Self> {
        let text = schema.to_string();
        let record = parse_schema(text.as_bytes()).map_err(invalid)?;
        // Deterministic per schema, so files are reproducible.
        let mut sync = [0u8; 16];
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (i, slot) in sync.iter_mut().enumerate() {
            for b in text.bytes().chain([i as u8]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
            *slot = (h >> 24) as u8;
        }
        let header = AvroHeader {
            schema_json: text,
            codec: codec.name().into(),
            sync_marker: sync,
        }
        .to_bytes();
        out.write_all(&header)?;
        Ok(Self {
            out,
            record,
            codec,
            sync,
            records_per_block: records_per_block.max(1),
            block: Vec::new(),
            count: 0,
            compressed: Vec::new(),
        })
    }

    /// The file's sync marker.
    pub fn sync_marker(&self) -> [u8; 16] {
        self.sync
    }

    /// Writes one record given as a flat JSON object (missing fields are
    /// written as null, which only nullable fields accept).
    pub fn write_value(&mut self, value: &Map<String, Value>) -> io::Result<()> {
        let record = self.record.clone();
        for field in &record.fields {
            let v = value.get(&field.name).unwrap_or(&Value::Null);
            encode(&mut self.block, &field.ty, v)
                .map_err(|e| invalid(format!("field `{}`: {e}", field.name)))?;
        }
        self.count += 1;
        if self.count >= self.records_per_block {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Writes one event (its flat fields; unknown fields the schema has are
    /// written too, others are dropped).
    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        match serde_json::to_value(event)? {
            Value::Object(map) => self.write_value(&map),
            _ => Err(invalid("event does not serialize to an object")),
        }
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.compressed.clear();
        let data: &[u8] = match self.codec {
            Codec::Null => &self.block,
            Codec::Deflate => {
                let mut enc = flate2::write::DeflateEncoder::new(
                    &mut self.compressed,
                    flate2::Compression::default(),
                );
                enc.write_all(&self.block)?;
                enc.finish()?;
                &self.compressed
            }
            Codec::Snappy => {
                self.compressed = snap::raw::Encoder::new()
                    .compress_vec(&self.block)
                    .map_err(io::Error::other)?;
                self.compressed
                    .extend_from_slice(&crc32fast::hash(&self.block).to_be_bytes());
                &self.compressed
            }
            Codec::Zstd => {
                self.compressed = zstd::bulk::compress(&self.block, 3)?;
                &self.compressed
            }
        };
        let mut head = Vec::with_capacity(20);
        write_long(&mut head, self.count as i64);
        write_long(&mut head, data.len() as i64);
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        self.out.write_all(&self.sync)?;
        self.block.clear();
        self.count = 0;
        Ok(())
    }

    /// Writes the last block and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_block()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes `events` (all of `info`'s type) as one Avro object container file.
pub fn write_avro<'e, W: Write>(
    out: W,
    info: &EventTypeInfo,
    events: impl IntoIterator<Item = &'e Event<'e>>,
    codec: Codec,
    records_per_block: usize,
) -> io::Result<W> {
    let mut writer = AvroWriter::new(out, &avro_schema(info), codec, records_per_block)?;
    for event in events {
        if event.event_type() != info.event_type {
            return Err(invalid(format!(
                "event of type {} in a {} file",
                event.event_type(),
                info.event_type
            )));
        }
        writer.write_event(event)?;
    }
    writer.finish()
}

fn matches(ty: &AvroType, v: &Value) -> bool {
    match (ty, v) {
        (AvroType::Null, Value::Null) => true,
        (AvroType::Boolean, Value::Bool(_)) => true,
        (AvroType::Int | AvroType::Long, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (AvroType::Float | AvroType::Double, Value::Number(_)) => true,
        (
            AvroType::String | AvroType::Bytes | AvroType::Enum(_) | AvroType::Fixed(_),
            Value::String(_),
        ) => true,
        (AvroType::Array(_), Value::Array(_)) => true,
        (AvroType::Map(_) | AvroType::Record(_), Value::Object(_)) => true,
        _ => false,
    }
}

fn encode(out: &mut Vec<u8>, ty: &AvroType, v: &Value) -> Result<(), String> {
    let mismatch = || format!("{v} does not fit {ty:?}");
    match ty {
        AvroType::Null => matches!(v, Value::Null).then_some(()).ok_or_else(mismatch),
        AvroType::Boolean => {
            out.push(u8::from(v.as_bool().ok_or_else(mismatch)?));
            Ok(())
        }
        AvroType::Int => {
            let n = v
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(mismatch)?;
            write_long(out, i64::from(n));
            Ok(())
        }
        AvroType::Long => {
            write_long(out, v.as_i64().ok_or_else(mismatch)?);
            Ok(())
        }
        AvroType::Float => {
            out.extend_from_slice(&(v.as_f64().ok_or_else(mismatch)? as f32).to_le_bytes());
            Ok(())
        }
        AvroType::Double => {
            out.extend_from_slice(&v.as_f64().ok_or_else(mismatch)?.to_le_bytes());
            Ok(())
        }
        AvroType::String => {
            write_bytes(out, v.as_str().ok_or_else(mismatch)?.as_bytes());
            Ok(())
        }
        AvroType::Bytes | AvroType::Fixed(_) => {
            let bytes: Vec<u8> = v
                .as_str()
                .ok_or_else(mismatch)?
                .chars()
                .map(|c| c as u8)
                .collect();
            if let AvroType::Fixed(n) = ty {
                if bytes.len() != *n {
                    return Err(mismatch());
                }
                out.extend_from_slice(&bytes);
            } else {
                write_bytes(out, &bytes);
            }
            Ok(())
        }
        AvroType::Enum(symbols) => {
            let s = v.as_str().ok_or_else(mismatch)?;
            let i = symbols.iter().position(|x| x == s).ok_or_else(mismatch)?;
            write_long(out, i as i64);
            Ok(())
        }
        AvroType::Array(items) => {
            let a = v.as_array().ok_or_else(mismatch)?;
            if !a.is_empty() {
                write_long(out, a.len() as i64);
                for item in a {
                    encode(out, items, item)?;
                }
            }
            write_long(out, 0);
            Ok(())
        }
        AvroType::Map(values) => {
            let m = v.as_object().ok_or_else(mismatch)?;
            if !m.is_empty() {
                write_long(out, m.len() as i64);
                for (k, item) in m {
                    write_bytes(out, k.as_bytes());
                    encode(out, values, item)?;
                }
            }
            write_long(out, 0);
            Ok(())
        }
        AvroType::Union(branches) => {
            let i = branches
                .iter()
                .position(|b| matches(b, v))
                .ok_or_else(mismatch)?;
            write_long(out, i as i64);
            encode(out, &branches[i], v)
        }
        AvroType::Record(record) => {
            let m = v.as_object().ok_or_else(mismatch)?;
            for field in &record.fields {
                encode(out, &field.ty, m.get(&field.name).unwrap_or(&Value::Null))?;
            }
            Ok(())
        }
    }
}
