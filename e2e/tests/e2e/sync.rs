//! Happy paths: token and AppRole auth, KV v1 and v2, version pinning,
//! properties, refresh and drift repair.

use std::time::Duration;

use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret, owners};

#[tokio::test]
async fn token_auth_kv2_writes_secret_with_owner_reference() -> anyhow::Result<()> {
    let env = TestEnv::new("token-kv2").await?;
    let password = env.secret_value("password");
    let user = env.secret_value("user");
    env.bao.kv2_put(&format!("{}/db", env.prefix), json!({"username": user, "password": password})).await?;
    let token = env.bao.token_with_policy(&env.prefix, &env.read_policy()).await?;
    env.token_store("vault", &token, json!({})).await?;
    env.apply(external_secret(
        "db",
        "vault",
        json!({"data": [
            {"secretKey": "user", "remoteRef": {"key": format!("{}/db", env.prefix), "property": "username"}},
            {"secretKey": "pass", "remoteRef": {"key": format!("{}/db", env.prefix), "property": "password"}},
        ]}),
    ))
    .await?;

    let data = env.wait_secret("db").await?;
    assert_eq!(data.get("user"), Some(&user));
    assert_eq!(data.get("pass"), Some(&password));
    assert_eq!(data.len(), 2, "only the declared keys: {:?}", data.keys());
    let secret = env.secrets().get("db").await?;
    assert_eq!(owners(&secret), vec![("ExternalSecret".to_owned(), "db".to_owned())]);
    let (reason, _) = env.wait_ready("db", "True").await?;
    assert_eq!(reason, "SecretSynced");
    let es = env.external_secrets().get("db").await?;
    let status = es.status.expect("status");
    assert_eq!(status.binding.map(|b| b.name).as_deref(), Some("db"));
    assert!(status.refresh_time.is_some());
    assert_eq!(status.observed_generation, es.metadata.generation);
    env.wait_store_ready("vault", "True").await?;

    // Deleting the ExternalSecret removes the Secret it owns (garbage
    // collector of the real controller manager).
    env.external_secrets().delete("db", &Default::default()).await?;
    let secrets = env.secrets();
    eventually(Duration::from_secs(60), || async { Ok(secrets.get_opt("db").await?.is_none()) }).await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn kv1_mount_pinned_version_and_nested_property() -> anyhow::Result<()> {
    let env = TestEnv::new("kv-shapes").await?;
    let v1_value = env.secret_value("kv1");
    env.bao.kv1_put(&format!("{}/app", env.prefix), json!({"api-key": v1_value})).await?;
    let old = env.secret_value("old");
    let new = env.secret_value("new");
    let nested = env.secret_value("nested");
    let path = format!("{}/versioned", env.prefix);
    let first = env.bao.kv2_put(&path, json!({"value": old})).await?;
    env.bao.kv2_put(&path, json!({"value": new, "db": {"creds": {"user": nested}}})).await?;

    env.token_store("kv1", "root", json!({"path": "kv1", "version": "v1"})).await?;
    env.token_store("kv2", "root", json!({})).await?;
    env.apply(external_secret(
        "from-kv1",
        "kv1",
        json!({"data": [{"secretKey": "key", "remoteRef": {"key": format!("{}/app", env.prefix), "property": "api-key"}}]}),
    ))
    .await?;
    env.apply(external_secret(
        "pinned",
        "kv2",
        json!({"data": [
            {"secretKey": "old", "remoteRef": {"key": path, "property": "value", "version": first.to_string()}},
            {"secretKey": "latest", "remoteRef": {"key": path, "property": "value"}},
            {"secretKey": "user", "remoteRef": {"key": path, "property": "db.creds.user"}},
        ]}),
    ))
    .await?;

    assert_eq!(env.wait_secret("from-kv1").await?.get("key"), Some(&v1_value));
    let pinned = env.wait_secret("pinned").await?;
    assert_eq!(pinned.get("old"), Some(&old));
    assert_eq!(pinned.get("latest"), Some(&new));
    assert_eq!(pinned.get("user"), Some(&nested));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn approle_auth_and_data_from_extract() -> anyhow::Result<()> {
    let env = TestEnv::new("approle").await?;
    let a = env.secret_value("a");
    let b = env.secret_value("b");
    env.bao.kv2_put(&format!("{}/all", env.prefix), json!({"a": a, "b": b, "nested": {"n": 1}})).await?;
    env.write_read_policy().await?;
    env.bao
        .write(
            &format!("auth/approle/role/{}", env.prefix),
            json!({"token_policies": [env.prefix], "token_ttl": "10m"}),
        )
        .await?;
    let (role_id, secret_id) = env.bao.approle_credentials("approle", &env.prefix).await?;
    env.create_secret("approle", &[("secret-id", &secret_id)]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "approle"},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "path": "secret",
            "auth": {"appRole": {"path": "approle", "roleId": role_id, "secretRef": {"name": "approle", "key": "secret-id"}}},
        }}},
    }))
    .await?;
    env.apply(external_secret(
        "all",
        "approle",
        json!({"dataFrom": [{"extract": {"key": format!("{}/all", env.prefix)}}]}),
    ))
    .await?;

    let data = env.wait_secret("all").await?;
    assert_eq!(data.get("a"), Some(&a));
    assert_eq!(data.get("b"), Some(&b));
    assert_eq!(data.get("nested").map(String::as_str), Some(r#"{"n":1}"#));
    env.wait_store_ready("approle", "True").await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn changed_value_reaches_the_secret_within_refresh_interval() -> anyhow::Result<()> {
    let env = TestEnv::new("refresh").await?;
    let path = format!("{}/rotating", env.prefix);
    let first = env.secret_value("first");
    env.bao.kv2_put(&path, json!({"v": first})).await?;
    env.token_store("vault", "root", json!({})).await?;
    env.apply(external_secret(
        "rotating",
        "vault",
        json!({"refreshInterval": "3s", "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("rotating").await?.get("v"), Some(&first));

    let second = env.secret_value("second");
    env.bao.kv2_put(&path, json!({"v": second})).await?;
    let started = std::time::Instant::now();
    let secrets = env.secrets();
    // 3s interval + at most 10% jitter; the margin covers a loaded machine.
    eventually(Duration::from_secs(20), || async {
        let secret = secrets.get("rotating").await?;
        Ok(secret.data.unwrap_or_default().get("v").map(|v| v.0.clone()) == Some(second.clone().into_bytes()))
    })
    .await?;
    eprintln!("rotation reached the Secret after {:?}", started.elapsed());
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn edited_or_deleted_secret_is_restored() -> anyhow::Result<()> {
    let env = TestEnv::new("drift").await?;
    let value = env.secret_value("drift");
    env.bao.kv2_put(&format!("{}/app", env.prefix), json!({"token": value})).await?;
    env.token_store("vault", "root", json!({})).await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({"data": [{"secretKey": "token", "remoteRef": {"key": format!("{}/app", env.prefix), "property": "token"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("token"), Some(&value));
    let secrets = env.secrets();
    let holds_value = || async {
        let secret = secrets.get_opt("app").await?;
        Ok(secret.and_then(|s| s.data).and_then(|d| d.get("token").map(|v| v.0.clone()))
            == Some(value.clone().into_bytes()))
    };

    // Edited by hand: the data is put back.
    secrets
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"stringData": {"token": "tampered"}})),
        )
        .await?;
    eventually(Duration::from_secs(30), holds_value).await?;

    // Deleted: it is created again.
    secrets.delete("app", &Default::default()).await?;
    eventually(Duration::from_secs(30), holds_value).await?;
    env.cleanup().await;
    Ok(())
}
