//! Reading Avro writer schemas: `.avsc` files, and the header of Avro object
//! container files (`.avro`, optionally gzip'd as `.avro.gz`).
//!
//! Only the container header is read (by `currents_core::avro`, the reader
//! the runtime decoder uses too); the writer schema is its `avro.schema`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use currents_core::avro::{self, NAMESPACE_PREFIX};
use currents_schema::FieldType;
use serde_json::Value;

/// One event type's writer schema, flattened to what the glossary records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSchema {
    /// `namespace` minus [`NAMESPACE_PREFIX`], `.`, record `name`.
    pub event_type: String,
    pub doc: String,
    pub fields: Vec<WriterField>,
    /// The file it was read from.
    pub source: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterField {
    pub name: String,
    pub ty: FieldType,
    /// `["null", T]`.
    pub nullable: bool,
    /// The doc started with `[PII]`.
    pub pii: bool,
    /// The doc without the `[PII]` mark.
    pub doc: String,
}

impl WriterSchema {
    pub fn field(&self, name: &str) -> Option<&WriterField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Splits a writer-schema doc into (pii, doc without the `[PII]` mark).
pub fn split_pii(doc: &str) -> (bool, String) {
    let trimmed = doc.trim();
    match trimmed.strip_prefix("[PII]") {
        Some(rest) => (true, rest.trim_start().to_owned()),
        None => (false, trimmed.to_owned()),
    }
}

/// How a file is read, judged by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Avsc,
    Avro,
    AvroGz,
}

pub fn input_kind(path: &Path) -> Option<InputKind> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".avsc") {
        Some(InputKind::Avsc)
    } else if name.ends_with(".avro") {
        Some(InputKind::Avro)
    } else if name.ends_with(".avro.gz") {
        Some(InputKind::AvroGz)
    } else {
        None
    }
}

/// Expands the command-line inputs: directories are walked recursively for
/// `.avsc`, `.avro` and `.avro.gz` files (in path order); files are taken as
/// given. Errors name inputs that do not exist or have another extension.
pub fn collect_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found, &mut errors);
            found.sort();
            files.extend(found);
        } else if input.is_file() {
            if input_kind(input).is_some() {
                files.push(input.clone());
            } else {
                errors.push(format!(
                    "{}: not an .avsc, .avro or .avro.gz file",
                    input.display()
                ));
            }
        } else {
            errors.push(format!("{}: no such file or directory", input.display()));
        }
    }
    (files, errors)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            errors.push(format!("{}: {err}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out, errors);
        } else if input_kind(&path).is_some() {
            out.push(path);
        }
    }
}

/// Reads the writer schema from one input file.
pub fn read_file(path: &Path) -> Result<WriterSchema, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let kind = input_kind(path).ok_or_else(|| at("unknown file kind".into()))?;
    let json = match kind {
        InputKind::Avsc => std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?,
        InputKind::Avro => {
            let file = File::open(path).map_err(|e| at(e.to_string()))?;
            container_schema(BufReader::new(file)).map_err(at)?
        }
        InputKind::AvroGz => {
            let file = File::open(path).map_err(|e| at(e.to_string()))?;
            container_schema(flate2::read::MultiGzDecoder::new(BufReader::new(file))).map_err(at)?
        }
    };
    parse_schema(&json, path).map_err(at)
}

/// The writer schema (`avro.schema`) of an Avro object container file.
pub fn container_schema(reader: impl Read) -> Result<String, String> {
    avro::read_header(reader)
        .map(|header| header.schema_json)
        .map_err(|e| e.to_string())
}

/// Parses a writer schema (JSON) into the flattened form.
pub fn parse_schema(json: &str, source: &Path) -> Result<WriterSchema, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = value.as_object().ok_or("the schema is not a JSON object")?;
    if obj.get("type").and_then(Value::as_str) != Some("record") {
        return Err("the schema is not a record".into());
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or("the record has no name")?;
    let namespace = obj.get("namespace").and_then(Value::as_str).unwrap_or("");
    // A full name in `name` wins over `namespace` (Avro spec).
    let (namespace, name) = match name.rsplit_once('.') {
        Some((ns, n)) => (ns, n),
        None => (namespace, name),
    };
    let namespace = namespace.strip_prefix(NAMESPACE_PREFIX).ok_or_else(|| {
        format!("namespace `{namespace}` does not start with `{NAMESPACE_PREFIX}`")
    })?;
    let event_type = format!("{namespace}.{name}");
    let doc = obj
        .get("doc")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_owned();
    let raw_fields = obj
        .get("fields")
        .and_then(Value::as_array)
        .ok_or("the record has no fields array")?;
    let mut fields = Vec::with_capacity(raw_fields.len());
    let mut errors = Vec::new();
    for raw in raw_fields {
        let name = raw.get("name").and_then(Value::as_str).unwrap_or_default();
        match raw.get("type").map(FieldType::from_avro) {
            Some(Ok((ty, nullable))) => {
                let (pii, doc) = split_pii(raw.get("doc").and_then(Value::as_str).unwrap_or(""));
                fields.push(WriterField {
                    name: name.to_owned(),
                    ty,
                    nullable,
                    pii,
                    doc,
                });
            }
            Some(Err(e)) => errors.push(format!("field `{name}`: {e}")),
            None => errors.push(format!("field `{name}` has no type")),
        }
    }
    if !errors.is_empty() {
        return Err(format!("{event_type}: {}", errors.join("; ")));
    }
    Ok(WriterSchema {
        event_type,
        doc,
        fields,
        source: source.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.fax",
        "doc":"d","fields":[{"name":"id","type":"string","doc":"x"},
        {"name":"user_id","type":["null","string"],"doc":"[PII] Braze user ID","default":null},
        {"name":"urls","type":["null",{"type":"array","items":["null","string"]}],"doc":"u","default":null}]}"#;

    #[test]
    fn reads_container_headers() {
        let header = avro::AvroHeader {
            schema_json: SCHEMA.into(),
            codec: "deflate".into(),
            sync_marker: [7; 16],
        };
        assert_eq!(container_schema(&header.to_bytes()[..]).unwrap(), SCHEMA);
        assert!(
            container_schema(&b"Obj\x02"[..])
                .unwrap_err()
                .contains("bad magic")
        );
    }

    #[test]
    fn flattens_schemas() {
        let schema = parse_schema(SCHEMA, Path::new("x.avsc")).unwrap();
        assert_eq!(schema.event_type, "users.messages.fax.Send");
        assert_eq!(
            schema.fields[1],
            WriterField {
                name: "user_id".into(),
                ty: FieldType::String,
                nullable: true,
                pii: true,
                doc: "Braze user ID".into(),
            }
        );
        assert_eq!(schema.fields[2].ty, FieldType::NullableStringArray);
        assert!(schema.fields[2].nullable);
        let bad = SCHEMA.replace(
            r#""type":"string","doc":"x""#,
            r#""type":"double","doc":"x""#,
        );
        assert!(
            parse_schema(&bad, Path::new("x"))
                .unwrap_err()
                .contains("double")
        );
    }
}
