use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, SecretKeySelector};
use crate::vault_path::{FOLDER_MESSAGE, FOLDER_RULE, MAX_PATH, MOUNT_MESSAGE, MOUNT_RULE};

/// Where secrets come from and how vaultsync authenticates there.
///
/// The same spec backs the namespaced `SecretStore` and the cluster-scoped
/// `ClusterSecretStore`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "vaultsync.dev",
    version = "v1alpha1",
    kind = "SecretStore",
    namespaced,
    status = "SecretStoreStatus",
    shortname = "vss",
    category = "vaultsync",
    printcolumn = r#"{"name":"Server","type":"string","jsonPath":".spec.provider.vault.server"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","priority":1,"jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[kube(derive = "PartialEq")]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.conditions)").message("spec.conditions is only allowed on a ClusterSecretStore"))]
pub struct SecretStoreSpec {
    /// How often this store's login is checked again while it is healthy:
    /// an integer number of seconds or a Go duration (`5m`), as in ESO.
    /// Unset or 0: the operator's default (5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// The controller class that serves this store (ESO's `spec.controller`).
    /// An operator serves a store whose class is unset or equals its own
    /// (`--controller-class`, `vaultsync` by default) and leaves every other
    /// store, and every ExternalSecret that uses it, untouched: no status,
    /// no Events, no writes. Two installs (or vaultsync and ESO) can so
    /// share a cluster store by store; changing the class hands a store's
    /// ExternalSecrets over at their next reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub controller: Option<String>,
    /// The secret backend. Exactly one provider must be set.
    pub provider: Provider,
    /// Retries of a Vault request that failed in a way that may pass (no
    /// answer, a 5xx other than 501, a 429), as in ESO: `maxRetries` more
    /// attempts (at most 10; unset: none), `retryInterval` apart (default
    /// `1s`). Without it no request is retried: the sync fails and its
    /// backoff tries again (a server that is down is waited for with one
    /// probe, not retried by every ExternalSecret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<crate::RetrySettings>,
    /// Which namespaces may use this store. Only meaningful on a
    /// ClusterSecretStore; a namespaced SecretStore rejects it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ClusterSecretStoreCondition>>,
}

/// A cluster-wide store: like SecretStore, usable from every namespace that
/// `spec.conditions` allows (all namespaces when no condition is given).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "vaultsync.dev",
    version = "v1alpha1",
    kind = "ClusterSecretStore",
    status = "SecretStoreStatus",
    shortname = "vcss",
    category = "vaultsync",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Server","type":"string","jsonPath":".spec.provider.vault.server"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Capabilities","type":"string","priority":1,"jsonPath":".status.capabilities"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreSpec {
    /// How often this store's login is checked again while it is healthy:
    /// an integer number of seconds or a Go duration (`5m`), as in ESO.
    /// Unset or 0: the operator's default (5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// The controller class that serves this store (ESO's `spec.controller`).
    /// An operator serves a store whose class is unset or equals its own
    /// (`--controller-class`, `vaultsync` by default) and leaves every other
    /// store, and every ExternalSecret that uses it, untouched: no status,
    /// no Events, no writes. Two installs (or vaultsync and ESO) can so
    /// share a cluster store by store; changing the class hands a store's
    /// ExternalSecrets over at their next reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub controller: Option<String>,
    /// The secret backend. Exactly one provider must be set.
    pub provider: Provider,
    /// Retries of a Vault request that failed in a way that may pass (no
    /// answer, a 5xx other than 501, a 429), as in ESO: `maxRetries` more
    /// attempts (at most 10; unset: none), `retryInterval` apart (default
    /// `1s`). Without it no request is retried: the sync fails and its
    /// backoff tries again (a server that is down is waited for with one
    /// probe, not retried by every ExternalSecret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<crate::RetrySettings>,
    /// Which namespaces may use this store: a namespace is allowed when any
    /// field of any condition matches it; no conditions allows all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ClusterSecretStoreCondition>>,
}

/// One namespace rule of a ClusterSecretStore. As in ESO, a namespace is
/// allowed when any field of any condition matches it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretStoreCondition {
    /// Namespaces allowed by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Namespaces allowed by label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    /// Namespaces allowed by regular expression on the name. Unanchored, as
    /// in ESO: anchor with `^...$` to match whole names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_regexes: Option<Vec<String>>,
}

/// The secret backend. `openBao` is accepted as an alias of `vault`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.vault) != has(self.openBao)").message("set exactly one of provider.vault or provider.openBao"))]
pub struct Provider {
    /// HashiCorp Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultProvider>,
    /// OpenBao; same fields as `vault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_bao: Option<VaultProvider>,
}

