//! The declarative Braze Currents glossary in `schemas/`.
//!
//! [`format`](mod@format) is what people edit (TOML, with a JSON Schema for editors);
//! [`load`](mod@load) parses, resolves and validates it, reporting every problem with its
//! file and line; [`model`] is the sorted result that code generation reads.

pub mod format;
pub mod load;
pub mod model;

pub use load::{LoadError, Problem, SourceFiles, load, load_sources};
pub use model::*;
