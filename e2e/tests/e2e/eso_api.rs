//! ESO's API group served by vaultsync (`--eso-api`, on in the e2e
//! release) on the real API server, with ESO's own v2.9.0 CRDs installed
//! (e2e/eso/crds) and OpenBao: ESO-group stores of vaultsync's class are
//! served, every other one is left to ESO, what ESO's schema lets through
//! and vaultsync cannot serve is reported, and a store's ExternalSecrets
//! and Secrets change hands in place.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use vaultsync_e2e::{TestEnv, eso_resource, eventually};

const CLASS: &str = "vaultsync";

/// An ESO-group SecretStore logging in with the token Secret `eso-token`.
fn eso_store(env: &TestEnv, name: &str, class: Option<&str>) -> Value {
    let mut store = json!({
        "apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"vault": {"server": env.bao.addr, "path": "secret", "version": "v2",
            "auth": {"tokenSecretRef": {"name": "eso-token", "key": "token"}}}}},
    });
    if let Some(class) = class {
        store["spec"]["controller"] = json!(class);
    }
    store
}

/// An ESO-group ExternalSecret reading property `v` of `path` into key `v`.
fn eso_external_secret(name: &str, store: &str, path: &str) -> Value {
    json!({
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"secretStoreRef": {"name": store, "kind": "SecretStore"}, "refreshInterval": "1h",
                 "target": {"name": name},
                 "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]},
    })
}

fn eso_external_secrets(env: &TestEnv) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.namespace, &eso_resource("ExternalSecret", "v1"))
}

async fn eso_ready(env: &TestEnv, name: &str) -> anyhow::Result<Option<(String, String, String)>> {
    env.eso_ready("ExternalSecret", name).await
}

async fn eso_store_ready(env: &TestEnv, name: &str) -> anyhow::Result<Option<(String, String, String)>> {
    env.eso_ready("SecretStore", name).await
}

async fn wait_eso_ready(env: &TestEnv, name: &str, status: &str) -> anyhow::Result<(String, String)> {
    env.wait_eso_ready("ExternalSecret", name, status).await
}

async fn wait_eso_store_ready(env: &TestEnv, name: &str, status: &str) -> anyhow::Result<(String, String)> {
    env.wait_eso_ready("SecretStore", name, status).await
}