impl Provider {
    /// The configured Vault-compatible provider, whichever name it was given.
    pub fn vault(&self) -> Option<&VaultProvider> {
        self.vault.as_ref().or(self.open_bao.as_ref())
    }
}

/// KV secrets engine version of the mount at `path`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KvVersion {
    #[serde(rename = "v1")]
    V1,
    #[default]
    #[serde(rename = "v2")]
    V2,
}

/// `server` is an origin: scheme, host, optional port, and a path prefix of
/// plain segments only when Vault is served under one. Nothing that could
/// end or redirect the path (`?`, `#`, `%`, `\`, `@`, `..`), so every
/// request stays under `<server>/v1/`. The controller checks the same.
pub(crate) const SERVER_RULE: &str = r"self.matches('^https?://[^/?#@%\\\\\\s]+(/[-._~A-Za-z0-9]+)*/?$')";
pub(crate) const SERVER_DOT_RULE: &str = r"!self.matches('/[.][.]?(/|$)')";
pub(crate) const SERVER_MESSAGE: &str = "server must be scheme, host and port (e.g. https://vault.example.com:8200), with at most a plain path prefix: no '?', '#', '%', '@', '\\' or '..'";

/// Connection and authentication for a Vault or OpenBao server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.caBundle) && has(self.caProvider))").message("set at most one of caBundle or caProvider"))]
pub struct VaultProvider {
    /// Address of the server, e.g. `https://vault.example.com:8200`.
    #[x_kube(validation = Rule::new(SERVER_RULE).message(SERVER_MESSAGE))]
    #[x_kube(validation = Rule::new(SERVER_DOT_RULE).message(SERVER_MESSAGE))]
    #[schemars(length(max = 512))]
    pub server: String,
    /// vaultsync extension: acknowledge that `server` is a plain `http://`
    /// address. Without it, such a store works but carries the condition
    /// `InsecureTransport` and a Warning Event: Vault tokens, login
    /// credentials and secret values would cross the network unencrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// Mount path of the KV engine, e.g. `secret`. When unset, the first
    /// segment of each `remoteRef.key` is taken as the mount. Never a system
    /// mount (`auth`, `sys`, `identity`, `cubbyhole`); a mount that Vault
    /// reports as another engine than KV is refused at sync time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    #[x_kube(validation = Rule::new(MOUNT_RULE).message(MOUNT_MESSAGE))]
    pub path: Option<String>,
    /// KV engine version: `v1` or `v2` (default).
    #[serde(default)]
    pub version: KvVersion,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Base64-encoded PEM CA bundle used to verify the server's certificate.
    /// When set, only these CAs are trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Read the CA bundle from a Secret or ConfigMap instead of `caBundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_provider: Option<CaProvider>,
    /// A client certificate and its key, presented to the server on every
    /// connection: for a Vault whose listener requires mutual TLS. This is
    /// not a login (that is `auth.cert`). Ignored for plain `http://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// Headers added to every request to the server, e.g. for a proxy or
    /// gateway in front of Vault. Never Vault's own (`X-Vault-*`: the
    /// token and namespace are vaultsync's to send) nor those HTTP sets
    /// itself (`Host`, `Content-Length`, ...) or that carry credentials of
    /// their own (`Authorization`, `Cookie`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "headers_schema")]
    pub headers: Option<BTreeMap<String, String>>,
    /// How vaultsync logs in. Exactly one method must be set.
    pub auth: VaultAuth,
}

/// Header names a store may set: a token, a name HTTP owns, or one that
/// carries credentials of its own is refused.
pub(crate) const HEADERS_RULE: &str = "self.all(k, k.matches('^[A-Za-z0-9-]{1,64}$') && !k.matches('^(?i)(x-vault-.*|authorization|proxy-authorization|cookie|host|content-length|content-type|content-encoding|connection|keep-alive|transfer-encoding|te|trailer|upgrade|expect)$'))";
pub(crate) const HEADERS_MESSAGE: &str = "headers: names of letters, digits and '-' (at most 64), never X-Vault-*, Authorization, Proxy-Authorization, Cookie, or a header HTTP sets itself (Host, Content-*, Connection, Transfer-Encoding, ...)";

/// At most 32 headers of at most 1 KiB each: bounds that also keep the
/// rule's cost within what the API server accepts.
fn headers_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 32,
        "additionalProperties": {"type": "string", "maxLength": 1024},
        "x-kubernetes-validations": [{"rule": HEADERS_RULE, "message": HEADERS_MESSAGE}],
    })
}

/// A client certificate for mutual TLS with the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.certSecretRef) == has(self.keySecretRef)").message("tls: set both certSecretRef and keySecretRef"))]
pub struct ClientTls {
    /// The key of a Secret holding the client certificate (PEM; key
    /// default `tls.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeySelector>,
    /// The key of a Secret holding its private key (PEM; key default
    /// `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeySelector>,
}

