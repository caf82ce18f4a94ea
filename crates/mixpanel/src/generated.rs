//! Hand-written: the Mixpanel mappers generated from `schemas/` by `cargo xtask codegen`.
//! Everything in `generated/` is overwritten by that command; edit the schema instead.

#[rustfmt::skip]
mod mappers;

pub use mappers::*;

/// How the field library maps a field of an event type the glossary does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibraryField {
    pub name: &'static str,
    /// Property in the Braze profile; `None` when dropped.
    pub braze: Option<&'static str>,
    /// Property in the full profile.
    pub full: Option<&'static str>,
    pub pii: bool,
}
