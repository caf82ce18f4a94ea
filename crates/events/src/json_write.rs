//! JSON encoders of events: the Custom HTTP shape and flat NDJSON lines.

use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::{Event, HTTP_USER_FIELDS};

fn flat_fields(event: &Event) -> Map<String, Value> {
    match serde_json::to_value(event) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(), // events always serialize to objects
    }
}

/// The Custom HTTP shape of `event`: `event_type`, `id`, `time` at the top,
/// the [`HTTP_USER_FIELDS`] under `user`, everything else under `properties`
/// (under its `http_key`; JSON-text fields renamed for HTTP, such as
/// `custom_properties`, as parsed JSON values). Nulls are omitted.
pub fn to_http_json(event: &Event) -> Value {
    let info = event.info();
    let mut top = Map::new();
    let mut user = Map::new();
    let mut properties = Map::new();
    top.insert(
        "event_type".into(),
        Value::String(event.event_type().to_owned()),
    );
    for (name, value) in flat_fields(event) {
        if value.is_null() {
            continue;
        }
        if name == "id" || name == "time" {
            top.insert(name, value);
            continue;
        }
        if HTTP_USER_FIELDS.contains(&name.as_str()) {
            user.insert(name, value);
            continue;
        }
        let field = info.and_then(|i| i.field(&name));
        match field {
            Some(f) if f.http_key != f.name => {
                let value = match (&value, f.json) {
                    (Value::String(text), true) => serde_json::from_str(text).unwrap_or(value),
                    _ => value,
                };
                properties.insert(f.http_key.to_owned(), value);
            }
            _ => {
                properties.insert(name, value);
            }
        }
    }
    top.insert("user".into(), Value::Object(user));
    top.insert("properties".into(), Value::Object(properties));
    Value::Object(top)
}

/// A Custom HTTP batch body: `{"events": [...]}`.
pub fn to_http_batch<'e>(events: impl IntoIterator<Item = &'e Event<'e>>) -> Value {
    let events: Vec<Value> = events.into_iter().map(to_http_json).collect();
    serde_json::json!({ "events": events })
}

/// The flat JSON text of `event`, `event_type` first (the NDJSON fast path):
/// `{"event_type":"…","id":…,…}`, without a newline.
pub fn to_flat_json(event: &Event) -> String {
    let fields = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(fields.len() + 64);
    out.push_str("{\"event_type\":");
    out.push_str(&Value::String(event.event_type().to_owned()).to_string());
    match fields.strip_prefix('{') {
        Some("}") | None => out.push('}'),
        Some(rest) => {
            out.push(',');
            out.push_str(rest);
        }
    }
    out
}

/// Writes `events` as NDJSON (flat shape, one per line).
pub fn write_ndjson<'e, W: Write>(
    mut out: W,
    events: impl IntoIterator<Item = &'e Event<'e>>,
) -> io::Result<W> {
    for event in events {
        out.write_all(to_flat_json(event).as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(out)
}
