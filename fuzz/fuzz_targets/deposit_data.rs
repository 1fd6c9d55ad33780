//! Fuzz target `deposit_data`: see `dvkg::fuzzing::deposit_data`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::deposit_data(data);
});
