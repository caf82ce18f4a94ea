//! Mapping typed Currents events to Mixpanel events. The per-type mappers are
//! generated from the glossary (`generated/mappers.rs`); this module holds the
//! options, the trait, the rules the mappers share and the generic rule for
//! event types the glossary does not know.

use std::borrow::Cow;

use currents_events::{Event, UnknownEvent, UnknownFields};
use serde_json::Value;

use crate::generated::{LIBRARY, LibraryField, PARTNER_ID, SEGMENTS};
use crate::ids::{ORIGINAL_ID_KEY, insert_id};
use crate::pii::{PiiPolicy, PiiSink};
use crate::sink::{Key, MapWarning, PropertySink, ValueSink, key};

/// Which mapping to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// Reproduces Braze's own Mixpanel connector, event by event: exactly the
    /// properties of Braze's documented shape.
    #[default]
    Braze,
    /// Keeps every field: nothing dropped, dropped fields under their own
    /// name (or the schema's `full_name`, e.g. `braze_user_id`), and fields
    /// the schema does not know.
    Full,
}

/// How events identify users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Identity {
    /// Braze's connector: `distinct_id` is `external_user_id`; events without
    /// one are skipped (`no_external_user_id`).
    #[default]
    Braze,
    /// Mixpanel's Simplified ID Merge: `$user_id` and `distinct_id` from
    /// `external_user_id`, `$device_id` from Braze's `device_id`. Events with
    /// a `device_id` but no `external_user_id` are sent as anonymous device
    /// events (`distinct_id` `$device:<device_id>`). The first event that
    /// carries both ids binds the device to that user for good, so a device
    /// shared by two users merges into the first one.
    Simplified,
}

/// What happens to input fields the schema does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnknownFieldPolicy {
    /// Dropped under [`Profile::Braze`] (the output is Braze's documented
    /// shape), kept under [`Profile::Full`].
    #[default]
    ByProfile,
    /// Never sent (they are still counted by the reader).
    Drop,
    /// Sent under their own name (or `currents_<name>` where that would clash
    /// with a property the mapper writes).
    Keep,
}

/// Options of one mapping run.
///
/// ```
/// use currents_mixpanel::{MapOptions, PiiPolicy, Profile};
/// let options = MapOptions::default()
///     .with_profile(Profile::Full)
///     .with_pii(PiiPolicy::drop());
/// assert!(options.keeps_unknown_fields());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MapOptions {
    pub profile: Profile,
    pub identity: Identity,
    pub unknown_fields: UnknownFieldPolicy,
    /// Mixpanel project token, written as the `token` property when set.
    pub token: Option<String>,
    /// What happens to PII properties; applied by every [`MapToMixpanel::map_into`].
    pub pii: PiiPolicy,
}

impl MapOptions {
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    pub fn with_unknown_fields(mut self, policy: UnknownFieldPolicy) -> Self {
        self.unknown_fields = policy;
        self
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn with_pii(mut self, pii: PiiPolicy) -> Self {
        self.pii = pii;
        self
    }

    /// Whether fields the schema does not know are written.
    pub fn keeps_unknown_fields(&self) -> bool {
        match self.unknown_fields {
            UnknownFieldPolicy::ByProfile => self.profile == Profile::Full,
            UnknownFieldPolicy::Drop => false,
            UnknownFieldPolicy::Keep => true,
        }
    }
}

/// Why an event was not mapped. Not an error: the caller counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SkipReason {
    /// Braze's connector sends nothing for users without an external ID.
    NoExternalUserId,
    /// [`Identity::Simplified`]: neither an external ID nor a device ID.
    NoUserOrDeviceId,
}

impl SkipReason {
    /// A stable snake_case key.
    pub const fn reason(self) -> &'static str {
        match self {
            SkipReason::NoExternalUserId => "no_external_user_id",
            SkipReason::NoUserOrDeviceId => "no_user_or_device_id",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NoExternalUserId => f.write_str("skipped: no external_user_id"),
            SkipReason::NoUserOrDeviceId => {
                f.write_str("skipped: neither external_user_id nor device_id")
            }
        }
    }
}

