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
use crate::sync::templating::Shaped;
use crate::{
    DATA_HASH_ANNOTATION, EXTERNAL_SECRET_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    TEMPLATE_INPUT_HASH_ANNOTATION,
};

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

/// Prefix of the annotation in which each `creationPolicy: Merge` writer
/// records the hash of its own keys; the rest of the key names the writer.
pub(crate) const MERGE_HASH_PREFIX: &str = "merge.vaultsync.dev/";

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
    pub fn of(es: &ExternalSecret) -> Writer {
        if es.spec.target.creation_policy != CreationPolicy::Merge {
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
        Writer {
            // Field managers are limited to 128 characters.
            field_manager: short(128, &format!("{FIELD_MANAGER}/{namespace}/{name}")),
            hash_annotation: format!("{MERGE_HASH_PREFIX}{}", short(ANNOTATION_NAME_MAX, &name)),
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
    let hash_annotation = Writer::of(es).hash_annotation;
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
pub(crate) async fn delete_owned(client: &kube::Client, es: &ExternalSecret) -> Result<bool> {
    if matches!(es.spec.target.creation_policy, CreationPolicy::Merge | CreationPolicy::None) {
        return Ok(false);
    }
    let namespace = es.namespace().unwrap_or_default();
    let api = Api::<Secret>::namespaced(client.clone(), &namespace);
    let Some(secret) = api.get_opt(es.target_name()).await? else {
        return Ok(false);
    };
    if secret.annotations().get(EXTERNAL_SECRET_ANNOTATION) != Some(&es.name_any()) {
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
pub(crate) async fn exists_managed(client: &kube::Client, es: &ExternalSecret) -> Result<bool> {
    let namespace = es.namespace().unwrap_or_default();
    let secret = Api::<Secret>::namespaced(client.clone(), &namespace).get_opt(es.target_name()).await?;
    Ok(secret.is_some_and(|s| match es.spec.target.creation_policy {
        CreationPolicy::Merge => s.annotations().contains_key(&Writer::of(es).hash_annotation),
        _ => s.annotations().get(EXTERNAL_SECRET_ANNOTATION) == Some(&es.name_any()),
    }))
}

/// Applies the shaped data, labels and annotations to the ExternalSecret's
/// target Secret.
pub(crate) async fn write(
    client: &kube::Client,
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
    let writer = Writer::of(es);
    if let Some(secret) = &existing
        && policy != CreationPolicy::Merge
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
        (Some(secret), CreationPolicy::Owner | CreationPolicy::Orphan) => {
            let manager = secret.annotations().get(EXTERNAL_SECRET_ANNOTATION);
            if manager.map(String::as_str) != Some(es_name.as_str()) {
                let who = manager.map_or_else(
                    || "is not managed by vaultsync".to_owned(),
                    |m| format!("is managed by ExternalSecret {m:?}"),
                );
                return Err(Error::Target(format!(
                    "Secret {name:?} already exists and {who}; vaultsync will not overwrite it. Delete it, rename target.name, or use creationPolicy Merge"
                )));
            }
        }
        _ => {}
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
    if policy != CreationPolicy::Merge {
        annotations.insert(EXTERNAL_SECRET_ANNOTATION.to_owned(), es_name.clone());
        if let Some(input_hash) = &shaped.input_hash {
            annotations.insert(TEMPLATE_INPUT_HASH_ANNOTATION.to_owned(), input_hash.clone());
        }
    }
    // Merge leaves the type to whoever created the Secret.
    let secret_type = (policy != CreationPolicy::Merge)
        .then(|| template.type_.or_else(|| shaped.default_type.clone()).unwrap_or_else(|| "Opaque".to_owned()));
    refuse_api_token_secret(name, secret_type.as_deref(), &annotations, existing.as_ref())?;

    if let Some(secret) = &existing {
        let contains = |have: &BTreeMap<String, String>, want: &BTreeMap<String, String>| {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        };
        let shape_ok = contains(secret.labels(), &labels)
            && contains(secret.annotations(), &annotations)
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
        (policy == CreationPolicy::Owner).then(|| es.controller_owner_ref(&()).into_iter().collect());
    let desired = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references,
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
        CreationPolicy::Merge => apply_merge(&api, name, &writer, &patch).await?,
        _ => api
            .patch(name, &PatchParams::apply(&writer.field_manager).force(), &Patch::Apply(patch))
            .await
            .map_err(|e| write_failure(name, secret_type.as_deref(), &e))?,
    };
    let written = match &existing {
        Some(secret) => {
            // Merge writers compare their own keys; the others the whole data.
            let same_keys = policy == CreationPolicy::Merge
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

/// A Merge write. Without force first: a key another ExternalSecret
/// already writes is a conflict reported here, on the later writer, instead
/// of a tug of war between the two. A key owned by anyone else (whoever
/// created the Secret) is taken over, as Merge promises.
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

/// The fields a server-side apply conflict names, from its causes (the
/// message is not quoted: see [`write_failure`]).
fn conflicting_fields(status: &kube::core::Status) -> Vec<String> {
    causes(status).filter_map(|cause| field_path(&cause.field)).collect()
}

fn causes(status: &kube::core::Status) -> impl Iterator<Item = &kube::core::response::StatusCause> {
    status.details.iter().flat_map(|details| details.causes.iter()).take(MAX_CAUSES)
}

/// Causes told per refused write; the rest are counted.
const MAX_CAUSES: usize = 8;

/// A refused write of Secret `name`, told without the API server's message.
/// That message may quote the data (Go's JSON parser says "invalid character
/// 'd' looking for beginning of object key string" about a
/// `.dockerconfigjson`), and status, Events and logs are readable by people
/// who may not read the Secret: one ExternalSecret per character would
/// rebuild a value. What stays: the HTTP code and reason, the fields the
/// causes name (keys, never values), and a fixed explanation per cause.
pub(crate) fn write_failure(name: &str, secret_type: Option<&str>, error: &kube::Error) -> Error {
    let detail = match error {
        kube::Error::Api(status) => refusal(status, secret_type),
        other => crate::error::kube_reason(other),
    };
    Error::SecretWrite { name: name.to_owned(), detail }
}

fn refusal(status: &kube::core::Status, secret_type: Option<&str>) -> String {
    let reason = token(&status.reason);
    let mut text = format!("HTTP {}", status.code);
    if !reason.is_empty() {
        text = format!("{text} {reason}");
    }
    let explained: Vec<String> = causes(status)
        .map(|cause| {
            let field = field_path(&cause.field);
            let why = explain_cause(secret_type, field.as_deref(), &token(&cause.reason));
            match field {
                Some(field) => format!("{field}: {why}"),
                None => why,
            }
        })
        .collect();
    let total = status.details.as_ref().map_or(0, |d| d.causes.len());
    if explained.is_empty() {
        return format!("{text}: {}", explain_status(status));
    }
    let more = if total > explained.len() { format!(" (and {} more)", total - explained.len()) } else { String::new() };
    format!("{text}: {}{more}", explained.join("; "))
}

/// A machine-readable word of the API server's (a reason such as `Invalid`
/// or `FieldValueInvalid`), kept only if it is one.
fn token(text: &str) -> String {
    if text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric()) { text.to_owned() } else { String::new() }
}

/// A field path such as `data[.dockerconfigjson]` or `metadata.labels`: the
/// characters of keys and paths only, so nothing else can ride along.
fn field_path(field: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.[]/".contains(c);
    (!field.is_empty() && field.len() <= 256 && field.chars().all(allowed)).then(|| field.to_owned())
}

/// A fixed explanation for one cause of a refused write.
fn explain_cause(secret_type: Option<&str>, field: Option<&str>, reason: &str) -> String {
    let key = field.and_then(|f| f.strip_prefix("data[")).and_then(|f| f.strip_suffix(']'));
    let of_type = secret_type.map(|t| format!(" for a Secret of type {t}")).unwrap_or_default();
    match (secret_type, key, reason) {
        (Some("kubernetes.io/dockerconfigjson"), Some(".dockerconfigjson"), "FieldValueInvalid") => {
            ".dockerconfigjson must be valid JSON of a docker config ({\"auths\": {...}})".into()
        }
        (Some("kubernetes.io/dockercfg"), Some(".dockercfg"), "FieldValueInvalid") => {
            ".dockercfg must be valid JSON of a legacy docker config".into()
        }
        (_, _, "FieldValueRequired") => format!("required{of_type}"),
        (_, _, "FieldValueTooLong" | "FieldValueTooMany") => {
            "too large (a Secret's data may hold at most 1 MiB; a label value 63 characters; annotations 256 KiB)"
                .into()
        }
        (_, _, "FieldValueForbidden") => "may not be set or changed here (for example: the Secret is immutable)".into(),
        (_, _, "FieldValueDuplicate") => "duplicated".into(),
        _ if field.is_some_and(|f| f.starts_with("metadata.labels")) => {
            "a label key must be a qualified name and its value at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
                .into()
        }
        _ if field.is_some_and(|f| f.starts_with("metadata.annotations")) => {
            "an annotation key must be a qualified name, and all annotations together at most 256 KiB".into()
        }
        _ if key.is_some() => format!("the API server does not accept this key's value{of_type}"),
        _ => format!("the API server does not accept this field's value{of_type}"),
    }
}

/// A fixed explanation for a refused write that names no field.
fn explain_status(status: &kube::core::Status) -> &'static str {
    // Read only to choose a text; nothing of it is shown.
    let message = status.message.as_str();
    match status.code {
        _ if message.starts_with("admission webhook") => {
            "an admission webhook denied it (its message is not shown: it may quote the data)"
        }
        _ if message.contains("ValidatingAdmissionPolicy") => {
            "a ValidatingAdmissionPolicy denied it (its message is not shown: it may quote the data)"
        }
        _ if message.contains("too large") => "the Secret is too large (at most 1 MiB)",
        403 => "vaultsync may not write this Secret (RBAC of the operator's ServiceAccount, or an admission policy)",
        404 => "the namespace is gone",
        409 => "the Secret changed during the write; the next sync writes it again",
        413 => "the Secret is too large (at most 1 MiB)",
        422 => "the API server does not accept the Secret's content",
        429 | 500..=599 => "the API server could not write it now; the next sync tries again",
        _ => "the API server refused the write",
    }
}

/// The field managers a server-side apply conflict names: the API server
/// says `conflict with "MANAGER"` for each contested field.
fn conflicting_managers(message: &str) -> Vec<&str> {
    message.split("conflict with \"").skip(1).filter_map(|rest| rest.split('"').next()).collect()
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

    #[test]
    fn reads_the_managers_of_an_apply_conflict() {
        let message = r#"Apply failed with 2 conflicts: conflict with "vaultsync/ns/a": .data.password, conflict with "kubectl-create" using v1: .data.user"#;
        assert_eq!(conflicting_managers(message), vec!["vaultsync/ns/a", "kubectl-create"]);
        assert!(Writer::is_vaultsync("vaultsync/ns/a") && Writer::is_vaultsync("vaultsync"));
        assert!(!Writer::is_vaultsync("vaultsync-other"));
    }

    fn status(code: u16, reason: &str, message: &str, causes: &[(&str, &str, &str)]) -> kube::Error {
        let causes = causes
            .iter()
            .map(|(reason, message, field)| kube::core::response::StatusCause {
                reason: (*reason).into(),
                message: (*message).into(),
                field: (*field).into(),
            })
            .collect();
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            details: Some(kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes,
                retry_after_seconds: 0,
            }),
            ..Default::default()
        }))
    }

    #[test]
    fn a_refused_dockerconfigjson_is_told_without_the_character_the_api_server_quotes() {
        let quoted = r#"Invalid value: "<secret contents redacted>": invalid character 'd' looking for beginning of object key string"#;
        let error = status(
            422,
            "Invalid",
            &format!(r#"Secret "pull" is invalid: data[.dockerconfigjson]: {quoted}"#),
            &[("FieldValueInvalid", quoted, "data[.dockerconfigjson]")],
        );
        let text = write_failure("pull", Some("kubernetes.io/dockerconfigjson"), &error).to_string();
        assert!(!text.contains("'d'") && !text.contains("invalid character") && !text.contains("redacted"), "{text}");
        assert!(text.contains("HTTP 422 Invalid"), "{text}");
        assert!(
            text.contains("data[.dockerconfigjson]: .dockerconfigjson must be valid JSON of a docker config"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_write_keeps_the_kind_of_failure_and_the_fields_only() {
        let label =
            r#"Invalid value: "hunter2!": a valid label must be an empty string or consist of alphanumeric characters"#;
        let error = status(
            422,
            "Invalid",
            label,
            &[
                ("FieldValueInvalid", label, "metadata.labels"),
                ("FieldValueRequired", "Required value", "data[tls.key]"),
                ("FieldValueInvalid", "hunter2", "data[\"hunter2\"]"),
                ("Hunter 2!", "hunter2", ""),
            ],
        );
        let text = write_failure("web", Some("kubernetes.io/tls"), &error).to_string();
        assert!(!text.contains("hunter2") && !text.contains("Hunter"), "{text}");
        assert!(text.contains("metadata.labels: a label key"), "{text}");
        assert!(text.contains("data[tls.key]: required for a Secret of type kubernetes.io/tls"), "{text}");

        // No causes: the code and a fixed text, whatever the message says.
        for (code, message, want) in [
            (
                403,
                r#"admission webhook "policy.example" denied the request: value "hunter2" is weak"#,
                "admission webhook",
            ),
            (403, r#"secrets "web" is forbidden: hunter2"#, "may not write this Secret"),
            (409, "Operation cannot be fulfilled: hunter2", "changed during the write"),
            (500, "etcdserver: request is too large hunter2", "too large"),
        ] {
            let text = write_failure("web", None, &status(code, "", message, &[])).to_string();
            assert!(
                text.contains(&format!("HTTP {code}")) && text.contains(want) && !text.contains("hunter2"),
                "{text}"
            );
        }
    }

    #[test]
    fn an_unreadable_answer_is_told_without_its_text() {
        let serde = serde_json::from_str::<Secret>(r#"{"data": {"k": "hunter2!"}}"#).unwrap_err();
        let text = write_failure("web", None, &kube::Error::SerdeError(serde)).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("cannot read the API server's answer"), "{text}");
    }

    #[test]
    fn hash_depends_on_key_boundaries_and_values() {
        let a = SecretData::from([("ab".into(), b"c".to_vec())]);
        let b = SecretData::from([("a".into(), b"bc".to_vec())]);
        let c = SecretData::from([("ab".into(), b"d".to_vec())]);
        assert_ne!(data_hash(&a), data_hash(&b));
        assert_ne!(data_hash(&a), data_hash(&c));
        assert_eq!(data_hash(&a), data_hash(&a.clone()));
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
