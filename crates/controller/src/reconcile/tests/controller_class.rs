//! Controller classes (ESO's `spec.controller`): a store of another class,
//! and every ExternalSecret using it, gets nothing from this operator; a
//! class changed on a store hands its ExternalSecrets over at once.

use std::sync::Arc;

use kube::runtime::controller::Action;
use vaultsync_api::{ExternalSecret, SecretStore};

use crate::reconcile::external_secret::reconcile;
use crate::reconcile::store_health::reconcile_store;
use crate::testing::api::path_of;
use crate::testing::{ExternalSecretBuilder, Harness, NAMESPACE, secret_store};

/// Puts SecretStore `vault` with `spec.controller` set to `class`.
fn classed_store(h: &Harness, class: Option<&str>) -> Arc<SecretStore> {
    let mut store = secret_store("vault");
    store.spec.controller = class.map(str::to_owned);
    h.api.put(&store);
    Arc::new(store)
}

async fn run(h: &Harness, es: &Arc<ExternalSecret>) -> Action {
    h.api.put(&**es);
    reconcile(es.clone(), h.ctx.clone()).await.expect("the reconcile itself succeeds")
}

#[tokio::test]
async fn an_external_secret_of_another_class_store_gets_no_read_write_status_or_event() {
    let h = Harness::new();
    classed_store(&h, Some("default"));
    let es = ExternalSecretBuilder::new().build();
    let action = run(&h, &es).await;
    assert_eq!(action, Action::await_change(), "the store's own watch brings it back");
    assert_eq!(h.vault.reads(), 0);
    assert!(h.secret("app").is_none());
    assert!(h.statuses("app").is_empty(), "no status: it is another controller's to report");
    assert!(h.events().is_empty(), "no Event: {:?}", h.events());
}

#[tokio::test]
async fn a_store_of_our_class_or_none_is_served() {
    for class in [None, Some(""), Some(vaultsync_api::DEFAULT_CONTROLLER_CLASS)] {
        let h = Harness::new();
        classed_store(&h, class);
        run(&h, &ExternalSecretBuilder::new().build()).await;
        assert!(h.secret("app").is_some(), "class {class:?} is served");
    }
}

#[tokio::test]
async fn a_class_taken_away_stops_the_writes_at_the_next_reconcile() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    run(&h, &es).await;
    assert_eq!(h.vault.reads(), 1);
    classed_store(&h, Some("default"));
    h.api.clear_log();
    // A force-sync would read and write for a served store.
    let asked = ExternalSecretBuilder::new().force_sync("now").build();
    run(&h, &asked).await;
    assert_eq!(h.vault.reads(), 1, "no read for another controller's store");
    assert!(h.secret_writes("app").is_empty());
    assert!(h.statuses("app").is_empty());
    // Handed back: a full sync, which finds the Secret as written.
    classed_store(&h, None);
    run(&h, &asked).await;
    assert_eq!(h.vault.reads(), 2);
    assert!(h.secret_writes("app").is_empty(), "unchanged data is not written again");
}

#[tokio::test]
async fn a_store_of_another_class_gets_no_login_or_status() {
    let h = Harness::new();
    let store = classed_store(&h, Some("default"));
    let action = reconcile_store(store, h.ctx.clone()).await.expect("skipped");
    assert_eq!(action, Action::await_change());
    assert!(h.api.sent_to("PATCH", &path_of::<SecretStore>(NAMESPACE, "vault")).is_empty());
}
