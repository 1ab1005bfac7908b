//! One login per store identity, token renewal and re-login, counted in
//! OpenBao's own audit log.

use std::time::Duration;

use serde_json::json;
use vaultsync_e2e::{Bao, TestEnv, eventually, external_secret};

/// An AppRole mount of the test's own, so its logins can be counted.
async fn approle_store(env: &TestEnv, token_ttl: &str, token_max_ttl: &str) -> anyhow::Result<String> {
    let mount = format!("approle-{}", env.prefix);
    env.bao.write(&format!("sys/auth/{mount}"), json!({"type": "approle"})).await?;
    env.write_read_policy().await?;
    env.bao
        .write(
            &format!("auth/{mount}/role/app"),
            json!({"token_policies": [env.prefix], "token_ttl": token_ttl, "token_max_ttl": token_max_ttl}),
        )
        .await?;
    let (role_id, secret_id) = env.bao.approle_credentials(&mount, "app").await?;
    env.create_secret("approle", &[("secret-id", &secret_id)]).await?;
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "vault"},
        "spec": {"provider": {"vault": {
            "server": env.bao.addr, "path": "secret",
            "auth": {"appRole": {"path": mount, "roleId": role_id, "secretRef": {"name": "approle"}}},
        }}},
    }))
    .await?;
    Ok(mount)
}

/// Keeps changing the value and checks every ExternalSecret follows, for
/// `rounds` rounds; returns how long that took.
async fn keep_rotating(env: &TestEnv, path: &str, names: &[String], rounds: usize) -> anyhow::Result<()> {
    for round in 0..rounds {
        let value = env.secret_value(&format!("round{round}"));
        env.bao.kv2_put(path, json!({"v": value})).await?;
        for name in names {
            let secrets = env.secrets();
            let expected = value.clone().into_bytes();
            eventually(Duration::from_secs(20), || async {
                let data = secrets.get(name).await?.data.unwrap_or_default();
                Ok(data.get("v").map(|v| v.0.clone()) == Some(expected.clone()))
            })
            .await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}

#[tokio::test]
async fn many_external_secrets_share_one_login_that_is_renewed() -> anyhow::Result<()> {
    let env = TestEnv::new("one-login").await?;
    // A 6s token: without renewal the client would have to log in again
    // every few seconds during this test.
    let mount = approle_store(&env, "6s", "1h").await?;
    let path = format!("{}/shared", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("initial")})).await?;
    let names: Vec<String> = (0..4).map(|i| format!("app-{i}")).collect();
    for name in &names {
        env.apply(external_secret(
            name,
            "vault",
            json!({"refreshInterval": "1s", "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
        ))
        .await?;
    }
    for name in &names {
        env.wait_secret(name).await?;
    }
    // About 3 TTLs of continuous reads by 4 ExternalSecrets and the store check.
    keep_rotating(&env, &path, &names, 5).await?;

    let logins = Bao::audited_responses(&format!("auth/{mount}/login"))?;
    let reads = Bao::audited_responses(&format!("secret/data/{path}"))?;
    eprintln!("one-login: {logins} login(s), {reads} reads of the shared path");
    assert_eq!(logins, 1, "4 ExternalSecrets and their store must share one login, renewed rather than repeated");
    assert!(reads >= 4 * 5, "the ExternalSecrets kept reading ({reads} reads)");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn token_past_its_max_ttl_is_replaced_by_a_new_login() -> anyhow::Result<()> {
    let env = TestEnv::new("relogin").await?;
    // Renewable, but only up to 4s in all: the client must log in again.
    let mount = approle_store(&env, "3s", "4s").await?;
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": env.secret_value("initial")})).await?;
    let names = vec!["app".to_owned()];
    env.apply(external_secret(
        "app",
        "vault",
        json!({"refreshInterval": "1s", "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
    ))
    .await?;
    env.wait_secret("app").await?;
    keep_rotating(&env, &path, &names, 4).await?;

    let logins = Bao::audited_responses(&format!("auth/{mount}/login"))?;
    eprintln!("relogin: {logins} login(s)");
    assert!(logins >= 2, "the token reached its max TTL, so a new login was needed ({logins})");
    let (reason, _) = env.wait_ready("app", "True").await?;
    assert_eq!(reason, "SecretSynced");
    env.cleanup().await;
    Ok(())
}
