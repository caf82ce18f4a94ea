//! Fuzz target: see `currents_fuzz::targets::avro`.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    currents_fuzz::targets::avro(data);
});

#[cfg(not(fuzzing))]
fn main() {
    currents_fuzz::driver::main("fuzz_avro", currents_fuzz::targets::avro);
}
