//! The types of glossary fields: how the schema files spell them and which
//! Avro writer-schema types they are. The one definition the schema loader,
//! codegen, `schema sync` and the runtime's `FieldInfo` share.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

/// The Avro types Braze Currents uses (no others appear in any writer schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldType {
    String,
    Int,
    Long,
    Float,
    Boolean,
    /// Avro `array` of `string`.
    StringArray,
    /// Avro `array` of `["null", "string"]`.
    NullableStringArray,
}

impl FieldType {
    /// Every type, in the order the schema file format lists them.
    pub const ALL: [FieldType; 7] = [
        FieldType::String,
        FieldType::Int,
        FieldType::Long,
        FieldType::Float,
        FieldType::Boolean,
        FieldType::StringArray,
        FieldType::NullableStringArray,
    ];

    /// The spellings of [`FieldType::ALL`], for "expected one of" messages.
    pub const NAMES: [&'static str; 7] = {
        let mut names = [""; 7];
        let mut i = 0;
        while i < names.len() {
            names[i] = FieldType::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// How the schema files spell the type (`type = "array<string?>"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Long => "long",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::StringArray => "array<string>",
            FieldType::NullableStringArray => "array<string?>",
        }
    }

    /// The type spelled as in the schema files; `None` for any other text.
    pub fn parse(text: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether the type is an Avro `array`.
    pub const fn is_array(self) -> bool {
        matches!(
            self,
            FieldType::StringArray | FieldType::NullableStringArray
        )
    }

    /// The Avro writer-schema type of a field of this type, as Currents
    /// writes it: `"long"`, `{"type": "array", "items": "string"}`, and for a
    /// nullable field the union `["null", T]`.
    pub fn avro_type(self, nullable: bool) -> Value {
        let base = match self {
            FieldType::String => json!("string"),
            FieldType::Int => json!("int"),
            FieldType::Long => json!("long"),
            FieldType::Float => json!("float"),
            FieldType::Boolean => json!("boolean"),
            FieldType::StringArray => json!({"type": "array", "items": "string"}),
            FieldType::NullableStringArray => {
                json!({"type": "array", "items": FieldType::String.avro_type(true)})
            }
        };
        if nullable {
            json!(["null", base])
        } else {
            base
        }
    }

    /// The reverse of [`FieldType::avro_type`]: `(type, nullable)` of an Avro
    /// writer-schema field type, or why it is not one Currents uses. Accepts
    /// the equivalent spellings Avro allows (`{"type": "long"}`, `[T, "null"]`).
    pub fn from_avro(ty: &Value) -> Result<(FieldType, bool), AvroTypeError> {
        from_avro(ty, 0)
    }
}

/// Deepest nesting [`FieldType::from_avro`] follows before giving up (no
/// Currents type nests more than three levels; a crafted schema must not
/// overflow the stack).
const MAX_AVRO_DEPTH: usize = 8;

fn from_avro(ty: &Value, depth: usize) -> Result<(FieldType, bool), AvroTypeError> {
    if depth > MAX_AVRO_DEPTH {
        return Err(AvroTypeError(format!("type nests too deeply: {ty}")));
    }
    if let Some(branches) = ty.as_array() {
        let non_null: Vec<&Value> = branches
            .iter()
            .filter(|b| b.as_str() != Some("null"))
            .collect();
        return match (branches.len(), non_null.as_slice()) {
            (2, [inner]) => Ok((base_type(inner, depth + 1)?, true)),
            _ => Err(AvroTypeError(format!("unsupported union {ty}"))),
        };
    }
    Ok((base_type(ty, depth)?, false))
}

fn base_type(ty: &Value, depth: usize) -> Result<FieldType, AvroTypeError> {
    let unsupported = || AvroTypeError(format!("unsupported Avro type {ty}"));
    match ty {
        Value::String(name) => match name.as_str() {
            "string" => Ok(FieldType::String),
            "int" => Ok(FieldType::Int),
            "long" => Ok(FieldType::Long),
            "float" => Ok(FieldType::Float),
            "boolean" => Ok(FieldType::Boolean),
            other => Err(AvroTypeError(format!("unsupported Avro type `{other}`"))),
        },
        Value::Object(obj) => match obj.get("type").and_then(Value::as_str) {
            Some("array") => match obj.get("items") {
                Some(items) => match from_avro(items, depth + 1)? {
                    (FieldType::String, false) => Ok(FieldType::StringArray),
                    (FieldType::String, true) => Ok(FieldType::NullableStringArray),
                    _ => Err(AvroTypeError(format!("unsupported array items {items}"))),
                },
                None => Err(AvroTypeError("array without items".into())),
            },
            Some(_) if obj.contains_key("logicalType") => {
                Err(AvroTypeError(format!("unsupported logical type {ty}")))
            }
            // `{"type": "long"}` is the long form of `"long"`.
            Some(name) if obj.len() == 1 => base_type(&Value::String(name.to_owned()), depth + 1),
            _ => Err(unsupported()),
        },
        _ => Err(unsupported()),
    }
}

/// An Avro type that is not one of the [`FieldType`]s, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroTypeError(String);

impl fmt::Display for AvroTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AvroTypeError {}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not a [`FieldType`] spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFieldType(pub String);

impl fmt::Display for UnknownFieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown field type `{}`, expected one of ", self.0)?;
        for (i, name) in FieldType::NAMES.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}`{name}`")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownFieldType {}

