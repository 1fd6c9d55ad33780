//! Fuzz target `keystore`: see `dvkg::fuzzing::keystore`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::keystore(data);
});
