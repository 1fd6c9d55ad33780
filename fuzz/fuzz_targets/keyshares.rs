//! Fuzz target `keyshares`: see `dvkg::fuzzing::keyshares`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::keyshares(data);
});
