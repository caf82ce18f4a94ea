//! A fast, strict JSON deserializer for the common case: one event object in
//! memory, valid UTF-8, read by the generated builders through serde.
//!
//! It never reports errors of its own. Anything it does not read exactly as
//! `serde_json::Deserializer::from_slice` would (a syntax error, a type
//! error from a builder, a lone surrogate, a float, a long or negative-zero
//! integer, a raw value, deep nesting, …) makes it give up with [`Bail`],
//! and the caller reads the same bytes again with serde_json, whose result
//! (value or error, with its message and position) is the one reported. So
//! on success it must produce exactly what serde_json produces: the same
//! visitor calls with the same values (strings without escapes lent with
//! `visit_borrowed_str`, numbers as `u64`/`i64`, `null` as `unit`/`none`).
//! Its errors carry no message, so the builders' error paths cost nothing.

use std::fmt;

use std::borrow::Cow;

use currents_core::json::escape_at;
use serde::de::{self, DeserializeSeed, Visitor};

use crate::UnknownFields;
use crate::record::{self, FieldKey, FieldMap, Nested, RecordBuilder};

/// Giving up: the slow path decides.
#[derive(Debug)]
pub(crate) struct Bail;

impl fmt::Display for Bail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fast path declined")
    }
}

impl std::error::Error for Bail {}

impl de::Error for Bail {
    #[cold]
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Bail
    }
    #[cold]
    fn invalid_type(_unexp: de::Unexpected<'_>, _exp: &dyn de::Expected) -> Self {
        Bail
    }
    #[cold]
    fn invalid_value(_unexp: de::Unexpected<'_>, _exp: &dyn de::Expected) -> Self {
        Bail
    }
    #[cold]
    fn invalid_length(_len: usize, _exp: &dyn de::Expected) -> Self {
        Bail
    }
    #[cold]
    fn unknown_variant(_variant: &str, _expected: &'static [&'static str]) -> Self {
        Bail
    }
    #[cold]
    fn unknown_field(_field: &str, _expected: &'static [&'static str]) -> Self {
        Bail
    }
    #[cold]
    fn missing_field(_field: &'static str) -> Self {
        Bail
    }
    #[cold]
    fn duplicate_field(_field: &'static str) -> Self {
        Bail
    }
}

type Result<T> = std::result::Result<T, Bail>;

/// Below serde_json's recursion limit of 128, so nothing it rejects for
/// depth is accepted here.
const MAX_DEPTH: u32 = 100;

/// The deserializer over one JSON text (or the start of one: see
/// [`Deserializer::offset`]), already known to be UTF-8 as a whole (one
/// check per text, not one per string: strings are slices of it).
pub(crate) struct Deserializer<'de> {
    text: &'de str,
    input: &'de [u8],
    pos: usize,
    depth: u32,
    scratch: String,
}

/// The first `"` at or after `from` that no backslash escapes: the end of
/// a well-formed string (a hint only; decoding still checks every byte).
/// Each backslash run is counted once, so the scan is linear.
fn closing_quote(input: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let quote = from + memchr::memchr(b'"', input.get(from..)?)?;
        let backslashes = input[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(quote);
        }
        from = quote + 1;
    }
}

impl<'de> Deserializer<'de> {
    pub(crate) fn new(text: &'de str) -> Self {
        Deserializer {
            text,
            input: text.as_bytes(),
            pos: 0,
            depth: 0,
            scratch: String::new(),
        }
    }

