//! JSON Schemas: of the schema files themselves (`schemas/format/`, for
//! editors), and of every event type's input record and Mixpanel output
//! (`schemas/json/in/`, `schemas/json/out/`).

use currents_schema::format::format_json_schemas;
use currents_schema::{
    DISTINCT_ID, EventType, Field, FieldType, Glossary, INSERT_ID, Mapping, NamePart,
};
use serde_json::{Map, Value, json};

use crate::{GeneratedFile, json_file};

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

pub fn generate(glossary: &Glossary) -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = format_json_schemas()
        .into_iter()
        .map(|(name, schema)| json_file(format!("schemas/format/{name}"), schema))
        .collect();
    for event in &glossary.events {
        files.push(json_file(
            format!("schemas/json/in/{}.json", event.event_type),
            input_schema(event),
        ));
        files.push(json_file(
            format!("schemas/json/out/{}.json", event.event_type),
            output_schema(glossary, event),
        ));
    }
    files
}

fn value_schema(ty: FieldType) -> Value {
    match ty {
        FieldType::String => json!({"type": "string"}),
        FieldType::Int => json!({"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX}),
        FieldType::Long => json!({"type": "integer"}),
        FieldType::Float => json!({"type": "number"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::StringArray => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::NullableStringArray => {
            json!({"type": "array", "items": {"type": ["string", "null"]}})
        }
    }
}

fn field_schema(field: &Field) -> Value {
    let mut schema = value_schema(field.ty);
    if field.nullable
        && let Some(Value::String(ty)) = schema.get("type").cloned()
    {
        schema["type"] = json!([ty, "null"]);
    }
    schema["description"] = Value::String(field.doc.trim().to_owned());
    if field.pii {
        schema["x-pii"] = Value::Bool(true);
    }
    if field.json {
        schema["contentMediaType"] = Value::String("application/json".into());
    }
    schema
}

/// The flat (storage) shape of a record of this type.
fn input_schema(event: &EventType) -> Value {
    let mut properties = Map::new();
    properties.insert("event_type".into(), json!({"const": event.event_type}));
    let mut required = Vec::new();
    for field in &event.fields {
        properties.insert(field.name.clone(), field_schema(field));
        if !field.nullable {
            required.push(Value::String(field.name.clone()));
        }
    }
    json!({
        "$schema": DRAFT,
        "$id": format!("currents/in/{}.json", event.event_type),
        "title": event.event_type,
        "description": event.doc.trim(),
        "type": "object",
        "properties": properties,
        "required": required,
        // Fields the glossary does not know are kept, not rejected.
        "additionalProperties": true,
    })
}

/// The Mixpanel event the Braze profile produces for this type.
fn output_schema(glossary: &Glossary, event: &EventType) -> Value {
    let mut properties = Map::new();
    let mut pattern_properties = Map::new();
    let mut required = vec![json!("$partner_id")];
    properties.insert("$partner_id".into(), json!({"const": glossary.partner_id}));
    properties.insert(
        "token".into(),
        json!({"type": "string", "description": "Mixpanel project token, when configured."}),
    );
    for field in &event.fields {
        match &field.mixpanel {
            Mapping::Expand(prefix) => {
                let pattern = format!("^{}", regex_escape(prefix));
                pattern_properties.insert(
                    pattern,
                    json!({"description": format!("A key of `{}`, expanded.", field.name)}),
                );
            }
            _ => {
                let Some(property) = field.braze_property() else {
                    continue;
                };
                // Null values are left out of the event, so no output property is nullable.
                let mut schema = value_schema(field.ty);
                schema["description"] = Value::String(field.doc.trim().to_owned());
                if field.pii {
                    schema["x-pii"] = Value::Bool(true);
                }
                if property == INSERT_ID {
                    schema["maxLength"] = json!(36);
                    schema["pattern"] = json!("^[A-Za-z0-9-]+$");
                }
                if !field.nullable || property == DISTINCT_ID {
                    required.push(Value::String(property.to_owned()));
                }
                properties.insert(property.to_owned(), schema);
            }
        }
    }
    let name = match event.name_parts().as_slice() {
        [NamePart::Text(text)] => json!({"const": text}),
        parts => {
            let prefix: String = parts
                .iter()
                .take_while(|p| matches!(p, NamePart::Text(_)))
                .map(|p| match p {
                    NamePart::Text(t) => t.as_str(),
                    NamePart::Field(_) => "",
                })
                .collect();
            json!({"type": "string", "pattern": format!("^{}", regex_escape(&prefix))})
        }
    };
    let mut props_schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": true,
    });
    if !pattern_properties.is_empty() {
        props_schema["patternProperties"] = Value::Object(pattern_properties);
    }
    json!({
        "$schema": DRAFT,
        "$id": format!("currents/out/{}.json", event.event_type),
        "title": format!("Mixpanel event for {}", event.event_type),
        "description": format!("{} (Braze profile)", event.mixpanel_name),
        "type": "object",
        "properties": {"event": name, "properties": props_schema},
        "required": ["event", "properties"],
        "additionalProperties": false,
    })
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `crates/cli/src/generated/json_schemas.rs`: the committed JSON Schemas,
/// embedded so the `currents` binary can print them anywhere.
pub fn embed(glossary: &Glossary) -> proc_macro2::TokenStream {
    let rows = glossary.events.iter().map(|e| {
        let event_type = &e.event_type;
        let input = format!("../../../../schemas/json/in/{event_type}.json");
        let output = format!("../../../../schemas/json/out/{event_type}.json");
        quote::quote!((#event_type, include_str!(#input), include_str!(#output)),)
    });
    quote::quote! {
        /// (event type, input JSON Schema, Mixpanel output JSON Schema), sorted by event type.
        pub static JSON_SCHEMAS: &[(&str, &str, &str)] = &[#(#rows)*];
    }
}
