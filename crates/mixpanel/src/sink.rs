//! Where mapped properties go. The generated mappers call a [`PropertySink`]
//! once per property, so a Mixpanel event is written straight to its JSON
//! bytes ([`JsonEventWriter`]) or collected as a value ([`ValueSink`]) with no
//! intermediate map for known fields.

use serde_json::{Map, Value};

/// Something worth counting that did not stop the event from being mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapWarning {
    /// A custom/purchase `properties` field was not a JSON object; it was
    /// kept as text under its field name instead of being expanded.
    PropertiesNotAnObject,
    /// The Braze `id` is not a valid `$insert_id`; a hash of it was used and
    /// the original kept in `braze_event_id`.
    InsertIdHashed,
}

impl MapWarning {
    pub const fn reason(self) -> &'static str {
        match self {
            MapWarning::PropertiesNotAnObject => "properties_not_an_object",
            MapWarning::InsertIdHashed => "insert_id_hashed",
        }
    }
}

/// Receives a Mixpanel event: the name first, then each property once.
/// `pii` says whether the value is personal data (the glossary's `[PII]`).
pub trait PropertySink {
    fn event_name(&mut self, name: &str);
    fn str(&mut self, key: &str, value: &str, pii: bool);
    fn i64(&mut self, key: &str, value: i64, pii: bool);
    fn f32(&mut self, key: &str, value: f32, pii: bool);
    fn bool(&mut self, key: &str, value: bool, pii: bool);
    fn strs(&mut self, key: &str, values: &[String], pii: bool);
    fn opt_strs(&mut self, key: &str, values: &[Option<String>], pii: bool);
    fn json(&mut self, key: &str, value: &Value, pii: bool);
    fn warning(&mut self, _warning: MapWarning) {}
}

/// Shape facts gathered while writing, for `/import` pre-validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventShape {
    pub properties: usize,
    /// Longest array among the properties (nested ones included).
    pub max_array_len: usize,
    /// Most keys in one nested object.
    pub max_object_keys: usize,
    /// Deepest nesting of objects/arrays inside a property value (0: scalar).
    pub max_depth: usize,
}

