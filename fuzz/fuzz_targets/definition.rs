//! Fuzz target `definition`: see `dvkg::fuzzing::definition`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::definition(data);
});
