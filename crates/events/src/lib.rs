//! Typed Braze Currents events, generated from the glossary in `schemas/`,
//! and the decoders that read Currents exports into them.
//!
//! Every event type is a struct (e.g. [`EmailOpen`]) implementing
//! [`EventRecord`]; [`Event`] is the enum over all of them plus
//! [`UnknownEvent`] for types the glossary does not know yet. Fields the
//! glossary does not know are kept in [`UnknownFields`].

mod generated;
pub mod record;
pub mod sample;
mod unknown;
mod unknown_event;

pub use generated::*;
pub use record::{EventRecord, EventTypeInfo, FieldInfo, FieldType, RecordBuilder};
pub use unknown::UnknownFields;
pub use unknown_event::UnknownEvent;

/// Glossary metadata of a known event type.
pub fn event_type_info(event_type: &str) -> Option<&'static EventTypeInfo> {
    EVENT_TYPES
        .binary_search_by(|info| info.event_type.cmp(event_type))
        .ok()
        .map(|i| &EVENT_TYPES[i])
}
