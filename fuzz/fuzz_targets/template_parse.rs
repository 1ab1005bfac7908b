//! Arbitrary bytes as a template: lexing and parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vaultsync_template::fuzzing::parse_input(data);
});
