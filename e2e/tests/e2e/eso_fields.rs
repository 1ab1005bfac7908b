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

/// `syncWindows` on the real API server and OpenBao: an open deny window
/// holds the refreshes `refreshInterval` asks for, a force-sync is not
/// held, and an open allow window lets them run.
#[tokio::test]
async fn sync_windows_hold_periodic_refreshes() -> anyhow::Result<()> {
    let env = TestEnv::new("sync-windows").await?;
    let path = format!("{}/app", env.prefix);
    let values: Vec<String> = (0..4).map(|i| env.secret_value(&format!("window-{i}"))).collect();
    env.bao.kv2_put(&path, json!({"v": values[0]})).await?;
    env.token_store("vault", "root", json!({})).await?;
    let always_open = json!([{"schedule": "* * * * *", "duration": "1h"}]);
    let windowed = |kind: &str| {
        let mut es = external_secret(
            "windowed",
            "vault",
            json!({"refreshInterval": "1s", "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
        );
        es["spec"]["syncWindows"] = json!({"kind": kind, "windows": always_open});
        es
    };
    env.apply(windowed("deny")).await?;
    assert_eq!(env.wait_secret("windowed").await?.get("v"), Some(&values[0]), "a first sync is never held");

    env.bao.kv2_put(&path, json!({"v": values[1]})).await?;
    // Several refresh intervals pass inside the open deny window.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(env.secret_data("windowed").await?.get("v"), Some(&values[0]), "held by the deny window");

    let es_api = env.external_secrets();
    let force = json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": "now"}}});
    es_api.patch("windowed", &PatchParams::default(), &Patch::Merge(&force)).await?;
    vaultsync_e2e::eventually(std::time::Duration::from_secs(30), || async {
        Ok(env.secret_data("windowed").await?.get("v") == Some(&values[1]))
    })
    .await
    .map_err(|e| e.context("a force-sync was held by the window"))?;

    // The same window as `allow`: refreshes run again.
    env.apply(windowed("allow")).await?;
    env.bao.kv2_put(&path, json!({"v": values[2]})).await?;
    vaultsync_e2e::eventually(std::time::Duration::from_secs(30), || async {
        Ok(env.secret_data("windowed").await?.get("v") == Some(&values[2]))
    })
    .await
    .map_err(|e| e.context("an open allow window held a periodic refresh"))?;
    env.cleanup().await;
    Ok(())
}

/// `templateFrom[].valuesDecodingStrategy` (ESO's): the values a
/// templateFrom entry renders are decoded after rendering.
#[tokio::test]
async fn template_values_are_decoded_as_asked() -> anyhow::Result<()> {
    use base64::Engine;
    let env = TestEnv::new("values-decoding").await?;
    let value = env.secret_value("decoded");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
    env.record_secret(&encoded);
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"one": encoded})).await?;
    env.token_store("vault", "root", json!({})).await?;
    let mut es = external_secret(
        "decoded",
        "vault",
        json!({"data": [{"secretKey": "one", "remoteRef": {"key": path, "property": "one"}}]}),
    );
    es["spec"]["target"] = json!({"template": {"templateFrom": [
        {"literal": "plain: \"{{ .one }}\"", "valuesDecodingStrategy": "Base64"}]}});
    env.apply(es).await?;
    let data = env.wait_secret("decoded").await?;
    assert_eq!(data.get("plain"), Some(&value), "rendered, then decoded");
    env.cleanup().await;
    Ok(())
}

/// `data[].sourceRef.storeRef` and `dataFrom[].sourceRef.storeRef`: an
/// entry reads from the store it names (here a KV v1 store beside the
/// ExternalSecret's KV v2 one), and that store is checked as
/// `secretStoreRef` would be: a ClusterSecretStore whose conditions leave
/// the namespace out refuses the whole sync, and the Secret keeps what it
/// held.
#[tokio::test]
async fn entries_read_from_the_store_they_name() -> anyhow::Result<()> {
    let env = TestEnv::new("source-ref").await?;
    let path = format!("{}/app", env.prefix);
    let (in_v2, in_v1, other) = (env.secret_value("kv2"), env.secret_value("kv1"), env.secret_value("kv1-w"));
    env.bao.kv2_put(&path, json!({"v": in_v2})).await?;
    env.bao.kv1_put(&path, json!({"v": in_v1, "w": other})).await?;
    env.token_store("kv2", "root", json!({})).await?;
    env.token_store("kv1", "root", json!({"path": "kv1", "version": "v1"})).await?;
    // A store's retrySettings (ESO's) are read, not refused.
    let retries = json!({"spec": {"retrySettings": {"maxRetries": 2, "retryInterval": "100ms"}}});
    env.stores().patch("kv1", &PatchParams::default(), &Patch::Merge(&retries)).await?;
    let kv1 = json!({"storeRef": {"name": "kv1"}});
    let spec = json!({
        "data": [
            {"secretKey": "a", "remoteRef": {"key": path, "property": "v"}},
            {"secretKey": "b", "remoteRef": {"key": path, "property": "v"}, "sourceRef": kv1},
        ],
        "dataFrom": [{"extract": {"key": path}, "sourceRef": kv1,
                      "rewrite": [{"regexp": {"source": "^", "target": "v1-"}}]}],
    });
    env.apply(external_secret("mixed", "kv2", spec.clone())).await?;
    let data = env.wait_secret("mixed").await?;
    assert_eq!(data.get("a"), Some(&in_v2), "secretStoreRef's store");
    assert_eq!(data.get("b"), Some(&in_v1), "data[].sourceRef's store");
    assert_eq!((data.get("v1-v"), data.get("v1-w")), (Some(&in_v1), Some(&other)), "dataFrom[].sourceRef's store");

    // An entry's ClusterSecretStore that does not allow this namespace.
    let closed = format!("closed-{}", env.prefix);
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterSecretStore",
        "metadata": {"name": closed},
        "spec": {
            "provider": {"vault": {"server": env.bao.addr, "path": "secret",
                "auth": {"tokenSecretRef": {"name": "kv2-token", "key": "token", "namespace": env.namespace}}}},
            "conditions": [{"namespaces": ["somewhere-else"]}],
        },
    }))
    .await?;
    let mut spec = spec;
    spec["data"][1]["sourceRef"] = json!({"storeRef": {"name": closed, "kind": "ClusterSecretStore"}});
    env.apply(external_secret("mixed", "kv2", spec)).await?;
    let (_, message) = env.wait_ready("mixed", "False").await?;
    assert!(message.contains(&closed) && message.contains("does not allow namespace"), "{message}");
    assert_eq!(env.secret_data("mixed").await?, data, "the Secret keeps what it held");

    env.cluster_stores().delete(&closed, &Default::default()).await?;
    env.cleanup().await;
    Ok(())
}
