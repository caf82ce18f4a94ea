//! [`PreparedEvent`]: one mapped Mixpanel event as owned JSON bytes, with the
//! few head fields pre-validation and delivery need, and where it came from
//! (for dead letters and the checkpoint).
//!
//! ```
//! use currents_mixpanel::{MapOptions, Preparer, Source};
//! let mut preparer = Preparer::new(MapOptions::default());
//! let event = currents_events::sample::sample_all(1).next().unwrap();
//! let prepared = preparer
//!     .prepare(&event, Source::new("input.ndjson", 0), true)
//!     .unwrap();
//! assert!(prepared.json().starts_with(b"{\"event\":"));
//! ```

use std::sync::Arc;

use currents_events::Event;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::map::{MapOptions, MapToMixpanel, SkipReason};
use crate::sink::{EventShape, JsonEventWriter, MapWarning, PropertySink};

/// Where an input record came from. `record` is the 0-based index of the
/// record inside `file` (what the checkpoint counts); `line` and `offset` are
/// for humans reading the dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub file: Arc<str>,
    pub record: u64,
    pub line: Option<u64>,
    pub offset: Option<u64>,
}

impl Source {
    pub fn new(file: impl Into<Arc<str>>, record: u64) -> Self {
        Source {
            file: file.into(),
            record,
            line: None,
            offset: None,
        }
    }

    pub fn with_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("file".into(), Value::String(self.file.to_string()));
        map.insert("record".into(), self.record.into());
        if let Some(line) = self.line {
            map.insert("line".into(), line.into());
        }
        if let Some(offset) = self.offset {
            map.insert("offset".into(), offset.into());
        }
        Value::Object(map)
    }
}

/// The head fields of a mapped event, captured while it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventHead {
    pub event: String,
    pub distinct_id: Option<String>,
    pub insert_id: Option<String>,
    pub time: Option<i64>,
}

impl EventHead {
    /// Forgets the values, keeping the string buffers in `spare` for reuse.
    fn clear(&mut self, spare: &mut [String; 2]) {
        self.event.clear();
        for (slot, spare) in [&mut self.distinct_id, &mut self.insert_id]
            .into_iter()
            .zip(spare)
        {
            if let Some(mut text) = slot.take() {
                text.clear();
                *spare = text;
            }
        }
        self.time = None;
    }
}

/// A mapped event ready for validation and batching.
#[derive(Clone)]
pub struct PreparedEvent {
    json: Box<[u8]>,
    shape: EventShape,
    head: EventHead,
    source: Source,
    input: Option<Box<RawValue>>,
}

impl std::fmt::Debug for PreparedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Event bodies may hold personal data: only the head is shown.
        f.debug_struct("PreparedEvent")
            .field("event", &self.head.event)
            .field("insert_id", &self.head.insert_id)
            .field("bytes", &self.json.len())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl PreparedEvent {
    /// Builds an event from parts. `json` must be one compact JSON object
    /// `{"event":…,"properties":{…}}` (as written by [`JsonEventWriter`]);
    /// `input` is the original record, kept for the dead letter.
    pub fn from_parts(
        json: impl Into<Box<[u8]>>,
        shape: EventShape,
        head: EventHead,
        source: Source,
        input: Option<Box<RawValue>>,
    ) -> Self {
        PreparedEvent {
            json: json.into(),
            shape,
            head,
            source,
            input,
        }
    }

    /// Builds an event from a [`crate::MixpanelEvent`] value (tests, tools).
    pub fn from_value(
        event: &crate::MixpanelEvent,
        source: Source,
        input: Option<Box<RawValue>>,
    ) -> Self {
        let mut writer = JsonEventWriter::new();
        let mut head = EventHead::default();
        let mut spare = Default::default();
        let mut tee = HeadSink {
            inner: &mut writer,
            head: &mut head,
            spare: &mut spare,
            complete: false,
        };
        tee.event_name(&event.event);
        for (key, value) in &event.properties {
            match value {
                Value::String(s) => tee.str(key, s, false),
                Value::Number(n) if n.is_i64() => tee.i64(key, n.as_i64().unwrap_or(0), false),
                other => tee.json(key, other, false),
            }
        }
        let json: Box<[u8]> = writer.finish().into();
        PreparedEvent::from_parts(json, writer.shape(), head, source, input)
    }

    pub fn json(&self) -> &[u8] {
        &self.json
    }
    pub fn shape(&self) -> EventShape {
        self.shape
    }
    pub fn head(&self) -> &EventHead {
        &self.head
    }
    pub fn source(&self) -> &Source {
        &self.source
    }
    /// Where it came from, to correct (a parallel reader knows a record's
    /// absolute line and index only once the chunks before it are read).
    pub fn source_mut(&mut self) -> &mut Source {
        &mut self.source
    }
    pub fn input(&self) -> Option<&RawValue> {
        self.input.as_deref()
    }
    /// Takes the JSON out while the exporter holds the event only as part of
    /// a compressed request body (see `export::send`).
    pub(crate) fn take_json(&mut self) -> Box<[u8]> {
        std::mem::take(&mut self.json)
    }
    pub(crate) fn set_json(&mut self, json: Box<[u8]>) {
        self.json = json;
    }
    pub fn insert_id(&self) -> Option<&str> {
        self.head.insert_id.as_deref()
    }
}

