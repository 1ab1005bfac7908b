//! Finding the store an ExternalSecret names and enforcing a
//! ClusterSecretStore's namespace rules.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use vaultsync_api::{ClusterSecretStore, ClusterSecretStoreCondition, SecretStore, StoreKind, VaultProvider};

use kube::core::DynamicObject;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::served::{self, Group};
use crate::vault_clients::identity::StoreId;

/// A store, whichever kind, as a reconcile needs it.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedStore {
    pub name: String,
    /// Set for a namespaced SecretStore (and a generator).
    pub namespace: Option<String>,
    pub provider: VaultProvider,
    /// A generator's provider, which acts as a SecretStore of its namespace.
    pub generator: bool,
    /// The store's `retrySettings` (a generator retries its own way).
    pub retry: vaultsync_vault::Retry,
}

impl fmt::Display for ResolvedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id().fmt(f)
    }
}

impl ResolvedStore {
    pub fn id(&self) -> StoreId {
        StoreId { namespace: self.namespace.clone(), name: self.name.clone(), generator: self.generator }
    }

    /// A generator's `provider`: everything it refers to resolves in its
    /// own namespace, as for a SecretStore.
    pub fn from_generator(generator: &vaultsync_api::VaultDynamicSecret) -> Self {
        Self {
            name: generator.name_any(),
            namespace: generator.namespace(),
            provider: generator.spec.provider.clone(),
            generator: true,
            retry: vaultsync_vault::Retry::default(),
        }
    }

    pub fn from_secret_store(store: &SecretStore) -> Result<Self> {
        Self::new(store.name_any(), store.namespace(), store.spec.provider.vault(), store.spec.retry_settings.as_ref())
    }

    pub fn from_cluster_store(store: &ClusterSecretStore) -> Result<Self> {
        Self::new(store.name_any(), None, store.spec.provider.vault(), store.spec.retry_settings.as_ref())
    }

    fn new(
        name: String,
        namespace: Option<String>,
        provider: Option<&VaultProvider>,
        retry: Option<&vaultsync_api::RetrySettings>,
    ) -> Result<Self> {
        let retry = match retry {
            None => vaultsync_vault::Retry::default(),
            Some(settings) => vaultsync_vault::Retry {
                // Bounded by the CRD (and its checks in ESO's group).
                max_retries: u32::try_from(settings.max_retries.unwrap_or(0).clamp(0, 10)).unwrap_or(0),
                interval: match settings.retry_interval.as_deref() {
                    Some(interval) => vaultsync_api::parse_duration(interval).map_err(|e| Error::StoreConfig {
                        store: name.clone(),
                        reason: format!("spec.retrySettings.retryInterval: {e}"),
                    })?,
                    None => std::time::Duration::from_secs(1),
                },
            },
        };
        let provider = provider.cloned().ok_or_else(|| Error::StoreConfig {
            store: name.clone(),
            reason: "spec.provider has neither vault nor openBao".into(),
        })?;
        Ok(Self { name, namespace, provider, generator: false, retry })
    }

    pub(crate) fn config_error(&self, reason: impl Into<String>) -> Error {
        Error::StoreConfig { store: self.to_string(), reason: reason.into() }
    }
}

