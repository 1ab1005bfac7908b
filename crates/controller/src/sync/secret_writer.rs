//! Writes the target Secret by server-side apply, and only when something
//! changed. Refuses to take over a Secret vaultsync does not manage.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use vaultsync_api::{CreationPolicy, ExternalSecret, FIELD_MANAGER};

use crate::context::{Context, SyncMemo};
use crate::error::{Error, Result};
use crate::secret_data::{SecretData, data_hash, digest};
use crate::served::Group;
use crate::sync::templating::Shaped;
use crate::sync::write_failure::{conflicting_fields, conflicting_managers, write_failure};
use crate::{DATA_HASH_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, TEMPLATE_INPUT_HASH_ANNOTATION};

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    Created,
    /// The Secret was rewritten; `data_changed` when its data (not only its
    /// labels, annotations or owner) differs from what it held.
    Updated {
        data_changed: bool,
    },
    Unchanged,
    /// `creationPolicy: None`: nothing is written by design.
    Skipped,
}

/// The given keys of a Secret as it is stored now; `None` if one is missing.
fn stored_data(secret: &Secret, keys: impl IntoIterator<Item = String>) -> Option<SecretData> {
    let stored = secret.data.as_ref()?;
    keys.into_iter().map(|key| stored.get(&key).map(|value| (key, value.0.clone()))).collect()
}

/// Hash of the given keys of a Secret as it is stored now.
fn stored_hash(secret: &Secret, keys: impl IntoIterator<Item = String>) -> Option<String> {
    stored_data(secret, keys).map(|data| data_hash(&data))
}

/// Longest name part of an annotation key.
const ANNOTATION_NAME_MAX: usize = 63;

/// Who writes for `es`, and where its data hash is recorded. Owner and
/// Orphan Secrets have one writer, the shared `vaultsync` manager. Merge
/// writers each get a field manager and a hash annotation of their own, so
/// server-side apply keeps every writer's keys instead of each apply
/// removing the others' (two Merge ExternalSecrets on one Secret used to
/// delete each other's keys at every write).
pub(crate) struct Writer {
    pub field_manager: String,
    pub hash_annotation: String,
}

impl Writer {
    pub fn of(es: &ExternalSecret, group: Group) -> Writer {
        if !es.spec.target.creation_policy.merges() {
            return Writer {
                field_manager: FIELD_MANAGER.to_owned(),
                hash_annotation: DATA_HASH_ANNOTATION.to_owned(),
            };
        }
        let namespace = es.namespace().unwrap_or_default();
        let name = es.name_any();
        let short = |limit: usize, text: &str| -> String {
            if text.len() <= limit {
                return text.to_owned();
            }
            // Too long for the field: a readable start and a hash of the whole.
            let hash = digest([text.as_bytes()]);
            let head: String = text.chars().take(limit - 17).collect();
            format!("{}-{}", head.trim_end_matches(['-', '.']), &hash[..16])
        };
        // An ESO-group writer's manager is marked: the two groups' objects
        // may share a name.
        let eso = if group == Group::Eso { "eso/" } else { "" };
        Writer {
            // Field managers are limited to 128 characters.
            field_manager: short(128, &format!("{FIELD_MANAGER}/{eso}{namespace}/{name}")),
            hash_annotation: format!("{}{}", group.merge_hash_prefix(), short(ANNOTATION_NAME_MAX, &name)),
        }
    }

    /// Whether a field manager is vaultsync's, for any ExternalSecret.
    fn is_vaultsync(manager: &str) -> bool {
        manager == FIELD_MANAGER || manager.starts_with(&format!("{FIELD_MANAGER}/"))
    }
}

/// When the template rendered from the same inputs as the last write and
/// the Secret still holds that write, the stored data stands: re-rendering
/// a salted PKCS#12 archive must not rewrite (and roll) the Secret at every
/// refresh.
fn keep_stored_render(secret: &Secret, shaped: &mut Shaped) {
    let annotations = secret.annotations();
    if shaped.input_hash.is_none() || annotations.get(TEMPLATE_INPUT_HASH_ANNOTATION) != shaped.input_hash.as_ref() {
        return;
    }
    if let Some(stored) = stored_data(secret, shaped.data.keys().cloned())
        && annotations.get(DATA_HASH_ANNOTATION) == Some(&data_hash(&stored))
    {
        shaped.data = stored;
    }
}