/// Maps typed events into [`PreparedEvent`]s, reusing one write buffer.
#[derive(Debug)]
pub struct Preparer {
    options: MapOptions,
    writer: JsonEventWriter,
    head: EventHead,
    /// Buffers of the head's optional strings, kept between events.
    spare: [String; 2],
}

/// One event mapped by [`Preparer::map`], borrowed from the preparer's
/// buffers until the next event: for callers that copy the JSON somewhere
/// themselves (an output stream, a chunk buffer) and need no owned event.
#[derive(Debug, Clone, Copy)]
pub struct Mapped<'a> {
    pub json: &'a [u8],
    pub shape: EventShape,
    pub head: &'a EventHead,
    pub warnings: &'a [MapWarning],
}

impl Mapped<'_> {
    /// [`crate::Validator::validate_at`] for this event.
    pub fn validate(&self, validator: &crate::Validator, now: i64) -> Result<(), crate::Rejection> {
        validator.validate_parts(self.head, self.shape, self.json.len(), now)
    }

    /// An owned copy, for callers that keep events (the exporter).
    pub fn to_prepared(&self, source: Source, input: Option<Box<RawValue>>) -> PreparedEvent {
        PreparedEvent::from_parts(self.json, self.shape, self.head.clone(), source, input)
    }
}

impl Preparer {
    pub fn new(options: MapOptions) -> Self {
        Preparer {
            options,
            writer: JsonEventWriter::new(),
            head: EventHead::default(),
            spare: Default::default(),
        }
    }

    /// Maps `event`. With `keep_input`, the event's flat JSON is kept as the
    /// dead letter's `input`.
    pub fn prepare(
        &mut self,
        event: &Event,
        source: Source,
        keep_input: bool,
    ) -> Result<PreparedEvent, SkipReason> {
        self.prepare_keeping(event, source, |_| keep_input)
    }

    /// Maps `event`, keeping its flat JSON as the dead letter's `input` when
    /// `keep_input` says so of the mapped event (say, only when it fails
    /// pre-validation: writing the input costs as much as mapping).
    pub fn prepare_keeping(
        &mut self,
        event: &Event,
        source: Source,
        keep_input: impl FnOnce(&Mapped<'_>) -> bool,
    ) -> Result<PreparedEvent, SkipReason> {
        let mapped = self.map(event)?;
        let input = if keep_input(&mapped) {
            flat_input(event)
        } else {
            None
        };
        Ok(mapped.to_prepared(source, input))
    }

    /// Maps `event`, keeping `input` (the original record) for the dead letter.
    pub fn prepare_with_input(
        &mut self,
        event: &Event,
        source: Source,
        input: Option<Box<RawValue>>,
    ) -> Result<PreparedEvent, SkipReason> {
        Ok(self.map(event)?.to_prepared(source, input))
    }

    /// Maps `event` into the preparer's buffers; nothing is allocated once
    /// the buffers have grown to the size of the largest event.
    pub fn map(&mut self, event: &Event) -> Result<Mapped<'_>, SkipReason> {
        self.writer.clear();
        self.head.clear(&mut self.spare);
        let mut tee = HeadSink {
            inner: &mut self.writer,
            head: &mut self.head,
            spare: &mut self.spare,
            complete: false,
        };
        event.map_into(&self.options, &mut tee)?;
        self.writer.finish();
        Ok(Mapped {
            json: self.writer.finished(),
            shape: self.writer.shape(),
            head: &self.head,
            warnings: self.writer.warnings(),
        })
    }