/// A store of vaultsync's class is served: Secret written with ESO's owner
/// reference shape, ESO's status and reasons. A store without a class, or
/// of ESO's, is not touched. What vaultsync cannot serve, or what its own
/// CRDs would refuse by CEL, is reported on the object.
#[tokio::test]
async fn eso_group_stores_of_our_class_are_served_and_others_left_to_eso() -> anyhow::Result<()> {
    let env = TestEnv::new("eso-api").await?;
    let value = env.secret_value("eso-api");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("eso-token", &[("token", "root")]).await?;
    // Before its store: a store not (yet) found is ESO's to report, and
    // its creation brings the ExternalSecret back.
    let served = env.apply(eso_external_secret("served", "ours", &path)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(eso_ready(&env, "served").await?, None, "a missing store has no class: ESO reports it");
    let mut ours = eso_store(&env, "ours", Some(CLASS));
    // ESO's retrySettings: read (vaultsync retries as ESO does), not refused.
    ours["spec"]["retrySettings"] = json!({"maxRetries": 2, "retryInterval": "100ms"});
    env.apply(ours).await?;
    env.apply(eso_store(&env, "unclassed", None)).await?;
    env.apply(eso_store(&env, "esos", Some("default"))).await?;

    env.apply(eso_external_secret("unclassed", "unclassed", &path)).await?;
    env.apply(eso_external_secret("foreign", "esos", &path)).await?;
    // Unsupported by vaultsync, valid in ESO's schema.
    let mut unsupported = eso_external_secret("unsupported", "ours", &path);
    // (ESO's schema has data[].sourceRef.generatorRef, deprecated and not
    // implemented by ESO either.)
    unsupported["spec"]["data"][0]["sourceRef"] = json!({"generatorRef": {"kind": "VaultDynamicSecret", "name": "g"}});
    env.apply(unsupported).await?;
    // Entries that name their own store (of our class) are served...
    let mut entries = eso_external_secret("entries", "ours", &path);
    entries["spec"]["data"][0]["sourceRef"] = json!({"storeRef": {"name": "ours", "kind": "SecretStore"}});
    entries["spec"]["dataFrom"] = json!([{"extract": {"key": path}, "sourceRef": {"storeRef": {"name": "ours"}},
        "rewrite": [{"regexp": {"source": "^", "target": "all-"}}]}]);
    env.apply(entries).await?;
    // ... and one that names a store of ESO's class makes the whole
    // ExternalSecret ESO's, as ESO decides it.
    let mut mixed = eso_external_secret("mixed", "ours", &path);
    mixed["spec"]["data"][0]["sourceRef"] = json!({"storeRef": {"name": "esos", "kind": "SecretStore"}});
    env.apply(mixed).await?;
    // Refused by vaultsync's CRD (CEL), not by ESO's: outside the mount, and
    // Vault's own sys mount.
    env.apply(eso_external_secret("escape", "ours", "../../sys/seal-status")).await?;
    env.apply(eso_external_secret("system", "ours", "sys/mounts")).await?;

    assert_eq!(env.wait_secret("served").await?.get("v"), Some(&value));
    let (reason, _) = wait_eso_ready(&env, "served", "True").await?;
    assert_eq!(reason, "SecretSynced");
    let secret = env.secrets().get("served").await?;
    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    let owner = &owners[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str(), owner.name.as_str()),
        ("external-secrets.io/v1", "ExternalSecret", "served")
    );
    assert_eq!(Some(&owner.uid), served.metadata.uid.as_ref());
    assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)), "as ESO sets them");

    let (reason, message) = wait_eso_ready(&env, "unsupported", "False").await?;
    assert_eq!(reason, "SecretSyncedError");
    assert!(message.contains("spec.data[0].sourceRef") && message.contains("cannot be read"), "{message}");
    let data = env.wait_secret("entries").await?;
    assert_eq!((data.get("v"), data.get("all-v")), (Some(&value), Some(&value)), "entries' own stores");
    let (_, message) = wait_eso_ready(&env, "escape", "False").await?;
    assert!(message.contains("must be a path inside the store's mount"), "{message}");
    let (_, message) = wait_eso_ready(&env, "system", "False").await?;
    assert!(message.contains("segment named auth, sys"), "{message}");
    for refused in ["unsupported", "escape", "system"] {
        assert!(env.secrets().get_opt(refused).await?.is_none(), "no Secret for {refused}");
    }

    // Store status as ESO writes it; an auth method vaultsync lacks is
    // reported on the store and on its ExternalSecrets.
    let (reason, message) = wait_eso_store_ready(&env, "ours", "True").await?;
    assert_eq!(reason, "Valid");
    assert!(message.starts_with("store validated"), "{message}");
    let mut iam = eso_store(&env, "iam", Some(CLASS));
    iam["spec"]["provider"]["vault"]["auth"] = json!({"iam": {"vaultRole": "app", "region": "eu-west-1"}});
    env.apply(iam).await?;
    env.apply(eso_external_secret("on-iam", "iam", &path)).await?;
    let (reason, message) = wait_eso_store_ready(&env, "iam", "False").await?;
    assert_eq!(reason, "InvalidProviderConfig");
    assert!(
        message.starts_with("unable to validate store") && message.contains("spec.provider.vault.auth.iam"),
        "{message}"
    );
    let (_, message) = wait_eso_ready(&env, "on-iam", "False").await?;
    assert!(message.contains("spec.provider.vault.auth.iam"), "{message}");

    // A ClusterSecretStore of ours gets its status too.
    let cluster_name = format!("{}-eso", env.namespace);
    let mut cluster_store = eso_store(&env, &cluster_name, Some(CLASS));
    cluster_store["kind"] = json!("ClusterSecretStore");
    cluster_store["spec"]["provider"]["vault"]["auth"]["tokenSecretRef"]["namespace"] = json!(env.namespace);
    env.apply(cluster_store).await?;
    let cluster_stores: Api<DynamicObject> =
        Api::all_with(env.client.clone(), &eso_resource("ClusterSecretStore", "v1"));
    eventually(Duration::from_secs(60), || async {
        let store = cluster_stores.get(&cluster_name).await?;
        let conditions = store.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
        Ok(conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True" && c["reason"] == "Valid"))
    })
    .await
    .map_err(|e| e.context("the ESO-group ClusterSecretStore never became Ready=True Valid"))?;
    cluster_stores.delete(&cluster_name, &Default::default()).await?;

    // By now a served store's ExternalSecrets have synced several times over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for left in ["unclassed", "foreign", "mixed"] {
        assert_eq!(eso_ready(&env, left).await?, None, "{left} got a status from vaultsync");
        assert!(env.secrets().get_opt(left).await?.is_none(), "vaultsync wrote a Secret for {left}");
    }
    for store in ["unclassed", "esos"] {
        assert_eq!(eso_store_ready(&env, store).await?, None, "store {store} got a status from vaultsync");
    }
    env.cleanup().await;
    Ok(())
}

