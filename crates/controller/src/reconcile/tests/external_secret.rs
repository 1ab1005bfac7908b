//! What the ExternalSecret reconciler decides: when it reads Vault, what it
//! writes or deletes, what it reports, when it comes back.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use vaultsync_api::{ExternalSecret, SecretStore};

use crate::context::Config;
use crate::reconcile::external_secret::reconcile;
use crate::testing::api::path_of;
use crate::testing::vault::Failure;
use crate::testing::{ExternalSecretBuilder, Harness, NAMESPACE, SECRET_VALUE, ours, requeue_after, secret};

/// Reconciles `es` as the API server holds it now.
async fn run(h: &Harness, es: &Arc<ExternalSecret>) -> Action {
    h.api.put(&**es);
    reconcile(es.clone(), h.ctx.clone()).await.expect("the reconcile itself succeeds")
}

fn data_of(secret: &Secret, key: &str) -> Option<String> {
    secret.data.as_ref()?.get(key).map(|v| String::from_utf8(v.0.clone()).expect("utf-8"))
}

fn is_ready(h: &Harness) -> bool {
    h.ready("app")["status"] == "True"
}

fn ready_message(h: &Harness) -> String {
    h.ready("app")["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn first_sync_reads_vault_creates_the_secret_and_reports_ready() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    run(&h, &es).await;
    assert_eq!(h.vault.reads(), 1);
    let secret = h.secret("app").expect("the Secret is created");
    assert_eq!(data_of(&secret, "password").as_deref(), Some(SECRET_VALUE));
    assert_eq!(secret.metadata.annotations.unwrap_or_default().get(crate::EXTERNAL_SECRET_ANNOTATION).unwrap(), "app");
    assert!(is_ready(&h));
    assert_eq!(h.ready("app")["reason"], vaultsync_api::REASON_SYNCED);
    assert!(h.events().iter().any(|e| e["reason"] == "Created"), "a Created event: {:?}", h.events());
}

#[tokio::test]
async fn nothing_due_costs_no_vault_read_and_no_write() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    run(&h, &es).await;
    h.api.clear_log();
    run(&h, &es).await;
    assert_eq!(h.vault.reads(), 1, "the memo answers the second reconcile");
    assert!(h.secret_writes("app").is_empty());
}

#[tokio::test]
async fn a_changed_secret_is_written_again_without_waiting_for_the_refresh() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    run(&h, &es).await;
    // Someone edits the Secret: its data hash no longer matches the memo.
    h.api.put(&secret("app", &[("password", "edited")], &ours()));
    run(&h, &es).await;
    assert_eq!(h.vault.reads(), 2);
    assert_eq!(data_of(&h.secret("app").unwrap(), "password").as_deref(), Some(SECRET_VALUE));
}

#[tokio::test]
async fn a_new_force_sync_request_reads_vault_again() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().build()).await;
    h.vault.put("secret/app/db", json!({"password": "rotated"}));
    run(&h, &ExternalSecretBuilder::new().force_sync("1").build()).await;
    assert_eq!(h.vault.reads(), 2);
    assert_eq!(data_of(&h.secret("app").unwrap(), "password").as_deref(), Some("rotated"));
    // The same request again is not new.
    run(&h, &ExternalSecretBuilder::new().force_sync("1").build()).await;
    assert_eq!(h.vault.reads(), 2);
}

#[tokio::test]
async fn a_new_generation_reads_vault_again() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().build()).await;
    run(&h, &ExternalSecretBuilder::new().generation(2).build()).await;
    assert_eq!(h.vault.reads(), 2);
    assert_eq!(h.statuses("app").last().unwrap()["observedGeneration"], 2);
}

#[tokio::test]
async fn a_new_term_forgets_the_memo_and_finds_the_secret_unchanged() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    run(&h, &es).await;
    h.ctx.begin_term();
    h.api.clear_log();
    run(&h, &es).await;
    assert_eq!(h.vault.reads(), 2, "another leader may have synced meanwhile");
    assert!(h.secret_writes("app").is_empty(), "same data: nothing to write");
}

