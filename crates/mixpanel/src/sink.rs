//! Where mapped properties go. The generated mappers call a [`PropertySink`]
//! once per property, so a Mixpanel event is written straight to its JSON
//! bytes ([`JsonEventWriter`]) or collected as a value ([`ValueSink`]) with no
//! intermediate map for known fields.

use currents_core::json::{escape_at, is_escaped, needs_escape};
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

/// A property name. The names the mappers know are made with their JSON
/// (`,"name":`) already encoded at compile time, so [`JsonEventWriter`]
/// writes such a key with one copy instead of escaping it for every event.
///
/// ```
/// use currents_mixpanel::{JsonEventWriter, Key, PropertySink};
///
/// let mut writer = JsonEventWriter::new();
/// writer.event_name("Signup");
/// writer.str(Key::new("plan \"pro\""), "yearly", false);
/// assert_eq!(writer.finish(), br#"{"event":"Signup","properties":{"plan \"pro\"":"yearly"}}"#);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    name: &'a str,
    /// `,"name":` exactly as JSON writes it, or empty when not made ahead.
    encoded: &'static str,
}

impl<'a> Key<'a> {
    /// A key known only at run time (a custom property, an unknown field).
    pub const fn new(name: &'a str) -> Self {
        Key { name, encoded: "" }
    }

    pub const fn name(&self) -> &'a str {
        self.name
    }
}

impl Key<'static> {
    /// A key with its encoding made ahead; `encoded` must be `,"name":` and
    /// `name` need no JSON escape. Checked here, so a wrong pair in a
    /// `const` fails to compile ([`key!`] builds the pair).
    pub(crate) const fn encoded(name: &'static str, encoded: &'static str) -> Self {
        let (n, e) = (name.as_bytes(), encoded.as_bytes());
        assert!(e.len() == n.len() + 4, "encoded key has the wrong length");
        assert!(e[0] == b',' && e[1] == b'"' && e[e.len() - 2] == b'"' && e[e.len() - 1] == b':');
        let mut i = 0;
        while i < n.len() {
            assert!(
                !is_escaped(n[i]),
                "a key needing an escape cannot be encoded ahead"
            );
            assert!(e[i + 2] == n[i], "encoded key does not match its name");
            i += 1;
        }
        Key { name, encoded }
    }
}

/// A [`Key`] for a literal name, encoded (and checked) at compile time.
macro_rules! key {
    ($name:literal) => {
        const { $crate::sink::Key::encoded($name, concat!(",\"", $name, "\":")) }
    };
}
pub(crate) use key;

