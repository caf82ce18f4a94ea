//! The resolved, validated and sorted model that code generation reads. Every
//! group include, library reference and override is already applied here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use crate::format::{Category, FieldType};

/// Where a definition came from: file (relative to the schema directory) and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The whole glossary.
#[derive(Debug, Clone)]
pub struct Glossary {
    /// Fields the Custom HTTP connector nests under `user`.
    pub http_user_fields: Vec<String>,
    /// `$partner_id` stamped on every Mixpanel event.
    pub partner_id: String,
    /// Display names of event-type segments, for the naming convention.
    pub segments: BTreeMap<String, String>,
    /// Field groups, sorted by name.
    pub groups: Vec<Group>,
    /// The field library, sorted by name: also the mapping rules for fields of
    /// event types this glossary does not know.
    pub library: Vec<Field>,
    /// Event types, sorted by `event_type`.
    pub events: Vec<EventType>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub doc: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct EventType {
    pub event_type: String,
    pub rust_name: String,
    pub category: Category,
    pub channel: Option<String>,
    /// False for legacy types that have no Avro writer schema.
    pub avro: bool,
    pub doc: String,
    /// Mixpanel event name template (`{field}` inserts a field value).
    pub mixpanel_name: String,
    pub name_by_convention: bool,
    /// In definition order: included groups, library references, then `[[event.field]]` additions.
    pub fields: Vec<Field>,
    pub location: Location,
}

/// What the Braze-compatible profile does with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    Keep,
    Drop,
    Rename(String),
    /// Expand the JSON object's keys into properties named `prefix + key`.
    Expand(String),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub nullable: bool,
    pub pii: bool,
    pub json: bool,
    pub doc: String,
    pub mixpanel: Mapping,
    /// Property name in the `full` profile for a field the Braze profile drops.
    pub full_name: Option<String>,
    pub http_name: Option<String>,
    /// False when the Avro writer schema lacks the field.
    pub avro: bool,
    pub note: Option<String>,
    pub location: Location,
}

/// A Mixpanel name template split into literal text and field references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePart {
    Text(String),
    Field(String),
}

/// Mixpanel properties with a fixed meaning; only these renames are special.
pub const DISTINCT_ID: &str = "distinct_id";
pub const INSERT_ID: &str = "$insert_id";
pub const TIME: &str = "time";
/// Properties the mapper sets itself; no field may map onto them.
pub const RESERVED_PROPERTIES: &[&str] = &["token", "$partner_id"];

impl Field {
    /// Property name in the Braze-compatible profile, `None` when not emitted as one property.
    pub fn braze_property(&self) -> Option<&str> {
        match &self.mixpanel {
            Mapping::Keep => Some(&self.name),
            Mapping::Rename(to) => Some(to),
            Mapping::Drop | Mapping::Expand(_) => None,
        }
    }

    /// Property name in the `full` profile (nothing dropped), `None` for expanded fields.
    pub fn full_property(&self) -> Option<&str> {
        match &self.mixpanel {
            Mapping::Keep => Some(&self.name),
            Mapping::Rename(to) => Some(to),
            Mapping::Drop => Some(self.full_name.as_deref().unwrap_or(&self.name)),
            Mapping::Expand(_) => None,
        }
    }

    /// Name of the field in Custom HTTP payloads.
    pub fn http_key(&self) -> &str {
        self.http_name.as_deref().unwrap_or(&self.name)
    }
}

impl EventType {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn name_parts(&self) -> Vec<NamePart> {
        parse_name_template(&self.mixpanel_name)
    }

    /// Whether decoding refuses a record without `field`: a field the Avro
    /// writer schema requires and the Braze-profile event uses (a property,
    /// an expansion or part of the event name). A required field the Braze
    /// profile drops is optional on input, so a Custom HTTP payload that
    /// leaves it out (Braze's own samples do) still maps; the reader counts
    /// it as a `missing_field` warning.
    pub fn required_on_input(&self, field: &Field) -> bool {
        !field.nullable
            && (field.braze_property().is_some()
                || matches!(field.mixpanel, Mapping::Expand(_))
                || self
                    .name_parts()
                    .iter()
                    .any(|part| matches!(part, NamePart::Field(name) if *name == field.name)))
    }

    /// The field whose Braze-profile property is `property`.
    pub fn field_mapped_to(&self, property: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.braze_property() == Some(property))
    }
}

impl Glossary {
    pub fn event(&self, event_type: &str) -> Option<&EventType> {
        self.events
            .binary_search_by(|e| e.event_type.as_str().cmp(event_type))
            .ok()
            .map(|i| &self.events[i])
    }

    pub fn library_field(&self, name: &str) -> Option<&Field> {
        self.library
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.library[i])
    }

    /// The Mixpanel name the naming convention gives an event type.
    pub fn convention_name(&self, event_type: &str) -> String {
        convention_name(event_type, |segment| {
            self.segments.get(segment).map(String::as_str)
        })
    }

    /// The Rust type name the naming rules give an event type (what `schema
    /// sync` writes as `rust_name` for a new one).
    pub fn rust_type_name(&self, event_type: &str) -> String {
        currents_core::naming::rust_type_name(event_type, |segment| {
            self.segments.get(segment).map(String::as_str)
        })
    }
}

pub use currents_core::naming::convention_name;

pub fn parse_name_template(template: &str) -> Vec<NamePart> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if let Some(close) = rest[open..].find('}') {
            if open > 0 {
                parts.push(NamePart::Text(rest[..open].to_owned()));
            }
            parts.push(NamePart::Field(rest[open + 1..open + close].to_owned()));
            rest = &rest[open + close + 1..];
        } else {
            break;
        }
    }
    if !rest.is_empty() {
        parts.push(NamePart::Text(rest.to_owned()));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_templates() {
        assert_eq!(
            parse_name_template("[Braze Custom Event] {name}"),
            vec![
                NamePart::Text("[Braze Custom Event] ".into()),
                NamePart::Field("name".into())
            ]
        );
        assert_eq!(
            parse_name_template("Email Open"),
            vec![NamePart::Text("Email Open".into())]
        );
    }
}
