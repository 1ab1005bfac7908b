//! What the store health reconciler decides without logging in: broken
//! credentials, the plain-http warning, and ClusterSecretStores whose
//! credentials differ by namespace.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::{Value, json};
use vaultsync_api::{ClusterSecretStore, SecretStore};

use crate::reconcile::store_health::{reconcile_cluster_store, reconcile_store};
use crate::testing::api::path_of;
use crate::testing::{Harness, NAMESPACE, requeue_after};

fn store_with_token_secret(name: &str) -> Arc<SecretStore> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": "vault", "namespace": NAMESPACE, "generation": 1},
            "spec": {"provider": {"vault": {"server": "http://127.0.0.1:1", "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": name, "key": "token"}}}}},
        }))
        .expect("a SecretStore"),
    )
}

fn conditions(status: &Value) -> Vec<(String, String, String)> {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let field = |f: &str| c[f].as_str().unwrap_or_default().to_owned();
            (field("type"), field("status"), field("reason"))
        })
        .collect()
}

fn last_status(h: &Harness, path: &str) -> Value {
    let sent = h.api.sent_to("PATCH", &format!("{path}/status"));
    sent.last().expect("a status was written").body["status"].clone()
}

#[tokio::test]
async fn a_store_whose_token_secret_is_missing_is_not_ready_and_backs_off() {
    let h = Harness::new();
    let store = store_with_token_secret("missing-token");
    h.api.put(&*store);
    let first = reconcile_store(store.clone(), h.ctx.clone()).await.expect("reported");
    let path = path_of::<SecretStore>(NAMESPACE, "vault");
    let status = last_status(&h, &path);
    assert!(conditions(&status).contains(&("Ready".into(), "False".into(), "InvalidProviderConfig".into())));
    let message = status["conditions"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("missing-token"), "names what to fix: {message}");
    assert_eq!(requeue_after(&first), Some(Duration::from_secs(5)));
    let second = reconcile_store(store, h.ctx.clone()).await.expect("reported");
    assert_eq!(requeue_after(&second), Some(Duration::from_secs(10)));
    assert_eq!(h.vault.reads(), 0);
}

#[tokio::test]
async fn plain_http_is_warned_about_once() {
    let h = Harness::new();
    let store = store_with_token_secret("missing-token");
    h.api.put(&*store);
    reconcile_store(store.clone(), h.ctx.clone()).await.expect("reported");
    let path = path_of::<SecretStore>(NAMESPACE, "vault");
    let status = last_status(&h, &path);
    assert!(conditions(&status).contains(&("InsecureTransport".into(), "True".into(), "PlainHTTP".into())));
    let warnings = |h: &Harness| h.events().iter().filter(|e| e["reason"] == "InsecureTransport").count();
    assert_eq!(warnings(&h), 1);
    // The next reconcile sees the warning already in status: no new event.
    let mut warned = (*store).clone();
    warned.status = Some(serde_json::from_value(status).expect("a store status"));
    reconcile_store(Arc::new(warned), h.ctx.clone()).await.expect("reported");
    assert_eq!(warnings(&h), 1);
}

#[tokio::test]
async fn a_cluster_store_with_per_namespace_credentials_is_ready_without_a_login() {
    let h = Harness::new();
    let store: Arc<ClusterSecretStore> = Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterSecretStore",
            "metadata": {"name": "shared", "generation": 1},
            "spec": {"provider": {"vault": {"server": "https://vault.example", "path": "secret", "version": "v2",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}},
        }))
        .expect("a ClusterSecretStore"),
    );
    h.api.put(&*store);
    let action = reconcile_cluster_store(store, h.ctx.clone()).await.expect("reported");
    assert_eq!(action, Action::requeue(h.ctx.config.store_recheck));
    let path = format!("{}/shared", <ClusterSecretStore as kube::Resource>::url_path(&(), None));
    let status = last_status(&h, &path);
    assert_eq!(conditions(&status), [("Ready".to_owned(), "True".to_owned(), "Valid".to_owned())]);
    // No Secret was read to log in: the token is each namespace's own.
    assert!(h.api.sent_to("GET", "/api/v1/").is_empty(), "{:?}", h.api.sent());
}

/// ESO's `spec.refreshInterval` on a store: seconds or a duration sets when
/// a healthy store is checked again; a value that does not parse is the
/// store's error, with nothing else checked.
#[tokio::test]
async fn a_store_refresh_interval_sets_the_recheck_and_a_bad_one_is_reported() {
    let cluster_store = |interval: serde_json::Value| -> Arc<ClusterSecretStore> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ClusterSecretStore",
                "metadata": {"name": "shared", "generation": 1},
                "spec": {"refreshInterval": interval, "provider": {"vault": {"server": "https://vault.example",
                    "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}}}}},
            }))
            .expect("a ClusterSecretStore"),
        )
    };
    let path = format!("{}/shared", <ClusterSecretStore as kube::Resource>::url_path(&(), None));
    for (interval, want) in [(json!(90), 90), (json!("2m"), 120), (json!(0), 300)] {
        let h = Harness::new();
        let store = cluster_store(interval.clone());
        h.api.put(&*store);
        let action = reconcile_cluster_store(store, h.ctx.clone()).await.expect("ok");
        assert_eq!(action, Action::requeue(Duration::from_secs(want)), "refreshInterval {interval}");
    }
    let h = Harness::new();
    let store = cluster_store(json!("soon"));
    h.api.put(&*store);
    reconcile_cluster_store(store, h.ctx.clone()).await.expect("reported");
    let status = last_status(&h, &path);
    assert_eq!(conditions(&status), [("Ready".to_owned(), "False".to_owned(), "InvalidProviderConfig".to_owned())]);
    let message = status["conditions"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.refreshInterval"), "{message}");
}
