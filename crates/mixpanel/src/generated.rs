//! Hand-written: the Mixpanel mappers generated from `schemas/` by `cargo xtask codegen`.
//! Everything in `generated/` is overwritten by that command; edit the schema instead.

#[rustfmt::skip]
mod mappers;

pub use mappers::*;

/// How the field library maps a field of an event type the glossary does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibraryField {
    pub name: &'static str,
    /// Property in the Braze profile; `None` when dropped.
    pub braze: Option<&'static str>,
    /// Property in the full profile.
    pub full: Option<&'static str>,
    pub pii: bool,
}

/// How one event type maps to Mixpanel, for display and tooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMapping {
    pub event_type: &'static str,
    /// Mixpanel event name (`{field}` inserts a field's value).
    pub mixpanel_name: &'static str,
    /// True when the glossary documents no name and the convention gave it.
    pub name_by_convention: bool,
    pub fields: &'static [FieldMapping],
}

/// How one field maps to Mixpanel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldMapping {
    pub name: &'static str,
    /// Property in the Braze profile; `None` when dropped or expanded.
    pub braze: Option<&'static str>,
    /// Property in the full profile; `None` when expanded.
    pub full: Option<&'static str>,
    /// Prefix of the expanded keys when the field's JSON object is expanded.
    pub expand: Option<&'static str>,
    /// Why the mapping is what it is, when the schema says.
    pub note: Option<&'static str>,
}

/// The mapping of a known event type.
pub fn event_mapping(event_type: &str) -> Option<&'static EventMapping> {
    EVENT_MAPPINGS
        .binary_search_by(|m| m.event_type.cmp(event_type))
        .ok()
        .map(|i| &EVENT_MAPPINGS[i])
}