/// Finds the store `namespace`'s ExternalSecret refers to and checks that
/// the namespace may use it.
pub(crate) async fn resolve(ctx: &Context, kind: StoreKind, name: &str, namespace: &str) -> Result<ResolvedStore> {
    match kind {
        StoreKind::SecretStore => {
            let cached = ctx.caches.secret_stores.get().and_then(|c| c.get(&ObjectRef::new(name).within(namespace)));
            let store = match cached {
                Some(store) => store,
                None => Arc::new(
                    get(ctx, Some(namespace), name, served::unparsed_secret_store).await?.ok_or(
                        Error::StoreNotFound {
                            kind,
                            name: name.to_owned(),
                            hint: " in this namespace (set secretStoreRef.kind: ClusterSecretStore for a cluster-wide store)",
                        },
                    )?,
                ),
            };
            let what = || format!("SecretStore {namespace}/{name}");
            served(ctx, &store.spec.controller, what)?;
            servable(ctx, &*store, &store.spec, false, what)?;
            ResolvedStore::from_secret_store(&store)
        }
        StoreKind::ClusterSecretStore => {
            if let Some(scope) = &ctx.config.namespace {
                return Err(Error::ClusterStoreOutOfScope { store: name.to_owned(), namespace: scope.clone() });
            }
            let cached = ctx.caches.cluster_stores.get().and_then(|c| c.get(&ObjectRef::new(name)));
            let store = match cached {
                Some(store) => store,
                None => Arc::new(
                    get(ctx, None, name, served::unparsed_cluster_store).await?.ok_or(Error::StoreNotFound {
                        kind,
                        name: name.to_owned(),
                        hint: "",
                    })?,
                ),
            };
            let what = || format!("ClusterSecretStore {name}");
            served(ctx, &store.spec.controller, what)?;
            servable(ctx, &*store, &store.spec, true, what)?;
            let conditions = store.spec.conditions.as_deref().unwrap_or_default();
            if !namespace_allowed(ctx, name, conditions, namespace).await? {
                return Err(Error::NamespaceNotAllowed { store: name.to_owned(), namespace: namespace.to_owned() });
            }
            ResolvedStore::from_cluster_store(&store)
        }
    }
}

/// Refuses a store of another controller class (checked on every
/// reconcile, from the watch cache: a class changed on the store stops this
/// operator's writes at the next one).
/// Whether this operator serves a store of `ctx`'s group with this
/// `spec.controller`.
pub(crate) fn serves(ctx: &Context, store_class: &Option<String>) -> bool {
    let class = &ctx.config.controller_class;
    match ctx.group {
        Group::Vaultsync => vaultsync_api::serves_store_class(store_class.as_deref(), class),
        Group::Eso => match store_class.as_deref() {
            Some(store_class) if !store_class.is_empty() => store_class == class,
            _ => ctx.config.eso_claim_unclassed,
        },
    }
}

/// In ESO's group a store without a class is ESO's (ESO serves it), unless
/// the operator was told to claim those (`--eso-claim-unclassed`, for a
/// cluster without ESO's controller).
fn served(ctx: &Context, store_class: &Option<String>, store: impl FnOnce() -> String) -> Result<()> {
    let class = &ctx.config.controller_class;
    if serves(ctx, store_class) {
        return Ok(());
    }
    Err(Error::OtherClass {
        store: store(),
        store_class: store_class.clone().unwrap_or_default(),
        class: class.clone(),
    })
}

/// An ESO-group store of ours that sets what vaultsync cannot serve, or
/// breaks a rule vaultsync's own CRDs enforce by CEL (ESO's do not), is
/// refused with the reason, never half-served.
fn servable<K: kube::Resource + serde::Serialize>(
    ctx: &Context,
    store: &K,
    spec: &impl serde::Serialize,
    cluster: bool,
    what: impl FnOnce() -> String,
) -> Result<()> {
    if ctx.group != Group::Eso {
        return Ok(());
    }
    match served::unservable_store(store, spec, cluster) {
        Some(problem) => Err(Error::StoreConfig { store: what(), reason: problem }),
        None => Ok(()),
    }
}

/// A store fetched from the API server, in the group `ctx` serves.
async fn get<K>(
    ctx: &Context,
    namespace: Option<&str>,
    name: &str,
    unparsed: fn(kube::api::ObjectMeta, &DynamicObject) -> K,
) -> Result<Option<K>>
where
    K: kube::Resource<DynamicType = ()> + DeserializeOwned + serde::Serialize,
{
    let ar = ctx.group.api_resource::<K>();
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(ctx.client.clone(), namespace, &ar),
        None => Api::all_with(ctx.client.clone(), &ar),
    };
    let Some(raw) = api.get_opt(name).await? else { return Ok(None) };
    Ok(Some(match ctx.group {
        Group::Eso => served::read_as(raw, unparsed),
        Group::Vaultsync => serde_json::to_value(&raw)
            .and_then(serde_json::from_value)
            .map_err(|e| Error::Internal(format!("cannot read {} {name}: {e}", ar.kind)))?,
    }))
}

