//! Target policies: creationPolicy, immutable, decoding, and refusing to
//! take over a Secret vaultsync does not manage.

use std::time::Duration;

use base64::Engine;
use kube::api::DeleteParams;
use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret, owners};

async fn seeded(env: &TestEnv, name: &str) -> anyhow::Result<(String, String)> {
    let value = env.secret_value(name);
    let path = format!("{}/{name}", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    Ok((path, value))
}

fn data(path: &str) -> serde_json::Value {
    json!([{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}])
}

#[tokio::test]
async fn creation_policies_orphan_merge_none() -> anyhow::Result<()> {
    let env = TestEnv::new("creation").await?;
    env.token_store("vault", "root", json!({})).await?;
    let (path, value) = seeded(&env, "v").await?;

    // Orphan: no owner reference; the Secret outlives its ExternalSecret.
    env.apply(external_secret("orphan", "vault", json!({"target": {"creationPolicy": "Orphan"}, "data": data(&path)})))
        .await?;
    assert_eq!(env.wait_secret("orphan").await?.get("v"), Some(&value));
    assert!(owners(&env.secrets().get("orphan").await?).is_empty());
    env.external_secrets().delete("orphan", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(env.secrets().get_opt("orphan").await?.is_some(), "an orphan Secret stays");

    // Merge: adds keys to an existing Secret and leaves the others.
    env.create_secret("existing", &[("keep", "mine")]).await?;
    env.apply(external_secret(
        "merge",
        "vault",
        json!({"target": {"name": "existing", "creationPolicy": "Merge"}, "data": data(&path)}),
    ))
    .await?;
    let secrets = env.secrets();
    eventually(Duration::from_secs(30), || async { Ok(env.secret_data("existing").await?.get("v") == Some(&value)) })
        .await?;
    assert_eq!(env.secret_data("existing").await?.get("keep").map(String::as_str), Some("mine"));
    assert!(owners(&secrets.get("existing").await?).is_empty(), "Merge does not take ownership");

    // Merge into a Secret that does not exist: an error, nothing created.
    env.apply(external_secret(
        "merge-missing",
        "vault",
        json!({"target": {"name": "absent", "creationPolicy": "Merge"}, "data": data(&path)}),
    ))
    .await?;
    let (_, message) = env.wait_ready("merge-missing", "False").await?;
    assert!(message.contains("does not exist") && message.contains("Merge"), "{message}");
    assert!(secrets.get_opt("absent").await?.is_none());

    // None: values are read, nothing is written.
    env.apply(external_secret("none", "vault", json!({"target": {"creationPolicy": "None"}, "data": data(&path)})))
        .await?;
    let (reason, _) = env.wait_ready("none", "True").await?;
    assert_eq!(reason, "SecretSynced");
    assert!(secrets.get_opt("none").await?.is_none());
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn an_unmanaged_secret_is_never_overwritten() -> anyhow::Result<()> {
    let env = TestEnv::new("takeover").await?;
    env.token_store("vault", "root", json!({})).await?;
    let (path, _) = seeded(&env, "v").await?;
    env.create_secret("taken", &[("v", "hand-made")]).await?;
    let before = env.secrets().get("taken").await?.metadata.resource_version;
    env.apply(external_secret("taken", "vault", json!({"data": data(&path)}))).await?;
    let (_, message) = env.wait_ready("taken", "False").await?;
    assert!(message.contains("not managed by vaultsync"), "{message}");
    assert_eq!(env.secrets().get("taken").await?.metadata.resource_version, before);
    assert_eq!(env.secret_data("taken").await?.get("v").map(String::as_str), Some("hand-made"));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn decoding_strategies_and_immutable_target() -> anyhow::Result<()> {
    let env = TestEnv::new("decoding").await?;
    env.token_store("vault", "root", json!({})).await?;
    let plain = env.secret_value("plain");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&plain);
    let b64url = base64::engine::general_purpose::URL_SAFE.encode(&plain);
    let path = format!("{}/encoded", env.prefix);
    env.bao.kv2_put(&path, json!({"std": b64, "url": b64url, "raw": plain})).await?;
    let item = |key: &str, property: &str, strategy: &str| json!({"secretKey": key, "remoteRef": {"key": path, "property": property, "decodingStrategy": strategy}});
    env.apply(external_secret(
        "decoded",
        "vault",
        json!({"target": {"immutable": true}, "data": [
            item("base64", "std", "Base64"),
            item("base64url", "url", "Base64URL"),
            item("auto", "std", "Auto"),
            item("auto-raw", "raw", "Auto"),
            item("none", "std", "None"),
        ]}),
    ))
    .await?;
    let data = env.wait_secret("decoded").await?;
    assert_eq!(data.get("base64"), Some(&plain));
    assert_eq!(data.get("base64url"), Some(&plain));
    assert_eq!(data.get("auto"), Some(&plain));
    assert_eq!(data.get("auto-raw"), Some(&plain));
    assert_eq!(data.get("none"), Some(&b64));
    assert_eq!(env.secrets().get("decoded").await?.immutable, Some(true));

    // A value that is not base64 under Base64: a clear error.
    env.apply(external_secret("bad", "vault", json!({"data": [item("x", "raw", "Base64")]}))).await?;
    let (_, message) = env.wait_ready("bad", "False").await?;
    assert!(message.contains("Base64") && !message.contains(&plain), "{message}");
    env.cleanup().await;
    Ok(())
}
