//! rolloutRestartTargets: the workloads an ExternalSecret names, and that
//! opted in (annotation `vaultsync.dev/rollout-restart-from`), are
//! restarted once per actual change of its Secret's data (a new ReplicaSet,
//! made by the real kube-controller-manager), never by a refresh or a
//! force-sync that finds the data unchanged. A workload that did not opt in
//! is left alone, and a target name that is no object name is refused.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use serde_json::{Value, json};
use vaultsync_e2e::{TestEnv, events_about, eventually, external_secret};

const ANNOTATION: &str = "vaultsync.dev/restartedAt";
const OPT_IN: &str = "vaultsync.dev/rollout-restart-from";

fn pod_template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1", "envFrom": [{"secretRef": {"name": "creds"}}]}]},
    })
}

/// A workload whose annotation lets the ExternalSecrets `restart_from`
/// restart it (none: it did not opt in).
fn workload(kind: &str, name: &str, restart_from: Option<&str>) -> Value {
    let mut spec = json!({"selector": {"matchLabels": {"app": name}}, "template": pod_template(name)});
    if kind == "StatefulSet" {
        spec["serviceName"] = json!(name);
    }
    let mut metadata = json!({"name": name});
    if let Some(names) = restart_from {
        metadata["annotations"] = json!({OPT_IN: names});
    }
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec})
}

/// The restart annotations of the pod templates, and the Rollout's restartAt.
async fn restart_marks(env: &TestEnv) -> anyhow::Result<Vec<Option<String>>> {
    let ns = &env.namespace;
    let mark = |template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>| {
        template.and_then(|t| t.metadata.as_ref()?.annotations.as_ref()?.get(ANNOTATION).cloned())
    };
    let deployment = Api::<Deployment>::namespaced(env.client.clone(), ns).get("web").await?;
    let statefulset = Api::<StatefulSet>::namespaced(env.client.clone(), ns).get("db").await?;
    let daemonset = Api::<DaemonSet>::namespaced(env.client.clone(), ns).get("agent").await?;
    let rollout =
        Api::<DynamicObject>::namespaced_with(env.client.clone(), ns, &vaultsync_api::argo_rollout_resource())
            .get("canary")
            .await?;
    Ok(vec![
        mark(Some(&deployment.spec.template)),
        mark(Some(&statefulset.spec.template)),
        mark(Some(&daemonset.spec.template)),
        rollout.data["spec"]["restartAt"].as_str().map(str::to_owned),
    ])
}

async fn replica_sets(env: &TestEnv) -> anyhow::Result<usize> {
    let api = Api::<ReplicaSet>::namespaced(env.client.clone(), &env.namespace);
    Ok(api.list(&ListParams::default().labels("app=web")).await?.items.len())
}

/// The messages of ExternalSecret `creds`'s Events of this reason.
async fn events(env: &TestEnv, reason: &str) -> anyhow::Result<Vec<String>> {
    let all = events_about(&env.client, &env.namespace, "ExternalSecret", "creds").await?;
    Ok(all.into_iter().filter(|e| e.reason == reason).map(|e| e.message).collect())
}

async fn force_sync(env: &TestEnv) -> anyhow::Result<()> {
    env.force_sync("creds", &k8s_openapi::jiff::Timestamp::now().to_string()).await
}

