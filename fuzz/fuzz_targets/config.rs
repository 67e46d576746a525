#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twofactor_fuzz_targets::config(data));