/// A Currents event that maps to a Mixpanel event.
///
/// ```
/// use currents_mixpanel::{MapOptions, MapToMixpanel, ValueSink};
/// let event = currents_events::sample::sample_all(1).next().unwrap();
/// let mut sink = ValueSink::default();
/// if event.map_into(&MapOptions::default(), &mut sink).is_ok() {
///     assert!(sink.event.properties.contains_key("$insert_id"));
/// }
/// ```
pub trait MapToMixpanel {
    /// Writes the Mixpanel event into `sink`, or says why there is none.
    /// Nothing is written when the event is skipped. The PII policy of
    /// `options` is applied here, whatever the entry point.
    fn map_into<S: PropertySink>(
        &self,
        options: &MapOptions,
        sink: &mut S,
    ) -> Result<(), SkipReason> {
        if options.pii.is_keep() {
            self.map_fields(options, sink)
        } else {
            self.map_fields(options, &mut PiiSink::new(sink, &options.pii))
        }
    }

    /// The mapping itself, before the PII policy (what the generated code
    /// implements). Call [`MapToMixpanel::map_into`] instead.
    #[doc(hidden)]
    fn map_fields<S: PropertySink>(
        &self,
        options: &MapOptions,
        sink: &mut S,
    ) -> Result<(), SkipReason>;
}

/// Who an event is about, decided once per event by [`identity`].
pub(crate) struct EventIdentity<'a> {
    distinct_id: Cow<'a, str>,
    /// The distinct id is the user's external id (personal data).
    distinct_pii: bool,
    user_id: Option<&'a str>,
    device_id: Option<&'a str>,
}

/// The identity of an event from its external user id and device id.
pub(crate) fn identity<'a>(
    options: &MapOptions,
    external_user_id: Option<&'a str>,
    external_pii: bool,
    device_id: Option<&'a str>,
) -> Result<EventIdentity<'a>, SkipReason> {
    let external = external_user_id.filter(|id| !id.is_empty());
    let device = device_id.filter(|id| !id.is_empty());
    match (options.identity, external) {
        (Identity::Braze, Some(id)) => Ok(EventIdentity {
            distinct_id: Cow::Borrowed(id),
            distinct_pii: external_pii,
            user_id: None,
            device_id: None,
        }),
        (Identity::Braze, None) => Err(SkipReason::NoExternalUserId),
        (Identity::Simplified, Some(id)) => Ok(EventIdentity {
            distinct_id: Cow::Borrowed(id),
            distinct_pii: external_pii,
            user_id: Some(id),
            device_id: device,
        }),
        (Identity::Simplified, None) => match device {
            Some(device) => Ok(EventIdentity {
                distinct_id: Cow::Owned(format!("$device:{device}")),
                distinct_pii: false,
                user_id: None,
                device_id: Some(device),
            }),
            None => Err(SkipReason::NoUserOrDeviceId),
        },
    }
}

/// The properties every mapped event starts with: identity, dedupe key, time.
pub(crate) fn standard_properties<S: PropertySink>(
    sink: &mut S,
    options: &MapOptions,
    identity: &EventIdentity<'_>,
    id: &str,
    time: i64,
) {
    sink.str(
        key!("distinct_id"),
        &identity.distinct_id,
        identity.distinct_pii,
    );
    let insert = insert_id(id);
    sink.str(key!("$insert_id"), &insert, false);
    if let Cow::Owned(_) = insert {
        sink.str(ORIGINAL_ID_KEY, id, false);
        sink.warning(MapWarning::InsertIdHashed);
    }
    sink.i64(key!("time"), time, false);
    if let Some(user_id) = identity.user_id {
        sink.str(key!("$user_id"), user_id, identity.distinct_pii);
    }
    if let Some(device_id) = identity.device_id {
        sink.str(key!("$device_id"), device_id, false);
    }
    if let Some(token) = &options.token {
        sink.str(key!("token"), token, false);
    }
    sink.str(key!("$partner_id"), PARTNER_ID, false);
}