/// Whether the Secret still holds exactly what vaultsync last wrote or
/// found: `memo`'s hash, recorded on the Secret and matching its bytes.
pub(crate) async fn still_synced(ctx: &Context, es: &ExternalSecret, memo: &SyncMemo) -> Result<bool> {
    if es.spec.target.creation_policy == CreationPolicy::None {
        return Ok(true);
    }
    let namespace = es.namespace().unwrap_or_default();
    let hash_annotation = Writer::of(es, ctx.group).hash_annotation;
    // The watch cache answers without a request when the Secret is at the
    // very resourceVersion we wrote or checked: nothing can have changed.
    let key = ObjectRef::new(es.target_name()).within(&namespace);
    if let Some(cached) = ctx.caches.managed_secrets.get().and_then(|c| c.get(&key))
        && memo.resource_version.is_some()
        && cached.resource_version() == memo.resource_version
        && cached.annotations().get(&hash_annotation) == Some(&memo.data_hash)
    {
        return Ok(true);
    }
    let Some(secret) = Api::<Secret>::namespaced(ctx.client.clone(), &namespace).get_opt(es.target_name()).await?
    else {
        return Ok(false);
    };
    Ok(secret.annotations().get(&hash_annotation) == Some(&memo.data_hash)
        && stored_hash(&secret, memo.keys.iter().cloned()).as_deref() == Some(memo.data_hash.as_str()))
}

/// Deletes the target Secret if this ExternalSecret created it (never one
/// it only merges into). Returns whether a Secret was deleted.
pub(crate) async fn delete_owned(client: &kube::Client, group: Group, es: &ExternalSecret) -> Result<bool> {
    if es.spec.target.creation_policy.merges() || es.spec.target.creation_policy == CreationPolicy::None {
        return Ok(false);
    }
    let namespace = es.namespace().unwrap_or_default();
    let api = Api::<Secret>::namespaced(client.clone(), &namespace);
    let Some(secret) = api.get_opt(es.target_name()).await? else {
        return Ok(false);
    };
    if secret.annotations().get(group.manager_annotation()) != Some(&es.name_any()) {
        return Ok(false);
    }
    // Guarded by uid so a Secret re-created by someone else meanwhile stays.
    let params = kube::api::DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid: secret.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    api.delete(es.target_name(), &params).await?;
    Ok(true)
}

/// Whether this ExternalSecret's target Secret exists and was written by it.
pub(crate) async fn exists_managed(client: &kube::Client, group: Group, es: &ExternalSecret) -> Result<bool> {
    let namespace = es.namespace().unwrap_or_default();
    let secret = Api::<Secret>::namespaced(client.clone(), &namespace).get_opt(es.target_name()).await?;
    Ok(secret.is_some_and(|s| match es.spec.target.creation_policy {
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge => {
            s.annotations().contains_key(&Writer::of(es, group).hash_annotation)
        }
        _ => manages(group, &s, es),
    }))
}

