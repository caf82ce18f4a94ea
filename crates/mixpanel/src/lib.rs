//! The Mixpanel side of Braze Currents: typed Currents events
//! ([`currents_events`]) mapped to Mixpanel events by mappers generated from
//! the glossary, checked against the `/import` rules, and delivered.
//!
//! ```
//! use currents_mixpanel::{MapOptions, PiiPolicy, Preparer, Rejection, Validator};
//!
//! let mut options = MapOptions::default(); // Braze's connector, event by event
//! options.pii = PiiPolicy::drop(); // e-mail addresses, phone numbers … left out
//! let mut preparer = Preparer::new(options);
//! let validator = Validator::default();
//! let now = validator.now();
//! let mut out = Vec::new();
//! for event in currents_events::sample::sample_all(1) {
//!     let Ok(mapped) = preparer.map(&event) else {
//!         continue; // skipped, e.g. no external_user_id (Braze sends nothing)
//!     };
//!     match validator.validate(&mapped, now) {
//!         Ok(()) => {
//!             out.extend_from_slice(mapped.json);
//!             out.push(b'\n');
//!         }
//!         Err(rejection) => assert!(!rejection.reason().is_empty()),
//!     }
//! }
//! assert!(!out.is_empty());
//! ```
//!
//! * Mapping: [`MapToMixpanel`] (every event type, [`currents_events::Event`]
//!   included), [`MapOptions`] ([`Profile`], [`Identity`], [`PiiPolicy`],
//!   unknown fields), [`Preparer`] (reusable buffers and the head fields
//!   validation needs), sinks ([`PropertySink`], [`JsonEventWriter`],
//!   [`ValueSink`]).
//! * Rules: [`Validator`] and [`Rejection`]; the id rules
//!   ([`is_placeholder_id`], [`insert_id`]).
//! * Delivery: [`Exporter`] over a [`Client`], with [`Batcher`],
//!   [`RetryPolicy`] and a [`DeliveryObserver`] receiving every outcome.
//! * Lexicon: [`lexicon`] builds Mixpanel's data dictionary from the glossary
//!   and pushes it.
//! * Tables for tools: [`EVENT_MAPPINGS`], [`event_mapping`]; text for
//!   people: [`describe`].

mod client;
pub mod describe;
mod export;
mod generated;
mod ids;
pub mod lexicon;
mod map;
mod pii;
mod prepare;
mod sink;
mod validate;

pub use client::{
    ApiBase, BodyFormat, Client, ClientConfig, Credentials, CredentialsError, FailedRecord,
    ImportBody, ImportResponse, InvalidApiBase, MAX_RESPONSE_TEXT, Region, Secret, TransportError,
    parse_import_response, read_variable,
};
pub use export::{
    BatchLimits, Batcher, CancelHandle, Delivery, DeliveryFailure, DeliveryObserver,
    DeliveryReport, ExportConfig, ExportError, Exporter, FatalError, MIXPANEL_BYTES_PER_MINUTE,
    Resolved, RetryPolicy, Stopped,
};
pub use generated::{EVENT_MAPPINGS, EventMapping, FieldMapping, PARTNER_ID, event_mapping};
pub use ids::{
    MAX_INSERT_ID_LEN, ORIGINAL_ID_PROPERTY, PLACEHOLDER_IDS, insert_id, is_placeholder_id,
    is_valid_insert_id,
};
pub use map::{
    CLASHING_FIELD_PREFIX, Identity, MapOptions, MapToMixpanel, Profile, SkipReason,
    UnknownFieldPolicy, convention_name, library_field_is_pii, to_value,
};
pub use pii::{HashKey, MIN_KEY_LEN, PiiAction, PiiError, PiiPolicy};
pub use prepare::{EventHead, IdState, Mapped, OwnedMapped, Preparer};
pub use sink::{
    EventShape, JsonEventWriter, Key, MapWarning, MixpanelEvent, PropertySink, ValueSink,
};
pub use validate::{EventLimits, MILLIS_THRESHOLD, MIN_TIME, Rejection, Validator, now_secs};