/// Kind of object that holds a CA bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CaProviderType {
    Secret,
    ConfigMap,
}

/// A CA bundle kept in a Secret or ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaProvider {
    /// `Secret` or `ConfigMap`.
    #[serde(rename = "type")]
    pub type_: CaProviderType,
    /// Name of the object.
    pub name: String,
    /// Key holding the PEM bundle.
    pub key: String,
    /// Namespace of the object; only honoured for a ClusterSecretStore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Authentication methods. Exactly one must be set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.tokenSecretRef), has(self.kubernetes), has(self.appRole), has(self.jwt), has(self.userPass), has(self.ldap), has(self.cert)].filter(x, x).size() == 1").message("set exactly one auth method: tokenSecretRef, kubernetes, appRole, jwt, userPass, ldap or cert"))]
pub struct VaultAuth {
    /// The Vault namespace to log in to, when it is not the one secrets
    /// are read from (`provider.vault.namespace`), e.g. a parent namespace
    /// whose auth method serves its children. Default: the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_PATH))]
    pub namespace: Option<String>,
    /// A Vault token kept in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// Vault's Kubernetes auth method, with a short-lived ServiceAccount token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesAuth>,
    /// Vault's AppRole auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<AppRoleAuth>,
    /// Vault's JWT/OIDC auth method, with a ServiceAccount token as the JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
    /// Vault's userpass auth method: a user's name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_pass: Option<UserPassAuth>,
    /// Vault's LDAP auth method: an LDAP user's name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapAuth>,
    /// Vault's TLS certificate auth method: a client certificate and its
    /// key, presented to Vault's TLS listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertAuth>,
}

/// Login with a Kubernetes ServiceAccount token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.serviceAccountRef) != has(self.secretRef)").message("set exactly one of serviceAccountRef or secretRef"))]
pub struct KubernetesAuth {
    /// Mount path of the auth method (default `kubernetes`).
    #[serde(default = "default_kubernetes_mount")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    pub mount_path: String,
    /// Vault role to log in as.
    #[schemars(length(min = 1))]
    pub role: String,
    /// ServiceAccount whose short-lived token (TokenRequest API) is presented.
    /// This is the recommended way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountSelector>,
    /// A Secret holding a JWT for Vault's audience. Never a token the
    /// Kubernetes API server accepts: a `kubernetes.io/service-account-token`
    /// Secret is refused, and every JWT is checked by a TokenReview before
    /// it is sent. Prefer `serviceAccountRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}

/// A ServiceAccount whose token is requested for login.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSelector {
    /// Name of the ServiceAccount.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Namespace of the ServiceAccount. Only honoured for a
    /// ClusterSecretStore; a SecretStore uses its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Audiences of the requested token. Default: `vault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
}

/// Login with an AppRole role ID and secret ID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.roleId) != has(self.roleRef)").message("set exactly one of roleId or roleRef"))]
pub struct AppRoleAuth {
    /// Mount path of the AppRole auth method (default `approle`).
    #[serde(default = "default_approle_mount")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    pub path: String,
    /// The role ID, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    /// The role ID, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<SecretKeySelector>,
    /// The secret ID, from a Secret.
    pub secret_ref: SecretKeySelector,
}

fn default_approle_mount() -> String {
    "approle".into()
}

/// Login with a JWT: a ServiceAccount token or one kept in a Secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.kubernetesServiceAccountToken) != has(self.secretRef)").message("set exactly one of kubernetesServiceAccountToken or secretRef"))]
pub struct JwtAuth {
    /// Mount path of the JWT auth method (default `jwt`).
    #[serde(default = "default_jwt_mount")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    pub path: String,
    /// Vault role to log in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Use a short-lived token of this ServiceAccount as the JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_service_account_token: Option<KubernetesServiceAccountToken>,
    /// A JWT kept in a Secret; never one the Kubernetes API server accepts
    /// (checked by a TokenReview before it is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
}

fn default_jwt_mount() -> String {
    "jwt".into()
}

/// Login with a user's name and the password kept in a Secret, on Vault's
/// userpass auth method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPassAuth {
    /// Mount path of the userpass auth method (default `userpass`).
    #[serde(default = "default_userpass_mount")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    pub path: String,
    /// The user's name.
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// The key of a Secret holding the user's password.
    pub secret_ref: SecretKeySelector,
}

fn default_userpass_mount() -> String {
    "userpass".into()
}