/// Handover from ESO, in place: a Secret as ESO leaves it (ESO's owner
/// reference, labels and annotations, ESO's field manager) is taken over
/// when its store's class becomes vaultsync's, never absent and never with
/// another value; given back, vaultsync stops writing at once and kicks the
/// ExternalSecret for ESO (its force-sync annotation).
#[tokio::test]
async fn a_store_changes_hands_with_its_secrets_in_place() -> anyhow::Result<()> {
    let env = TestEnv::new("eso-handover").await?;
    let value = env.secret_value("eso-handover");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("eso-token", &[("token", "root")]).await?;
    env.apply(eso_store(&env, "vault", Some("default"))).await?;
    let es = env.apply(eso_external_secret("legacy", "vault", &path)).await?;

    // The Secret as ESO's controller would have written it.
    let eso_secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "legacy",
            "labels": {"reconcile.external-secrets.io/managed": "true"},
            "annotations": {"reconcile.external-secrets.io/data-hash": "written-by-eso"},
            "ownerReferences": [{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": "legacy",
                "uid": es.metadata.uid, "controller": true, "blockOwnerDeletion": true}],
        },
        "type": "Opaque",
        "stringData": {"v": value},
    }))?;
    let params =
        PostParams { field_manager: Some("externalsecrets.external-secrets.io/legacy".into()), ..Default::default() };
    let created = env.secrets().create(&params, &eso_secret).await?;

    // ESO's store: nothing of it is vaultsync's.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let untouched = env.secrets().get("legacy").await?;
    assert_eq!(untouched.metadata.resource_version, created.metadata.resource_version, "ESO's Secret was written");
    assert_eq!(eso_ready(&env, "legacy").await?, None);

    // Handed to vaultsync, watched throughout: never absent, never another value.
    let watch = {
        let (secrets, value) = (env.secrets(), value.clone());
        tokio::spawn(async move {
            let mut seen = 0u32;
            loop {
                let secret = secrets.get_opt("legacy").await?;
                let data = secret.as_ref().and_then(|s| s.data.clone()).unwrap_or_default();
                let held = data.get("v").map(|v| String::from_utf8_lossy(&v.0).into_owned());
                anyhow::ensure!(held.as_deref() == Some(value.as_str()), "Secret legacy held {held:?} at read {seen}");
                seen += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            #[allow(unreachable_code)]
            Ok::<u32, anyhow::Error>(seen)
        })
    };
    env.apply(eso_store(&env, "vault", Some(CLASS))).await?;
    let (reason, _) = wait_eso_ready(&env, "legacy", "True").await?;
    assert_eq!(reason, "SecretSynced");
    let taken = env.secrets().get("legacy").await?;
    assert_eq!(taken.metadata.uid, created.metadata.uid, "the same Secret, in place");
    let annotations = taken.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("eso.vaultsync.dev/external-secret").map(String::as_str), Some("legacy"));
    assert_eq!(
        annotations.get("reconcile.external-secrets.io/data-hash").map(String::as_str),
        Some("written-by-eso"),
        "ESO's marks stay for the way back"
    );
    let labels = taken.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("reconcile.external-secrets.io/managed").map(String::as_str), Some("true"));
    let owners = taken.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "one owner, ESO's and vaultsync's alike: {owners:?}");
    assert_eq!(Some(&owners[0].uid), es.metadata.uid.as_ref());
    anyhow::ensure!(!watch.is_finished(), "the watch of Secret legacy stopped: {:?}", watch.await);
    watch.abort();

    // Given back to ESO's class: a new value in OpenBao and a force-sync
    // request are no longer vaultsync's to act on.
    env.apply(eso_store(&env, "vault", Some("default"))).await?;
    let eso_es = eso_external_secrets(&env);
    eventually(Duration::from_secs(30), || async {
        let es = eso_es.get("legacy").await?;
        Ok(es.metadata.annotations.unwrap_or_default().contains_key("external-secrets.io/force-sync"))
    })
    .await
    .map_err(|e| e.context("the ExternalSecret was not kicked for ESO when its store was given back"))?;
    let handed_back = env.secrets().get("legacy").await?;
    let next = env.secret_value("eso-handover-next");
    env.bao.kv2_put(&path, json!({"v": next})).await?;
    eso_es
        .patch(
            "legacy",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"vaultsync.dev/force-sync": "after-hand-back"}}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = env.secrets().get("legacy").await?;
    assert_eq!(
        after.metadata.resource_version, handed_back.metadata.resource_version,
        "vaultsync wrote after giving the store back"
    );
    env.cleanup().await;
    Ok(())
}

