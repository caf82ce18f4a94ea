//! Avro writer schemas as a compact decode plan, and the serde glue that
//! feeds Avro binary records straight into the event builders.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Visitor};
use serde_json::Value;

use crate::record::{
    FieldKey, FieldKind, FieldMap, FieldMut, PlannedField, PlannedRecord, RecordBuilder, Text,
};

pub(crate) use currents_core::avro::NAMESPACE_PREFIX;

/// An Avro type, resolved (named references replaced by their definition).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AvroType {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(Box<AvroType>),
    Map(Box<AvroType>),
    Union(Vec<AvroType>),
    Enum(Arc<[String]>),
    Fixed(usize),
    Record(Arc<RecordType>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordType {
    pub name: String,
    pub namespace: Option<String>,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub name: String,
    pub ty: AvroType,
    /// How the value reads as text, decided once per writer schema.
    pub text: TextShape,
}

/// A field's writer type as text reads it. Nearly every Currents field is
/// `["null", "string"]`: its branch is then one byte known ahead (zigzag 0
/// or 2), read without the union's varint loop and branch lookup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TextShape {
    String,
    /// A two-branch union of null and string: the branch bytes of each.
    NullableString {
        null: u8,
        string: u8,
    },
    /// Anything else, read through the general path.
    Other,
}

impl TextShape {
    fn of(ty: &AvroType) -> Self {
        // Zigzag varints of branch indexes 0 and 1.
        const FIRST: u8 = 0;
        const SECOND: u8 = 2;
        match ty {
            AvroType::String => TextShape::String,
            AvroType::Union(branches) => match branches.as_slice() {
                [AvroType::Null, AvroType::String] => TextShape::NullableString {
                    null: FIRST,
                    string: SECOND,
                },
                [AvroType::String, AvroType::Null] => TextShape::NullableString {
                    null: SECOND,
                    string: FIRST,
                },
                _ => TextShape::Other,
            },
            _ => TextShape::Other,
        }
    }
}

impl RecordType {
    /// Currents event type: namespace minus `dataexport.S3.inner.`, `.`, name.
    pub fn event_type(&self) -> String {
        match &self.namespace {
            Some(ns) if !ns.is_empty() => {
                let ns = ns.strip_prefix(NAMESPACE_PREFIX).unwrap_or(ns);
                format!("{ns}.{}", self.name)
            }
            _ => self.name.clone(),
        }
    }

    /// Fewest bytes one record can take.
    pub fn min_size(&self) -> usize {
        self.fields.iter().map(|f| f.ty.min_size()).sum()
    }
}

impl AvroType {
    fn min_size(&self) -> usize {
        match self {
            AvroType::Null => 0,
            AvroType::Float => 4,
            AvroType::Double => 8,
            AvroType::Fixed(n) => *n,
            AvroType::Record(r) => r.min_size(),
            _ => 1,
        }
    }
}

/// Parses a writer schema (JSON text) whose top level is a record.
pub(crate) fn parse_schema(text: &[u8]) -> Result<Arc<RecordType>, String> {
    let json: Value =
        serde_json::from_slice(text).map_err(|e| format!("schema is not JSON: {e}"))?;
    let mut names = HashMap::new();
    match parse_type(&json, None, &mut names, 0)? {
        AvroType::Record(record) => Ok(record),
        other => Err(format!("top-level schema is not a record: {other:?}")),
    }
}

fn full_name(name: &str, namespace: Option<&str>) -> (String, Option<String>) {
    match name.rsplit_once('.') {
        Some((ns, short)) => (short.to_owned(), Some(ns.to_owned())),
        None => (
            name.to_owned(),
            namespace.filter(|n| !n.is_empty()).map(str::to_owned),
        ),
    }
}

fn qualified(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{ns}.{name}"),
        None => name.to_owned(),
    }
}

