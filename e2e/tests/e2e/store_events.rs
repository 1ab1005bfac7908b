//! Stores tell about themselves: a failing SecretStore gets a Warning Event,
//! a recovered one a Normal Event, and a store reported not Ready is checked
//! again as soon as an ExternalSecret syncs through it, instead of showing
//! Ready=False until its own backoff runs out.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret};

/// (type, reason, message) of every Event about SecretStore `name`.
async fn store_events(env: &TestEnv, name: &str) -> anyhow::Result<Vec<(String, String, String)>> {
    let api: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let fields = format!("involvedObject.name={name},involvedObject.kind=SecretStore");
    Ok(api
        .list(&ListParams::default().fields(&fields))
        .await?
        .items
        .into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect())
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
        Ok(store_events(&env, "vault").await?.iter().any(|(t, _, m)| t == "Warning" && *m == message))
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
        Ok(store_events(&env, "vault").await?.iter().any(|(t, r, _)| t == "Normal" && r == "Valid"))
    })
    .await?;
    env.cleanup().await;
    Ok(())
}
