//! README.md's "A first sync", run word for word (scripts/readme-block.sh
//! extracts it) in the test environment, as `make demo` runs it: the
//! namespace, the ServiceAccount, Vault's secret, policy and role, the
//! store and the ExternalSecret, and the Secret that comes out. And its
//! "Migrating from ESO", the handover of an ESO store.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::DynamicObject;
use serde_json::json;
use vaultsync_e2e::{TestEnv, eso_resource, eventually, repo_root};

/// The README's names and value.
const NAMESPACE: &str = "my-app";
const PASSWORD: &str = "correct-horse-battery-staple";

#[tokio::test]
async fn first_sync_runs_as_written() -> anyhow::Result<()> {
    let env = TestEnv::new("readme").await?;
    env.record_secret(PASSWORD);
    // A rerun against the same environment starts from scratch: the block
    // creates the namespace.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let _ = namespaces.delete(NAMESPACE, &Default::default()).await;
    eventually(Duration::from_secs(60), || async { Ok(namespaces.get_opt(NAMESPACE).await?.is_none()) }).await?;

    let state = std::env::var("VAULTSYNC_STATE")?;
    let script = format!(
        "source {state}/env && bash {}/scripts/readme-block.sh first-sync | bash -euo pipefail",
        repo_root().display()
    );
    let output = tokio::process::Command::new("bash").args(["-euo", "pipefail", "-c", &script]).output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = namespaces.delete(NAMESPACE, &Default::default()).await;
    assert!(output.status.success(), "the README's first sync failed:\n{stdout}\n{stderr}");
    // Its last command prints the password from the synced Secret.
    assert_eq!(stdout.lines().last(), Some(PASSWORD), "{stdout}");
    env.cleanup().await;
    Ok(())
}

/// README.md's "Migrating from ESO", run word for word: a store, an
/// ExternalSecret and its Secret as ESO leaves them in namespace
/// `payments` are handed to vaultsync (the Secret kept in place, the
/// ExternalSecret Ready by vaultsync's sync) and back (ESO's force-sync
/// annotation set for ESO to pick them up).
#[tokio::test]
async fn eso_handover_runs_as_written() -> anyhow::Result<()> {
    let env = TestEnv::new("readme-eso").await?;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let _ = namespaces.delete(ESO_NAMESPACE, &Default::default()).await;
    eventually(Duration::from_secs(60), || async { Ok(namespaces.get_opt(ESO_NAMESPACE).await?.is_none()) }).await?;
    env.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ESO_NAMESPACE}})).await?;
    let payments = env.in_namespace(ESO_NAMESPACE);

    let value = env.secret_value("readme-eso");
    let path = format!("{}/db", env.prefix);
    env.bao.kv2_put(&path, json!({"password": value})).await?;
    payments.create_secret("vault-token", &[("token", "root")]).await?;
    payments
        .apply(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
            "metadata": {"name": "vault"},
            "spec": {"provider": {"vault": {"server": env.bao.addr, "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}},
        }))
        .await?;
    let es = payments
        .apply(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "db"},
            "spec": {"secretStoreRef": {"name": "vault", "kind": "SecretStore"}, "refreshInterval": "1h",
                     "target": {"name": "db-credentials"},
                     "data": [{"secretKey": "password", "remoteRef": {"key": path, "property": "password"}}]},
        }))
        .await?;
    // The Secret as ESO's controller left it.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "db-credentials",
            "labels": {"reconcile.external-secrets.io/managed": "true"},
            "ownerReferences": [{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": "db",
                "uid": es.metadata.uid, "controller": true, "blockOwnerDeletion": true}],
        },
        "stringData": {"password": value},
    }))?;
    let created = payments.secrets().create(&Default::default(), &secret).await?;

    let state = std::env::var("VAULTSYNC_STATE")?;
    let script = format!("source {state}/env && bash scripts/readme-block.sh eso-handover | bash -euo pipefail");
    let output = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(repo_root())
        .output()
        .await?;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the README's ESO handover failed:\n{stdout}\n{stderr}");

    let after = payments.secrets().get("db-credentials").await?;
    assert_eq!(after.metadata.uid, created.metadata.uid, "the Secret stayed in place");
    assert_eq!(payments.secret_data("db-credentials").await?.get("password"), Some(&value));
    let es_api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), ESO_NAMESPACE, &eso_resource("ExternalSecret", "v1"));
    let handed = es_api.get("db").await?;
    let ready = handed.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
    assert!(
        ready.iter().any(|c| c["type"] == "Ready" && c["status"] == "True" && c["reason"] == "SecretSynced"),
        "vaultsync synced it while it had the store: {ready:?}"
    );
    eventually(Duration::from_secs(30), || async {
        let es = es_api.get("db").await?;
        Ok(es.metadata.annotations.unwrap_or_default().contains_key("external-secrets.io/force-sync"))
    })
    .await
    .map_err(|e| e.context("handed back without ESO's force-sync annotation"))?;
    let _ = namespaces.delete(ESO_NAMESPACE, &Default::default()).await;
    env.cleanup().await;
    Ok(())
}

/// The namespace of the README's ESO handover.
const ESO_NAMESPACE: &str = "payments";
