//! A server with a certificate from a private CA: trusted through caBundle
//! or caProvider, refused without.

use base64::Engine;
use serde_json::{Value, json};
use vaultsync_e2e::{Bao, TestEnv, external_secret};

fn tls_store(name: &str, addr: &str, ca: Value) -> Value {
    let mut vault = json!({"server": addr, "path": "secret", "auth": {"tokenSecretRef": {"name": "tls-token"}}});
    vaultsync_e2e::merge(&mut vault, ca);
    json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"vault": vault}},
    })
}

#[tokio::test]
async fn private_ca_is_trusted_only_when_configured() -> anyhow::Result<()> {
    let env = TestEnv::new("tls").await?;
    let tls = Bao::tls_from_env()?;
    let value = env.secret_value("tls");
    let path = format!("{}/app", env.prefix);
    tls.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("tls-token", &[("token", "root")]).await?;
    let pem = Bao::tls_ca_pem()?;
    env.apply(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vault-ca"}, "data": {"ca.pem": pem}}),
    )
    .await?;
    let bundle = base64::engine::general_purpose::STANDARD.encode(&pem);

    env.apply(tls_store("bundle", &tls.addr, json!({"caBundle": bundle}))).await?;
    env.apply(tls_store(
        "provider",
        &tls.addr,
        json!({"caProvider": {"type": "ConfigMap", "name": "vault-ca", "key": "ca.pem"}}),
    ))
    .await?;
    env.create_secret("vault-ca-secret", &[("ca.crt", &pem)]).await?;
    env.apply(tls_store(
        "provider-secret",
        &tls.addr,
        json!({"caProvider": {"type": "Secret", "name": "vault-ca-secret", "key": "ca.crt"}}),
    ))
    .await?;
    env.apply(tls_store("untrusted", &tls.addr, json!({}))).await?;
    let data = |store: &str| json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}], "secretStoreRef": {"name": store}});
    env.apply(external_secret("via-bundle", "bundle", data("bundle"))).await?;
    env.apply(external_secret("via-provider", "provider", data("provider"))).await?;
    env.apply(external_secret("via-provider-secret", "provider-secret", data("provider-secret"))).await?;
    env.apply(external_secret("untrusted", "untrusted", data("untrusted"))).await?;

    assert_eq!(env.wait_secret("via-bundle").await?.get("v"), Some(&value));
    assert_eq!(env.wait_secret("via-provider").await?.get("v"), Some(&value));
    assert_eq!(env.wait_secret("via-provider-secret").await?.get("v"), Some(&value));
    let (_, message) = env.wait_ready("untrusted", "False").await?;
    assert!(message.to_lowercase().contains("certificate") || message.contains("UnknownIssuer"), "{message}");
    assert!(env.secrets().get_opt("untrusted").await?.is_none());
    env.cleanup().await;
    Ok(())
}