/// Writes each key of a JSON-object text as `prefix + key`. Text that is not a
/// JSON object is kept as it is under `field` and counted as a warning.
pub(crate) fn expand_properties<S: PropertySink>(
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
                sink.json(Key::new(&key), value, pii);
            }
        }
        Err(_) => {
            sink.warning(MapWarning::PropertiesNotAnObject);
            sink.str(Key::new(field), text, pii);
        }
    }
}

/// Prefix of an unknown field whose name is a property the mapper writes itself.
pub const CLASHING_FIELD_PREFIX: &str = "currents_";

/// The property an unknown field travels under: its own name, unless that is
/// one the mapper writes itself (`distinct_id`, `$device` …), which would
/// give the event the same key twice.
fn unknown_field_property(name: &str) -> Cow<'_, str> {
    if crate::generated::RESERVED_PROPERTIES
        .binary_search(&name)
        .is_ok()
    {
        Cow::Owned(format!("{CLASHING_FIELD_PREFIX}{name}"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Fields the glossary does not know, when the options keep them.
pub(crate) fn unknown_fields<S: PropertySink>(
    sink: &mut S,
    options: &MapOptions,
    fields: &UnknownFields,
) {
    if !options.keeps_unknown_fields() {
        return;
    }
    for (name, value) in fields.iter() {
        sink.json(Key::new(&unknown_field_property(name)), value, false);
    }
}

fn library_field(name: &str) -> Option<&'static LibraryField> {
    LIBRARY
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &LIBRARY[i])
}

/// Whether the field library marks `name` as personal data (the rule for
/// fields of event types the glossary does not know).
pub fn library_field_is_pii(name: &str) -> bool {
    library_field(name).is_some_and(|f| f.pii)
}

/// The Mixpanel name of an event type the glossary does not know.
///
/// ```
/// assert_eq!(currents_mixpanel::convention_name("users.messages.fax.Send"), "Fax Send");
/// ```
pub fn convention_name(event_type: &str) -> String {
    currents_core::naming::convention_name(event_type, |segment| {
        SEGMENTS
            .binary_search_by(|(s, _)| s.cmp(&segment))
            .ok()
            .map(|i| SEGMENTS[i].1)
    })
}

/// The generic rule for unknown event types: name by convention, the field
/// library's renames, drops and PII flags applied to the fields it knows;
/// other fields only when the options keep unknown fields.
impl MapToMixpanel for UnknownEvent {
    fn map_fields<S: PropertySink>(
        &self,
        options: &MapOptions,
        sink: &mut S,
    ) -> Result<(), SkipReason> {
        let external = self.fields.get("external_user_id").and_then(Value::as_str);
        let device = self.fields.get("device_id").and_then(Value::as_str);
        let identity = identity(
            options,
            external,
            library_field_is_pii("external_user_id"),
            device,
        )?;
        sink.event_name(&convention_name(&self.event_type));
        standard_properties(sink, options, &identity, self.id(), self.time());
        let keep_unknown = options.keeps_unknown_fields();
        for (name, value) in self.fields.iter() {
            if matches!(name, "id" | "time" | "external_user_id") || value.is_null() {
                continue;
            }
            match library_field(name) {
                Some(field) => {
                    let property = match options.profile {
                        Profile::Braze => field.braze,
                        Profile::Full => field.full,
                    };
                    if let Some(property) = property {
                        sink.json(Key::new(property), value, field.pii);
                    }
                }
                None if keep_unknown => {
                    sink.json(Key::new(&unknown_field_property(name)), value, false)
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// Maps an event into a [`crate::MixpanelEvent`] value (tests, tools).
pub fn to_value(event: &Event, options: &MapOptions) -> Result<crate::MixpanelEvent, SkipReason> {
    let mut sink = ValueSink::default();
    event.map_into(options, &mut sink)?;
    Ok(sink.event)
}
