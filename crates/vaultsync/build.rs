//! Bakes the git commit into `vaultsync --version`, so a running operator
//! (and its image) says exactly what it was built from. An image build has
//! no `.git`: it passes the commit in `VAULTSYNC_GIT_COMMIT` instead.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VAULTSYNC_GIT_COMMIT");
    let git_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    // A new commit moves HEAD or the branch it points at.
    for watched in ["HEAD", "refs/heads", "packed-refs"] {
        let path = git_dir.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = std::env::var("VAULTSYNC_GIT_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let output = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
        (output.status.success() && !commit.is_empty()).then_some(commit)
    });
    let described = commit.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=VAULTSYNC_GIT_COMMIT={described}");
}
