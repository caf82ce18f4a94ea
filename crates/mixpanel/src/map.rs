//! Mapping typed Currents events to Mixpanel events. The per-type mappers are
//! generated from the glossary (`generated/mappers.rs`); this module holds the
//! rules they share and the generic rule for event types the glossary does
//! not know.

use std::borrow::Cow;

use currents_events::{Event, UnknownEvent, UnknownFields};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::generated::{LIBRARY, LibraryField, PARTNER_ID, SEGMENTS};
use crate::sink::{MapWarning, PropertySink};

/// Which mapping to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Reproduces Braze's own Mixpanel connector, event by event.
    #[default]
    Braze,
    /// Keeps every field: nothing dropped, dropped fields under their own
    /// name (or the schema's `full_name`, e.g. `braze_user_id`).
    Full,
}

/// Options of one mapping run.
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    pub profile: Profile,
    /// Mixpanel project token, written as the `token` property when set.
    pub token: Option<String>,
    /// What happens to PII properties; applied by `Event::map_into`.
    pub pii: crate::PiiPolicy,
}

/// Why an event was not mapped. Not an error: the caller counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Braze's connector sends nothing for users without an external ID.
    NoExternalUserId,
}

impl SkipReason {
    pub const fn reason(self) -> &'static str {
        match self {
            SkipReason::NoExternalUserId => "no_external_user_id",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NoExternalUserId => f.write_str("skipped: no external_user_id"),
        }
    }
}

/// A Currents event that maps to a Mixpanel event.
pub trait MapToMixpanel {
    /// Writes the Mixpanel event into `sink`, or says why there is none.
    /// Nothing is written when the event is skipped.
    fn map_into<S: PropertySink>(
        &self,
        options: &MapOptions,
        sink: &mut S,
    ) -> Result<(), SkipReason>;
}

/// `distinct_id` from `external_user_id`: absent or empty means skipped.
pub fn distinct_id(external_user_id: Option<&str>) -> Result<&str, SkipReason> {
    match external_user_id {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err(SkipReason::NoExternalUserId),
    }
}

/// Property that keeps the Braze `id` when `$insert_id` had to be derived.
pub const ORIGINAL_ID_PROPERTY: &str = "braze_event_id";

/// Mixpanel takes at most 36 bytes of `[A-Za-z0-9-]`, and not a placeholder.
pub fn is_valid_insert_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 36
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !crate::is_placeholder_id(id)
}

/// The `$insert_id` for a Braze event id: the id itself when Mixpanel accepts
/// it, else a deterministic hash of it (32 hex characters).
pub fn insert_id(id: &str) -> Cow<'_, str> {
    if is_valid_insert_id(id) {
        return Cow::Borrowed(id);
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in &digest[..16] {
        hex.push_str(&format!("{byte:02x}"));
    }
    Cow::Owned(hex)
}

/// The properties every mapped event starts with.
pub fn standard_properties<S: PropertySink>(
    sink: &mut S,
    options: &MapOptions,
    distinct_id: &str,
    distinct_id_pii: bool,
    id: &str,
    time: i64,
) {
    sink.str("distinct_id", distinct_id, distinct_id_pii);
    let insert = insert_id(id);
    sink.str("$insert_id", &insert, false);
    if let Cow::Owned(_) = insert {
        sink.str(ORIGINAL_ID_PROPERTY, id, false);
        sink.warning(MapWarning::InsertIdHashed);
    }
    sink.i64("time", time, false);
    if let Some(token) = &options.token {
        sink.str("token", token, false);
    }
    sink.str("$partner_id", PARTNER_ID, false);
}

/// Writes each key of a JSON-object text as `prefix + key`. Text that is not a
/// JSON object is kept as it is under `field` and counted as a warning.
pub fn expand_properties<S: PropertySink>(
    sink: &mut S,
    prefix: &str,
    field: &str,
    text: &str,
    pii: bool,
) {
    match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
        Ok(object) => {
            let mut key = String::with_capacity(prefix.len() + 32);
            for (name, value) in &object {
                key.clear();
                key.push_str(prefix);
                key.push_str(name);
                sink.json(&key, value, pii);
            }
        }
        Err(_) => {
            sink.warning(MapWarning::PropertiesNotAnObject);
            sink.str(field, text, pii);
        }
    }
}

/// Prefix of an unknown field whose name is a property the mapper writes itself.
pub const CLASHING_FIELD_PREFIX: &str = "currents_";

/// The property an unknown field travels under: its own name, unless that is
/// one the mapper writes itself (`distinct_id`, `$device` …), which would
/// give the event the same key twice.
pub fn unknown_field_property(name: &str) -> Cow<'_, str> {
    if crate::generated::RESERVED_PROPERTIES
        .binary_search(&name)
        .is_ok()
    {
        Cow::Owned(format!("{CLASHING_FIELD_PREFIX}{name}"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Fields the glossary does not know travel under their own name.
pub fn unknown_fields<S: PropertySink>(sink: &mut S, fields: &UnknownFields) {
    for (name, value) in fields.iter() {
        sink.json(&unknown_field_property(name), value, false);
    }
}

fn library_field(name: &str) -> Option<&'static LibraryField> {
    LIBRARY
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &LIBRARY[i])
}

/// The Mixpanel name of an event type the glossary does not know.
pub fn convention_name(event_type: &str) -> String {
    currents_core::naming::convention_name(event_type, |segment| {
        SEGMENTS
            .binary_search_by(|(s, _)| s.cmp(&segment))
            .ok()
            .map(|i| SEGMENTS[i].1)
    })
}

/// The generic rule for unknown event types: name by convention, every field
/// carried, the field library's renames, drops and PII flags applied.
impl MapToMixpanel for UnknownEvent {
    fn map_into<S: PropertySink>(
        &self,
        options: &MapOptions,
        sink: &mut S,
    ) -> Result<(), SkipReason> {
        let external = self.fields.get("external_user_id").and_then(Value::as_str);
        let distinct_id = distinct_id(external)?;
        let pii = library_field("external_user_id").is_some_and(|f| f.pii);
        sink.event_name(&convention_name(&self.event_type));
        standard_properties(sink, options, distinct_id, pii, self.id(), self.time());
        for (name, value) in self.fields.iter() {
            if matches!(name, "id" | "time" | "external_user_id") || value.is_null() {
                continue;
            }
            let (property, pii) = match library_field(name) {
                Some(field) => {
                    let property = match options.profile {
                        Profile::Braze => field.braze,
                        Profile::Full => field.full,
                    };
                    (property, field.pii)
                }
                None => (Some(name), false),
            };
            match property {
                // Library fields map to their schema-given names; others could clash.
                Some(property) if library_field(name).is_some() => sink.json(property, value, pii),
                Some(property) => sink.json(&unknown_field_property(property), value, pii),
                None => {}
            }
        }
        Ok(())
    }
}

/// Maps an event into a [`crate::MixpanelEvent`] value.
pub fn to_value(event: &Event, options: &MapOptions) -> Result<crate::MixpanelEvent, SkipReason> {
    let mut sink = crate::ValueSink::default();
    event.map_into(options, &mut sink)?;
    Ok(sink.event)
}