#[tokio::test]
async fn created_once_leaves_an_existing_secret_alone() {
    let h = Harness::new();
    h.api.put(&secret("app", &[("password", "first")], &ours()));
    let es = ExternalSecretBuilder::new().refresh_policy("CreatedOnce").build();
    let action = run(&h, &es).await;
    assert_eq!(h.vault.reads(), 0);
    assert!(h.secret_writes("app").is_empty());
    assert_eq!(data_of(&h.secret("app").unwrap(), "password").as_deref(), Some("first"));
    assert!(is_ready(&h));
    assert!(ready_message(&h).contains("CreatedOnce"), "{}", ready_message(&h));
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn created_once_creates_a_missing_secret() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().refresh_policy("CreatedOnce").build();
    let action = run(&h, &es).await;
    assert_eq!(h.vault.reads(), 1);
    assert!(h.secret("app").is_some());
    assert_eq!(action, Action::await_change(), "no periodic refresh");
}

#[tokio::test]
async fn on_change_syncs_and_waits_for_a_change() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().refresh_policy("OnChange").build();
    let action = run(&h, &es).await;
    assert_eq!(h.vault.reads(), 1);
    assert_eq!(action, Action::await_change());
    run(&h, &es).await;
    assert_eq!(h.vault.reads(), 1);
}

#[tokio::test]
async fn refresh_interval_zero_syncs_once() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().refresh_interval("0").build();
    assert_eq!(run(&h, &es).await, Action::await_change());
    run(&h, &es).await;
    assert_eq!(h.vault.reads(), 1);
}

#[tokio::test]
async fn periodic_refresh_comes_back_after_the_interval() {
    let h = Harness::new();
    let after = requeue_after(&run(&h, &ExternalSecretBuilder::new().build()).await).expect("a requeue");
    assert!(after > Duration::from_secs(3590) && after <= Duration::from_secs(3600), "{after:?}");
}

#[tokio::test]
async fn a_short_refresh_interval_is_raised_to_the_floor() {
    let h = Harness::with_config(Config {
        jitter: 0.0,
        min_refresh_interval: Duration::from_secs(30),
        ..Config::default()
    });
    let es = ExternalSecretBuilder::new().refresh_interval("2s").build();
    let after = requeue_after(&run(&h, &es).await).expect("a requeue");
    assert!(after > Duration::from_secs(25) && after <= Duration::from_secs(30), "{after:?}");
}

#[tokio::test]
async fn a_malformed_refresh_interval_fails_without_reading_vault() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().refresh_interval("soon").build()).await;
    assert_eq!(h.vault.reads(), 0);
    assert!(!is_ready(&h));
    assert!(ready_message(&h).contains("spec.refreshInterval"), "{}", ready_message(&h));
}

#[tokio::test]
async fn deletion_policy_delete_removes_the_secret_when_every_remote_key_is_gone() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().deletion_policy("Delete").build();
    run(&h, &es).await;
    h.vault.remove("secret/app/db");
    run(&h, &ExternalSecretBuilder::new().deletion_policy("Delete").generation(2).build()).await;
    assert!(h.secret("app").is_none(), "the Secret is deleted");
    assert!(h.secret_writes("app").iter().any(|s| s.method == "DELETE"));
    assert_eq!(h.ready("app")["reason"], vaultsync_api::REASON_DELETED);
}

#[tokio::test]
async fn deletion_policy_delete_keeps_the_keys_still_there() {
    let h = Harness::new();
    h.vault.put("secret/app/other", json!({"token": "t"}));
    let build = || ExternalSecretBuilder::new().deletion_policy("Delete").data("token", "app/other", "token");
    run(&h, &build().build()).await;
    h.vault.remove("secret/app/db");
    run(&h, &build().generation(2).build()).await;
    let secret = h.secret("app").expect("the Secret stays");
    assert_eq!(data_of(&secret, "token").as_deref(), Some("t"));
    assert!(is_ready(&h));
    assert!(ready_message(&h).contains("gone"), "{}", ready_message(&h));
}

