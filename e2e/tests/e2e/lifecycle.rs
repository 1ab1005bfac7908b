//! When vaultsync reads again (refreshPolicy, refreshInterval 0, the
//! force-sync annotation) and what happens when remote secrets disappear
//! (deletionPolicy).

use std::time::Duration;

use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret};

async fn value_of(env: &TestEnv, secret: &str) -> anyhow::Result<Option<String>> {
    Ok(env
        .secrets()
        .get_opt(secret)
        .await?
        .and_then(|s| s.data)
        .and_then(|d| d.get("v").map(|v| String::from_utf8_lossy(&v.0).into_owned())))
}

async fn wait_value(env: &TestEnv, secret: &str, expected: &str) -> anyhow::Result<()> {
    eventually(Duration::from_secs(30), || async { Ok(value_of(env, secret).await?.as_deref() == Some(expected)) })
        .await
}

#[tokio::test]
async fn refresh_policies_and_force_sync() -> anyhow::Result<()> {
    let env = TestEnv::new("refresh-policy").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/app", env.prefix);
    let first = env.secret_value("first");
    env.bao.kv2_put(&path, json!({"v": first})).await?;
    let spec = |extra: serde_json::Value| {
        let mut spec =
            json!({"refreshInterval": "1s", "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]});
        vaultsync_e2e::merge(&mut spec, extra);
        spec
    };
    env.apply(external_secret("on-change", "vault", spec(json!({"refreshPolicy": "OnChange"})))).await?;
    env.apply(external_secret("once", "vault", spec(json!({"refreshPolicy": "CreatedOnce"})))).await?;
    env.apply(external_secret("zero", "vault", spec(json!({"refreshInterval": "0"})))).await?;
    env.apply(external_secret("periodic", "vault", spec(json!({})))).await?;
    for name in ["on-change", "once", "zero", "periodic"] {
        wait_value(&env, name, &first).await?;
    }

    let second = env.secret_value("second");
    env.bao.kv2_put(&path, json!({"v": second})).await?;
    // The periodic one follows; by then the others would have too, had they
    // been refreshing.
    wait_value(&env, "periodic", &second).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in ["on-change", "once", "zero"] {
        assert_eq!(value_of(&env, name).await?.as_ref(), Some(&first), "{name} must not refresh by itself");
    }

    // A force-sync request reads again; ESO's plain annotation too.
    env.force_sync("on-change", "1").await?;
    env.force_sync_with("zero", "force-sync", "1").await?;
    wait_value(&env, "on-change", &second).await?;
    wait_value(&env, "zero", &second).await?;

    // CreatedOnce writes again only when its Secret is gone.
    assert_eq!(value_of(&env, "once").await?.as_ref(), Some(&first));
    env.secrets().delete("once", &Default::default()).await?;
    wait_value(&env, "once", &second).await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn deletion_policies_when_remote_secrets_disappear() -> anyhow::Result<()> {
    let env = TestEnv::new("deletion-policy").await?;
    env.token_store("vault", "root", json!({})).await?;
    let kept_path = format!("{}/kept", env.prefix);
    let gone_path = format!("{}/gone", env.prefix);
    let kept = env.secret_value("kept");
    let gone = env.secret_value("gone");
    env.bao.kv2_put(&kept_path, json!({"v": kept})).await?;
    env.bao.kv2_put(&gone_path, json!({"v": gone})).await?;
    let only_gone = json!([{"secretKey": "v", "remoteRef": {"key": gone_path, "property": "v"}}]);
    let both = json!([
        {"secretKey": "v", "remoteRef": {"key": kept_path, "property": "v"}},
        {"secretKey": "other", "remoteRef": {"key": gone_path, "property": "v"}},
    ]);
    let es = |policy: &str, data: &serde_json::Value| json!({"refreshInterval": "1s", "target": {"deletionPolicy": policy}, "data": data});
    env.apply(external_secret("retain", "vault", es("Retain", &only_gone))).await?;
    env.apply(external_secret("delete", "vault", es("Delete", &only_gone))).await?;
    env.apply(external_secret("merge", "vault", es("Merge", &both))).await?;
    env.apply(external_secret("delete-partial", "vault", es("Delete", &both))).await?;
    for name in ["retain", "delete", "merge", "delete-partial"] {
        env.wait_secret(name).await?;
        env.wait_ready(name, "True").await?;
    }
    let retained_version = env.secrets().get("retain").await?.metadata.resource_version;

    // The remote secret disappears, versions and all.
    env.bao.delete(&format!("secret/metadata/{gone_path}")).await?;

    // Retain: the Secret stays as it was, and the error is reported.
    let (reason, message) = env.wait_ready("retain", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("not found"), "{message}");
    assert_eq!(env.secrets().get("retain").await?.metadata.resource_version, retained_version);

    // Delete: all sources gone, so the Secret goes.
    let (reason, _) = env.wait_ready("delete", "False").await?;
    assert_eq!(reason, "SecretDeleted");
    let secrets = env.secrets();
    eventually(Duration::from_secs(30), || async { Ok(secrets.get_opt("delete").await?.is_none()) }).await?;

    // Merge, and Delete with a source left: only the vanished key goes.
    for name in ["merge", "delete-partial"] {
        eventually(Duration::from_secs(30), || async {
            let data = env.secret_data(name).await?;
            Ok(!data.contains_key("other") && data.get("v") == Some(&kept))
        })
        .await?;
        let (reason, _) = env.wait_ready(name, "True").await?;
        assert_eq!(reason, "SecretSynced");
    }
    env.cleanup().await;
    Ok(())
}
