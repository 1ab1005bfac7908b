//! The API group an object was served from, and what differs between them.
//!
//! vaultsync serves its own group (`vaultsync.dev`) and, with `--eso-api`,
//! ESO's (`external-secrets.io`) with the same Rust types and the same
//! reconcilers: an ESO-group object is read into vaultsync's type (whose
//! deserializer ignores `apiVersion`) and reconciled by a controller whose
//! context says which group it serves. Only what names the group differs:
//! owner references, Events, status writes, the annotations that record
//! which ExternalSecret writes a Secret, and which stores are served.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use vaultsync_api::{ClusterSecretStore, ExternalSecret, SecretStore};

/// ESO's API group and version for ExternalSecrets and stores.
pub const ESO_GROUP: &str = "external-secrets.io";
pub const ESO_VERSION: &str = "v1";
/// ESO's group and version of generators.
pub const ESO_GENERATORS_GROUP: &str = "generators.external-secrets.io";
pub const ESO_GENERATORS_VERSION: &str = "v1alpha1";

/// ESO's group and version for a vaultsync kind of group `group`.
fn eso_group_of(group: &str) -> (&'static str, &'static str) {
    if group == vaultsync_api::GENERATOR_GROUP {
        (ESO_GENERATORS_GROUP, ESO_GENERATORS_VERSION)
    } else {
        (ESO_GROUP, ESO_VERSION)
    }
}

/// Which API group a controller serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Group {
    /// `vaultsync.dev/v1alpha1`, whose CRDs carry vaultsync's CEL rules.
    #[default]
    Vaultsync,
    /// `external-secrets.io/v1` (ESO's CRDs, without those rules).
    Eso,
}

impl Group {
    /// The `apiVersion` of an object of kind `K` in this group.
    pub fn api_version<K: Resource<DynamicType = ()>>(self) -> String {
        match self {
            Group::Vaultsync => K::api_version(&()).into_owned(),
            Group::Eso => {
                let (group, version) = eso_group_of(&K::group(&()));
                format!("{group}/{version}")
            }
        }
    }

    /// The API resource of kind `K` in this group (the plural is the same
    /// in both: vaultsync's kinds carry ESO's names).
    pub fn api_resource<K: Resource<DynamicType = ()>>(self) -> ApiResource {
        match self {
            Group::Vaultsync => ApiResource::erase::<K>(&()),
            Group::Eso => {
                let (group, version) = eso_group_of(&K::group(&()));
                ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk(group, version, &K::kind(&())),
                    &K::plural(&()),
                )
            }
        }
    }

    /// The annotation on a Secret naming the ExternalSecret (of this group)
    /// that owns and writes it. Distinct per group, so that an ESO-group
    /// and a vaultsync-group ExternalSecret of the same name never both
    /// pass the takeover guard of one Secret.
    pub fn manager_annotation(self) -> &'static str {
        match self {
            Group::Vaultsync => crate::EXTERNAL_SECRET_ANNOTATION,
            Group::Eso => crate::ESO_EXTERNAL_SECRET_ANNOTATION,
        }
    }

    /// Prefix of the per-writer hash annotation of a Merge writer.
    pub fn merge_hash_prefix(self) -> &'static str {
        match self {
            Group::Vaultsync => "merge.vaultsync.dev/",
            Group::Eso => "merge.eso.vaultsync.dev/",
        }
    }

    /// The controller owner reference to `object` as this group names it.
    /// ESO's own references block owner deletion; so do these, so that a
    /// Secret handed between ESO and vaultsync keeps one shape.
    pub fn controller_owner_ref<K: Resource<DynamicType = ()>>(self, object: &K) -> Option<OwnerReference> {
        let mut owner = object.controller_owner_ref(&())?;
        if self == Group::Eso {
            owner.api_version = self.api_version::<K>();
            owner.block_owner_deletion = Some(true);
        }
        Some(owner)
    }

    /// The reference Events about `object` name.
    pub fn object_ref<K: Resource<DynamicType = ()>>(self, object: &K) -> ObjectReference {
        let mut reference = object.object_ref(&());
        reference.api_version = Some(self.api_version::<K>());
        reference
    }

    /// The name logs give an object of this group: ESO-group objects are
    /// marked, so two of one name stay apart in a log.
    pub fn log_name<K: Resource>(self, object: &K) -> String {
        let name = match object.namespace() {
            Some(namespace) => format!("{namespace}/{}", object.name_any()),
            None => object.name_any(),
        };
        match self {
            Group::Vaultsync => name,
            Group::Eso => format!("{name} ({ESO_GROUP})"),
        }
    }
}