/// Applies the shaped data, labels and annotations to the ExternalSecret's
/// target Secret.
pub(crate) async fn write(
    client: &kube::Client,
    group: Group,
    es: &ExternalSecret,
    shaped: &mut Shaped,
) -> Result<(Written, Option<String>)> {
    let policy = es.spec.target.creation_policy;
    if policy == CreationPolicy::None {
        return Ok((Written::Skipped, None));
    }
    let namespace = es.namespace().unwrap_or_default();
    let name = es.target_name();
    let es_name = es.name_any();
    let api = Api::<Secret>::namespaced(client.clone(), &namespace);
    let existing = api.get_opt(name).await?;
    let writer = Writer::of(es, group);
    if let Some(secret) = &existing
        && !policy.merges()
    {
        keep_stored_render(secret, shaped);
    }
    let data = &shaped.data;
    let hash = data_hash(data);

    match (&existing, policy) {
        (None, CreationPolicy::Merge) => {
            return Err(Error::Target(format!(
                "Secret {name:?} does not exist; creationPolicy Merge only adds keys to an existing Secret"
            )));
        }
        (Some(secret), CreationPolicy::Owner | CreationPolicy::Orphan) if !manages(group, secret, es) => {
            return Err(Error::Target(format!(
                "Secret {name:?} already exists and {}; vaultsync will not overwrite it. Delete it, rename target.name, or use creationPolicy Merge",
                whose(secret)
            )));
        }
        _ => {}
    }

    if let Some(secret) = &existing
        && policy == CreationPolicy::Orphan
    {
        release_ownership(&api, secret, es).await?;
    }

    let template = es.spec.target.template.clone().unwrap_or_default();
    // Ours win over the template's: the watch and the takeover guard rely
    // on them.
    let mut labels = shaped.labels.clone();
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned());
    let mut annotations = shaped.annotations.clone();
    annotations.insert(writer.hash_annotation.clone(), hash.clone());
    // A Merge writer claims only its keys and its own hash: the Secret
    // belongs to whoever created it, and several Merge writers share it.
    if !policy.merges() {
        annotations.insert(group.manager_annotation().to_owned(), es_name.clone());
        if let Some(input_hash) = &shaped.input_hash {
            annotations.insert(TEMPLATE_INPUT_HASH_ANNOTATION.to_owned(), input_hash.clone());
        }
    }
    // Merge leaves the type to whoever created the Secret; CreateOrMerge
    // sets it only when it creates the Secret.
    let secret_type = (!policy.merges() || existing.is_none())
        .then(|| template.type_.or_else(|| shaped.default_type.clone()).unwrap_or_else(|| "Opaque".to_owned()));
    refuse_api_token_secret(name, secret_type.as_deref(), &annotations, existing.as_ref())?;

    // The template's finalizers (ESO's template.metadata.finalizers), not
    // added again to a Secret on its way out.
    let deleting = existing.as_ref().is_some_and(|s| s.meta().deletion_timestamp.is_some());
    let finalizers = template.metadata.as_ref().map(|m| m.finalizers.clone()).unwrap_or_default();
    let finalizers = (!deleting && !finalizers.is_empty()).then_some(finalizers);
    if let Some(secret) = &existing {
        let contains = |have: &BTreeMap<String, String>, want: &BTreeMap<String, String>| {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        };
        let shape_ok = contains(secret.labels(), &labels)
            && contains(secret.annotations(), &annotations)
            && finalizers.iter().flatten().all(|f| secret.finalizers().contains(f))
            && (secret_type.is_none() || secret.type_ == secret_type);
        // The data hash and our label are part of `shape_ok`.
        let metadata_ok = shape_ok
            && (policy != CreationPolicy::Owner
                || secret.owner_references().iter().any(|o| Some(&o.uid) == es.meta().uid.as_ref()));
        let immutable_ok = es.spec.target.immutable.is_none_or(|want| secret.immutable.unwrap_or(false) == want);
        if metadata_ok && immutable_ok && stored_hash(secret, data.keys().cloned()).as_deref() == Some(hash.as_str()) {
            return Ok((Written::Unchanged, secret.resource_version()));
        }
        if secret.immutable == Some(true) {
            return Err(Error::Target(format!(
                "Secret {name:?} is immutable and its data differs from the store; delete it so vaultsync can write it again"
            )));
        }
    }

    let owner_references =
        (policy == CreationPolicy::Owner).then(|| group.controller_owner_ref(es).into_iter().collect());
    let desired = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references,
            finalizers,
            ..ObjectMeta::default()
        },
        data: Some(data.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect()),
        type_: secret_type.clone(),
        immutable: es.spec.target.immutable,
        ..Secret::default()
    };
    let mut patch = serde_json::to_value(&desired).map_err(|e| Error::Target(format!("cannot encode Secret: {e}")))?;
    patch["apiVersion"] = "v1".into();
    patch["kind"] = "Secret".into();
    let applied = match policy {
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge => apply_merge(&api, name, &writer, &patch).await?,
        _ => api
            .patch(name, &PatchParams::apply(&writer.field_manager).force(), &Patch::Apply(patch))
            .await
            .map_err(|e| write_failure(name, secret_type.as_deref(), &e))?,
    };
    let written = match &existing {
        Some(secret) => {
            // Merge writers compare their own keys; the others the whole data.
            let same_keys = policy.merges()
                || secret.data.as_ref().is_some_and(|have| have.keys().eq(data.keys()))
                || (secret.data.as_ref().is_none_or(BTreeMap::is_empty) && data.is_empty());
            let data_changed =
                !same_keys || stored_hash(secret, data.keys().cloned()).as_deref() != Some(hash.as_str());
            Written::Updated { data_changed }
        }
        None => Written::Created,
    };
    Ok((written, applied.resource_version()))
}

