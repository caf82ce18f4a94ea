//! Fuzz target: see `currents_fuzz::targets::json`.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    currents_fuzz::targets::json(data);
});

#[cfg(not(fuzzing))]
fn main() {
    currents_fuzz::driver::main("fuzz_json", currents_fuzz::targets::json);
}