#[tokio::test]
async fn workloads_restart_once_per_data_change() -> anyhow::Result<()> {
    let env = TestEnv::new("rollout").await?;
    env.token_store("vault", "root", json!({})).await?;
    let path = format!("{}/db", env.prefix);
    let (first, second) = (env.secret_value("rollout-1"), env.secret_value("rollout-2"));
    env.bao.kv2_put(&path, json!({"password": first})).await?;
    for (kind, name) in [("Deployment", "web"), ("StatefulSet", "db"), ("DaemonSet", "agent")] {
        env.apply(workload(kind, name, Some("other, creds"))).await?;
    }
    // Named by the ExternalSecret, but agreeing to restarts by another one
    // only, or by none.
    env.apply(workload("Deployment", "platform-app", Some("other"))).await?;
    env.apply(workload("Deployment", "victim", None)).await?;
    let untouched = |d: Deployment| (d.metadata.generation, d.spec.template.metadata.and_then(|m| m.annotations));
    let deployments = Api::<Deployment>::namespaced(env.client.clone(), &env.namespace);
    let before = [untouched(deployments.get("platform-app").await?), untouched(deployments.get("victim").await?)];
    env.apply(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "canary", "annotations": {OPT_IN: "creds"}},
        "spec": {"selector": {"matchLabels": {"app": "canary"}}, "template": pod_template("canary")},
    }))
    .await?;
    // The Deployment controller makes its first ReplicaSet.
    eventually(Duration::from_secs(30), || async { Ok(replica_sets(&env).await? == 1) }).await?;

    let mut es = external_secret(
        "creds",
        "vault",
        json!({"data": [{"secretKey": "password", "remoteRef": {"key": path, "property": "password"}}]}),
    );
    es["spec"]["refreshInterval"] = json!("1s");
    es["spec"]["rolloutRestartTargets"] = json!([
        {"kind": "Deployment", "name": "web"},
        {"kind": "StatefulSet", "name": "db"},
        {"kind": "DaemonSet", "name": "agent"},
        {"kind": "argo.Rollout", "name": "canary"},
        {"kind": "Deployment", "name": "absent"},
        {"kind": "Deployment", "name": "platform-app"},
        {"kind": "Deployment", "name": "victim"},
    ]);
    env.apply(es).await?;
    assert_eq!(env.wait_secret("creds").await?.get("password"), Some(&first));

    // Creating the Secret, refreshes and a force-sync with unchanged data:
    // nothing restarts.
    force_sync(&env).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(restart_marks(&env).await?, vec![None; 4], "no restart without a data change");
    assert_eq!(replica_sets(&env).await?, 1);

    // A new value: every target restarts once.
    env.bao.kv2_put(&path, json!({"password": second})).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(env.secret_data("creds").await?.get("password") == Some(&second))
    })
    .await?;
    eventually(Duration::from_secs(30), || async { Ok(restart_marks(&env).await?.iter().all(Option::is_some)) })
        .await?;
    let marks = restart_marks(&env).await?;
    eventually(Duration::from_secs(30), || async { Ok(replica_sets(&env).await? == 2) }).await?;
    let restarted = events(&env, "RolloutRestarted").await?;
    assert!(restarted.iter().any(|m| m.contains("Deployment") && m.contains("/web")), "{restarted:?}");
    let failed = events(&env, "RolloutRestartFailed").await?;
    assert!(failed.iter().any(|m| m.contains("absent") && m.contains("no Deployment of that name")), "{failed:?}");
    // The opt-in is checked last in the list: its Events may come a moment later.
    let told = |refused: &[String], name: &str| {
        refused.iter().any(|m| m.contains(&format!("/{name}:")) && m.contains(&format!("{OPT_IN}: \"creds\"")))
    };
    eventually(Duration::from_secs(10), || async {
        let refused = events(&env, "RolloutRestartRefused").await?;
        Ok(told(&refused, "platform-app") && told(&refused, "victim"))
    })
    .await?;
    let after = [untouched(deployments.get("platform-app").await?), untouched(deployments.get("victim").await?)];
    assert_eq!(after, before, "a workload that did not opt in is not patched");

    // Refreshes and a force-sync after it: no further restart.
    force_sync(&env).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(restart_marks(&env).await?, marks, "a refresh of unchanged data restarts nothing");
    assert_eq!(replica_sets(&env).await?, 2, "exactly one new ReplicaSet per data change");
    assert_eq!(env.ready_status("creds").await?, "True");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_target_name_that_is_no_object_name_is_refused_by_the_api_server() -> anyhow::Result<()> {
    let env = TestEnv::new("rolloutname").await?;
    for name in ["victim?dryRun=All", "victim/status", "Victim", "..", "victim%3FdryRun=All"] {
        let mut es = external_secret(
            "creds",
            "vault",
            json!({"data": [{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]}),
        );
        es["spec"]["rolloutRestartTargets"] = json!([{"kind": "Deployment", "name": name}]);
        let refused = format!("{:#}", env.apply(es).await.expect_err(name));
        assert!(refused.contains("must be a Kubernetes object name"), "{name}: {refused}");
    }
    env.cleanup().await;
    Ok(())
}
