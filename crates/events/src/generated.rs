//! Hand-written: the event types generated from `schemas/` by `cargo xtask codegen`.
//! Everything in `generated/` is overwritten by that command; edit the schema instead.

#[rustfmt::skip]
mod events;

pub use events::*;
