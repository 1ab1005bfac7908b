//! The operator's /live, /ready and /metrics endpoints.

use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

#[tokio::test]
async fn live_ready_and_metrics() -> anyhow::Result<()> {
    let env = TestEnv::new("health").await?;
    // A token that expires (an hour), so its TTL is exported.
    let token = env.bao.token_with_policy(&env.prefix, &env.read_policy()).await?;
    env.record_secret(&token);
    env.token_store("vault", &token, json!({})).await?;
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("health")})).await?;
    // Several ExternalSecrets reading one secret at once share its read.
    let names = ["app", "app-b", "app-c", "app-d", "app-e"];
    for name in names {
        env.apply(external_secret(
            name,
            "vault",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
        ))
        .await?;
    }
    for name in names {
        env.wait_secret(name).await?;
    }

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
        "vaultsync_vault_requests_total{operation=\"read\",status=\"200\"}",
        "vaultsync_vault_requests_total{operation=\"lookup_self\",status=\"200\"}",
        "vaultsync_vault_request_duration_seconds_count{operation=\"read\"}",
        "vaultsync_vault_login_attempts_total{method=\"token\",outcome=\"success\"}",
        "vaultsync_reconciles_due{controller=\"ExternalSecret\"}",
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
    // A store whose token Vault does not know: a refused login.
    env.token_store("unknown-token", "not-a-token-vault-knows", json!({})).await?;
    env.apply(external_secret(
        "refused",
        "unknown-token",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    env.wait_ready("refused", "False").await?;
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
    let value = |series: &str| {
        vaultsync_e2e::sample(&metrics, series).unwrap_or_else(|| panic!("{series} missing from:\n{metrics}"))
    };
    assert!(value("vaultsync_vault_requests_total{operation=\"read\",status=\"404\"}") >= 1.0);
    assert!(value("vaultsync_vault_login_attempts_total{method=\"token\",outcome=\"refused\"}") >= 1.0);
    assert!(value("vaultsync_vault_coalesced_reads_total") >= 1.0, "5 reads of one secret at once share requests");
    let ttl = value(&format!(
        "vaultsync_vault_token_ttl_seconds{{store_kind=\"SecretStore\",store_namespace=\"{}\",store_name=\"vault\",namespace=\"\"}}",
        env.namespace
    ));
    assert!(ttl > 0.0 && ttl <= 3600.0, "the store's token has an hour at most: {ttl}");
    env.cleanup().await;
    Ok(())
}
