//! The on-disk format of `schemas/`: what a person edits. Every type derives
//! `JsonSchema` so `schemas/format.schema.json` can be generated for editors.

use std::borrow::Cow;
use std::ops::Range;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A value together with the byte range it came from, so validation errors can
/// name a line.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(deserializer)?;
        Ok(Located {
            span: spanned.span(),
            value: spanned.into_inner(),
        })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// `schemas/currents.toml`: rules that hold for every event type.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalFile {
    pub http: HttpRules,
    pub mixpanel: GlobalMixpanel,
    pub naming: Naming,
}

/// How the Custom HTTP connector nests an event.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRules {
    /// Fields placed under `user`; all others except `id` and `time` go under `properties`.
    pub user_fields: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalMixpanel {
    /// Value of the `$partner_id` property on every mapped event.
    pub partner_id: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Naming {
    /// Display name of each event-type segment; empty leaves the segment out.
    pub segments: IndexMap<String, String>,
}

/// `schemas/fields.toml`: the field library and the named groups of it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldsFile {
    #[serde(default)]
    pub group: IndexMap<String, Located<GroupDef>>,
    #[serde(default)]
    pub field: IndexMap<String, Located<FieldDef>>,
}

/// A named, ordered set of library fields that events include as a whole.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    pub doc: String,
    pub fields: Vec<String>,
}

/// Field types live in `currents-core`, shared with the runtime; its
/// `serde` and `schemars` features give the spelling used here.
pub use currents_core::FieldType;

/// What Braze's Mixpanel connector does with a field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MixpanelRule {
    /// `"keep"` (same property name) or `"drop"`.
    Simple(SimpleRule),
    /// `{ rename = "$device" }`: kept under another property name.
    Rename { rename: String },
    /// `{ expand = "[Custom event property] " }`: the field holds a JSON object
    /// whose keys become properties, each with this prefix.
    Expand { expand: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SimpleRule {
    Keep,
    Drop,
}

/// A field of the library (`[field.NAME]` in `fields.toml`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Avro `["null", T]`: the value may be absent.
    #[serde(default)]
    pub nullable: bool,
    /// Personal data (the glossary's `[PII]` mark).
    #[serde(default)]
    pub pii: bool,
    /// The string holds JSON-encoded text.
    #[serde(default)]
    pub json: bool,
    pub doc: String,
    /// Braze-profile Mixpanel mapping; `keep` when absent.
    pub mixpanel: Option<MixpanelRule>,
    /// Property name in the `full` profile when the Braze profile drops the field.
    pub full_name: Option<String>,
    /// Name of the field in Custom HTTP payloads when it differs.
    pub http_name: Option<String>,
    /// False when the field is not in the Avro writer schema (HTTP / glossary only).
    pub avro: Option<bool>,
    /// Why a decision was taken; carried into docs.
    pub note: Option<String>,
}

/// One file under `schemas/events/`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsFile {
    #[serde(default)]
    pub event: Vec<Located<EventDef>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Things users do in apps (sessions, purchases, custom events …).
    Behavior,
    /// Campaign conversions and control-group enrollment.
    Campaign,
    /// Canvas entries, exits, steps and conversions.
    Canvas,
    /// Message engagement on one channel (send, delivery, open, click …).
    Message,
    /// Changes to the user record itself.
    User,
    /// Braze Agent Console executions.
    Agent,
}

impl Category {
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Behavior => "behavior",
            Category::Campaign => "campaign",
            Category::Canvas => "canvas",
            Category::Message => "message",
            Category::User => "user",
            Category::Agent => "agent",
        }
    }
}

/// The Mixpanel side of an event type.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventMixpanel {
    /// Mixpanel event name; `{field}` inserts a (required string) field's value.
    pub name: String,
    /// True when the glossary documents no name and this one follows the naming convention.
    #[serde(default)]
    pub by_convention: bool,
}

/// One event type (`[[event]]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventDef {
    /// Currents event type, e.g. `users.messages.email.Open`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Rust type name (UpperCamelCase).
    pub rust_name: String,
    pub category: Category,
    /// Messaging channel of `message` events (`email`, `sms` …).
    pub channel: Option<String>,
    /// False for legacy types with no Avro writer schema (seen only over HTTP).
    #[serde(default = "yes")]
    pub avro: bool,
    pub doc: String,
    pub mixpanel: EventMixpanel,
    /// Field groups from `fields.toml` included whole.
    #[serde(default)]
    pub include: Vec<Located<String>>,
    /// Members of the included groups this event does not have.
    #[serde(default)]
    pub exclude: Vec<Located<String>>,
    /// Library fields used as they are defined.
    #[serde(default)]
    pub fields: Vec<Located<String>>,
    /// Fields defined here, or library fields with some attributes overridden.
    #[serde(default)]
    pub field: Vec<Located<FieldEntry>>,
}

fn yes() -> bool {
    true
}

/// `[[event.field]]`: overrides a library field (only `name` plus what
/// differs), or defines a field of this event alone (`type` and `doc` required).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Option<FieldType>,
    pub nullable: Option<bool>,
    pub pii: Option<bool>,
    pub json: Option<bool>,
    pub doc: Option<String>,
    pub mixpanel: Option<MixpanelRule>,
    pub full_name: Option<String>,
    pub http_name: Option<String>,
    pub avro: Option<bool>,
    pub note: Option<String>,
}

/// JSON Schemas of the three file kinds, keyed by the file name they are
/// committed under in `schemas/format/` (editors map TOML files to them with a
/// `#:schema` comment).
pub fn format_json_schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn to_value(schema: schemars::Schema) -> serde_json::Value {
        schema.to_value()
    }
    vec![
        (
            "currents.schema.json",
            to_value(schemars::schema_for!(GlobalFile)),
        ),
        (
            "events.schema.json",
            to_value(schemars::schema_for!(EventsFile)),
        ),
        (
            "fields.schema.json",
            to_value(schemars::schema_for!(FieldsFile)),
        ),
    ]
}