    /// The text between two ASCII delimiters: `start` just after an ASCII
    /// byte (a quote, or the end of an escape), `end` at one (what
    /// [`escape_at`] finds) or at the end of the input. Callers only pass such
    /// positions, so only the range is checked.
    #[inline(always)]
    fn slice(&self, start: usize, end: usize) -> Result<&'de str> {
        debug_assert!(self.text.is_char_boundary(start) && self.text.is_char_boundary(end));
        let bytes = self.input.get(start..end).ok_or(Bail)?;
        // SAFETY: `input` is `text`, valid UTF-8. In UTF-8 the byte after an
        // ASCII byte starts a character and an ASCII byte is one, so a slice
        // from just after one ASCII byte to another (or to the end) is
        // whole characters, valid UTF-8 itself.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Bytes read so far (after a value: where it ends).
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Only whitespace may follow the value (serde_json's `end`).
    pub(crate) fn end(&mut self) -> Result<()> {
        match self.peek_ws() {
            None => Ok(()),
            Some(_) => Err(Bail),
        }
    }

    #[inline(always)]
    fn peek_ws(&mut self) -> Option<u8> {
        while let Some(&b) = self.input.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    #[inline(always)]
    fn expect_literal(&mut self, literal: &[u8]) -> Result<()> {
        if self.input[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Reads a string whose opening quote is at `pos`.
    #[inline(always)]
    fn string<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.pos += 1;
        let start = self.pos;
        let end = escape_at(self.input, start);
        match self.input.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                visitor.visit_borrowed_str(self.slice(start, end)?)
            }
            Some(b'\\') => {
                self.pos = end;
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                scratch.push_str(self.slice(start, end)?);
                let done = self.escaped_rest(&mut scratch);
                let value = done.and_then(|()| visitor.visit_str(&scratch));
                self.scratch = scratch;
                value
            }
            // A control character, or the end of the input.
            _ => Err(Bail),
        }
    }

    /// Reads a string whose opening quote is at `pos` as text, lent when it
    /// has no escapes (what `visit_borrowed_str` and `visit_str` give).
    #[inline(always)]
    fn text(&mut self) -> Result<Cow<'de, str>> {
        self.pos += 1;
        let start = self.pos;
        let end = escape_at(self.input, start);
        match self.input.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                self.slice(start, end).map(Cow::Borrowed)
            }
            Some(b'\\') => {
                self.pos = end;
                self.unescaped(start, end).map(Cow::Owned)
            }
            _ => Err(Bail),
        }
    }

    /// The text of a string that starts at `start` and has its first escape
    /// at `end` (= `pos`).
    #[inline(never)]
    fn unescaped(&mut self, start: usize, end: usize) -> Result<String> {
        // Unescaping only shrinks text, so room up to the closing quote is
        // enough and the string is allocated once: growing it cost ~3% of
        // a run on escape-heavy input.
        let room = closing_quote(self.input, end).map_or(end - start + 16, |quote| quote - start);
        let mut text = String::with_capacity(room);
        text.push_str(self.slice(start, end)?);
        self.escaped_rest(&mut text)?;
        Ok(text)
    }

    /// Reads the object at `pos` (after whitespace) with `read`, which must
    /// read it to its end.
    #[inline]
    pub(crate) fn object<T>(
        &mut self,
        read: impl FnOnce(&mut Map<'_, 'de>) -> Result<T>,
    ) -> Result<T> {
        if self.peek_ws() != Some(b'{') {
            return Err(Bail);
        }
        self.enter()?;
        let value = read(&mut Map {
            de: &mut *self,
            first: true,
        })?;
        self.depth -= 1;
        if self.peek_ws() != Some(b'}') {
            return Err(Bail);
        }
        self.pos += 1;
        Ok(value)
    }

    /// Decodes the rest of a string from the escape at `pos` into
    /// `scratch`, consuming the closing quote.
    #[cold]
    fn escaped_rest(&mut self, scratch: &mut String) -> Result<()> {
        loop {
            let b = *self.input.get(self.pos).ok_or(Bail)?;
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    let e = *self.input.get(self.pos + 1).ok_or(Bail)?;
                    self.pos += 2;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(Bail),
                    };
                    scratch.push(c);
                }
                _ => {
                    let end = escape_at(self.input, self.pos);
                    if end == self.pos {
                        return Err(Bail); // a control character
                    }
                    scratch.push_str(self.slice(self.pos, end)?);
                    self.pos = end;
                }
            }
        }
    }

    /// The character of a `\u` escape whose hex digits start at `pos`
    /// (a surrogate pair takes the following `\uXXXX` too; a lone
    /// surrogate is serde_json's error to report).
    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.input.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(Bail);
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(Bail);
                }
                0x10000 + (((first - 0xD800) << 10) | (second - 0xDC00))
            }
            0xDC00..=0xDFFF => return Err(Bail),
            _ => first,
        };
        char::from_u32(code).ok_or(Bail)
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.input.get(self.pos..self.pos + 4).ok_or(Bail)?;
        let mut n = 0u32;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(Bail),
            };
            n = (n << 4) | v as u32;
        }
        self.pos += 4;
        Ok(n)
    }

    /// Reads a number at `pos` as serde_json does for integers that fit
    /// (`u64` when positive, `i64` when negative); floats go through
    /// serde_json's own parser, so their values are its values.
    #[inline(always)]
    fn number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let negative = self.input[start] == b'-';
        let mut i = start + usize::from(negative);
        let digits_start = i;
        let mut value: u64 = 0;
        while let Some(&d) = self.input.get(i) {
            if !d.is_ascii_digit() {
                break;
            }
            value = value.wrapping_mul(10).wrapping_add((d - b'0') as u64);
            i += 1;
        }
        let digits = i - digits_start;
        // No digits, a leading zero, or one that might overflow.
        if digits == 0 || digits > 18 || (digits > 1 && self.input[digits_start] == b'0') {
            return Err(Bail);
        }
        if matches!(self.input.get(i), Some(b'.' | b'e' | b'E')) {
            return self.float(visitor);
        }
        self.pos = i;
        if negative {
            if value == 0 {
                return Err(Bail); // serde_json reads -0 as a float
            }
            visitor.visit_i64(-(value as i64))
        } else {
            visitor.visit_u64(value)
        }
    }

    #[cold]
    fn float<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let mut i = start;
        while let Some(&d) = self.input.get(i) {
            if !matches!(d, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                break;
            }
            i += 1;
        }
        let value: f64 = serde_json::from_slice(&self.input[start..i]).map_err(|_| Bail)?;
        self.pos = i;
        visitor.visit_f64(value)
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Bail);
        }
        self.pos += 1;
        Ok(())
    }
}