/// An object of ESO's group read as vaultsync's type `K`. An object that
/// does not fit `K`, or that sets fields `K` does not have, is not dropped
/// (the watch would stall on it, or the user would never learn why it is
/// ignored): its metadata and, where possible, its spec are kept, and
/// `problem` says what is wrong, for the reconcile to report.
pub struct Converted<K> {
    pub object: K,
    pub problem: Option<String>,
}

/// Reads `raw` (an ESO-group object) as `K`. `fallback` builds an object
/// from the metadata alone when the spec does not parse.
pub fn convert<K>(raw: &DynamicObject, fallback: impl FnOnce(ObjectMeta) -> K) -> Converted<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    let value = match serde_json::to_value(raw) {
        Ok(value) => value,
        Err(e) => return Converted { object: fallback(raw.metadata.clone()), problem: Some(e.to_string()) },
    };
    let mut unread = Vec::new();
    let read = serde_ignored::deserialize(&value, |path| {
        // serde_ignored marks the inside of an Option with a `?` segment.
        let path = path.to_string().replace(".?", "");
        // Only the spec is the user's to get wrong; a field left empty
        // asks for nothing.
        if path.starts_with("spec.") && !lookup(&value, &path).is_none_or(is_empty) {
            unread.push(path);
        }
    });
    match read {
        Ok(object) => {
            let problem = (!unread.is_empty()).then(|| {
                format!(
                    "{} not supported by vaultsync (yet); remove {} or leave this object to ESO",
                    unread.join(", "),
                    if unread.len() == 1 { "it" } else { "them" }
                )
            });
            Converted { object, problem }
        }
        Err(e) => {
            // Again, for the path of what does not read (serde_ignored's
            // error does not have it).
            let at = serde_path_to_error::deserialize::<_, K>(&value)
                .err()
                .map(|e| e.path().to_string())
                .filter(|path| path != "." && !path.is_empty());
            let problem = match at {
                Some(path) => format!(
                    "{path} cannot be read by vaultsync ({e}): a shape of ESO's that vaultsync does not support (yet); \
                     change it or leave this object to ESO"
                ),
                None => format!("spec cannot be read as vaultsync's {}: {e}", K::kind(&())),
            };
            Converted { object: fallback(raw.metadata.clone()), problem: Some(problem) }
        }
    }
}

/// The value at a dotted path as serde_ignored writes it (`spec.data.0.x`).
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, segment| match value {
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => value.get(segment),
    })
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

/// The `spec.controller` of a raw object, for an object whose spec could
/// not be read.
pub fn raw_controller_class(raw: &DynamicObject) -> Option<String> {
    raw.data.get("spec").and_then(|s| s.get("controller")).and_then(Value::as_str).map(str::to_owned)
}

/// In-memory only: set on an ESO-group object read into vaultsync's type
/// when something in it cannot be served (fields vaultsync lacks, a spec
/// that does not parse); the reconcile reports it. Never written: nothing
/// writes the metadata of ESO-group ExternalSecrets or stores.
pub(crate) const PROBLEM_ANNOTATION: &str = "eso.vaultsync.dev/cannot-serve";

/// The problem [`PROBLEM_ANNOTATION`] records on `object`, if any.
pub(crate) fn problem<K: Resource>(object: &K) -> Option<&String> {
    object.annotations().get(PROBLEM_ANNOTATION)
}

/// Reads an ESO-group object as `K`, recording what cannot be served.
pub(crate) fn read_as<K>(mut raw: DynamicObject, fallback: fn(ObjectMeta, &DynamicObject) -> K) -> K
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Serialize,
{
    raw.metadata.managed_fields = None;
    // Only this operator sets it.
    if let Some(annotations) = raw.metadata.annotations.as_mut() {
        annotations.remove(PROBLEM_ANNOTATION);
    }
    let Converted { mut object, problem } = convert(&raw, |meta| fallback(meta, &raw));
    if let Some(problem) = problem {
        object.annotations_mut().insert(PROBLEM_ANNOTATION.to_owned(), problem);
    }
    object
}