impl EventShape {
    fn observe(&mut self, value: &Value, depth: usize) {
        match value {
            Value::Array(items) => {
                self.max_array_len = self.max_array_len.max(items.len());
                self.max_depth = self.max_depth.max(depth + 1);
                for item in items {
                    self.observe(item, depth + 1);
                }
            }
            Value::Object(map) => {
                self.max_object_keys = self.max_object_keys.max(map.len());
                self.max_depth = self.max_depth.max(depth + 1);
                for item in map.values() {
                    self.observe(item, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// Writes one Mixpanel event as compact JSON, `{"event":…,"properties":{…}}`,
/// into a reusable buffer.
#[derive(Debug, Default)]
pub struct JsonEventWriter {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` holding earlier, kept events.
    kept: usize,
    shape: EventShape,
    warnings: Vec<MapWarning>,
    open: bool,
}

impl JsonEventWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new event, forgetting the previous one (unless kept).
    pub fn clear(&mut self) {
        self.buf.truncate(self.kept);
        self.shape = EventShape::default();
        self.warnings.clear();
        self.open = false;
    }

    /// The finished event's JSON (closes the object on first call).
    pub fn finish(&mut self) -> &[u8] {
        if self.open {
            self.buf.extend_from_slice(b"}}");
            self.open = false;
        }
        &self.buf[self.kept..]
    }

    /// The JSON written so far ([`JsonEventWriter::finish`] closes it).
    pub fn finished(&self) -> &[u8] {
        &self.buf[self.kept..]
    }

    /// Keeps the finished event's JSON in the buffer: the next event is
    /// written after it instead of over it.
    pub(crate) fn keep(&mut self) {
        self.finish();
        self.kept = self.buf.len();
    }

    /// Makes `kept`'s contents the kept events (any kept here follow them);
    /// `kept` is left with this writer's spare allocation, empty.
    pub(crate) fn resume_kept(&mut self, kept: &mut Vec<u8>) {
        kept.extend_from_slice(&self.buf[..self.kept]);
        std::mem::swap(&mut self.buf, kept);
        kept.clear();
        self.kept = self.buf.len();
        self.clear();
    }

    /// Moves the kept events' JSON into `into` (its old contents dropped,
    /// its allocation reused here) and starts afresh.
    pub(crate) fn take_kept(&mut self, into: &mut Vec<u8>) {
        self.buf.truncate(self.kept);
        into.clear();
        std::mem::swap(&mut self.buf, into);
        self.kept = 0;
        self.clear();
    }

    pub fn shape(&self) -> EventShape {
        self.shape
    }

    pub fn warnings(&self) -> &[MapWarning] {
        &self.warnings
    }

    fn key(&mut self, key: &str) {
        if self.shape.properties > 0 {
            self.buf.push(b',');
        }
        self.shape.properties += 1;
        write_json_str(&mut self.buf, key);
        self.buf.push(b':');
    }
}

fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    if needs_escape(bytes) {
        write_escaped(buf, bytes);
    } else {
        // The common case: nothing to escape, one copy.
        buf.extend_from_slice(bytes);
    }
    buf.push(b'"');
}

/// The inside of a JSON string with exactly serde_json's escapes (`\"`,
/// `\\`, `\b \f \n \r \t`, other control characters as `\u00xx`; the
/// rest as is): the runs between escapes are found a word at a time and
/// copied whole.
#[cold]
fn write_escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    loop {
        let at = special_at(bytes, start);
        buf.extend_from_slice(&bytes[start..at]);
        let Some(&b) = bytes.get(at) else {
            return;
        };
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => buf.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = at + 1;
    }
}

/// The index of the first byte at or after `from` that JSON escapes (or
/// `bytes.len()`), a word at a time.
#[inline]
fn special_at(bytes: &[u8], mut from: usize) -> usize {
    while let Some(word) = bytes.get(from..from + 8) {
        let hits = special_bytes(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
        if hits != 0 {
            // The lowest flagged byte is exact (see `special_bytes`).
            return from + (hits.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    bytes
        .iter()
        .skip(from)
        .position(|&b| special(b))
        .map_or(bytes.len(), |i| from + i)
}

/// Whether JSON needs an escape in `bytes`: a control character, `"` or `\`
/// (exactly what serde_json escapes). Long strings are checked 16 bytes at a
/// time without early exits inside a block, so it vectorizes; the tail (and a
/// short string) as two overlapping words, so no byte loop runs.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    #[inline(always)]
    fn block(block: &[u8]) -> bool {
        block.iter().fold(false, |any, &b| any | special(b))
    }
    let n = bytes.len();
    if n >= 16 {
        let mut blocks = bytes.chunks_exact(16);
        for b in &mut blocks {
            if block(b) {
                return true;
            }
        }
        return !blocks.remainder().is_empty() && block(&bytes[n - 16..]);
    }
    if n >= 8 {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        return special_word(word(0)) | special_word(word(n - 8));
    }
    if n >= 4 {
        let half = |at: usize| {
            let w = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
            // Padded with a byte that needs no escape.
            u64::from(w) | 0x4141_4141_0000_0000
        };
        return special_word(half(0)) | special_word(half(n - 4));
    }
    bytes.iter().any(|&b| special(b))
}

/// Whether JSON escapes `b`: `"`, `\` or below 0x20.
#[inline(always)]
fn special(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// Whether any byte of `w` is `"`, `\` or below 0x20.
#[inline(always)]
fn special_word(w: u64) -> bool {
    special_bytes(w) != 0
}

/// The high bit of each byte of `w` that is `"`, `\` or below 0x20 (SWAR: a
/// flagged byte is only ever wrong above a true one, so the lowest flag and
/// "any" are exact).
#[inline(always)]
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    (quote.wrapping_sub(ONES) & !quote
        | backslash.wrapping_sub(ONES) & !backslash
        | w.wrapping_sub(ONES * 0x20) & !w)
        & HIGH
}

impl PropertySink for JsonEventWriter {
    fn event_name(&mut self, name: &str) {
        self.buf.extend_from_slice(b"{\"event\":");
        write_json_str(&mut self.buf, name);
        self.buf.extend_from_slice(b",\"properties\":{");
        self.open = true;
    }

    fn str(&mut self, key: &str, value: &str, _pii: bool) {
        self.key(key);
        write_json_str(&mut self.buf, value);
    }

    fn i64(&mut self, key: &str, value: i64, _pii: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn f32(&mut self, key: &str, value: f32, _pii: bool) {
        self.key(key);
        if value.is_finite() {
            self.buf
                .extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        } else {
            self.buf.extend_from_slice(b"null");
        }
    }

    fn bool(&mut self, key: &str, value: bool, _pii: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn strs(&mut self, key: &str, values: &[String], _pii: bool) {
        self.key(key);
        self.shape.max_array_len = self.shape.max_array_len.max(values.len());
        self.shape.max_depth = self.shape.max_depth.max(1);
        self.buf.push(b'[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            write_json_str(&mut self.buf, value);
        }
        self.buf.push(b']');
    }

    fn opt_strs(&mut self, key: &str, values: &[Option<String>], _pii: bool) {
        self.key(key);
        self.shape.max_array_len = self.shape.max_array_len.max(values.len());
        self.shape.max_depth = self.shape.max_depth.max(1);
        let _ = serde_json::to_writer(&mut self.buf, values);
    }

    fn json(&mut self, key: &str, value: &Value, _pii: bool) {
        self.key(key);
        self.shape.observe(value, 0);
        let _ = serde_json::to_writer(&mut self.buf, value);
    }

    fn warning(&mut self, warning: MapWarning) {
        self.warnings.push(warning);
    }
}

/// A Mixpanel event as a value: for tests, snapshots and dead letters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixpanelEvent {
    pub event: String,
    pub properties: Map<String, Value>,
}

/// Collects a [`MixpanelEvent`].
#[derive(Debug, Default)]
pub struct ValueSink {
    pub event: MixpanelEvent,
    pub warnings: Vec<MapWarning>,
}

impl ValueSink {
    fn put(&mut self, key: &str, value: Value) {
        self.event.properties.insert(key.to_owned(), value);
    }
}

impl PropertySink for ValueSink {
    fn event_name(&mut self, name: &str) {
        self.event.event = name.to_owned();
    }
    fn str(&mut self, key: &str, value: &str, _pii: bool) {
        self.put(key, Value::String(value.to_owned()));
    }
    fn i64(&mut self, key: &str, value: i64, _pii: bool) {
        self.put(key, value.into());
    }
    fn f32(&mut self, key: &str, value: f32, _pii: bool) {
        // Through the shortest decimal form, so 3.14f32 stays 3.14.
        let value = ryu::Buffer::new()
            .format(value)
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number);
        self.put(key, value);
    }
    fn bool(&mut self, key: &str, value: bool, _pii: bool) {
        self.put(key, value.into());
    }
    fn strs(&mut self, key: &str, values: &[String], _pii: bool) {
        self.put(
            key,
            values.iter().map(|s| Value::String(s.clone())).collect(),
        );
    }
    fn opt_strs(&mut self, key: &str, values: &[Option<String>], _pii: bool) {
        let values = values
            .iter()
            .map(|s| s.clone().map_or(Value::Null, Value::String))
            .collect();
        self.put(key, values);
    }
    fn json(&mut self, key: &str, value: &Value, _pii: bool) {
        self.put(key, value.clone());
    }
    fn warning(&mut self, warning: MapWarning) {
        self.warnings.push(warning);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_escaping_matches_serde_json() {
        let long = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(3);
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "quote \" inside".into(),
            "back\\slash".into(),
            "tab\tnew\nline\r".into(),
            "\u{0}\u{1f}\u{7f}".into(),
            "ünïcødé – 日本語 🎉".into(),
            long.clone(),
            // Every ASCII character, and runs of escapes back to back.
            (0u8..0x80).map(char::from).collect(),
            "\"\"\\\\\n\n\u{1}\u{1}".into(),
            "a\"bcdefghij\\klmnopqr\u{8}stu\u{c}vwxyz".into(),
        ];
        for control in 0u8..0x20 {
            cases.push(format!("{}", char::from(control)));
            cases.push(format!("before {} after", char::from(control)));
        }
        for len in 0..40 {
            for at in 0..len {
                for special in ["\"", "\\", "\u{1f}", "\u{7f}", "é"] {
                    let mut s = "x".repeat(len);
                    s.replace_range(at..at + 1, special);
                    cases.push(s);
                }
            }
        }
        for i in 0..long.len() {
            for special in ["\"", "\\", "\n", "\u{1}", "é"] {
                let mut s = long.clone();
                s.insert_str(i, special);
                cases.push(s);
            }
        }
        for case in &cases {
            let mut ours = Vec::new();
            write_json_str(&mut ours, case);
            assert_eq!(ours, serde_json::to_vec(case).unwrap(), "{case:?}");
        }
        let mut writer = JsonEventWriter::new();
        writer.event_name("E");
        let values: Vec<String> = cases.clone();
        writer.strs("k", &values, false);
        let json = writer.finish().to_vec();
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed["properties"]["k"], serde_json::json!(values));
        assert_eq!(
            json,
            serde_json::to_vec(&serde_json::json!({"event": "E", "properties": {"k": values}}))
                .unwrap()
        );
    }
}
