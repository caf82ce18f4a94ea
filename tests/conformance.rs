//! Optional conformance check of `schemas/` against the reference material in
//! `../shared/reference` (Braze's Avro writer schemas and the glossary's
//! Mixpanel tabs). Skipped, saying so, when that folder is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use currents_events::sample::{Fill, sample_event};
use currents_mixpanel::{MapOptions, Profile, to_value};
use serde_json::Value;

fn reference() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference");
    if path.is_dir() {
        Some(path)
    } else {
        // Straight to stderr: the test harness captures eprint! output of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: reference folder not found at {}",
            path.display()
        );
        None
    }
}

fn glossary() -> currents_schema::Glossary {
    currents_schema::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// (type, nullable) of an Avro field type, in the schema's own vocabulary.
fn avro_type(ty: &Value) -> (String, bool) {
    match ty {
        Value::String(name) => (name.clone(), false),
        Value::Array(branches) if branches.len() == 2 && branches[0] == "null" => {
            (avro_type(&branches[1]).0, true)
        }
        Value::Object(object) if object.get("type") == Some(&Value::from("array")) => {
            let items = object.get("items").map(avro_type).unwrap_or_default();
            let name = if items.1 {
                "array<string?>"
            } else {
                "array<string>"
            };
            (name.to_owned(), false)
        }
        other => (format!("unsupported {other}"), false),
    }
}

#[test]
fn schema_matches_the_avro_writer_schemas() {
    let Some(reference) = reference() else { return };
    let glossary = glossary();
    let mut mismatches = Vec::new();
    let mut seen = 0;
    let mut paths: Vec<_> = std::fs::read_dir(reference.join("currents-examples/avsc"))
        .expect("avsc folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for path in paths {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("json");
        let namespace = schema["namespace"].as_str().unwrap_or_default();
        let event_type = format!(
            "{}.{}",
            namespace.trim_start_matches("dataexport.S3.inner."),
            schema["name"].as_str().unwrap_or_default()
        );
        let Some(event) = glossary.event(&event_type) else {
            mismatches.push(format!("{event_type}: not in schemas/"));
            continue;
        };
        seen += 1;
        let mut avro_fields = BTreeMap::new();
        for field in schema["fields"].as_array().into_iter().flatten() {
            let name = field["name"].as_str().unwrap_or_default().to_owned();
            let (ty, nullable) = avro_type(&field["type"]);
            let pii = field["doc"]
                .as_str()
                .unwrap_or_default()
                .starts_with("[PII]");
            avro_fields.insert(name, (ty, nullable, pii));
        }
        let ours: BTreeMap<_, _> = event
            .fields
            .iter()
            .filter(|f| f.avro)
            .map(|f| {
                (
                    f.name.clone(),
                    (f.ty.as_str().to_owned(), f.nullable, f.pii),
                )
            })
            .collect();
        for (name, theirs) in &avro_fields {
            match ours.get(name) {
                None => mismatches.push(format!(
                    "{event_type}.{name}: in the writer schema, not in schemas/ (or not avro)"
                )),
                Some(mine) if mine != theirs => mismatches.push(format!(
                    "{event_type}.{name}: writer schema says {theirs:?}, schemas/ says {mine:?}"
                )),
                Some(_) => {}
            }
        }
        for name in ours.keys().filter(|n| !avro_fields.contains_key(*n)) {
            mismatches.push(format!(
                "{event_type}.{name}: in schemas/ as an Avro field, not in the writer schema"
            ));
        }
    }
    assert_eq!(seen, 94, "every writer schema has a type in schemas/");
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    let avro_types = glossary.events.iter().filter(|e| e.avro).count();
    assert_eq!(
        avro_types, 94,
        "types marked avro = true are exactly those with writer schemas"
    );
}

#[test]
fn mapper_output_matches_the_glossary_mixpanel_tabs() {
    let Some(reference) = reference() else { return };
    let text = std::fs::read_to_string(reference.join("braze-glossary/glossary.json"))
        .expect("glossary.json");
    let entries: Vec<Value> = serde_json::from_str(&text).expect("json");
    let options = MapOptions::default()
        .with_profile(Profile::Braze)
        .with_token("token");
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for entry in &entries {
        let event_type = entry["event_type"].as_str().unwrap_or_default();
        let Some(tab) = entry["tabs"].get("Mixpanel") else {
            continue;
        };
        let Some(info) = currents_events::event_type_info(event_type) else {
            mismatches.push(format!(
                "{event_type}: has a Mixpanel tab but no type in schemas/"
            ));
            continue;
        };
        compared += 1;
        let expected: BTreeSet<String> = tab["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["path"].as_str())
            .filter_map(|p| p.strip_prefix("properties."))
            .map(str::to_owned)
            .collect();
        let event = sample_event(info, 3, Fill::All);
        let mapped = to_value(&event, &options).expect("sample events have an external id");
        let actual: BTreeSet<String> = mapped
            .properties
            .keys()
            .filter(|k| {
                !k.starts_with("[Custom event property] ") && !k.starts_with("[Purchase property] ")
            })
            .cloned()
            .collect();
        for missing in expected.difference(&actual) {
            mismatches.push(format!(
                "{event_type}: glossary property `{missing}` is not produced"
            ));
        }
        for extra in actual.difference(&expected) {
            mismatches.push(format!(
                "{event_type}: produces `{extra}`, which the glossary tab does not list"
            ));
        }
        let name = entry["mixpanel_event_name"].as_str().unwrap_or_default();
        let matches_name = if name == "[Braze Custom Event]" {
            mapped.event.starts_with("[Braze Custom Event] ")
        } else {
            mapped.event == name
        };
        if !matches_name {
            mismatches.push(format!(
                "{event_type}: event name {:?}, glossary says {name:?}",
                mapped.event
            ));
        }
    }
    assert_eq!(compared, 66, "the glossary documents 66 Mixpanel tabs");
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