impl FromStr for FieldType {
    type Err = UnknownFieldType;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        FieldType::parse(text).ok_or_else(|| UnknownFieldType(text.to_owned()))
    }
}

/// Deserializes from the schema-file spelling (`"array<string?>"`), with the
/// message serde gives an unknown enum variant.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Spelling;
        impl serde::de::Visitor<'_> for Spelling {
            type Value = FieldType;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field type")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FieldType, E> {
                FieldType::parse(v).ok_or_else(|| E::unknown_variant(v, &FieldType::NAMES))
            }
        }
        deserializer.deserialize_str(Spelling)
    }
}

/// Serializes as the schema-file spelling.
#[cfg(feature = "serde")]
impl serde::Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The JSON Schema of the schema-file spelling (for editors): the plain types
/// as one enum, each array type on its own with what it is in Avro.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for FieldType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FieldType".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let plain: Vec<&str> = FieldType::ALL
            .iter()
            .filter(|t| !t.is_array())
            .map(|t| t.as_str())
            .collect();
        let mut one_of = vec![json!({"type": "string", "enum": plain})];
        for ty in FieldType::ALL.iter().filter(|t| t.is_array()) {
            let items = match ty.avro_type(false).get("items") {
                Some(Value::Array(branches)) => {
                    let names: Vec<String> = branches.iter().map(Value::to_string).collect();
                    format!("[{}]", names.join(", "))
                }
                Some(Value::String(name)) => name.clone(),
                _ => String::new(),
            };
            one_of.push(json!({
                "type": "string",
                "const": ty.as_str(),
                "description": format!("Avro `array` of `{items}`."),
            }));
        }
        schemars::json_schema!({
            "description": "The Avro types Braze Currents uses (no others appear in any writer schema).",
            "oneOf": one_of,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for ty in FieldType::ALL {
            assert_eq!(FieldType::parse(ty.as_str()), Some(ty));
            assert_eq!(ty.as_str().parse::<FieldType>(), Ok(ty));
            assert_eq!(ty.to_string(), ty.as_str());
        }
        assert_eq!(FieldType::NAMES[6], "array<string?>");
        assert_eq!(FieldType::parse("double"), None);
        assert_eq!(
            "double".parse::<FieldType>().unwrap_err().to_string(),
            "unknown field type `double`, expected one of `string`, `int`, `long`, \
             `float`, `boolean`, `array<string>`, `array<string?>`"
        );
    }

    #[test]
    fn avro_types() {
        assert_eq!(FieldType::Long.avro_type(false), json!("long"));
        assert_eq!(FieldType::String.avro_type(true), json!(["null", "string"]));
        assert_eq!(
            FieldType::StringArray.avro_type(true),
            json!(["null", {"type": "array", "items": "string"}])
        );
        assert_eq!(
            FieldType::NullableStringArray.avro_type(false),
            json!({"type": "array", "items": ["null", "string"]})
        );
    }

    #[test]
    fn avro_types_read_back() {
        for ty in FieldType::ALL {
            for nullable in [false, true] {
                assert_eq!(
                    FieldType::from_avro(&ty.avro_type(nullable)),
                    Ok((ty, nullable)),
                    "{ty} {nullable}"
                );
            }
        }
        // Equivalent spellings Avro allows.
        assert_eq!(
            FieldType::from_avro(&json!({"type": "long"})),
            Ok((FieldType::Long, false))
        );
        assert_eq!(
            FieldType::from_avro(&json!(["int", "null"])),
            Ok((FieldType::Int, true))
        );
    }

    #[test]
    fn other_avro_types_are_rejected() {
        let err = |v: Value| FieldType::from_avro(&v).unwrap_err().to_string();
        assert_eq!(err(json!("double")), "unsupported Avro type `double`");
        assert!(err(json!(["null", "string", "long"])).starts_with("unsupported union"));
        assert!(err(json!(["null", ["null", "string"]])).starts_with("unsupported Avro type"));
        assert!(err(json!({"type": "array", "items": "long"})).starts_with("unsupported array"));
        assert_eq!(err(json!({"type": "array"})), "array without items");
        assert!(
            err(json!({"type": "long", "logicalType": "timestamp-millis"}))
                .starts_with("unsupported logical type")
        );
        assert!(err(json!({"type": "map", "values": "long"})).starts_with("unsupported Avro type"));
        assert!(err(json!(5)).starts_with("unsupported Avro type"));
        let mut deep = json!("string");
        for _ in 0..100 {
            deep = json!({"type": "array", "items": deep});
        }
        assert!(err(deep).contains("too deeply"));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_spelling() {
        let ty: FieldType = serde_json::from_str(r#""array<string?>""#).unwrap();
        assert_eq!(ty, FieldType::NullableStringArray);
        assert_eq!(serde_json::to_string(&ty).unwrap(), r#""array<string?>""#);
        let err = serde_json::from_str::<FieldType>(r#""double""#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown variant `double`, expected one of `string`, `int`"),
            "{err}"
        );
    }
}
