//! remoteRef options: metadataPolicy Fetch (KV v2 custom_metadata) and
//! conversionStrategy Unicode on extracted keys.

use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

#[tokio::test]
async fn custom_metadata_and_unicode_key_conversion() -> anyhow::Result<()> {
    let env = TestEnv::new("remote-ref").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/app", env.prefix);
    let value = env.secret_value("dotted");
    env.bao.kv2_put(&path, json!({"tls_U002E_crt": value})).await?;
    env.bao.write(&format!("secret/metadata/{path}"), json!({"custom_metadata": {"owner": "team-a"}})).await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({
            "data": [{"secretKey": "owner", "remoteRef": {"key": path, "property": "owner", "metadataPolicy": "Fetch"}}],
            "dataFrom": [{"extract": {"key": path, "conversionStrategy": "Unicode"}}],
        }),
    ))
    .await?;
    let data = env.wait_secret("app").await?;
    assert_eq!(data.get("owner").map(String::as_str), Some("team-a"));
    assert_eq!(data.get("tls.crt"), Some(&value));
    assert_eq!(data.len(), 2, "{:?}", data.keys());
    env.cleanup().await;
    Ok(())
}
