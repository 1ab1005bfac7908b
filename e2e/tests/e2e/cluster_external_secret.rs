//! ClusterExternalSecret: one ExternalSecret per selected namespace,
//! following namespaces as they appear, change labels or conflict.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use vaultsync_api::ClusterExternalSecret;
use vaultsync_e2e::{Seen, TestEnv, events_about, eventually};

/// Every Event about ClusterExternalSecret `name` (cluster-scoped: its
/// Events are in `default`).
async fn ces_events(env: &TestEnv, name: &str) -> anyhow::Result<Vec<Seen>> {
    events_about(&env.client, "default", "ClusterExternalSecret", name).await
}

#[tokio::test]
async fn fans_out_to_selected_namespaces_and_follows_labels() -> anyhow::Result<()> {
    let mut env = TestEnv::new("ces").await?;
    let value = env.secret_value("ces");
    let path = format!("{}/shared", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("vault-token", &[("token", "root")]).await?;
    let store = format!("ces-store-{}", env.prefix);
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterSecretStore",
        "metadata": {"name": store},
        "spec": {"provider": {"vault": {"server": env.bao.addr, "path": "secret",
            "auth": {"tokenSecretRef": {"name": "vault-token", "namespace": env.namespace}}}}},
    }))
    .await?;
    let label = json!({"vaultsync-e2e-ces": env.prefix});
    let (a, b, plain, conflict) = (
        format!("{}-a", env.namespace),
        format!("{}-b", env.namespace),
        format!("{}-plain", env.namespace),
        format!("{}-conflict", env.namespace),
    );
    env.create_labelled_namespace(&a, label.clone()).await?;
    env.create_namespace(&plain).await?;
    env.create_labelled_namespace(&conflict, label.clone()).await?;
    // Someone else's ExternalSecret of the same name: must be left alone.
    env.in_namespace(&conflict)
        .apply(vaultsync_e2e::external_secret(
            "shared",
            "elsewhere",
            json!({"data": [{"secretKey": "k", "remoteRef": {"key": "x"}}]}),
        ))
        .await?;

    let name = format!("shared-{}", env.prefix);
    env.apply(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "externalSecretName": "shared",
            "refreshTime": "30s",
            "namespaceSelectors": [{"matchLabels": label}],
            "externalSecretSpec": {
                "secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
                "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}],
            },
        },
    }))
    .await?;
    assert_eq!(env.in_namespace(&a).wait_secret("shared").await?.get("v"), Some(&value));

    // A namespace labelled later is served too.
    env.create_labelled_namespace(&b, label.clone()).await?;
    assert_eq!(env.in_namespace(&b).wait_secret("shared").await?.get("v"), Some(&value));

    let api = kube::Api::<ClusterExternalSecret>::all(env.client.clone());
    let status = || async { Ok::<_, anyhow::Error>(api.get(&name).await?.status.unwrap_or_default()) };
    eventually(Duration::from_secs(30), || async {
        let s = status().await?;
        Ok(s.provisioned_namespaces == vec![a.clone(), b.clone()] && s.failed_namespaces.len() == 1)
    })
    .await?;
    let s = status().await?;
    assert_eq!(s.failed_namespaces[0].namespace, conflict);
    assert!(
        s.failed_namespaces[0].reason.contains("not managed by this ClusterExternalSecret"),
        "{:?}",
        s.failed_namespaces
    );
    let foreign = env.in_namespace(&conflict).external_secrets().get("shared").await?;
    assert_eq!(
        foreign.spec.secret_store_ref.as_ref().map(|r| r.name.as_str()),
        Some("elsewhere"),
        "the foreign ExternalSecret is untouched"
    );
    assert!(env.in_namespace(&plain).external_secrets().get_opt("shared").await?.is_none());

    // Its failure is a Warning Event; unlabelling the conflicting namespace
    // ends it, and the recovery is a Normal Event.
    eventually(Duration::from_secs(30), || async {
        Ok(ces_events(&env, &name)
            .await?
            .iter()
            .any(|e| e.type_ == "Warning" && e.reason == "NotProvisioned" && e.message.contains(&conflict)))
    })
    .await?;
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client.clone())
        .patch(
            &conflict,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"vaultsync-e2e-ces": null}}})),
        )
        .await?;
    eventually(Duration::from_secs(30), || async {
        Ok(ces_events(&env, &name)
            .await?
            .iter()
            .any(|e| e.type_ == "Normal" && e.reason == "Provisioned" && e.message.starts_with("works again")))
    })
    .await?;
    assert!(status().await?.failed_namespaces.is_empty());

    // Settled, it stays quiet: the syncs of its ExternalSecrets (status
    // writes) do not make it re-apply them. The API server's audit log
    // counts the operator's applies of them over a window (after the last
    // namespace and status events of the fan-out have passed).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window_start = k8s_openapi::jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let audit = std::fs::read_to_string(format!("{}/logs/kube-audit.log", std::env::var("VAULTSYNC_STATE")?))?;
    let applies = audit
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            let at =
                event["requestReceivedTimestamp"].as_str().and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok());
            let object = &event["objectRef"];
            at.is_some_and(|at| at >= window_start)
                && event["verb"] == "patch"
                && object["resource"] == "externalsecrets"
                && object["subresource"].is_null()
                && object["name"] == "shared"
                && (object["namespace"] == a.as_str() || object["namespace"] == b.as_str())
        })
        .count();
    // Neither their status writes nor other namespaces' events (the rest of
    // the suite creates and deletes namespaces all the time) re-apply them.
    assert_eq!(applies, 0, "applies of settled ExternalSecrets in 10s");

    // Unlabelled: its ExternalSecret (and the Secret it owns) go away.
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(env.client.clone())
        .patch(&a, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"vaultsync-e2e-ces": null}}})))
        .await?;
    let in_a = env.in_namespace(&a);
    eventually(Duration::from_secs(30), || async { Ok(in_a.external_secrets().get_opt("shared").await?.is_none()) })
        .await?;
    eventually(Duration::from_secs(30), || async { Ok(in_a.secrets().get_opt("shared").await?.is_none()) }).await?;

    api.delete(&name, &DeleteParams::default()).await?;
    let in_b = env.in_namespace(&b);
    eventually(Duration::from_secs(30), || async { Ok(in_b.external_secrets().get_opt("shared").await?.is_none()) })
        .await?;
    env.cluster_stores().delete(&store, &DeleteParams::default()).await?;
    env.cleanup().await;
    Ok(())
}
