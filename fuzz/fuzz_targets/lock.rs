//! Fuzz target `lock`: see `dvkg::fuzzing::lock`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::lock(data);
});