/// Whether `es` (of `group`) writes `secret`: its annotation names `es`,
/// or, in ESO's group, ESO wrote it for this very ExternalSecret (its
/// controller reference has the ExternalSecret's uid). The latter is the
/// handover from ESO: a store given to vaultsync's class keeps its
/// Secrets, in place, with the owner they already have.
///
/// Also the adoption from ESO's group into vaultsync's (a vaultsync.dev
/// ExternalSecret annotated `vaultsync.dev/adopt: external-secrets.io`):
/// a Secret that an ESO-group ExternalSecret wrote and then orphaned (ESO's
/// `managed` label or vaultsync's ESO-group annotation, and no controller
/// at all) is taken as it is. Nothing else is adopted: not a Secret some
/// controller still owns, not one ESO never wrote.
fn manages(group: Group, secret: &Secret, es: &ExternalSecret) -> bool {
    if secret.annotations().get(group.manager_annotation()) == Some(&es.name_any()) {
        return true;
    }
    let controlled_by_es = |uid: &Option<String>| {
        uid.is_some()
            && secret.owner_references().iter().any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
    };
    match group {
        Group::Eso => controlled_by_es(&es.meta().uid),
        Group::Vaultsync => {
            let adopts = es.annotations().get(vaultsync_api::ADOPT_ANNOTATION).map(String::as_str)
                == Some(crate::served::ESO_GROUP);
            let written_by_eso = secret.labels().get(ESO_MANAGED_LABEL).map(String::as_str) == Some("true")
                || secret.annotations().contains_key(Group::Eso.manager_annotation());
            let uncontrolled = secret.owner_references().iter().all(|o| o.controller != Some(true));
            adopts && written_by_eso && uncontrolled
        }
    }
}

/// Who writes `secret`, for the refusal to overwrite it.
fn whose(secret: &Secret) -> String {
    let annotations = secret.annotations();
    if let Some(controller) = secret.owner_references().iter().find(|o| o.controller == Some(true)) {
        let adopt = if controller.api_version.starts_with(crate::served::ESO_GROUP) {
            " (to move it into vaultsync.dev: creationPolicy Orphan on that ExternalSecret, delete it, then annotate this one vaultsync.dev/adopt=external-secrets.io; docs/migration.md)"
        } else {
            ""
        };
        return format!(
            "is controlled by {} {:?} ({}){adopt}",
            controller.kind, controller.name, controller.api_version
        );
    }
    match (annotations.get(Group::Vaultsync.manager_annotation()), annotations.get(Group::Eso.manager_annotation())) {
        (Some(manager), _) => format!("is managed by ExternalSecret {manager:?}"),
        (None, Some(manager)) => format!(
            "was written for ExternalSecret {manager:?} of external-secrets.io (annotate this one vaultsync.dev/adopt=external-secrets.io to take it over)"
        ),
        (None, None) => "is not managed by vaultsync".to_owned(),
    }
}

/// The label ESO puts on every Secret it manages.
const ESO_MANAGED_LABEL: &str = "reconcile.external-secrets.io/managed";

/// `creationPolicy: Orphan`: the controller reference to `es` goes, even
/// one another field manager also holds (ESO's own, on a Secret handed over
/// from ESO), which server-side apply alone would leave. A JSON patch
/// whose `test` fails, the Secret having changed meanwhile, changes
/// nothing; the next sync looks again.
async fn release_ownership(api: &Api<Secret>, secret: &Secret, es: &ExternalSecret) -> Result<()> {
    let Some(uid) = es.meta().uid.as_deref() else { return Ok(()) };
    let Some(index) = secret.owner_references().iter().position(|o| o.uid == uid) else { return Ok(()) };
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": format!("/metadata/ownerReferences/{index}/uid"), "value": uid},
        {"op": "remove", "path": format!("/metadata/ownerReferences/{index}")},
    ]))
    .map_err(|e| Error::Internal(format!("owner reference patch: {e}")))?;
    let name = secret.name_any();
    match api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch)).await {
        Ok(_) => Ok(()),
        // The test failed: someone changed the references first.
        Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => Ok(()),
        Err(e) => Err(write_failure(&name, None, &e)),
    }
}

