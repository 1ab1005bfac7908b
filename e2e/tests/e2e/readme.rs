//! README.md's "A first sync", run word for word (scripts/readme-block.sh
//! extracts it) in the test environment, as `make demo` runs it: the
//! namespace, the ServiceAccount, Vault's secret, policy and role, the
//! store and the ExternalSecret, and the Secret that comes out.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use vaultsync_e2e::{TestEnv, eventually, repo_root};

/// The README's names and value.
const NAMESPACE: &str = "my-app";
const PASSWORD: &str = "correct-horse-battery-staple";

#[tokio::test]
async fn first_sync_runs_as_written() -> anyhow::Result<()> {
    let env = TestEnv::new("readme").await?;
    env.record_secret(PASSWORD);
    // A rerun against the same environment starts from scratch: the block
    // creates the namespace.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let _ = namespaces.delete(NAMESPACE, &Default::default()).await;
    eventually(Duration::from_secs(60), || async { Ok(namespaces.get_opt(NAMESPACE).await?.is_none()) }).await?;

    let state = std::env::var("VAULTSYNC_STATE")?;
    let script = format!(
        "source {state}/env && bash {}/scripts/readme-block.sh first-sync | bash -euo pipefail",
        repo_root().display()
    );
    let output = tokio::process::Command::new("bash").args(["-euo", "pipefail", "-c", &script]).output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = namespaces.delete(NAMESPACE, &Default::default()).await;
    assert!(output.status.success(), "the README's first sync failed:\n{stdout}\n{stderr}");
    // Its last command prints the password from the synced Secret.
    assert_eq!(stdout.lines().last(), Some(PASSWORD), "{stdout}");
    env.cleanup().await;
    Ok(())
}
