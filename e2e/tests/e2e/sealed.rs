//! A sealed Vault: Ready=False with a message that says so, the Secret left
//! as it was, and recovery once it is unsealed. The test runs its own
//! OpenBao dev server, since sealing the shared one would break the others.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use vaultsync_e2e::{Bao, PrivateBao, TestEnv, eventually, external_secret};

#[tokio::test]
async fn sealed_vault_keeps_the_secret_and_recovers() -> anyhow::Result<()> {
    let env = TestEnv::new("sealed").await?;
    let server = PrivateBao::start(&env.prefix).await?;
    let bao = Bao::at(&server.addr, "root");
    let value = env.secret_value("sealed");
    bao.kv2_put("app/db", json!({"password": value})).await?;
    env.token_store("private", "root", json!({"server": server.addr})).await?;
    env.apply(external_secret(
        "app",
        "private",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]}),
    ))
    .await?;
    assert_eq!(env.wait_secret("app").await?.get("password"), Some(&value));
    env.wait_ready("app", "True").await?;
    let resource_version = env.secrets().get("app").await?.metadata.resource_version;

    bao.call(reqwest::Method::PUT, "sys/seal", None).await?;
    let force_sync = |token: &str| {
        let patch = json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": token}}});
        let api = env.external_secrets();
        async move { api.patch("app", &PatchParams::default(), &Patch::Merge(patch)).await }
    };
    force_sync("sealed").await?;
    let (reason, message) = env.wait_ready("app", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("sealed") && message.contains(&server.addr), "{message}");
    assert_eq!(env.secrets().get("app").await?.metadata.resource_version, resource_version);
    assert_eq!(env.secret_data("app").await?.get("password"), Some(&value), "the Secret must be kept");

    bao.call(reqwest::Method::PUT, "sys/unseal", Some(json!({"key": server.unseal_key()?}))).await?;
    let updated = env.secret_value("unsealed");
    bao.kv2_put("app/db", json!({"password": updated})).await?;
    force_sync("unsealed").await?;
    env.wait_ready("app", "True").await?;
    eventually(Duration::from_secs(30), || async {
        Ok(env.secret_data("app").await?.get("password") == Some(&updated))
    })
    .await?;
    env.cleanup().await;
    Ok(())
}