/// The Secret type kube-controller-manager fills with a non-expiring API
/// token for the ServiceAccount its annotation names.
const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SERVICE_ACCOUNT_ANNOTATIONS: [&str; 2] =
    ["kubernetes.io/service-account.name", "kubernetes.io/service-account.uid"];

/// vaultsync writes no Secret that Kubernetes would turn into (or that
/// already holds) an API token: whoever may write an ExternalSecret could
/// otherwise mint a token of any ServiceAccount of the namespace, or
/// overwrite one. The CRD refuses a static template with CEL; this also
/// covers rendered annotations, templateFrom, ESO's group, and Merge into
/// an existing token Secret.
fn refuse_api_token_secret(
    name: &str,
    secret_type: Option<&str>,
    annotations: &BTreeMap<String, String>,
    existing: Option<&Secret>,
) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::Target(format!(
            "Secret {name:?} is refused: {what}; vaultsync never writes Secrets that Kubernetes fills with API tokens"
        )))
    };
    if secret_type == Some(SERVICE_ACCOUNT_TOKEN_TYPE) {
        return refuse("type kubernetes.io/service-account-token");
    }
    if let Some(key) = SERVICE_ACCOUNT_ANNOTATIONS.iter().find(|key| annotations.contains_key(**key)) {
        return refuse(&format!("the annotation {key}"));
    }
    if existing.is_some_and(|secret| secret.type_.as_deref() == Some(SERVICE_ACCOUNT_TOKEN_TYPE)) {
        return refuse("the existing Secret is of type kubernetes.io/service-account-token");
    }
    Ok(())
}

