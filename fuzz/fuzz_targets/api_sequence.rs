//! libFuzzer target: bytes decoded into C-API calls (see
//! tests/support/api_sequence.rs for the decoder and the checks).
#![no_main]

#[path = "../../tests/support/api_sequence.rs"]
mod api_sequence;

libfuzzer_sys::fuzz_target!(|data: &[u8]| api_sequence::run(data));
