//! What `schema sync` found for each event type, and the field attributes
//! it compares and writes.

use std::path::PathBuf;

use currents_schema::{Category, Field, FieldType};
use toml_edit::Value;

use super::NO_DOC;
use crate::writer::{WriterField, WriterSchema};

/// A field's type as shown in reports: `string`, `string?`, `array<string>?`.
pub(super) fn type_label(ty: FieldType, nullable: bool) -> String {
    format!("{}{}", ty.as_str(), if nullable { "?" } else { "" })
}

#[derive(Debug, Clone)]
pub(super) enum Finding {
    NewType(Box<NewType>),
    NewField {
        field: WriterField,
        library: bool,
    },
    TypeChange {
        name: String,
        from: (FieldType, bool),
        to: (FieldType, bool),
    },
    PiiChange {
        name: String,
        to: bool,
    },
    NowInAvro {
        name: Option<String>,
    },
    Removed {
        name: String,
    },
    DocChange {
        name: Option<String>,
        from: String,
        to: String,
    },
    NotInAvro {
        name: String,
    },
}

impl Finding {
    /// Order in the report: added types, added fields, changes, removed, docs.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Finding::NewType(_) => 0,
            Finding::NewField { .. } => 1,
            Finding::TypeChange { .. } | Finding::PiiChange { .. } | Finding::NowInAvro { .. } => 2,
            Finding::Removed { .. } => 3,
            Finding::DocChange { .. } => 4,
            Finding::NotInAvro { .. } => 5,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct NewType {
    pub(super) schema: WriterSchema,
    pub(super) file: PathBuf,
    pub(super) new_file: bool,
    pub(super) rust_name: String,
    pub(super) category: Category,
    pub(super) channel: Option<String>,
    pub(super) mixpanel_name: String,
    pub(super) new_segments: Vec<(String, String)>,
    pub(super) include: Vec<String>,
    pub(super) exclude: Vec<String>,
    pub(super) fields: Vec<String>,
    pub(super) entries: Vec<NewEntry>,
    pub(super) notes: Vec<String>,
}

/// An `[[event.field]]` of a new event type.
#[derive(Debug, Clone)]
pub(super) struct NewEntry {
    pub(super) name: String,
    /// Defined here (not in the library): mapped by default, flagged for review.
    pub(super) local: bool,
    pub(super) attrs: Vec<(&'static str, Attr)>,
}

/// A field attribute value as written in TOML.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Attr {
    Ty(FieldType),
    Bool(bool),
    Str(String),
}

impl Attr {
    pub(super) fn to_value(&self) -> Value {
        match self {
            Attr::Ty(t) => Value::from(t.as_str()),
            Attr::Bool(b) => Value::from(*b),
            Attr::Str(s) => Value::from(s.as_str()),
        }
    }
}

/// The value of attribute `key` of a resolved field.
pub(super) fn field_attr(field: &Field, key: &str) -> Attr {
    match key {
        "type" => Attr::Ty(field.ty),
        "nullable" => Attr::Bool(field.nullable),
        "pii" => Attr::Bool(field.pii),
        "avro" => Attr::Bool(field.avro),
        _ => Attr::Str(field.doc.clone()),
    }
}

/// The default of attribute `key` for a field defined in an event (none for type and doc).
pub(super) fn local_default(key: &str) -> Option<Attr> {
    match key {
        "nullable" | "pii" => Some(Attr::Bool(false)),
        "avro" => Some(Attr::Bool(true)),
        _ => None,
    }
}

pub(super) fn writer_attrs(f: &WriterField) -> [(&'static str, Attr); 4] {
    [
        ("type", Attr::Ty(f.ty)),
        ("nullable", Attr::Bool(f.nullable)),
        ("pii", Attr::Bool(f.pii)),
        ("doc", Attr::Str(doc_or_placeholder(&f.doc))),
    ]
}

pub(super) fn doc_or_placeholder(doc: &str) -> String {
    if doc.trim().is_empty() {
        NO_DOC.to_owned()
    } else {
        doc.to_owned()
    }
}

/// Per event type: where it lives and what differs.
#[derive(Debug)]
pub(super) struct TypeReport {
    pub(super) file: PathBuf,
    pub(super) items: Vec<Finding>,
}