/// Receives a Mixpanel event: the name first, then each property once.
/// `pii` says whether the value is personal data (the glossary's `[PII]`).
pub trait PropertySink {
    fn event_name(&mut self, name: &str);
    fn str(&mut self, key: Key<'_>, value: &str, pii: bool);
    fn i64(&mut self, key: Key<'_>, value: i64, pii: bool);
    fn f32(&mut self, key: Key<'_>, value: f32, pii: bool);
    fn bool(&mut self, key: Key<'_>, value: bool, pii: bool);
    fn strs(&mut self, key: Key<'_>, values: &[String], pii: bool);
    fn opt_strs(&mut self, key: Key<'_>, values: &[Option<String>], pii: bool);
    fn json(&mut self, key: Key<'_>, value: &Value, pii: bool);
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

    /// Writes `,"key":` (no comma before the first property).
    #[inline]
    fn key(&mut self, key: Key<'_>) {
        let first = self.shape.properties == 0;
        self.shape.properties += 1;
        if !key.encoded.is_empty() {
            // The comma is the encoding's first byte: skipped before the first.
            self.buf
                .extend_from_slice(&key.encoded.as_bytes()[usize::from(first)..]);
            return;
        }
        if !first {
            self.buf.push(b',');
        }
        write_json_str(&mut self.buf, key.name);
        self.buf.push(b':');
    }
}

fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    write_quoted(buf, s.as_bytes());
}

/// `bytes` as a JSON string; the caller has reserved room for the common
/// case, nothing to escape: one copy.
#[inline(always)]
fn write_quoted(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.push(b'"');
    if needs_escape(bytes) {
        write_escaped(buf, bytes);
    } else {
        buf.extend_from_slice(bytes);
    }
    buf.push(b'"');
}

/// The inside of a JSON string with exactly serde_json's escapes (`\"`,
/// `\\`, `\b \f \n \r \t`, other control characters as `\u00xx`; the
/// rest as is): the runs between escapes are found sixteen bytes at a time
/// and copied whole.
#[cold]
fn write_escaped(buf: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    let mut at = escape_at(bytes, 0);
    loop {
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
        at = escape_at(bytes, start);
    }
}

/// Copies `src` to `dst`: keys and values are mostly under 32 bytes, where
/// two overlapping loads and stores cost a third of a call to `memcpy`.
///
/// # Safety
/// `dst` is valid for `src.len()` bytes of writes and does not overlap `src`.
#[inline(always)]
unsafe fn copy_short(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let from = src.as_ptr();
    // SAFETY (each arm): every read lies in `src`, every write in the first
    // `n` bytes of `dst`; reads and writes are unaligned.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                *dst = *from;
                *dst.add(n / 2) = *from.add(n / 2);
                *dst.add(n - 1) = *from.add(n - 1);
            }
            4..=7 => {
                let head = from.cast::<u32>().read_unaligned();
                let tail = from.add(n - 4).cast::<u32>().read_unaligned();
                dst.cast::<u32>().write_unaligned(head);
                dst.add(n - 4).cast::<u32>().write_unaligned(tail);
            }
            8..=16 => {
                let head = from.cast::<u64>().read_unaligned();
                let tail = from.add(n - 8).cast::<u64>().read_unaligned();
                dst.cast::<u64>().write_unaligned(head);
                dst.add(n - 8).cast::<u64>().write_unaligned(tail);
            }
            17..=32 => {
                let head = from.cast::<u128>().read_unaligned();
                let tail = from.add(n - 16).cast::<u128>().read_unaligned();
                dst.cast::<u128>().write_unaligned(head);
                dst.add(n - 16).cast::<u128>().write_unaligned(tail);
            }
            _ => std::ptr::copy_nonoverlapping(from, dst, n),
        }
    }
}

impl PropertySink for JsonEventWriter {
    fn event_name(&mut self, name: &str) {
        self.buf.extend_from_slice(b"{\"event\":");
        write_json_str(&mut self.buf, name);
        self.buf.extend_from_slice(b",\"properties\":{");
        self.open = true;
    }

    fn str(&mut self, key: Key<'_>, value: &str, _pii: bool) {
        let value = value.as_bytes();
        if key.encoded.is_empty() || needs_escape(value) {
            self.buf.reserve(key.name.len() + value.len() + 4);
            self.key(key);
            write_quoted(&mut self.buf, value);
            return;
        }
        // Most properties are strings with a key encoded ahead and nothing
        // to escape: `,"key":"value"` written in one piece into the room
        // reserved for it, without a capacity check for each part.
        let first = self.shape.properties == 0;
        self.shape.properties += 1;
        let key = &key.encoded.as_bytes()[usize::from(first)..];
        let len = key.len() + value.len() + 2;
        self.buf.reserve(len);
        // SAFETY: `len` bytes after the buffer's length are reserved just
        // above; the four writes fill exactly them, in order, and the
        // sources (a key and a value lent to us) cannot overlap the buffer.
        unsafe {
            let room = self.buf.as_mut_ptr().add(self.buf.len());
            copy_short(key, room);
            room.add(key.len()).write(b'"');
            copy_short(value, room.add(key.len() + 1));
            room.add(len - 1).write(b'"');
            self.buf.set_len(self.buf.len() + len);
        }
    }

    fn i64(&mut self, key: Key<'_>, value: i64, _pii: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn f32(&mut self, key: Key<'_>, value: f32, _pii: bool) {
        self.key(key);
        if value.is_finite() {
            self.buf
                .extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        } else {
            self.buf.extend_from_slice(b"null");
        }
    }

    fn bool(&mut self, key: Key<'_>, value: bool, _pii: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn strs(&mut self, key: Key<'_>, values: &[String], _pii: bool) {
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

    fn opt_strs(&mut self, key: Key<'_>, values: &[Option<String>], _pii: bool) {
        self.key(key);
        self.shape.max_array_len = self.shape.max_array_len.max(values.len());
        self.shape.max_depth = self.shape.max_depth.max(1);
        let _ = serde_json::to_writer(&mut self.buf, values);
    }

    fn json(&mut self, key: Key<'_>, value: &Value, _pii: bool) {
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
    fn put(&mut self, key: Key<'_>, value: Value) {
        self.event.properties.insert(key.name.to_owned(), value);
    }
}

impl PropertySink for ValueSink {
    fn event_name(&mut self, name: &str) {
        self.event.event = name.to_owned();
    }
    fn str(&mut self, key: Key<'_>, value: &str, _pii: bool) {
        self.put(key, Value::String(value.to_owned()));
    }
    fn i64(&mut self, key: Key<'_>, value: i64, _pii: bool) {
        self.put(key, value.into());
    }
    fn f32(&mut self, key: Key<'_>, value: f32, _pii: bool) {
        // Through the shortest decimal form, so 3.14f32 stays 3.14.
        let value = ryu::Buffer::new()
            .format(value)
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number);
        self.put(key, value);
    }
    fn bool(&mut self, key: Key<'_>, value: bool, _pii: bool) {
        self.put(key, value.into());
    }
    fn strs(&mut self, key: Key<'_>, values: &[String], _pii: bool) {
        self.put(
            key,
            values.iter().map(|s| Value::String(s.clone())).collect(),
        );
    }
    fn opt_strs(&mut self, key: Key<'_>, values: &[Option<String>], _pii: bool) {
        let values = values
            .iter()
            .map(|s| s.clone().map_or(Value::Null, Value::String))
            .collect();
        self.put(key, values);
    }
    fn json(&mut self, key: Key<'_>, value: &Value, _pii: bool) {
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
    fn short_copies_write_exactly_the_source_bytes() {
        let source: Vec<u8> = (1..=80).collect();
        for n in 0..=source.len() {
            // Guard bytes on both sides of the room must stay untouched.
            let mut out = vec![0xAAu8; n + 32];
            // SAFETY: `out[16..]` has room for `n` bytes; separate buffers.
            unsafe { copy_short(&source[..n], out.as_mut_ptr().add(16)) };
            assert_eq!(&out[16..16 + n], &source[..n], "{n}");
            assert!(
                out[..16].iter().chain(&out[16 + n..]).all(|&b| b == 0xAA),
                "{n}"
            );
        }
    }

    #[test]
    fn keys_encoded_ahead_write_what_run_time_keys_write() {
        let ahead = [
            key!("a"),
            key!("$insert_id"),
            key!("[Custom event property] ü x"),
        ];
        let mut encoded = JsonEventWriter::new();
        let mut plain = JsonEventWriter::new();
        encoded.event_name("E");
        plain.event_name("E");
        for (i, key) in ahead.into_iter().enumerate() {
            assert_eq!(
                key.encoded,
                format!(",{}:", serde_json::to_string(key.name()).unwrap())
            );
            encoded.str(key, "v", false);
            plain.str(Key::new(key.name()), "v", false);
            encoded.i64(key, i as i64, false);
            plain.i64(Key::new(key.name()), i as i64, false);
        }
        let json = encoded.finish().to_vec();
        assert_eq!(json, plain.finish());
        assert!(json.starts_with(br#"{"event":"E","properties":{"a":"v","a":0,"$insert_id""#));
    }

    /// A string property with a key encoded ahead is written in one piece
    /// (when it needs no escape): the same bytes as through a run-time key,
    /// first property or not, whatever the value's length.
    #[test]
    fn string_properties_read_back_whatever_the_key_kind() {
        let mut values: Vec<String> = (0..80).map(|n| "v".repeat(n)).collect();
        values.extend(["q\"uote".into(), "ü".into(), "\n".into(), String::new()]);
        let mut encoded = JsonEventWriter::new();
        let mut plain = JsonEventWriter::new();
        encoded.event_name("E");
        plain.event_name("E");
        for value in &values {
            encoded.str(key!("campaign_name"), value, false);
            plain.str(Key::new("campaign_name"), value, false);
            encoded.str(Key::new("k"), value, false);
            plain.str(Key::new("k"), value, false);
        }
        let json = encoded.finish().to_vec();
        assert_eq!(json, plain.finish());
        let text = std::str::from_utf8(&json).unwrap();
        let mut expected = String::from(r#"{"event":"E","properties":{"#);
        for (i, value) in values.iter().enumerate() {
            let value = serde_json::to_string(value).unwrap();
            if i > 0 {
                expected.push(',');
            }
            expected.push_str(&format!(r#""campaign_name":{value},"k":{value}"#));
        }
        assert!(text.starts_with(&expected), "{text}");
    }

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
        writer.strs(key!("k"), &values, false);
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
