//! What the ClusterExternalSecret reconciler decides: which namespaces get
//! an ExternalSecret, which lose theirs, and what it will not take over.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::ObjectMeta;
use serde_json::{Value, json};
use vaultsync_api::{CLUSTER_EXTERNAL_SECRET_LABEL, ClusterExternalSecret, ExternalSecret};

use crate::reconcile::cluster_external_secret::reconcile;
use crate::testing::api::path_of;
use crate::testing::{ExternalSecretBuilder, Harness};

fn namespace(name: &str, labels: &[(&str, &str)], terminating: bool) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            deletion_timestamp: terminating
                .then(|| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-01-01T00:00:00Z".parse().unwrap())),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// ClusterExternalSecret `shared`: ExternalSecret `app` in namespace
/// `named` and in every namespace labelled `team=payments`.
fn cluster_external_secret() -> Arc<ClusterExternalSecret> {
    let spec = serde_json::to_value(&ExternalSecretBuilder::new().build().spec).unwrap();
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterExternalSecret",
            "metadata": {"name": "shared", "uid": "uid-shared", "generation": 1},
            "spec": {
                "externalSecretName": "app",
                "externalSecretSpec": spec,
                "namespaces": ["named"],
                "namespaceSelectors": [{"matchLabels": {"team": "payments"}}],
            },
        }))
        .expect("a ClusterExternalSecret"),
    )
}

fn harness() -> Harness {
    let h = Harness::new();
    h.api.put(&namespace("named", &[], false));
    h.api.put(&namespace("pay-1", &[("team", "payments")], false));
    h.api.put(&namespace("pay-2", &[("team", "payments")], true));
    h.api.put(&namespace("other", &[("team", "search")], false));
    h.api.put(&*cluster_external_secret());
    h
}

fn external_secret(h: &Harness, namespace: &str) -> Option<Value> {
    h.api.get(&path_of::<ExternalSecret>(namespace, "app"))
}

fn last_status(h: &Harness) -> Value {
    let path = format!("{}/shared/status", <ClusterExternalSecret as kube::Resource>::url_path(&(), None));
    h.api.sent_to("PATCH", &path).last().expect("a status was written").body["status"].clone()
}

#[tokio::test]
async fn selected_namespaces_get_an_owned_external_secret_and_terminating_ones_none() {
    let h = harness();
    reconcile(cluster_external_secret(), h.ctx.clone()).await.expect("reconciled");
    for ns in ["named", "pay-1"] {
        let es = external_secret(&h, ns).unwrap_or_else(|| panic!("an ExternalSecret in {ns}"));
        assert_eq!(es["metadata"]["labels"][CLUSTER_EXTERNAL_SECRET_LABEL], "shared");
        assert_eq!(es["metadata"]["ownerReferences"][0]["uid"], "uid-shared");
    }
    assert!(external_secret(&h, "pay-2").is_none(), "a terminating namespace accepts nothing");
    assert!(external_secret(&h, "other").is_none());
    let status = last_status(&h);
    assert_eq!(status["provisionedNamespaces"], json!(["named", "pay-1"]));
    assert_eq!(status["conditions"][0]["status"], "True");
}

#[tokio::test]
async fn an_unchanged_external_secret_is_not_applied_again() {
    let h = harness();
    reconcile(cluster_external_secret(), h.ctx.clone()).await.expect("reconciled");
    h.api.clear_log();
    reconcile(cluster_external_secret(), h.ctx.clone()).await.expect("reconciled");
    let applies: Vec<_> =
        h.api.sent().into_iter().filter(|s| s.method == "PATCH" && s.path.contains("/externalsecrets/")).collect();
    assert!(applies.is_empty(), "{applies:?}");
}

#[tokio::test]
async fn an_external_secret_it_did_not_make_is_left_alone_and_reported() {
    let h = harness();
    let mut foreign = (*ExternalSecretBuilder::new().build()).clone();
    foreign.metadata.namespace = Some("pay-1".into());
    h.api.put(&foreign);
    reconcile(cluster_external_secret(), h.ctx.clone()).await.expect("reconciled");
    let kept = external_secret(&h, "pay-1").unwrap();
    assert!(kept["metadata"]["labels"].get(CLUSTER_EXTERNAL_SECRET_LABEL).is_none(), "not taken over");
    assert!(external_secret(&h, "named").is_some(), "the other namespaces are still provisioned");
    let status = last_status(&h);
    assert_eq!(status["conditions"][0]["status"], "False");
    assert_eq!(status["failedNamespaces"][0]["namespace"], "pay-1");
}

#[tokio::test]
async fn a_namespace_no_longer_selected_loses_its_external_secret() {
    let h = harness();
    reconcile(cluster_external_secret(), h.ctx.clone()).await.expect("reconciled");
    assert!(external_secret(&h, "pay-1").is_some());
    h.api.put(&namespace("pay-1", &[("team", "search")], false));
    reconcile(cluster_external_secret(), h.ctx.clone()).await.expect("reconciled");
    assert!(external_secret(&h, "pay-1").is_none());
    assert!(external_secret(&h, "named").is_some());
}

/// ESO's older single `namespaceSelector` counts as one more entry of
/// `namespaceSelectors`, and the status names the ExternalSecrets made.
#[tokio::test]
async fn the_singular_namespace_selector_adds_to_the_list_and_status_names_the_external_secrets() {
    let h = harness();
    let mut ces = (*cluster_external_secret()).clone();
    ces.spec.namespace_selector =
        Some(serde_json::from_value(json!({"matchLabels": {"team": "search"}})).expect("a selector"));
    reconcile(Arc::new(ces), h.ctx.clone()).await.expect("reconciled");
    for ns in ["named", "pay-1", "other"] {
        assert!(external_secret(&h, ns).is_some(), "an ExternalSecret in {ns}");
    }
    let status = last_status(&h);
    assert_eq!(status["provisionedNamespaces"], json!(["named", "other", "pay-1"]));
    assert_eq!(status["externalSecretName"], "app");
}
