//! [`Preparer`]: maps typed events into reusable buffers, with the few head
//! fields pre-validation needs, and writes the input record kept for a dead
//! letter under the same PII policy.
//!
//! ```
//! use currents_mixpanel::{MapOptions, Preparer, Validator};
//! let mut preparer = Preparer::new(MapOptions::default());
//! let event = currents_events::sample::sample_all(1).next().unwrap();
//! if let Ok(mapped) = preparer.map(&event) {
//!     assert!(mapped.json.starts_with(b"{\"event\":"));
//!     let _ = Validator::default().validate(&mapped, 1_768_435_200);
//! }
//! ```

use currents_events::Event;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::ids::is_placeholder_id;
use crate::map::{MapOptions, MapToMixpanel, SkipReason, library_field_is_pii};
use crate::pii::PiiSink;
use crate::sink::{EventShape, JsonEventWriter, Key, MapWarning, MixpanelEvent, PropertySink};

/// What an id property was, before any PII policy changed it (its value is
/// not kept: the head never holds personal data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdState {
    #[default]
    Missing,
    /// A value Mixpanel refuses ([`crate::is_placeholder_id`]).
    Placeholder,
    Present,
}

/// The head fields of a mapped event, captured while it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventHead {
    /// The event has a non-empty name.
    pub named: bool,
    pub distinct_id: IdState,
    pub insert_id: Option<String>,
    pub time: Option<i64>,
}

impl EventHead {
    fn clear(&mut self) {
        self.named = false;
        self.distinct_id = IdState::Missing;
        // Keeps the buffer for the next event.
        if let Some(id) = &mut self.insert_id {
            id.clear();
        }
        self.time = None;
    }

    fn set_distinct_id(&mut self, value: &str) {
        self.distinct_id = if is_placeholder_id(value) {
            IdState::Placeholder
        } else {
            IdState::Present
        };
    }

    fn set_insert_id(&mut self, value: &str) {
        let id = self.insert_id.get_or_insert_with(String::new);
        id.clear();
        id.push_str(value);
    }
}

/// One event mapped by [`Preparer::map`], borrowed from the preparer's
/// buffers until the next event.
#[derive(Debug, Clone, Copy)]
pub struct Mapped<'a> {
    /// `{"event":…,"properties":{…}}`, compact.
    pub json: &'a [u8],
    pub shape: EventShape,
    pub head: &'a EventHead,
    pub warnings: &'a [MapWarning],
}

impl Mapped<'_> {
    /// A copy that owns its JSON.
    pub fn to_owned(&self) -> OwnedMapped {
        OwnedMapped {
            json: self.json.to_vec(),
            shape: self.shape,
            head: self.head.clone(),
            warnings: self.warnings.to_vec(),
        }
    }

    /// The `$insert_id`, when the event has one.
    pub fn insert_id(&self) -> Option<&str> {
        self.head.insert_id.as_deref().filter(|id| !id.is_empty())
    }
}

/// A mapped event that owns its JSON: built from a [`MixpanelEvent`] value
/// (a dead letter being replayed, tests).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedMapped {
    pub json: Vec<u8>,
    pub shape: EventShape,
    pub head: EventHead,
    pub warnings: Vec<MapWarning>,
}

impl OwnedMapped {
    /// Writes `event` as [`Preparer::map`] would have.
    pub fn from_value(event: &MixpanelEvent) -> Self {
        let mut writer = JsonEventWriter::new();
        let mut head = EventHead::default();
        let mut sink = HeadSink::new(&mut writer, &mut head);
        sink.event_name(&event.event);
        for (name, value) in &event.properties {
            let key = Key::new(name);
            match value {
                Value::String(s) => sink.str(key, s, false),
                Value::Number(n) if n.is_i64() => sink.i64(key, n.as_i64().unwrap_or(0), false),
                other => sink.json(key, other, false),
            }
        }
        let json = writer.finish().to_vec();
        OwnedMapped {
            json,
            shape: writer.shape(),
            head,
            warnings: writer.warnings().to_vec(),
        }
    }