fn parse_type(
    json: &Value,
    namespace: Option<&str>,
    names: &mut HashMap<String, AvroType>,
    depth: usize,
) -> Result<AvroType, String> {
    if depth > 64 {
        return Err("schema nests too deeply".into());
    }
    match json {
        Value::String(name) => primitive(name)
            .or_else(|| names.get(name).cloned())
            .or_else(|| names.get(&qualified(name, namespace)).cloned())
            .ok_or_else(|| format!("unknown type `{name}`")),
        Value::Array(branches) => branches
            .iter()
            .map(|b| parse_type(b, namespace, names, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(AvroType::Union),
        Value::Object(obj) => {
            let ty = obj
                .get("type")
                .ok_or_else(|| "type object without `type`".to_owned())?;
            let Value::String(ty) = ty else {
                return parse_type(ty, namespace, names, depth + 1);
            };
            let name_of = |obj: &serde_json::Map<String, Value>| {
                let name = obj
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("`{ty}` without a name"))?;
                let ns = obj.get("namespace").and_then(Value::as_str).or(namespace);
                Ok::<_, String>(full_name(name, ns))
            };
            match ty.as_str() {
                "array" => {
                    let items = obj.get("items").ok_or("array without `items`")?;
                    Ok(AvroType::Array(Box::new(parse_type(
                        items,
                        namespace,
                        names,
                        depth + 1,
                    )?)))
                }
                "map" => {
                    let values = obj.get("values").ok_or("map without `values`")?;
                    Ok(AvroType::Map(Box::new(parse_type(
                        values,
                        namespace,
                        names,
                        depth + 1,
                    )?)))
                }
                "enum" => {
                    let (name, ns) = name_of(obj)?;
                    let symbols = obj
                        .get("symbols")
                        .and_then(Value::as_array)
                        .ok_or("enum without `symbols`")?
                        .iter()
                        .map(|s| {
                            s.as_str()
                                .map(str::to_owned)
                                .ok_or("enum symbol is not a string")
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let t = AvroType::Enum(symbols.into());
                    names.insert(qualified(&name, ns.as_deref()), t.clone());
                    Ok(t)
                }
                "fixed" => {
                    let (name, ns) = name_of(obj)?;
                    let size = obj
                        .get("size")
                        .and_then(Value::as_u64)
                        .ok_or("fixed without `size`")? as usize;
                    let t = AvroType::Fixed(size);
                    names.insert(qualified(&name, ns.as_deref()), t.clone());
                    Ok(t)
                }
                "record" | "error" => {
                    let (name, ns) = name_of(obj)?;
                    let fields = obj
                        .get("fields")
                        .and_then(Value::as_array)
                        .ok_or("record without `fields`")?;
                    let mut out = Vec::with_capacity(fields.len());
                    for field in fields {
                        let fname = field
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or("record field without a name")?;
                        let fty = field
                            .get("type")
                            .ok_or_else(|| format!("field `{fname}` without a type"))?;
                        let ty = parse_type(fty, ns.as_deref(), names, depth + 1)?;
                        out.push(Field {
                            name: fname.to_owned(),
                            text: TextShape::of(&ty),
                            ty,
                        });
                    }
                    let t = AvroType::Record(Arc::new(RecordType {
                        name: name.clone(),
                        namespace: ns.clone(),
                        fields: out,
                    }));
                    names.insert(qualified(&name, ns.as_deref()), t.clone());
                    Ok(t)
                }
                other => primitive(other).ok_or_else(|| format!("unknown type `{other}`")),
            }
        }
        other => Err(format!("not a type: {other}")),
    }
}

fn primitive(name: &str) -> Option<AvroType> {
    Some(match name {
        "null" => AvroType::Null,
        "boolean" => AvroType::Boolean,
        "int" => AvroType::Int,
        "long" => AvroType::Long,
        "float" => AvroType::Float,
        "double" => AvroType::Double,
        "bytes" => AvroType::Bytes,
        "string" => AvroType::String,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Binary decoding

/// Error raised while decoding Avro binary data or building an event.
#[derive(Debug)]
pub(crate) struct DeError(pub String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// Read position in one decompressed block.
pub(crate) struct Cursor<'de> {
    pub data: &'de [u8],
    pub pos: usize,
}

fn eof() -> DeError {
    DeError("record runs past the end of its block".into())
}

/// Why the varint at the start of `rest` could not be read.
#[cold]
fn varint_error(rest: &[u8]) -> DeError {
    match rest.get(..10) {
        Some(first) if first.iter().all(|byte| byte & 0x80 != 0) => {
            DeError("varint longer than 10 bytes".into())
        }
        _ => eof(),
    }
}

impl<'de> Cursor<'de> {
    pub fn new(data: &'de [u8]) -> Self {
        Self { data, pos: 0 }
    }

    #[inline]
    pub fn long(&mut self) -> Result<i64, DeError> {
        let start = self.pos;
        self.varint()
            .ok_or_else(|| varint_error(&self.data[start..]))
    }

    /// [`Cursor::long`] (or, `int`, [`Cursor::int`]) without the error:
    /// `None` (the position then anywhere) for a varint cut short, longer
    /// than 10 bytes or, `int`, beyond 32 bits.
    #[inline(always)]
    fn try_long(&mut self, int: bool) -> Option<i64> {
        let value = self.varint()?;
        (!int || i32::try_from(value).is_ok()).then_some(value)
    }

    #[inline(always)]
    fn varint(&mut self) -> Option<i64> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let &byte = self.data.get(self.pos)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some((value >> 1) as i64 ^ -((value & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    /// An Avro `boolean`: one byte, 0 or 1; `None` for any other byte or
    /// none, the position then unmoved.
    #[inline(always)]
    fn try_bool(&mut self) -> Option<bool> {
        let value = match self.data.get(self.pos)? {
            0 => false,
            1 => true,
            _ => return None,
        };
        self.pos += 1;
        Some(value)
    }

    #[inline]
    pub fn int(&mut self) -> Result<i32, DeError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| DeError(format!("int out of range: {v}")))
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'de [u8], DeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(eof)?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    #[inline]
    fn len(&mut self) -> Result<usize, DeError> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| DeError(format!("negative length {n}")))
    }

    #[inline]
    pub fn bytes(&mut self) -> Result<&'de [u8], DeError> {
        let n = self.len()?;
        self.take(n)
    }

    #[inline(always)]
    pub fn str(&mut self) -> Result<&'de str, DeError> {
        let start = self.pos;
        match self.try_str() {
            Some(text) => Ok(text),
            None => {
                self.pos = start;
                self.str_error()
            }
        }
    }

    /// [`Cursor::str`] without the error: `None` where that fails, at a
    /// position to read the value again from its start (as the planned
    /// records do, to report it), and no error made and dropped.
    #[inline(always)]
    fn try_str(&mut self) -> Option<&'de str> {
        // A length under 64 is one varint byte (zigzag, sign in bit 0): read
        // it here, without the call to the varint loop (~24 instructions a
        // string, and an event has ~26 strings).
        let bytes = match self.data.get(self.pos) {
            Some(&byte) if byte & 0x81 == 0 => {
                let start = self.pos + 1;
                let end = start + usize::from(byte >> 1);
                let bytes = self.data.get(start..end)?;
                self.pos = end;
                bytes
            }
            _ => self.bytes().ok()?,
        };
        // Most strings are short and ASCII (ids, names, enums): std's UTF-8
        // check costs ~110 instructions on each, an ASCII check a tenth.
        if is_ascii(bytes) {
            // SAFETY: ASCII bytes are valid UTF-8.
            return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes).ok()
    }

    /// Why [`Cursor::try_str`] read no string: read again through the
    /// varint loop and std's UTF-8 check, which say.
    #[cold]
    #[inline(never)]
    fn str_error(&mut self) -> Result<&'de str, DeError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|e| DeError(format!("string is not UTF-8: {e}")))
    }

    /// Steps over a one-byte union branch if it is `byte`.
    #[inline(always)]
    fn branch_is(&mut self, byte: u8) -> bool {
        let hit = self.data.get(self.pos) == Some(&byte);
        self.pos += usize::from(hit);
        hit
    }

    fn union_branch<'t>(&mut self, branches: &'t [AvroType]) -> Result<&'t AvroType, DeError> {
        let index = self.long()?;
        usize::try_from(index)
            .ok()
            .and_then(|i| branches.get(i))
            .ok_or_else(|| DeError(format!("union branch {index} out of range")))
    }

    /// Item count of the next array/map block (0: end); skips the byte size
    /// of negative-count blocks.
    fn block_count(&mut self) -> Result<usize, DeError> {
        let count = self.long()?;
        if count < 0 {
            self.long()?;
        }
        let count = count.unsigned_abs();
        // Each item takes at least one byte... unless it's null; bound by the
        // block anyway to keep garbage from looking like 2^60 items.
        if count > (self.data.len() - self.pos) as u64 + (1 << 20) {
            return Err(DeError(format!("block count {count} is out of range")));
        }
        Ok(count as usize)
    }

    /// Skips one value of type `ty` (to step over a record that failed).
    pub fn skip(&mut self, ty: &AvroType) -> Result<(), DeError> {
        match ty {
            AvroType::Null => Ok(()),
            AvroType::Boolean => self.take(1).map(drop),
            AvroType::Int | AvroType::Long | AvroType::Enum(_) => self.long().map(drop),
            AvroType::Float => self.take(4).map(drop),
            AvroType::Double => self.take(8).map(drop),
            AvroType::Bytes | AvroType::String => self.bytes().map(drop),
            AvroType::Fixed(n) => self.take(*n).map(drop),
            AvroType::Array(items) => loop {
                let n = self.block_count()?;
                if n == 0 {
                    return Ok(());
                }
                for _ in 0..n {
                    self.skip(items)?;
                }
            },
            AvroType::Map(values) => loop {
                let n = self.block_count()?;
                if n == 0 {
                    return Ok(());
                }
                for _ in 0..n {
                    self.bytes()?;
                    self.skip(values)?;
                }
            },
            AvroType::Union(branches) => {
                let branch = self.union_branch(branches)?;
                self.skip(branch)
            }
            AvroType::Record(record) => {
                for field in &record.fields {
                    self.skip(&field.ty)?;
                }
                Ok(())
            }
        }
    }
}

