//! Stores tell about themselves: a failing SecretStore gets a Warning Event,
//! a recovered one a Normal Event, and a store reported not Ready is checked
//! again as soon as an ExternalSecret syncs through it, instead of showing
//! Ready=False until its own backoff runs out.

use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use serde_json::json;
use vaultsync_e2e::{Seen, TestEnv, events_about, eventually, external_secret};

/// Every Event about SecretStore `name`.
async fn store_events(env: &TestEnv, name: &str) -> anyhow::Result<Vec<Seen>> {
    events_about(&env.client, &env.namespace, "SecretStore", name).await
}

#[tokio::test]
async fn a_store_reports_failure_and_recovery() -> anyhow::Result<()> {
    let env = TestEnv::new("storeevents").await?;
    let path = format!("{}/app", env.prefix);
    let value = env.secret_value("storeevents");
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    // A token OpenBao does not know.
    env.token_store("vault", "not-a-token", json!({})).await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    let (_, message) = env.wait_store_ready("vault", "False").await?;
    eventually(Duration::from_secs(30), || async {
        Ok(store_events(&env, "vault").await?.iter().any(|e| e.type_ == "Warning" && e.message == message))
    })
    .await?;

    // Let the store's own backoff grow past what the test allows below: it
    // failed at 0s, 5s and 15s and would look again at 35s.
    tokio::time::sleep(Duration::from_secs(16)).await;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let stamp = k8s_openapi::jiff::Timestamp::now().to_string();
    env.external_secrets()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": stamp}}})),
        )
        .await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    let synced = Instant::now();
    env.wait_store_ready("vault", "True").await?;
    let lag = synced.elapsed();
    vaultsync_e2e::report(&format!(
        "store events: store Ready again {lag:?} after an ExternalSecret synced through it"
    ));
    assert!(lag < Duration::from_secs(5), "the store kept Ready=False for {lag:?} after a sync proved it works");
    eventually(Duration::from_secs(30), || async {
        Ok(store_events(&env, "vault").await?.iter().any(|e| e.type_ == "Normal" && e.reason == "Valid"))
    })
    .await?;
    env.cleanup().await;
    Ok(())
}
