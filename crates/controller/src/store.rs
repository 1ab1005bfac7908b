//! Finding the store an ExternalSecret names, enforcing a
//! ClusterSecretStore's namespace rules, and turning the store's auth spec
//! into Vault credentials.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::PostParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};
use vaultsync_api::{
    CaProviderType, ClusterSecretStore, ClusterSecretStoreCondition, SecretKeySelector, SecretStore,
    ServiceAccountSelector, StoreKind, VaultProvider,
};
use vaultsync_vault::{Auth, JwtSource, Sensitive, ServerConfig};

use crate::context::Context;
use crate::error::{Error, Result};

/// A store, whichever kind, as a reconcile needs it.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedStore {
    pub name: String,
    /// Set for a namespaced SecretStore (and a generator).
    pub namespace: Option<String>,
    pub provider: VaultProvider,
    /// A generator's provider, which acts as a SecretStore of its namespace.
    pub generator: bool,
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
        }
    }

    pub fn from_secret_store(store: &SecretStore) -> Result<Self> {
        Self::new(store.name_any(), store.namespace(), store.spec.provider.vault())
    }

    pub fn from_cluster_store(store: &ClusterSecretStore) -> Result<Self> {
        Self::new(store.name_any(), None, store.spec.provider.vault())
    }

    fn new(name: String, namespace: Option<String>, provider: Option<&VaultProvider>) -> Result<Self> {
        let provider = provider.cloned().ok_or_else(|| Error::StoreConfig {
            store: name.clone(),
            reason: "spec.provider has neither vault nor openBao".into(),
        })?;
        Ok(Self { name, namespace, provider, generator: false })
    }

    fn config_error(&self, reason: impl Into<String>) -> Error {
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
                    Api::<SecretStore>::namespaced(ctx.client.clone(), namespace).get_opt(name).await?.ok_or(
                        Error::StoreNotFound {
                            kind,
                            name: name.to_owned(),
                            hint: " in this namespace (set secretStoreRef.kind: ClusterSecretStore for a cluster-wide store)",
                        },
                    )?,
                ),
            };
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
                    Api::<ClusterSecretStore>::all(ctx.client.clone())
                        .get_opt(name)
                        .await?
                        .ok_or(Error::StoreNotFound { kind, name: name.to_owned(), hint: "" })?,
                ),
            };
            let conditions = store.spec.conditions.as_deref().unwrap_or_default();
            if !namespace_allowed(ctx, name, conditions, namespace).await? {
                return Err(Error::NamespaceNotAllowed { store: name.to_owned(), namespace: namespace.to_owned() });
            }
            ResolvedStore::from_cluster_store(&store)
        }
    }
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

/// A store, by kind and name: a SecretStore has a namespace, a
/// ClusterSecretStore none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StoreId {
    pub namespace: Option<String>,
    pub name: String,
    /// A VaultDynamicSecret's provider rather than a store.
    pub generator: bool,
}

impl StoreId {
    pub fn secret_store(namespace: &str, name: &str) -> Self {
        Self { namespace: Some(namespace.to_owned()), name: name.to_owned(), generator: false }
    }

    pub fn cluster_store(name: &str) -> Self {
        Self { namespace: None, name: name.to_owned(), generator: false }
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.namespace, self.generator) {
            (Some(ns), true) => write!(f, "VaultDynamicSecret {ns}/{}", self.name),
            (Some(ns), false) => write!(f, "SecretStore {ns}/{}", self.name),
            (None, _) => write!(f, "ClusterSecretStore {}", self.name),
        }
    }
}

/// Whose client a cached Vault client is: a store's, or, for a
/// ClusterSecretStore whose credentials resolve in each ExternalSecret's
/// namespace, that store's in one namespace. One client (one login) each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientOwner {
    pub store: StoreId,
    pub namespace: Option<String>,
}

impl fmt::Display for ClientOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} for namespace {ns}", self.store),
            None => write!(f, "{}", self.store),
        }
    }
}

/// Everything needed to build a Vault client, plus a fingerprint that
/// changes whenever the server settings, the credential identity or the
/// credential material change.
pub(crate) struct Credentials {
    pub server: ServerConfig,
    pub auth: Auth,
    pub fingerprint: String,
    /// The client's place in the cache: a new fingerprint for the same
    /// owner replaces (and closes) the old client.
    pub owner: ClientOwner,
}