    pub fn as_mapped(&self) -> Mapped<'_> {
        Mapped {
            json: &self.json,
            shape: self.shape,
            head: &self.head,
            warnings: &self.warnings,
        }
    }
}

/// Maps typed events, reusing one write buffer.
#[derive(Debug)]
pub struct Preparer {
    options: MapOptions,
    writer: JsonEventWriter,
    head: EventHead,
}

impl Preparer {
    pub fn new(options: MapOptions) -> Self {
        Preparer {
            options,
            writer: JsonEventWriter::new(),
            head: EventHead::default(),
        }
    }

    pub fn options(&self) -> &MapOptions {
        &self.options
    }

    /// Maps `event` into the preparer's buffers, applying the options' PII
    /// policy; nothing is allocated once the buffers have grown to the size
    /// of the largest event. The head sees each id before the policy hashes
    /// it, so a placeholder such as `null` is refused rather than hashed into
    /// one identity shared by every such user.
    pub fn map(&mut self, event: &Event) -> Result<Mapped<'_>, SkipReason> {
        self.writer.clear();
        self.head.clear();
        let options = &self.options;
        if options.pii.is_keep() {
            let mut sink = HeadSink::new(&mut self.writer, &mut self.head);
            event.map_fields(options, &mut sink)?;
        } else {
            let mut policy = PiiSink::new(&mut self.writer, &options.pii);
            let mut sink = HeadSink::new(&mut policy, &mut self.head);
            event.map_fields(options, &mut sink)?;
        }
        self.writer.finish();
        Ok(Mapped {
            json: self.writer.finished(),
            shape: self.writer.shape(),
            head: &self.head,
            warnings: self.writer.warnings(),
        })
    }

    /// The last event [`Preparer::map`] mapped, again (its buffers are kept
    /// until the next event).
    pub fn last(&self) -> Mapped<'_> {
        Mapped {
            json: self.writer.finished(),
            shape: self.writer.shape(),
            head: &self.head,
            warnings: self.writer.warnings(),
        }
    }

    /// Keeps the last mapped event's JSON: the next [`Preparer::map`] writes
    /// after it, and [`Preparer::take_kept`] hands every kept event over at
    /// once, so a batch of events is written once instead of mapped and then
    /// copied.
    ///
    /// ```
    /// use currents_mixpanel::{MapOptions, Preparer};
    /// let mut preparer = Preparer::new(MapOptions::default());
    /// let mut events = Vec::new();
    /// for event in currents_events::sample::sample_all(1).take(3) {
    ///     if let Ok(mapped) = preparer.map(&event) {
    ///         events.push(mapped.json.to_vec());
    ///         preparer.keep_last();
    ///     }
    /// }
    /// let mut json = Vec::new();
    /// preparer.take_kept(&mut json);
    /// assert_eq!(json, events.concat());
    /// ```
    pub fn keep_last(&mut self) {
        self.writer.keep();
    }

    /// Takes `kept`'s contents (and allocation) as the events kept so far,
    /// so mapping goes on at the end of a caller's buffer; `kept` is left
    /// empty until [`Preparer::take_kept`] gives everything back.
    pub fn resume_kept(&mut self, kept: &mut Vec<u8>) {
        self.writer.resume_kept(kept);
    }

    /// Moves the kept events' JSON, back to back in the order kept, into
    /// `into` (replacing its contents; its allocation is reused for the
    /// next events).
    pub fn take_kept(&mut self, into: &mut Vec<u8>) {
        self.writer.take_kept(into);
    }

    /// The event's input record in flat form (`event_type` first), for a dead
    /// letter: PII fields treated by the options' policy as the mapped event
    /// treats them.
    pub fn input_record(&self, event: &Event) -> Option<Box<RawValue>> {
        let flat = flat_input(event)?;
        if self.options.pii.is_keep() {
            return Some(flat);
        }
        let mut record: Map<String, Value> = serde_json::from_str(flat.get()).ok()?;
        let info = event.info();
        self.options
            .pii
            .scrub_record(&mut record, |name| match info {
                Some(info) => info.field(name).is_some_and(|f| f.pii),
                None => library_field_is_pii(name),
            });
        serde_json::value::to_raw_value(&record).ok()
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

/// Passes everything on, capturing the head fields.
struct HeadSink<'a, S> {
    inner: &'a mut S,
    head: &'a mut EventHead,
    /// `time` was seen: mappers write the head first (`distinct_id`,
    /// `$insert_id`, `time`), so later keys need no comparing.
    complete: bool,
}