/// An ExternalSecret whose spec does not parse: its store reference, if
/// that much reads, so the store's class still decides whether it is
/// reported on.
pub(crate) fn unparsed_external_secret(metadata: ObjectMeta, raw: &DynamicObject) -> ExternalSecret {
    let store_ref = raw.data.get("spec").and_then(|s| s.get("secretStoreRef")).cloned();
    let spec = serde_json::from_value(serde_json::json!({ "secretStoreRef": store_ref }))
        .or_else(|_| serde_json::from_value(serde_json::json!({})))
        .expect("an empty ExternalSecret spec reads");
    ExternalSecret { metadata, spec, status: None }
}

/// A store whose spec does not parse: its class, so that only a store of
/// this operator's class is reported on.
fn unparsed_store_spec<S: DeserializeOwned>(raw: &DynamicObject) -> S {
    let class = raw_controller_class(raw);
    serde_json::from_value(serde_json::json!({ "controller": class, "provider": {} }))
        .expect("a store spec with a class and no provider reads")
}

pub(crate) fn unparsed_secret_store(metadata: ObjectMeta, raw: &DynamicObject) -> SecretStore {
    SecretStore { metadata, spec: unparsed_store_spec(raw), status: None }
}

pub(crate) fn unparsed_cluster_external_secret(
    metadata: ObjectMeta,
    _raw: &DynamicObject,
) -> vaultsync_api::ClusterExternalSecret {
    let spec = serde_json::from_value(serde_json::json!({"externalSecretSpec": {}}))
        .expect("a ClusterExternalSecret spec with an empty ExternalSecret spec reads");
    vaultsync_api::ClusterExternalSecret { metadata, spec, status: None }
}

pub(crate) fn unparsed_cluster_store(metadata: ObjectMeta, raw: &DynamicObject) -> ClusterSecretStore {
    ClusterSecretStore { metadata, spec: unparsed_store_spec(raw), status: None }
}

/// Why an ESO-group ExternalSecret of ours cannot be served as it is:
/// fields vaultsync lacks, a spec that does not read, a generator of
/// another group than ESO's, or a rule vaultsync's CRD enforces by CEL.
pub(crate) fn unservable_external_secret(es: &ExternalSecret) -> Option<String> {
    if let Some(problem) = problem(es) {
        return Some(problem.clone());
    }
    let eso_generators = format!("{ESO_GENERATORS_GROUP}/{ESO_GENERATORS_VERSION}");
    let mut spec = es.spec.clone();
    for (i, from) in spec.data_from.iter_mut().enumerate() {
        let Some(generator) = from.source_ref.as_mut().and_then(|s| s.generator_ref.as_mut()) else { continue };
        if generator.api_version != eso_generators {
            return Some(format!(
                "spec.dataFrom[{i}].sourceRef.generatorRef.apiVersion {:?}: an ExternalSecret of ESO's group names \
                 ESO's generators ({eso_generators})",
                generator.api_version
            ));
        }
        // vaultsync's own rules know its own group's generators.
        generator.api_version = vaultsync_api::GENERATOR_API_VERSION.to_owned();
    }
    // The rules vaultsync's CRD enforces by CEL; ESO's CRD does not.
    vaultsync_api::checks::external_secret(&spec).err().map(|refusal| refusal.to_string())
}

/// A generator whose spec does not parse: its class, so that only one of
/// this operator's class is reported on.
pub(crate) fn unparsed_generator(metadata: ObjectMeta, raw: &DynamicObject) -> vaultsync_api::VaultDynamicSecret {
    let class = raw_controller_class(raw);
    let spec = serde_json::from_value(serde_json::json!({
        "controller": class, "path": "", "provider": {"server": "", "auth": {}}
    }))
    .expect("a generator spec with a class, no path and no provider reads");
    vaultsync_api::VaultDynamicSecret { metadata, spec }
}

/// Why an ESO-group generator of ours cannot be used: fields vaultsync
/// lacks, a spec that does not read, or a rule vaultsync's CRD enforces by
/// CEL (no system mounts, ...) and ESO's does not.
pub(crate) fn unservable_generator(generator: &vaultsync_api::VaultDynamicSecret) -> Option<String> {
    if let Some(problem) = problem(generator) {
        return Some(problem.clone());
    }
    vaultsync_api::checks::vault_dynamic_secret(&generator.spec).err().map(|refusal| refusal.to_string())
}