/// Login with an LDAP user's name and the password kept in a Secret, on
/// Vault's LDAP auth method (which binds to the directory as that user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapAuth {
    /// Mount path of the LDAP auth method (default `ldap`).
    #[serde(default = "default_ldap_mount")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    pub path: String,
    /// The LDAP user's name.
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// The key of a Secret holding the user's password.
    pub secret_ref: SecretKeySelector,
}

fn default_ldap_mount() -> String {
    "ldap".into()
}

/// Login with a TLS client certificate, on Vault's cert auth method: the
/// certificate and its key (PEM, from Secrets) are presented when the
/// connection to Vault is made, so Vault's listener must ask for client
/// certificates (it does unless `tls_disable_client_certs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertAuth {
    /// Mount path of the cert auth method (default `cert`).
    #[serde(default = "default_cert_mount")]
    #[schemars(length(max = MAX_PATH))]
    #[x_kube(validation = Rule::new(FOLDER_RULE).message(FOLDER_MESSAGE))]
    pub path: String,
    /// The cert auth role (`auth/cert/certs/<name>`) to log in as; Vault
    /// picks the one the certificate matches when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub vault_role: Option<String>,
    /// The key of a Secret holding the client certificate (PEM; the chain
    /// may follow it).
    pub client_cert: SecretKeySelector,
    /// The key of a Secret holding the certificate's private key (PEM).
    pub secret_ref: SecretKeySelector,
}

fn default_cert_mount() -> String {
    "cert".into()
}

/// ServiceAccount token used as a JWT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesServiceAccountToken {
    /// The ServiceAccount whose token is requested.
    pub service_account_ref: ServiceAccountSelector,
    /// Audiences of the token; overrides serviceAccountRef.audiences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
}

/// Observed state of a store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreStatus {
    /// `Ready` tells whether vaultsync could log in to the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the store can do: `ReadOnly` for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
    /// Last generation whose spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The controller class an operator serves unless told otherwise.
pub const DEFAULT_CONTROLLER_CLASS: &str = "vaultsync";

/// Whether an operator of class `class` serves a store whose
/// `spec.controller` is `controller`: an unset or empty class belongs to
/// everyone, as in ESO.
pub fn serves_store_class(controller: Option<&str>, class: &str) -> bool {
    match controller.map(str::trim) {
        None | Some("") => true,
        Some(store_class) => store_class == class,
    }
}

/// A store's `spec.refreshInterval`: `None` for unset or 0 (the operator's
/// default), else the interval; an error names what is wrong.
pub fn store_refresh_interval(
    value: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
) -> Result<Option<std::time::Duration>, String> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let interval = match value {
        None => return Ok(None),
        Some(IntOrString::Int(seconds)) if *seconds < 0 => {
            return Err(format!("spec.refreshInterval: {seconds} is negative"));
        }
        Some(IntOrString::Int(seconds)) => std::time::Duration::from_secs(*seconds as u64),
        // Seconds written as a string count too: ESO's field was an integer.
        Some(IntOrString::String(text)) => match text.trim().parse::<u64>() {
            Ok(seconds) => std::time::Duration::from_secs(seconds),
            Err(_) => crate::parse_duration(text.trim()).map_err(|e| format!("spec.refreshInterval: {e}"))?,
        },
    };
    Ok((!interval.is_zero()).then_some(interval))
}

#[cfg(test)]
mod class_tests {
    use super::{serves_store_class, store_refresh_interval};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use std::time::Duration;

    #[test]
    fn refresh_interval_takes_seconds_or_a_duration_and_zero_means_default() {
        assert_eq!(store_refresh_interval(None), Ok(None));
        assert_eq!(store_refresh_interval(Some(&IntOrString::Int(0))), Ok(None));
        assert_eq!(store_refresh_interval(Some(&IntOrString::Int(30))), Ok(Some(Duration::from_secs(30))));
        assert_eq!(store_refresh_interval(Some(&IntOrString::String("45".into()))), Ok(Some(Duration::from_secs(45))));
        assert_eq!(store_refresh_interval(Some(&IntOrString::String("2m".into()))), Ok(Some(Duration::from_secs(120))));
        assert!(
            store_refresh_interval(Some(&IntOrString::String("soon".into()))).unwrap_err().contains("refreshInterval")
        );
        assert!(store_refresh_interval(Some(&IntOrString::Int(-1))).is_err());
    }

    #[test]
    fn an_unset_or_empty_class_is_everyones_and_another_is_not_ours() {
        assert!(serves_store_class(None, "vaultsync"));
        assert!(serves_store_class(Some(""), "vaultsync"));
        assert!(serves_store_class(Some("vaultsync"), "vaultsync"));
        assert!(!serves_store_class(Some("default"), "vaultsync"));
        assert!(!serves_store_class(Some("vaultsync-canary"), "vaultsync"));
    }
}