    /// Warnings of the last prepared event.
    pub fn warnings(&self) -> &[MapWarning] {
        self.writer.warnings()
    }
}

/// The event's flat JSON, exactly [`currents_events::to_flat_json`], written
/// straight into a [`RawValue`] (no second parse to validate it).
fn flat_input(event: &Event) -> Option<Box<RawValue>> {
    #[derive(serde::Serialize)]
    struct Flat<'a> {
        event_type: &'a str,
        #[serde(flatten)]
        event: &'a Event<'a>,
    }
    serde_json::value::to_raw_value(&Flat {
        event_type: event.event_type(),
        event,
    })
    .ok()
}

/// Passes everything to the JSON writer, capturing the head fields.
struct HeadSink<'a> {
    inner: &'a mut JsonEventWriter,
    head: &'a mut EventHead,
    spare: &'a mut [String; 2],
    /// `time` was seen: mappers write the head first (`distinct_id`,
    /// `$insert_id`, `time`), so later keys need no comparing.
    complete: bool,
}

/// Sets `slot` to `value`, in the `spare` buffer when it has one.
fn set(slot: &mut Option<String>, spare: &mut String, value: &str) {
    let mut text = slot.take().unwrap_or_else(|| std::mem::take(spare));
    text.clear();
    text.push_str(value);
    *slot = Some(text);
}

impl PropertySink for HeadSink<'_> {
    fn event_name(&mut self, name: &str) {
        self.head.event.clear();
        self.head.event.push_str(name);
        self.inner.event_name(name);
    }
    fn str(&mut self, key: &str, value: &str, pii: bool) {
        if !self.complete {
            match key {
                "distinct_id" => set(&mut self.head.distinct_id, &mut self.spare[0], value),
                "$insert_id" => set(&mut self.head.insert_id, &mut self.spare[1], value),
                _ => {}
            }
        }
        self.inner.str(key, value, pii);
    }
    fn i64(&mut self, key: &str, value: i64, pii: bool) {
        if !self.complete && key == "time" {
            self.head.time = Some(value);
            self.complete = true;
        }
        self.inner.i64(key, value, pii);
    }
    fn f32(&mut self, key: &str, value: f32, pii: bool) {
        self.inner.f32(key, value, pii);
    }
    fn bool(&mut self, key: &str, value: bool, pii: bool) {
        self.inner.bool(key, value, pii);
    }
    fn strs(&mut self, key: &str, values: &[String], pii: bool) {
        self.inner.strs(key, values, pii);
    }
    fn opt_strs(&mut self, key: &str, values: &[Option<String>], pii: bool) {
        self.inner.opt_strs(key, values, pii);
    }
    fn json(&mut self, key: &str, value: &Value, pii: bool) {
        if !self.complete {
            match (key, value) {
                ("distinct_id", Value::String(s)) => {
                    set(&mut self.head.distinct_id, &mut self.spare[0], s)
                }
                ("$insert_id", Value::String(s)) => {
                    set(&mut self.head.insert_id, &mut self.spare[1], s)
                }
                ("time", Value::Number(n)) => {
                    self.head.time = n.as_i64();
                    self.complete = true;
                }
                _ => {}
            }
        }
        self.inner.json(key, value, pii);
    }
    fn warning(&mut self, warning: MapWarning) {
        self.inner.warning(warning);
    }
}

#[cfg(test)]
mod tests {
    use currents_events::sample::{Fill, sample_event};
    use currents_events::{EVENT_TYPES, Event};

    #[test]
    fn kept_input_is_the_flat_json() {
        let unknown = currents_events::decode::decode_all(
            "t",
            br#"{"event_type":"users.brand.New","id":"x","time":1,"nested":{"a":[1,2.5,null]},"s":"\u00e9\n"}"#,
            Default::default(),
        )
        .0
        .remove(0)
        .event;
        let mut events: Vec<Event> = vec![unknown];
        for info in EVENT_TYPES {
            for n in [0, 7] {
                events.push(sample_event(info, n, Fill::All));
                events.push(sample_event(info, n, Fill::Required));
            }
        }
        for event in &events {
            let raw = super::flat_input(event).expect("serializes");
            assert_eq!(raw.get(), currents_events::to_flat_json(event));
        }
    }
}
