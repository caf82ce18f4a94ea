//! Hand-written: files generated from `schemas/` by `cargo xtask codegen`.

#[rustfmt::skip]
mod json_schemas;

pub use json_schemas::JSON_SCHEMAS;