/// Whether a ClusterSecretStore's references without a namespace resolve in
/// each ExternalSecret's namespace, so its credentials differ by namespace.
pub(crate) fn refs_need_namespace(provider: &VaultProvider) -> bool {
    let auth = &provider.auth;
    let missing = |ns: &Option<String>| ns.is_none();
    provider.ca_provider.as_ref().is_some_and(|c| missing(&c.namespace))
        || auth.token_secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        || auth.kubernetes.as_ref().is_some_and(|k| {
            k.service_account_ref.as_ref().is_some_and(|s| missing(&s.namespace))
                || k.secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
        || auth.app_role.as_ref().is_some_and(|a| {
            missing(&a.secret_ref.namespace) || a.role_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
        || auth.jwt.as_ref().is_some_and(|j| {
            j.kubernetes_service_account_token.as_ref().is_some_and(|t| missing(&t.service_account_ref.namespace))
                || j.secret_ref.as_ref().is_some_and(|s| missing(&s.namespace))
        })
}

/// Builds credentials for `store` on behalf of an object in
/// `using_namespace` (a ClusterSecretStore's references default to it).
pub(crate) async fn credentials(ctx: &Context, store: &ResolvedStore, using_namespace: &str) -> Result<Credentials> {
    let provider = &store.provider;
    let mut fingerprint = Sha256::new();
    fingerprint.update(serde_json::to_vec(provider).unwrap_or_default());
    // A namespaced store may only read from its own namespace, whatever its
    // references say; that is what keeps tenants apart.
    let ref_namespace = |requested: Option<&String>| -> String {
        match &store.namespace {
            Some(own) => own.clone(),
            None => requested.cloned().unwrap_or_else(|| using_namespace.to_owned()),
        }
    };

    let ca_bundle_pem = match (&provider.ca_bundle, &provider.ca_provider) {
        (Some(bundle), _) => {
            Some(base64::engine::general_purpose::STANDARD.decode(bundle.trim()).map_err(|_| {
                store.config_error("caBundle is not valid base64 (it holds the base64 of a PEM bundle)")
            })?)
        }
        (None, Some(ca)) => {
            let ns = ref_namespace(ca.namespace.as_ref());
            let pem = match ca.type_ {
                CaProviderType::Secret => read_secret_key(ctx, store, &ns, &ca.name, &ca.key, Use::Certificate).await?,
                CaProviderType::ConfigMap => {
                    let cm =
                        Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns).get_opt(&ca.name).await?.ok_or_else(
                            || store.config_error(format!("caProvider ConfigMap {ns}/{} not found", ca.name)),
                        )?;
                    cm.data.and_then(|d| d.get(&ca.key).cloned()).ok_or_else(|| {
                        store.config_error(format!("ConfigMap {ns}/{} has no key {:?}", ca.name, ca.key))
                    })?
                }
            };
            Some(pem.into_bytes())
        }
        (None, None) => None,
    };
    if let Some(pem) = &ca_bundle_pem {
        fingerprint.update(pem);
    }

    let auth_spec = &provider.auth;
    let (auth, identity) = if let Some(sel) = &auth_spec.token_secret_ref {
        let ns = ref_namespace(sel.namespace.as_ref());
        let token = read_selector(ctx, store, &ns, sel, "token").await?;
        fingerprint.update(token.as_bytes());
        (Auth::Token(Sensitive::new(token)), format!("token:{ns}/{}", sel.name))
    } else if let Some(k8s) = &auth_spec.kubernetes {
        let (jwt, identity) =
            jwt_source(ctx, store, &ref_namespace, k8s.service_account_ref.as_ref(), k8s.secret_ref.as_ref(), None)
                .await?;
        fingerprint.update(identity.as_bytes());
        let auth = Auth::Kubernetes { mount_path: k8s.mount_path.clone(), role: k8s.role.clone(), jwt };
        (auth, format!("kubernetes:{identity}"))
    } else if let Some(approle) = &auth_spec.app_role {
        let role_id = match (&approle.role_id, &approle.role_ref) {
            (Some(id), _) => id.clone(),
            (None, Some(sel)) => {
                read_selector(ctx, store, &ref_namespace(sel.namespace.as_ref()), sel, "role-id").await?
            }
            (None, None) => return Err(store.config_error("appRole needs roleId or roleRef")),
        };
        let sel = &approle.secret_ref;
        let ns = ref_namespace(sel.namespace.as_ref());
        let secret_id = read_selector(ctx, store, &ns, sel, "secret-id").await?;
        fingerprint.update(role_id.as_bytes());
        fingerprint.update(secret_id.as_bytes());
        let auth = Auth::AppRole { mount_path: approle.path.clone(), role_id, secret_id: Sensitive::new(secret_id) };
        (auth, format!("approle:{ns}/{}", sel.name))
    } else if let Some(jwt_auth) = &auth_spec.jwt {
        let sa = jwt_auth.kubernetes_service_account_token.as_ref();
        let audiences = sa.and_then(|t| t.audiences.clone());
        let (jwt, identity) = jwt_source(
            ctx,
            store,
            &ref_namespace,
            sa.map(|t| &t.service_account_ref),
            jwt_auth.secret_ref.as_ref(),
            audiences,
        )
        .await?;
        fingerprint.update(identity.as_bytes());
        let role = jwt_auth.role.clone().unwrap_or_default();
        (Auth::Jwt { mount_path: jwt_auth.path.clone(), role, jwt }, format!("jwt:{identity}"))
    } else {
        return Err(store.config_error("spec.provider.vault.auth sets no method"));
    };

    let server = ServerConfig {
        address: provider.server.clone(),
        namespace: provider.namespace.clone(),
        ca_bundle_pem,
        read_window: ctx.config.read_window,
        ..ServerConfig::default()
    };
    fingerprint.update(identity.as_bytes());
    let fingerprint = format!("{:x}", fingerprint.finalize());
    let per_namespace = store.namespace.is_none() && refs_need_namespace(provider);
    let owner = ClientOwner { store: store.id(), namespace: per_namespace.then(|| using_namespace.to_owned()) };
    Ok(Credentials { server, auth, fingerprint, owner })
}

/// A JWT for Kubernetes or JWT auth: a fresh short-lived, audience-bound
/// ServiceAccount token per login, or a token kept in a Secret.
async fn jwt_source(
    ctx: &Context,
    store: &ResolvedStore,
    ref_namespace: &impl Fn(Option<&String>) -> String,
    service_account: Option<&ServiceAccountSelector>,
    secret: Option<&SecretKeySelector>,
    audiences_override: Option<Vec<String>>,
) -> Result<(JwtSource, String)> {
    if let Some(sa) = service_account {
        let namespace = ref_namespace(sa.namespace.as_ref());
        let audiences = audiences_override
            .or_else(|| sa.audiences.clone())
            .unwrap_or_else(|| vec![ctx.config.default_audience.clone()]);
        // Checked before anything is requested: a token the Kubernetes API
        // accepts must never be sent to a server the store author chose.
        ctx.api_audiences.check(&ctx.client, &audiences).await.map_err(|reason| Error::RefusedAudience {
            store: store.to_string(),
            service_account: format!("{namespace}/{}", sa.name),
            reason,
        })?;
        if let Some(selector) = &ctx.config.token_namespace_selector {
            let labels = Api::<Namespace>::all(ctx.client.clone()).get(&namespace).await?.labels().clone();
            if !selector_matches(selector, &labels) {
                return Err(Error::ServiceAccountNotAllowed {
                    store: store.to_string(),
                    service_account: format!("{namespace}/{}", sa.name),
                });
            }
        }
        let identity = format!("sa:{namespace}/{}:{}", sa.name, audiences.join(","));
        let api = Api::<ServiceAccount>::namespaced(ctx.client.clone(), &namespace);
        let client = ctx.client.clone();
        let name = sa.name.clone();
        let expiration = i64::try_from(ctx.config.token_expiration.as_secs()).unwrap_or(600);
        let source: JwtSource = Arc::new(move || {
            let api = api.clone();
            let name = name.clone();
            let audiences = audiences.clone();
            let namespace = namespace.clone();
            let client = client.clone();
            async move {
                let request = TokenRequest {
                    spec: Some(TokenRequestSpec {
                        audiences: Some(audiences),
                        expiration_seconds: Some(expiration),
                        ..TokenRequestSpec::default()
                    }),
                    ..TokenRequest::default()
                };
                let response =
                    api.create_token_request(&name, &PostParams::default(), &request).await.map_err(|e| {
                        format!("cannot get a token for ServiceAccount {namespace}/{name}: {}", kube_reason(&e))
                    })?;
                let token =
                    response.status.and_then(|s| s.token).map(Sensitive::new).ok_or_else(|| {
                        format!("TokenRequest for ServiceAccount {namespace}/{name} returned no token")
                    })?;
                crate::audiences::ensure_not_api_token(&client, &token).await?;
                Ok(token)
            }
            .boxed()
        });
        return Ok((source, identity));
    }
    if let Some(sel) = secret {
        let ns = ref_namespace(sel.namespace.as_ref());
        let token = read_selector(ctx, store, &ns, sel, "token").await?;
        let mut digest = Sha256::new();
        digest.update(token.as_bytes());
        let identity = format!("secret:{ns}/{}:{:x}", sel.name, digest.finalize());
        let token = Sensitive::new(token);
        let source: JwtSource = Arc::new(move || {
            let token = token.clone();
            async move { Ok(token) }.boxed()
        });
        return Ok((source, identity));
    }
    Err(store.config_error("set serviceAccountRef or secretRef for the token to log in with"))
}

/// The API server's own words for a failed call, without request details.
/// Only for requests that carry no secret data: the API server's message
/// about a write may quote what was written, so a refused Secret write is
/// told by [`crate::secret_writer::write_failure`] instead.
pub(crate) fn kube_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        // serde quotes the text it could not read, and the answer to a
        // Secret request holds the Secret's data.
        kube::Error::SerdeError(e) => {
            format!(
                "cannot read the API server's answer ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        }
        kube::Error::FromUtf8(_) => "the API server's answer is not UTF-8".to_owned(),
        other => other.to_string(),
    }
}

async fn read_selector(
    ctx: &Context,
    store: &ResolvedStore,
    ns: &str,
    sel: &SecretKeySelector,
    default_key: &str,
) -> Result<String> {
    read_secret_key(ctx, store, ns, &sel.name, sel.key.as_deref().unwrap_or(default_key), Use::Credential).await
}

/// What a value read from a Secret is for: a login credential is sent to
/// the store's server, a CA certificate is public.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Credential,
    Certificate,
}

async fn read_secret_key(
    ctx: &Context,
    store: &ResolvedStore,
    ns: &str,
    name: &str,
    key: &str,
    purpose: Use,
) -> Result<String> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await?
        .ok_or_else(|| store.config_error(format!("Secret {ns}/{name} not found")))?;
    // A Secret Kubernetes fills with an API token is never a Vault login
    // credential: a store author chooses where credentials are sent.
    let token_secret = secret.type_.as_deref() == Some("kubernetes.io/service-account-token")
        || secret.annotations().keys().any(|k| k.starts_with("kubernetes.io/service-account."));
    if token_secret && purpose == Use::Credential {
        return Err(store.config_error(format!(
            "Secret {ns}/{name} holds a Kubernetes ServiceAccount token; vaultsync never sends Kubernetes \
             credentials to a Vault server, and reads no login credential from such a Secret"
        )));
    }
    let bytes = secret
        .data
        .and_then(|mut d| d.remove(key))
        .ok_or_else(|| store.config_error(format!("Secret {ns}/{name} has no key {key:?}")))?;
    let text = String::from_utf8(bytes.0)
        .map_err(|_| store.config_error(format!("Secret {ns}/{name} key {key:?} is not UTF-8")))?;
    let text = text.trim().to_owned();
    if purpose == Use::Certificate {
        return Ok(text);
    }
    ctx.api_audiences
        .ensure_not_api_credential(&ctx.client, &text, &format!("Secret {ns}/{name} key {key:?}"))
        .await
        .map_err(|reason| store.config_error(reason))?;
    Ok(text)
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