/// From ESO's group into vaultsync's, with the Secret never absent or
/// changed: the ESO-group ExternalSecret orphans its Secret
/// (`creationPolicy: Orphan`, `deletionPolicy: Retain`) and is deleted; a
/// vaultsync.dev ExternalSecret annotated `vaultsync.dev/adopt:
/// external-secrets.io` takes the Secret over. Without the annotation, or
/// while the ESO-group ExternalSecret still controls it, the Secret is
/// refused with the way to move it.
#[tokio::test]
async fn an_eso_group_secret_is_adopted_into_vaultsyncs_group() -> anyhow::Result<()> {
    let env = TestEnv::new("eso-adopt").await?;
    let value = env.secret_value("eso-adopt");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("eso-token", &[("token", "root")]).await?;
    env.apply(eso_store(&env, "eso-vault", Some(CLASS))).await?;
    let eso_es = env.apply(eso_external_secret("app", "eso-vault", &path)).await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    let original = env.secrets().get("app").await?;
    let owners = original.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(
        owners.iter().map(|o| o.uid.clone()).collect::<Vec<_>>(),
        [eso_es.metadata.uid.clone().unwrap_or_default()]
    );

    let watch = {
        let (secrets, value) = (env.secrets(), value.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            loop {
                let held = secrets
                    .get_opt("app")
                    .await?
                    .and_then(|s| s.data)
                    .and_then(|d| d.get("v").map(|v| String::from_utf8_lossy(&v.0).into_owned()));
                anyhow::ensure!(held.as_deref() == Some(value.as_str()), "Secret app held {held:?} at read {reads}");
                reads += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            #[allow(unreachable_code)]
            Ok::<u32, anyhow::Error>(reads)
        })
    };

    // vaultsync's own store and a vaultsync.dev ExternalSecret: refused
    // while ESO's group controls the Secret, and told how to move it.
    env.token_store("vault", "root", json!({})).await?;
    let vaultsync_es = |name: &str, adopt: bool| {
        let mut es = vaultsync_e2e::external_secret(
            name,
            "vault",
            json!({"target": {"name": "app"}, "data": [{"secretKey": "v", "remoteRef": {"key": path, "property": "v"}}]}),
        );
        if adopt {
            es["metadata"]["annotations"] = json!({"vaultsync.dev/adopt": "external-secrets.io"});
        }
        es
    };
    env.apply(vaultsync_es("early", true)).await?;
    let (_, message) = env.wait_ready("early", "False").await?;
    assert!(message.contains("is controlled by ExternalSecret \"app\" (external-secrets.io/v1)"), "{message}");
    assert!(message.contains("creationPolicy Orphan"), "{message}");
    env.external_secrets().delete("early", &Default::default()).await?;

    // Orphaned by the ESO-group ExternalSecret, then deleted: nothing goes.
    let mut orphan = eso_external_secret("app", "eso-vault", &path);
    orphan["spec"]["target"]["creationPolicy"] = json!("Orphan");
    orphan["spec"]["target"]["deletionPolicy"] = json!("Retain");
    env.apply(orphan).await?;
    eventually(Duration::from_secs(30), || async {
        Ok(env.secrets().get("app").await?.metadata.owner_references.unwrap_or_default().is_empty())
    })
    .await
    .map_err(|e| e.context("the Orphan ExternalSecret kept its owner reference on Secret app"))?;
    eso_external_secrets(&env).delete("app", &Default::default()).await?;
    eventually(Duration::from_secs(30), || async { Ok(eso_external_secrets(&env).get_opt("app").await?.is_none()) })
        .await?;

    // Without the annotation: refused, with the annotation to use.
    env.apply(vaultsync_es("plain", false)).await?;
    let (_, message) = env.wait_ready("plain", "False").await?;
    assert!(message.contains("vaultsync.dev/adopt=external-secrets.io"), "{message}");
    env.external_secrets().delete("plain", &Default::default()).await?;

    // Adopted, in place.
    let adopter = env.apply(vaultsync_es("app", true)).await?;
    let (reason, _) = env.wait_ready("app", "True").await?;
    assert_eq!(reason, "SecretSynced");
    let adopted = env.secrets().get("app").await?;
    assert_eq!(adopted.metadata.uid, original.metadata.uid, "the same Secret, never re-created");
    let owners = adopted.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(
        (owners[0].api_version.as_str(), Some(&owners[0].uid)),
        ("vaultsync.dev/v1alpha1", adopter.metadata.uid.as_ref())
    );
    anyhow::ensure!(!watch.is_finished(), "the watch of Secret app stopped: {:?}", watch.await);
    watch.abort();
    env.cleanup().await;
    Ok(())
}

