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
    shape: EventShape,
    warnings: Vec<MapWarning>,
    open: bool,
}

impl JsonEventWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a new event, forgetting the previous one.
    pub fn clear(&mut self) {
        self.buf.clear();
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
        &self.buf
    }

    /// The JSON written so far ([`JsonEventWriter::finish`] closes it).
    pub fn finished(&self) -> &[u8] {
        &self.buf
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
    if needs_escape(s.as_bytes()) {
        // serde_json's escaper is exact; writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
        return;
    }
    // The common case: nothing to escape, one copy.
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// Whether JSON needs an escape in `bytes`: a control character, `"` or `\`
/// (exactly what serde_json escapes). Long strings are checked 16 bytes at a
/// time without early exits inside a block, so it vectorizes; the tail (and a
/// short string) as two overlapping words, so no byte loop runs.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    #[inline(always)]
    fn special(b: u8) -> bool {
        (b < 0x20) | (b == b'"') | (b == b'\\')
    }
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

/// Whether any byte of `w` is `"`, `\` or below 0x20 (SWAR: a flagged byte
/// is only ever wrong above a true one, so "any" is exact).
#[inline(always)]
fn special_word(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    (quote.wrapping_sub(ONES) & !quote
        | backslash.wrapping_sub(ONES) & !backslash
        | w.wrapping_sub(ONES * 0x20) & !w)
        & HIGH
        != 0
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
        ];
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
