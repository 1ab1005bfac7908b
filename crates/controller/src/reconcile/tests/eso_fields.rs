//! ESO fields added to vaultsync's own: `nullBytePolicy` (`Fail` refuses a
//! value with a NUL byte after decoding, names the key and leaves the
//! Secret as it was; unset, binary values are written),
//! `find.conversionStrategy`, `rewrite[].merge` and `.transform`, and
//! `template.metadata.finalizers`.

use serde_json::json;

use crate::reconcile::external_secret::reconcile;
use crate::testing::{ExternalSecretBuilder, Harness, ours, secret};

const BINARY: &str = "be\u{0}fore";

async fn sync(h: &Harness, builder: ExternalSecretBuilder) {
    let es = builder.build();
    h.api.put(&*es);
    reconcile(es, h.ctx.clone()).await.expect("the reconcile itself succeeds");
}

#[tokio::test]
async fn fail_refuses_a_value_with_a_nul_byte_and_keeps_the_secret() {
    let h = Harness::new();
    h.vault.put("secret/app/db", json!({"password": BINARY}));
    h.api.put(&secret("app", &[("password", "as it was")], &ours()));
    sync(&h, ExternalSecretBuilder::new().remote_ref("nullBytePolicy", json!("Fail"))).await;
    let ready = h.ready("app");
    assert_eq!(ready["status"], "False");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(message.contains("\"password\"") && message.contains("NUL byte"), "names the key: {message}");
    assert!(!message.contains("be\u{0}fore") && !message.contains("fore"), "never the value: {message}");
    assert!(h.secret_writes("app").is_empty(), "the Secret keeps what it held");
}

#[tokio::test]
async fn unset_writes_binary_values() {
    let h = Harness::new();
    h.vault.put("secret/app/db", json!({"password": BINARY}));
    sync(&h, ExternalSecretBuilder::new()).await;
    let written = h.secret("app").expect("written");
    assert_eq!(written.data.unwrap()["password"].0, BINARY.as_bytes());
}

#[tokio::test]
async fn fail_applies_to_extracted_values_after_decoding() {
    let h = Harness::new();
    // base64 of "a\0b": only the decoded value holds the NUL byte.
    h.vault.put("secret/app/blob", json!({"blob": "YQBi"}));
    let extract = |policy: serde_json::Value| json!({"extract": {"key": "app/blob", "decodingStrategy": "Base64", "nullBytePolicy": policy}});
    sync(&h, ExternalSecretBuilder::new().data_from(extract(json!("Fail")))).await;
    assert_eq!(h.ready("app")["status"], "False");
    assert!(h.ready("app")["message"].as_str().unwrap_or_default().contains("\"blob\""));
    sync(&h, ExternalSecretBuilder::new().data_from(extract(json!("Ignore"))).generation(2)).await;
    assert_eq!(h.ready("app")["status"], "True");
    assert_eq!(h.secret("app").unwrap().data.unwrap()["blob"].0, b"a\0b");
}

/// `find.conversionStrategy: Unicode` (ESO's) turns `_UXXXX_` escapes in
/// the found keys into characters, and only when the entry has no rewrite.
#[tokio::test]
async fn find_conversion_unescapes_keys_only_without_rewrites() {
    let h = Harness::new();
    h.vault.put("secret/conv/dot_U002E_key", json!({"v": "1"}));
    let find = |rewrite: serde_json::Value| json!({"find": {"path": "conv/", "conversionStrategy": "Unicode"}, "rewrite": rewrite});
    sync(&h, ExternalSecretBuilder::new().data_from(find(json!([])))).await;
    let keys: Vec<String> = h.secret("app").unwrap().data.unwrap().into_keys().collect();
    assert!(keys.contains(&"conv_dot.key".to_owned()), "converted: {keys:?}");
    let rewrite = json!([{"regexp": {"source": "^conv_", "target": "c_"}}]);
    sync(&h, ExternalSecretBuilder::new().data_from(find(rewrite)).generation(2)).await;
    let keys: Vec<String> = h.secret("app").unwrap().data.unwrap().into_keys().collect();
    assert!(keys.contains(&"c_dot_U002E_key".to_owned()), "not converted beside a rewrite: {keys:?}");
}

/// ESO's `rewrite[].merge` and `rewrite[].transform`: the found secrets
/// merged into their fields (the priority one last), then renamed by a
/// template; a key the steps leave invalid fails the sync, naming it.
#[tokio::test]
async fn find_with_merge_and_transform_rewrites() {
    let h = Harness::new();
    h.vault.put("secret/merge/a", json!({"user": "u", "port": 5432}));
    h.vault.put("secret/merge/b", json!({"host": "db", "user": "v"}));
    let from = json!({"find": {"path": "merge/"}, "rewrite": [
        {"merge": {"priority": ["merge_a"], "conflictPolicy": "Ignore"}},
        {"transform": {"template": "{{ .value | upper }}"}}]});
    sync(&h, ExternalSecretBuilder::new().data_from(from)).await;
    let data: Vec<(String, Vec<u8>)> =
        h.secret("app").expect("written").data.unwrap().into_iter().map(|(k, v)| (k, v.0)).collect();
    let want = [("HOST", "db"), ("PORT", "5432"), ("USER", "u"), ("password", crate::testing::SECRET_VALUE)];
    assert_eq!(data, want.map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec())));

    let from = json!({"find": {"path": "merge/"}, "rewrite": [{"merge": {}}]});
    sync(&h, ExternalSecretBuilder::new().data_from(from).generation(2)).await;
    let ready = h.ready("app");
    assert_eq!(ready["status"], "False");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(message.contains("conflicts in fields user"), "{message}");
}

