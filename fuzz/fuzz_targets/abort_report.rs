//! Fuzz target `abort_report`: see `dvkg::fuzzing::abort_report`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dvkg::fuzzing::abort_report(data);
});
