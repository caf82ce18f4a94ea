//! Mixpanel side of the Currents pipeline: generated per-type mappers
//! ([`MapToMixpanel`]), the property sinks they write into, and the `/import`
//! rules.

pub mod checkpoint;
pub mod client;
pub mod deadletter;
pub mod export;
mod generated;
pub mod map;
pub mod pii;
pub mod prepare;
pub mod sink;
pub mod validate;

pub use generated::{
    EVENT_MAPPINGS, EventMapping, FieldMapping, LIBRARY, LibraryField, PARTNER_ID, SEGMENTS,
    event_mapping,
};
pub use map::{MapOptions, MapToMixpanel, Profile, SkipReason, to_value};
pub use pii::{HashKey, PiiPolicy, PiiSink};
pub use sink::{EventShape, JsonEventWriter, MapWarning, MixpanelEvent, PropertySink, ValueSink};

pub use checkpoint::{Checkpoint, Progress};
pub use client::{BodyFormat, Client, ClientConfig, Credentials, CredentialsError, Region, Secret};
pub use deadletter::DeadLetterWriter;
pub use export::{
    BatchLimits, CancelHandle, DeliveryReport, ExportConfig, ExportError, Exporter, FatalError,
    RetryPolicy,
};
pub use prepare::{EventHead, Mapped, PreparedEvent, Preparer, Source};
pub use validate::{EventLimits, Rejection, Validator};

/// Placeholder ids Mixpanel rejects as `distinct_id` or `$insert_id`
/// (compared case-insensitively).
pub const PLACEHOLDER_IDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "<nil>",
    "undefined",
    "unknown",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

pub fn is_placeholder_id(id: &str) -> bool {
    PLACEHOLDER_IDS.iter().any(|p| p.eq_ignore_ascii_case(id))
}
