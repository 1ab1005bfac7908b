//! remoteRef options: metadataPolicy Fetch (KV v2 custom_metadata) and
//! conversionStrategy Unicode on extracted keys; extract with a property.

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
    let nested_path = format!("{}/nested", env.prefix);
    let inner = env.secret_value("inner");
    env.bao.kv2_put(&nested_path, json!({"db": {"user": "app", "password": inner}, "other": "x"})).await?;
    env.apply(external_secret(
        "app",
        "vault",
        json!({
            "data": [{"secretKey": "owner", "remoteRef": {"key": path, "property": "owner", "metadataPolicy": "Fetch"}}],
            "dataFrom": [
                {"extract": {"key": path, "conversionStrategy": "Unicode"}},
                // With a property, only that sub-object is extracted.
                {"extract": {"key": nested_path, "property": "db"}},
            ],
        }),
    ))
    .await?;
    let data = env.wait_secret("app").await?;
    assert_eq!(data.get("owner").map(String::as_str), Some("team-a"));
    assert_eq!(data.get("tls.crt"), Some(&value));
    assert_eq!(data.get("password"), Some(&inner));
    assert_eq!(data.get("user").map(String::as_str), Some("app"));
    assert_eq!(data.len(), 4, "{:?}", data.keys());
    env.cleanup().await;
    Ok(())
}
