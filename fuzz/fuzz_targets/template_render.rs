//! Arbitrary bytes as a template and a small data map (see
//! `fuzzing::render_input`): rendering must never panic and must stop
//! within its budget.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vaultsync_template::fuzzing::render_input(data, vaultsync_template::fuzzing::BUDGET);
});
