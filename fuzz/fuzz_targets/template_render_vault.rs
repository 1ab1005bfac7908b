//! Arbitrary bytes as a Vault agent template and its data (see
//! `fuzzing::render_vault_input`): consul-template's functions and `secret`
//! calls must never panic, and rendering must stop within its budget.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vaultsync_template::fuzzing::render_vault_input(data);
});
