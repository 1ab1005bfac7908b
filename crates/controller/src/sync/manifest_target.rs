//! `target.manifest` (ESO's generic target): an ExternalSecret writes a
//! ConfigMap or a custom resource instead of a Secret.
//!
//! Off unless an administrator started the operator with the kind
//! (`--generic-target v1/ConfigMap`, chart `genericTargets`, which also
//! grants the RBAC): such an object holds the values in the clear, and a
//! tenant who may create ExternalSecrets must not pick what kinds the
//! operator writes. Only namespaced kinds, in the ExternalSecret's own
//! namespace; never a Secret (that is the plain target, with its checks).

use std::collections::BTreeMap;

use base64::Engine;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::Scope;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Map, Value, json};
use vaultsync_api::{CreationPolicy, ExternalSecret, TargetManifest};

use crate::context::{Context, SyncMemo};
use crate::error::{Error, Result, kube_reason};
use crate::secret_data::{SecretData, data_hash};
use crate::served::Group;
use crate::sync::secret_writer::{Writer, Written};
use crate::sync::templating::Shaped;
use crate::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Parses `--generic-target` values: `v1/ConfigMap`,
/// `argoproj.io/v1alpha1/Application`.
pub fn parse_generic_target(value: &str) -> std::result::Result<String, String> {
    let value = value.trim();
    let (api_version, kind) = value.rsplit_once('/').ok_or_else(|| {
        format!("{value:?}: expected apiVersion/Kind, e.g. v1/ConfigMap or argoproj.io/v1alpha1/Application")
    })?;
    let valid_kind =
        kind.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && kind.chars().all(|c| c.is_ascii_alphanumeric());
    if api_version.is_empty() || api_version.split('/').count() > 2 || !valid_kind {
        return Err(format!(
            "{value:?}: expected apiVersion/Kind, e.g. v1/ConfigMap or argoproj.io/v1alpha1/Application"
        ));
    }
    if api_version == "v1" && kind == "Secret" {
        return Err("v1/Secret is the plain target (leave target.manifest out), not a generic one".into());
    }
    Ok(value.to_owned())
}

/// The kind `manifest` names, if this operator may write it.
pub(crate) async fn resolve(ctx: &Context, manifest: &TargetManifest) -> Result<ApiResource> {
    let key = manifest.key();
    if manifest.api_version == "v1" && manifest.kind == "Secret" {
        return Err(Error::Target("target.manifest v1/Secret: leave target.manifest out to write a Secret".into()));
    }
    if !ctx.config.generic_targets.contains(&key) {
        return Err(Error::Target(format!(
            "target.manifest {key} is not a kind this operator writes: an administrator enables each kind with \
             --generic-target {key} (chart value genericTargets), which grants the RBAC to write it"
        )));
    }
    if let Some(resource) = ctx.target_kinds.get(&key) {
        return Ok(resource);
    }
    let (group, version) = match manifest.api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", manifest.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &manifest.kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(&ctx.client, &gvk).await.map_err(|e| {
        Error::Target(format!("target.manifest {key}: the API server does not serve this kind ({})", kube_reason(&e)))
    })?;
    if capabilities.scope != Scope::Namespaced {
        return Err(Error::Target(format!(
            "target.manifest {key} is cluster-scoped; an ExternalSecret writes only in its own namespace"
        )));
    }
    ctx.target_kinds.insert(key, resource.clone());
    Ok(resource)
}

/// Where the values go in an object of `kind`, as ESO puts them: a
/// ConfigMap's `data` (`binaryData` for a value that is not UTF-8); for
/// another kind `spec.data`, or the top-level `data` when a template
/// shaped them. Values are strings there, so a value that is not UTF-8
/// fails, naming its key.
pub(crate) fn content(kind: &str, templated: bool, data: &SecretData) -> Result<Map<String, Value>> {
    let mut content = Map::new();
    if kind == "ConfigMap" {
        let (mut text, mut binary) = (Map::new(), Map::new());
        for (key, value) in data {
            match std::str::from_utf8(value) {
                Ok(value) => text.insert(key.clone(), value.into()),
                Err(_) => binary.insert(key.clone(), base64::engine::general_purpose::STANDARD.encode(value).into()),
            };
        }
        content.insert("data".into(), text.into());
        if !binary.is_empty() {
            content.insert("binaryData".into(), binary.into());
        }
        return Ok(content);
    }
    let mut text = Map::new();
    for (key, value) in data {
        let value = std::str::from_utf8(value).map_err(|_| {
            Error::Target(format!(
                "the value of key {key:?} is not UTF-8 text, and a {kind} holds values as strings; \
                 decode it (decodingStrategy) or encode it in a template (b64enc)"
            ))
        })?;
        text.insert(key.clone(), value.into());
    }
    if templated {
        content.insert("data".into(), text.into());
    } else {
        content.insert("spec".into(), json!({ "data": text }));
    }
    Ok(content)
}

