//! Proptest strategies for events of every glossary type, built from the
//! `EVENT_TYPES` field metadata. Shared with `crates/mixpanel/tests/` (by
//! `#[path]`), so it only depends on what both crates' tests have.
#![allow(dead_code)]

use currents_events::{EVENT_TYPES, Event, EventTypeInfo, FieldInfo, FieldType};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// How the generated fields must look for the encoding under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Only fields of the type's Avro writer schema (Avro round trips).
    pub avro_only: bool,
    /// JSON-text fields hold canonical JSON object text (Custom HTTP sends
    /// them as parsed JSON values, so only canonical text survives).
    pub canonical_json_text: bool,
}

pub const ANY: Shape = Shape {
    avro_only: false,
    canonical_json_text: false,
};

/// Arbitrary text: any Unicode, plus quotes, backslashes and control
/// characters more often than chance would give them.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "[a-zA-Z0-9 _.:/@-]{0,24}",
        2 => "[\"\\\\\u{0}-\u{1f}\u{7f}\u{80}-\u{9f}é😀\u{2028}\u{fffd}]{0,8}",
        1 => Just(String::new()),
    ]
    .boxed()
}

/// A JSON value nested at most `depth` levels.
pub fn json_value(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Decimal floats of at most 10 significant digits: serde_json
        // (without its `float_roundtrip` feature) may parse long mantissas,
        // huge exponents and subnormals one ulp off, which a JSON-text
        // re-encoding would show; that is serde_json's limitation, not ours.
        (any::<i32>(), 0..7i32)
            .prop_map(|(m, e)| f64::from(m) / 10f64.powi(e))
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Canonical JSON text of an object (what a re-encoding gives back).
pub fn json_object_text() -> BoxedStrategy<String> {
    prop::collection::btree_map(text(), json_value(2), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()).to_string())
        .boxed()
}

fn value(field: &FieldInfo, shape: Shape) -> BoxedStrategy<Value> {
    match field.ty {
        FieldType::String if field.json => {
            if shape.canonical_json_text {
                json_object_text().prop_map(Value::String).boxed()
            } else {
                prop_oneof![json_object_text(), text()]
                    .prop_map(Value::String)
                    .boxed()
            }
        }
        FieldType::String => text().prop_map(Value::String).boxed(),
        FieldType::Int => any::<i32>().prop_map(Value::from).boxed(),
        FieldType::Long => any::<i64>().prop_map(Value::from).boxed(),
        FieldType::Float => any::<f32>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::from(f64::from(f)))
            .boxed(),
        FieldType::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
        FieldType::StringArray => prop::collection::vec(text().prop_map(Value::String), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        FieldType::NullableStringArray => prop::collection::vec(prop::option::of(text()), 0..4)
            .prop_map(|v| {
                Value::Array(
                    v.into_iter()
                        .map(|s| s.map_or(Value::Null, Value::String))
                        .collect(),
                )
            })
            .boxed(),
    }
}

/// The flat field map of one event of `info`'s type: every required field,
/// each nullable field present or absent.
pub fn fields(info: &'static EventTypeInfo, shape: Shape) -> BoxedStrategy<Map<String, Value>> {
    let per_field: Vec<BoxedStrategy<Option<(String, Value)>>> = info
        .fields
        .iter()
        .filter(|f| !shape.avro_only || f.avro || !info.avro)
        .map(|f| {
            let name = f.name.to_owned();
            let v = value(f, shape).prop_map(move |v| Some((name.clone(), v)));
            if f.nullable {
                prop_oneof![1 => Just(None), 2 => v].boxed()
            } else {
                v.boxed()
            }
        })
        .collect();
    per_field
        .prop_map(|entries| entries.into_iter().flatten().collect())
        .boxed()
}

/// The event `fields` describe.
pub fn build(info: &EventTypeInfo, fields: Map<String, Value>) -> Event<'static> {
    Event::from_map(
        info.event_type,
        serde::de::value::MapDeserializer::new(fields.into_iter()),
    )
    .unwrap_or_else(|e: serde_json::Error| panic!("{}: {e}", info.event_type))
}

/// An event of the glossary type number `index`.
pub fn event_of(index: usize, shape: Shape) -> BoxedStrategy<Event<'static>> {
    let info = &EVENT_TYPES[index];
    fields(info, shape)
        .prop_map(move |f| build(info, f))
        .boxed()
}

/// Events of every type: each case draws a batch with one event per type
/// (so 64 cases cover every type 64 times).
pub fn one_of_each(shape: Shape) -> BoxedStrategy<Vec<Event<'static>>> {
    (0..EVENT_TYPES.len())
        .map(|i| event_of(i, shape))
        .collect::<Vec<_>>()
        .boxed()
}

#[test]
fn strategies_cover_every_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let events = one_of_each(ANY).new_tree(&mut runner).unwrap().current();
    assert_eq!(events.len(), EVENT_TYPES.len());
    for (event, info) in events.iter().zip(EVENT_TYPES) {
        assert_eq!(event.event_type(), info.event_type);
    }
}