/// A cluster whose ESO controller is gone (`--eso-claim-unclassed`, here
/// an operator of the test's own, scoped to its namespace): stores
/// without a class are served, and deleting an ExternalSecret finishes
/// as ESO would have finished it: its Secret deleted (`deletionPolicy:
/// Delete`) and ESO's finalizer removed, instead of hanging forever.
#[tokio::test]
async fn without_eso_unclassed_stores_are_claimed_and_deletions_finish() -> anyhow::Result<()> {
    let env = TestEnv::new("eso-claim").await?;
    let _operator = vaultsync_e2e::spawn_operator(
        "eso-claim",
        &[
            ("VAULTSYNC_NAMESPACE", &env.namespace),
            ("VAULTSYNC_ESO_API", "true"),
            ("VAULTSYNC_ESO_CLAIM_UNCLASSED", "true"),
        ],
    )?;

    let value = env.secret_value("eso-claim");
    let path = format!("{}/app", env.prefix);
    env.bao.kv2_put(&path, json!({"v": value})).await?;
    env.create_secret("eso-token", &[("token", "root")]).await?;
    env.apply(eso_store(&env, "unclassed", None)).await?;
    let mut es = eso_external_secret("app", "unclassed", &path);
    es["metadata"]["finalizers"] = json!(["externalsecrets.external-secrets.io/externalsecret-cleanup"]);
    es["spec"]["target"]["deletionPolicy"] = json!("Delete");
    env.apply(es).await?;
    assert_eq!(env.wait_secret("app").await?.get("v"), Some(&value));
    let (reason, _) = wait_eso_ready(&env, "app", "True").await?;
    assert_eq!(reason, "SecretSynced");

    eso_external_secrets(&env).delete("app", &Default::default()).await?;
    eventually(Duration::from_secs(30), || async { Ok(eso_external_secrets(&env).get_opt("app").await?.is_none()) })
        .await
        .map_err(|e| e.context("the ExternalSecret's deletion hung on ESO's finalizer"))?;
    eventually(Duration::from_secs(30), || async { Ok(env.secrets().get_opt("app").await?.is_none()) })
        .await
        .map_err(|e| e.context("deletionPolicy Delete left the Secret"))?;
    env.cleanup().await;
    Ok(())
}