/// The given keys as `object` holds them where [`content`] puts them;
/// `None` when one is missing.
fn stored(kind: &str, templated: bool, object: &DynamicObject, keys: &[String]) -> Option<SecretData> {
    let text = if kind != "ConfigMap" && !templated {
        object.data.get("spec").and_then(|spec| spec.get("data"))
    } else {
        object.data.get("data")
    };
    let binary = object.data.get("binaryData");
    keys.iter()
        .map(|key| {
            if let Some(value) = text.and_then(|t| t.get(key)).and_then(Value::as_str) {
                return Some((key.clone(), value.as_bytes().to_vec()));
            }
            let encoded = binary.and_then(|b| b.get(key)).and_then(Value::as_str)?;
            Some((key.clone(), base64::engine::general_purpose::STANDARD.decode(encoded).ok()?))
        })
        .collect()
}

fn templated(es: &ExternalSecret) -> bool {
    es.spec.target.template.is_some()
}

fn api(ctx: &Context, es: &ExternalSecret, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(ctx.client.clone(), &es.namespace().unwrap_or_default(), resource)
}

/// Whether the object was written for `es` (Owner and Orphan targets).
fn manages(group: Group, object: &DynamicObject, es: &ExternalSecret) -> bool {
    object.annotations().get(group.manager_annotation()) == Some(&es.name_any())
}

/// Whether the target still holds exactly what `memo` records.
pub(crate) async fn still_synced(
    ctx: &Context,
    es: &ExternalSecret,
    resource: &ApiResource,
    memo: &SyncMemo,
) -> Result<bool> {
    if es.spec.target.creation_policy == CreationPolicy::None {
        return Ok(true);
    }
    let Some(object) = api(ctx, es, resource).get_opt(es.target_name()).await? else {
        return Ok(false);
    };
    let hash_annotation = Writer::of(es, ctx.group).hash_annotation;
    let stored = stored(&resource.kind, templated(es), &object, &memo.keys);
    Ok(object.annotations().get(&hash_annotation) == Some(&memo.data_hash)
        && stored.is_some_and(|data| data_hash(&data) == memo.data_hash))
}

/// Whether the target exists and was written for `es`.
pub(crate) async fn exists_managed(ctx: &Context, es: &ExternalSecret, resource: &ApiResource) -> Result<bool> {
    let object = api(ctx, es, resource).get_opt(es.target_name()).await?;
    Ok(object.is_some_and(|o| match es.spec.target.creation_policy {
        CreationPolicy::Merge | CreationPolicy::CreateOrMerge => {
            o.annotations().contains_key(&Writer::of(es, ctx.group).hash_annotation)
        }
        _ => manages(ctx.group, &o, es),
    }))
}

