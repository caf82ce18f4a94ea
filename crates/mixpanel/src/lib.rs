//! Mixpanel side of the Currents pipeline: generated per-type mappers
//! ([`MapToMixpanel`]), the property sinks they write into, and the `/import`
//! rules.

mod generated;
pub mod map;
pub mod sink;

pub use generated::{LIBRARY, LibraryField, PARTNER_ID, SEGMENTS};
pub use map::{MapOptions, MapToMixpanel, Profile, SkipReason, to_value};
pub use sink::{EventShape, JsonEventWriter, MapWarning, MixpanelEvent, PropertySink, ValueSink};

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
