//! Fuzz target `wire`: see `dvkg::fuzzing::wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::wire(data);
});