/// A Merge write. Without force first: a key another ExternalSecret
/// already writes is a conflict reported here, on the later writer, instead
/// of a tug of war between the two. A key owned by anyone else (whoever
/// created the Secret) is taken over, as Merge promises.
async fn apply_merge(api: &Api<Secret>, name: &str, writer: &Writer, patch: &serde_json::Value) -> Result<Secret> {
    let polite = PatchParams::apply(&writer.field_manager);
    // Merge leaves the type alone, so no type-specific explanation.
    let failure = |e: kube::Error| write_failure(name, None, &e);
    match api.patch(name, &polite, &Patch::Apply(patch)).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let rivals: Vec<&str> = conflicting_managers(&status.message)
                .into_iter()
                .filter(|manager| Writer::is_vaultsync(manager))
                .collect();
            if !rivals.is_empty() {
                return Err(Error::Target(format!(
                    "Secret {name:?}: a key this ExternalSecret merges ({}) is already written by {}; two \
                     ExternalSecrets may not write the same key",
                    conflicting_fields(&status).join(", "),
                    rivals.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", "),
                )));
            }
            api.patch(name, &polite.force(), &Patch::Apply(patch)).await.map_err(failure)
        }
        other => other.map_err(failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_way_to_an_api_token_secret() {
        let none = BTreeMap::new();
        assert!(refuse_api_token_secret("s", Some("Opaque"), &none, None).is_ok());
        assert!(refuse_api_token_secret("s", Some(SERVICE_ACCOUNT_TOKEN_TYPE), &none, None).is_err());
        for key in SERVICE_ACCOUNT_ANNOTATIONS {
            let annotations = BTreeMap::from([(key.to_owned(), "deployer".to_owned())]);
            let message = refuse_api_token_secret("s", Some("Opaque"), &annotations, None).unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
        }
        let existing = Secret { type_: Some(SERVICE_ACCOUNT_TOKEN_TYPE.into()), ..Secret::default() };
        assert!(refuse_api_token_secret("s", None, &none, Some(&existing)).is_err(), "Merge into a token Secret");
    }

    fn secret_with(value: serde_json::Value) -> Secret {
        serde_json::from_value(value).expect("a Secret")
    }

    fn es_with(annotations: serde_json::Value) -> ExternalSecret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": "app", "namespace": "n", "uid": "es-uid", "annotations": annotations},
            "spec": {"secretStoreRef": {"name": "vault"}},
        }))
        .expect("an ExternalSecret")
    }

    #[test]
    fn who_may_write_an_existing_secret() {
        let eso_owned = secret_with(serde_json::json!({"metadata": {"name": "app",
            "labels": {ESO_MANAGED_LABEL: "true"},
            "ownerReferences": [{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "name": "app",
                                 "uid": "es-uid", "controller": true}]}}));
        let plain = es_with(serde_json::json!({}));
        let adopting = es_with(serde_json::json!({vaultsync_api::ADOPT_ANNOTATION: "external-secrets.io"}));
        // ESO's group: the Secret ESO wrote for this very ExternalSecret.
        assert!(manages(Group::Eso, &eso_owned, &plain));
        // vaultsync's group: not while a controller owns it, even adopting.
        assert!(!manages(Group::Vaultsync, &eso_owned, &adopting));
        assert!(whose(&eso_owned).contains("creationPolicy Orphan"), "{}", whose(&eso_owned));

        let orphaned =
            secret_with(serde_json::json!({"metadata": {"name": "app", "labels": {ESO_MANAGED_LABEL: "true"}}}));
        assert!(manages(Group::Vaultsync, &orphaned, &adopting));
        assert!(!manages(Group::Vaultsync, &orphaned, &plain), "adoption is asked for, never assumed");
        assert!(!manages(Group::Eso, &orphaned, &plain), "an orphan is nobody's in ESO's group");

        // A Secret ESO never wrote is never adopted.
        let hand_made = secret_with(serde_json::json!({"metadata": {"name": "app"}}));
        assert!(!manages(Group::Vaultsync, &hand_made, &adopting));
        assert_eq!(whose(&hand_made), "is not managed by vaultsync");
    }

    #[test]
    fn reads_the_managers_of_an_apply_conflict() {
        let message = r#"Apply failed with 2 conflicts: conflict with "vaultsync/ns/a": .data.password, conflict with "kubectl-create" using v1: .data.user"#;
        assert_eq!(conflicting_managers(message), vec!["vaultsync/ns/a", "kubectl-create"]);
        assert!(Writer::is_vaultsync("vaultsync/ns/a") && Writer::is_vaultsync("vaultsync"));
        assert!(!Writer::is_vaultsync("vaultsync-other"));
    }

    fn written(data: &SecretData, input_hash: &str) -> Secret {
        let mut secret = Secret {
            data: Some(data.iter().map(|(k, v)| (k.clone(), ByteString(v.clone()))).collect()),
            ..Secret::default()
        };
        let annotations = secret.metadata.annotations.get_or_insert_default();
        annotations.insert(DATA_HASH_ANNOTATION.into(), data_hash(data));
        annotations.insert(TEMPLATE_INPUT_HASH_ANNOTATION.into(), input_hash.into());
        secret
    }

    fn shaped(value: &[u8], input_hash: &str) -> Shaped {
        Shaped {
            data: SecretData::from([("keystore.p12".into(), value.to_vec())]),
            input_hash: Some(input_hash.into()),
            ..Shaped::default()
        }
    }

    #[test]
    fn same_inputs_keep_the_stored_render() {
        let stored = SecretData::from([("keystore.p12".into(), b"salt-1".to_vec())]);
        let secret = written(&stored, "inputs-a");

        let mut same_inputs = shaped(b"salt-2", "inputs-a");
        keep_stored_render(&secret, &mut same_inputs);
        assert_eq!(same_inputs.data, stored);

        let mut new_inputs = shaped(b"salt-3", "inputs-b");
        keep_stored_render(&secret, &mut new_inputs);
        assert_eq!(new_inputs.data["keystore.p12"], b"salt-3");

        // Someone edited the Secret since: it no longer matches its hash.
        let mut edited = secret.clone();
        edited.data.as_mut().unwrap().insert("keystore.p12".into(), ByteString(b"edited".to_vec()));
        let mut repaired = shaped(b"salt-4", "inputs-a");
        keep_stored_render(&edited, &mut repaired);
        assert_eq!(repaired.data["keystore.p12"], b"salt-4");
    }
}
