//! Fuzz targets of the currents workspace and a small stable-toolchain
//! driver. Each target takes arbitrary bytes, must never panic, and checks
//! the invariants that apply (accounting, determinism, round trips).
//! The return value is a coarse "behaviour signature" the stable driver uses
//! as feedback (libFuzzer ignores it and uses coverage instead).

pub mod driver;
pub mod targets;