/// Whether every byte of `bytes` is ASCII: eight bytes at a time without an
/// early exit, the tail as the word that ends the input. std's `is_ascii`
/// aligns its reads first, which for strings of ids' length (10 to 40
/// bytes) costs more than the check.
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |chunk: &[u8]| {
        chunk
            .first_chunk::<8>()
            .map_or(0, |w| u64::from_le_bytes(*w))
    };
    let n = bytes.len();
    if n < 8 {
        return bytes.iter().fold(0, |any, &b| any | b) < 0x80;
    }
    let mut words = bytes.chunks_exact(8);
    let mut any = 0;
    for chunk in &mut words {
        any |= word(chunk);
    }
    if !words.remainder().is_empty() {
        any |= word(&bytes[n - 8..]);
    }
    any & HIGH == 0
}

/// The fields of one record as a serde map: keys are the writer's field
/// names, values decoded per writer type.
pub(crate) struct RecordAccess<'de, 'c> {
    fields: &'de [Field],
    next: usize,
    cursor: &'c mut Cursor<'de>,
}

impl<'de, 'c> RecordAccess<'de, 'c> {
    pub fn new(record: &'de RecordType, cursor: &'c mut Cursor<'de>) -> Self {
        Self {
            fields: &record.fields,
            next: 0,
            cursor,
        }
    }
}

impl<'de> de::MapAccess<'de> for RecordAccess<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.fields.get(self.next) {
            Some(field) => seed
                .deserialize(de::value::BorrowedStrDeserializer::new(field.name.as_str()))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        seed.deserialize(self.value()?)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len() - self.next)
    }
}

/// Keys are the writer's field names, lent by the schema; text is read
/// straight from the block where the writer type is a string (or a union
/// branch of one), through serde otherwise.
impl<'de> FieldMap<'de> for RecordAccess<'de, '_> {
    #[inline]
    fn next_field(&mut self) -> Result<Option<FieldKey<'de>>, DeError> {
        Ok(self
            .fields
            .get(self.next)
            .map(|field| FieldKey::Borrowed(field.name.as_str())))
    }

    #[inline]
    fn next_text(&mut self) -> Result<Cow<'de, str>, DeError> {
        let (text, value) = self.text_value()?;
        match text {
            TextShape::String => value.cursor.str().map(Cow::Borrowed),
            TextShape::NullableString { string, .. } if value.cursor.branch_is(string) => {
                value.cursor.str().map(Cow::Borrowed)
            }
            _ => value.text(),
        }
    }

    #[inline]
    fn next_nullable_text(&mut self) -> Result<Option<Cow<'de, str>>, DeError> {
        let (text, value) = self.text_value()?;
        match text {
            TextShape::String => value.cursor.str().map(|text| Some(Cow::Borrowed(text))),
            TextShape::NullableString { null, .. } if value.cursor.branch_is(null) => Ok(None),
            TextShape::NullableString { string, .. } if value.cursor.branch_is(string) => {
                value.cursor.str().map(|text| Some(Cow::Borrowed(text)))
            }
            // Another union, another type, or a branch byte out of range
            // (which the general path reports).
            _ => value.nullable_text(),
        }
    }
}

/// How one writer field's value reaches the builder, decided once per
/// writer schema from its type and the builder's field. A nullable step
/// carries the branch bytes of its two-branch union of null and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AvroStep {
    /// A `string` into a text field: stored straight in.
    Text { slot: u16 },
    /// A `["null", "string"]` into a nullable text field: the branch byte,
    /// then stored straight in.
    NullableText { slot: u16, null: u8, string: u8 },
    /// A `long` (or an `int`, which must then fit 32 bits) into an
    /// integer field.
    Long { slot: u16, int: bool },
    /// A `["null", "long"]` (or `"int"`) into a nullable integer field.
    NullableLong {
        slot: u16,
        null: u8,
        long: u8,
        int: bool,
    },
    /// A `boolean` into a boolean field.
    Bool { slot: u16 },
    /// A `["null", "boolean"]` into a nullable boolean field.
    NullableBool { slot: u16, null: u8, boolean: u8 },
    /// Read by the builder, through serde where the type needs it.
    Slot(u16),
    /// A field the glossary does not know.
    Unknown,
}

/// The steps of `record`'s fields, planned (`plan`) for one builder.
pub(crate) fn avro_steps(record: &RecordType, plan: &[PlannedField]) -> Box<[AvroStep]> {
    debug_assert_eq!(record.fields.len(), plan.len());
    record
        .fields
        .iter()
        .zip(plan)
        .map(|(field, &planned)| match planned {
            PlannedField::Unknown => AvroStep::Unknown,
            PlannedField::Slot(slot) => AvroStep::Slot(slot),
            PlannedField::Direct(slot, kind) => direct_step(slot, kind, &field.ty),
        })
        .collect()
}

