//! Where the repository and the binary under test are: tests run from the
//! e2e crate's directory, scripts and charts live one level up.

use std::path::PathBuf;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `vaultsync` binary `scripts/e2e.sh` built before the suite.
pub fn vaultsync_binary() -> PathBuf {
    repo_root().join("target/debug/vaultsync")
}
