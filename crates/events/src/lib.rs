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
//! which is what the [`Reader`] iterator yields. Decoding lives in
//! [`decode`]; [`sample`] generates deterministic events of every type.
//!
//! ```
//! use currents_events::decode::{DecodeOptions, Reader};
//!
//! let line = br#"{"event_type":"users.messages.email.Open","id":"0b5a1c2e-aaaa-4bbb-8ccc-123456789abc","time":1768435200,"user_id":"5eed0000","external_user_id":"user-1","email_address":"a@example.com"}"#;
//! let mut reader = Reader::new("inline", &line[..], DecodeOptions::default());
//! let event = reader.next().unwrap().unwrap().event;
//! assert_eq!(event.event_type(), "users.messages.email.Open");
//! assert!(reader.next().is_none());
//! ```
//!
//! [`Reader`]: decode::Reader
//! [`Reader::try_for_each_borrowed`]: decode::Reader::try_for_each_borrowed

/// The Avro object container header (reader, writer, zigzag `long`s): the
/// one implementation the decoder, the writer and the tools share, defined
/// in the dependency-light `currents-core` so tools need not build the
/// generated event types to read a header.
pub use currents_core::avro;
mod avro_write;
pub mod decode;
mod generated;
mod json_write;
mod record;
pub mod sample;
mod unknown;
mod unknown_event;

pub use avro_write::{AvroWriter, Codec, avro_schema, write_avro};
pub use generated::*;
pub use json_write::{to_flat_json, to_http_batch, to_http_json, write_ndjson};
pub use record::{
    EventRecord, EventTypeInfo, FieldInfo, FieldKey, FieldMap, FieldMut, FieldType, RecordBuilder,
    SerdeMap,
};
pub use unknown::UnknownFields;
pub use unknown_event::UnknownEvent;

/// Glossary metadata of a known event type.
pub fn event_type_info(event_type: &str) -> Option<&'static EventTypeInfo> {
    EVENT_TYPES
        .binary_search_by(|info| info.event_type.cmp(event_type))
        .ok()
        .map(|i| &EVENT_TYPES[i])
}
