use serde::Serialize;
use serde::de::MapAccess;

use crate::UnknownFields;
use crate::record::FieldKey;

/// An event whose type the glossary does not know (Braze adds types without
/// notice). Every field is kept as JSON; Custom HTTP `user`/`properties`
/// objects are flattened like known types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnknownEvent {
    #[serde(skip)]
    pub event_type: String,
    #[serde(flatten)]
    pub fields: UnknownFields,
}

impl UnknownEvent {
    pub fn id(&self) -> &str {
        self.fields.get("id").and_then(|v| v.as_str()).unwrap_or("")
    }

    pub fn time(&self) -> i64 {
        self.fields
            .get("time")
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
    }

    pub fn from_map<'de, A: MapAccess<'de>>(
        event_type: &str,
        mut map: A,
    ) -> Result<Self, A::Error> {
        let mut fields = UnknownFields::new();
        while let Some(key) = map.next_key::<FieldKey<'de>>()? {
            let key = key.as_str();
            let value: serde_json::Value = map.next_value()?;
            if key != "event_type" {
                push_flattened(&mut fields, key, value);
            }
        }
        if fields.get("id").and_then(|v| v.as_str()).is_none() {
            return Err(serde::de::Error::missing_field("id"));
        }
        if fields.get("time").and_then(|v| v.as_i64()).is_none() {
            return Err(serde::de::Error::missing_field("time"));
        }
        Ok(UnknownEvent {
            event_type: event_type.to_owned(),
            fields,
        })
    }
}

/// Keeps a field; a Custom HTTP `user`/`properties` object gives its entries
/// instead, at any depth (as for known types), so the flat JSON of the event
/// reads back as the same event.
fn push_flattened(fields: &mut UnknownFields, key: &str, value: serde_json::Value) {
    match (key, value) {
        ("user" | "properties", serde_json::Value::Object(nested)) => {
            for (k, v) in nested {
                push_flattened(fields, &k, v);
            }
        }
        (_, value) => fields.push(key, value),
    }
}