/// Deletes the target if `es` created it (never one it only merges into).
pub(crate) async fn delete_owned(ctx: &Context, es: &ExternalSecret, resource: &ApiResource) -> Result<bool> {
    let policy = es.spec.target.creation_policy;
    if policy.merges() || policy == CreationPolicy::None {
        return Ok(false);
    }
    let api = api(ctx, es, resource);
    let Some(object) = api.get_opt(es.target_name()).await? else {
        return Ok(false);
    };
    if !manages(ctx.group, &object, es) {
        return Ok(false);
    }
    // Guarded by uid: one re-created by someone else meanwhile stays.
    let params = DeleteParams {
        preconditions: Some(Preconditions { uid: object.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    api.delete(es.target_name(), &params).await?;
    Ok(true)
}

/// Writes the target by server-side apply when it differs from `shaped`.
pub(crate) async fn write(
    ctx: &Context,
    es: &ExternalSecret,
    resource: &ApiResource,
    shaped: &Shaped,
) -> Result<(Written, Option<String>)> {
    let policy = es.spec.target.creation_policy;
    if policy == CreationPolicy::None {
        return Ok((Written::Skipped, None));
    }
    let (kind, name) = (resource.kind.as_str(), es.target_name());
    let api = api(ctx, es, resource);
    let existing = api.get_opt(name).await?;
    match (&existing, policy) {
        (None, CreationPolicy::Merge) => {
            return Err(Error::Target(format!(
                "{kind} {name:?} does not exist; creationPolicy Merge only adds keys to an existing one"
            )));
        }
        (Some(object), CreationPolicy::Owner | CreationPolicy::Orphan) if !manages(ctx.group, object, es) => {
            return Err(Error::Target(format!(
                "{kind} {name:?} already exists and was not written for this ExternalSecret; vaultsync will not \
                 overwrite it. Delete it, rename target.name, or use creationPolicy Merge"
            )));
        }
        _ => {}
    }
    let writer = Writer::of(es, ctx.group);
    let hash = data_hash(&shaped.data);
    let mut labels = shaped.labels.clone();
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned());
    let mut annotations = shaped.annotations.clone();
    annotations.insert(writer.hash_annotation.clone(), hash.clone());
    if !policy.merges() {
        annotations.insert(ctx.group.manager_annotation().to_owned(), es.name_any());
    }
    let owner = policy == CreationPolicy::Owner;
    if let Some(object) = &existing {
        let contains = |have: &BTreeMap<String, String>, want: &BTreeMap<String, String>| {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        };
        let keys: Vec<String> = shaped.data.keys().cloned().collect();
        let same_data = stored(kind, templated(es), object, &keys).is_some_and(|data| data_hash(&data) == hash);
        let owned = !owner || object.owner_references().iter().any(|o| Some(&o.uid) == es.meta().uid.as_ref());
        if same_data && owned && contains(object.labels(), &labels) && contains(object.annotations(), &annotations) {
            return Ok((Written::Unchanged, object.resource_version()));
        }
    }
    let mut body = content(kind, templated(es), &shaped.data)?;
    let mut metadata = json!({
        "name": name,
        "namespace": es.namespace(),
        "labels": labels,
        "annotations": annotations,
    });
    if owner {
        metadata["ownerReferences"] = json!(ctx.group.controller_owner_ref(es).into_iter().collect::<Vec<_>>());
    }
    body.insert("apiVersion".into(), resource.api_version.clone().into());
    body.insert("kind".into(), kind.into());
    body.insert("metadata".into(), metadata);
    // A merge writer claims only its own fields, beside others' (a
    // conflict with another manager is reported, not forced).
    let params = if policy.merges() {
        PatchParams::apply(&writer.field_manager)
    } else {
        PatchParams::apply(&writer.field_manager).force()
    };
    let applied = api
        .patch(name, &params, &Patch::Apply(Value::Object(body)))
        .await
        .map_err(|e| Error::Target(format!("writing {kind} {name:?} was refused: {}", kube_reason(&e))))?;
    let written = match &existing {
        Some(object) => {
            let keys: Vec<String> = shaped.data.keys().cloned().collect();
            let data_changed = stored(kind, templated(es), object, &keys).is_none_or(|data| data_hash(&data) != hash);
            Written::Updated { data_changed }
        }
        None => Written::Created,
    };
    Ok((written, applied.resource_version()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &[u8])]) -> SecretData {
        entries.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())).collect()
    }

    #[test]
    fn generic_targets_are_api_version_and_kind() {
        assert_eq!(parse_generic_target("v1/ConfigMap"), Ok("v1/ConfigMap".into()));
        assert_eq!(
            parse_generic_target(" argoproj.io/v1alpha1/Application"),
            Ok("argoproj.io/v1alpha1/Application".into())
        );
        for bad in ["ConfigMap", "v1/configmap", "a/b/c/Kind", "/Kind", "v1/Config-Map"] {
            assert!(parse_generic_target(bad).is_err(), "{bad}");
        }
        assert!(parse_generic_target("v1/Secret").unwrap_err().contains("plain target"));
    }

    #[test]
    fn a_config_map_holds_text_in_data_and_the_rest_in_binary_data() {
        let values = data(&[("a", b"text"), ("b", &[0xff, 0x00])]);
        let content = content("ConfigMap", false, &values).expect("content");
        assert_eq!(Value::Object(content.clone()), json!({"data": {"a": "text"}, "binaryData": {"b": "/wA="}}));
        let object = DynamicObject { types: None, metadata: Default::default(), data: Value::Object(content) };
        assert_eq!(stored("ConfigMap", false, &object, &["a".into(), "b".into()]), Some(values));
        assert_eq!(stored("ConfigMap", false, &object, &["c".into()]), None);
    }

    #[test]
    fn another_kind_holds_values_in_spec_data_or_where_a_template_put_them() {
        let values = data(&[("a", b"text")]);
        let plain = content("Application", false, &values).expect("content");
        assert_eq!(Value::Object(plain.clone()), json!({"spec": {"data": {"a": "text"}}}));
        let templated = content("Application", true, &values).expect("content");
        assert_eq!(Value::Object(templated.clone()), json!({"data": {"a": "text"}}));
        for (is_templated, content) in [(false, plain), (true, templated)] {
            let object = DynamicObject { types: None, metadata: Default::default(), data: Value::Object(content) };
            assert_eq!(stored("Application", is_templated, &object, &["a".into()]), Some(values.clone()));
        }
        let binary = content("Application", false, &data(&[("k", &[0xff])])).unwrap_err().to_string();
        assert!(binary.contains("\"k\"") && binary.contains("not UTF-8"), "{binary}");
    }
}
