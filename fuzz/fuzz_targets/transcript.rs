//! Fuzz target `transcript`: see `dvkg::fuzzing::transcript`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::transcript(data);
});
