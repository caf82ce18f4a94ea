//! Rendering `.avsc` writer schemas from the glossary, in the shape Braze
//! writes them: the inverse of [`crate::writer::parse_schema`] for the fields
//! that are in Avro. Used to build test fixtures from the current schema.

use currents_schema::{EventType, FieldType};
use serde_json::{Map, Value, json};

use crate::writer::NAMESPACE_PREFIX;

/// The writer schema of `event` as pretty-printed JSON (with a final newline).
pub fn render(event: &EventType) -> String {
    let mut out = serde_json::to_string_pretty(&to_json(event)).unwrap_or_default();
    out.push('\n');
    out
}

/// The writer schema of `event`: fields with `avro = false` are left out.
pub fn to_json(event: &EventType) -> Value {
    let (namespace, name) = event
        .event_type
        .rsplit_once('.')
        .unwrap_or(("", &event.event_type));
    let fields: Vec<Value> = event
        .fields
        .iter()
        .filter(|f| f.avro)
        .map(|f| {
            let mut obj = Map::new();
            obj.insert("name".into(), json!(f.name));
            obj.insert("type".into(), avro_type(f.ty, f.nullable));
            let doc = if f.pii {
                format!("[PII] {}", f.doc)
            } else {
                f.doc.clone()
            };
            obj.insert("doc".into(), json!(doc));
            if f.nullable {
                obj.insert("default".into(), Value::Null);
            }
            Value::Object(obj)
        })
        .collect();
    json!({
        "type": "record",
        "name": name,
        "namespace": format!("{NAMESPACE_PREFIX}{namespace}"),
        "doc": event.doc,
        "fields": fields,
    })
}

/// The Avro type of a field of type `ty`.
pub fn avro_type(ty: FieldType, nullable: bool) -> Value {
    let base = match ty {
        FieldType::String => json!("string"),
        FieldType::Int => json!("int"),
        FieldType::Long => json!("long"),
        FieldType::Float => json!("float"),
        FieldType::Boolean => json!("boolean"),
        FieldType::StringArray => json!({"type": "array", "items": "string"}),
        FieldType::NullableStringArray => json!({"type": "array", "items": ["null", "string"]}),
    };
    if nullable {
        json!(["null", base])
    } else {
        base
    }
}