#[tokio::test]
async fn deletion_policy_retain_keeps_the_secret_and_reports_the_gone_key() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().build()).await;
    h.vault.remove("secret/app/db");
    run(&h, &ExternalSecretBuilder::new().generation(2).build()).await;
    assert!(h.secret_writes("app").iter().all(|s| s.method != "DELETE"));
    assert_eq!(data_of(&h.secret("app").unwrap(), "password").as_deref(), Some(SECRET_VALUE));
    assert!(!is_ready(&h));
    assert!(ready_message(&h).contains("not found"), "{}", ready_message(&h));
}

#[tokio::test]
async fn owner_refuses_a_secret_it_does_not_manage_and_leaves_it_intact() {
    let h = Harness::new();
    h.api.put(&secret("app", &[("password", "theirs")], &[]));
    run(&h, &ExternalSecretBuilder::new().build()).await;
    assert!(h.secret_writes("app").is_empty());
    assert_eq!(data_of(&h.secret("app").unwrap(), "password").as_deref(), Some("theirs"));
    assert!(!is_ready(&h));
    assert!(ready_message(&h).contains("will not overwrite"), "{}", ready_message(&h));
}

#[tokio::test]
async fn owner_sets_an_owner_reference_and_orphan_does_not() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().build()).await;
    let owners = h.secret("app").unwrap().metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.iter().map(|o| o.uid.as_str()).collect::<Vec<_>>(), ["uid-app"]);

    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().creation_policy("Orphan").build()).await;
    let secret = h.secret("app").expect("written");
    assert!(secret.metadata.owner_references.as_ref().is_none_or(Vec::is_empty));
    assert_eq!(data_of(&secret, "password").as_deref(), Some(SECRET_VALUE));
}

#[tokio::test]
async fn merge_needs_an_existing_secret() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().creation_policy("Merge").build()).await;
    assert!(h.secret("app").is_none());
    assert!(!is_ready(&h));
    assert!(ready_message(&h).contains("creationPolicy Merge"), "{}", ready_message(&h));
}

#[tokio::test]
async fn merge_adds_its_keys_to_someone_elses_secret_without_claiming_it() {
    let h = Harness::new();
    h.api.put(&secret("app", &[("theirs", "kept")], &[]));
    run(&h, &ExternalSecretBuilder::new().creation_policy("Merge").build()).await;
    let secret = h.secret("app").unwrap();
    assert_eq!(data_of(&secret, "theirs").as_deref(), Some("kept"));
    assert_eq!(data_of(&secret, "password").as_deref(), Some(SECRET_VALUE));
    let sent = h.secret_writes("app");
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|s| s.body["metadata"]["annotations"].get(crate::EXTERNAL_SECRET_ANNOTATION).is_none()));
    assert!(sent.iter().all(|s| s.body["metadata"].get("ownerReferences").is_none()));
}

#[tokio::test]
async fn creation_policy_none_reads_but_writes_no_secret() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().creation_policy("None").build()).await;
    assert_eq!(h.vault.reads(), 1);
    assert!(h.secret_writes("app").is_empty());
    assert!(is_ready(&h));
    assert!(ready_message(&h).contains("creationPolicy None"), "{}", ready_message(&h));
}

#[tokio::test]
async fn a_missing_store_is_reported_and_the_secret_left_untouched() {
    let h = Harness::new();
    h.api.put(&secret("app", &[("password", "before")], &ours()));
    run(&h, &ExternalSecretBuilder::new().store("nope").build()).await;
    assert_eq!(h.vault.reads(), 0);
    assert!(h.secret_writes("app").is_empty());
    assert!(!is_ready(&h));
    let message = ready_message(&h);
    assert!(message.contains("nope") && message.contains("ClusterSecretStore"), "actionable: {message}");
    assert_eq!(h.ready("app")["reason"], vaultsync_api::REASON_SYNC_ERROR);
}