async fn namespace_allowed(
    ctx: &Context,
    store: &str,
    conditions: &[ClusterSecretStoreCondition],
    namespace: &str,
) -> Result<bool> {
    if conditions.is_empty() {
        return Ok(true);
    }
    // As in ESO, a namespace is allowed when any field of any condition
    // matches it.
    if conditions.iter().flat_map(|c| c.namespaces.iter().flatten()).any(|n| n == namespace) {
        return Ok(true);
    }
    for pattern in conditions.iter().flat_map(|c| c.namespace_regexes.iter().flatten()) {
        // Unanchored, as in ESO: `team-` matches `my-team-a`; write `^team-`
        // for a prefix.
        let regex = regex::Regex::new(pattern).map_err(|e| Error::StoreConfig {
            store: format!("ClusterSecretStore {store}"),
            reason: format!("bad namespaceRegexes entry {pattern:?}: {e}"),
        })?;
        if regex.is_match(namespace) {
            return Ok(true);
        }
    }
    let selectors: Vec<&LabelSelector> = conditions.iter().filter_map(|c| c.namespace_selector.as_ref()).collect();
    if selectors.is_empty() {
        return Ok(false);
    }
    let labels = Api::<Namespace>::all(ctx.client.clone()).get(namespace).await?.labels().clone();
    Ok(selectors.iter().any(|selector| selector_matches(selector, &labels)))
}

/// Label selector semantics of the Kubernetes API.
pub(crate) fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|expr| {
        let value = labels.get(&expr.key);
        let values = expr.values.as_deref().unwrap_or_default();
        match expr.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Parses an equality-based label selector as `kubectl -l` writes it:
/// `key=value`, `key==value`, `key!=value`, `key` (exists) and `!key` (does
/// not exist), joined by commas, all of which must hold.
pub fn parse_label_selector(text: &str) -> std::result::Result<LabelSelector, String> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    let mut selector = LabelSelector::default();
    let requirement = |key: &str, operator: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values,
    };
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let valid_key =
            |key: &str| !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        let expression = if let Some((key, value)) = term.split_once("!=") {
            requirement(key.trim(), "NotIn", Some(vec![value.trim().to_owned()]))
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            selector.match_labels.get_or_insert_default().insert(key.trim().to_owned(), value.trim().to_owned());
            if !valid_key(key.trim()) {
                return Err(format!("bad label key in {term:?}"));
            }
            continue;
        } else if let Some(key) = term.strip_prefix('!') {
            requirement(key.trim(), "DoesNotExist", None)
        } else {
            requirement(term, "Exists", None)
        };
        if !valid_key(&expression.key) {
            return Err(format!("bad label selector term {term:?} (use key=value, key!=value, key or !key)"));
        }
        selector.match_expressions.get_or_insert_default().push(expression);
    }
    Ok(selector)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selector_semantics() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("team", "a")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "In".into(),
                values: Some(vec!["prod".into(), "stage".into()]),
            }]),
        };
        assert!(selector_matches(&selector, &labels(&[("team", "a"), ("env", "prod")])));
        assert!(!selector_matches(&selector, &labels(&[("team", "a"), ("env", "dev")])));
        assert!(!selector_matches(&selector, &labels(&[("env", "prod")])));
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn parses_equality_based_selectors() {
        let selector = parse_label_selector("vault-tokens=allowed, tier!=sandbox,!frozen,team").unwrap();
        assert!(selector_matches(&selector, &labels(&[("vault-tokens", "allowed"), ("team", "a")])));
        assert!(!selector_matches(&selector, &labels(&[("vault-tokens", "allowed")])));
        assert!(!selector_matches(
            &selector,
            &labels(&[("vault-tokens", "allowed"), ("team", "a"), ("tier", "sandbox")])
        ));
        assert!(!selector_matches(&selector, &labels(&[("vault-tokens", "allowed"), ("team", "a"), ("frozen", "")])));
        assert!(parse_label_selector("a b").is_err());
        assert!(parse_label_selector("").unwrap() == LabelSelector::default());
    }
}
