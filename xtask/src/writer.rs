//! Reading Avro writer schemas: `.avsc` files, and the header of Avro object
//! container files (`.avro`, optionally gzip'd as `.avro.gz`).
//!
//! Only the container header is read: magic `Obj\x01`, the metadata map
//! (`map<bytes>`, zigzag-varint block counts and lengths), and the 16-byte
//! sync marker. The writer schema is the metadata key `avro.schema`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use currents_schema::FieldType;
use serde_json::Value;

/// Namespace prefix of every Braze Currents writer schema.
pub const NAMESPACE_PREFIX: &str = "dataexport.S3.inner.";

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

/// Largest metadata key or value accepted (a corrupt length must not allocate gigabytes).
const MAX_META_LEN: u64 = 64 << 20;

/// Reads an Avro object container header and returns its `avro.schema`.
pub fn container_schema(mut reader: impl Read) -> Result<String, String> {
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|e| format!("reading the container magic: {e}"))?;
    if &magic != b"Obj\x01" {
        return Err("not an Avro object container file (bad magic)".into());
    }
    let mut schema = None;
    loop {
        let mut count = read_long(&mut reader)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            count = count.checked_neg().ok_or("bad metadata block count")?;
            let _block_bytes = read_long(&mut reader)?;
        }
        for _ in 0..count {
            let key = read_bytes(&mut reader)?;
            let value = read_bytes(&mut reader)?;
            if key == b"avro.schema" {
                schema = Some(
                    String::from_utf8(value).map_err(|_| "avro.schema is not UTF-8".to_owned())?,
                );
            }
        }
    }
    let mut sync = [0u8; 16];
    reader
        .read_exact(&mut sync)
        .map_err(|e| format!("reading the sync marker: {e}"))?;
    schema.ok_or_else(|| "no avro.schema in the container header".into())
}

fn read_long(reader: &mut impl Read) -> Result<i64, String> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        reader
            .read_exact(&mut byte)
            .map_err(|e| format!("truncated container header: {e}"))?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err("varint longer than 10 bytes in the container header".into())
}

fn read_bytes(reader: &mut impl Read) -> Result<Vec<u8>, String> {
    let len = read_long(reader)?;
    let len = u64::try_from(len).map_err(|_| "negative length in the container header")?;
    if len > MAX_META_LEN {
        return Err(format!("metadata entry of {len} bytes is too large"));
    }
    let mut buf = vec![0u8; len as usize];
    reader
        .read_exact(&mut buf)
        .map_err(|e| format!("truncated container header: {e}"))?;
    Ok(buf)
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
        match raw.get("type").map(flatten_type) {
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

/// `(type, nullable)` of an Avro field type, or why it is not one Currents uses.
fn flatten_type(ty: &Value) -> Result<(FieldType, bool), String> {
    if let Some(branches) = ty.as_array() {
        let non_null: Vec<&Value> = branches
            .iter()
            .filter(|b| b.as_str() != Some("null"))
            .collect();
        return match (branches.len(), non_null.as_slice()) {
            (2, [inner]) => Ok((base_type(inner)?, true)),
            _ => Err(format!("unsupported union {ty}")),
        };
    }
    Ok((base_type(ty)?, false))
}

fn base_type(ty: &Value) -> Result<FieldType, String> {
    match ty {
        Value::String(name) => match name.as_str() {
            "string" => Ok(FieldType::String),
            "int" => Ok(FieldType::Int),
            "long" => Ok(FieldType::Long),
            "float" => Ok(FieldType::Float),
            "boolean" => Ok(FieldType::Boolean),
            other => Err(format!("unsupported Avro type `{other}`")),
        },
        Value::Object(obj) => match obj.get("type").and_then(Value::as_str) {
            Some("array") => match obj.get("items") {
                Some(items) => match flatten_type(items)? {
                    (FieldType::String, false) => Ok(FieldType::StringArray),
                    (FieldType::String, true) => Ok(FieldType::NullableStringArray),
                    _ => Err(format!("unsupported array items {items}")),
                },
                None => Err("array without items".into()),
            },
            Some(_) if obj.contains_key("logicalType") => {
                Err(format!("unsupported logical type {ty}"))
            }
            Some(name) if obj.len() == 1 => base_type(&Value::String(name.to_owned())),
            _ => Err(format!("unsupported Avro type {ty}")),
        },
        _ => Err(format!("unsupported Avro type {ty}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(n: i64) -> Vec<u8> {
        let mut v = ((n << 1) ^ (n >> 63)) as u64;
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn header(entries: &[(&str, &str)], negative_count: bool) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in entries {
            body.extend(zigzag(k.len() as i64));
            body.extend(k.as_bytes());
            body.extend(zigzag(v.len() as i64));
            body.extend(v.as_bytes());
        }
        let mut out = b"Obj\x01".to_vec();
        if negative_count {
            out.extend(zigzag(-(entries.len() as i64)));
            out.extend(zigzag(body.len() as i64));
        } else {
            out.extend(zigzag(entries.len() as i64));
        }
        out.extend(body);
        out.extend(zigzag(0));
        out.extend([7u8; 16]);
        out
    }

    const SCHEMA: &str = r#"{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.fax",
        "doc":"d","fields":[{"name":"id","type":"string","doc":"x"},
        {"name":"user_id","type":["null","string"],"doc":"[PII] Braze user ID","default":null},
        {"name":"urls","type":["null",{"type":"array","items":["null","string"]}],"doc":"u","default":null}]}"#;

    #[test]
    fn reads_container_headers() {
        for negative in [false, true] {
            let bytes = header(&[("avro.codec", "null"), ("avro.schema", SCHEMA)], negative);
            assert_eq!(container_schema(&bytes[..]).unwrap(), SCHEMA);
        }
        assert!(container_schema(&b"Obj\x02"[..]).is_err());
        let bytes = header(&[("avro.codec", "null")], false);
        assert!(
            container_schema(&bytes[..])
                .unwrap_err()
                .contains("no avro.schema")
        );
        let bytes = header(&[("avro.schema", SCHEMA)], false);
        assert!(container_schema(&bytes[..bytes.len() - 20]).is_err());
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
