//! Typed Braze Currents events, generated from the glossary in `schemas/`,
//! and the decoders that read Currents exports into them.
//!
//! Every event type is a struct (e.g. [`EmailOpen`]) implementing
//! [`EventRecord`]; [`Event`] is the enum over all of them plus
//! [`UnknownEvent`] for types the glossary does not know yet. Fields the
//! glossary does not know are kept in [`UnknownFields`].
//!
//! Text fields are `Cow<'a, str>`: an event decoded through
//! [`Reader::try_for_each_borrowed`] points into the reader's buffer (no
//! allocation per field), and `into_owned()` gives an `Event<'static>`,
//! which is what the [`Reader`] iterator yields.

/// The Avro object container header (reader, writer, zigzag `long`s): the
/// one implementation the decoder, the writer and the tools share, defined
/// in the dependency-light `currents-core` so tools need not build the
/// generated event types to read a header.
pub use currents_core::avro;
pub mod avro_write;
pub mod decode;
mod generated;
pub mod json_write;
pub mod record;
pub mod sample;
mod unknown;
mod unknown_event;

pub use avro_write::{AvroWriter, Codec, avro_schema, write_avro};
// `decode::Location` stays in its module: `Location` at the crate root is the
// generated `users.behaviors.Location` event type.
pub use decode::{
    DecodeOptions, DecodeStats, Decoded, ErrorKind, Format, Reader, RecordError, UnknownTypes,
    open_path,
};
pub use generated::*;
pub use json_write::{to_flat_json, to_http_batch, to_http_json, write_ndjson};
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