/// Why an ESO-group store of ours cannot be served: fields vaultsync
/// lacks, a spec that does not read, or a rule vaultsync's CRDs enforce by
/// CEL and ESO's do not. `cluster` for a ClusterSecretStore.
pub(crate) fn unservable_store<K: Resource + Serialize>(
    store: &K,
    spec: &impl Serialize,
    cluster: bool,
) -> Option<String> {
    if let Some(problem) = problem(store) {
        return Some(problem.clone());
    }
    // Both kinds' specs have the same fields; the checks take one type.
    let spec = match serde_json::to_value(spec).and_then(serde_json::from_value::<vaultsync_api::SecretStoreSpec>) {
        Ok(spec) => spec,
        Err(e) => return Some(format!("spec cannot be read: {e}")),
    };
    vaultsync_api::checks::store(&spec, cluster).err().map(|refusal| refusal.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_vaultsync_does_not_read_are_named_by_path() {
        let raw = raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"secretStoreRef": {"name": "s"}, "unknownField": [{"x": 1}], "retrySettings": {},
                     "target": {"name": "n", "unknownTarget": {"kind": "ConfigMap"}, "immutable": false},
                     "data": [{"secretKey": "k", "remoteRef": {"key": "v", "extra": "x"},
                               "sourceRef": {"storeRef": {"name": "s"}}}]}}));
        let converted = convert::<ExternalSecret>(&raw, |metadata| unparsed_external_secret(metadata, &raw));
        let problem = converted.problem.expect("unread fields");
        assert!(
            problem
                .starts_with("spec.data.0.remoteRef.extra, spec.target.unknownTarget, spec.unknownField not supported"),
            "{problem}"
        );
        assert_eq!(converted.object.spec.data.len(), 1);
        assert_eq!(converted.object.spec.data[0].store().map(|s| s.name.as_str()), Some("s"));
    }

    #[test]
    fn a_generator_in_data_is_refused_by_path() {
        // ESO's schema has it, deprecated and not implemented.
        let raw = raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k", "remoteRef": {"key": "v"},
                "sourceRef": {"generatorRef": {"kind": "VaultDynamicSecret", "name": "g"}}}]}}));
        let converted = convert::<ExternalSecret>(&raw, |metadata| unparsed_external_secret(metadata, &raw));
        let problem = converted.problem.expect("a problem");
        assert!(problem.starts_with("spec.data[0].sourceRef cannot be read by vaultsync"), "{problem}");
        assert!(problem.contains("storeRef"), "{problem}");
        // The store reference survives, so the store's class still decides.
        assert_eq!(converted.object.spec.secret_store_ref.map(|r| r.name), Some("s".into()));
    }

    #[test]
    fn fields_under_optional_ones_are_named_too() {
        let store = read_as(
            raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": {"name": "v", "namespace": "a"},
                "spec": {"controller": "vaultsync", "provider": {"vault": {"server": "https://v:8200",
                    "auth": {"iam": {"path": "aws", "region": "eu-west-1"}}}}}})),
            unparsed_secret_store,
        );
        assert_eq!(
            problem(&store).map(String::as_str),
            Some(
                "spec.provider.vault.auth.iam not supported by vaultsync (yet); remove it or leave this object to ESO"
            )
        );
    }

    #[test]
    fn every_fallback_builds_an_object() {
        // A panic here would be one in the watch of ESO's group.
        let raw = raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "X",
            "metadata": {"name": "x", "namespace": "a"}, "spec": {"controller": "vaultsync", "secretStoreRef": 7}}));
        let meta = || raw.metadata.clone();
        assert_eq!(unparsed_external_secret(meta(), &raw).spec.secret_store_ref, None);
        assert_eq!(unparsed_secret_store(meta(), &raw).spec.controller.as_deref(), Some("vaultsync"));
        assert_eq!(unparsed_cluster_store(meta(), &raw).spec.controller.as_deref(), Some("vaultsync"));
        assert_eq!(unparsed_cluster_external_secret(meta(), &raw).metadata.name.as_deref(), Some("x"));
        let generator = unparsed_generator(meta(), &raw);
        assert_eq!(generator.spec.controller.as_deref(), Some("vaultsync"));
        assert!(unservable_generator(&generator).is_some(), "an empty path is refused");
    }

    #[test]
    fn an_eso_external_secret_names_esos_generators() {
        let es = |api_version: &str| {
            read_as(
                raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                    "metadata": {"name": "db", "namespace": "a"},
                    "spec": {"dataFrom": [{"sourceRef": {"generatorRef": {
                        "apiVersion": api_version, "kind": "VaultDynamicSecret", "name": "pg"}}}]}})),
                unparsed_external_secret,
            )
        };
        assert_eq!(unservable_external_secret(&es("generators.external-secrets.io/v1alpha1")), None);
        let other = unservable_external_secret(&es("generators.vaultsync.dev/v1alpha1")).expect("refused");
        assert!(other.contains("spec.dataFrom[0].sourceRef.generatorRef.apiVersion"), "{other}");
    }

    #[test]
    fn eso_group_names_its_own_api_version() {
        assert_eq!(Group::Eso.api_version::<vaultsync_api::ExternalSecret>(), "external-secrets.io/v1");
        assert_eq!(Group::Vaultsync.api_version::<vaultsync_api::ExternalSecret>(), "vaultsync.dev/v1alpha1");
        let ar = Group::Eso.api_resource::<vaultsync_api::ClusterSecretStore>();
        assert_eq!((ar.group.as_str(), ar.plural.as_str()), ("external-secrets.io", "clustersecretstores"));
        let ar = Group::Eso.api_resource::<vaultsync_api::VaultDynamicSecret>();
        assert_eq!(
            (ar.api_version.as_str(), ar.plural.as_str()),
            ("generators.external-secrets.io/v1alpha1", "vaultdynamicsecrets")
        );
    }

    fn raw(value: serde_json::Value) -> DynamicObject {
        serde_json::from_value(value).expect("a raw object")
    }

    #[test]
    fn an_eso_external_secret_reads_as_vaultsyncs_with_unsupported_fields_named() {
        let es = read_as(
            raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": "db", "namespace": "a", "annotations": {PROBLEM_ANNOTATION: "forged"}},
                "spec": {"secretStoreRef": {"name": "vault", "kind": "SecretStore"}, "refreshInterval": "1h0m0s",
                         "target": {"name": "db", "creationPolicy": "Owner", "deletionPolicy": "Retain",
                                    "unknownTarget": {"apiVersion": "v1", "kind": "ConfigMap"}},
                         "data": [{"secretKey": "password", "remoteRef": {"key": "db", "property": "password"}}]}})),
            unparsed_external_secret,
        );
        assert_eq!(es.spec.secret_store_ref.as_ref().map(|r| r.name.as_str()), Some("vault"));
        assert_eq!(es.spec.data.len(), 1);
        let problem = problem(&es).expect("an unknown field is not served");
        assert!(problem.contains("spec.target.unknownTarget") && !problem.contains("forged"), "{problem}");
    }

    #[test]
    fn an_unreadable_eso_external_secret_keeps_its_store_and_says_why() {
        let es = read_as(
            raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                "metadata": {"name": "db", "namespace": "a"},
                "spec": {"secretStoreRef": {"name": "vault"},
                         "dataFrom": [{"sourceRef": {"generatorRef": {"kind": "Password", "name": "p"}}}]}})),
            unparsed_external_secret,
        );
        assert_eq!(es.spec.secret_store_ref.as_ref().map(|r| r.name.as_str()), Some("vault"));
        assert!(problem(&es).is_some_and(|p| p.contains("cannot be read")), "{:?}", problem(&es));
        assert_eq!(es.name_any(), "db");
    }

    #[test]
    fn a_store_of_another_provider_keeps_its_class() {
        let store = read_as(
            raw(json!({"apiVersion": "external-secrets.io/v1", "kind": "SecretStore",
                "metadata": {"name": "aws", "namespace": "a"},
                "spec": {"controller": "vaultsync", "provider": {"aws": {"service": "SecretsManager"}}}})),
            unparsed_secret_store,
        );
        assert_eq!(store.spec.controller.as_deref(), Some("vaultsync"));
        assert!(problem(&store).is_some_and(|p| p.contains("spec.provider.aws")), "{:?}", problem(&store));
    }
}