/// ESO's `template.metadata.finalizers`: put on the Secret, and a write
/// that finds them there is not needed again.
#[tokio::test]
async fn template_finalizers_reach_the_secret() {
    let h = Harness::new();
    let es = ExternalSecretBuilder::new().build();
    let mut es = (*es).clone();
    es.spec.target.template =
        Some(serde_json::from_value(json!({"metadata": {"finalizers": ["example.com/keep"]}})).expect("a template"));
    let es = std::sync::Arc::new(es);
    h.api.put(&*es);
    reconcile(es.clone(), h.ctx.clone()).await.expect("reconciled");
    let written = h.secret("app").expect("written");
    assert_eq!(written.metadata.finalizers, Some(vec!["example.com/keep".to_owned()]));
    let sent = h.secret_writes("app");
    assert_eq!(sent.last().expect("a write").body["metadata"]["finalizers"], json!(["example.com/keep"]));
}

/// ESO's `creationPolicy: CreateOrMerge`: a missing Secret is created
/// (Opaque, no owner, not claimed), an existing one gets its keys merged in
/// and keeps the others' and its type; deleting the ExternalSecret's data
/// never deletes the Secret.
#[tokio::test]
async fn create_or_merge_creates_a_missing_secret_and_merges_into_an_existing_one() {
    let h = Harness::new();
    sync(&h, ExternalSecretBuilder::new().creation_policy("CreateOrMerge")).await;
    let created = h.secret("app").expect("created");
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    let sent = h.secret_writes("app");
    assert!(sent.iter().all(|s| s.body["metadata"].get("ownerReferences").is_none()), "no owner");
    assert!(
        sent.iter().all(|s| s.body["metadata"]["annotations"].get(crate::EXTERNAL_SECRET_ANNOTATION).is_none()),
        "not claimed: other writers may merge too"
    );
    assert_eq!(h.ready("app")["status"], "True");

    let h = Harness::new();
    let mut theirs = secret("app", &[("theirs", "kept")], &[]);
    theirs.type_ = Some("example.com/custom".into());
    h.api.put(&theirs);
    sync(&h, ExternalSecretBuilder::new().creation_policy("CreateOrMerge")).await;
    let merged = h.secret("app").expect("still there");
    let data = merged.data.expect("data");
    assert_eq!(data["theirs"].0, b"kept");
    assert_eq!(data["password"].0, crate::testing::SECRET_VALUE.as_bytes());
    let last = h.secret_writes("app");
    assert!(last.last().expect("a write").body.get("type").is_none_or(|t| t.is_null()), "the type is left alone");
}

/// `syncWindows` (ESO's) holds refreshes due by `refreshInterval` alone:
/// no Vault read while a deny window is open, and a look again soon; an
/// allow window that is open lets it run; a force-sync is never held.
#[tokio::test]
async fn sync_windows_hold_periodic_refreshes_only() {
    let h = Harness::new();
    h.vault.put("secret/app/db", json!({"password": "first"}));
    let with_windows = |kind: &str| {
        let mut es = ExternalSecretBuilder::new().refresh_interval("1s").build();
        let windows = json!({"kind": kind, "windows": [{"schedule": "* * * * *", "duration": "1h"}]});
        std::sync::Arc::make_mut(&mut es).spec.sync_windows = Some(serde_json::from_value(windows).expect("windows"));
        es
    };
    let run = |es: std::sync::Arc<vaultsync_api::ExternalSecret>| {
        h.api.put(&*es);
        reconcile(es, h.ctx.clone())
    };
    run(with_windows("deny")).await.expect("first sync");
    assert_eq!(h.vault.reads(), 1, "a first sync is never held");
    h.vault.put("secret/app/db", json!({"password": "second"}));
    // Past refreshInterval (1s, plus up to 10% jitter).
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let action = run(with_windows("deny")).await.expect("held");
    assert_eq!(h.vault.reads(), 1, "held by the open deny window");
    let again = crate::testing::requeue_after(&action).expect("a requeue");
    assert!(again >= std::time::Duration::from_secs(25), "looks again in about half a minute: {again:?}");
    assert_eq!(h.secret("app").unwrap().data.unwrap()["password"].0, b"first");

    let mut forced = with_windows("deny");
    std::sync::Arc::make_mut(&mut forced).metadata.annotations =
        Some([(vaultsync_api::FORCE_SYNC_ANNOTATION.to_owned(), "now".to_owned())].into());
    run(forced).await.expect("forced");
    assert_eq!(h.vault.reads(), 2, "a force-sync is not held");
    assert_eq!(h.secret("app").unwrap().data.unwrap()["password"].0, b"second");
}

#[tokio::test]
async fn an_open_allow_window_lets_periodic_refreshes_run() {
    let h = Harness::new();
    h.vault.put("secret/app/db", json!({"password": "first"}));
    let es = || {
        let mut es = ExternalSecretBuilder::new().refresh_interval("1s").build();
        let windows = json!({"kind": "allow", "windows": [{"schedule": "* * * * *", "duration": "1h"}]});
        std::sync::Arc::make_mut(&mut es).spec.sync_windows = Some(serde_json::from_value(windows).expect("windows"));
        es
    };
    sync_built(&h, es()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    sync_built(&h, es()).await;
    assert_eq!(h.vault.reads(), 2, "refreshed inside the allow window");
}

async fn sync_built(h: &Harness, es: std::sync::Arc<vaultsync_api::ExternalSecret>) {
    h.api.put(&*es);
    reconcile(es, h.ctx.clone()).await.expect("the reconcile itself succeeds");
}
