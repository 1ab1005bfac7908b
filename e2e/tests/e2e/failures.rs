//! Failure paths: each one ends in Ready=False with a message a person can
//! act on, a Warning event, and the existing Secret left as it was.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vaultsync_e2e::{TestEnv, external_secret};

/// Syncs a good ExternalSecret, breaks it with `break_it`, and checks the
/// outcome. Returns the Ready=False message.
async fn break_after_sync(env: &TestEnv, name: &str, break_it: Value) -> anyhow::Result<String> {
    let value = env.secret_value(name);
    let path = format!("{}/{name}", env.prefix);
    env.bao.kv2_put(&path, json!({"key": value})).await?;
    let good = external_secret(
        name,
        "vault",
        json!({"data": [{"secretKey": "key", "remoteRef": {"key": path, "property": "key"}}]}),
    );
    env.apply(good).await?;
    let before: BTreeMap<String, String> = env.wait_secret(name).await?;
    assert_eq!(before.get("key"), Some(&value));
    env.wait_ready(name, "True").await?;
    let resource_version = env.secrets().get(name).await?.metadata.resource_version;

    env.apply(external_secret(name, "vault", break_it)).await?;
    let (reason, message) = env.wait_ready(name, "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    let warning = env.wait_warning(name).await?;
    assert!(warning.contains(&message) || !warning.is_empty(), "warning: {warning}");

    let after = env.secrets().get(name).await?;
    assert_eq!(after.metadata.resource_version, resource_version, "the existing Secret must not be touched");
    assert!(!message.contains(&value), "the message must not contain the value");
    Ok(message)
}

#[tokio::test]
async fn missing_key_missing_path_and_permission_denied() -> anyhow::Result<()> {
    let env = TestEnv::new("failures").await?;
    // The token may read only this test's `readable/` prefix... and the
    // secrets the good specs use.
    let policy = format!(
        "path \"secret/data/{p}/*\" {{ capabilities = [\"read\"] }}\npath \"secret/data/{p}/forbidden/*\" {{ capabilities = [\"deny\"] }}",
        p = env.prefix
    );
    let token = env.bao.token_with_policy(&env.prefix, &policy).await?;
    env.token_store("vault", &token, json!({})).await?;

    let path = |name: &str| format!("{}/{name}", env.prefix);
    let message = break_after_sync(
        &env,
        "missing-key",
        json!({"data": [{"secretKey": "key", "remoteRef": {"key": path("missing-key"), "property": "nope"}}]}),
    )
    .await?;
    assert!(message.contains("\"nope\"") && message.contains("not found"), "{message}");

    let message = break_after_sync(
        &env,
        "missing-path",
        json!({"data": [{"secretKey": "key", "remoteRef": {"key": path("does/not/exist"), "property": "key"}}]}),
    )
    .await?;
    assert!(message.contains("does/not/exist") && message.to_lowercase().contains("not found"), "{message}");

    env.bao.kv2_put(&path("forbidden/x"), json!({"key": env.secret_value("forbidden")})).await?;
    let message = break_after_sync(
        &env,
        "denied",
        json!({"data": [{"secretKey": "key", "remoteRef": {"key": path("forbidden/x"), "property": "key"}}]}),
    )
    .await?;
    assert!(message.to_lowercase().contains("permission denied") && message.contains("forbidden/x"), "{message}");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn unreachable_server_keeps_the_secret() -> anyhow::Result<()> {
    let env = TestEnv::new("unreachable").await?;
    env.token_store("vault", "root", json!({})).await?;
    let value = env.secret_value("unreachable");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"key": value})).await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "key", "remoteRef": {"key": path, "property": "key"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("key"), Some(&value));
    let resource_version = env.secrets().get("app").await?.metadata.resource_version;

    // Point the store at a closed port: nothing listens on port 1.
    env.token_store("vault", "root", json!({"server": "http://127.0.0.1:1"})).await?;
    // Force a new read now rather than at the next hourly refresh.
    env.apply(external_secret(
        "app",
        "vault",
        json!({"refreshInterval": "2s", "data": [{"secretKey": "key", "remoteRef": {"key": path, "property": "key"}}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("app", "False").await?;
    assert!(message.contains("127.0.0.1:1") && message.to_lowercase().contains("unreachable"), "{message}");
    env.wait_warning("app").await?;
    let (_, store_message) = env.wait_store_ready("vault", "False").await?;
    assert!(store_message.contains("127.0.0.1:1"), "{store_message}");
    assert_eq!(env.secrets().get("app").await?.metadata.resource_version, resource_version);
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn store_not_found_is_reported() -> anyhow::Result<()> {
    let env = TestEnv::new("no-store").await?;
    env.apply(external_secret("app", "absent", json!({"data": [{"secretKey": "k", "remoteRef": {"key": "x"}}]})))
        .await?;
    let (_, message) = env.wait_ready("app", "False").await?;
    assert!(message.contains("\"absent\"") && message.contains("not found"), "{message}");
    env.cleanup().await;
    Ok(())
}