/// The step storing a writer value of type `ty` into a lent field of
/// `kind`: a value into a field of its type, nullable or not; a nullable
/// value into a nullable field. Anything else (null into a required field
/// is the builder's error to report) goes through the builder.
fn direct_step(slot: u16, kind: FieldKind, ty: &AvroType) -> AvroStep {
    use FieldKind as K;
    // Zigzag varints of branch indexes 0 and 1.
    const FIRST: u8 = 0;
    const SECOND: u8 = 2;
    let (value, branches) = match ty {
        AvroType::Union(branches) => match branches.as_slice() {
            [AvroType::Null, value] => (value, Some((FIRST, SECOND))),
            [value, AvroType::Null] => (value, Some((SECOND, FIRST))),
            _ => return AvroStep::Slot(slot),
        },
        value => (value, None),
    };
    match (value, branches, kind) {
        (AvroType::String, None, K::Text | K::NullableText) => AvroStep::Text { slot },
        (AvroType::String, Some((null, string)), K::NullableText) => {
            AvroStep::NullableText { slot, null, string }
        }
        (AvroType::Long | AvroType::Int, None, K::Long | K::NullableLong) => AvroStep::Long {
            slot,
            int: *value == AvroType::Int,
        },
        (AvroType::Long | AvroType::Int, Some((null, long)), K::NullableLong) => {
            AvroStep::NullableLong {
                slot,
                null,
                long,
                int: *value == AvroType::Int,
            }
        }
        (AvroType::Boolean, None, K::Bool | K::NullableBool) => AvroStep::Bool { slot },
        (AvroType::Boolean, Some((null, boolean)), K::NullableBool) => AvroStep::NullableBool {
            slot,
            null,
            boolean,
        },
        _ => AvroStep::Slot(slot),
    }
}

/// One record read along its writer schema's [`AvroStep`]s.
pub(crate) struct PlannedAccess<'de, 'c> {
    pub steps: &'de [AvroStep],
    pub fields: RecordAccess<'de, 'c>,
}

/// Text, integer and boolean fields (all but a few of a Currents record)
/// are read from the block and stored in the builder here: through the
/// builder's reader a text field costs three times as much, in calls and
/// in moving `Result<Option<Cow>>`s, and an integer or boolean goes
/// through serde. Whatever the steps do not expect (a branch byte out of
/// range, say) goes to the builder's reader, which reports it as it would
/// have.
impl<'de> PlannedRecord<'de> for PlannedAccess<'de, '_> {
    type Error = DeError;

    fn build<B: RecordBuilder<'de>>(self) -> Result<B::Record, DeError> {
        let PlannedAccess { steps, mut fields } = self;
        let names = fields.fields;
        // The loop reads from its own copy of the cursor, which lives in
        // registers: through `fields.cursor` every position is stored and
        // loaded again around each field (a third of the loop's time). A
        // builder reader gets the position and hands it back.
        let mut at = Cursor::new(fields.cursor.data);
        at.pos = fields.cursor.pos;
        let mut builder = B::default();
        for (index, (step, field)) in steps.iter().zip(names).enumerate() {
            let start = at.pos;
            if store_direct(*step, &mut at, &mut builder) {
                continue;
            }
            // Every other field, and whatever a step did not expect (a
            // branch out of range, a string cut short or not UTF-8), is
            // read again from its start by the builder's reader, which
            // reports it as it would have: one authority for the errors.
            fields.next = index;
            fields.cursor.pos = start;
            let name = field.name.as_str();
            match *step {
                AvroStep::Unknown => builder.visit_value(name, &mut fields)?,
                AvroStep::Text { slot }
                | AvroStep::NullableText { slot, .. }
                | AvroStep::Long { slot, .. }
                | AvroStep::NullableLong { slot, .. }
                | AvroStep::Bool { slot }
                | AvroStep::NullableBool { slot, .. }
                | AvroStep::Slot(slot) => {
                    builder.visit_slot(slot, name, &mut fields)?;
                }
            }
            at.pos = fields.cursor.pos;
        }
        fields.cursor.pos = at.pos;
        builder.finish()
    }
}

/// Reads the value `step` expects at `at` into its field of `builder`;
/// `false` (`at` then anywhere) when the step is not one the loop stores
/// itself or the value is not what it expects. Plain branches, each store
/// a constant shape: through `Option` combinators the loop costs a third
/// more.
#[inline(always)]
fn store_direct<'de, B: RecordBuilder<'de>>(
    step: AvroStep,
    at: &mut Cursor<'de>,
    builder: &mut B,
) -> bool {
    match step {
        AvroStep::Text { slot } => match builder.field_mut(slot) {
            Some(FieldMut::Text(dst)) => {
                if let Some(text) = at.try_str() {
                    *dst = Some(Cow::Borrowed(text));
                    return true;
                }
            }
            Some(FieldMut::NullableText(dst)) => {
                if let Some(text) = at.try_str() {
                    *dst = Some(Some(Cow::Borrowed(text)));
                    return true;
                }
            }
            _ => {}
        },
        AvroStep::NullableText { slot, null, string } => {
            if let Some(FieldMut::NullableText(dst)) = builder.field_mut(slot) {
                if at.branch_is(null) {
                    *dst = Some(None);
                    return true;
                }
                if at.branch_is(string)
                    && let Some(text) = at.try_str()
                {
                    *dst = Some(Some(Cow::Borrowed(text)));
                    return true;
                }
            }
        }
        AvroStep::Long { slot, int } => match builder.field_mut(slot) {
            Some(FieldMut::Long(dst)) => {
                if let Some(value) = at.try_long(int) {
                    *dst = Some(value);
                    return true;
                }
            }
            Some(FieldMut::NullableLong(dst)) => {
                if let Some(value) = at.try_long(int) {
                    *dst = Some(Some(value));
                    return true;
                }
            }
            _ => {}
        },
        AvroStep::NullableLong {
            slot,
            null,
            long,
            int,
        } => {
            if let Some(FieldMut::NullableLong(dst)) = builder.field_mut(slot) {
                if at.branch_is(null) {
                    *dst = Some(None);
                    return true;
                }
                if at.branch_is(long)
                    && let Some(value) = at.try_long(int)
                {
                    *dst = Some(Some(value));
                    return true;
                }
            }
        }
        AvroStep::Bool { slot } => match builder.field_mut(slot) {
            Some(FieldMut::Bool(dst)) => {
                if let Some(value) = at.try_bool() {
                    *dst = Some(value);
                    return true;
                }
            }
            Some(FieldMut::NullableBool(dst)) => {
                if let Some(value) = at.try_bool() {
                    *dst = Some(Some(value));
                    return true;
                }
            }
            _ => {}
        },
        AvroStep::NullableBool {
            slot,
            null,
            boolean,
        } => {
            if let Some(FieldMut::NullableBool(dst)) = builder.field_mut(slot) {
                if at.branch_is(null) {
                    *dst = Some(None);
                    return true;
                }
                if at.branch_is(boolean)
                    && let Some(value) = at.try_bool()
                {
                    *dst = Some(Some(value));
                    return true;
                }
            }
        }
        AvroStep::Slot(_) | AvroStep::Unknown => {}
    }
    false
}

