//! A cluster whose ESO controller is gone, cluster-wide: vaultsync with
//! `--eso-claim-unclassed` fans out ESO-group ClusterExternalSecrets as
//! ESO's controller would have. ESO's own ClusterExternalSecret controller
//! has no class filter, so while ESO runs vaultsync leaves them alone;
//! this operator is the only one claiming unclassed stores, so it runs in
//! the serial phase, with the shared operator stopped (scripts/e2e.sh),
//! with the release's rights for it (`esoApi.claimUnclassed=true`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;
use vaultsync_e2e::{TestEnv, eso_resource, eventually, repo_root};

async fn helm_claim(claim: bool) -> anyhow::Result<()> {
    let chart = repo_root().join("charts/vaultsync");
    let set = format!("esoApi.claimUnclassed={claim}");
    let output = tokio::process::Command::new("helm")
        .args(["upgrade", "vaultsync", chart.to_str().unwrap_or_default(), "--namespace", "vaultsync-system"])
        .args(["--reuse-values", "--set", &set])
        .output()
        .await?;
    anyhow::ensure!(output.status.success(), "helm upgrade --set {set}: {}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}

#[tokio::test]
#[ignore = "serial phase: claims every unclassed ESO store, with the shared operator stopped"]
async fn eso_cluster_external_secrets_are_fanned_out_once_eso_is_gone() -> anyhow::Result<()> {
    let mut env = TestEnv::new("eso-claim-ces").await?;
    helm_claim(true).await?;
    let operator = vaultsync_e2e::spawn_operator(
        "eso-claim-ces",
        &[("VAULTSYNC_ESO_API", "true"), ("VAULTSYNC_ESO_CLAIM_UNCLASSED", "true")],
    )?;
    let outcome = fan_out(&mut env).await;
    drop(operator);
    helm_claim(false).await?;
    env.cleanup().await;
    outcome
}

async fn fan_out(env: &mut TestEnv) -> anyhow::Result<()> {
    let value = env.secret_value("eso-claim-ces");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("eso-token", &[("token", "root")]).await?;
    let label = format!("eso-claim-{}", env.prefix);
    let (a, b) = (format!("{}-a", env.namespace), format!("{}-b", env.namespace));
    for namespace in [&a, &b] {
        env.create_labelled_namespace(namespace, json!({&label: "yes"})).await?;
    }
    let store = format!("{}-css", env.namespace);
    env.apply(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ClusterSecretStore",
        "metadata": {"name": store},
        "spec": {"provider": {"vault": {"server": env.bao.addr, "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "eso-token", "key": "token", "namespace": env.namespace}}}}},
    }))
    .await?;
    let ces_name = format!("{}-ces", env.namespace);
    env.apply(json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ClusterExternalSecret",
        "metadata": {"name": ces_name},
        "spec": {
            "externalSecretName": "app",
            "namespaceSelectors": [{"matchLabels": {&label: "yes"}}],
            "refreshTime": "1m",
            "externalSecretSpec": {
                "secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
                "refreshInterval": "1h",
                "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}],
            },
        },
    }))
    .await?;

    for namespace in [&a, &b] {
        let there = env.in_namespace(namespace);
        assert_eq!(there.wait_secret("app").await?.get("v"), Some(&value), "Secret in {namespace}");
        let es =
            Api::<DynamicObject>::namespaced_with(env.client.clone(), namespace, &eso_resource("ExternalSecret", "v1"))
                .get("app")
                .await?;
        let owner = es.metadata.owner_references.clone().unwrap_or_default();
        assert!(
            owner.iter().any(|o| o.api_version == "external-secrets.io/v1"
                && o.kind == "ClusterExternalSecret"
                && o.name == ces_name),
            "{namespace}: {owner:?}"
        );
    }
    let all_ces: Api<DynamicObject> = Api::all_with(env.client.clone(), &eso_resource("ClusterExternalSecret", "v1"));
    eventually(Duration::from_secs(60), || async {
        let ces = all_ces.get(&ces_name).await?;
        let status = &ces.data["status"];
        let ready = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let provisioned = status["provisionedNamespaces"].as_array().map(|n| n.len()).unwrap_or_default();
        Ok(ready && provisioned == 2 && status["externalSecretName"] == "app")
    })
    .await
    .map_err(|e| e.context("the ClusterExternalSecret's status never said Ready in both namespaces"))?;

    // A namespace no longer selected loses its ExternalSecret.
    Api::<Namespace>::all(env.client.clone())
        .patch(&b, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {&label: null}}})))
        .await?;
    let in_b: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &b, &eso_resource("ExternalSecret", "v1"));
    eventually(Duration::from_secs(60), || async { Ok(in_b.get_opt("app").await?.is_none()) })
        .await
        .map_err(|e| e.context("the ExternalSecret stayed in a namespace no longer selected"))?;
    all_ces.delete(&ces_name, &Default::default()).await?;
    Api::<DynamicObject>::all_with(env.client.clone(), &eso_resource("ClusterSecretStore", "v1"))
        .delete(&store, &Default::default())
        .await?;
    Ok(())
}
