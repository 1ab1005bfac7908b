//! `target.manifest` (ESO's generic targets) on the real API server and
//! OpenBao: ExternalSecrets of both groups write a ConfigMap and a custom
//! resource (the e2e kind AppConfig, e2e/crds/e2e.vaultsync.dev.yaml),
//! both enabled by the e2e chart values (`genericTargets`); a kind the
//! operator was not started with, or an object it did not write, is
//! refused and left as it is.

use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::json;
use vaultsync_e2e::{TestEnv, eventually, external_secret};

fn app_configs(env: &TestEnv) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("e2e.vaultsync.dev", "v1", "AppConfig"), "appconfigs");
    Api::namespaced_with(env.client.clone(), &env.namespace, &resource)
}

#[tokio::test]
async fn config_maps_and_custom_resources_are_written_when_enabled() -> anyhow::Result<()> {
    let env = TestEnv::new("generic-target").await?;
    let path = format!("{}/app", env.prefix);
    let (user, newer) = (env.secret_value("user"), env.secret_value("user-2"));
    let binary = [0xffu8, 0x00, 0x01];
    let encoded = base64::engine::general_purpose::STANDARD.encode(binary);
    env.bao.kv2_put(&path, json!({"user": user, "blob": encoded})).await?;
    env.token_store("vault", "root", json!({})).await?;
    let entries = json!([
        {"secretKey": "user", "remoteRef": {"key": path, "property": "user"}},
        {"secretKey": "blob", "remoteRef": {"key": path, "property": "blob", "decodingStrategy": "Base64"}},
    ]);
    let manifest = |api_version: &str, kind: &str| json!({"apiVersion": api_version, "kind": kind});

    // A ConfigMap: text in data, the rest in binaryData, owned by its
    // ExternalSecret, ESO's ResourceSynced reason.
    let mut es = external_secret("cm", "vault", json!({"data": entries}));
    es["spec"]["target"]["manifest"] = manifest("v1", "ConfigMap");
    let created = env.apply(es.clone()).await?;
    let (reason, message) = env.wait_ready("cm", "True").await?;
    assert_eq!(reason, "ResourceSynced", "{message}");
    assert!(message.starts_with("ConfigMap \"cm\" is in sync"), "{message}");
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let cm = config_maps.get("cm").await?;
    assert_eq!(cm.data.as_ref().and_then(|d| d.get("user")), Some(&user));
    assert_eq!(cm.binary_data.as_ref().and_then(|d| d.get("blob")).map(|b| b.0.clone()), Some(binary.to_vec()));
    let owners = cm.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(
        owners.iter().map(|o| (o.kind.as_str(), Some(&o.uid))).collect::<Vec<_>>(),
        [("ExternalSecret", created.metadata.uid.as_ref())]
    );
    assert_eq!(
        cm.metadata.labels.unwrap_or_default().get("app.kubernetes.io/managed-by").map(String::as_str),
        Some("vaultsync")
    );
    // A change in OpenBao reaches it at the next refresh (asked for now).
    env.bao.kv2_put(&path, json!({"user": newer, "blob": encoded})).await?;
    let force = json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": "1"}}});
    env.external_secrets().patch("cm", &PatchParams::default(), &Patch::Merge(&force)).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(config_maps.get("cm").await?.data.unwrap_or_default().get("user") == Some(&newer))
    })
    .await
    .map_err(|e| e.context("the ConfigMap was not updated"))?;

    // A custom resource: spec.data, or the top-level data a template fills.
    let mut plain = external_secret("app", "vault", json!({"data": [entries[0].clone()]}));
    plain["spec"]["target"]["manifest"] = manifest("e2e.vaultsync.dev/v1", "AppConfig");
    env.apply(plain).await?;
    let mut templated = external_secret("app-tpl", "vault", json!({"data": [entries[0].clone()]}));
    templated["spec"]["target"]["manifest"] = manifest("e2e.vaultsync.dev/v1", "AppConfig");
    templated["spec"]["target"]["template"] = json!({"data": {"url": "postgres://{{ .user }}@db"}});
    env.apply(templated).await?;
    env.wait_ready("app", "True").await?;
    env.wait_ready("app-tpl", "True").await?;
    let app = app_configs(&env).get("app").await?;
    assert_eq!(app.data["spec"]["data"]["user"], json!(newer));
    let app = app_configs(&env).get("app-tpl").await?;
    assert_eq!(app.data["data"]["url"], json!(format!("postgres://{newer}@db")));

    // A kind the operator was not started with: refused, nothing written.
    let mut deployment = external_secret("deploy", "vault", json!({"data": [entries[0].clone()]}));
    deployment["spec"]["target"]["manifest"] = manifest("apps/v1", "Deployment");
    env.apply(deployment).await?;
    let (reason, message) = env.wait_ready("deploy", "False").await?;
    assert_eq!(reason, "ResourceSyncedError");
    assert!(message.contains("--generic-target apps/v1/Deployment"), "{message}");
    // A ConfigMap someone else wrote: refused, left as it is.
    env.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "theirs"}, "data": {"k": "v"}}))
        .await?;
    let mut theirs = external_secret("theirs", "vault", json!({"data": [entries[0].clone()]}));
    theirs["spec"]["target"]["manifest"] = manifest("v1", "ConfigMap");
    env.apply(theirs).await?;
    let (_, message) = env.wait_ready("theirs", "False").await?;
    assert!(message.contains("already exists and was not written for this ExternalSecret"), "{message}");
    let kept = config_maps.get("theirs").await?.data.unwrap_or_default();
    assert_eq!(kept.get("k").map(String::as_str), Some("v"));
    assert!(!kept.contains_key("user"));

    // deletionPolicy Delete: when every remote value is gone, the objects
    // written go too (reason ResourceDeleted).
    let gone_path = format!("{}/gone", env.prefix);
    env.bao.kv2_put(&gone_path, json!({"v": "not a secret"})).await?;
    for (name, api_version, kind) in [("gone-cm", "v1", "ConfigMap"), ("gone-app", "e2e.vaultsync.dev/v1", "AppConfig")]
    {
        let mut es = external_secret(
            name,
            "vault",
            json!({"data": [{"secretKey": "v", "remoteRef": {"key": gone_path, "property": "v"}}]}),
        );
        es["spec"]["target"]["manifest"] = manifest(api_version, kind);
        es["spec"]["target"]["deletionPolicy"] = json!("Delete");
        env.apply(es).await?;
        env.wait_ready(name, "True").await?;
    }
    assert!(config_maps.get_opt("gone-cm").await?.is_some() && app_configs(&env).get_opt("gone-app").await?.is_some());
    env.bao.delete(&format!("secret/metadata/{gone_path}")).await?;
    for name in ["gone-cm", "gone-app"] {
        let force = json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": "gone"}}});
        env.external_secrets().patch(name, &PatchParams::default(), &Patch::Merge(&force)).await?;
        let (reason, message) = env.wait_ready(name, "False").await?;
        assert_eq!(reason, "ResourceDeleted", "{message}");
    }
    assert!(config_maps.get_opt("gone-cm").await?.is_none(), "the ConfigMap was deleted");
    assert!(app_configs(&env).get_opt("gone-app").await?.is_none(), "the AppConfig was deleted");

    // ESO's group: the same, with ESO's reason.
    env.apply(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore", "metadata": {"name": "eso-vault"},
        "spec": {"controller": "vaultsync", "provider": {"vault": {"server": env.bao.addr, "path": "secret",
            "version": "v2", "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}},
    }))
    .await?;
    env.apply(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "eso-cm"},
        "spec": {"secretStoreRef": {"name": "eso-vault", "kind": "SecretStore"}, "refreshInterval": "1h",
                 "target": {"name": "eso-cm", "manifest": {"apiVersion": "v1", "kind": "ConfigMap"}},
                 "data": [entries[0].clone()]},
    }))
    .await?;
    let (reason, message) = env.wait_eso_ready("ExternalSecret", "eso-cm", "True").await?;
    assert_eq!(reason, "ResourceSynced", "{message}");
    let cm = config_maps.get("eso-cm").await?;
    assert_eq!(cm.data.unwrap_or_default().get("user"), Some(&newer));
    let owner = cm.metadata.owner_references.unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.api_version.as_str()), Some("external-secrets.io/v1"));

    // The ExternalSecret goes: so does the ConfigMap it owns.
    env.external_secrets().delete("cm", &Default::default()).await?;
    eventually(Duration::from_secs(60), || async { Ok(config_maps.get_opt("cm").await?.is_none()) })
        .await
        .map_err(|e| e.context("the owned ConfigMap outlived its ExternalSecret"))?;
    env.cleanup().await;
    Ok(())
}