impl<'a, S> HeadSink<'a, S> {
    fn new(inner: &'a mut S, head: &'a mut EventHead) -> Self {
        HeadSink {
            inner,
            head,
            complete: false,
        }
    }
}

impl<S: PropertySink> PropertySink for HeadSink<'_, S> {
    fn event_name(&mut self, name: &str) {
        self.head.named = !name.is_empty();
        self.inner.event_name(name);
    }
    // Inlined into the mappers, which then call the writer directly: this
    // runs for every text property.
    #[inline]
    fn str(&mut self, key: Key<'_>, value: &str, pii: bool) {
        if !self.complete {
            match key.name() {
                "distinct_id" => self.head.set_distinct_id(value),
                "$insert_id" => self.head.set_insert_id(value),
                _ => {}
            }
        }
        self.inner.str(key, value, pii);
    }
    fn i64(&mut self, key: Key<'_>, value: i64, pii: bool) {
        if !self.complete && key.name() == "time" {
            self.head.time = Some(value);
            self.complete = true;
        }
        self.inner.i64(key, value, pii);
    }
    fn f32(&mut self, key: Key<'_>, value: f32, pii: bool) {
        self.inner.f32(key, value, pii);
    }
    fn bool(&mut self, key: Key<'_>, value: bool, pii: bool) {
        self.inner.bool(key, value, pii);
    }
    fn strs(&mut self, key: Key<'_>, values: &[String], pii: bool) {
        self.inner.strs(key, values, pii);
    }
    fn opt_strs(&mut self, key: Key<'_>, values: &[Option<String>], pii: bool) {
        self.inner.opt_strs(key, values, pii);
    }
    fn json(&mut self, key: Key<'_>, value: &Value, pii: bool) {
        if !self.complete {
            match (key.name(), value) {
                ("distinct_id", Value::String(s)) => self.head.set_distinct_id(s),
                ("distinct_id", _) => self.head.distinct_id = IdState::Placeholder,
                ("$insert_id", Value::String(s)) => self.head.set_insert_id(s),
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
    fn kept_events_come_back_in_order_after_the_callers_bytes() {
        let mut preparer = super::Preparer::new(crate::MapOptions::default());
        let events: Vec<Event> = currents_events::sample::sample_all(1)
            .filter(|e| preparer.map(e).is_ok())
            .take(4)
            .collect();
        assert_eq!(events.len(), 4);
        let one = |preparer: &mut super::Preparer, event: &Event| {
            preparer.map(event).map(|m| m.json.to_vec()).unwrap()
        };
        // Mapped but not kept: overwritten by the next event.
        let a = one(&mut preparer, &events[0]);
        preparer.keep_last();
        let _dropped = one(&mut preparer, &events[1]);
        let c = one(&mut preparer, &events[2]);
        preparer.keep_last();
        let mut out = b"earlier".to_vec();
        preparer.take_kept(&mut out);
        assert_eq!(out, [a.clone(), c.clone()].concat());
        // Resumed at the end of a caller's buffer; `last` sees only the new event.
        preparer.resume_kept(&mut out);
        assert!(out.is_empty());
        let d = one(&mut preparer, &events[3]);
        assert_eq!(preparer.last().json, &d[..]);
        preparer.keep_last();
        preparer.take_kept(&mut out);
        assert_eq!(out, [a, c, d].concat());
        // Nothing kept since: nothing handed over.
        preparer.take_kept(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn kept_input_is_the_flat_json() {
        let unknown = *currents_events::decode::decode_all(
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