#[tokio::test]
async fn a_store_without_its_token_secret_fails_before_vault() {
    let h = Harness::new();
    // The store names a token Secret that does not exist: no credentials,
    // so no client.
    let broken: SecretStore = serde_json::from_value(json!({
        "apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "vault", "namespace": NAMESPACE},
        "spec": {"provider": {"vault": {"server": "http://127.0.0.1:1", "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "missing-token", "key": "token"}}}}},
    }))
    .unwrap();
    h.api.put(&broken);
    run(&h, &ExternalSecretBuilder::new().build()).await;
    assert_eq!(h.vault.reads(), 0);
    assert!(!is_ready(&h));
    assert!(ready_message(&h).contains("missing-token"), "{}", ready_message(&h));
}

#[tokio::test]
async fn a_vault_outage_waits_for_the_probe_and_deletes_nothing() {
    let h = Harness::new();
    let build = || ExternalSecretBuilder::new().deletion_policy("Delete");
    run(&h, &build().build()).await;
    h.vault.fail(Some(Failure::Unreachable));
    let action = run(&h, &build().generation(2).build()).await;
    assert_eq!(h.vault.reads(), 2);
    assert_eq!(requeue_after(&action), Some(crate::vault_clients::outage::RECHECK_WHILE_DOWN));
    assert!(h.secret("app").is_some());
    assert!(h.secret_writes("app").iter().all(|s| s.method != "DELETE"));
    assert!(!is_ready(&h));
    // While the server is down, the next reconcile waits instead of reading.
    let action = run(&h, &build().generation(3).build()).await;
    assert_eq!(h.vault.reads(), 2);
    assert_eq!(requeue_after(&action), Some(crate::vault_clients::outage::RECHECK_WHILE_DOWN));
}

#[tokio::test]
async fn a_read_error_reports_not_ready_marks_the_memo_stale_and_backs_off() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    let key = ObjectRef::from_obj(&*es);
    run(&h, &es).await;
    let synced = h.secret("app").unwrap();
    // An edit of the Secret calls for a read, and that read fails.
    h.api.put(&secret("app", &[("password", "edited")], &ours()));
    h.vault.fail(Some(Failure::Denied));
    let first = run(&h, &es).await;
    assert_eq!(h.vault.reads(), 2);
    assert!(!is_ready(&h));
    assert!(ready_message(&h).contains("permission denied"), "{}", ready_message(&h));
    assert!(h.ctx.memo(&key).expect("the last success stays remembered").stale);
    // The Secret is back as synced: only the stale mark calls for a read.
    h.api.put(&synced);
    let second = run(&h, &es).await;
    assert_eq!(h.vault.reads(), 3, "a stale memo never skips the read");
    assert_eq!(requeue_after(&first), Some(Duration::from_secs(5)));
    assert_eq!(requeue_after(&second), Some(Duration::from_secs(10)), "the backoff doubles");
    h.vault.fail(None);
    run(&h, &es).await;
    assert!(is_ready(&h));
    assert!(!h.ctx.memo(&key).unwrap().stale);
    // Success resets the backoff.
    h.vault.fail(Some(Failure::Denied));
    let after_recovery = run(&h, &ExternalSecretBuilder::new().generation(2).build()).await;
    assert_eq!(requeue_after(&after_recovery), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn secret_values_never_reach_status_or_events() {
    let h = Harness::new();
    run(&h, &ExternalSecretBuilder::new().build()).await;
    // A property that is not there: the error names the secret, not its values.
    run(&h, &ExternalSecretBuilder::new().data("missing", "app/db", "nope").generation(2).build()).await;
    assert!(!is_ready(&h));
    h.vault.fail(Some(Failure::Denied));
    run(&h, &ExternalSecretBuilder::new().generation(3).build()).await;
    let reported: Vec<String> = h.statuses("app").iter().chain(h.events().iter()).map(ToString::to_string).collect();
    assert!(reported.len() >= 4);
    for text in reported {
        assert!(!text.contains(SECRET_VALUE), "a secret value leaked: {text}");
    }
}

fn holds_lease_finalizer(h: &Harness) -> bool {
    let es = h.api.get(&path_of::<ExternalSecret>(NAMESPACE, "app")).expect("the ExternalSecret");
    es["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|f| f == vaultsync_api::LEASE_FINALIZER))
}

#[tokio::test]
async fn a_lease_revoke_failure_is_retried_then_the_finalizer_goes_with_a_warning() {
    let h = Harness::new();
    // The generator that issued the lease is gone, the lease not expired:
    // revoking cannot work.
    let leases = json!([{
        "source": "dataFrom[0]", "generator": "db", "leaseId": "database/creds/app/123",
        "issuedAt": "2026-01-01T00:00:00Z", "expiresAt": "2999-01-01T00:00:00Z",
        "nextActionAt": "2999-01-01T00:00:00Z", "renewable": true, "state": "Active",
    }]);
    let es = ExternalSecretBuilder::new().deleting_with_leases(leases).build();
    let es_path = path_of::<ExternalSecret>(NAMESPACE, "app");
    let finalizer_patches = || h.api.sent().into_iter().filter(|s| s.method == "PATCH" && s.path == es_path).count();
    let mut delays = Vec::new();
    for _ in 1..crate::generators::MAX_REVOKE_TRIES {
        delays.push(requeue_after(&run(&h, &es).await).expect("tried again"));
        assert_eq!(finalizer_patches(), 0, "the finalizer holds while tries are left");
        assert!(holds_lease_finalizer(&h));
    }
    assert_eq!(delays, [Duration::from_secs(4), Duration::from_secs(8)]);
    assert_eq!(run(&h, &es).await, Action::await_change());
    assert!(finalizer_patches() > 0);
    assert!(!holds_lease_finalizer(&h), "the finalizer is gone");
    assert!(h.events().iter().any(|e| e["reason"] == "LeaseRevokeFailed" && e["type"] == "Warning"));
}

#[tokio::test]
async fn an_expired_lease_lets_the_external_secret_go_at_once() {
    let h = Harness::new();
    let leases = json!([{
        "source": "dataFrom[0]", "generator": "db", "leaseId": "database/creds/app/123",
        "issuedAt": "2020-01-01T00:00:00Z", "expiresAt": "2020-01-02T00:00:00Z",
        "nextActionAt": "2020-01-02T00:00:00Z", "renewable": true, "state": "Active",
    }]);
    let es = ExternalSecretBuilder::new().deleting_with_leases(leases).build();
    assert_eq!(run(&h, &es).await, Action::await_change());
    let es_path = path_of::<ExternalSecret>(NAMESPACE, "app");
    assert!(!h.api.sent_to("PATCH", &es_path).is_empty());
    assert!(!holds_lease_finalizer(&h));
    assert!(h.events().iter().all(|e| e["reason"] != "LeaseRevokeFailed"));
}

#[tokio::test]
async fn a_deleted_external_secret_without_leases_is_forgotten() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    run(&h, &es).await;
    let key = ObjectRef::from_obj(&*es);
    assert!(h.ctx.memo(&key).is_some());
    let mut deleting = (*es).clone();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-01-01T00:00:00Z".parse().unwrap()));
    h.api.clear_log();
    assert_eq!(run(&h, &Arc::new(deleting)).await, Action::await_change());
    assert!(h.ctx.memo(&key).is_none());
    assert!(h.api.sent().is_empty(), "the garbage collector removes the Secret: {:?}", h.api.sent());
}

#[tokio::test]
async fn a_namespace_scoped_install_refuses_cluster_stores() {
    let h = Harness::with_config(Config { jitter: 0.0, namespace: Some(NAMESPACE.into()), ..Config::default() });
    let mut es = (*ExternalSecretBuilder::new().build()).clone();
    es.spec.secret_store_ref.as_mut().expect("a store").kind = vaultsync_api::StoreKind::ClusterSecretStore;
    run(&h, &Arc::new(es)).await;
    assert_eq!(h.vault.reads(), 0);
    assert!(h.secret("app").is_none());
    assert!(!is_ready(&h));
    assert!(ready_message(&h).contains(NAMESPACE), "{}", ready_message(&h));
}
