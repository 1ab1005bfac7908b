//! ESO fields vaultsync's own API gained for the drop-in (issue 22), on
//! the real API server and OpenBao: `creationPolicy: CreateOrMerge`,
//! `template.metadata.finalizers`, `nullBytePolicy`.

use kube::api::{Patch, PatchParams};
use serde_json::json;
use vaultsync_e2e::{TestEnv, external_secret};

/// CreateOrMerge creates a missing Secret without an owner, and merges into
/// an existing one (its keys and type kept); template finalizers reach the
/// Secret.
#[tokio::test]
async fn create_or_merge_and_template_finalizers() -> anyhow::Result<()> {
    let env = TestEnv::new("eso-fields").await?;
    let value = env.secret_value("com");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.token_store("vault", "root", json!({})).await?;
    let data = json!({"data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]});

    let mut created = external_secret("created", "vault", data.clone());
    created["spec"]["target"]["creationPolicy"] = json!("CreateOrMerge");
    created["spec"]["target"]["template"] = json!({"metadata": {"finalizers": ["e2e.vaultsync.dev/keep"]}});
    env.apply(created).await?;
    assert_eq!(env.wait_secret("created").await?.get("v"), Some(&value));
    let secret = env.secrets().get("created").await?;
    assert!(secret.metadata.owner_references.unwrap_or_default().is_empty(), "no owner reference");
    assert_eq!(secret.metadata.finalizers, Some(vec!["e2e.vaultsync.dev/keep".to_owned()]));
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));

    env.apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "theirs"},
        "type": "example.com/custom", "stringData": {"mine": "kept"}}))
        .await?;
    let mut merged = external_secret("theirs", "vault", data);
    merged["spec"]["target"]["creationPolicy"] = json!("CreateOrMerge");
    env.apply(merged).await?;
    env.wait_ready("theirs", "True").await?;
    let got = env.secret_data("theirs").await?;
    assert_eq!((got.get("mine"), got.get("v")), (Some(&"kept".to_owned()), Some(&value)));
    assert_eq!(env.secrets().get("theirs").await?.type_.as_deref(), Some("example.com/custom"));

    // The finalizer is ours to take off, or the namespace never goes.
    env.external_secrets().delete("created", &Default::default()).await?;
    env.secrets()
        .patch("created", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await?;
    env.cleanup().await;
    Ok(())
}

/// nullBytePolicy: Fail refuses a value with a NUL byte, naming the key.
#[tokio::test]
async fn null_byte_policy_fail_names_the_key() -> anyhow::Result<()> {
    let env = TestEnv::new("nul").await?;
    let path = format!("{}/bin", env.prefix);
    env.bao.kv2_put(&path, json!({"v": "a\u{0}b"})).await?;
    env.token_store("vault", "root", json!({})).await?;
    env.apply(external_secret(
        "bin",
        "vault",
        json!({"data": [{"secretKey": "blob", "remoteRef": {"key": path, "property": "v", "nullBytePolicy": "Fail"}}]}),
    ))
    .await?;
    let (_, message) = env.wait_ready("bin", "False").await?;
    assert!(message.contains("\"blob\"") && message.contains("NUL byte"), "{message}");
    assert!(env.secrets().get_opt("bin").await?.is_none());
    env.cleanup().await;
    Ok(())
}