/// The entries of an object, from its `{` to its `}` (not consumed).
pub(crate) struct Map<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl Map<'_, '_> {
    /// Steps to the next key's opening quote; `false` at the end.
    #[inline(always)]
    fn at_key(&mut self) -> Result<bool> {
        match self.de.peek_ws() {
            Some(b'}') => return Ok(false),
            Some(b',') if !self.first => {
                self.de.pos += 1;
                if self.de.peek_ws() != Some(b'"') {
                    return Err(Bail); // a trailing comma, or a key that is not a string
                }
            }
            Some(b'"') if self.first => {}
            _ => return Err(Bail),
        }
        self.first = false;
        Ok(true)
    }

    /// Steps over the `:` before a value.
    #[inline(always)]
    fn colon(&mut self) -> Result<()> {
        if self.de.peek_ws() != Some(b':') {
            return Err(Bail);
        }
        self.de.pos += 1;
        Ok(())
    }
}

impl<'de> de::MapAccess<'de> for Map<'_, 'de> {
    type Error = Bail;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.at_key()? {
            return Ok(None);
        }
        seed.deserialize(MapKey { de: &mut *self.de }).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.colon()?;
        seed.deserialize(&mut *self.de)
    }
}

/// Keys and text read straight from the input: what serde's `next_key`,
/// `next_value` of a string or `null`, and a nested object's `visit_map`
/// would read, without the visitor calls in between.
impl<'de> FieldMap<'de> for Map<'_, 'de> {
    // Inlined into the one loop that calls it (`visit_entries`): a call's
    // register saves cost as much as reading a short key.
    #[inline(always)]
    fn next_field(&mut self) -> Result<Option<FieldKey<'de>>> {
        if !self.at_key()? {
            return Ok(None);
        }
        Ok(Some(match self.de.text()? {
            Cow::Borrowed(key) => FieldKey::Borrowed(key),
            Cow::Owned(key) => FieldKey::Owned(key),
        }))
    }

    #[inline]
    fn next_text(&mut self) -> Result<Cow<'de, str>> {
        self.colon()?;
        match self.de.peek_ws() {
            Some(b'"') => self.de.text(),
            _ => Err(Bail),
        }
    }

    #[inline]
    fn next_nullable_text(&mut self) -> Result<Option<Cow<'de, str>>> {
        self.colon()?;
        match self.de.peek_ws() {
            Some(b'"') => self.de.text().map(Some),
            Some(b'n') => {
                self.de.expect_literal(b"null")?;
                Ok(None)
            }
            _ => Err(Bail),
        }
    }

    fn next_nested<B: RecordBuilder<'de>>(
        &mut self,
        builder: &mut B,
        key: &str,
        unknown: fn(&mut B) -> &mut UnknownFields,
    ) -> Result<()> {
        self.colon()?;
        if self.de.peek_ws() == Some(b'{') {
            self.de.object(|map| record::visit_entries(builder, map))
        } else {
            Nested::new(builder, key, unknown).deserialize(&mut *self.de)
        }
    }
}

