//! The operator's /live, /ready and /metrics endpoints.

use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

#[tokio::test]
async fn live_ready_and_metrics() -> anyhow::Result<()> {
    let env = TestEnv::new("health").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("health")})).await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    env.wait_secret("app").await?;

    let addr = std::fs::read_to_string(format!("{}/operator-health-addr", std::env::var("VAULTSYNC_STATE")?))?;
    let get = |p: &str| reqwest::get(format!("http://{}{p}", addr.trim()));
    assert_eq!(get("/live").await?.status(), 200);
    assert_eq!(get("/ready").await?.status(), 200);
    let metrics = get("/metrics").await?.text().await?;
    let status = format!(
        "vaultsync_externalsecret_status_condition{{namespace=\"{}\",name=\"app\",condition=\"Ready\",status=\"True\"}} 1",
        env.namespace
    );
    for name in [
        "vaultsync_syncs_total{outcome=\"created\"}",
        "vaultsync_vault_logins_total",
        "vaultsync_vault_reads_total",
        "vaultsync_leader 1",
        status.as_str(),
        "vaultsync_reconcile_duration_seconds_count{controller=\"ExternalSecret\"}",
        "vaultsync_reconcile_duration_seconds_count{controller=\"SecretStore\"}",
        "vaultsync_reconciles_in_flight{controller=\"ExternalSecret\"}",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    // A failing ExternalSecret is identifiable by its gauge.
    env.apply(external_secret(
        "broken",
        "vault",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": format!("{}/absent", env.prefix), "property": "v"}}]}),
    ))
    .await?;
    env.wait_ready("broken", "False").await?;
    let failing = format!(
        "vaultsync_externalsecret_status_condition{{namespace=\"{}\",name=\"broken\",condition=\"Ready\",status=\"False\"}} 1",
        env.namespace
    );
    let metrics = get("/metrics").await?.text().await?;
    assert!(metrics.contains(&failing), "{failing} missing from:\n{metrics}");
    let logins: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vaultsync_vault_logins_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default();
    assert!(logins >= 1.0, "{metrics}");
    env.cleanup().await;
    Ok(())
}
