#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| unlock_fuzz_targets::piv_card(data));