struct Seq<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de> {
    type Error = Bail;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.de.peek_ws() {
            Some(b']') => return Ok(None),
            Some(b',') if !self.first => {
                self.de.pos += 1;
                if matches!(self.de.peek_ws(), Some(b']') | None) {
                    return Err(Bail); // a trailing comma
                }
            }
            Some(_) if self.first => {}
            _ => return Err(Bail),
        }
        self.first = false;
        seed.deserialize(&mut *self.de).map(Some)
    }
}

/// A map key (at its opening quote): serde_json reads keys as strings
/// whatever type is asked for (numbers and bools are parsed from their
/// text); only string-typed keys are read here.
struct MapKey<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::Deserializer<'de> for MapKey<'_, 'de> {
    type Error = Bail;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.string(visitor)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.string(visitor)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.string(visitor)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.string(de::IgnoredAny)?;
        visitor.visit_unit()
    }

    fn deserialize_bool<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Bail)
    }

    serde::forward_to_deserialize_any! {
        char
    }

    fn deserialize_i8<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_option<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_unit<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _v: V,
    ) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _v: V,
    ) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _v: V,
    ) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_map<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, _v: V) -> Result<V::Value> {
        Err(Bail)
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Bail;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_ws().ok_or(Bail)? {
            b'"' => self.string(visitor),
            b'{' => self.deserialize_map(visitor),
            b'[' => self.deserialize_seq(visitor),
            b'-' | b'0'..=b'9' => self.number(visitor),
            b't' => {
                self.expect_literal(b"true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.expect_literal(b"false")?;
                visitor.visit_bool(false)
            }
            b'n' => {
                self.expect_literal(b"null")?;
                visitor.visit_unit()
            }
            _ => Err(Bail),
        }
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_ws() {
            Some(b'"') => self.string(visitor),
            _ => Err(Bail),
        }
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_ws() {
            Some(b'n') => {
                self.expect_literal(b"null")?;
                visitor.visit_none()
            }
            Some(_) => visitor.visit_some(self),
            None => Err(Bail),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_ws() {
            Some(b't') => {
                self.expect_literal(b"true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.expect_literal(b"false")?;
                visitor.visit_bool(false)
            }
            _ => Err(Bail),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_ws() {
            Some(b'-' | b'0'..=b'9') => self.number(visitor),
            _ => Err(Bail),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Bail)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Bail)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Bail)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_ws() {
            Some(b'n') => {
                self.expect_literal(b"null")?;
                visitor.visit_unit()
            }
            _ => Err(Bail),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name.starts_with("$serde_json::") {
            return Err(Bail); // raw values and the like: serde_json's own
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek_ws() != Some(b'[') {
            return Err(Bail);
        }
        self.enter()?;
        let value = visitor.visit_seq(Seq {
            de: &mut *self,
            first: true,
        })?;
        self.depth -= 1;
        if self.peek_ws() != Some(b']') {
            return Err(Bail);
        }
        self.pos += 1;
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.object(|map| visitor.visit_map(map))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.peek_ws() {
            Some(b'{') => self.deserialize_map(visitor),
            Some(b'[') => self.deserialize_seq(visitor),
            _ => Err(Bail),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(Bail)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_ws().ok_or(Bail)? {
            b'"' => {
                self.string(de::IgnoredAny)?;
            }
            b'{' => {
                self.enter()?;
                let mut map = Map {
                    de: &mut *self,
                    first: true,
                };
                while de::MapAccess::next_key::<de::IgnoredAny>(&mut map)?.is_some() {
                    de::MapAccess::next_value::<de::IgnoredAny>(&mut map)?;
                }
                self.depth -= 1;
                self.pos += 1; // the `}` next_key stopped at
            }
            b'[' => {
                self.enter()?;
                let mut seq = Seq {
                    de: &mut *self,
                    first: true,
                };
                while de::SeqAccess::next_element::<de::IgnoredAny>(&mut seq)?.is_some() {}
                self.depth -= 1;
                self.pos += 1; // the `]` next_element stopped at
            }
            _ => {
                self.deserialize_any(de::IgnoredAny)?;
            }
        }
        visitor.visit_unit()
    }
}

impl Deserializer<'_> {
    /// Test helper: skips one value and the trailing whitespace.
    #[cfg(test)]
    fn skip_all(&mut self) -> Result<()> {
        de::Deserializer::deserialize_ignored_any(&mut *self, de::IgnoredAny)?;
        self.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn the_closing_quote_is_the_first_no_backslash_escapes() {
        // (input, index of the closing quote)
        let cases: [(&[u8], Option<usize>); 6] = [
            (br#"ab\\"cd"#, Some(4)),
            (br#"a\"b"x"#, Some(4)),
            (br#"a\\\"b"x"#, Some(6)),
            (br#"a\\\\"b"#, Some(5)),
            (br#"\"#, None),
            (br#"a\""#, None),
        ];
        for (input, quote) in cases {
            assert_eq!(
                closing_quote(input, 0),
                quote,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // From an offset past the text's start.
        assert_eq!(closing_quote(br#""a" "b""#, 1), Some(2));
        assert_eq!(closing_quote(br#""a" "b""#, 3), Some(4));
    }

    /// Parsed by both: wherever the fast path accepts, it agrees with serde_json.
    fn agree(text: &str) {
        let fast = {
            let mut de = Deserializer::new(text);
            serde_json::Value::deserialize(&mut de)
                .ok()
                .filter(|_| de.end().is_ok())
        };
        let slow = serde_json::from_str::<serde_json::Value>(text).ok();
        if let Some(fast) = fast {
            assert_eq!(Some(fast), slow, "{text}");
        }
        let skipped = Deserializer::new(text).skip_all().is_ok();
        if skipped {
            assert!(slow.is_some(), "skip accepted {text}");
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        for text in [
            r#"{"a":1,"b":[1,2,{"c":null}],"d":"x\"y\\z\u00e9\ud83d\ude00","e":-5,"f":true}"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":-0}"#,
            r#"{"a":1.5e3}"#,
            r#"{"a":1e999}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00x"}"#,
            r#"{"a":"tab	"}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[,1]}"#,
            r#"{"a" 1}"#,
            r#"{1:1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":12345678901234567890}"#,
            r#"{"a":-9223372036854775808}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}  "#,
            r#" {"a" : [ 1 , 2 ] } "#,
            r#"{"a":"é日本"}"#,
            r#"[1,2]"#,
            r#"{"a":{}}"#,
            r#"{"a":[]}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            "{\"a\":\"\u{7f}\"}",
        ] {
            agree(text);
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        agree(&deep);
    }
}
