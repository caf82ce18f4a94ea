//! Rendering `.avsc` writer schemas from the glossary, in the shape Braze
//! writes them: the inverse of [`crate::writer::parse_schema`] for the fields
//! that are in Avro. Used to build test fixtures from the current schema.

use currents_schema::EventType;
use serde_json::{Map, Value, json};

use currents_core::avro::NAMESPACE_PREFIX;

/// The writer schema of `event` as pretty-printed JSON (with a final newline).
pub fn render(event: &EventType) -> String {
    pretty(&to_json(event))
}

/// Pretty-printed JSON (2-space indent, final newline) with the keys of each
/// object in the order Braze's `.avsc` files have them (records: `type`,
/// `name`, `namespace`, `doc`, `fields`; fields: `name`, `type`, `doc`,
/// `default`; then the rest by name).
pub fn pretty(value: &Value) -> String {
    let mut out = String::new();
    write_pretty(value, 0, &mut out);
    out.push('\n');
    out
}

const RECORD_KEYS: &[&str] = &["type", "name", "namespace", "doc", "fields"];
const FIELD_KEYS: &[&str] = &["name", "type", "items", "doc", "default"];

fn write_pretty(value: &Value, indent: usize, out: &mut String) {
    let pad = |n: usize| "  ".repeat(n);
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                write_pretty(item, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let order = if map.contains_key("fields") {
                RECORD_KEYS
            } else {
                FIELD_KEYS
            };
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| {
                (
                    order.iter().position(|o| o == k).unwrap_or(order.len()),
                    k.as_str(),
                )
            });
            out.push_str("{\n");
            for (i, key) in keys.iter().enumerate() {
                out.push_str(&pad(indent + 1));
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push_str(": ");
                write_pretty(&map[key.as_str()], indent + 1, out);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
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
            obj.insert("type".into(), f.ty.avro_type(f.nullable));
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
