//! Deterministic sample events for every event type, generated from the
//! glossary metadata: the bundled demo dataset, test fixtures and benchmark
//! inputs all come from here (nothing is copied from Braze's samples).

use serde_json::{Map, Value, json};

use crate::{EVENT_TYPES, Event, EventTypeInfo, FieldType};

/// `2026-01-15T00:00:00Z`: a fixed base time so outputs are reproducible.
pub const BASE_TIME: i64 = 1_768_435_200;

/// How much of the record to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Every field, nullable ones included.
    All,
    /// Required fields only (nullable fields absent).
    Required,
}

/// The flat field map of sample record number `n` of `info`'s type.
pub fn sample_fields(info: &EventTypeInfo, n: u64, fill: Fill) -> Map<String, Value> {
    let mut fields = Map::new();
    for field in info.fields {
        if fill == Fill::Required && field.nullable {
            continue;
        }
        fields.insert(
            field.name.to_owned(),
            sample_value(info, field.name, field.ty, field.json, n),
        );
    }
    fields
}

/// Sample record number `n` of `info`'s type as a typed event.
pub fn sample_event(info: &EventTypeInfo, n: u64, fill: Fill) -> Event<'static> {
    let fields = sample_fields(info, n, fill);
    // The map was built from the glossary's own field list, so it always fits.
    Event::from_map(
        info.event_type,
        serde::de::value::MapDeserializer::new(fields.into_iter()),
    )
    .unwrap_or_else(|e: serde_json::Error| unreachable!("sample for {}: {e}", info.event_type))
}

/// Writes the demo dataset into `dir`: Avro container files (one per type,
/// as storage connectors do), Custom HTTP batches, and NDJSON; returns the
/// number of files. Deterministic: the same bytes every time.
pub fn write_dataset(dir: &std::path::Path) -> std::io::Result<usize> {
    use std::io::{BufWriter, Write};
    let create = |path: std::path::PathBuf| -> std::io::Result<BufWriter<std::fs::File>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(BufWriter::new(std::fs::File::create(&path)?))
    };
    let mut files = 0;
    for info in EVENT_TYPES.iter().filter(|i| i.avro) {
        let out = create(dir.join("avro").join(format!("{}.avro", info.event_type)))?;
        // Two complete events and one with only the required fields (so
        // without an external user ID: it shows a skip).
        let events = [
            sample_event(info, 1, Fill::All),
            sample_event(info, 2, Fill::Required),
            sample_event(info, 3, Fill::All),
        ];
        crate::write_avro(out, info, &events, crate::Codec::Deflate, 2)?.flush()?;
        files += 1;
    }
    // Custom HTTP posts at most 100 events per request.
    let http_events: Vec<Event> = EVENT_TYPES
        .iter()
        .map(|i| sample_event(i, 4, Fill::All))
        .collect();
    for (n, chunk) in http_events.chunks(50).enumerate() {
        let mut out = create(dir.join("http").join(format!("batch-{:03}.json", n + 1)))?;
        serde_json::to_writer_pretty(&mut out, &crate::to_http_batch(chunk))?;
        out.write_all(b"\n")?;
        out.flush()?;
        files += 1;
    }
    let mut out = create(dir.join("ndjson").join("events.ndjson"))?;
    for info in EVENT_TYPES {
        out.write_all(crate::to_flat_json(&sample_event(info, 5, Fill::All)).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    files += 1;
    Ok(files)
}

/// One sample event of every known type (all fields filled), in glossary order.
pub fn sample_all(n: u64) -> impl Iterator<Item = Event<'static>> {
    EVENT_TYPES
        .iter()
        .map(move |info| sample_event(info, n, Fill::All))
}

fn sample_value(info: &EventTypeInfo, name: &str, ty: FieldType, json: bool, n: u64) -> Value {
    let type_index = EVENT_TYPES
        .iter()
        .position(|i| i.event_type == info.event_type)
        .unwrap_or_default() as u64;
    match (name, ty) {
        ("id", _) => Value::String(uuid_like(type_index, n)),
        ("time", _) => json!(BASE_TIME + (n as i64) * 37 + type_index as i64),
        ("time_ms", _) => json!((BASE_TIME + n as i64) * 1000 + 123),
        ("external_user_id", _) => Value::String(format!("user-{:05}", n % 1000)),
        ("user_id", _) => Value::String(format!("{:024x}", 0x5eed_0000_u64 + n % 1000)),
        ("email_address", _) => Value::String(format!("user{:05}@example.com", n % 1000)),
        ("timezone", _) => Value::String("Europe/Berlin".into()),
        ("platform", _) => Value::String(["ios", "android", "web"][(n % 3) as usize].into()),
        ("os_version", _) => Value::String("iOS 18.1".into()),
        ("device_model", _) => Value::String("iPhone16,2".into()),
        ("name", FieldType::String) if info.event_type.ends_with(".CustomEvent") => Value::String(
            ["Added To Cart", "Viewed Article", "Started Trial"][(n % 3) as usize].into(),
        ),
        (_, FieldType::String) if json => {
            let object = json!({"plan": "pro", "seats": (n % 7) + 1, "tags": ["a", "b"], "trial": n.is_multiple_of(2)});
            Value::String(object.to_string())
        }
        (_, FieldType::String) => Value::String(format!("{name}-{}", n % 97)),
        (_, FieldType::Int) => json!((n % 1000) as i64 + 1),
        (_, FieldType::Long) => json!(1_000_000_000_000_i64 + n as i64),
        (_, FieldType::Float) => json!(((n % 100) as f64) * 0.5 + 0.25),
        (_, FieldType::Boolean) => Value::Bool(n.is_multiple_of(2)),
        (_, FieldType::StringArray) => json!([format!("{name}-a"), format!("{name}-b")]),
        (_, FieldType::NullableStringArray) => json!([format!("{name}-a"), null]),
    }
}

/// A deterministic UUID-shaped id, unique per (type, n).
fn uuid_like(type_index: u64, n: u64) -> String {
    let hi = type_index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1234_5678_9abc_def0;
    let lo = n.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ type_index;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        lo >> 52,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_sample_with_and_without_optional_fields() {
        for info in EVENT_TYPES {
            let full = sample_event(info, 7, Fill::All);
            assert_eq!(full.event_type(), info.event_type);
            assert!(full.unknown_fields().is_empty(), "{}", info.event_type);
            let minimal = sample_event(info, 7, Fill::Required);
            assert_eq!(minimal.id(), full.id());
        }
    }

    #[test]
    fn ids_are_unique_and_stable() {
        let a: Vec<String> = sample_all(1).map(|e| e.id().to_owned()).collect();
        let b: Vec<String> = sample_all(1).map(|e| e.id().to_owned()).collect();
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
        assert!(a.iter().all(|id| id.len() == 36));
    }
}
