//! Fuzz target `interchange`: see `dvkg::fuzzing::interchange`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::interchange(data);
});