impl<'de> RecordAccess<'de, '_> {
    /// The deserializer of the next field's value.
    #[inline]
    fn value(&mut self) -> Result<ValueDe<'de, '_>, DeError> {
        self.text_value().map(|(_, value)| value)
    }

    /// [`RecordAccess::value`] with the field's text shape.
    #[inline(always)]
    fn text_value(&mut self) -> Result<(TextShape, ValueDe<'de, '_>), DeError> {
        let field = self
            .fields
            .get(self.next)
            .ok_or_else(|| DeError("value requested after the last field".into()))?;
        self.next += 1;
        let value = ValueDe {
            ty: &field.ty,
            cursor: self.cursor,
        };
        Ok((field.text, value))
    }
}

/// Deserializer of one Avro value of a known writer type.
struct ValueDe<'de, 'c> {
    ty: &'de AvroType,
    cursor: &'c mut Cursor<'de>,
}

impl<'de> ValueDe<'de, '_> {
    /// The value as text: what `Text`'s serde impl reads, a string lent.
    /// A union's branch is read here, so the usual `["null", "string"]`
    /// costs no second call.
    #[inline]
    fn text(self) -> Result<Cow<'de, str>, DeError> {
        let ty = match self.ty {
            AvroType::Union(branches) => self.cursor.union_branch(branches)?,
            ty => ty,
        };
        match ty {
            AvroType::String => self.cursor.str().map(Cow::Borrowed),
            ty => Text::deserialize(ValueDe {
                ty,
                cursor: self.cursor,
            })
            .map(|text| text.0),
        }
    }

    /// The value as text or null: what `Option<Text>`'s serde impl reads.
    #[inline]
    fn nullable_text(self) -> Result<Option<Cow<'de, str>>, DeError> {
        let ty = match self.ty {
            AvroType::Union(branches) => self.cursor.union_branch(branches)?,
            ty => ty,
        };
        match ty {
            AvroType::Null => Ok(None),
            AvroType::String => self.cursor.str().map(|text| Some(Cow::Borrowed(text))),
            ty => ValueDe {
                ty,
                cursor: self.cursor,
            }
            .nullable_or_text(),
        }
    }

    /// The rare rest of [`ValueDe::nullable_text`]: a union inside a union
    /// (which Avro does not allow, but serde would read), or a type that is
    /// not text (serde's error).
    #[inline(never)]
    fn nullable_or_text(self) -> Result<Option<Cow<'de, str>>, DeError> {
        match self.ty {
            AvroType::Union(_) => self.nullable_text(),
            _ => self.text().map(Some),
        }
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let cursor = self.cursor;
        match self.ty {
            AvroType::Null => visitor.visit_unit(),
            AvroType::Boolean => match cursor.try_bool() {
                Some(value) => visitor.visit_bool(value),
                None => match cursor.data.get(cursor.pos) {
                    Some(b) => Err(DeError(format!("invalid boolean byte {b}"))),
                    None => Err(eof()),
                },
            },
            AvroType::Int => visitor.visit_i32(cursor.int()?),
            AvroType::Long => visitor.visit_i64(cursor.long()?),
            AvroType::Float => {
                let b = cursor.take(4)?;
                visitor.visit_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            AvroType::Double => {
                let b = cursor.take(8)?;
                let mut a = [0; 8];
                a.copy_from_slice(b);
                visitor.visit_f64(f64::from_le_bytes(a))
            }
            // Avro's JSON encoding of bytes: one char per byte (ISO-8859-1).
            AvroType::Bytes => {
                visitor.visit_string(cursor.bytes()?.iter().map(|&b| b as char).collect())
            }
            AvroType::Fixed(n) => {
                visitor.visit_string(cursor.take(*n)?.iter().map(|&b| b as char).collect())
            }
            AvroType::String => visitor.visit_borrowed_str(cursor.str()?),
            AvroType::Enum(symbols) => {
                let i = cursor.long()?;
                let symbol = usize::try_from(i)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| DeError(format!("enum index {i} out of range")))?;
                visitor.visit_str(symbol)
            }
            AvroType::Union(branches) => {
                let ty = cursor.union_branch(branches)?;
                ValueDe { ty, cursor }.deserialize_any(visitor)
            }
            AvroType::Array(items) => visitor.visit_seq(SeqAccess {
                ty: items,
                cursor,
                left: 0,
                done: false,
            }),
            AvroType::Map(values) => visitor.visit_map(MapAccess {
                ty: values,
                cursor,
                left: 0,
                done: false,
            }),
            AvroType::Record(record) => visitor.visit_map(RecordAccess::new(record, cursor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.ty {
            AvroType::Null => visitor.visit_none(),
            AvroType::Union(branches) => {
                let ty = self.cursor.union_branch(branches)?;
                ValueDe {
                    ty,
                    cursor: self.cursor,
                }
                .deserialize_option(visitor)
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.ty {
            AvroType::Bytes | AvroType::String => {
                visitor.visit_borrowed_bytes(self.cursor.bytes()?)
            }
            AvroType::Fixed(n) => visitor.visit_borrowed_bytes(self.cursor.take(*n)?),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Avro arrays and maps come in blocks (a count, then that many items, until
/// a zero count): true when another item follows, consuming its place.
fn next_block_item(
    left: &mut usize,
    done: &mut bool,
    cursor: &mut Cursor<'_>,
) -> Result<bool, DeError> {
    if *done {
        return Ok(false);
    }
    if *left == 0 {
        *left = cursor.block_count()?;
        if *left == 0 {
            *done = true;
            return Ok(false);
        }
    }
    *left -= 1;
    Ok(true)
}

struct SeqAccess<'de, 'c> {
    ty: &'de AvroType,
    cursor: &'c mut Cursor<'de>,
    left: usize,
    done: bool,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if !next_block_item(&mut self.left, &mut self.done, self.cursor)? {
            return Ok(None);
        }
        seed.deserialize(ValueDe {
            ty: self.ty,
            cursor: self.cursor,
        })
        .map(Some)
    }
}

struct MapAccess<'de, 'c> {
    ty: &'de AvroType,
    cursor: &'c mut Cursor<'de>,
    left: usize,
    done: bool,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        if !next_block_item(&mut self.left, &mut self.done, self.cursor)? {
            return Ok(None);
        }
        let key = self.cursor.str()?;
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        seed.deserialize(ValueDe {
            ty: self.ty,
            cursor: self.cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    /// An Avro string: its zigzag length, then its bytes.
    fn avro_string(bytes: &[u8]) -> Vec<u8> {
        let mut data = vec![(bytes.len() as u8) << 1];
        data.extend_from_slice(bytes);
        data
    }

    /// Avro's zigzag varint of `n`.
    fn avro_long(n: i64) -> Vec<u8> {
        let mut v = ((n << 1) ^ (n >> 63)) as u64;
        let mut data = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                data.push(byte);
                return data;
            }
            data.push(byte | 0x80);
        }
    }

    /// One case of [`text_read_directly_is_what_serde_reads`]: the writer
    /// types and bytes of the fields that vary.
    struct TextCase {
        email_type: &'static str,
        email: Vec<u8>,
        external_type: &'static str,
        external: Vec<u8>,
        user: Vec<u8>,
        /// A last field, as schema JSON and bytes.
        extra: Option<(&'static str, Vec<u8>)>,
        /// The field an error names; `None`: the record is valid.
        error_field: Option<&'static str>,
        external_id: Option<&'static str>,
    }

    /// The builders read text through `RecordAccess`'s own `FieldMap`
    /// methods, and a planned record (`PlannedAccess`) stores it straight
    /// in: both must read what serde's defaults read (the same record
    /// through `SerdeMap`): strings in and out of unions (either order),
    /// enums, nulls, a field given twice, and the errors for a type that
    /// is not text, a branch out of range and bytes that are not UTF-8.
    #[test]
    fn text_read_directly_is_what_serde_reads() {
        use crate::Event;
        use crate::record::SerdeMap;

        let schema = |case: &TextCase| {
            let extra = case
                .extra
                .as_ref()
                .map_or(String::new(), |(field, _)| format!(",{field}"));
            format!(
                r#"{{"type":"record","name":"EmailOpen","fields":[
                {{"name":"id","type":"string"}},
                {{"name":"time","type":"long"}},
                {{"name":"user_id","type":["null","string"]}},
                {{"name":"external_user_id","type":{}}},
                {{"name":"campaign_name","type":{{"type":"enum","name":"C","symbols":["a","b"]}}}},
                {{"name":"dispatch_id","type":"null"}},
                {{"name":"email_address","type":{}}}{extra}]}}"#,
                case.external_type, case.email_type
            )
        };
        let record = |case: &TextCase| {
            let mut data = avro_string(b"e1");
            data.extend(avro_long(1_700_000_000));
            data.extend_from_slice(&case.user);
            data.extend_from_slice(&case.external);
            data.extend(avro_long(1)); // campaign_name: "b"
            data.extend_from_slice(&case.email);
            if let Some((_, bytes)) = &case.extra {
                data.extend_from_slice(bytes);
            }
            data
        };
        let user = [avro_long(1), avro_string("ü1".as_bytes())].concat(); // the string branch
        let case = |email_type, email: Vec<u8>, valid: bool| TextCase {
            email_type,
            email,
            external_type: r#"["string","null"]"#,
            external: avro_long(1), // the null branch
            user: user.clone(),
            extra: None,
            error_field: (!valid).then_some("email_address"),
            external_id: None,
        };
        let email = || avro_string(b"a@b.c");
        // The email address is required text: a null or an int is an error.
        let mut cases = vec![
            case(r#""string""#, email(), true),
            case(r#"["null","string"]"#, avro_long(0), false),
            case(r#""int""#, avro_long(7), false),
            case(
                r#"["null","int"]"#,
                [avro_long(1), avro_long(7)].concat(),
                false,
            ),
            // Both orders of the nullable string, and a branch out of range.
            case(
                r#"["null","string"]"#,
                [avro_long(1), email()].concat(),
                true,
            ),
            case(
                r#"["string","null"]"#,
                [avro_long(0), email()].concat(),
                true,
            ),
            case(
                r#"["null","string"]"#,
                [avro_long(2), email()].concat(),
                false,
            ),
            // Not UTF-8, read straight from a `string`.
            case(r#""string""#, avro_string(&[0xc3, 0x28]), false),
            TextCase {
                user: [avro_long(-1), avro_string(b"u")].concat(),
                error_field: Some("user_id"),
                ..case(r#""string""#, email(), true)
            },
        ];
        // The nullable external id: its string branch in either order, a
        // plain `string`, a branch out of range, and bytes not UTF-8.
        let external = [
            (
                r#"["null","string"]"#,
                [avro_long(1), avro_string(b"x1")].concat(),
                true,
            ),
            (
                r#"["string","null"]"#,
                [avro_long(0), avro_string(b"x1")].concat(),
                true,
            ),
            (r#""string""#, avro_string(b"x1"), true),
            (
                r#"["string","null"]"#,
                [avro_long(2), avro_string(b"x1")].concat(),
                false,
            ),
            (
                r#"["string","null"]"#,
                [avro_long(0), avro_string(&[0xff])].concat(),
                false,
            ),
        ];
        for (external_type, external, valid) in external {
            cases.push(TextCase {
                external_type,
                external,
                error_field: (!valid).then_some("external_user_id"),
                external_id: Some("x1"),
                ..case(r#""string""#, email(), true)
            });
        }
        // A field given twice (the plans' test covers a second key).
        for twice in [
            r#"{"name":"email_address","type":"string"}"#,
            r#"{"name":"external_user_id","type":["null","string"]}"#,
        ] {
            let second = if twice.contains("null") {
                [avro_long(1), avro_string(b"x2")].concat()
            } else {
                email()
            };
            cases.push(TextCase {
                extra: Some((twice, second)),
                error_field: Some("duplicate field"),
                ..case(r#""string""#, email(), true)
            });
        }
        for case in &cases {
            let record_type = super::parse_schema(schema(case).as_bytes()).unwrap();
            let data = record(case);
            let plan = Event::plan_fields(
                "users.messages.email.Open",
                record_type.fields.iter().map(|f| f.name.as_str()),
            )
            .unwrap();
            let steps = super::avro_steps(&record_type, &plan.fields);
            #[derive(Clone, Copy)]
            enum Read {
                Planned,
                Direct,
                Serde,
            }
            let decode = |read: Read| {
                let mut cursor = Cursor::new(&data);
                let fields = super::RecordAccess::new(&record_type, &mut cursor);
                let event = match read {
                    Read::Planned => Event::from_planned(
                        &plan,
                        super::PlannedAccess {
                            steps: &steps,
                            fields,
                        },
                    )
                    .map(|event| *event),
                    Read::Direct => Event::from_fields("users.messages.email.Open", fields),
                    Read::Serde => Event::from_map("users.messages.email.Open", SerdeMap(fields)),
                };
                (event.map_err(|e| e.0), cursor.pos)
            };
            let label = schema(case);
            let serde = decode(Read::Serde);
            assert_eq!(decode(Read::Direct), serde, "{label}");
            let (event, used) = decode(Read::Planned);
            assert_eq!(event, serde.0, "{label}");
            if let Some(field) = case.error_field {
                let error = event.unwrap_err();
                assert!(error.contains(field), "{label}: {error}");
            } else {
                assert_eq!(used, data.len(), "{label}");
                assert_eq!(serde.1, data.len(), "{label}");
                let Event::EmailOpen(open) = event.unwrap() else {
                    panic!("not an email open");
                };
                assert_eq!(open.user_id.as_deref(), Some("ü1"));
                assert_eq!(open.external_user_id.as_deref(), case.external_id);
                assert_eq!(open.campaign_name.as_deref(), Some("b"));
                assert_eq!(open.email_address, "a@b.c");
            }
        }
    }

    /// Integers and booleans a planned record stores straight in read as
    /// serde reads them: in and out of unions (either order), an `int` into
    /// an integer field, and the errors for a varint cut short or too long,
    /// a boolean byte that is not 0 or 1, a null into a required field and
    /// a branch out of range.
    #[test]
    fn numbers_read_directly_are_what_serde_reads() {
        use crate::Event;
        use crate::record::SerdeMap;

        let time = avro_long(1_700_000_000_123);
        // (time type, time bytes, is_amp type, is_amp bytes, error)
        type Case = (
            &'static str,
            Vec<u8>,
            &'static str,
            Vec<u8>,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (r#""long""#, time.clone(), r#""boolean""#, vec![1], None),
            (r#""long""#, time.clone(), r#""boolean""#, vec![0], None),
            (
                r#""int""#,
                avro_long(7),
                r#"["null","boolean"]"#,
                vec![2, 1],
                None,
            ),
            (
                r#""long""#,
                time.clone(),
                r#"["null","boolean"]"#,
                vec![0],
                None,
            ),
            (
                r#""long""#,
                time.clone(),
                r#"["boolean","null"]"#,
                vec![0, 0],
                None,
            ),
            (
                r#""long""#,
                time.clone(),
                r#"["boolean","null"]"#,
                vec![2],
                None,
            ),
            (
                r#"["null","long"]"#,
                [vec![2], time.clone()].concat(),
                r#""boolean""#,
                vec![1],
                None,
            ),
            (
                r#""long""#,
                time.clone(),
                r#""boolean""#,
                vec![2],
                Some("boolean byte 2"),
            ),
            (
                r#""long""#,
                time.clone(),
                r#"["null","boolean"]"#,
                vec![4, 1],
                Some("branch 2"),
            ),
            (
                r#""long""#,
                time.clone(),
                r#"["null","boolean"]"#,
                vec![2, 7],
                Some("boolean byte 7"),
            ),
            (
                r#"["null","long"]"#,
                vec![0],
                r#""boolean""#,
                vec![1],
                Some("time"),
            ),
            (
                r#""long""#,
                vec![0x80, 0x80],
                r#""boolean""#,
                vec![1],
                Some("end of its block"),
            ),
            (
                r#""long""#,
                vec![0xff; 11],
                r#""boolean""#,
                vec![1],
                Some("longer than 10 bytes"),
            ),
            (
                r#""int""#,
                avro_long(1 << 40),
                r#""boolean""#,
                vec![1],
                Some("int out of range"),
            ),
        ];
        for (time_type, time, amp_type, amp, error) in cases {
            let schema = format!(
                r#"{{"type":"record","name":"EmailOpen","fields":[
                {{"name":"id","type":"string"}},
                {{"name":"email_address","type":"string"}},
                {{"name":"is_amp","type":{amp_type}}},
                {{"name":"time","type":{time_type}}}]}}"#
            );
            let record_type = super::parse_schema(schema.as_bytes()).unwrap();
            // `time` last, so that a varint can be cut short.
            let data = [avro_string(b"e1"), avro_string(b"a@b.c"), amp, time].concat();
            let plan = Event::plan_fields(
                "users.messages.email.Open",
                record_type.fields.iter().map(|f| f.name.as_str()),
            )
            .unwrap();
            let steps = super::avro_steps(&record_type, &plan.fields);
            let decode = |planned: bool| {
                let mut cursor = Cursor::new(&data);
                let fields = super::RecordAccess::new(&record_type, &mut cursor);
                let event = if planned {
                    Event::from_planned(
                        &plan,
                        super::PlannedAccess {
                            steps: &steps,
                            fields,
                        },
                    )
                    .map(|event| *event)
                } else {
                    Event::from_map("users.messages.email.Open", SerdeMap(fields))
                };
                (event.map_err(|e| e.0), cursor.pos)
            };
            let label = format!("time {time_type}, is_amp {amp_type}: {data:?}");
            let (planned, used) = decode(true);
            let serde = decode(false);
            assert_eq!(planned, serde.0, "{label}");
            match error {
                Some(expected) => {
                    let error = planned.unwrap_err();
                    assert!(error.contains(expected), "{label}: {error}");
                }
                None => {
                    assert_eq!((used, serde.1), (data.len(), data.len()), "{label}");
                    let Event::EmailOpen(open) = planned.unwrap() else {
                        panic!("not an email open");
                    };
                    assert!(open.time == 1_700_000_000_123 || open.time == 7, "{label}");
                }
            }
        }
    }

    /// Plans send every text, integer and boolean field that a record can
    /// hold straight to the builder, once: a field's second key goes through the builder, which
    /// reports it; other types and unknown fields go through it too.
    #[test]
    fn plans_read_each_lent_field_straight_in_once() {
        use super::AvroStep;
        use crate::Event;

        let kinds = |event_type: &str, schema: &str| {
            let record_type = super::parse_schema(schema.as_bytes()).unwrap();
            let plan = Event::plan_fields(
                event_type,
                record_type.fields.iter().map(|f| f.name.as_str()),
            )
            .unwrap();
            let steps = super::avro_steps(&record_type, &plan.fields);
            steps
                .iter()
                .map(|step| match step {
                    AvroStep::Text { .. } => "text",
                    AvroStep::NullableText {
                        null: 0, string: 2, ..
                    } => "nullable text",
                    AvroStep::NullableText {
                        null: 2, string: 0, ..
                    } => "text or null",
                    AvroStep::NullableText { .. } => "bad branch bytes",
                    AvroStep::Long { int: true, .. } => "int",
                    AvroStep::Long { .. } => "long",
                    AvroStep::NullableLong {
                        null: 0, long: 2, ..
                    } => "nullable long",
                    AvroStep::NullableLong { .. } => "long or null",
                    AvroStep::Bool { .. } => "bool",
                    AvroStep::NullableBool {
                        null: 0,
                        boolean: 2,
                        ..
                    } => "nullable bool",
                    AvroStep::NullableBool { .. } => "bool or null",
                    AvroStep::Slot(_) => "builder",
                    AvroStep::Unknown => "unknown",
                })
                .collect::<Vec<_>>()
        };
        let email_open = kinds(
            "users.messages.email.Open",
            r#"{"type":"record","name":"EmailOpen","fields":[
                {"name":"id","type":"string"},
                {"name":"time","type":"long"},
                {"name":"user_id","type":["null","string"]},
                {"name":"external_user_id","type":["string","null"]},
                {"name":"dispatch_id","type":["null","string"]},
                {"name":"campaign_id","type":"string"},
                {"name":"not_in_the_glossary","type":"string"},
                {"name":"email_address","type":["null","string"]},
                {"name":"campaign_id","type":"string"},
                {"name":"is_amp","type":["boolean","null"]}]}"#,
        );
        assert_eq!(
            email_open,
            [
                "text",          // id
                "long",          // time
                "nullable text", // user_id
                "text or null",  // external_user_id
                "nullable text", // dispatch_id
                "text",          // campaign_id: nullable, written as a plain string
                "unknown",
                "builder", // email_address: required, so null is the builder's error
                "builder", // campaign_id again: the builder reports it
                "bool or null",
            ]
        );
        // Numbers and booleans: a nullable value into a required field and
        // a string into a boolean go through the builder; an `int` into an
        // `i64` field is read straight in.
        let email_open = kinds(
            "users.messages.email.Open",
            r#"{"type":"record","name":"EmailOpen","fields":[
                {"name":"time","type":["null","long"]},
                {"name":"is_amp","type":"boolean"}]}"#,
        );
        assert_eq!(email_open, ["builder", "bool"]);
        let email_open = kinds(
            "users.messages.email.Open",
            r#"{"type":"record","name":"EmailOpen","fields":[
                {"name":"time","type":"int"},
                {"name":"is_amp","type":["null","boolean"]}]}"#,
        );
        assert_eq!(email_open, ["int", "nullable bool"]);
        let email_open = kinds(
            "users.messages.email.Open",
            r#"{"type":"record","name":"EmailOpen","fields":[
                {"name":"is_amp","type":["null","string"]}]}"#,
        );
        assert_eq!(email_open, ["builder"]);
        // A field under its name and under its Custom HTTP name.
        let banner_abort = kinds(
            "users.messages.banner.Abort",
            r#"{"type":"record","name":"Abort","fields":[
                {"name":"canvas_step_message_variation_api_id","type":["null","string"]},
                {"name":"canvas_step_message_variation_id","type":["null","string"]}]}"#,
        );
        assert_eq!(banner_abort, ["nullable text", "builder"]);
    }

    /// A text field under its Custom HTTP name (here, the writer's) that
    /// does not read: the error names the field as the builder's reader
    /// does, whichever path read it.
    #[test]
    fn a_planned_field_fails_as_the_builder_fails() {
        use crate::Event;
        use crate::record::SerdeMap;

        let record_type = super::parse_schema(
            br#"{"type":"record","name":"Abort","fields":[
                {"name":"canvas_step_message_variation_api_id","type":["null","string"]}]}"#,
        )
        .unwrap();
        let event_type = "users.messages.banner.Abort";
        let plan = Event::plan_fields(
            event_type,
            record_type.fields.iter().map(|f| f.name.as_str()),
        )
        .unwrap();
        let steps = super::avro_steps(&record_type, &plan.fields);
        for data in [
            [avro_long(1), avro_string(&[0xff])].concat(), // not UTF-8
            [avro_long(1), vec![20, b'a']].concat(),       // cut short
        ] {
            let mut cursor = Cursor::new(&data);
            let fields = super::RecordAccess::new(&record_type, &mut cursor);
            let planned = Event::from_planned(
                &plan,
                super::PlannedAccess {
                    steps: &steps,
                    fields,
                },
            )
            .unwrap_err()
            .0;
            let mut cursor = Cursor::new(&data);
            let fields = SerdeMap(super::RecordAccess::new(&record_type, &mut cursor));
            let serde = Event::from_map(event_type, fields).unwrap_err().0;
            assert_eq!(planned, serde);
            assert!(
                planned.starts_with("field `canvas_step_message_variation_id`"),
                "{planned}"
            );
        }
    }

    #[test]
    fn strings_read_as_the_varint_loop_reads_them() {
        // Around the one-byte length (under 64) read without the loop.
        for len in [0usize, 1, 62, 63, 64, 65, 200] {
            let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
            let mut data = avro_long(text.len() as i64);
            data.extend_from_slice(text.as_bytes());
            data.push(7); // the next field's byte
            let mut cursor = Cursor::new(&data);
            assert_eq!(cursor.str().unwrap(), text, "{len}");
            assert_eq!(cursor.pos, data.len() - 1, "{len}");
            // Cut short inside the string: an error, nothing consumed past it.
            let mut cursor = Cursor::new(&data[..data.len() - 2]);
            let error = cursor.str().unwrap_err().0;
            assert!(error.contains("past the end"), "{len}: {error}");
        }
        // A negative length (one byte, and two) is an error, not a string.
        for n in [-1i64, -40, -100] {
            let mut data = avro_long(n);
            data.extend_from_slice(&[b'a'; 128]);
            let error = Cursor::new(&data).str().unwrap_err().0;
            assert_eq!(error, format!("negative length {n}"));
        }
        // Not UTF-8 behind a one-byte length.
        let error = Cursor::new(&[4, 0xc3, 0x28]).str().unwrap_err().0;
        assert!(error.contains("not UTF-8"), "{error}");
    }

    #[test]
    fn ascii_check_sees_every_byte() {
        for len in 0..40 {
            let ascii = vec![b'a'; len];
            assert!(super::is_ascii(&ascii), "{len}");
            for at in 0..len {
                let mut bytes = ascii.clone();
                bytes[at] = 0x80;
                assert!(!super::is_ascii(&bytes), "{len} {at}");
            }
        }
    }

    #[test]
    fn strings_are_checked_for_utf8_on_the_ascii_path_and_off_it() {
        for text in ["", "campaign-42", "Été à Zürich 🎉"] {
            let data = avro_string(text.as_bytes());
            assert_eq!(Cursor::new(&data).str().unwrap(), text);
        }
        for bad in [&b"ab\xffcd"[..], b"\xc3", b"ok \xe2\x82"] {
            let data = avro_string(bad);
            let error = Cursor::new(&data).str().unwrap_err();
            assert!(error.0.contains("not UTF-8"), "{}", error.0);
        }
    }
}
