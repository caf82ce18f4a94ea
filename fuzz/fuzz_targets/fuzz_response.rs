//! Fuzz target: see `currents_fuzz::targets::response`.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    currents_fuzz::targets::response(data);
});

#[cfg(not(fuzzing))]
fn main() {
    currents_fuzz::driver::main("fuzz_response", currents_fuzz::targets::response);
}
