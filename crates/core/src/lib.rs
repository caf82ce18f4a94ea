//! The rules every other Currents crate shares, in one dependency-light leaf
//! crate that the build-time crates (schema, codegen, xtask) and the runtime
//! (`currents-events`, `currents-mixpanel`) can all depend on without pulling
//! in generated code:
//!
//! - [`naming`]: every naming rule on strings (Mixpanel convention names,
//!   Rust names of the generated code, valid type and field names);
//! - [`FieldType`]: the glossary's field types, their schema-file spelling
//!   and their Avro writer-schema types;
//! - [`avro`]: the Avro object container header (reading and writing);
//! - [`json`]: which bytes a JSON string escapes, found sixteen at a time
//!   (the JSON decoder and the JSON writer both use it).
//!
//! Features: `serde` (`Deserialize`/`Serialize` of [`FieldType`] in its
//! schema-file spelling) and `schemars` (its JSON Schema).

pub mod avro;
mod field_type;
pub mod json;
pub mod naming;

pub use field_type::{AvroTypeError, FieldType, UnknownFieldType};
