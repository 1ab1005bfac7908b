//! Leader election: the running operator holds the Lease; a second replica
//! stands by and writes nothing.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use vaultsync_e2e::TestEnv;

#[tokio::test]
async fn a_second_replica_stands_by() -> anyhow::Result<()> {
    let env = TestEnv::new("leader").await?;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "vaultsync-system");
    let holder = |lease: Lease| lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(holder(leases.get("vaultsync-leader").await?).as_deref(), Some("operator-e2e"));

    let state = std::env::var("VAULTSYNC_STATE")?;
    let binary = vaultsync_e2e::vaultsync_binary();
    let mut standby = tokio::process::Command::new(binary)
        .arg("run")
        .env("KUBECONFIG", format!("{state}/operator.kubeconfig"))
        .env("VAULTSYNC_LEADER_ELECTION", "true")
        .env("POD_NAME", "standby-e2e")
        .env("VAULTSYNC_HEALTH_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(standby.try_wait()?.is_none(), "the standby replica must keep running");
    assert_eq!(
        holder(leases.get("vaultsync-leader").await?).as_deref(),
        Some("operator-e2e"),
        "the leader keeps the Lease"
    );
    standby.start_kill()?;
    let output = standby.wait_with_output().await?;
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("standing by") && !log.contains("became leader"), "{log}");
    env.cleanup().await;
    Ok(())
}
