#![no_main]
use glimpse_fuzz as _;

libfuzzer_sys::fuzz_target!(|data: &[u8]| glimpse::fuzzing::resample(data));
